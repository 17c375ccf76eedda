"""Arm64-specific KVM UAPI (`<asm/kvm.h>` for arm64): vCPU init, ONE_REG ids, IRQ lines, sync registers.

Its FFI includes the generic one (`_uapi.ffi`). `tests/kvm/test_arm64_uapi.py`
checks every layout, ioctl number, constant and register id below against the
arm64 headers (Debian's linux-libc-dev-arm64-cross), compiled at test time.

Arm64 KVM has no KVM_GET_REGS: every register goes through KVM_GET_ONE_REG /
KVM_SET_ONE_REG with a 64-bit id (api.rst 4.68 "KVM_SET_ONE_REG", arm64 part):

    core registers   KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | offset in struct kvm_regs / 4
    system registers KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG | op0:op1:CRn:CRm:op2
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Callable
from dataclasses import dataclass

from cffi import FFI

from . import _uapi
from ._names import DEFAULT_WFX_CAP, DEFAULT_WFX_EXIT, PORT_WFX_CAP, PORT_WFX_EXIT, SEED_WFX_CAP, SEED_WFX_EXIT
from ._system import KvmError
from ._uapi import IOR, IOW, KVMIO, KVM_RUN_EXIT_UNION_OFFSET, KVM_RUN_SYNC_REGS_OFFSET, CData

__all__ = [
    "ffi", "Arm64Ioctl", "Arm64Cap", "Feature", "KVM_REG_ARM64", "KVM_REG_SIZE_U64", "KVM_REG_ARM_CORE",
    "KVM_REG_ARM64_SYSREG", "core_reg", "sys_reg", "CORE_REGS", "SYSREGS", "TimerReg", "irq_line",
    "IrqType", "CpuIrq", "DeviceIrq", "KVM_ARM_VCPU_PMU_V3_CTRL", "KVM_ARM_VCPU_PMU_V3_INIT",
    "DEFAULT_WFX_CAP", "DEFAULT_WFX_EXIT", "SEED_WFX_CAP", "SEED_WFX_EXIT", "PORT_WFX_CAP", "PORT_WFX_EXIT",
    "ESR_WFX_ISS_WFE", "Arm64Features", "probe_arm64",
    "device_irq_level", "arm_nisv", "wfx_esr", "debug_exit", "KVM_GUESTDBG_ENABLE", "KVM_GUESTDBG_SINGLESTEP",
    "KVM_GUESTDBG_USE_SW_BP", "KVM_GUESTDBG_USE_HW",
]

ffi = FFI()
ffi.include(_uapi.ffi)
ffi.cdef("""
struct user_pt_regs {
    __u64 regs[31];
    __u64 sp;          /* SP_EL0 */
    __u64 pc;
    __u64 pstate;
};

struct user_fpsimd_state {
    __u64 vregs[64];   /* __uint128_t vregs[32]: 16-byte aligned, see kvm_regs below */
    __u32 fpsr;
    __u32 fpcr;
    __u32 reserved[2];
};

struct kvm_regs {
    struct user_pt_regs regs;
    __u64 sp_el1;
    __u64 elr_el1;
    __u64 spsr[5];     /* KVM_NR_SPSR; [0] is SPSR_EL1 */
    __u64 pad;         /* the __uint128_t in fp_regs aligns it to 16 bytes */
    struct user_fpsimd_state fp_regs;
};

struct kvm_vcpu_init {
    __u32 target;
    __u32 features[7];
};

struct kvm_sync_regs {
    __u64 device_irq_level;    /* KVM_CAP_ARM_USER_IRQ: in-kernel timer/PMU output levels */
};

struct kvm_arm_nisv {           /* kvm_run.arm_nisv (KVM_EXIT_ARM_NISV) */
    __u64 esr_iss;
    __u64 fault_ipa;
};

struct kvm_wfx_exit {           /* kvm_run.wfx of the seed patch (KVM_EXIT_WFX): not upstream */
    __u64 esr;
};

struct kvm_guest_debug_arch {
    __u64 dbg_bcr[16];
    __u64 dbg_bvr[16];
    __u64 dbg_wcr[16];
    __u64 dbg_wvr[16];
};

struct kvm_guest_debug {
    __u32 control;
    __u32 pad;
    struct kvm_guest_debug_arch arch;
};

struct kvm_debug_exit_arch {
    __u32 hsr;
    __u32 hsr_high;
    __u64 far;
};

