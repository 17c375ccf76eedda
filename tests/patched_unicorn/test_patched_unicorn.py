"""cosim's patched unicorn (cosim/patched_unicorn): chosen at start-up, keyed by its inputs, and
running every guest exactly as the released library does: the same instructions, simulated time,
console output and stop, in both counting modes (the whole suite then runs on it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cosim import patched_unicorn

ROOT = Path(__file__).resolve().parents[2]
GUESTS = ROOT / "tests" / "guests" / "arm64"
# Exceptions, interrupts, WFI, the generic timer read natively and in Python, PL011 polling, code
# patched in place, the debug architecture's watchpoints and breakpoints (memory hooks
# added mid-run), an unmapped access, EL0 traps, two CPUs with PSCI.
GUESTS_RUN = ["hello", "timer_wfi", "spin_irq", "masked_wfi", "uart_poll", "counter_reads", "code_patch",
              "debug_arch", "debug_mmio", "unmapped", "el0_traps", "svc_el0", "smp"]

_RUNNER = r"""
import json, sys
from cosim import SEC, patched_unicorn
from cosim.chardev import BufferBackend
from cosim.platforms.virt import Virt
from cosim.toolchain import assemble

out = {"patched": patched_unicorn.in_use()}
for name in sys.argv[3:]:
    for counting in ("block", "instruction"):
        guest = assemble(f"{sys.argv[1]}/{name}.S", "aarch64", 0, sys.argv[2])
        console = BufferBackend()
        board = Virt(firmware=str(guest.bin), console=console, counting=counting, cpus=2 if name == "smp" else 1)
        try:
            summary = board.run(until=2 * SEC)
            stop = summary.stop.reason if summary.stop else None
        except Exception as error:              # a guest that fails must fail alike on both
            stop = f"{type(error).__name__}: {error}"
        out[f"{name}/{counting}"] = [board.sim.now, [cpu.instructions for cpu in board.cpu_list],
                                     bytes(console.output).decode(errors="replace"), stop]
        board.sim.close()
