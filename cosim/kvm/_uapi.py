"""The architecture-independent part of the Linux KVM UAPI (`<linux/kvm.h>`), in cffi ABI mode.

ABI mode (`FFI.cdef` + `dlopen`) needs no compiler at install time: the
layouts below are written out by hand and `tests/kvm/test_uapi.py` checks
every size, every offset the backends use and every ioctl number against
the host's `<linux/kvm.h>` compiled with gcc.

Architecture modules (`_x86.py`, an `_arm64.py` beside it) build their own
FFI that `include`s this one and add `kvm_regs` & co.; nothing here depends on
the architecture. The arch-specific parts of `kvm_run` (the debug exit, the
`s.regs` sync-register area) appear here only as byte arrays at their fixed
offsets, for the architecture module to cast.
"""

from __future__ import annotations

from cffi import FFI

__all__ = [
    "ffi", "libc", "IOC_NONE", "IOC_WRITE", "IOC_READ", "IO", "IOR", "IOW", "IOWR",
    "KVMIO", "KVM_API_VERSION", "Exit", "Cap", "Ioctl", "KVM_MEM_READONLY", "KVM_EXIT_IO_IN", "KVM_EXIT_IO_OUT",
    "SystemEvent", "KVM_RUN_EXIT_UNION_OFFSET", "KVM_RUN_SYNC_REGS_OFFSET", "KVM_RUN_SYNC_REGS_SIZE", "CData",
]

ffi = FFI()
# The type of every cffi pointer or struct (of any FFI instance), for annotations: the docstring names the C type.
CData = ffi.CData
ffi.cdef("""
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int __s32;

struct kvm_run {
    /* in */
    __u8 request_interrupt_window;
    __u8 immediate_exit;
    __u8 padding1[6];
    /* out */
    __u32 exit_reason;
    __u8 ready_for_interrupt_injection;
    __u8 if_flag;
    __u16 flags;
    /* in (pre_kvm_run), out (post_kvm_run) */
    __u64 cr8;
    __u64 apic_base;
    union {
        struct { __u64 hardware_exit_reason; } hw;                            /* KVM_EXIT_UNKNOWN */
        struct { __u64 hardware_entry_failure_reason; __u32 cpu; } fail_entry; /* KVM_EXIT_FAIL_ENTRY */
        struct { __u32 exception; __u32 error_code; } ex;                    /* KVM_EXIT_EXCEPTION */
        struct { __u8 direction; __u8 size; __u16 port; __u32 count; __u64 data_offset; } io;  /* KVM_EXIT_IO */
        struct { __u64 phys_addr; __u8 data[8]; __u32 len; __u8 is_write; } mmio;             /* KVM_EXIT_MMIO */
        struct { __u32 suberror; __u32 ndata; __u64 data[16]; } internal;    /* KVM_EXIT_INTERNAL_ERROR */
        struct { __u32 type; __u32 ndata; union { __u64 flags; __u64 data[16]; }; } system_event;
        char padding[256];                                                   /* fixes the union's size */
    };
    __u64 kvm_valid_regs;
    __u64 kvm_dirty_regs;
    union {
        char padding[2048];   /* struct kvm_sync_regs regs: per architecture */
    } s;
};

struct kvm_userspace_memory_region {
    __u32 slot;
    __u32 flags;
    __u64 guest_phys_addr;
    __u64 memory_size;
    __u64 userspace_addr;
};

struct kvm_enable_cap {
    __u32 cap;
    __u32 flags;
    __u64 args[4];
    __u8 pad[64];
};

struct kvm_one_reg {
    __u64 id;
    __u64 addr;
};

struct kvm_irq_level {
    union { __u32 irq; __s32 status; };
    __u32 level;
};

struct kvm_interrupt {
    __u32 irq;
};

struct kvm_mp_state {
    __u32 mp_state;
};

struct kvm_signal_mask {
    __u32 len;
    __u8 sigset[];
};

struct kvm_device_attr {
    __u32 flags;
    __u32 group;
    __u64 attr;
    __u64 addr;
};

/* the header of struct kvm_guest_debug; the architecture's arch part follows it */
struct kvm_guest_debug_header {
    __u32 control;
    __u32 pad;
};

/* libc, through dlopen(NULL): cffi releases the GIL around each call and keeps errno */
int ioctl(int fd, unsigned long request, ...);
int open(const char *path, int flags, ...);
int close(int fd);
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int munmap(void *addr, size_t length);
""")

# The process's C library (glibc/musl). ABI mode: no compiled extension.
libc = ffi.dlopen(None)

# -- ioctl number encoding (include/uapi/asm-generic/ioctl.h; x86 and arm64 use the generic one) --
IOC_NRBITS, IOC_TYPEBITS, IOC_SIZEBITS = 8, 8, 14
IOC_NRSHIFT = 0
IOC_TYPESHIFT = IOC_NRSHIFT + IOC_NRBITS
IOC_SIZESHIFT = IOC_TYPESHIFT + IOC_TYPEBITS
IOC_DIRSHIFT = IOC_SIZESHIFT + IOC_SIZEBITS
IOC_NONE, IOC_WRITE, IOC_READ = 0, 1, 2


def _ioc(direction: int, kind: int, number: int, size: int) -> int:
    if size >= 1 << IOC_SIZEBITS:
        raise ValueError(f"ioctl argument of {size} bytes does not fit the {IOC_SIZEBITS}-bit size field")
    return (direction << IOC_DIRSHIFT) | (kind << IOC_TYPESHIFT) | (number << IOC_NRSHIFT) | (size << IOC_SIZESHIFT)


