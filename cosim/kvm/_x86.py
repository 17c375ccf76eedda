"""x86-specific KVM UAPI (`<asm/kvm.h>` for x86): registers, segments, CPUID, MSRs, debug, vCPU events.

Its FFI includes the generic one (`_uapi.ffi`), so `ffi.new("struct kvm_run *")`
and the x86 structs come from the same place.
"""

from __future__ import annotations

from cffi import FFI

from . import _uapi
from ._uapi import IO, IOR, IOW, IOWR, KVMIO

__all__ = ["ffi", "X86Ioctl", "KVM_NR_INTERRUPTS", "KVM_GUESTDBG_ENABLE", "KVM_GUESTDBG_SINGLESTEP",
           "KVM_GUESTDBG_USE_SW_BP", "KVM_GUESTDBG_USE_HW_BP", "KVM_VCPU_TSC_CTRL", "KVM_VCPU_TSC_OFFSET",
           "KVM_SYNC_X86_REGS", "KVM_SYNC_X86_SREGS", "KVM_SYNC_X86_EVENTS",
           "KVM_CPUID_FLAG_SIGNIFCANT_INDEX", "MAX_CPUID_ENTRIES"]

ffi = FFI()
ffi.include(_uapi.ffi)
ffi.cdef("""
struct kvm_regs {
    __u64 rax, rbx, rcx, rdx;
    __u64 rsi, rdi, rsp, rbp;
    __u64 r8,  r9,  r10, r11;
    __u64 r12, r13, r14, r15;
    __u64 rip, rflags;
};

struct kvm_segment {
    __u64 base;
    __u32 limit;
    __u16 selector;
    __u8  type;
    __u8  present, dpl, db, s, l, g, avl;
    __u8  unusable;
    __u8  padding;
};

struct kvm_dtable {
    __u64 base;
    __u16 limit;
    __u16 padding[3];
};

struct kvm_sregs {
    struct kvm_segment cs, ds, es, fs, gs, ss;
    struct kvm_segment tr, ldt;
    struct kvm_dtable gdt, idt;
    __u64 cr0, cr2, cr3, cr4, cr8;
    __u64 efer;
    __u64 apic_base;
    __u64 interrupt_bitmap[4];   /* (KVM_NR_INTERRUPTS + 63) / 64 */
};

struct kvm_msr_entry {
    __u32 index;
    __u32 reserved;
    __u64 data;
};

struct kvm_msrs {
    __u32 nmsrs;
    __u32 pad;
    struct kvm_msr_entry entries[];
};

struct kvm_cpuid_entry2 {
    __u32 function;
    __u32 index;
    __u32 flags;
    __u32 eax;
    __u32 ebx;
    __u32 ecx;
    __u32 edx;
    __u32 padding[3];
};

struct kvm_cpuid2 {
    __u32 nent;
    __u32 padding;
    struct kvm_cpuid_entry2 entries[];
};

struct kvm_debug_exit_arch {
    __u32 exception;
    __u32 pad;
    __u64 pc;
    __u64 dr6;
    __u64 dr7;
};

struct kvm_guest_debug_arch {
    __u64 debugreg[8];
};

struct kvm_guest_debug {
    __u32 control;
    __u32 pad;
    struct kvm_guest_debug_arch arch;
};

struct kvm_vcpu_events {
    struct { __u8 injected, nr, has_error_code, pending; __u32 error_code; } exception;
    struct { __u8 injected, nr, soft, shadow; } interrupt;
    struct { __u8 injected, pending, masked, pad; } nmi;
    __u32 sipi_vector;
    __u32 flags;
    struct { __u8 smm, pending, smm_inside_nmi, latched_init; } smi;
    struct { __u8 pending; } triple_fault;
    __u8 reserved[26];
    __u8 exception_has_payload;
    __u64 exception_payload;
};

struct kvm_fpu {
    __u8  fpr[8][16];
    __u16 fcw;
    __u16 fsw;
    __u8  ftwx;            /* in fxsave format */
    __u8  pad1;
    __u16 last_opcode;
    __u64 last_ip;
    __u64 last_dp;
    __u8  xmm[16][16];
    __u32 mxcsr;
    __u32 pad2;
};

struct kvm_translation {
    __u64 linear_address;
    __u64 physical_address;
    __u8  valid;
    __u8  writeable;
    __u8  usermode;
    __u8  pad[5];
};

struct kvm_sync_regs {              /* kvm_run.s.regs on x86 */
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_vcpu_events events;
};
""")

KVM_NR_INTERRUPTS = 256
MAX_CPUID_ENTRIES = 256   # what QEMU and kvmtool ask KVM_GET_SUPPORTED_CPUID for
KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1 << 0   # (sic: the kernel's spelling)
KVM_GUESTDBG_ENABLE = 0x00000001
KVM_GUESTDBG_SINGLESTEP = 0x00000002
KVM_GUESTDBG_USE_SW_BP = 0x00010000
KVM_GUESTDBG_USE_HW_BP = 0x00020000
KVM_VCPU_TSC_CTRL = 0       # vCPU device-attribute group of the TSC
KVM_VCPU_TSC_OFFSET = 0     # its offset attribute (KVM_CAP_VCPU_ATTRIBUTES)
# kvm_run.kvm_valid_regs / kvm_dirty_regs bits (KVM_CAP_SYNC_REGS answers with the ones the host has)
KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS, KVM_SYNC_X86_EVENTS = 1 << 0, 1 << 1, 1 << 2


class X86Ioctl:
    """ioctl numbers that exist only on x86."""

    GET_SUPPORTED_CPUID = IOWR(KVMIO, 0x05, ffi.sizeof("struct kvm_cpuid2"))
    SET_TSS_ADDR = IO(KVMIO, 0x47)
    SET_IDENTITY_MAP_ADDR = IOW(KVMIO, 0x48, 8)
    GET_REGS = IOR(KVMIO, 0x81, ffi.sizeof("struct kvm_regs"))
    SET_REGS = IOW(KVMIO, 0x82, ffi.sizeof("struct kvm_regs"))
    GET_SREGS = IOR(KVMIO, 0x83, ffi.sizeof("struct kvm_sregs"))
    SET_SREGS = IOW(KVMIO, 0x84, ffi.sizeof("struct kvm_sregs"))
    TRANSLATE = IOWR(KVMIO, 0x85, ffi.sizeof("struct kvm_translation"))
    GET_MSRS = IOWR(KVMIO, 0x88, ffi.sizeof("struct kvm_msrs"))
    SET_MSRS = IOW(KVMIO, 0x89, ffi.sizeof("struct kvm_msrs"))
    GET_FPU = IOR(KVMIO, 0x8C, ffi.sizeof("struct kvm_fpu"))
    SET_FPU = IOW(KVMIO, 0x8D, ffi.sizeof("struct kvm_fpu"))
    SET_CPUID2 = IOW(KVMIO, 0x90, ffi.sizeof("struct kvm_cpuid2"))
    SET_GUEST_DEBUG = IOW(KVMIO, 0x9B, ffi.sizeof("struct kvm_guest_debug"))
    SET_TSC_KHZ = IO(KVMIO, 0xA2)
    GET_TSC_KHZ = IO(KVMIO, 0xA3)
