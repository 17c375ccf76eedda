"""The guest's self-hosted debug on the software CPU (DDI 0487 D2): syndromes, ELR/FAR/SPSR, the OS lock,
KDE and PSTATE.D masking, software step's states, at EL1 and EL0, in both counting modes with the same
instruction count. tests/guests/arm64/debug_arch.S says what each phase does."""

import subprocess

import pytest

from cosim import SEC
from cosim.cpu.arm64.debug import SelfHostedDebug
from cosim.platforms.virt import Virt

from .test_guests import COUNTINGS, RESULTS

IL, FSC = 1 << 25, 0x22
ISV, EX, WNR, SPSR_SS = 1 << 24, 1 << 6, 1 << 6, 1 << 21


@pytest.fixture
def symbols(arm_guest):
    """`symbols("debug_arch")`: label -> address, from the guest's ELF next to its flat binary."""

    def read(name):
        elf = arm_guest(name).with_suffix(".elf")
        out = subprocess.run(["aarch64-linux-gnu-nm", str(elf)], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"aarch64-linux-gnu-nm: {out.stderr.strip()}")
        return {name: int(value, 16) for value, _, name in (line.split() for line in out.stdout.splitlines())}

    return read


def _run(arm_guest, counting):
    board = Virt(firmware=str(arm_guest("debug_arch")), console="none", counting=counting)
    summary = board.run(until=SEC)
    read = lambda offset: board.ram.read(RESULTS + offset, 8)  # noqa: E731
    log = [tuple(read(0x100 + 64 * n + 8 * i) for i in range(5)) for n in range(read(24))]
    return board, summary, read, log


@pytest.mark.parametrize("counting", COUNTINGS)
def test_debug_exceptions_have_their_syndromes_and_masking(arm_guest, symbols, counting):
    board, summary, read, log = _run(arm_guest, counting)
    sym = symbols("debug_arch")
    data = 0x4000_0000 + RESULTS + 0x80              # virt RAM base + the offset
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    assert read(0) == 0                             # the OS lock (set at reset) blocked the breakpoint
    assert read(8) == 1                             # KDE clear, then PSTATE.D set: nothing more at EL1
    esr = [entry[0] for entry in log]
    elr = [entry[1] for entry in log]
    assert esr == [
        (0x31 << 26) | IL | FSC,                    # breakpoint, current EL
        (0x35 << 26) | IL | WNR | FSC,              # watchpoint: store
        (0x35 << 26) | IL | FSC,                    # watchpoint: load
        (0x35 << 26) | IL | WNR | FSC,              # watchpoint: store overlapping from below
        (0x33 << 26) | IL | FSC,                    # step, active-pending after unmasking D: ISV = 0
        (0x33 << 26) | IL | ISV | EX | FSC,         # step over LDXR: ISV, EX
        (0x33 << 26) | IL | ISV | FSC,              # step over ADD
        (0x32 << 26) | IL | ISV | FSC,              # EL0 (KDE clear): step, lower EL
        (0x30 << 26) | IL | FSC,                    # EL0 breakpoint
        (0x34 << 26) | IL | WNR | FSC,              # EL0 watchpoint
        (0x15 << 26) | IL,                          # SVC back to EL1
        (0x33 << 26) | IL | FSC,                    # unmasking D where an ERET would have set SS: pending
    ]
    assert elr == [sym[name] for name in ("t2", "w_st", "w_ld", "w_ov", "s0", "s1", "s2", "e_bp", "e_bp", "e_st")] \
        + [sym["e_st"] + 8, sym["l8"]]
    # FAR: the watched byte the access reached first; the store had not happened when the handler ran.
    assert [log[i][2] for i in (1, 2, 3, 9)] == [data + 3, data, data, data]
    assert log[1][4] == 0 and log[2][4] == 0x55 << 24
    # SPSR.SS is 0 in each step exception (taken from active-pending) and at the EL0 breakpoint (step off).
    assert [bool(entry[3] & SPSR_SS) for entry in log[4:9]] == [False] * 5
    assert read(0x80) == 0x55 | 0x55 << 24          # each watched store happened once resumed


