"""End to end: Debian 12's arm64 Linux on `virt` (software CPU) to a busybox shell, over the PL011."""

import re
import time

import pytest

from cosim import SEC
from cosim.chardev import BufferBackend
from cosim.images.initramfs import BANNER

from .linux_shell import boot_to_shell, command, images  # noqa: F401  (images: a fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def booted(images):
    from cosim.platforms.virt import VirtLinux

    kernel, initrd = images
    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console)
    wall = time.perf_counter()
    boot_to_shell(board, console, 10 * SEC, 5 * SEC)
    board.boot_wall = time.perf_counter() - wall
    return board, console


def test_boots_debian_kernel_to_the_shell(booted):
    board, console = booted
    assert re.search(r"Linux version 6\.1\.\S+-cloud-arm64", console.text)   # whichever build the archive has
    assert "Machine model: cosim virt" in console.text
    assert "Run /init as init process" in console.text and BANNER in console.text
    assert "Oops" not in console.text and "WARNING:" not in console.text


def test_linux_drives_the_software_cpus_pmu(booted):
    board, console = booted
    assert "hw perfevents: enabled with armv8_pmuv3 PMU driver, 7 counters available" in console.text


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


def test_rtc_pl031_sets_the_clock_from_rtc_start_and_counts_simulated_seconds(booted):
    board, console = booted
    assert "rtc-pl031 9010000.pl031: registered as rtc0" in console.text
    assert "setting system clock to 2000-01-01T00:00:00 UTC (946684800)" in console.text
    before = board.sim.now // SEC
    seconds = int(command(board, console, "cat /sys/class/rtc/rtc0/since_epoch").splitlines()[0])
    assert 946_684_800 + before <= seconds <= 946_684_800 + board.sim.now // SEC


def test_gpio_pl061_pins_are_linux_gpios_both_ways(booted):
    board, console = booted
    assert "pl061_gpio 9030000.pl061: PL061 GPIO chip registered" in console.text
    base = int(command(board, console, "cat /sys/class/gpio/gpiochip*/base").splitlines()[0])
    command(board, console, f"echo {base} > /sys/class/gpio/export; echo out > /sys/class/gpio/gpio{base}/direction")
    command(board, console, f"echo 1 > /sys/class/gpio/gpio{base}/value")
    assert board.gpio.pin_out[0].level
    command(board, console, f"echo 0 > /sys/class/gpio/gpio{base}/value")
    assert not board.gpio.pin_out[0].level
    board.gpio.pin_in[5](True)                   # the outside world drives pin 5
    command(board, console, f"echo {base + 5} > /sys/class/gpio/export")
    assert command(board, console, f"cat /sys/class/gpio/gpio{base + 5}/value").splitlines()[0].strip() == "1"


def test_sleep_jumps_over_idle_time(booted):
    board, console = booted
    before = board.sim.now
    command(board, console, "sleep 5", timeout=10 * SEC)
    assert board.sim.now - before >= 5 * SEC
    assert board.cpu0.idle_skipped >= 4 * SEC        # idle time jumped, not run (wall figures: bench_linux.py)


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
    boot_to_shell(board, console, 10 * SEC, 5 * SEC)
    assert command(board, console, "uname -m").splitlines()[0].strip() == "aarch64"
    console.feed("poweroff\n")
    summary = board.run(until=board.sim.now + 10 * SEC)
    assert summary.stop is not None and "SYSTEM_OFF" in summary.stop.reason


def test_four_cpus_boot_to_the_shell_and_share_the_work(images):
    """cpus=4: Linux brings the secondaries up with PSCI CPU_ON, and each takes its own timer's ticks."""
    from cosim.platforms.virt import VirtLinux

    kernel, initrd = images
    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console, cpus=4)
    boot_to_shell(board, console, 10 * SEC, 5 * SEC)
    assert "SMP: Total of 4 processors activated" in console.text
    for c in range(1, 4):                                              # MPIDR Aff0 = the index
        assert f"CPU{c}: Booted secondary processor 0x000000000{c}" in console.text
    assert "hw perfevents: enabled with armv8_pmuv3 PMU driver, 7 counters available" in console.text
    assert "Oops" not in console.text and "WARNING:" not in console.text
    assert command(board, console, "nproc").splitlines()[0].strip() == "4"
    table = command(board, console, "cat /proc/interrupts")
    timer = next(line.split() for line in table.splitlines() if line.rstrip().endswith("arch_timer"))
    assert all(int(n) > 0 for n in timer[1:5]), table                 # PPI 27 taken on every CPU
    ipis = next(line.split() for line in table.splitlines() if "Rescheduling" in line)
    assert sum(int(n) for n in ipis[1:5]) > 0, table                  # SGIs between CPUs
    assert all(cpu.instructions > 0 for cpu in board.cpu_list)
    console.feed("poweroff\n")
    summary = board.run(until=board.sim.now + 10 * SEC)
    assert summary.stop is not None and "SYSTEM_OFF" in summary.stop.reason and summary.status == 0