print(json.dumps(out))
"""


def _environment(library: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("LIBUNICORN_PATH", "COSIM_UNICORN")}
    if library == "stock":
        env["COSIM_UNICORN"] = "stock"
    return env


def _run_guests(library: str, tmp_path: Path) -> dict:
    folder = tmp_path / library
    folder.mkdir()
    result = subprocess.run([sys.executable, "-c", _RUNNER, str(GUESTS), str(folder), *GUESTS_RUN],
                            env=_environment(library), cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _require_built() -> None:
    if os.environ.get("COSIM_UNICORN") == "stock":
        pytest.skip("COSIM_UNICORN=stock: this run uses the released unicorn on purpose")
    if patched_unicorn.built_library() is None:
        pytest.fail("the patched unicorn is not built: scripts/bootstrap.sh builds it "
                    "(python -m cosim.patched_unicorn build)")


def test_this_suite_runs_on_the_patched_library():
    """scripts/bootstrap.sh builds it and `import cosim` selects it: a fallback to the released
    library must not pass unnoticed."""
    _require_built()
    assert patched_unicorn.in_use()


def test_guests_run_the_same_on_both_libraries(tmp_path):
    _require_built()
    stock, patched = _run_guests("stock", tmp_path), _run_guests("patched", tmp_path)
    assert stock.pop("patched") is False and patched.pop("patched") is True
    assert stock.keys() == patched.keys()
    for key in stock:
        assert patched[key] == stock[key], key
    # The comparison is not vacuous: the guests ran, and stopped as they do.
    assert stock["hello/block"][2] and all(value[1][0] > 0 for value in stock.values())


@pytest.mark.slow
def test_linux_boots_the_same_on_both_libraries():
    """Debian's kernel to the busybox shell: the same instructions and console output (kernel
    timestamps included) on both, in block counting (bench_linux.py checks both modes)."""
    _require_built()
    boots = {}
    for library in ("stock", "patched"):
        result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_linux.py"), "--boot-once",
                                 "--counting", "block", "--cpus", "1"], env=_environment(library), cwd=ROOT,
                                capture_output=True, text=True, timeout=900, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        boot = json.loads(result.stdout.strip().splitlines()[-1])
        boots[library] = (boot["instructions"], boot["digest"], boot["simulated"])
    assert boots["patched"] == boots["stock"]


def test_the_library_is_chosen_only_when_nobody_else_chose(tmp_path, monkeypatch):
    probe = "import cosim, os; from cosim import patched_unicorn as p; import unicorn; " \
            "print(p.in_use(), os.environ.get('LIBUNICORN_PATH'))"
    stock_dir = str(Path(__import__("unicorn").__file__).parent / "lib")

    def loaded(**env: str) -> str:
        result = subprocess.run([sys.executable, "-c", probe], env={**_environment("patched"), **env},
                                capture_output=True, text=True, check=True)
        return result.stdout.strip()

    assert loaded(COSIM_UNICORN="stock") == "False None"
    assert loaded(LIBUNICORN_PATH=stock_dir) == f"False {stock_dir}"           # the user's choice stands
    empty = tmp_path / "cache"
    assert loaded(COSIM_IMAGE_CACHE=str(empty)) == "False None"                 # not built: the released one
    if patched_unicorn.built_library() is not None:
        assert loaded() == f"True {patched_unicorn.library_dir()}"


def test_a_library_that_does_not_load_leaves_the_released_one(tmp_path):
    """A damaged library, or one built on another machine sharing the cache: unicorn's loader falls
    back to the released one without a word, so the CPU backend says it."""
    folder = patched_unicorn.library_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / patched_unicorn.LIBRARY).write_bytes(b"not a shared library")
    firmware = tmp_path / "spin.bin"
    firmware.write_bytes((0x14000000).to_bytes(4, "little"))          # b .
    probe = "import sys; from cosim import patched_unicorn as p; from cosim.platforms.virt import Virt; " \
            "board = Virt(firmware=sys.argv[1], console='none'); board.run(until=1000); print(p.in_use())"
    result = subprocess.run([sys.executable, "-c", probe, str(firmware)], capture_output=True, text=True,
                            env={**_environment("patched"), "COSIM_IMAGE_CACHE": str(tmp_path)}, check=True)
    assert result.stdout.strip() == "False"
    assert result.stderr.count(f"{folder / patched_unicorn.LIBRARY} did not load; running on the released "
                               f"unicorn") == 1


def test_the_cache_entry_is_keyed_by_the_patch(tmp_path, monkeypatch):
    before = patched_unicorn.build_key()
    changed = tmp_path / "fast-paths.patch"
    changed.write_bytes(patched_unicorn.PATCH.read_bytes() + b"\n")
    monkeypatch.setattr(patched_unicorn, "PATCH", changed)
    assert patched_unicorn.build_key() != before
    assert patched_unicorn.built_library(tmp_path) is None
    assert patched_unicorn.library_dir(tmp_path).name == f"unicorn-{patched_unicorn.UNICORN_VERSION}-" \
                                                         f"{patched_unicorn.build_key()}"


def test_a_source_release_that_does_not_match_is_refused(tmp_path, monkeypatch):
    def fake_pip(args, what, log, deadline):
        (tmp_path / f"unicorn-{patched_unicorn.UNICORN_VERSION}.tar.gz").write_bytes(b"not the release")

    monkeypatch.setattr(patched_unicorn, "_run", fake_pip)
    with pytest.raises(patched_unicorn.BuildError, match="SHA-256 .* expected 00567a70"):
        patched_unicorn._source(tmp_path, tmp_path / "log", 0.0)


def test_a_missing_build_tool_is_named(tmp_path):
    with pytest.raises(patched_unicorn.BuildError, match="no-such-tool-here is not installed"):
        patched_unicorn._run(["no-such-tool-here"], "configuring", tmp_path / "log", deadline=1e18)