@pytest.mark.parametrize("guest", ["debug_arch", "el0_traps", "el0_counter", "unmapped", "svc_el0", "prefetch_abort"])
def test_both_countings_retire_the_same_instructions(arm_guest, guest):
    """A trapped or faulting instruction (and one a debug exception stops) does not retire, SVC does:
    the same count, and so the same simulated time, whether counted per block or per instruction."""
    counts = []
    for counting in COUNTINGS:
        board = Virt(firmware=str(arm_guest(guest)), console="none", counting=counting)
        summary = board.run(until=SEC)
        counts.append((board.cpu0.backend.retired(), summary.sim_time))
    assert counts[0] == counts[1]


def test_mmu_data_and_prefetch_aborts_have_their_syndromes(arm_guest, symbols):
    board = Virt(firmware=str(arm_guest("prefetch_abort")), console="none")
    summary = board.run(until=SEC)
    records = [board.ram.read(RESULTS + 8 * i, 8) for i in range(6)]
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    assert records == [(0x25 << 26) | IL | 0x05, symbols("prefetch_abort")["load"], 0x8000_0000,  # data, level 1
                       (0x21 << 26) | IL | 0x05, 0x8000_0000, 0x8000_0000]                      # prefetch


def test_registers_read_back_and_the_os_lock_status():
    debug = SelfHostedDebug(0x10305106)              # QEMU -cpu max: 6 breakpoints, 4 watchpoints
    assert (len(debug.breakpoints), len(debug.watchpoints)) == (6, 4)
    assert debug.read_sysreg("OSLSR_EL1") == 0b1010  # OSLM = 0b10, OSLK set by reset
    debug.write_sysreg("OSLAR_EL1", 0)
    assert debug.read_sysreg("OSLSR_EL1") == 0b1000
    debug.write_sysreg("DBGBVR5_EL1", 0xFFFF_0000_1234_5677)
    assert debug.read_sysreg("DBGBVR5_EL1") == 0xFFFF_0000_1234_5674      # VA[48:2], sign-extended from bit 48
    debug.write_sysreg("DBGBVR2_EL1", 0x0001_0000_0000_0000)
    assert debug.read_sysreg("DBGBVR2_EL1") == 0xFFFF_0000_0000_0000
    debug.write_sysreg("DBGBCR9_EL1", 0x1E7)                                  # beyond BRPs: RAZ/WI
    assert debug.read_sysreg("DBGBCR9_EL1") == 0
    debug.write_sysreg("DBGWCR1_EL1", 0xFFFF_FFFF)
    assert debug.read_sysreg("DBGWCR1_EL1") == 0x1F1F_FFFF


@pytest.mark.parametrize("wvr, bas, access, expected", [
    (0x1000, 0xFF, (0x1007, 1), 0x1007),
    (0x1004, 0xFF, (0x1000, 8), 0x1004),             # DBGWVR[2] set: only BAS[3:0], from the word
    (0x1004, 0xFF, (0x1008, 1), None),
    (0x1000, 0b0100_0000, (0x1000, 8), 0x1006),      # one byte selected
    (0x1000, 0b0100_0000, (0x1000, 4), None),
])
def test_watchpoint_byte_selection(wvr, bas, access, expected):
    debug = SelfHostedDebug(0x10305106)
    debug.write_sysreg("OSLAR_EL1", 0)
    debug.write_sysreg("MDSCR_EL1", 1 << 15)
    debug.write_sysreg("DBGWVR0_EL1", wvr)
    debug.write_sysreg("DBGWCR0_EL1", bas << 5 | 3 << 3 | 2 << 1 | 1)
    assert debug.watchpoint_hit(*access, write=True, pstate=0) == expected    # EL0: enabled without KDE


EL1H, EL0T, PSTATE_D = 0b0101, 0b0000, 1 << 9


