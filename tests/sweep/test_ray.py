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


@pytest.mark.slow
def test_a_running_ray_cluster_is_reached_by_its_address(four_runs, monkeypatch):
    """`ray start --head` as a separate process on 127.0.0.1, reached with --address (token auth off on both
    sides: a local test cluster, not a shared one)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    from cosim.cli import main

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                             "--node-ip-address", "127.0.0.1", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and head.poll() is None, "ray start --head did not come up"
                time.sleep(0.5)
        rows = sweep(four_runs, engine="ray", address=f"127.0.0.1:{port}", cache=False)
        assert [r.outcome for r in rows] == ["ok", "ok", "failed", "failed"]
        assert [r.result() for r in rows] == [r.result() for r in sweep(four_runs, engine="local", cache=False)]
    finally:
        head.send_signal(signal.SIGTERM)            # `ray start --block` stops what it started...
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)     # ...and whatever of its session is left goes now
        except ProcessLookupError:
            pass
