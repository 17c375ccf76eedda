"""Self-hosted debug of the software Arm64 CPU (Armv8-A ARM, DDI 0487, chapter D2).

Unicorn keeps the debug registers but never acts on them (its translator has no breakpoint
or watchpoint checks), so this module owns them: the backend serves DBGBVR<n>_EL1 /
DBGBCR<n>_EL1, DBGWVR<n>_EL1 / DBGWCR<n>_EL1, MDSCR_EL1, OSLAR_EL1 / OSLSR_EL1, OSDLR_EL1,
DBGPRCR_EL1 and MDCCINT_EL1 from `SelfHostedDebug` (unicorn's own copies stay at reset,
so QEMU's software-step translation is never switched on behind our back), and asks it
whether an instruction address or a data access raises a debug exception. The state is
pure; what the backend hooks (code hooks on the programmed addresses, memory hooks on the
watched ranges, a one-instruction run for software step) follows `breakpoint_addresses`
and `watched_ranges`. `CodeAndMemoryHooks` is the hook bookkeeping shared with cosim.gdb's
breakpoints and watchpoints.

Supported: address-match breakpoints (DBGBCR.BT = 0b0000, BAS = 0b1111, PMC for EL0/EL1),
address-match watchpoints (BAS byte selection or a MASK range, LSC load/store, PAC),
software step (D2.12: active-not-pending / active-pending, SPSR.SS, ISV/EX), the OS lock,
the OS double lock and KDE / PSTATE.D masking (D2.1, "debug exceptions enabled").
Not modelled: context-ID and VMID breakpoints and linking (BT != 0, LBN), halting debug,
the debug communications channel, EL2/EL3 controls (MDCR_EL2, SSC/HMC beyond EL1 and EL0).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .exceptions import EC, current_el, esr

__all__ = ["SelfHostedDebug", "SYSREG_NAMES", "CodeAndMemoryHooks", "MDSCR_SS", "MDSCR_KDE", "MDSCR_MDE",
           "PSTATE_SS", "DEBUG_FSC", "breakpoint_syndrome", "watchpoint_syndrome", "step_syndrome",
           "is_load_exclusive", "ERET"]

MDSCR_SS, MDSCR_KDE, MDSCR_MDE = 1 << 0, 1 << 13, 1 << 15
PSTATE_D = 1 << 9
PSTATE_SS = 1 << 21            # SPSR_EL1.SS: software step state (D2.12.3)
DEBUG_FSC = 0x22               # IFSC/DFSC "debug exception" of the debug syndromes (D17.2.37)
ERET = 0xD69F_03E0
OSLSR_OSLM = 0b1000            # OSLSR_EL1.OSLM = 0b10: the OS lock is implemented
OSLK = 1 << 1
# The writable parts of the control registers (D17.3): DBGBCR E, PMC, BAS, HMC, SSC, LBN, BT;
# DBGWCR E, PAC, LSC, BAS, HMC, SSC, LBN, WT, MASK. Value registers hold VA[48:2].
_BCR_MASK = 0x00FF_E1E7
_WCR_MASK = 0x1F1F_FFFF
_VR_MASK = ((1 << 49) - 1) & ~3

# (op0, op1, CRn, CRm, op2) -> name (D17.3, the debug registers' MRS/MSR encodings).
SYSREG_NAMES: dict[tuple[int, int, int, int, int], str] = {
    **{(2, 0, 0, n, 4): f"DBGBVR{n}_EL1" for n in range(16)},
    **{(2, 0, 0, n, 5): f"DBGBCR{n}_EL1" for n in range(16)},
    **{(2, 0, 0, n, 6): f"DBGWVR{n}_EL1" for n in range(16)},
    **{(2, 0, 0, n, 7): f"DBGWCR{n}_EL1" for n in range(16)},
    (2, 0, 0, 2, 0): "MDCCINT_EL1", (2, 0, 0, 2, 2): "MDSCR_EL1", (2, 0, 1, 0, 4): "OSLAR_EL1",
    (2, 0, 1, 1, 4): "OSLSR_EL1", (2, 0, 1, 3, 4): "OSDLR_EL1", (2, 0, 1, 4, 4): "DBGPRCR_EL1",
}


@dataclass
class Comparator:
    """One breakpoint or watchpoint: its value (DBGBVR/DBGWVR) and control (DBGBCR/DBGWCR) register."""

    value: int = 0
    control: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.control & 1)

    def privileged(self, el: int) -> bool:
        """PMC/PAC [2:1] (D2.8.3, D2.9.3): 0b01 matches at EL1, 0b10 at EL0, 0b11 at both."""
        return bool(self.control >> 1 & (0b01 if el == 1 else 0b10))


@dataclass
class SelfHostedDebug:
    """The self-hosted debug registers of one PE and the rules that turn them into debug exceptions.

    `dfr0` is ID_AA64DFR0_EL1: BRPs [15:12] and WRPs [23:20] say how many comparators exist
    (unicorn reports QEMU's `-cpu max` values: 6 breakpoints, 4 watchpoints)."""

    dfr0: int
    breakpoints: list[Comparator] = field(init=False)
    watchpoints: list[Comparator] = field(init=False)
    mdscr: int = 0
    oslsr: int = OSLSR_OSLM | OSLK      # the OS lock is set by a cold reset (D2.5)
    osdlr: int = 0
    dbgprcr: int = 0
    mdccint: int = 0
    changed: bool = True                # set by a write; the backend re-reads the comparators

    def __post_init__(self) -> None:
        self.breakpoints = [Comparator() for _ in range((self.dfr0 >> 12 & 0xF) + 1)]
        self.watchpoints = [Comparator() for _ in range((self.dfr0 >> 20 & 0xF) + 1)]

    # -- registers ------------------------------------------------------------
    def el0_allowed(self, name: str, read: bool) -> bool:
        return False                    # all are _EL1 registers: UNDEFINED at EL0

    def _comparator(self, name: str) -> tuple[Comparator, str] | None:
        """`DBGBVR3_EL1` -> (breakpoints[3], "V"); None for a comparator this PE does not have
        (its encoding is then UNDEFINED, and reads as zero / ignores writes here)."""
        bank = self.breakpoints if name[3] == "B" else self.watchpoints
        index = int(name[6:-4])
        return (bank[index], name[4]) if index < len(bank) else None

    def read_sysreg(self, name: str) -> int:
        if name.startswith("DBG") and name[4] in "VC" and name[3] in "BW":
            found = self._comparator(name)
            if found is None:
                return 0
            comparator, which = found
            return comparator.value if which == "V" else comparator.control
        return {"MDSCR_EL1": self.mdscr, "OSLSR_EL1": self.oslsr, "OSDLR_EL1": self.osdlr,
                "DBGPRCR_EL1": self.dbgprcr, "MDCCINT_EL1": self.mdccint, "OSLAR_EL1": 0}[name]

    def write_sysreg(self, name: str, value: int) -> None:
        self.changed = True
        if name.startswith("DBG") and name[4] in "VC" and name[3] in "BW":
            found = self._comparator(name)
            if found is not None:
                comparator, which = found
                if which == "V":
                    # VA[63:49] read as the sign extension of VA[48] (RESS), bits [1:0] are RES0.
                    low = value & _VR_MASK
                    comparator.value = low | (~((1 << 49) - 1) & (1 << 64) - 1 if low >> 48 & 1 else 0)
                else:
                    comparator.control = value & (_BCR_MASK if name[3] == "B" else _WCR_MASK)
        elif name == "OSLAR_EL1":
            self.oslsr = OSLSR_OSLM | (OSLK if value & 1 else 0)
        elif name == "MDSCR_EL1":
            self.mdscr = value & 0xFFFF_FFFF
        elif name == "OSDLR_EL1":
            self.osdlr = value & 1
        elif name == "DBGPRCR_EL1":
            self.dbgprcr = value & 1
        elif name == "MDCCINT_EL1":
            self.mdccint = value & (3 << 29)
        # OSLSR_EL1 is read-only: a write is ignored (it is not trapped here).

    # -- when debug exceptions are generated (D2.10, AArch64.GenerateDebugExceptionsFrom) ----------
    def enabled(self, pstate: int) -> bool:
        """Debug exceptions are enabled from the current EL: not while the OS lock or the OS double
        lock (OSDLR.DLK with DBGPRCR.CORENPDRQ clear) is set; at EL1 (the debug target) only with
        MDSCR_EL1.KDE set and PSTATE.D clear; at EL0 always."""
        if self.oslsr & OSLK or (self.osdlr & 1 and not self.dbgprcr & 1):
            return False
        if current_el(pstate) == 0:
            return True
        return bool(self.mdscr & MDSCR_KDE) and not pstate & PSTATE_D

    def step_enabled(self, pstate: int) -> bool:
        """Software step is active (D2.12.1): MDSCR_EL1.SS set and debug exceptions enabled."""
        return bool(self.mdscr & MDSCR_SS) and self.enabled(pstate)

    def step_watch(self, pstate: int) -> int:
        """While software step is set up but disabled, the PSTATE bits whose clearing may enable it:
        PSTATE.D at EL1 when KDE is set, and the EL bit an ERET to EL0 clears (M[2])."""
        if not self.mdscr & MDSCR_SS or current_el(pstate) != 1:
            return 0
        return (PSTATE_D if self.mdscr & MDSCR_KDE else 0) | 1 << 2

    def breakpoint_addresses(self) -> set[int]:
        """Addresses of the enabled address-match breakpoints (A64: word-aligned)."""
        return {c.value & ~3 for c in self.breakpoints if c.enabled and c.control >> 20 & 0xF == 0}

    def watched_ranges(self) -> set[tuple[int, int]]:
        """(first, last) byte of each enabled watchpoint's range."""
        return {span for c in self.watchpoints if c.enabled and (span := _watched(c)) is not None}

    def breakpoint_hit(self, address: int, pstate: int) -> bool:
        """An enabled breakpoint matches the instruction at `address` (D2.8) and generates a
        Breakpoint exception now (MDSCR_EL1.MDE, debug exceptions enabled)."""
        if not self.mdscr & MDSCR_MDE or not self.enabled(pstate):
            return False
        el = current_el(pstate)
        return any(c.enabled and c.control >> 20 & 0xF == 0 and c.privileged(el) and c.value & ~3 == address
                   and c.control >> 5 & 0xF == 0xF for c in self.breakpoints)

    def watchpoint_hit(self, address: int, size: int, write: bool, pstate: int,
                       unprivileged: bool = False) -> int | None:
        """The FAR of the Watchpoint exception a data access generates (D2.9), None when none:
        the lowest watched byte the access touches, as hardware reports an address in the range
        from the access's first byte to the watched bytes (D2.9.5). An unprivileged access
        (LDTR/STTR) matches PAC as an EL0 access would."""
        if not self.mdscr & MDSCR_MDE or not self.enabled(pstate):
            return None
        el, lsc = 0 if unprivileged else current_el(pstate), 0b10 if write else 0b01
        hits = []
        for c in self.watchpoints:
            span = _watched(c) if c.enabled and c.control >> 3 & lsc and c.privileged(el) else None
            first = None if span is None else _first_selected(c, span, address, size)
            if first is not None:
                hits.append(max(address, first))
        return min(hits) if hits else None


def _watched(c: Comparator) -> tuple[int, int] | None:
    """(first, last) byte a watchpoint covers: a 2^MASK-byte aligned range when MASK is set, else
    the bytes BAS selects from the doubleword (or, when DBGWVR[2] is set, the word) at DBGWVR."""
    mask = c.control >> 24 & 0x1F
    if mask >= 3:
        base = c.value & ~((1 << mask) - 1)
        return base, base + (1 << mask) - 1
    bas = c.control >> 5 & 0xFF
    if c.value & 4:
        bas &= 0xF
    if bas == 0:
        return None
    low, high = (bas & -bas).bit_length() - 1, bas.bit_length() - 1
    return c.value + low, c.value + high


def _first_selected(c: Comparator, span: tuple[int, int], address: int, size: int) -> int | None:
    """The lowest byte of [address, address + size) that the watchpoint selects."""
    first, last = max(span[0], address), min(span[1], address + size - 1)
    mask = c.control >> 24 & 0x1F
    for byte in range(first, last + 1):
        if mask >= 3 or (c.control >> 5 >> (byte - c.value) & 1):
            return byte
    return None


def _lower(pstate: int) -> bool:
    return current_el(pstate) == 0


def breakpoint_syndrome(pstate: int) -> int:
    """ESR_EL1 of a Breakpoint exception (EC 0x30 from EL0, 0x31 from EL1; IFSC 0x22)."""
    return esr(EC.BREAKPT_LOWER if _lower(pstate) else EC.BREAKPT_CURRENT, DEBUG_FSC)


def watchpoint_syndrome(pstate: int, write: bool) -> int:
    """ESR_EL1 of a Watchpoint exception (EC 0x34 / 0x35; WnR [6], DFSC 0x22)."""
    return esr(EC.WATCHPT_LOWER if _lower(pstate) else EC.WATCHPT_CURRENT, DEBUG_FSC | int(write) << 6)


def step_syndrome(pstate: int, stepped: bool | None) -> int:
    """ESR_EL1 of a Software Step exception (EC 0x32 / 0x33; IFSC 0x22). `stepped`: None when the
    exception is taken without an instruction having been stepped (ISV = 0), else whether it was a
    load-exclusive (ISV = 1, EX)."""
    iss = DEBUG_FSC if stepped is None else DEBUG_FSC | 1 << 24 | int(stepped) << 6
    return esr(EC.SOFTSTP_LOWER if _lower(pstate) else EC.SOFTSTP_CURRENT, iss)


def is_load_exclusive(word: int | None) -> bool:
    """LDXR/LDAXR/LDXP/LDAXP and the byte/halfword forms (C4.1.66: o2 = 0, L = 1, o1 any, o0 any)."""
    return word is not None and word & 0x3FC0_0000 == 0x0840_0000


class CodeAndMemoryHooks:
    """Unicorn hooks keyed by what they stand for, present only while set: a code hook on one
    address (breakpoints) or a memory hook on a range (watchpoints). Adding or removing one drops
    the translated code it affects, which otherwise keeps (or lacks) the call to the hook."""

    def __init__(self, uc: Any) -> None:
        self.uc = uc
        self._hooks: dict[Hashable, tuple[int, int | None]] = {}

    def __contains__(self, key: Hashable) -> bool:
        return key in self._hooks

    def keys(self) -> Iterator[Hashable]:
        return iter(list(self._hooks))

    def add_code(self, key: Hashable, address: int, callback: Callable[..., Any], data: Any = None) -> None:
        from unicorn import UC_HOOK_CODE

        if key not in self._hooks:
            self._hooks[key] = (self.uc.hook_add(UC_HOOK_CODE, callback, data, begin=address, end=address), address)
            self.uc.ctl_remove_cache(address, address + 4)

    def add_memory(self, key: Hashable, types: int, first: int, last: int, callback: Callable[..., Any],
                   data: Any = None) -> None:
        if key not in self._hooks:
            self._hooks[key] = (self.uc.hook_add(types, callback, data, begin=first, end=last), None)
            self.uc.ctl_flush_tb()      # translated accesses skip the hook check otherwise

    def remove(self, key: Hashable) -> None:
        entry = self._hooks.pop(key, None)
        if entry is None:
            return
        hook, address = entry
        self.uc.hook_del(hook)
        if address is None:
            self.uc.ctl_flush_tb()      # back to the fast path
        else:
            self.uc.ctl_remove_cache(address, address + 4)
