"""The cost of tracing: Debian's arm64 Linux booted to the busybox shell on virt-linux, in-process,
with tracing off (the peer), a VCD trace, a JSON (Perfetto) trace, and a JSON trace filtered to gic.

    python benchmarks/bench_trace.py

Prints wall time to the shell prompt, its ratio to the untraced boot, and each file's size. One
untraced boot first warms up (native hooks built, images in the page cache) and is not counted; the
untraced peer is booted before and after the traced ones, and its mean is the base.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from cosim import SEC
from cosim.chardev import BufferBackend
from cosim.images.fetch import busybox_initramfs_image, linux_kernel
from cosim.images.initramfs import BANNER
from cosim.trace import attach

PROMPT = "/root # "


def boot(kernel: Path, initrd: Path, trace: dict | None, out: Path) -> tuple[float, int]:
    from cosim.platforms.virt import VirtLinux

    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console)
    tracer = attach(board, out / "run", **trace) if trace is not None else None
    start = time.perf_counter()
    console.run_until(BANNER, 20 * SEC)
    console.run_until(PROMPT, 5 * SEC, start=console.output.find(BANNER.encode()))
    wall = time.perf_counter() - start
    board.sim.close()
    size = sum(path.stat().st_size for path in tracer.paths) if tracer else 0
    return wall, size


def main() -> None:
    kernel, initrd = linux_kernel(), busybox_initramfs_image()
    runs = {"VCD": {"json": False}, "JSON": {"vcd": False}, "JSON, --trace-filter gic": {"vcd": False, "only": {"gic"}}}
    print(f"Debian 12 arm64 Linux ({kernel.name}) to the busybox shell on virt-linux, in-process (wall seconds)")
    with tempfile.TemporaryDirectory() as folder:
        boot(kernel, initrd, None, Path(folder))                       # warm-up, not counted
        before = boot(kernel, initrd, None, Path(folder))[0]
        results = {label: boot(kernel, initrd, trace, Path(folder)) for label, trace in runs.items()}
        after = boot(kernel, initrd, None, Path(folder))[0]
    base = (before + after) / 2
    print(f"  tracing off (peer)                 {base:7.2f} s  1.00x   (before {before:.2f} s, after {after:.2f} s)")
    for label, (wall, size) in results.items():
        print(f"  tracing {label:<26} {wall:7.2f} s  {wall / base:5.2f}x   {size / 1e6:8.2f} MB")


if __name__ == "__main__":
    main()