struct kvm_vcpu_events {
    struct {
        __u8 serror_pending;
        __u8 serror_has_esr;
        __u8 ext_dabt_pending;
        __u8 pad[5];
        __u64 serror_esr;
    } exception;
    __u32 reserved[12];
};
""")

KVM_REG_ARM64 = 0x6000_0000_0000_0000
KVM_REG_SIZE_U64 = 0x0030_0000_0000_0000
KVM_REG_ARM_COPROC_SHIFT = 16
KVM_REG_ARM_CORE = 0x0010 << KVM_REG_ARM_COPROC_SHIFT
KVM_REG_ARM64_SYSREG = 0x0013 << KVM_REG_ARM_COPROC_SHIFT

KVM_ARM_VCPU_PMU_V3_CTRL = 0     # vCPU device-attribute group of the guest PMU
KVM_ARM_VCPU_PMU_V3_INIT = 1     # its "initialise" attribute

ESR_WFX_ISS_WFE = 1 << 0         # ESR_ELx.ISS.TI bit 0: 1 = WFE, 0 = WFI (Arm ARM D17.2.37, EC 0x01)


def core_reg(offset: int) -> int:
    """The ONE_REG id of the 64-bit core register at byte `offset` in struct kvm_regs."""
    if offset % 4 or not 0 <= offset < ffi.sizeof("struct kvm_regs"):
        raise ValueError(f"{offset:#x} is not a register offset inside struct kvm_regs")
    return KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | offset // 4


def sys_reg(op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
    """The ONE_REG id of a system register from its MRS/MSR encoding (ARM64_SYS_REG in asm/kvm.h)."""
    for name, value, bits in (("op0", op0, 2), ("op1", op1, 3), ("CRn", crn, 4), ("CRm", crm, 4), ("op2", op2, 3)):
        if not 0 <= value < 1 << bits:
            raise ValueError(f"system register {name}={value} does not fit its {bits}-bit field")
    return (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG
            | op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2)


def _core_offset(path: str) -> int:
    return ffi.offsetof("struct kvm_regs", *path.split("."))


# Register names (as the unicorn backend and the Arm ARM spell them) -> ONE_REG id.
CORE_REGS: dict[str, int] = {f"x{i}": core_reg(_core_offset("regs.regs") + 8 * i) for i in range(31)}
CORE_REGS |= {
    "sp_el0": core_reg(_core_offset("regs.sp")),
    "pc": core_reg(_core_offset("regs.pc")),
    "pstate": core_reg(_core_offset("regs.pstate")),
    "sp_el1": core_reg(_core_offset("sp_el1")),
    "elr_el1": core_reg(_core_offset("elr_el1")),
    "spsr_el1": core_reg(_core_offset("spsr")),
}
SYSREGS: dict[str, int] = {
    "sctlr_el1": sys_reg(3, 0, 1, 0, 0),
    "ttbr0_el1": sys_reg(3, 0, 2, 0, 0),
    "ttbr1_el1": sys_reg(3, 0, 2, 0, 1),
    "tcr_el1": sys_reg(3, 0, 2, 0, 2),
    "esr_el1": sys_reg(3, 0, 5, 2, 0),
    "far_el1": sys_reg(3, 0, 6, 0, 0),
    "mair_el1": sys_reg(3, 0, 10, 2, 0),
    "vbar_el1": sys_reg(3, 0, 12, 0, 0),
    "mpidr_el1": sys_reg(3, 0, 0, 0, 5),
    "midr_el1": sys_reg(3, 0, 0, 0, 0),
}


class TimerReg:
    """The in-kernel generic timer through ONE_REG (asm/kvm.h).

    Beware: the kernel's ids of TIMER_CNT and TIMER_CVAL carry each other's
    architectural encodings (CNTV_CVAL_EL0 is 3,3,14,3,2; CNTVCT_EL0 3,3,14,0,2)
    — a historical mistake kept for ABI compatibility (api.rst, arm64 ONE_REG notes).
    Writing TIMER_CNT sets the guest's virtual counter (it moves CNTVOFF).
    """

    TIMER_CTL = sys_reg(3, 3, 14, 3, 1)      # CNTV_CTL_EL0
    TIMER_CVAL = sys_reg(3, 3, 14, 0, 2)     # CNTV_CVAL_EL0 (encoding of CNTVCT_EL0, see above)
    TIMER_CNT = sys_reg(3, 3, 14, 3, 2)      # CNTVCT_EL0 (encoding of CNTV_CVAL_EL0, see above)
    PTIMER_CTL = sys_reg(3, 3, 14, 2, 1)
    PTIMER_CVAL = sys_reg(3, 3, 14, 2, 2)
    PTIMER_CNT = sys_reg(3, 3, 14, 0, 1)


class Feature:
    """Bits of kvm_vcpu_init.features[0] (KVM_ARM_VCPU_*)."""

    POWER_OFF = 0
    EL1_32BIT = 1
    PSCI_0_2 = 2
    PMU_V3 = 3


class IrqType:
    """The type field of KVM_IRQ_LINE's irq word (KVM_ARM_IRQ_TYPE_*)."""

    CPU = 0      # the vCPU's own IRQ/FIQ input: the interrupt controller is in userspace
    SPI = 1
    PPI = 2


