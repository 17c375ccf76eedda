"""MMU fault syndromes derived after the fact: access decoding (assembled by binutils) and
the stage 1 walk (VMSAv8-64, D5.2) on hand-built translation tables."""

import pytest

from cosim.cpu.arm64.mmu import (DCZ_BLOCK, DataAccess, Fault, FaultKind, Translation, TranslationRegs,
                                 decode_access, walk)
from cosim.toolchain import ToolchainError, assemble

REGS = {0: 0x1000, 1: 0x10, 2: (-8) & (2**64 - 1), 31: 0x8000}
PC = 0x4000_0000

# (instruction, expected access) with x0 = 0x1000, x1 = 0x10, x2 = -8, sp = 0x8000.
CASES = [
    ("ldr x3, [x0, #8]", DataAccess(0x1008, 8, False)),
    ("str w3, [x0, #-4]!", DataAccess(0xFFC, 4, True)),
    ("ldr x3, [x0], #16", DataAccess(0x1000, 8, False)),          # post-index: the base before the update
    ("ldur x3, [x0, #-1]", DataAccess(0xFFF, 8, False)),
    ("sttr w3, [x0, #4]", DataAccess(0x1004, 4, True, unprivileged=True)),
    ("ldtr x3, [x0]", DataAccess(0x1000, 8, False, unprivileged=True)),
    ("ldr x3, [x0, x1, lsl #3]", DataAccess(0x1080, 8, False)),
    ("ldrb w3, [x0, w2, sxtw]", DataAccess(0xFF8, 1, False)),
    ("ldrsw x3, [x0, #4]", DataAccess(0x1004, 4, False)),
    ("ldr q0, [x0, #16]", DataAccess(0x1010, 16, False)),
    ("strh w3, [sp, #2]", DataAccess(0x8002, 2, True)),
    ("ldp x3, x4, [sp, #-16]", DataAccess(0x7FF0, 16, False)),
    ("stp q0, q1, [x0, #32]", DataAccess(0x1020, 32, True)),
    ("stp w3, w4, [x0], #8", DataAccess(0x1000, 8, True)),
    ("ldxr x3, [x0]", DataAccess(0x1000, 8, False, exclusive=True)),
    ("stxr w5, x3, [x0]", DataAccess(0x1000, 8, True, exclusive=True)),
    ("ldaxp x3, x4, [x0]", DataAccess(0x1000, 16, False, exclusive=True)),
    ("stlr w3, [x1]", DataAccess(0x10, 4, True, exclusive=True)),
    ("ld1 {v0.16b, v1.16b}, [x0]", DataAccess(0x1000, 32, False)),
    ("st1 {v0.4s}, [x0], #16", DataAccess(0x1000, 16, True)),
    ("dc zva, x1", DataAccess(0x0, DCZ_BLOCK, True)),
    ("dc civac, x0", DataAccess(0x1000, 1, True, cache_maintenance=True)),
    ("ldr x3, .+8", DataAccess(PC + 8, 8, False)),
    ("prfm pldl1keep, [x0]", None),
    ("add x0, x0, #1", None),
    ("svc #0", None),
]


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    out = tmp_path_factory.mktemp("mmu")
    source = out / "accesses.S"
    source.write_text(".globl _start\n_start:\n" + "".join(f"    {text}\n" for text, _ in CASES))
    try:
        flat = assemble(source, "aarch64", 0, out).bin.read_bytes()
    except ToolchainError as error:
        pytest.skip(str(error))
    return [int.from_bytes(flat[4 * i:4 * i + 4], "little") for i in range(len(CASES))]


@pytest.mark.parametrize("index", range(len(CASES)), ids=[text for text, _ in CASES])
def test_decode_access(words, index):
    assert decode_access(words[index], PC, REGS.__getitem__) == CASES[index][1]


# -- the walk --------------------------------------------------------------------------
VALID, TABLE, AF = 1, 2, 1 << 10
AP_EL0, AP_RO = 1 << 6, 1 << 7                  # AP[1], AP[2]
PXN, UXN = 1 << 53, 1 << 54
PAGE = VALID | TABLE | AF                      # a level 3 page descriptor


class Tables:
    """4 KiB granule tables in a dict of physical memory; 39-bit VAs start at level 1."""

    def __init__(self):
        self.mem = {}
        self.next = 0x10_0000

    def table(self):
        self.next += 0x1000
        return self.next

    def read64(self, address):
        return self.mem.get(address, 0)

    def map(self, root, va, descriptor, level=3):
        table = root
        for lvl in range(1, level):
            slot = table + 8 * ((va >> (12 + 9 * (3 - lvl))) & 0x1FF)
            if not self.mem.get(slot):
                self.mem[slot] = self.table() | VALID | TABLE
            table = self.mem[slot] & ~0xFFF & ((1 << 48) - 1)
        self.mem[table + 8 * ((va >> (12 + 9 * (3 - level))) & 0x1FF)] = descriptor


TCR = 25 | (25 << 16) | (0b10 << 30)           # T0SZ = T1SZ = 25 (39 bits), TG0 4K, TG1 4K