def test_when_debug_exceptions_are_enabled():
    """D2.10: not under the OS lock or the OS double lock (DLK with CORENPDRQ clear); from EL1 with KDE
    set and PSTATE.D clear; from EL0 whatever KDE and D say."""
    debug = SelfHostedDebug(0x10305106)
    debug.write_sysreg("MDSCR_EL1", 1 << 13)
    assert not debug.enabled(EL1H) and not debug.enabled(EL0T)          # the OS lock, set at reset
    debug.write_sysreg("OSLAR_EL1", 0)
    assert debug.enabled(EL1H) and not debug.enabled(EL1H | PSTATE_D) and debug.enabled(EL0T | PSTATE_D)
    debug.write_sysreg("OSDLR_EL1", 1)
    assert not debug.enabled(EL0T)                                      # double lock
    debug.write_sysreg("DBGPRCR_EL1", 1)
    assert debug.enabled(EL0T)                                          # CORENPDRQ: the double lock is off
    debug.write_sysreg("MDSCR_EL1", 0)
    assert not debug.enabled(EL1H) and debug.enabled(EL0T)              # KDE clear: EL0 still


@pytest.mark.parametrize("pmc, el1, el0", [(0b01, True, False), (0b10, False, True), (0b11, True, True)])
def test_a_breakpoint_matches_at_the_levels_pmc_selects(pmc, el1, el0):
    debug = SelfHostedDebug(0x10305106)
    debug.write_sysreg("OSLAR_EL1", 0)
    debug.write_sysreg("MDSCR_EL1", 1 << 15 | 1 << 13)
    debug.write_sysreg("DBGBVR0_EL1", 0x4008_0000)
    debug.write_sysreg("DBGBCR0_EL1", 0xF << 5 | pmc << 1 | 1)
    assert debug.breakpoint_addresses() == {0x4008_0000}
    assert (debug.breakpoint_hit(0x4008_0000, EL1H), debug.breakpoint_hit(0x4008_0000, EL0T)) == (el1, el0)
    assert not debug.breakpoint_hit(0x4008_0004, EL1H) and not debug.breakpoint_hit(0x4008_0004, EL0T)
    debug.write_sysreg("MDSCR_EL1", 1 << 13)                            # MDE clear
    assert not debug.breakpoint_hit(0x4008_0000, EL1H) and not debug.breakpoint_hit(0x4008_0000, EL0T)


@pytest.mark.parametrize("counting", COUNTINGS)
def test_a_watched_device_register_never_sees_the_abandoned_store(arm_guest, counting):
    from cosim.chardev import BufferBackend

    console = BufferBackend()
    board = Virt(firmware=str(arm_guest("debug_mmio")), console=console, counting=counting)
    summary = board.run(until=SEC)
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    assert console.output == b"WA\n"
    assert (board.ram.read(RESULTS, 8), board.ram.read(RESULTS + 8, 8)) == ((0x35 << 26) | IL | WNR | FSC, 0x0900_0000)


def test_an_unprivileged_store_matches_an_el0_watchpoint(arm_guest, symbols):
    board = Virt(firmware=str(arm_guest("debug_unpriv")), console="none")
    summary = board.run(until=SEC)
    taken, esr, elr, far = (board.ram.read(RESULTS + 8 * i, 8) for i in range(4))
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    assert (taken, esr, elr, far) == (1, (0x35 << 26) | IL | WNR | FSC, symbols("debug_unpriv")["unpriv"],
                                      0x4000_0000 + RESULTS + 0x81)


@pytest.mark.parametrize("counting", COUNTINGS)
def test_a_watchpoint_on_a_store_pairs_second_half_abandons_the_whole_store(arm_guest, counting):
    board = Virt(firmware=str(arm_guest("debug_pair")), console="none", counting=counting)
    summary = board.run(until=SEC)
    data = 0x4000_0000 + RESULTS + 0x80
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    assert [board.ram.read(RESULTS + 8 * i, 8) for i in range(6)] == [0, 0, data - 8, 0x1111, 0x2222, data + 8]
