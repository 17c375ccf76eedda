"""RegisterBatch: unicorn registers read and written in one native call agree with the binding's own calls."""

import pytest
from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, Uc
from unicorn import arm64_const as A

from cosim.cpu.arm64._regbatch import RegisterBatch

SCTLR_EL1, TPIDR_EL1 = (3, 0, 1, 0, 0), (3, 0, 13, 0, 4)


def test_reads_what_reg_read_and_cpr_read_give():
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.reg_write(A.UC_ARM64_REG_X3, 0x1234_5678_9ABC_DEF0)
    uc.reg_write(A.UC_ARM64_REG_SP_EL1, 0xFFFF_8000_0000_1000)
    uc.cpr_write(*TPIDR_EL1, 0xFEED_F00D_0000_0001)
    batch = RegisterBatch(uc, [A.UC_ARM64_REG_X3, A.UC_ARM64_REG_PSTATE, TPIDR_EL1, A.UC_ARM64_REG_SP_EL1, SCTLR_EL1])
    assert batch.read() == [0x1234_5678_9ABC_DEF0, uc.reg_read(A.UC_ARM64_REG_PSTATE), 0xFEED_F00D_0000_0001,
                            0xFFFF_8000_0000_1000, uc.cpr_read(*SCTLR_EL1)]


def test_writes_in_order_and_a_32_bit_pstate_keeps_no_stale_high_half():
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    batch = RegisterBatch(uc, [A.UC_ARM64_REG_X0, A.UC_ARM64_REG_X0, TPIDR_EL1, A.UC_ARM64_REG_PSTATE])
    batch.write((1, 2, 0xAAAA_BBBB_CCCC_DDDD, 0x6000_03C5))
    assert uc.reg_read(A.UC_ARM64_REG_X0) == 2                     # the later write wins, as in sequence
    assert uc.cpr_read(*TPIDR_EL1) == 0xAAAA_BBBB_CCCC_DDDD
    assert uc.reg_read(A.UC_ARM64_REG_PSTATE) == 0x6000_03C5
    assert RegisterBatch(uc, [A.UC_ARM64_REG_PSTATE]).read() == [0x6000_03C5]


def test_a_write_of_the_wrong_length_is_refused():
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    with pytest.raises(ValueError):
        RegisterBatch(uc, [A.UC_ARM64_REG_X0]).write((1, 2))
