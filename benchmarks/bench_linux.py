"""Debian's arm64 Linux on cosim's virt-linux vs QEMU (TCG), measured in the same run.

    python benchmarks/bench_linux.py

Both boot the same kernel, initramfs and command line as separate processes
driven over the serial console: time to the busybox shell prompt, then
`sleep 10`, with 1 and with 4 CPUs (QEMU -smp 4: its multi-threaded TCG uses
the host's cores; cosim's CPUs take turns on one). cosim is also measured
in-process, without interpreter start-up, for its guest MIPS and simulated/wall ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Console, QemuAarch64  # noqa: E402

from cosim import SEC  # noqa: E402
from cosim.chardev import BufferBackend  # noqa: E402
from cosim.images.fetch import busybox_initramfs_image, linux_kernel  # noqa: E402
from cosim.images.initramfs import BANNER  # noqa: E402

PROMPT = b"/root # "


def drive(console: Console) -> tuple[float, float]:
    console.expect(BANNER.encode(), timeout=600)
    prompt = console.expect(PROMPT)
    console.send(b"sleep 10\n")
    console.expect(b"sleep 10")
    before = time.perf_counter() - console.start
    done = console.expect(PROMPT, timeout=120)
    console.send(b"poweroff\n")
    console.close(timeout=30)
    return prompt, done - before


def in_process(kernel: Path, initrd: Path, bootargs: str, cpus: int = 1) -> None:
    from cosim.platforms.virt import VirtLinux

    start = time.perf_counter()
    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), bootargs=bootargs, console=console, cpus=cpus)
    console.run_until(BANNER, 20 * SEC)
    console.run_until(PROMPT.decode(), 5 * SEC, start=console.output.find(BANNER.encode()))
    boot, boot_sim = time.perf_counter() - start, board.sim.now / SEC
    instructions = sum(cpu.instructions for cpu in board.cpu_list)
    sim0, wall0 = board.sim.now, time.perf_counter()
    mark = len(console.output)
    console.feed("sleep 10\n")
    console.run_until("\n" + PROMPT.decode(), 20 * SEC, start=mark)
    sleep_wall, sleep_sim = time.perf_counter() - wall0, (board.sim.now - sim0) / SEC
    label = f"cosim in-process, {cpus} CPU{'s' if cpus > 1 else ''}"
    print(f"  {label}: boot to the shell {boot:.2f} s wall ({boot_sim:.2f} s simulated, "
          f"{instructions / 1e6:.0f} M instructions, {instructions / boot / 1e6:.0f} guest MIPS over the boot)")
    print(f"  {label}: sleep 10 took {sleep_wall:.3f} s wall for {sleep_sim:.3f} s simulated "
          f"(simulated/wall {sleep_sim / sleep_wall:.0f}x)")


def main() -> None:
    from cosim.platforms.virt import VirtLinux

    kernel, initrd = linux_kernel(), busybox_initramfs_image()
    bootargs = VirtLinux.properties()["bootargs"].default
    print(f"Debian 12 arm64 Linux ({kernel.name}) to a busybox shell, then `sleep 10` (wall seconds, whole processes)")
    print(f"  {'':<30}{'boot to shell':>14}{'sleep 10':>10}{'total':>8}")
    rows = {}
    for cpus in (1, 4):
        qemu = drive(QemuAarch64(kernel=kernel, initrd=initrd, append=bootargs, memory="256M", smp=cpus))
        cosim = drive(Console([sys.executable, "-m", "cosim", "run", "virt-linux", "-P", f"kernel={kernel}",
                               "-P", f"initrd={initrd}", "-P", f"cpus={cpus}"]))
        rows[cpus] = qemu, cosim
        for label, (boot, sleep) in ((f"QEMU TCG (peer), {cpus} CPU", qemu),
                                     (f"cosim virt (unicorn), {cpus} CPU", cosim)):
            print(f"  {label:<30}{boot:>14.2f}{sleep:>10.2f}{boot + sleep:>8.2f}")
    for cpus, ((qemu_boot, qemu_sleep), (cosim_boot, cosim_sleep)) in rows.items():
        both = (cosim_boot + cosim_sleep) / (qemu_boot + qemu_sleep)
        print(f"  {cpus} CPU ratio cosim/QEMU: boot {cosim_boot / qemu_boot:.2f}x (goal <= 2x), sleep "
              f"{cosim_sleep / qemu_sleep:.3f}x, boot + sleep {both:.2f}x (goal < 1x)")
    for cpus in (1, 4):
        in_process(kernel, initrd, bootargs, cpus)


if __name__ == "__main__":
    main()
