"""Sweeps on Dask distributed: a LocalCluster started by `cosim sweep`, and a scheduler and workers started
as separate processes (`dask scheduler`, `dask worker`, on 127.0.0.1) reached with --scheduler; a worker
killed in the middle of a run; the same rows from every worker."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from cosim import SEC
from cosim.cli import main
from cosim.sweep import DaskEngine, Row, load_spec, run_one, sweep

distributed = pytest.importorskip("distributed", reason="dask[distributed] is not installed (pip install 'cosim[dask]')")

SPIN_UNTIL = "1 s"          # 1-4 s of wall time on the software CPU (block/instruction counting): long enough
                            # to kill its worker mid-run (250 ms took only 0.2 s on the patched unicorn)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and a `dask worker` process with two single-threaded workers; yields the scheduler's address.

    allowed-failures=0: a worker's death under a task is reported at once, so the sweep's own single retry
    is what survives it (as with the LocalCluster cosim starts)."""
    folder = tmp_path_factory.mktemp("dask")
    address_file = folder / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    common = ["--no-dashboard", "--host", "127.0.0.1", "--scheduler-file", str(address_file)]
    scheduler = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--port", "0", *common], env=env,
                                 stdout=subprocess.DEVNULL, stderr=(folder / "scheduler.log").open("w"))
    workers = None
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline and scheduler.poll() is None:
            time.sleep(0.1)
        assert address_file.exists(), f"dask scheduler did not start: {(folder / 'scheduler.log').read_text()}"
        workers = subprocess.Popen([sys.executable, "-m", "dask", "worker", "--nworkers", "2", "--nthreads", "1",
                                    *common], env=env, stdout=subprocess.DEVNULL,
                                   stderr=(folder / "workers.log").open("w"))
        address = json.loads(address_file.read_text())["address"]
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in (workers, scheduler):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_cosim_sweep_on_a_local_cluster_writes_every_row(four_runs, tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(f'platform = "virt"\nuntil = "20 ms"\n[matrix]\n'
                    f'firmware = {json.dumps(four_runs["matrix"]["firmware"])}\ncounting = ["block", "instruction"]\n')
    status = main(["sweep", str(spec), "--workers", "2", "--no-cache", "--out", str(tmp_path / "r.json"),
                   "--out", str(tmp_path / "r.csv")])
    out, err = capsys.readouterr()
    assert status == 1                                              # simctl's guest exits with status 3
    assert "4 runs of virt on dask (local cluster, 2 workers)" in err
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert [(r["index"], r["outcome"], r["status"]) for r in rows] == [(0, "ok", 0), (1, "ok", 0), (2, "failed", 3),
                                                                       (3, "failed", 3)]
    lines = (tmp_path / "r.csv").read_text().splitlines()
    assert lines[0].startswith("index,firmware,counting,outcome,status,stop_reason,sim_time,") and len(lines) == 5
    assert "cpu0 instructions" in lines[0]
    assert "2 of 4 runs not ok:" in out and "#3 firmware=" in out and "exit status 3: guest wrote 0x3" in out


def test_a_running_cluster_gives_the_same_rows_as_this_process(four_runs, cluster, tmp_path, capsys):
    here = sweep(four_runs, engine="local", cache=False)
    spec = tmp_path / "spec.toml"
    spec.write_text(f'platform = "virt"\nuntil = "20 ms"\n[matrix]\n'
                    f'firmware = {json.dumps(four_runs["matrix"]["firmware"])}\ncounting = ["block", "instruction"]\n')
    assert main(["sweep", str(spec), "--scheduler", cluster, "--no-cache", "--out", str(tmp_path / "r.json")]) == 1
    assert f"4 runs of virt on dask ({cluster})" in capsys.readouterr().err
    there = [Row.from_dict(r) for r in json.loads((tmp_path / "r.json").read_text())["rows"]]
    assert [r.result() for r in there] == [r.result() for r in here]
    assert {r.worker for r in there}.isdisjoint({r.worker for r in here})


def test_each_worker_gives_the_same_row_for_the_same_run(four_runs, cluster):
    runs = load_spec({**four_runs, "matrix": {**four_runs["matrix"], "quantum": ["100us", "1ms"]}}).runs
    with distributed.Client(cluster, timeout=30) as client:
        workers = sorted(client.scheduler_info()["workers"])
        assert len(workers) == 2
        rows = {w: client.gather([client.submit(run_one, run, workers=[w], allow_other_workers=False, pure=False)
                                  for run in runs]) for w in workers}
    first, second = (rows[w] for w in workers)
    assert {r.worker for r in first}.isdisjoint({r.worker for r in second})      # really two processes
    assert [r.result() for r in first] == [r.result() for r in second]
    assert len({r.instructions for r in first}) > 2                            # and the runs do differ


def test_a_worker_killed_mid_run_is_survived_by_one_retry(guests, cluster):
    spec = {"platform": "virt", "until": SPIN_UNTIL, "properties": {"firmware": str(guests["spin"])},
            "matrix": {"counting": ["block", "instruction"]}}
    killed = []

    def kill_a_busy_worker():
        with distributed.Client(cluster, timeout=30) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                busy = [w for w, keys in client.processing().items() if any("cosim-run-" in str(k) for k in keys)]
                if busy:
                    time.sleep(0.3)                                 # well inside the run
                    pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    with DaskEngine(scheduler=cluster) as engine:           # an engine passed in is the caller's to close
        rows = sweep(spec, engine=engine, cache=False)
    killer.join()
    assert killed, "no worker was seen running a sweep task"
    assert [r.outcome for r in rows] == ["ok", "ok"] and all(r.sim_time == SEC for r in rows)
    retried = [r for r in rows if r.attempts == 2]
    assert len(retried) >= 1 and all(r.retried.startswith("crashed: KilledWorker") for r in retried)
    assert all(not r.worker.endswith(f":{killed[0]}") for r in rows)
