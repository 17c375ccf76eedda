"""Campaigns on the in-process engine: one row per run in matrix order, one retry, the cache, Ctrl-C."""

import pytest

from cosim.sweep import LocalEngine, ResultCache, SweepInterrupted, load_spec, run_campaign, sweep


class CountingEngine(LocalEngine):
    def __init__(self):
        super().__init__()
        self.submitted = []

    def submit(self, run):
        self.submitted.append(run.index)
        super().submit(run)


def test_rows_come_back_in_matrix_order_with_their_outcomes(four_runs):
    rows = sweep(four_runs, engine="local", cache=False)
    assert [(r.index, r.point["counting"], r.outcome, r.status) for r in rows] == [
        (0, "block", "ok", 0), (1, "instruction", "ok", 0), (2, "block", "failed", 3), (3, "instruction", "failed", 3)]
    assert all(r.attempts == 1 and not r.cached and r.key for r in rows)


def test_a_run_that_errs_is_retried_once_and_reported_with_both_reasons(guests, tmp_path):
    engine = CountingEngine()
    spec = load_spec({"platform": "virt", "until": "1s",
                      "matrix": {"firmware": [str(guests["hello"]), str(tmp_path / "absent.bin")]}})
    ok, bad = run_campaign(spec, engine)
    assert engine.submitted == [0, 1, 1]                        # the guest's own failures are not retried
    assert ok.outcome == "ok" and ok.attempts == 1 and ok.retried == ""
    assert bad.outcome == "error" and bad.attempts == 2 and "absent.bin does not exist" in bad.error
    assert bad.retried == f"error: firmware image {tmp_path / 'absent.bin'} does not exist"


def test_a_rerun_takes_finished_runs_from_the_cache(four_runs, guests, tmp_path):
    spec = load_spec({**four_runs, "matrix": {"firmware": [str(guests["hello"]), str(tmp_path / "absent.bin")]}})
    cache = ResultCache(tmp_path / "cache")
    first = run_campaign(spec, CountingEngine(), cache)
    again = CountingEngine()
    second = run_campaign(spec, again, cache)
    assert again.submitted == [1, 1]                        # the error is not cached: it runs (and retries) again
    assert second[0].cached and not first[0].cached and second[0].result() == first[0].result()
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1


def test_ctrl_c_cancels_the_rest_and_keeps_what_finished(four_runs):
    spec = load_spec(four_runs)
    seen = []

    def interrupt_after_the_second(row):
        seen.append(row.index)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as stop:
        run_campaign(spec, LocalEngine(), on_row=interrupt_after_the_second)
    rows = stop.value.rows
    assert [r.outcome for r in rows] == ["ok", "ok", "cancelled", "cancelled"]
    assert rows[2].error == "interrupted (Ctrl-C) before it finished" and rows[2].point == spec.runs[2].point


def test_the_report_lists_failures_and_runs_saved_by_their_retry():
    from cosim.sweep import Row, failures

    rows = [Row(index=0, point={"q": "1ms"}, properties={}, outcome="ok"),
            Row(index=1, point={"q": "2ms"}, properties={}, outcome="ok", attempts=2,
                retried="crashed: KilledWorker: worker died"),
            Row(index=2, point={"q": "3ms"}, properties={}, outcome="error", attempts=2, error="boom",
                retried="error: boom")]
    assert failures(rows).splitlines() == [
        "1 of 3 runs not ok:", "  #2 q=3ms: error: boom (retried after error: boom)",
        "1 runs ok on their second attempt:", "  #1 q=2ms: first attempt crashed: KilledWorker: worker died"]
    assert failures(rows[:1]) == ""
