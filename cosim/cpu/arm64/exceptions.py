"""AArch64 exception entry to EL1, as the Armv8-A ARM defines it (D1.10, D1.11).

Unicorn executes instructions but takes no exceptions of its own (it only
reports them through a hook), so the software backend enters them here. The
logic is pure: it maps the current PSTATE and the exception to the register
values an exception entry writes (`ExceptionEntry`, with `stacks` for the
stack pointers); the backend writes them to the CPU in one batch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Kind", "EC", "esr", "undefined_syndrome", "vector_offset", "ExceptionEntry", "enter_el1",
           "PSTATE_DAIF", "PSTATE_I", "PSTATE_F", "DFSC_SYNC_EXTERNAL"]

# PSTATE / SPSR layout for AArch64 (C5.2.18 SPSR_EL1).
PSTATE_NZCV = 0xF << 28
PSTATE_D, PSTATE_A, PSTATE_I, PSTATE_F = 1 << 9, 1 << 8, 1 << 7, 1 << 6
PSTATE_DAIF = PSTATE_D | PSTATE_A | PSTATE_I | PSTATE_F
PSTATE_M = 0xF            # M[3:0]: EL in [3:2], SP selection in [0]
EL1H = 0b0101             # EL1 using SP_EL1

DFSC_SYNC_EXTERNAL = 0x10  # synchronous external abort, not on a translation table walk


class Kind(enum.IntEnum):
    """Exception type; the value is its offset inside a vector-table quarter (D1.10.2)."""

    SYNC = 0x000
    IRQ = 0x080
    FIQ = 0x100
    SERROR = 0x180


class EC(enum.IntEnum):
    """Exception classes of ESR_ELx (D17.2.37)."""

    UNKNOWN = 0x00
    WFX = 0x01             # trapped WFI or WFE
    FP_ACCESS = 0x07       # trapped SIMD or floating-point access (CPACR_EL1.FPEN)
    SVC64 = 0x15
    HVC64 = 0x16
    SMC64 = 0x17
    SYSREG = 0x18          # trapped MSR, MRS or system instruction
    IABT_LOWER = 0x20
    IABT_CURRENT = 0x21
    DABT_LOWER = 0x24
    DABT_CURRENT = 0x25
    BREAKPT_LOWER = 0x30   # the debug exceptions (D2.8-D2.12): breakpoint, software step, watchpoint
    BREAKPT_CURRENT = 0x31
    SOFTSTP_LOWER = 0x32
    SOFTSTP_CURRENT = 0x33
    WATCHPT_LOWER = 0x34
    WATCHPT_CURRENT = 0x35
    BRK64 = 0x3C


def esr(ec: EC, iss: int = 0, il: bool = True) -> int:
    """ESR_ELx value: EC [31:26], IL [25] (32-bit instruction), ISS [24:0]."""
    return (int(ec) << 26) | (int(il) << 25) | (iss & 0x1FF_FFFF)


# ISS fields shared by the conditional-instruction syndromes (EC 0x01, 0x07): from AArch64 state
# CV is 1 and COND is 0b1110 (D17.2.37).
_CV_AL = (1 << 24) | (0b1110 << 20)


def _is_fp_simd(word: int) -> bool:
    """An A64 instruction that uses the SIMD and floating-point registers (C4.1 top-level decode):
    data processing with op0 = x111, loads/stores with V (bit 26) set, or MRS/MSR of FPCR/FPSR."""
    if (word >> 25) & 0b0111 == 0b0111:
        return True
    if (word >> 25) & 0b0101 == 0b0100 and word >> 26 & 1:
        return True
    return word & 0xFFDF_FFC0 == 0xD51B_4400      # MRS/MSR FPCR (op2 0) / FPSR (op2 1), op0 3 op1 3 CRn 4 CRm 4


def undefined_syndrome(word: int | None) -> int:
    """ESR_EL1 for an instruction the CPU reported as undefined: the trap that the architecture
    gives it when it is one a control bit traps (D17.2.37), else EC 0x00 (unknown reason).

    - WFI/WFE (SCTLR_EL1.nTWI/nTWE at EL0): EC 0x01, TI = 0 for WFI, 1 for WFE.
    - MSR DAIFSet/DAIFClr and MSR/MRS DAIF (SCTLR_EL1.UMA at EL0): EC 0x18 with the
      instruction's Op0/Op2/Op1/CRn/Rt/CRm and direction.
    - SIMD and floating point (CPACR_EL1.FPEN): EC 0x07.
    """
    if word is None:
        return esr(EC.UNKNOWN)
    if word in (0xD503_207F, 0xD503_205F):                     # WFI, WFE
        return esr(EC.WFX, _CV_AL | int(word == 0xD503_205F))
    if word & 0xFFFF_F0DF == 0xD503_40DF:                      # MSR DAIFSet/DAIFClr, #imm (op1 3, op2 6/7)
        op2, crm = word >> 5 & 7, word >> 8 & 0xF
        return esr(EC.SYSREG, (op2 << 17) | (3 << 14) | (4 << 10) | (31 << 5) | (crm << 1))
    if word & 0xFFDF_FFE0 == 0xD51B_4220:                      # MSR DAIF, Xt / MRS Xt, DAIF
        read = word >> 21 & 1
        return esr(EC.SYSREG, (3 << 20) | (1 << 17) | (3 << 14) | (4 << 10) | ((word & 31) << 5) | (2 << 1) | read)
    if _is_fp_simd(word):
        return esr(EC.FP_ACCESS, _CV_AL)
    return esr(EC.UNKNOWN)


def current_el(pstate: int) -> int:
    return (pstate >> 2) & 3


def vector_offset(pstate: int, kind: Kind) -> int:
    """Offset from VBAR_EL1 for an exception taken to EL1 from the state `pstate` (D1.10.2)."""
    if current_el(pstate) == 1:
        base = 0x200 if pstate & 1 else 0x000    # current EL with SP_ELx / with SP_EL0
    else:
        base = 0x400                             # lower EL using AArch64
    return base + kind


@dataclass(frozen=True)
class ExceptionEntry:
    """The register writes of one exception entry."""

    pc: int               # the vector
    pstate: int           # EL1h, DAIF masked, NZCV kept
    spsr: int             # the interrupted PSTATE
    elr: int              # preferred return address
    esr: int | None       # syndrome (synchronous exceptions only)
    far: int | None       # faulting address (aborts only)
    old_sp: int           # which SP_ELn was in use (0 or 1)

    def stacks(self, sp: int, sp_el0: int, sp_el1: int) -> tuple[int, int, int]:
        """SP_EL0, SP_EL1 and the live SP after the entry, from their values before it: the live stack
        pointer belongs to the old SP selection, so it is banked there; then SP_EL1 is the live one."""
        if self.old_sp:
            sp_el1 = sp
        else:
            sp_el0 = sp
        return sp_el0, sp_el1, sp_el1


def enter_el1(pstate: int, vbar: int, kind: Kind, return_address: int,
              syndrome: int | None = None, fault_address: int | None = None) -> ExceptionEntry:
    """Exception entry to EL1 from EL0 or EL1 (D1.10.1): SPSR <- PSTATE, ELR <- return address,
    PSTATE <- EL1h with D, A, I and F masked, PC <- VBAR_EL1 + vector offset."""
    if current_el(pstate) > 1:
        raise ValueError(f"exception entry to EL1 from EL{current_el(pstate)} is not possible")
    old_sp = 1 if current_el(pstate) == 1 and pstate & 1 else 0
    return ExceptionEntry(
        pc=(vbar & ~0x7FF) + vector_offset(pstate, kind),
        pstate=(pstate & PSTATE_NZCV) | PSTATE_DAIF | EL1H,
        spsr=pstate,
        elr=return_address,
        esr=syndrome if kind is Kind.SYNC else None,
        far=fault_address,
        old_sp=old_sp,
    )


ISS_WNR = 1 << 6          # data abort: caused by a write
ISS_CM = 1 << 8           # data abort: caused by a cache maintenance instruction (then WnR = 1)


def abort_syndrome(pstate: int, instruction: bool, write: bool, status: int = DFSC_SYNC_EXTERNAL,
                   cache_maintenance: bool = False) -> int:
    """ESR for an instruction or data abort taken to EL1 (D17.2.37, ISS encodings for aborts)."""
    lower = current_el(pstate) == 0
    if instruction:
        return esr(EC.IABT_LOWER if lower else EC.IABT_CURRENT, status)
    iss = status | (ISS_WNR if write or cache_maintenance else 0) | (ISS_CM if cache_maintenance else 0)
    return esr(EC.DABT_LOWER if lower else EC.DABT_CURRENT, iss)
