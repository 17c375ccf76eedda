"""x86 vCPU state through KVM: general and system registers, entry states, CPUID, register dumps."""

from __future__ import annotations

import errno
from collections.abc import Iterable

from ...kvm._system import Kvm, KvmError, Vcpu
from ...kvm._uapi import CData
from ...kvm._x86 import MAX_CPUID_ENTRIES, X86Ioctl, ffi
from ...loaders.x86 import EntryState, Segment

__all__ = ["X86State", "CpuidMask", "DEFAULT_HIDDEN", "supported_cpuid", "set_cpuid", "GPRS", "SREG_FIELDS",
           "MSR_IA32_TSC"]

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
        "r15", "rip", "rflags")
SREG_FIELDS = ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base")
SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss")
MSR_IA32_TSC = 0x10

# (leaf, subleaf or None, register, bits to clear). The platform hides what it does not model.
CpuidMask = tuple[int, int | None, str, int]
CPUID_1_EDX_APIC = 1 << 9          # on-chip local APIC: none without an in-kernel irqchip
CPUID_1_ECX_X2APIC = 1 << 21
CPUID_1_ECX_TSC_DEADLINE = 1 << 24
CPUID_1_ECX_HYPERVISOR = 1 << 31
DEFAULT_HIDDEN: tuple[CpuidMask, ...] = (
    (1, None, "edx", CPUID_1_EDX_APIC),
    (1, None, "ecx", CPUID_1_ECX_X2APIC | CPUID_1_ECX_TSC_DEADLINE),
)


def supported_cpuid(kvm: Kvm) -> CData:
    """The host's `struct kvm_cpuid2 *` (KVM_GET_SUPPORTED_CPUID)."""
    cpuid = ffi.new("struct kvm_cpuid2 *", {"nent": MAX_CPUID_ENTRIES, "entries": MAX_CPUID_ENTRIES})
    kvm.ioctl(X86Ioctl.GET_SUPPORTED_CPUID, cpuid, what="KVM_GET_SUPPORTED_CPUID")
    return cpuid


def set_cpuid(kvm: Kvm, vcpu: Vcpu, hidden: Iterable[CpuidMask] = DEFAULT_HIDDEN) -> dict[int, tuple[int, int, int, int]]:
    """KVM_SET_CPUID2 with what the host supports minus `hidden`; returns {leaf: (eax, ebx, ecx, edx)} of subleaf 0."""
    cpuid = supported_cpuid(kvm)
    hidden = list(hidden)
    leaves: dict[int, tuple[int, int, int, int]] = {}
    for i in range(cpuid.nent):
        entry = cpuid.entries[i]
        for leaf, index, register, bits in hidden:
            if entry.function == leaf and (index is None or entry.index == index):
                setattr(entry, register, getattr(entry, register) & ~bits)
        if entry.index == 0:
            leaves[entry.function] = (entry.eax, entry.ebx, entry.ecx, entry.edx)
    vcpu.ioctl(X86Ioctl.SET_CPUID2, cpuid, what="KVM_SET_CPUID2")
    return leaves


