"""The cffi layouts and ioctl numbers against the host's <linux/kvm.h>, compiled with gcc at test time."""

import pytest

from cosim.kvm import _uapi, _x86
from cosim.kvm._uapi import Ioctl, ffi
from cosim.kvm._x86 import X86Ioctl

# (C type, cffi type, fields whose offsets the backends use)
STRUCTS = [
    ("struct kvm_run", _uapi.ffi, "struct kvm_run",
     ["request_interrupt_window", "immediate_exit", "exit_reason", "ready_for_interrupt_injection", "if_flag",
      "flags", "cr8", "apic_base", "kvm_valid_regs", "kvm_dirty_regs", "s"]),
    ("struct kvm_userspace_memory_region", _uapi.ffi, "struct kvm_userspace_memory_region",
     ["slot", "flags", "guest_phys_addr", "memory_size", "userspace_addr"]),
    ("struct kvm_enable_cap", _uapi.ffi, "struct kvm_enable_cap", ["cap", "flags", "args", "pad"]),
    ("struct kvm_one_reg", _uapi.ffi, "struct kvm_one_reg", ["id", "addr"]),
    ("struct kvm_irq_level", _uapi.ffi, "struct kvm_irq_level", ["irq", "level"]),
    ("struct kvm_interrupt", _uapi.ffi, "struct kvm_interrupt", ["irq"]),
    ("struct kvm_signal_mask", _uapi.ffi, "struct kvm_signal_mask", ["len", "sigset"]),
    ("struct kvm_device_attr", _uapi.ffi, "struct kvm_device_attr", ["flags", "group", "attr", "addr"]),
    ("struct kvm_regs", _x86.ffi, "struct kvm_regs", ["rax", "rcx", "rsp", "r8", "r15", "rip", "rflags"]),
    ("struct kvm_segment", _x86.ffi, "struct kvm_segment",
     ["base", "limit", "selector", "type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable"]),
    ("struct kvm_dtable", _x86.ffi, "struct kvm_dtable", ["base", "limit"]),
    ("struct kvm_sregs", _x86.ffi, "struct kvm_sregs",
     ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt", "gdt", "idt", "cr0", "cr2", "cr3", "cr4", "cr8", "efer",
      "apic_base", "interrupt_bitmap"]),
    ("struct kvm_msr_entry", _x86.ffi, "struct kvm_msr_entry", ["index", "data"]),
    ("struct kvm_msrs", _x86.ffi, "struct kvm_msrs", ["nmsrs", "entries"]),
    ("struct kvm_cpuid_entry2", _x86.ffi, "struct kvm_cpuid_entry2",
     ["function", "index", "flags", "eax", "ebx", "ecx", "edx"]),
    ("struct kvm_cpuid2", _x86.ffi, "struct kvm_cpuid2", ["nent", "entries"]),
    ("struct kvm_guest_debug", _x86.ffi, "struct kvm_guest_debug", ["control", "arch"]),
    ("struct kvm_debug_exit_arch", _x86.ffi, "struct kvm_debug_exit_arch", ["exception", "pc", "dr6", "dr7"]),
    ("struct kvm_vcpu_events", _x86.ffi, "struct kvm_vcpu_events",
     ["exception", "interrupt", "nmi", "sipi_vector", "flags", "smi", "triple_fault", "reserved",
      "exception_has_payload", "exception_payload"]),
    ("struct kvm_fpu", _x86.ffi, "struct kvm_fpu",
     ["fpr", "fcw", "fsw", "ftwx", "last_opcode", "last_ip", "last_dp", "xmm", "mxcsr"]),
    ("struct kvm_translation", _x86.ffi, "struct kvm_translation",
     ["linear_address", "physical_address", "valid", "writeable", "usermode"]),
    ("struct kvm_sync_regs", _x86.ffi, "struct kvm_sync_regs", ["regs", "sregs", "events"]),
]

# Members of the kvm_run exit union: (C path, cffi path)
UNION_FIELDS = ["hw.hardware_exit_reason", "fail_entry.hardware_entry_failure_reason", "fail_entry.cpu",
                "ex.exception", "ex.error_code", "io.direction", "io.size", "io.port", "io.count", "io.data_offset",
                "mmio.phys_addr", "mmio.data", "mmio.len", "mmio.is_write", "internal.suberror", "internal.ndata",
                "internal.data", "system_event.type", "system_event.ndata", "system_event.flags",
                "system_event.data", "padding"]

IOCTLS = {**{f"KVM_{k}": v for k, v in vars(Ioctl).items() if k.isupper()},
          **{f"KVM_{k}": v for k, v in vars(X86Ioctl).items() if k.isupper()}}