class CpuIrq:
    IRQ = 0      # KVM_ARM_IRQ_CPU_IRQ
    FIQ = 1      # KVM_ARM_IRQ_CPU_FIQ


class DeviceIrq:
    """Bits of kvm_run.s.regs.device_irq_level: output levels of the in-kernel devices (KVM_ARM_DEV_*)."""

    EL1_VTIMER = 1 << 0
    EL1_PTIMER = 1 << 1
    PMU = 1 << 2


def irq_line(irq_type: int, vcpu: int, number: int) -> int:
    """The irq word of KVM_IRQ_LINE: vcpu2 (bits 31:28), type (27:24), vcpu (23:16), number (15:0)."""
    if not 0 <= vcpu < 256 * 16:
        raise ValueError(f"vCPU index {vcpu} does not fit KVM_IRQ_LINE's 12-bit vCPU field")
    if not 0 <= number <= 0xFFFF:
        raise ValueError(f"interrupt number {number} does not fit KVM_IRQ_LINE's 16-bit field")
    return (vcpu >> 8) << 28 | irq_type << 24 | (vcpu & 0xFF) << 16 | number


class Arm64Ioctl:
    """ioctl numbers that exist only on arm64."""

    ARM_VCPU_INIT = IOW(KVMIO, 0xAE, ffi.sizeof("struct kvm_vcpu_init"))
    ARM_PREFERRED_TARGET = IOR(KVMIO, 0xAF, ffi.sizeof("struct kvm_vcpu_init"))
    GET_VCPU_EVENTS = IOR(KVMIO, 0x9F, ffi.sizeof("struct kvm_vcpu_events"))
    SET_VCPU_EVENTS = IOW(KVMIO, 0xA0, ffi.sizeof("struct kvm_vcpu_events"))
    SET_GUEST_DEBUG = IOW(KVMIO, 0x9B, ffi.sizeof("struct kvm_guest_debug"))


class Arm64Cap:
    """Arm64 capabilities (KVM_CAP_*) this backend asks about; the WFx one is configurable."""

    VCPU_EVENTS = 41
    ARM_PSCI_0_2 = 102
    ARM_PMU_V3 = 126
    ARM_USER_IRQ = 144
    ARM_NISV_TO_USER = 177
    ARM_INJECT_EXT_DABT = 178
    GUEST_DEBUG_HW_BPS = 119     # how many hardware breakpoints KVM_SET_GUEST_DEBUG can use
    GUEST_DEBUG_HW_WPS = 120     # ... and watchpoints


# KVM_SET_GUEST_DEBUG control bits (linux/kvm.h and arm64's asm/kvm.h)
KVM_GUESTDBG_ENABLE = 1 << 0
KVM_GUESTDBG_SINGLESTEP = 1 << 1
KVM_GUESTDBG_USE_SW_BP = 1 << 16
KVM_GUESTDBG_USE_HW = 1 << 17


# -- views into kvm_run ------------------------------------------------------------
# Safe casts: the sync-register area and the exit union are fixed-size byte
# arrays of the generic kvm_run at offsets checked against the header; each
# arm64 struct below is smaller than the area it is cast into.

def device_irq_level(run: CData) -> int:
    """kvm_run.s.regs.device_irq_level (arm64's struct kvm_sync_regs)."""
    return ffi.cast("struct kvm_sync_regs *", ffi.cast("char *", run) + KVM_RUN_SYNC_REGS_OFFSET).device_irq_level


