"""`cosim sweep` from the command line: the table, the files, one-line errors, Ctrl-C keeping finished runs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cosim.cli import main
from cosim.sweep import DaskEngine, EngineError, load_spec


def write_spec(path, guests, until="20 ms", names=("hello", "simctl")):
    firmware = ", ".join(f'"{guests[name]}"' for name in names)
    path.write_text(f'platform = "virt"\nuntil = "{until}"\n[matrix]\nfirmware = [{firmware}]\n'
                    'counting = ["block", "instruction"]\n')
    return path


def test_local_engine_prints_the_table_and_the_failures(guests, tmp_path, capsys):
    spec = write_spec(tmp_path / "spec.toml", guests, names=("hello",))
    assert main(["sweep", str(spec), "--engine", "local", "--cache-dir", str(tmp_path / "cache")]) == 0
    out, err = capsys.readouterr()
    header, first, second = out.splitlines()
    assert header.split() == ["#", "firmware", "counting", "outcome", "status", "sim", "time", "wall", "instructions",
                              "stopped", "by"]
    assert first.split()[:5] == ["0", str(guests["hello"]), "block", "ok", "0"]
    assert "guest called PSCI SYSTEM_OFF" in second and "2 runs of virt on local" in err and "[" not in err
    assert main(["sweep", str(spec), "--engine", "local", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert capsys.readouterr().out.count("ok (cached)") == 2


def test_progress_is_drawn_when_asked(guests, tmp_path, capsys):
    spec = write_spec(tmp_path / "spec.toml", guests)
    assert main(["sweep", str(spec), "--engine", "local", "--no-cache", "--progress"]) == 1
    err = capsys.readouterr().err
    assert "[######------------------] 1/4  ok 1  ETA " in err
    assert "[########################] 4/4  failed 2  ok 2  done in " in err


@pytest.mark.parametrize("argv, message", [
    (["--engine", "spark"], "unknown engine 'spark': use local, dask, ray"),
    (["--engine", "local", "--workers", "2"], "the local engine runs one run at a time"),
    (["--engine", "local", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler is the Dask scheduler's address"),
    (["--engine", "dask", "--address", "127.0.0.1:6379"], "--address is a Ray cluster's address"),
    (["--workers", "0"], "--workers must be at least 1, not 0"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "a cluster given by --scheduler has its own workers"),
    (["--engine", "local", "--out", "rows.txt"], "--out rows.txt: use a .json or .csv file name"),
])
def test_bad_options_are_one_line_and_exit_2(guests, tmp_path, capsys, argv, message):
    spec = write_spec(tmp_path / "spec.toml", guests)
    assert main(["sweep", str(spec), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cosim: error: ") and message in err and "\n" not in err


def test_a_bad_spec_is_one_line_with_its_line_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text('platform = "virt"\n[matrix]\nquantum = ["1ms", "2 fortnights"]\n')
    assert main(["sweep", str(spec), "--engine", "local"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cosim: error: {spec}:3: property quantum='2 fortnights': unknown time unit 'fortnights'")
    assert "\n" not in err


def test_an_unreachable_scheduler_is_one_line(four_runs):
    pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    with DaskEngine(scheduler="tcp://127.0.0.1:9", connect_timeout=1) as engine:
        with pytest.raises(EngineError, match=r"^cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9: "):
            engine.submit(load_spec(four_runs).runs[0])


@pytest.mark.parametrize("engine", [["--engine", "local"], ["--workers", "2"]], ids=["local", "dask"])
def test_ctrl_c_cancels_the_sweep_and_keeps_finished_rows(guests, tmp_path, engine):
    if "--workers" in engine:
        pytest.importorskip("distributed", reason="dask[distributed] is not installed")
    spec = write_spec(tmp_path / "spec.toml", guests, until="2 s", names=("hello", "spin"))
    out = tmp_path / "rows.json"
    proc = subprocess.Popen([sys.executable, "-m", "cosim", "sweep", str(spec), *engine, "--no-cache",
                             "--progress", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    err, deadline = b"", time.monotonic() + 120
    while b"1/4" not in err and time.monotonic() < deadline and proc.poll() is None:
        err += os.read(proc.stderr.fileno(), 4096)          # a hello run is done in a moment; spin's take long
    os.killpg(proc.pid, signal.SIGINT)                      # as Ctrl-C in a terminal: the whole process group
    stdout, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, (err + rest).decode()
    assert b"Traceback" not in err + rest, (err + rest).decode()[-2000:]     # workers leave Ctrl-C to the sweep
    rows = json.loads(out.read_text())["rows"]
    outcomes = [r["outcome"] for r in rows]
    assert len(rows) == 4 and "ok" in outcomes[:2] and set(outcomes[:2]) <= {"ok", "cancelled"}
    assert "cancelled" in outcomes[2:]
    assert b"interrupted; finished runs kept in " in rest and b"cancelled" in stdout


def test_cosim_run_does_not_import_dask_or_ray():
    code = ("import sys; from cosim.cli import main; main(['run', 'demo', '-P', 'ticks=1']); "
            "print(sorted(m for m in ('dask', 'distributed', 'ray') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("[]")