def _size(ctype: str | int) -> int:
    return ctype if isinstance(ctype, int) else ffi.sizeof(ctype)


def IO(kind: int, number: int) -> int:  # noqa: N802 (the kernel's macro names)
    return _ioc(IOC_NONE, kind, number, 0)


def IOR(kind: int, number: int, ctype: str | int) -> int:  # noqa: N802
    return _ioc(IOC_READ, kind, number, _size(ctype))


def IOW(kind: int, number: int, ctype: str | int) -> int:  # noqa: N802
    return _ioc(IOC_WRITE, kind, number, _size(ctype))


def IOWR(kind: int, number: int, ctype: str | int) -> int:  # noqa: N802
    return _ioc(IOC_READ | IOC_WRITE, kind, number, _size(ctype))


KVMIO = 0xAE
KVM_API_VERSION = 12            # the only stable version (Documentation/virt/kvm/api.rst 4.1)
KVM_MEM_READONLY = 1 << 1
KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT = 0, 1

# Byte offsets inside kvm_run that architecture modules cast from.
KVM_RUN_EXIT_UNION_OFFSET = ffi.offsetof("struct kvm_run", "hw")
KVM_RUN_SYNC_REGS_OFFSET = ffi.offsetof("struct kvm_run", "s")
KVM_RUN_SYNC_REGS_SIZE = 2048


class Ioctl:
    """The generic ioctl numbers (system, VM and vCPU fds)."""

    # /dev/kvm
    GET_API_VERSION = IO(KVMIO, 0x00)
    CREATE_VM = IO(KVMIO, 0x01)
    CHECK_EXTENSION = IO(KVMIO, 0x03)
    GET_VCPU_MMAP_SIZE = IO(KVMIO, 0x04)
    # VM fd
    CREATE_VCPU = IO(KVMIO, 0x41)
    SET_USER_MEMORY_REGION = IOW(KVMIO, 0x46, "struct kvm_userspace_memory_region")
    IRQ_LINE = IOW(KVMIO, 0x61, "struct kvm_irq_level")
    ENABLE_CAP = IOW(KVMIO, 0xA3, "struct kvm_enable_cap")   # also on vCPU fds
    # vCPU fd
    RUN = IO(KVMIO, 0x80)
    INTERRUPT = IOW(KVMIO, 0x86, "struct kvm_interrupt")
    SET_SIGNAL_MASK = IOW(KVMIO, 0x8B, "struct kvm_signal_mask")
    GET_MP_STATE = IOR(KVMIO, 0x98, "struct kvm_mp_state")
    NMI = IO(KVMIO, 0x9A)
    GET_ONE_REG = IOW(KVMIO, 0xAB, "struct kvm_one_reg")
    SET_ONE_REG = IOW(KVMIO, 0xAC, "struct kvm_one_reg")
    SET_DEVICE_ATTR = IOW(KVMIO, 0xE1, "struct kvm_device_attr")
    GET_DEVICE_ATTR = IOW(KVMIO, 0xE2, "struct kvm_device_attr")
    HAS_DEVICE_ATTR = IOW(KVMIO, 0xE3, "struct kvm_device_attr")


# struct kvm_mp_state's values (KVM_MP_STATE_*): a vCPU PSCI has powered off is STOPPED.
KVM_MP_STATE_RUNNABLE = 0
KVM_MP_STATE_STOPPED = 5


class Exit:
    """kvm_run.exit_reason values (KVM_EXIT_*)."""

    UNKNOWN = 0
    EXCEPTION = 1
    IO = 2
    HYPERCALL = 3
    DEBUG = 4
    HLT = 5
    MMIO = 6
    IRQ_WINDOW_OPEN = 7
    SHUTDOWN = 8
    FAIL_ENTRY = 9
    INTR = 10
    SET_TPR = 11
    TPR_ACCESS = 12
    NMI = 16
    INTERNAL_ERROR = 17
    SYSTEM_EVENT = 24
    ARM_NISV = 28
    X86_RDMSR = 29
    X86_WRMSR = 30
    X86_BUS_LOCK = 33
    NOTIFY = 37

    @classmethod
    def name(cls, reason: int) -> str:
        for key, value in vars(cls).items():
            if key.isupper() and value == reason:
                return f"KVM_EXIT_{key}"
        return f"exit reason {reason}"


class SystemEvent:
    """kvm_run.system_event.type values."""

    SHUTDOWN = 1
    RESET = 2
    CRASH = 3
    WAKEUP = 4
    SUSPEND = 5


class Cap:
    """Capabilities probed with KVM_CHECK_EXTENSION (KVM_CAP_*)."""

    IRQCHIP = 0
    HLT = 1
    USER_MEMORY = 3
    SET_TSS_ADDR = 4
    EXT_CPUID = 7
    NR_VCPUS = 9
    NR_MEMSLOTS = 10
    MP_STATE = 14
    USER_NMI = 22
    SET_GUEST_DEBUG = 23
    SET_IDENTITY_MAP_ADDR = 37
    INTERNAL_ERROR_DATA = 40
    TSC_CONTROL = 60
    GET_TSC_KHZ = 61
    MAX_VCPUS = 66
    ONE_REG = 70
    SYNC_REGS = 74
    READONLY_MEM = 81
    VCPU_ATTRIBUTES = 127
    IMMEDIATE_EXIT = 136
    X86_DISABLE_EXITS = 143
