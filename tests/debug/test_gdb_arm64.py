"""gdb-multiarch debugging bare-metal guests on `virt` with the software Arm64 CPU (unicorn)."""

import re

import pytest


def _on_virt(guest_elf, debug, name, counting, commands):
    """gdb running `commands` against tests/guests/arm64/<name>.S on virt with the given counting."""
    guest = guest_elf("aarch64", name)
    return debug(["virt", "-P", f"firmware={guest.bin}", "-P", f"counting={counting}"], commands, guest.elf)


@pytest.mark.parametrize("counting", ["block", "instruction"])
def test_registers_memory_stepi_breakpoint_and_continue_to_the_guest_exit(guest_elf, debug, counting):
    session = _on_virt(guest_elf, debug, "hello", counting, [
        "info registers pc x0 cpsr",
        "x/4xw 0",
        "stepi",
        "info registers pc",
        "break *0x18",
        "continue",
        "info registers pc x1",
        "p/x $x3",
        "monitor time",
        "delete",
        "hbreak *0x20",
        "continue",
        "info registers pc",
        "delete",
        "continue",
    ])
    out = session.gdb
    assert re.search(r"pc\s+0x0\s", out)                                   # held before its first instruction
    assert re.search(r"x0\s+0x40000000", out)                              # virt's boot state: the DTB
    assert "0x580001c1\t0x52806023\t0xb9003023\t0x10000102" in out          # the guest's first words
    assert re.search(r"pc\s+0x4\s", out)                                   # one instruction stepped
    assert "Breakpoint 1, 0x0000000000000018" in out
    assert re.search(r"x1\s+0x9000000", out)                               # UART_DR
    assert "$1 = 0x68" in out                                              # 'h', about to be written
    assert "simulated time: 6 ns" in out                                   # six instructions at 1 GHz
    assert "Breakpoint 2, 0x0000000000000020" in out                       # hbreak: after the message
    assert "exited normally" in out
    assert session.status == 0 and "SYSTEM_OFF" in session.cosim


def test_a_watchpoint_stops_at_the_store_with_old_and_new_values_and_time_stands_still(guest_elf, debug):
    guest = guest_elf("aarch64", "timer_wfi")
    session = debug(["virt", "-P", f"firmware={guest.bin}"], [
        "watch *(long *)0x40200000",
        "continue",
        "monitor time",
        "monitor time",
        "continue",
        "x/2xw 0x40200000",
        "monitor time",
        "delete",
        "awatch *(int *)0x40200008",
        "continue",
        "delete",
        "monitor map",
        "continue",
    ], guest.elf)
    out = session.gdb
    assert "Old value = 0\nNew value = 1" in out and "Old value = 1\nNew value = 2" in out
    assert re.search(r"0x40200000:\s+0x00000002\s+0x00000000", out)
    # The timer ticks every 1 ms; while gdb holds the CPU the clock does not move.
    times = [int(t) for t in re.findall(r"simulated time: [^(]+\((\d+) ps\)", out)]
    assert len(times) == 3 and times[0] == times[1] and 1_000_000_000 <= times[0] < 1_001_000_000
    assert 2_000_000_000 <= times[2] < 2_001_000_000
    assert "Hardware access (read/write) watchpoint 2: *(int *)0x40200008" in out and "Value = 27" in out
    assert "sysbus (64-bit)" in out and re.search(r"0x0+9000000\s+0x0+9000fff\s+4 KiB\s+uart0", out)  # monitor map
    assert session.status == 0 and "SYSTEM_OFF" in session.cosim


@pytest.mark.parametrize("counting", ["block", "instruction"])
def test_gdb_breakpoints_and_stepi_come_before_the_guests_own_debug_exceptions(guest_elf, debug, counting):
    """debug_arch.S programs a hardware breakpoint at t2 and steps s0..s2 itself: gdb's breakpoint at t2
    stops there first (the guest's exception follows on continue), gdb's breakpoint at s1 stops there with
    the guest's step exception pending, and the guest's own log is complete at the end."""
    session = _on_virt(guest_elf, debug, "debug_arch", counting, [
        "break *t2",
        "continue",
        "info registers pc",
        "delete",
        "break *s1",
        "continue",
        "info registers pc",
        "stepi",
        "info registers pc",
        "delete",
        "break *(l8 + 4)",
        "continue",
        "x/gx 0x40200018",
        "delete",
        "continue",
    ])
    out = session.gdb
    assert "Breakpoint 1, 0x" in out and re.search(r"pc\s+0x\w+\s+0x\w+ <t2>", out)
    assert re.search(r"pc\s+0x\w+\s+0x\w+ <s1>", out)
    # gdb stopped at s1 with the guest's step exception pending (s0 was stepped): stepi takes it and
    # stops at the vector, as it does for any exception.
    assert re.search(r"pc\s+0x\w+\s+0x\w+ <vectors\+512>", out)
    assert re.search(r"0x40200018:\s+0x000000000000000c", out)              # the guest logged all 12 of its exceptions
    assert session.status == 0 and "SYSTEM_OFF" in session.cosim
