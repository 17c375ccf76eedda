"""The same sweep on Ray (a local Ray started by the engine): the same results as in this process."""

import pytest

from cosim.sweep import sweep

pytest.importorskip("ray", reason="ray is not installed (pip install 'cosim[ray]')")


def test_a_sweep_on_ray_gives_the_same_rows_as_this_process(four_runs):
    here = sweep(four_runs, engine="local", cache=False)
    there = sweep(four_runs, engine="ray", workers=2, cache=False)
    assert [r.outcome for r in there] == ["ok", "ok", "failed", "failed"]
    assert [r.result() for r in there] == [r.result() for r in here]
    assert {r.worker for r in there}.isdisjoint({r.worker for r in here})
