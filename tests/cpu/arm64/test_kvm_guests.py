"""The KVM Arm64 backend on a real Arm64 host: what only KVM has (fallback idling, PMU budget, teardown, U-Boot).

The guests shared with the software CPU run in test_guests.py (parametrized by
backend). Everything here skips on hosts that are not Arm64 Linux with /dev/kvm.
"""

import os
import time

import pytest

from cosim import MS, SEC
from cosim.chardev import BufferBackend
from cosim.cpu.arm64.kvm_cpu import kvm_arm64_unavailable
from cosim.images.fetch import ImageError, uboot_image
from cosim.platforms.virt import Virt

pytestmark = pytest.mark.kvm

RESULTS = 0x0020_0000
# How late the fallback's wall-clock kick may end the last run: the guest's clock then leads simulated
# time by that much on top of the quantum (the lead is absorbed at the next idle jump, and a run that stops
# has none). Inside the emulated Arm64 host (QEMU TCG) a kick once came 17 us over a 1 ms quantum.
LATE_KICK = 5 * MS


@pytest.fixture(autouse=True)
def arm64_kvm():
    reason = kvm_arm64_unavailable()
    if reason:
        pytest.skip(f"KVM Arm64 backend: {reason}")


def kvm_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target == "/dev/kvm" or "kvm-vm" in target or "kvm-vcpu" in target
    return count


def test_without_the_wfx_exit_idle_time_follows_wall_time(arm_guest):
    console = BufferBackend()
    board = Virt(firmware=str(arm_guest("timer_wfi")), console=console, cpu="kvm", kvm_wfx="off")
    wall = time.perf_counter()
    summary = board.run(until=5 * SEC)
    wall = time.perf_counter() - wall
    assert board.ram.read(RESULTS, 8) == 1000
    # 1000 ticks of 1 ms on the guest's own clock, each re-armed by the handler once delivered (on a slow host
    # delivery takes a noticeable part of a tick); simulated time follows that clock, within a quantum
    # and the lateness of the kick that ended the last run.
    clock = board.cpu0.backend.guest_clock
    assert clock >= SEC and abs(summary.sim_time - clock) <= board.quantum + LATE_KICK
    assert 0.8 < wall < 5                                 # the guest really waited: about real time
    assert board.cpu0.idle_skipped == 0 and board.cpu0.exits["budget"] > 100


def test_description_names_the_budget_source_and_the_idle_mode(arm_guest):
    board = Virt(firmware=str(arm_guest("hello")), console=BufferBackend(), cpu="kvm")
    text = board.cpu0.backend.description
    assert "budget:" in text and ("idle exit on WFI/WFE" in text or "no WFx exit" in text)
    board.run(until=SEC)


def test_teardown_releases_every_kvm_fd(arm_guest):
    before = kvm_fds()
    board = Virt(firmware=str(arm_guest("hello")), console=BufferBackend(), cpu="kvm")
    assert kvm_fds() > before
    board.run(until=SEC)
    board.cpu0.backend.close()
    assert kvm_fds() == before


@pytest.mark.slow
def test_uboot_reaches_its_prompt_on_kvm():
    try:
        firmware = uboot_image()
    except ImageError as error:
        pytest.skip(f"U-Boot image not available: {error}")
    console = BufferBackend()
    board = Virt(firmware=str(firmware), console=console, cpu="kvm")
    console.run_until("Hit any key to stop autoboot", timeout=10 * SEC)
    console.feed("\n")
    console.run_until("=> ", timeout=5 * SEC, start=len(console.output) - 1)
    start = len(console.output)
    console.feed("version\n")
    out = console.run_until("\n=> ", timeout=5 * SEC, start=start)
    assert "U-Boot 20" in out                  # whichever release the archive has (2023.01 in Debian 12)
    assert board.sim.now > 10 * MS
