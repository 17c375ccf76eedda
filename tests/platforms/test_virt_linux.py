"""End to end: Debian 12's arm64 Linux on `virt` (software CPU) to a busybox shell, over the PL011."""

import re
import time

import pytest

from cosim import MS, SEC
from cosim.chardev import BufferBackend
from cosim.images.fetch import ImageError, busybox_initramfs_image, linux_kernel
from cosim.images.initramfs import BANNER

pytestmark = pytest.mark.slow

PROMPT = "/root # "                 # PS1 from the initramfs's /etc/profile
WALL_LIMIT = 300.0          # seconds of wall time for any one wait: a hang fails, it does not stall CI


@pytest.fixture(scope="module")
def images():
    try:
        return linux_kernel(), busybox_initramfs_image()
    except ImageError as error:
        pytest.skip(f"Linux images not available: {error}")


def wait_for(board, console, marker, timeout, start=0):
    """Run until `marker` is in the output after `start`, bounded in simulated and wall time."""
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
    out = wait_for(board, console, "\n" + PROMPT, timeout, start)
    return out.split("\n", 1)[1] if "\n" in out else out   # drop the echoed command line


@pytest.fixture(scope="module")
def booted(images):
    from cosim.platforms.virt import VirtLinux

    kernel, initrd = images
    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console)
    wall = time.perf_counter()
    wait_for(board, console, BANNER, 10 * SEC)
    wait_for(board, console, PROMPT, 5 * SEC, console.output.find(BANNER.encode()))
    board.boot_wall = time.perf_counter() - wall
    return board, console


def test_boots_debian_kernel_to_the_shell(booted):
    board, console = booted
    assert "Linux version 6.1.0-50-cloud-arm64" in console.text
    assert "Machine model: cosim virt" in console.text
    assert "Run /init as init process" in console.text and BANNER in console.text
    assert "Oops" not in console.text and "WARNING:" not in console.text


def test_uname_reports_aarch64(booted):
    assert command(*booted, "uname -m").splitlines()[0].strip() == "aarch64"


def test_proc_interrupts_counts_timer_and_uart_on_the_gic(booted):
    board, console = booted
    table = command(board, console, "cat /proc/interrupts")
    counts = {}
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].endswith(":") and fields[1].isdigit():
            counts[" ".join(fields[2:])] = int(fields[1])
    timer = [n for name, n in counts.items() if name.startswith("GIC-0 27 ") and name.endswith("arch_timer")]
    uart = [n for name, n in counts.items() if name.startswith("GIC-0 33 ") and name.endswith("uart-pl011")]
    assert timer and timer[0] > 0, table
    assert uart and uart[0] > 0, table


def test_sleep_advances_simulated_time_far_faster_than_wall_time(booted):
    board, console = booted
    before, wall = board.sim.now, time.perf_counter()
    command(board, console, "sleep 5", timeout=10 * SEC)
    assert board.sim.now - before >= 5 * SEC
    assert time.perf_counter() - wall < 5.0
    assert board.cpu0.idle_skipped >= 4 * SEC


def test_poweroff_ends_the_run_cleanly(booted):
    board, console = booted
    console.feed("poweroff\n")
    summary = board.run(until=board.sim.now + 10 * SEC)
    assert summary.stop is not None and "SYSTEM_OFF" in summary.stop.reason and summary.status == 0
    assert re.search(r"reboot: Power down", console.text)


def test_exact_instruction_counting_boots_the_same_kernel(images):
    """The per-instruction counter (slower, exact mid-block time) runs Linux as well."""
    from cosim.platforms.virt import VirtLinux

    kernel, initrd = images
    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console, counting="instruction")
    wait_for(board, console, BANNER, 10 * SEC)
    wait_for(board, console, PROMPT, 5 * SEC, console.output.find(BANNER.encode()))
    assert command(board, console, "uname -m").splitlines()[0].strip() == "aarch64"
    console.feed("poweroff\n")
    summary = board.run(until=board.sim.now + 10 * SEC)
    assert summary.stop is not None and "SYSTEM_OFF" in summary.stop.reason
