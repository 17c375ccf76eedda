"""x86 entry states: real mode, 32-bit protected mode, 64-bit long mode.

For protected and long mode the loader writes a flat GDT and, for long mode,
identity-mapping page tables (4 GiB in 2 MiB pages: PML4 -> one PDPT -> four
page directories) into guest RAM at `tables` (default 0x1000..0x7FFF, below
the traditional 0x7C00 boot area), and returns the register state that
`KvmX86Cpu.set_entry` loads. Selectors the guest may rely on:

| selector | descriptor |
|---|---|
| 0x08 | 64-bit code (long mode CS) |
| 0x10 | flat 4 GiB data, 32-bit (DS/ES/SS/FS/GS) |
| 0x18 | flat 4 GiB code, 32-bit (protected-mode CS) |
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .._errors import PlatformError

__all__ = ["Segment", "EntryState", "real_mode", "protected_mode", "long_mode", "Mode", "entry_state",
           "GDT", "CODE64_SELECTOR", "DATA_SELECTOR", "CODE32_SELECTOR", "TABLES_SIZE"]

Mode = Literal["real", "protected", "long"]
Writer = Callable[[int, bytes], None]

# Descriptors (Intel SDM Vol. 3A 3.4.5): limit 0xFFFFF with G=1 (4 GiB), P=1, S=1, DPL 0.
GDT = [
    0x0000_0000_0000_0000,     # null
    0x00AF_9A00_0000_FFFF,     # 0x08 code, L=1 (64-bit), execute/read
    0x00CF_9200_0000_FFFF,     # 0x10 data, D/B=1, read/write
    0x00CF_9A00_0000_FFFF,     # 0x18 code, D=1 (32-bit), execute/read
]
CODE64_SELECTOR, DATA_SELECTOR, CODE32_SELECTOR = 0x08, 0x10, 0x18
TABLES_SIZE = 0x7000           # GDT page + PML4 + PDPT + 4 page directories

CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_PG = 1 << 0, 1 << 1, 1 << 4, 1 << 5, 1 << 16, 1 << 31
CR4_PAE, CR4_OSFXSR, CR4_OSXMMEXCPT = 1 << 5, 1 << 9, 1 << 10
EFER_LME, EFER_LMA = 1 << 8, 1 << 10
PTE_P, PTE_RW, PTE_PS = 1 << 0, 1 << 1, 1 << 7
RFLAGS_FIXED = 1 << 1          # bit 1 is always set


@dataclass
class Segment:
    """A segment register's hidden part, as struct kvm_segment holds it."""

    selector: int
    base: int = 0
    limit: int = 0xFFFF_FFFF
    type: int = 0x3            # data read/write, accessed
    db: int = 1
    l: int = 0                 # noqa: E741 (the descriptor's L bit)
    g: int = 1
    present: int = 1
    dpl: int = 0
    s: int = 1


@dataclass
class EntryState:
    mode: Mode
    rip: int
    rsp: int = 0
    rflags: int = RFLAGS_FIXED
    regs: dict[str, int] = field(default_factory=dict)   # other general registers, e.g. {"rsi": boot_params}
    code: Segment = field(default_factory=lambda: Segment(0))
    data: Segment = field(default_factory=lambda: Segment(0))
    cr0: int = 0
    cr3: int = 0
    cr4: int = 0
    efer: int = 0
    gdt: tuple[int, int] = (0, 0xFFFF)   # (base, limit)


def real_mode(entry: int, stack: int = 0x7C00) -> EntryState:
    """16-bit real mode: CS:IP addresses `entry` (CS = its 64 KiB-aligned segment), flat data segments at 0."""
    if entry >= 1 << 20:
        raise PlatformError(f"real-mode entry {entry:#x} is above the 1 MiB real-mode address space")
    base = entry & 0xF_0000
    code = Segment(base >> 4, base=base, limit=0xFFFF, type=0xB, db=0, g=0)
    data = Segment(0, limit=0xFFFF, db=0, g=0)
    return EntryState("real", entry - base, stack, code=code, data=data, cr0=CR0_ET)


def _write_gdt(write: Writer, tables: int) -> tuple[int, int]:
    write(tables, struct.pack(f"<{len(GDT)}Q", *GDT))
    return tables, 8 * len(GDT) - 1


def protected_mode(write: Writer, entry: int, stack: int = 0x7C00, tables: int = 0x1000) -> EntryState:
    """32-bit protected mode, paging off, flat 4 GiB segments from the loader's GDT."""
    gdt = _write_gdt(write, tables)
    code = Segment(CODE32_SELECTOR, type=0xB)
    data = Segment(DATA_SELECTOR)
    return EntryState("protected", entry, stack, code=code, data=data, cr0=CR0_PE | CR0_ET, gdt=gdt)


def long_mode(write: Writer, entry: int, stack: int = 0x7C00, tables: int = 0x1000) -> EntryState:
    """64-bit long mode: the loader's GDT and an identity map of the low 4 GiB (2 MiB pages)."""
    if tables % 0x1000:
        raise PlatformError(f"page tables at {tables:#x} must be 4 KiB aligned")
    gdt = _write_gdt(write, tables)
    pml4, pdpt, pd = tables + 0x1000, tables + 0x2000, tables + 0x3000
    write(pml4, struct.pack("<Q", pdpt | PTE_P | PTE_RW))
    write(pdpt, struct.pack("<4Q", *((pd + 0x1000 * i) | PTE_P | PTE_RW for i in range(4))))
    write(pd, struct.pack("<2048Q", *((i << 21) | PTE_P | PTE_RW | PTE_PS for i in range(2048))))
    code = Segment(CODE64_SELECTOR, type=0xB, db=0, l=1)
    data = Segment(DATA_SELECTOR)
    return EntryState("long", entry, stack, code=code, data=data,
                      cr0=CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG, cr3=pml4,
                      cr4=CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT, efer=EFER_LME | EFER_LMA, gdt=gdt)


def entry_state(mode: Mode, write: Writer, entry: int, stack: int = 0x7C00, tables: int = 0x1000) -> EntryState:
    if mode == "real":
        return real_mode(entry, stack)
    if mode == "protected":
        return protected_mode(write, entry, stack, tables)
    if mode == "long":
        return long_mode(write, entry, stack, tables)
    raise PlatformError(f"unknown x86 entry mode {mode!r}: use real, protected or long")
