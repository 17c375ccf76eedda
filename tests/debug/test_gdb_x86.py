"""gdb-multiarch debugging the bare-metal x86-64 guests on `pc` (KVM)."""

import re

import pytest

from cosim.kvm import kvm_unavailable


@pytest.fixture(autouse=True)
def kvm():
    reason = kvm_unavailable()
    if reason:
        pytest.skip(f"needs KVM: {reason}")


def test_registers_memory_stepi_breakpoints_and_continue_to_the_guest_exit(guest_elf, debug):
    guest = guest_elf("x86_64", "timer_hlt")
    session = debug(["pc", "--image", str(guest.elf)], [
        "info registers rip rsp eflags cs ss",
        "x/3xb $pc",
        "stepi",
        "p/x $rsp",
        "break tick",
        "continue",
        "continue",
        "x/2xg 0x200000",
        "monitor time",
        "delete",
        "hbreak unexpected",
        "hbreak tick",
        "continue",
        "delete",
        "continue",
    ], guest.elf)
    out = session.gdb
    assert re.search(r"rip\s+0x100000\s", out) and re.search(r"cs\s+0x8\s", out)   # held at the ELF entry
    assert "0x100000 <_start>:\t0x48\t0xc7\t0xc4" in out                            # mov $STACK_TOP, %rsp
    assert "$1 = 0x80000" in out                                                     # stepped over it
    assert out.count("Breakpoint 1, 0x00000000001000eb in tick ()") == 2
    assert re.search(r"0x200000:\s+0x0000000000000001\s+0x0000000000000000", out)   # one tick counted so far
    ps = int(re.search(r"simulated time: [^(]+\((\d+) ps\)", out).group(1))
    assert 1_000_000_000 <= ps < 1_100_000_000                                       # the 2nd tick: ~1 ms in
    assert "Breakpoint 3, 0x00000000001000eb in tick ()" in out                      # a hardware breakpoint
    assert "exited normally" in out
    assert session.status == 0 and "SIMCTL_EXIT" in session.cosim


def test_a_write_watchpoint_on_the_tick_counter(guest_elf, debug):
    guest = guest_elf("x86_64", "timer_hlt")
    session = debug(["pc", "--image", str(guest.elf)], [
        "watch *(long *)0x200000", "continue", "p $pc", "delete", "continue"], guest.elf)
    if "not hardware accelerated" in session.cosim:
        # Seen here: KVM emulating its guests applies no data breakpoint from DR7, so the run just ends.
        pytest.skip("KVM on this host emulates its guests and ignores data breakpoints (DR7)")
    assert "Old value = 0\nNew value = 1" in session.gdb
    assert "exited normally" in session.gdb and session.status == 0