CONSTANTS = {f"KVM_EXIT_{k}": v for k, v in vars(_uapi.Exit).items() if k.isupper()}
CONSTANTS |= {f"KVM_CAP_{k}": v for k, v in vars(_uapi.Cap).items() if k.isupper()}
CONSTANTS |= {f"KVM_SYSTEM_EVENT_{k}": v for k, v in vars(_uapi.SystemEvent).items() if k.isupper()}
CONSTANTS |= {"KVM_MEM_READONLY": _uapi.KVM_MEM_READONLY, "KVM_API_VERSION": _uapi.KVM_API_VERSION,
              "KVM_EXIT_IO_IN": _uapi.KVM_EXIT_IO_IN, "KVM_EXIT_IO_OUT": _uapi.KVM_EXIT_IO_OUT,
              "KVMIO": _uapi.KVMIO, "KVM_NR_INTERRUPTS": _x86.KVM_NR_INTERRUPTS,
              "KVM_GUESTDBG_ENABLE": _x86.KVM_GUESTDBG_ENABLE, "KVM_GUESTDBG_SINGLESTEP": _x86.KVM_GUESTDBG_SINGLESTEP,
              "KVM_GUESTDBG_USE_SW_BP": _x86.KVM_GUESTDBG_USE_SW_BP,
              "KVM_GUESTDBG_USE_HW_BP": _x86.KVM_GUESTDBG_USE_HW_BP,
              "KVM_VCPU_TSC_CTRL": _x86.KVM_VCPU_TSC_CTRL, "KVM_VCPU_TSC_OFFSET": _x86.KVM_VCPU_TSC_OFFSET,
              "KVM_CPUID_FLAG_SIGNIFCANT_INDEX": _x86.KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
              "KVM_SYNC_X86_REGS": _x86.KVM_SYNC_X86_REGS, "KVM_SYNC_X86_SREGS": _x86.KVM_SYNC_X86_SREGS,
              "KVM_SYNC_X86_EVENTS": _x86.KVM_SYNC_X86_EVENTS}


@pytest.fixture(scope="module")
def header(c_values):
    """name -> value, printed by a C program built against the host's <linux/kvm.h>."""
    expressions = {}
    for ctype, _, _, fields in STRUCTS:
        expressions[f"sizeof {ctype}"] = f"sizeof({ctype})"
        for field in fields:
            expressions[f"offsetof {ctype} {field}"] = f"offsetof({ctype}, {field})"
    for path in UNION_FIELDS:
        expressions[f"offsetof struct kvm_run {path}"] = f"offsetof(struct kvm_run, {path})"
    expressions |= {name: name for name in {**IOCTLS, **CONSTANTS}}
    return c_values(["linux/kvm.h"], expressions)


def _offset(ffi_, ctype: str, path: str) -> int:
    return ffi_.offsetof(ctype, *path.split("."))


@pytest.mark.parametrize("ctype, ffi_, cname, fields", STRUCTS, ids=[s[0] for s in STRUCTS])
def test_struct_size_and_offsets_match_the_header(header, ctype, ffi_, cname, fields):
    assert ffi_.sizeof(cname) == header[f"sizeof {ctype}"]
    for field in fields:
        assert ffi_.offsetof(cname, field) == header[f"offsetof {ctype} {field}"], field


@pytest.mark.parametrize("path", UNION_FIELDS)
def test_kvm_run_exit_union_member_offsets(header, path):
    assert _offset(ffi, "struct kvm_run", path) == header[f"offsetof struct kvm_run {path}"]


@pytest.mark.parametrize("name", sorted(IOCTLS))
def test_ioctl_numbers_match_the_header(header, name):
    assert IOCTLS[name] == header[name], f"{name}: {IOCTLS[name]:#x} != {header[name]:#x}"


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_constants_match_the_header(header, name):
    assert CONSTANTS[name] == header[name]


def test_sync_regs_area_offset_is_exported(header):
    assert _uapi.KVM_RUN_SYNC_REGS_OFFSET == header["offsetof struct kvm_run s"]
    assert _uapi.KVM_RUN_EXIT_UNION_OFFSET == header["offsetof struct kvm_run hw.hardware_exit_reason"]


def test_ioctl_encoders_reject_oversized_arguments():
    with pytest.raises(ValueError, match="does not fit"):
        _uapi.IOW(_uapi.KVMIO, 1, 1 << 14)


def test_x86_debug_exit_sits_at_the_exit_union(c_values):
    fields = ["exception", "pc", "dr6", "dr7"]
    values = c_values(["linux/kvm.h"], {f: f"offsetof(struct kvm_run, debug.arch.{f})" for f in fields})
    for field in fields:
        assert _uapi.KVM_RUN_EXIT_UNION_OFFSET + _x86.ffi.offsetof("struct kvm_debug_exit_arch", field) == values[field]


def test_x86_sync_regs_sit_in_the_kvm_run_sync_area(c_values):
    fields = ["interrupt.injected", "interrupt.nr", "interrupt.soft", "flags"]
    values = c_values(["linux/kvm.h"], {f: f"offsetof(struct kvm_run, s.regs.events.{f})" for f in fields})
    for field in fields:
        offset = _x86.ffi.offsetof("struct kvm_sync_regs", "events", *field.split("."))
        assert _uapi.KVM_RUN_SYNC_REGS_OFFSET + offset == values[field], field