class X86State:
    """Registers of one x86 vCPU; reads complete a half-done I/O exit first (immediate_exit)."""

    def __init__(self, vcpu: Vcpu) -> None:
        self.vcpu = vcpu
        self._regs = ffi.new("struct kvm_regs *")
        self._sregs = ffi.new("struct kvm_sregs *")
        self._msrs = ffi.new("struct kvm_msrs *", {"nmsrs": 1, "entries": 1})
        self.pending_completion = False   # set by the backend after an I/O or MMIO exit

    def _settle(self) -> None:
        if self.pending_completion:
            self.vcpu.complete_pending()
            self.pending_completion = False

    def regs(self) -> CData:
        """A fresh snapshot of the registers, as `struct kvm_regs *`."""
        self._settle()
        self.vcpu.ioctl(X86Ioctl.GET_REGS, self._regs, what="KVM_GET_REGS")
        return self._regs

    def set_regs(self, regs) -> None:
        self._settle()
        self.vcpu.ioctl(X86Ioctl.SET_REGS, regs, what="KVM_SET_REGS")

    def sregs(self) -> CData:
        """The special registers, as `struct kvm_sregs *`."""
        self._settle()
        self.vcpu.ioctl(X86Ioctl.GET_SREGS, self._sregs, what="KVM_GET_SREGS")
        return self._sregs

    def set_sregs(self, sregs) -> None:
        self._settle()
        self.vcpu.ioctl(X86Ioctl.SET_SREGS, sregs, what="KVM_SET_SREGS")

    def read(self, name: str) -> int:
        name = "rip" if name == "pc" else name
        if name in GPRS:
            return getattr(self.regs(), name)
        if name in SREG_FIELDS:
            return getattr(self.sregs(), name)
        if name in SEGMENTS:
            return getattr(self.sregs(), name).selector
        if name == "tsc":
            return self.read_msr(MSR_IA32_TSC)
        raise KeyError(f"unknown x86 register {name!r}; known: {', '.join(GPRS + SREG_FIELDS + SEGMENTS)}, tsc")

    def write(self, name: str, value: int) -> None:
        name = "rip" if name == "pc" else name
        if name in GPRS:
            regs = self.regs()
            setattr(regs, name, value)
            self.set_regs(regs)
        elif name in SREG_FIELDS:
            sregs = self.sregs()
            setattr(sregs, name, value)
            self.set_sregs(sregs)
        else:
            raise KeyError(f"register {name!r} cannot be written this way")

    def read_msr(self, index: int) -> int:
        self._msrs.entries[0].index = index
        if self.vcpu.ioctl(X86Ioctl.GET_MSRS, self._msrs, what=f"KVM_GET_MSRS({index:#x})") != 1:
            raise KvmError(f"KVM_GET_MSRS({index:#x}): MSR not readable", errno.EINVAL)
        return self._msrs.entries[0].data

    def set_entry(self, state: EntryState) -> None:
        """Load a loader's entry state (segments, control registers, GDT, RIP/RSP/RFLAGS)."""
        sregs = self.sregs()
        _segment(sregs.cs, state.code)
        for name in ("ds", "es", "fs", "gs", "ss"):
            _segment(getattr(sregs, name), state.data)
        sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer = state.cr0, state.cr3, state.cr4, state.efer
        sregs.gdt.base, sregs.gdt.limit = state.gdt
        self.set_sregs(sregs)
        regs = self.regs()
        ffi.memmove(regs, bytes(ffi.sizeof("struct kvm_regs")), ffi.sizeof("struct kvm_regs"))
        regs.rip, regs.rsp, regs.rflags = state.rip, state.rsp, state.rflags
        for name, value in state.regs.items():
            if name not in GPRS:
                raise KeyError(f"entry state sets unknown register {name!r}")
            setattr(regs, name, value)
        self.set_regs(regs)

    def dump(self) -> str:
        regs, sregs = self.regs(), self.sregs()
        names = GPRS[:16]
        rows = ["  ".join(f"{n:<3}={getattr(regs, n):016x}" for n in names[i:i + 4]) for i in range(0, 16, 4)]
        rows.append(f"rip={regs.rip:016x}  rflags={regs.rflags:08x}")
        rows.append("  ".join(f"{n}={getattr(sregs, n).selector:04x}" for n in SEGMENTS)
                    + f"  cs.base={sregs.cs.base:x} cs.l={sregs.cs.l} cs.db={sregs.cs.db}")
        rows.append(f"cr0={sregs.cr0:08x}  cr2={sregs.cr2:016x}  cr3={sregs.cr3:016x}  cr4={sregs.cr4:08x}  "
                    f"efer={sregs.efer:x}")
        rows.append(f"gdt={sregs.gdt.base:x}/{sregs.gdt.limit:x}  idt={sregs.idt.base:x}/{sregs.idt.limit:x}")
        return "\n".join(rows)


def _segment(target, source: Segment) -> None:
    target.selector, target.base, target.limit, target.type = source.selector, source.base, source.limit, source.type
    target.present, target.dpl, target.db, target.s = source.present, source.dpl, source.db, source.s
    target.l, target.g, target.avl, target.unusable = source.l, source.g, 0, 0

