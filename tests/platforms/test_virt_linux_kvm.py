"""End to end on an Arm64 host: Debian's arm64 Linux on `virt-linux` with `cpu=kvm`, to a busybox shell.

Needs an Arm64 Linux host with /dev/kvm; it skips, saying why, elsewhere.
"""

import time

import pytest

from cosim import SEC
from cosim.chardev import BufferBackend
from cosim.cpu.arm64.kvm_cpu import kvm_arm64_unavailable
from cosim.images.fetch import ImageError, busybox_initramfs_image, linux_kernel
from cosim.platforms.virt import VirtLinux

from . import linux_shell

pytestmark = [pytest.mark.slow, pytest.mark.kvm]

WALL_LIMIT = 120.0          # seconds of wall time for any one wait: a hang fails, it does not stall CI


@pytest.fixture(scope="module")
def images():
    reason = kvm_arm64_unavailable()
    if reason:
        pytest.skip(f"KVM Arm64 backend: {reason}")
    try:
        return linux_kernel(), busybox_initramfs_image()
    except ImageError as error:
        pytest.skip(f"Linux images not available: {error}")


def command(board, console, text, timeout=10 * SEC):
    return linux_shell.command(board, console, text, timeout, wall_limit=WALL_LIMIT)


@pytest.fixture(scope="module")
def booted(images):
    kernel, initrd = images
    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console, cpu="kvm")
    linux_shell.boot_to_shell(board, console, 30 * SEC, 10 * SEC, wall_limit=WALL_LIMIT)
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


def test_four_vcpus_boot_to_the_shell(images):
    """cpus=4 on KVM: the host kernel's PSCI starts the secondaries; nproc says 4."""
    kernel, initrd = images
    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console, cpu="kvm", cpus=4)
    linux_shell.boot_to_shell(board, console, 30 * SEC, 10 * SEC, wall_limit=WALL_LIMIT)
    text = console.output.decode(errors="replace")
    assert "SMP: Total of 4 processors activated" in text and "Oops" not in text
    assert command(board, console, "nproc").splitlines()[0].strip() == "4"
    console.feed("poweroff\n")
    summary = board.run(until=board.sim.now + 10 * SEC)
    assert summary.stop is not None and "SYSTEM_OFF" in summary.stop.reason and summary.status == 0