def arm_nisv(run) -> tuple[int, int]:
    """(esr_iss, fault_ipa) of a KVM_EXIT_ARM_NISV exit."""
    nisv = ffi.cast("struct kvm_arm_nisv *", ffi.cast("char *", run) + KVM_RUN_EXIT_UNION_OFFSET)
    return nisv.esr_iss, nisv.fault_ipa


def debug_exit(run) -> tuple[int, int]:
    """(ESR, FAR) of a KVM_EXIT_DEBUG exit (arm64's struct kvm_debug_exit_arch: hsr, hsr_high, far)."""
    debug = ffi.cast("struct kvm_debug_exit_arch *", ffi.cast("char *", run) + KVM_RUN_EXIT_UNION_OFFSET)
    return debug.hsr | debug.hsr_high << 32, debug.far


def wfx_esr(run) -> int:
    """kvm_run.wfx.esr of the seed patch's KVM_EXIT_WFX."""
    return ffi.cast("struct kvm_wfx_exit *", ffi.cast("char *", run) + KVM_RUN_EXIT_UNION_OFFSET).esr


# -- capability probing ---------------------------------------------------------------
@dataclass(frozen=True)
class Arm64Features:
    """What the arm64 backend found on this host's KVM, and why each missing thing is missing."""

    user_irq: bool            # KVM_CAP_ARM_USER_IRQ: in-kernel timer levels reported to us
    pmu_v3: bool              # KVM_CAP_ARM_PMU_V3: the guest gets a PMU
    psci_0_2: bool            # KVM_CAP_ARM_PSCI_0_2
    nisv_to_user: bool        # KVM_CAP_ARM_NISV_TO_USER: undecodable MMIO exits with its address
    ext_dabt: bool            # KVM_CAP_ARM_INJECT_EXT_DABT: failed MMIO becomes a guest external abort
    wfx_exit: bool            # the seed's KVM_CAP_EXIT_ON_WFX, enabled
    wfx_cap: int              # the number probed for it
    wfx_note: str             # how the WFx probe went, for the run summary and errors

    def describe(self) -> str:
        idle = (f"idle exit on WFI/WFE (KVM_CAP_EXIT_ON_WFX = {self.wfx_cap})" if self.wfx_exit
                else f"no WFx exit ({self.wfx_note}): idle guests are kicked by a wall-clock budget")
        return idle + ("" if self.user_irq else "; no KVM_CAP_ARM_USER_IRQ")


def probe_arm64(check: Callable[[int], int], enable: Callable[[int], None], *, wfx_cap: int = DEFAULT_WFX_CAP,
                use_wfx: bool = True) -> Arm64Features:
    """Ask the VM (`check` = KVM_CHECK_EXTENSION on the VM fd) and enable the WFx exit where offered.

    The WFx capability is not upstream: a number answered by KVM_CHECK_EXTENSION
    could belong to another capability on a kernel without the seed patch, so it
    counts only once `enable(number)` (KVM_ENABLE_CAP on the VM, no arguments)
    succeeds too. Every other missing capability is reported, not fatal, except
    KVM_CAP_ARM_USER_IRQ (without it the in-kernel timer cannot reach the GIC model).
    """

    def has(cap: int) -> bool:
        try:
            return check(cap) > 0
        except KvmError:
            return False

    if not has(Arm64Cap.ARM_USER_IRQ):
        raise KvmError("this host's KVM lacks KVM_CAP_ARM_USER_IRQ (Linux 4.15+): the in-kernel timer's "
                       "interrupt could not reach the userspace GIC model; probing", _errno.ENOTSUP)
    wfx, note = False, f"disabled by configuration (cap {wfx_cap})"
    if use_wfx:
        if not has(wfx_cap):
            note = (f"KVM_CHECK_EXTENSION({wfx_cap}) says no: the host kernel lacks the seed's "
                    "KVM_CAP_EXIT_ON_WFX patch, or numbers it differently")
        else:
            try:
                enable(wfx_cap)
                wfx, note = True, "enabled"
            except KvmError as error:
                note = f"capability {wfx_cap} is offered but enabling it failed ({error}): not the WFx exit"
    return Arm64Features(user_irq=True, pmu_v3=has(Arm64Cap.ARM_PMU_V3), psci_0_2=has(Arm64Cap.ARM_PSCI_0_2),
                         nisv_to_user=has(Arm64Cap.ARM_NISV_TO_USER), ext_dabt=has(Arm64Cap.ARM_INJECT_EXT_DABT),
                         wfx_exit=wfx, wfx_cap=wfx_cap, wfx_note=note)
