"""The exception unit against the Armv8-A ARM (D1.10): pure, on a fake CPU state."""

import pytest

from cosim.cpu.arm64.exceptions import (EC, PSTATE_DAIF, Kind, abort_syndrome, enter_el1, esr, vector_offset)

EL0T, EL1T, EL1H = 0b0000, 0b0100, 0b0101
VBAR = 0x4000_0800


@pytest.mark.parametrize("pstate, kind, offset", [
    (EL1T, Kind.SYNC, 0x000), (EL1T, Kind.IRQ, 0x080), (EL1H, Kind.SYNC, 0x200), (EL1H, Kind.IRQ, 0x280),
    (EL1H, Kind.FIQ, 0x300), (EL0T, Kind.SYNC, 0x400), (EL0T, Kind.IRQ, 0x480), (EL0T, Kind.SERROR, 0x580),
])
def test_vector_offsets(pstate, kind, offset):
    assert vector_offset(pstate, kind) == offset            # D1.10.2, Table D1-7


def test_svc_from_el0_banks_sp_el0_and_switches_to_sp_el1():
    entry = enter_el1(0x6000_0000 | EL0T, VBAR, Kind.SYNC, 0x2004, esr(EC.SVC64, 0x42))
    assert entry.pc == VBAR + 0x400
    assert entry.pstate == 0x6000_0000 | PSTATE_DAIF | EL1H      # NZCV kept, DAIF masked, EL1h
    assert (entry.spsr, entry.elr, entry.esr, entry.far) == (0x6000_0000, 0x2004, 0x5600_0042, None)
    # SP_EL0, SP_EL1 and the live SP after it: the live SP banked into SP_EL0, SP_EL1 live.
    assert entry.stacks(sp=0x1000, sp_el0=0, sp_el1=0x8000) == (0x1000, 0x8000, 0x8000)


def test_irq_from_el1h_keeps_the_stack_and_has_no_syndrome():
    entry = enter_el1(EL1H, VBAR, Kind.IRQ, 0x3000)
    assert entry.pc == VBAR + 0x280
    # SP_EL1 was live: banked, then reloaded.
    assert entry.stacks(sp=0x7F00, sp_el0=0x11, sp_el1=0xDEAD) == (0x11, 0x7F00, 0x7F00)
    assert entry.esr is None and entry.spsr == EL1H


def test_irq_from_el1t_uses_the_sp0_vectors_and_moves_to_sp_el1():
    entry = enter_el1(EL1T, VBAR, Kind.IRQ, 0x3000)
    assert entry.pc == VBAR + 0x080
    assert entry.stacks(sp=0x5000, sp_el0=0x22, sp_el1=0x9000) == (0x5000, 0x9000, 0x9000)


def test_nested_entry_masks_everything_until_eret():
    first = enter_el1(EL0T, VBAR, Kind.IRQ, 0x100)
    assert first.pstate & PSTATE_DAIF == PSTATE_DAIF
    second = enter_el1(first.pstate, VBAR, Kind.SYNC, 0x200, esr(EC.UNKNOWN))
    assert second.spsr == first.pstate and second.pc == VBAR + 0x200


def test_vbar_low_bits_are_ignored():
    assert enter_el1(EL1H, VBAR | 0x7FF, Kind.SYNC, 0).pc == VBAR + 0x200


def test_abort_syndromes():
    assert abort_syndrome(EL1H, instruction=False, write=True) == (0x25 << 26) | (1 << 25) | (1 << 6) | 0x10
    assert abort_syndrome(EL0T, instruction=True, write=False) == (0x20 << 26) | (1 << 25) | 0x10


def test_no_entry_to_el1_from_el2():
    with pytest.raises(ValueError):
        enter_el1(0b1001, VBAR, Kind.SYNC, 0)


def test_undefined_syndromes_name_the_trap_each_instruction_belongs_to():
    from cosim.cpu.arm64.exceptions import undefined_syndrome

    il = 1 << 25
    assert undefined_syndrome(0xD503_207F) == (0x01 << 26) | il | 0x01E0_0000          # WFI
    assert undefined_syndrome(0xD503_205F) == (0x01 << 26) | il | 0x01E0_0001          # WFE: TI = 1
    assert undefined_syndrome(0xD503_42FF) == (0x18 << 26) | il | (7 << 17) | (3 << 14) | (4 << 10) | (31 << 5) | (2 << 1)  # DAIFClr #2
    assert undefined_syndrome(0xD51B_4223) == (0x18 << 26) | il | (3 << 20) | (1 << 17) | (3 << 14) | (4 << 10) | (3 << 5) | (2 << 1)  # MSR DAIF, x3
    assert undefined_syndrome(0x9E67_0020) == (0x07 << 26) | il | 0x01E0_0000          # FMOV d0, x1
    assert undefined_syndrome(0x3D80_0000) == (0x07 << 26) | il | 0x01E0_0000          # STR q0, [x0]
    assert undefined_syndrome(0xD53B_4400) == (0x07 << 26) | il | 0x01E0_0000          # MRS x0, FPCR
    assert undefined_syndrome(0x0000_0000) == il                                      # UDF #0: unknown
    assert undefined_syndrome(None) == il                                             # unreadable
    assert undefined_syndrome(0xF940_0000) == il                                      # LDR x0, [x0]: not FP
