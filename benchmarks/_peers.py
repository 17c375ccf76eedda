"""Peers measured in the same run as cosim: QEMU (TCG) driven over its serial console."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ensure_qemu", "Console", "QemuAarch64"]


def ensure_qemu() -> str:
    """Path of qemu-system-aarch64, installing Debian's qemu-system-arm if it is missing."""
    path = shutil.which("qemu-system-aarch64")
    if path:
        return path
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("benchmark set-up: installing Debian's qemu-system-arm for the QEMU peer")
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "qemu-system-arm"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    path = shutil.which("qemu-system-aarch64")
    if not path:
        raise RuntimeError("qemu-system-aarch64 still missing after installing qemu-system-arm")
    return path


def cosim_env() -> dict[str, str]:
    """The environment of a whole cosim process, started as an installed cosim starts: with its
    bytecode cached (PYTHONDONTWRITEBYTECODE, set where we work, would compile every module from
    source on each start) and on the unicorn library it chooses itself, not one this process chose."""
    return {key: value for key, value in os.environ.items()
            if key not in ("LIBUNICORN_PATH", "COSIM_UNICORN", "PYTHONDONTWRITEBYTECODE")}


def warm_cosim(env: dict[str, str] | None = None) -> None:
    """Write cosim's bytecode cache once, so that no measured start compiles it."""
    subprocess.run([sys.executable, "-c", "import cosim.cli, cosim.platforms.virt"], env=env or cosim_env(),
                   check=True)


class Console:
    """Expect-style access to a child process's serial console on stdin/stdout."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.start = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env)
        self.buffer = b""
        self.before = b""           # what preceded the marker the last expect() found

    def expect(self, marker: bytes, timeout: float = 120.0) -> float:
        """Wait for `marker`; returns the wall time (s since start) it appeared."""
        deadline = time.perf_counter() + timeout
        assert self.proc.stdout is not None
        while marker not in self.buffer:
            left = deadline - time.perf_counter()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError(f"no {marker!r} within {timeout} s; last output: {self.buffer[-300:]!r}")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise EOFError(f"console closed before {marker!r}; last output: {self.buffer[-300:]!r}")
            self.buffer += chunk
        index = self.buffer.index(marker)
        self.before, self.buffer = self.buffer[:index], self.buffer[index + len(marker):]
        return time.perf_counter() - self.start

    def send(self, text: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def close(self, timeout: float = 10.0) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def QemuAarch64(bios: Path | None = None, kernel: Path | None = None, initrd: Path | None = None,
                append: str | None = None, memory: str = "128M", extra: tuple[str, ...] = (), smp: int = 1) -> Console:
    argv = [ensure_qemu(), "-M", "virt", "-cpu", "cortex-a57", "-accel", "tcg", "-m", memory,
            "-nographic", "-serial", "stdio", "-monitor", "none"]
    if smp > 1:
        argv += ["-smp", str(smp)]
    if bios:
        argv += ["-bios", str(bios)]
    if kernel:
        argv += ["-kernel", str(kernel)]
    if initrd:
        argv += ["-initrd", str(initrd)]
    if append:
        argv += ["-append", append]
    return Console(argv + list(extra))
