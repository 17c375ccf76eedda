"""The arm64 cffi layouts, ioctl numbers and ONE_REG ids against the arm64 <linux/kvm.h> and <asm/kvm.h>.

Runs on any host: the arm64 UAPI headers come from Debian's
linux-libc-dev-arm64-cross (/usr/aarch64-linux-gnu/include). Both arm64 and
x86-64 Linux are LP64 little-endian with the same alignment rules for these
plain structs, so the host gcc computes the arm64 layouts when that include
directory comes first; `test_the_headers_compiled_are_the_arm64_ones` guards
that assumption.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from cosim.kvm import _arm64, _uapi
from cosim.kvm._arm64 import (CORE_REGS, SYSREGS, Arm64Cap, Arm64Ioctl, CpuIrq, DeviceIrq, Feature, IrqType,
                              TimerReg, core_reg, irq_line, sys_reg)

INCLUDE = Path("/usr/aarch64-linux-gnu/include")
FFI = _arm64.ffi

STRUCTS = {
    "struct kvm_regs": ["regs", "sp_el1", "elr_el1", "spsr", "fp_regs"],
    "struct user_pt_regs": ["regs", "sp", "pc", "pstate"],
    "struct user_fpsimd_state": ["vregs", "fpsr", "fpcr"],
    "struct kvm_vcpu_init": ["target", "features"],
    "struct kvm_mp_state": ["mp_state"],
    "struct kvm_sync_regs": ["device_irq_level"],
    "struct kvm_vcpu_events": ["exception", "reserved"],
    "struct kvm_guest_debug_arch": ["dbg_bcr", "dbg_bvr", "dbg_wcr", "dbg_wvr"],
    "struct kvm_guest_debug": ["control", "arch"],
    "struct kvm_debug_exit_arch": ["hsr", "hsr_high", "far"],
    "struct kvm_run": ["request_interrupt_window", "immediate_exit", "exit_reason", "kvm_valid_regs",
                       "kvm_dirty_regs", "s"],
}
# kvm_run members seen through arm64 casts: C path -> offset computed from the cffi side
RUN_PATHS = {
    "s.regs.device_irq_level": _uapi.KVM_RUN_SYNC_REGS_OFFSET + FFI.offsetof("struct kvm_sync_regs", "device_irq_level"),
    "arm_nisv.esr_iss": _uapi.KVM_RUN_EXIT_UNION_OFFSET + FFI.offsetof("struct kvm_arm_nisv", "esr_iss"),
    "arm_nisv.fault_ipa": _uapi.KVM_RUN_EXIT_UNION_OFFSET + FFI.offsetof("struct kvm_arm_nisv", "fault_ipa"),
    "mmio.phys_addr": FFI.offsetof("struct kvm_run", "mmio", "phys_addr"),
    "mmio.data": FFI.offsetof("struct kvm_run", "mmio", "data"),
    "mmio.len": FFI.offsetof("struct kvm_run", "mmio", "len"),
    "mmio.is_write": FFI.offsetof("struct kvm_run", "mmio", "is_write"),
    "system_event.type": FFI.offsetof("struct kvm_run", "system_event", "type"),
}
EVENT_FIELDS = ["serror_pending", "serror_has_esr", "ext_dabt_pending", "serror_esr"]

IOCTLS = {f"KVM_{k}": v for k, v in vars(Arm64Ioctl).items() if k.isupper()}
IOCTLS |= {f"KVM_{k}": v for k, v in vars(_uapi.Ioctl).items()
           if k in ("RUN", "IRQ_LINE", "GET_ONE_REG", "SET_ONE_REG", "ENABLE_CAP", "SET_DEVICE_ATTR",
                    "HAS_DEVICE_ATTR", "SET_SIGNAL_MASK", "SET_USER_MEMORY_REGION", "CREATE_VCPU",
                    "GET_MP_STATE")}
CONSTANTS = {f"KVM_CAP_{k}": v for k, v in vars(Arm64Cap).items() if k.isupper()}
CONSTANTS |= {f"KVM_ARM_VCPU_{k}": v for k, v in vars(Feature).items() if k.isupper()}
CONSTANTS |= {f"KVM_ARM_IRQ_TYPE_{k}": v for k, v in vars(IrqType).items() if k.isupper()}
CONSTANTS |= {f"KVM_ARM_IRQ_CPU_{k}": v for k, v in vars(CpuIrq).items() if k.isupper()}
CONSTANTS |= {f"KVM_ARM_DEV_{k}": v for k, v in vars(DeviceIrq).items() if k.isupper()}
CONSTANTS |= {f"KVM_REG_ARM_{k}": v for k, v in vars(TimerReg).items() if k.isupper()}
CONSTANTS |= {name: getattr(_arm64, name) for name in ("KVM_GUESTDBG_ENABLE", "KVM_GUESTDBG_SINGLESTEP",
                                                        "KVM_GUESTDBG_USE_SW_BP", "KVM_GUESTDBG_USE_HW")}
CONSTANTS |= {"KVM_REG_ARM64": _arm64.KVM_REG_ARM64, "KVM_REG_SIZE_U64": _arm64.KVM_REG_SIZE_U64,
              "KVM_REG_ARM_CORE": _arm64.KVM_REG_ARM_CORE, "KVM_REG_ARM64_SYSREG": _arm64.KVM_REG_ARM64_SYSREG,
              "KVM_ARM_VCPU_PMU_V3_CTRL": _arm64.KVM_ARM_VCPU_PMU_V3_CTRL,
              "KVM_ARM_VCPU_PMU_V3_INIT": _arm64.KVM_ARM_VCPU_PMU_V3_INIT,
              "KVM_EXIT_ARM_NISV": _uapi.Exit.ARM_NISV, "KVM_EXIT_MMIO": _uapi.Exit.MMIO,
              "KVM_EXIT_SYSTEM_EVENT": _uapi.Exit.SYSTEM_EVENT, "KVM_EXIT_INTR": _uapi.Exit.INTR,
              "KVM_MP_STATE_RUNNABLE": _uapi.KVM_MP_STATE_RUNNABLE, "KVM_MP_STATE_STOPPED": _uapi.KVM_MP_STATE_STOPPED}
# ONE_REG ids as the header's own macros build them
CORE_MACROS = {f"x{i}": f"regs.regs[{i}]" for i in range(31)}
CORE_MACROS |= {"sp_el0": "regs.sp", "pc": "regs.pc", "pstate": "regs.pstate", "sp_el1": "sp_el1",
                "elr_el1": "elr_el1", "spsr_el1": "spsr[KVM_SPSR_EL1]"}
SYSREG_ENCODINGS = {"sctlr_el1": "3, 0, 1, 0, 0", "ttbr0_el1": "3, 0, 2, 0, 0", "ttbr1_el1": "3, 0, 2, 0, 1",
                    "tcr_el1": "3, 0, 2, 0, 2", "esr_el1": "3, 0, 5, 2, 0", "far_el1": "3, 0, 6, 0, 0",
                    "mair_el1": "3, 0, 10, 2, 0", "vbar_el1": "3, 0, 12, 0, 0", "mpidr_el1": "3, 0, 0, 0, 5",
                    "midr_el1": "3, 0, 0, 0, 0"}


@pytest.fixture(scope="module")
def header(tmp_path_factory):
    """name -> value, printed by a C program built against the arm64 <linux/kvm.h>."""
    if not (INCLUDE / "asm" / "kvm.h").exists():
        pytest.skip(f"{INCLUDE}/asm/kvm.h missing: install linux-libc-dev-arm64-cross (scripts/bootstrap.sh does)")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: install gcc to check the arm64 layouts")
    lines = ["#include <stddef.h>", "#include <stdio.h>", "#include <linux/kvm.h>",
             # arm64's asm/kvm.h defines KVM_REG_ARM_CORE; x86's defines __KVM_HAVE_PIT
             "#if defined(KVM_REG_ARM_CORE) && defined(KVM_ARM_PREFERRED_TARGET) && !defined(__KVM_HAVE_PIT)",
             "#define ARM64_HEADER 1", "#else", "#define ARM64_HEADER 0", "#endif", "int main(void) {"]

    def emit(name: str, expr: str) -> None:
        lines.append(f'  printf("%s %llu\\n", "{name}", (unsigned long long)({expr}));')

    emit("arm64 header", "ARM64_HEADER")
    for ctype, fields in STRUCTS.items():
        emit(f"sizeof {ctype}", f"sizeof({ctype})")
        for field in fields:
            emit(f"offsetof {ctype} {field}", f"offsetof({ctype}, {field})")
    for field in EVENT_FIELDS:
        emit(f"offsetof events {field}", f"offsetof(struct kvm_vcpu_events, exception.{field})")
    for path in RUN_PATHS:
        emit(f"offsetof struct kvm_run {path}", f"offsetof(struct kvm_run, {path})")
    for name in {**IOCTLS, **CONSTANTS}:
        emit(name, name)
    for name, member in CORE_MACROS.items():
        emit(f"core {name}", f"KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG({member})")
    for name, encoding in SYSREG_ENCODINGS.items():
        emit(f"sysreg {name}", f"ARM64_SYS_REG({encoding})")
    for name in ("KVM_CAP_S390_CPU_TOPOLOGY", "KVM_EXIT_RISCV_SBI", "KVM_CAP_DIRTY_LOG_RING_ACQ_REL", "KVM_EXIT_NOTIFY"):
        emit(name, name)
    for name in ("KVM_CAP_S390_PROTECTED_ASYNC_DISABLE", "KVM_EXIT_LOONGARCH_IOCSR"):    # after 6.1
        lines += [f"#ifdef {name}", f'  printf("%s %llu\\n", "{name}", (unsigned long long)({name}));', "#endif"]
    lines.append("  return 0;\n}")
    work = tmp_path_factory.mktemp("uapi-arm64")
    (work / "probe.c").write_text("\n".join(lines))
    build = subprocess.run([gcc, f"-I{INCLUDE}", "-o", str(work / "probe"), str(work / "probe.c")],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    out = subprocess.run([str(work / "probe")], capture_output=True, text=True, check=True).stdout
    return {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}


def test_the_headers_compiled_are_the_arm64_ones(header):
    assert header["arm64 header"] == 1
    assert header["sizeof struct kvm_regs"] == 864       # user_pt_regs 272 + 7 x 8 + pad + fpsimd 528


@pytest.mark.parametrize("ctype", sorted(STRUCTS))
def test_struct_sizes_and_offsets_match_the_header(header, ctype):
    assert FFI.sizeof(ctype) == header[f"sizeof {ctype}"]
    for field in STRUCTS[ctype]:
        assert FFI.offsetof(ctype, field) == header[f"offsetof {ctype} {field}"], field


def test_vcpu_events_exception_fields(header):
    for field in EVENT_FIELDS:
        assert FFI.offsetof("struct kvm_vcpu_events", "exception", field) == header[f"offsetof events {field}"]


@pytest.mark.parametrize("path", sorted(RUN_PATHS))
def test_kvm_run_members_seen_through_arm64_casts(header, path):
    assert RUN_PATHS[path] == header[f"offsetof struct kvm_run {path}"]


@pytest.mark.parametrize("name", sorted(IOCTLS))
def test_ioctl_numbers_match_the_header(header, name):
    assert IOCTLS[name] == header[name], f"{name}: {IOCTLS[name]:#x} != {header[name]:#x}"


@pytest.mark.parametrize("name", sorted(CONSTANTS))
def test_constants_match_the_header(header, name):
    assert CONSTANTS[name] == header[name], f"{name}: {CONSTANTS[name]:#x} != {header[name]:#x}"


@pytest.mark.parametrize("name", sorted(CORE_MACROS))
def test_core_register_ids_match_KVM_REG_ARM_CORE_REG(header, name):
    assert CORE_REGS[name] == header[f"core {name}"], f"{name}: {CORE_REGS[name]:#x} != {header[f'core {name}']:#x}"


@pytest.mark.parametrize("name", sorted(SYSREG_ENCODINGS))
def test_system_register_ids_match_ARM64_SYS_REG(header, name):
    assert SYSREGS[name] == header[f"sysreg {name}"]


def test_the_seed_numbers_are_taken_upstream_only_by_other_architectures(header):
    # docs/cpu-kvm-arm64.md: 222 and 35 mean s390 and RISC-V things upstream, never reported on arm64;
    # the probe still insists on KVM_ENABLE_CAP succeeding before trusting the capability.
    assert header["KVM_CAP_S390_CPU_TOPOLOGY"] == _arm64.SEED_WFX_CAP
    assert header["KVM_EXIT_RISCV_SBI"] == _arm64.SEED_WFX_EXIT


def test_the_port_numbers_are_free_in_6_1_or_taken_only_by_other_architectures(header):
    # Our 6.1 port takes the numbers after 6.1's last (KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_EXIT_NOTIFY);
    # later kernels give them to s390 and LoongArch only.
    assert header["KVM_CAP_DIRTY_LOG_RING_ACQ_REL"] + 1 == _arm64.PORT_WFX_CAP
    assert header["KVM_EXIT_NOTIFY"] + 1 == _arm64.PORT_WFX_EXIT
    for name, number in (("KVM_CAP_S390_PROTECTED_ASYNC_DISABLE", _arm64.PORT_WFX_CAP),
                         ("KVM_EXIT_LOONGARCH_IOCSR", _arm64.PORT_WFX_EXIT)):
        assert header.get(name, number) == number


def test_register_id_encoders_by_hand():
    # x0 is the first word of kvm_regs; pc is word 2 * 32 (after x0..x30 and sp)
    assert core_reg(0) == 0x6030_0000_0010_0000
    assert CORE_REGS["pc"] == 0x6030_0000_0010_0040
    # CNTV_CTL_EL0 = 3,3,14,3,1: op0 << 14 | op1 << 11 | CRn << 7 | CRm << 3 | op2
    assert sys_reg(3, 3, 14, 3, 1) == 0x6030_0000_0013_DF19
    with pytest.raises(ValueError, match="op1=8 does not fit its 3-bit field"):
        sys_reg(3, 8, 0, 0, 0)
    with pytest.raises(ValueError, match="not a register offset"):
        core_reg(2)


def test_irq_line_word_layout():
    assert irq_line(IrqType.CPU, 0, CpuIrq.FIQ) == 1
    assert irq_line(IrqType.PPI, 3, 27) == (2 << 24) | (3 << 16) | 27
    assert irq_line(IrqType.CPU, 0x123, 0) == (1 << 28) | (0x23 << 16)   # vcpu2 holds bits 11:8 of the index
    with pytest.raises(ValueError, match="16-bit"):
        irq_line(IrqType.SPI, 0, 1 << 16)
