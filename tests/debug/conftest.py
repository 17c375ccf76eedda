"""Drive a real gdb-multiarch in batch mode against `cosim run ... --gdb 0`."""

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cosim.toolchain import ToolchainError, assemble

GUESTS = Path(__file__).resolve().parents[1] / "guests"
LOAD = {"aarch64": 0, "x86_64": 0x10_0000}


@dataclass
class Session:
    gdb: str             # what gdb printed
    cosim: str           # cosim's standard error (summary, warnings)
    status: int          # cosim's exit status


@pytest.fixture(scope="session")
def guest_elf(tmp_path_factory):
    """`guest_elf("aarch64", "hello")`: tests/guests/<arch>/hello.S assembled, as ELF (symbols for gdb)."""
    out = tmp_path_factory.mktemp("gdb-guests")

    def build(arch: str, name: str):
        folder = "arm64" if arch == "aarch64" else "x86"
        try:
            return assemble(GUESTS / folder / f"{name}.S", arch, LOAD[arch], out)
        except ToolchainError as error:
            pytest.skip(str(error))

    return build


@pytest.fixture(scope="session")
def debug():
    """`debug(["virt", "-P", "firmware=..."], ["break *0x18", "continue"], elf)` -> Session.

    cosim listens on a free port (--gdb 0) and says which on standard error; gdb
    connects there, runs the commands, and the run ends when the guest does.
    """
    gdb = shutil.which("gdb-multiarch")
    if gdb is None:
        pytest.skip("gdb-multiarch is not installed (scripts/bootstrap.sh installs it)")

    def run(cosim_args: list[str], commands: list[str], elf: Path, timeout: float = 120) -> Session:
        proc = subprocess.Popen([sys.executable, "-m", "cosim", "run", *cosim_args, "--console", "buffer",
                                 "--gdb", "0"], stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            port = None
            early = []
            for line in proc.stderr:
                early.append(line)
                found = re.search(r"waiting for gdb on [\d.]+:(\d+)", line)
                if found:
                    port = int(found.group(1))
                    break
            assert port is not None, "".join(early)
            script = ["-ex", f"target remote 127.0.0.1:{port}"]
            for command in commands:
                script += ["-ex", command]
            result = subprocess.run([gdb, "-batch", "-nx", *script, str(elf)], capture_output=True, text=True,
                                    timeout=timeout)
            rest = proc.stderr.read()
            status = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return Session(result.stdout + result.stderr, "".join(early) + rest, status)

    return run