@pytest.fixture
def tables():
    t = Tables()
    t.root0, t.root1 = t.table(), t.table()
    t.regs = TranslationRegs(sctlr=1, tcr=TCR, ttbr0=t.root0 | (5 << 48), ttbr1=t.root1)   # ASID in TTBR0[63:48]
    return t


def test_page_translates_with_offset(tables):
    tables.map(tables.root0, 0x40_0000, 0x8000_0000 | PAGE | AP_EL0)
    assert walk(0x40_0123, tables.regs, tables.read64, el0=True, write=True) == Translation(0x8000_0123)


def test_missing_entries_are_translation_faults_at_their_level(tables):
    tables.map(tables.root0, 0x40_0000, 0x8000_0000 | PAGE)
    read = tables.read64
    assert walk(0x40_1000, tables.regs, read, el0=False) == Fault(FaultKind.TRANSLATION, 3)
    assert walk(0x60_0000, tables.regs, read, el0=False) == Fault(FaultKind.TRANSLATION, 2)
    assert walk(0x4000_0000, tables.regs, read, el0=False) == Fault(FaultKind.TRANSLATION, 1)
    assert Fault(FaultKind.TRANSLATION, 2).status == 0b000110


def test_address_outside_both_ranges_is_a_level_0_translation_fault(tables):
    assert walk(1 << 40, tables.regs, tables.read64, el0=True) == Fault(FaultKind.TRANSLATION, 0)


def test_access_flag_fault_comes_before_permission(tables):
    tables.map(tables.root0, 0x40_0000, 0x8000_0000 | VALID | TABLE | AP_RO)      # AF clear, read-only
    assert walk(0x40_0000, tables.regs, tables.read64, el0=True, write=True) == Fault(FaultKind.ACCESS_FLAG, 3)


@pytest.mark.parametrize("ap, el0, write, allowed", [
    (AP_EL0, True, True, True),                 # AP = 01: read/write at EL0 and EL1
    (AP_EL0 | AP_RO, True, True, False),        # AP = 11: read-only at both
    (AP_EL0 | AP_RO, True, False, True),
    (0, True, False, False),                    # AP = 00: EL1 only
    (0, False, True, True),
    (AP_RO, False, True, False),                # AP = 10: EL1 read-only
])
def test_permissions_from_ap(tables, ap, el0, write, allowed):
    tables.map(tables.root0, 0x40_0000, 0x8000_0000 | PAGE | ap)
    result = walk(0x40_0000, tables.regs, tables.read64, el0=el0, write=write)
    assert isinstance(result, Translation) if allowed else result == Fault(FaultKind.PERMISSION, 3)


def test_execute_never_and_el1_not_executing_el0_writable_memory(tables):
    tables.map(tables.root0, 0x40_0000, 0x8000_0000 | PAGE | AP_EL0 | UXN)
    tables.map(tables.root0, 0x40_1000, 0x8000_1000 | PAGE | AP_EL0 | AP_RO | PXN)
    read = tables.read64
    assert walk(0x40_0000, tables.regs, read, el0=True, fetch=True) == Fault(FaultKind.PERMISSION, 3)
    assert walk(0x40_0000, tables.regs, read, el0=False, fetch=True) == Fault(FaultKind.PERMISSION, 3)
    assert walk(0x40_1000, tables.regs, read, el0=True, fetch=True) == Translation(0x8000_1000)
    assert walk(0x40_1000, tables.regs, read, el0=False, fetch=True) == Fault(FaultKind.PERMISSION, 3)


def test_upper_range_uses_ttbr1_and_level_2_blocks(tables):
    va = (-(1 << 39) + 0x20_0000) & (2**64 - 1)          # the second 2 MiB of the upper range
    tables.map(tables.root1, va, 0x4000_0000 | VALID | AF, level=2)
    assert walk(va + 0x1234, tables.regs, tables.read64, el0=False) == Translation(0x4000_1234)
    assert walk(va + 0x1234, tables.regs, tables.read64, el0=True) == Fault(FaultKind.PERMISSION, 2)


def test_top_byte_ignore_and_walk_disable(tables):
    tables.map(tables.root0, 0x40_0000, 0x8000_0000 | PAGE | AP_EL0)
    tagged = (0x5A << 56) | 0x40_0000
    assert walk(tagged, tables.regs, tables.read64, el0=True) == Fault(FaultKind.TRANSLATION, 0)
    tbi = TranslationRegs(1, TCR | (1 << 37), tables.regs.ttbr0, tables.regs.ttbr1)
    assert walk(tagged, tbi, tables.read64, el0=True) == Translation(0x8000_0000)
    epd0 = TranslationRegs(1, TCR | (1 << 7), tables.regs.ttbr0, tables.regs.ttbr1)
    assert walk(0x40_0000, epd0, tables.read64, el0=True) == Fault(FaultKind.TRANSLATION, 0)


def test_mmu_off_is_flat(tables):
    off = TranslationRegs(0, TCR, tables.regs.ttbr0, tables.regs.ttbr1)
    assert walk(0x1234_5678, off, tables.read64, el0=False) == Translation(0x1234_5678)
