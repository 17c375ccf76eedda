"""End to end on an Arm64 host: Debian's arm64 Linux on `virt-linux` with `cpu=kvm`, to a busybox shell.

Needs an Arm64 Linux host with /dev/kvm, and the `virt-linux` platform and its
pinned images (the Linux issue's work: `VirtLinux`, `linux_kernel`,
`busybox_initramfs_image`); it skips, saying which is missing, elsewhere.
"""

import time

import pytest

from cosim import MS, SEC
from cosim.chardev import BufferBackend
from cosim.cpu.arm64.kvm_cpu import kvm_arm64_unavailable

pytestmark = [pytest.mark.slow, pytest.mark.kvm]

PROMPT = "/root # "
WALL_LIMIT = 120.0          # seconds of wall time for any one wait: a hang fails, it does not stall CI


@pytest.fixture(scope="module")
def images():
    reason = kvm_arm64_unavailable()
    if reason:
        pytest.skip(f"KVM Arm64 backend: {reason}")
    try:
        from cosim.images.fetch import ImageError, busybox_initramfs_image, linux_kernel
        from cosim.images.initramfs import BANNER
        from cosim.platforms.virt import VirtLinux
    except ImportError as error:
        pytest.skip(f"the virt-linux platform and its Linux images are not in this tree ({error})")
    try:
        return VirtLinux, BANNER, linux_kernel(), busybox_initramfs_image()
    except ImageError as error:
        pytest.skip(f"Linux images not available: {error}")


def wait_for(board, console, marker, timeout, start=0):
    deadline, wall = board.sim.now + timeout, time.perf_counter() + WALL_LIMIT
    while marker not in console.output[start:].decode(errors="replace"):
        if board.sim.now >= deadline or time.perf_counter() > wall or board.sim.stop_request is not None:
            raise AssertionError(f"no {marker!r} after {board.sim.now / SEC:.3f} s simulated; output ends:\n"
                                 f"{console.output[-600:].decode(errors='replace')}")
        board.run(until=min(deadline, board.sim.now + 20 * MS))
    return console.output[start:].decode(errors="replace")


def command(board, console, text, timeout=10 * SEC):
    start = len(console.output)
    console.feed(text + "\n")
    return wait_for(board, console, "\n" + PROMPT, timeout, start).split("\n", 1)[-1]


@pytest.fixture(scope="module")
def booted(images):
    platform, banner, kernel, initrd = images
    console = BufferBackend()
    board = platform(kernel=str(kernel), initrd=str(initrd), console=console, cpu="kvm")
    wait_for(board, console, banner, 30 * SEC)
    wait_for(board, console, PROMPT, 10 * SEC, console.output.find(banner.encode()))
    return board, console


def test_linux_boots_on_kvm_with_the_timer_on_the_gic_model(booted):
    board, console = booted
    text = console.output.decode(errors="replace")
    assert "Machine model: cosim virt" in text and "Oops" not in text
    assert command(board, console, "uname -m").splitlines()[0].strip() == "aarch64"
    table = command(board, console, "cat /proc/interrupts")
    assert any("27" in line and "arch_timer" in line and line.split()[1] != "0" for line in table.splitlines()), table


def test_sleep_on_kvm(booted):
    board, console = booted
    before, wall = board.sim.now, time.perf_counter()
    command(board, console, "sleep 2", timeout=10 * SEC)
    wall = time.perf_counter() - wall
    assert board.sim.now - before >= 2 * SEC
    if board.cpu0.backend.features.wfx_exit:
        assert wall < 2.0 and board.cpu0.idle_skipped >= SEC     # idle time jumps
    else:
        assert wall >= 1.5                                        # the fallback: idle time is wall time


def test_poweroff_on_kvm(booted):
    board, console = booted
    console.feed("poweroff\n")
    summary = board.run(until=board.sim.now + 10 * SEC)
    assert summary.stop is not None and "SYSTEM_OFF" in summary.stop.reason and summary.status == 0
