"""The syndrome of an MMU fault, derived after the fact (unicorn reports only "data abort").

Unicorn translates with QEMU's own table walker but, when that walk faults,
reports nothing but the exception number: the fault status, the faulting
address and whether the access was a write are QEMU-internal. This module
recovers them the way the architecture defines them:

1. `decode_access` decodes the faulting load/store (the PC still points at it)
   and computes its virtual address from the registers, which QEMU has
   restored to their values before the instruction.
2. `walk` repeats the stage 1 translation table walk for that address from
   TTBR0/TTBR1/TCR (VMSAv8-64, D5.2) and says which check failed: translation
   (no valid descriptor), access flag, or permission, and at which level.

Both are pure: registers and physical memory come in as functions, so tests
feed them hand-made tables. Nothing here runs unless an abort happens.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DataAccess", "decode_access", "Translation", "FaultKind", "Fault", "walk", "fault_status",
           "TranslationRegs"]

_MASK64 = (1 << 64) - 1
_OA_MASK = (1 << 48) - 1           # 48-bit output addresses (no FEAT_LPA)

ReadReg = Callable[[int], int]      # Xn for n in 0..30; 31 is SP (base registers)
ReadPhys64 = Callable[[int], int]   # a 64-bit little-endian word of physical memory


@dataclass(frozen=True)
class DataAccess:
    address: int
    size: int                       # bytes, for page-crossing checks
    write: bool
    unprivileged: bool = False      # LDTR/STTR: checked with EL0 permissions (D5.4.3)
    cache_maintenance: bool = False  # DC/IC by VA: ESR.CM = 1 (D17.2.37)
    exclusive: bool = False          # exclusives and atomics must be naturally aligned


def _sext(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def _extend(value: int, option: int, shift: int) -> int:
    """Register offset extension (C6.2, <extend>): UXTW, LSL/UXTX, SXTW, SXTX."""
    if option == 0b010:
        value &= 0xFFFF_FFFF
    elif option == 0b110:
        value = _sext(value & 0xFFFF_FFFF, 32)
    elif option == 0b111:
        value = _sext(value, 64)
    return value << shift


# Data cache / instruction cache maintenance by VA (C5.3): (op1, CRm, op2) with CRn = 7.
_DC_ZVA = (3, 4, 1)
_CACHE_BY_VA = {(3, 4, 1), (3, 10, 1), (3, 11, 1), (3, 12, 1), (3, 13, 1), (3, 14, 1), (0, 6, 1), (0, 14, 2),
                (3, 5, 1), (0, 6, 2), (0, 10, 2)}
DCZ_BLOCK = 64                      # DCZID_EL0.BS = 4 words on the emulated Cortex-A72


def decode_access(word: int, pc: int, reg: ReadReg) -> DataAccess | None:
    """The data access of one A64 load/store or cache maintenance instruction (C4.1.66),
    or None when `word` is not one. `reg(n)` reads Xn, with n = 31 meaning SP."""
    def xn(n: int) -> int:
        return reg(n) & _MASK64

    def xm(n: int) -> int:              # index registers: 31 is XZR
        return 0 if n == 31 else reg(n) & _MASK64

    rn = (word >> 5) & 0x1F
    size = word >> 30
    vector = bool(word >> 26 & 1)
    load = bool(word >> 22 & 1)
    # System instruction with CRn = 7: DC/IC by virtual address, address in Xt.
    if word & 0xFFF8_F000 == 0xD508_7000:
        op1, crm, op2 = (word >> 16) & 7, (word >> 8) & 0xF, (word >> 5) & 7
        if (op1, crm, op2) in _CACHE_BY_VA:
            address = xm(word & 0x1F)
            if (op1, crm, op2) == _DC_ZVA:
                return DataAccess(address & ~(DCZ_BLOCK - 1) & _MASK64, DCZ_BLOCK, True)
            return DataAccess(address, 1, True, cache_maintenance=True)
        return None
    if word & 0x0A00_0000 != 0x0800_0000:
        return None                                             # not in the loads and stores group
    # Exclusive / ordered / compare-and-swap: address = Xn.
    if word & 0x3F00_0000 == 0x0800_0000:
        pair = bool(word >> 21 & 1) and not word >> 23 & 1     # LDXP/STXP (o2 = 0, o1 = 1)
        cas = bool(word >> 23 & 1) and bool(word >> 21 & 1)
        nbytes = (1 << size) * (2 if pair else 1)
        return DataAccess(xn(rn), nbytes, cas or not load, exclusive=True)
    # Load register (literal): PC-relative.
    if word & 0x3B00_0000 == 0x1800_0000:
        opc = size
        if not vector and opc == 3:
            return None                                         # PRFM (literal) never faults
        nbytes = (4 << opc) if vector else (8 if opc == 1 else 4)
        return DataAccess((pc + 4 * _sext((word >> 5) & 0x7FFFF, 19)) & _MASK64, nbytes, False)
    # Advanced SIMD structures (LD1-LD4, ST1-ST4, LDnR): address = Xn.
    if word & 0xBF80_0000 in (0x0C00_0000, 0x0C80_0000) or word & 0xBF00_0000 == 0x0D00_0000:
        if word >> 24 & 1:
            nbytes = 16                                          # single structure: at most 4 x 4 bytes
        else:
            regs = {0b0000: 4, 0b0010: 4, 0b0100: 3, 0b0110: 3, 0b0111: 1, 0b1000: 2, 0b1010: 2}
            nbytes = regs.get((word >> 12) & 0xF, 1) * (16 if word >> 30 & 1 else 8)
        return DataAccess(xn(rn), nbytes, not load)
    # Load/store pair: offset, pre-index, post-index, no-allocate.
    if word & 0x3800_0000 == 0x2800_0000:
        opc = size
        scale = 2 + opc if vector else (3 if opc == 2 else 2)
        offset = 0 if (word >> 23) & 3 == 0b01 else _sext((word >> 15) & 0x7F, 7) << scale
        return DataAccess((xn(rn) + offset) & _MASK64, 2 << scale, not load)
    if word & 0x3800_0000 != 0x3800_0000:
        return None
    # Load/store register: size from size:opc (and V for 128-bit SIMD registers).
    opc = (word >> 22) & 3
    if vector:
        scale = 4 if size == 0 and opc & 2 else size
        write = not opc & 1
    else:
        if size == 3 and opc == 2:
            return None                                         # PRFM / PRFUM never fault
        scale, write = size, opc == 0
    if word >> 24 & 1:                                          # unsigned, scaled 12-bit immediate
        return DataAccess((xn(rn) + (((word >> 10) & 0xFFF) << scale)) & _MASK64, 1 << scale, write)
    if not word >> 21 & 1:                                      # 9-bit signed immediate
        mode = (word >> 10) & 3                                 # 0 unscaled, 1 post, 2 unprivileged, 3 pre
        offset = 0 if mode == 1 else _sext((word >> 12) & 0x1FF, 9)
        return DataAccess((xn(rn) + offset) & _MASK64, 1 << scale, write, unprivileged=mode == 2 and not vector)
    if (word >> 10) & 3 == 0b10:                                # register offset
        shift = scale if word >> 12 & 1 else 0
        offset = _extend(xm((word >> 16) & 0x1F), (word >> 13) & 7, shift)
        return DataAccess((xn(rn) + offset) & _MASK64, 1 << scale, write)
    if (word >> 10) & 3 == 0b00:                                # atomic memory operations (FEAT_LSE)
        return DataAccess(xn(rn), 1 << size, True, exclusive=True)
    return None


class FaultKind(enum.IntEnum):
    """Fault status code bases (ESR_ELx.DFSC/IFSC, D17.2.37); the level goes in bits [1:0]."""

    TRANSLATION = 0b000100
    ACCESS_FLAG = 0b001000
    PERMISSION = 0b001100


FSC_ALIGNMENT = 0b100001


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    level: int

    @property
    def status(self) -> int:
        return fault_status(self.kind, self.level)


def fault_status(kind: FaultKind, level: int) -> int:
    return int(kind) | (level & 3)


@dataclass(frozen=True)
class TranslationRegs:
    sctlr: int
    tcr: int
    ttbr0: int
    ttbr1: int


@dataclass(frozen=True)
class Translation:
    """A successful walk: the physical address."""

    address: int


# TCR_EL1 granule encodings (D17.2.131): TG0 and TG1 differ.
_TG0_BITS = {0b00: 12, 0b01: 16, 0b10: 14}
_TG1_BITS = {0b10: 12, 0b11: 16, 0b01: 14}


def walk(va: int, regs: TranslationRegs, read64: ReadPhys64, *, el0: bool, write: bool = False,
         fetch: bool = False) -> Translation | Fault:
    """Stage 1 EL1&0 translation of `va` (D5.2 VMSAv8-64 walk; AArch64.TranslationTableWalk).

    `el0`: permissions as seen from EL0 (an access from EL0, or LDTR/STTR at EL1).
    The access flag is checked before permissions, as in the pseudocode.
    """
    if not regs.sctlr & 1:
        return Translation(va)                                  # MMU off: flat
    tcr = regs.tcr
    upper = bool(va >> 55 & 1)
    if upper:
        tsz, epd, ttbr = (tcr >> 16) & 0x3F, tcr >> 23 & 1, regs.ttbr1
        granule = _TG1_BITS.get((tcr >> 30) & 3, 12)
        tbi = bool(tcr >> 38 & 1) and not fetch
    else:
        tsz, epd, ttbr = tcr & 0x3F, tcr >> 7 & 1, regs.ttbr0
        granule = _TG0_BITS.get((tcr >> 14) & 3, 12)
        tbi = bool(tcr >> 37 & 1) and not fetch
    inputsize = 64 - tsz
    top = 56 if tbi else 64
    high = (va & _MASK64) >> inputsize & ((1 << (top - inputsize)) - 1)
    if epd or high != (((1 << (top - inputsize)) - 1) if upper else 0):
        return Fault(FaultKind.TRANSLATION, 0)
    stride = granule - 3
    start = level = 4 - -(-(inputsize - granule) // stride)   # 4 - ceil((inputsize - granule) / stride)
    table = ttbr & _OA_MASK & ~1
    no_el0 = read_only = no_pxn = no_uxn = False                # hierarchical APTable/XNTable
    while True:
        shift = granule + stride * (3 - level)
        bits = inputsize - shift if level == start else stride
        index = (va >> shift) & ((1 << bits) - 1)
        desc = read64(table + 8 * index)
        if not desc & 1:
            return Fault(FaultKind.TRANSLATION, level)
        is_table = bool(desc & 2)
        if level < 3 and is_table:
            no_pxn |= bool(desc >> 59 & 1)
            no_uxn |= bool(desc >> 60 & 1)
            no_el0 |= bool(desc >> 61 & 1)
            read_only |= bool(desc >> 62 & 1)
            table = desc & _OA_MASK & ~((1 << granule) - 1)
            level += 1
            continue
        if level == 3 and not is_table or level < 3 and (level == 0 or (granule != 12 and level == 1)):
            return Fault(FaultKind.TRANSLATION, level)          # reserved encoding / block not allowed here
        break
    if not desc >> 10 & 1:
        return Fault(FaultKind.ACCESS_FLAG, level)
    ap = (desc >> 6) & 3                                        # AP[2:1]
    el0_access = bool(ap & 1) and not no_el0
    writable = not ap & 2 and not read_only
    if fetch:
        if el0:
            denied = bool(desc >> 54 & 1) or no_uxn
        else:   # EL1 never executes memory EL0 can write (D5.4.5)
            denied = bool(desc >> 53 & 1) or no_pxn or (ap == 0b01 and not no_el0)
    elif el0:
        denied = not el0_access or (write and not writable)
    else:
        denied = write and not writable
    if denied:
        return Fault(FaultKind.PERMISSION, level)
    offset_mask = (1 << shift) - 1
    return Translation((desc & _OA_MASK & ~offset_mask) | (va & offset_mask))
