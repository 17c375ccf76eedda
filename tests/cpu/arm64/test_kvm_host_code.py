"""The hand-encoded Arm64 code the KVM backend runs (calibration loop, CNTFRQ read), and the calibration logic.

The encodings are checked by disassembling them with binutils; the
calibration runs against a fake vCPU whose "time" grows with the loop count.
"""

import errno
import shutil
import subprocess

import pytest

from cosim.cpu.arm64 import kvm_cpu, kvm_timer
from cosim.kvm import KvmError, _system
from cosim.kvm._arm64 import CORE_REGS, ffi
from cosim.kvm._uapi import Ioctl


def disassemble(code: bytes, tmp_path) -> list[str]:
    objdump = shutil.which("aarch64-linux-gnu-objdump")
    if objdump is None:
        pytest.skip("aarch64-linux-gnu-objdump not found: install binutils-aarch64-linux-gnu (scripts/bootstrap.sh does)")
    path = tmp_path / "code.bin"
    path.write_bytes(code)
    out = subprocess.run([objdump, "-D", "-b", "binary", "-maarch64", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return [" ".join(line.split("\t")[2:]).split("//")[0].strip() for line in out.splitlines() if "\t" in line]


def test_calibration_loop_is_subs_bne_then_an_mmio_store(tmp_path):
    assert disassemble(kvm_cpu._CALIBRATION_CODE, tmp_path) == ["subs x0, x0, #0x1", "b.ne 0x0", "str xzr, [x1]"]


def test_cntfrq_reader_is_mrs_then_ret(tmp_path):
    assert disassemble(kvm_timer._CNTFRQ_CODE, tmp_path) == ["mrs x0, cntfrq_el0", "ret"]


class LoopVcpu:
    """Runs 'the loop': its cost in ns is 2 per iteration (a 1 G instructions/s guest)."""

    def __init__(self, clock):
        self.clock = clock
        self.regs = {}
        self.runs = []

    def ioctl(self, request, arg=0, what=""):
        if request == Ioctl.SET_ONE_REG:
            self.regs[arg.id] = int(ffi.cast("unsigned long long *", arg.addr)[0])
        return 0

    def run(self):
        iterations = self.regs[CORE_REGS["x0"]]
        self.runs.append(iterations)
        assert self.regs[CORE_REGS["pc"]] == 0 and self.regs[CORE_REGS["x1"]] == kvm_cpu._CALIBRATION_EXIT
        self.clock.now += 2 * iterations + 1
        return True


class FakeKvm:
    def __init__(self, vcpu):
        self.vcpu = vcpu
        self.slots = []

    def __call__(self, device):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def create_vm(self):
        return self

    def add_memory(self, base, size, host):
        self.slots.append((base, size))

    def create_vcpu(self, index):
        return self.vcpu

    def ioctl(self, request, arg=0, what=""):
        return 0


class Clock:
    now = 0

    def __call__(self):
        return self.now


def test_calibration_doubles_the_loop_until_it_takes_long_enough(monkeypatch):
    clock = Clock()
    vcpu = LoopVcpu(clock)
    kernel = FakeKvm(vcpu)
    monkeypatch.setattr(_system, "Kvm", kernel)     # the throw-away VM: cosim.kvm._system.scratch_vm
    rate = kvm_cpu.guest_rate(min_seconds=0.001, start=10_000, clock=clock)
    assert vcpu.runs == [10_000 * 2 ** i for i in range(len(vcpu.runs))]
    assert 2 * vcpu.runs[-1] + 1 >= 1_000_000 > 2 * vcpu.runs[-2] + 1      # stopped at the first run >= 1 ms
    assert rate == pytest.approx(1e9)
    assert kernel.slots == [(0, kvm_cpu._CALIBRATION_RAM)] and kvm_cpu._CALIBRATION_EXIT >= kvm_cpu._CALIBRATION_RAM


def test_calibration_failure_is_a_kvm_error(monkeypatch):
    class Broken(FakeKvm):
        def create_vm(self):
            raise KvmError("KVM_CREATE_VM", errno.ENOMEM)

    monkeypatch.setattr(_system, "Kvm", Broken(None))
    with pytest.raises(KvmError, match="KVM_CREATE_VM failed: ENOMEM"):
        kvm_cpu.guest_rate()
