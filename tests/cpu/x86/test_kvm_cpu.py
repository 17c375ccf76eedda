"""The backend object: resources released on close and on construction errors, its small API."""

import gc
import os

import pytest

from cosim import Bus, Memory, MiB, PlatformError
from cosim.cpu.x86.kvm_cpu import KvmX86Cpu
from cosim.loaders import memory_writer
from cosim.loaders.x86 import long_mode

pytestmark = pytest.mark.usefixtures("kvm")


def fds():
    gc.collect()     # objects dropped by earlier tests release their fds now, not mid-test
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def parts():
    memory, ports = Bus("sysbus"), Bus("io", width=16)
    ram = Memory("ram", 2 * MiB)
    memory.map(0, ram.size, ram)
    return memory, ports, [(0, ram.size, ram.address, False)]


def make(parts, **kwargs):
    memory, ports, regions = parts
    return KvmX86Cpu(memory=memory, ports=ports, ram=regions, ips=1e6, **kwargs)


@pytest.mark.parametrize("budget", ["task-clock", "posix-timer"])
def test_close_releases_kvm_and_budget_source(parts, budget):
    before = fds()
    cpu = make(parts, budget=budget)
    assert len(fds() - before) >= 3            # /dev/kvm, VM, vCPU (+ perf event)
    cpu.close()
    cpu.close()
    assert fds() == before


def test_construction_errors_release_everything(parts):
    before = fds()
    with pytest.raises(PlatformError, match="unknown budget source 'turbo'"):
        make(parts, budget="turbo")
    assert fds() == before
    bad_entry = long_mode(memory_writer(parts[0]), 0x1000)
    bad_entry.regs["xmm0"] = 1
    with pytest.raises(KeyError, match="xmm0"):
        make(parts, entry=bad_entry)
    assert fds() == before


def test_small_api_errors_are_clear(parts):
    with pytest.raises(PlatformError, match="must not be negative"):
        make(parts, access_latency=-1)
    cpu = make(parts)
    try:
        with pytest.raises(ValueError, match="one interrupt input, 'intr', not 'irq'"):
            cpu.set_irq("irq", True)
        with pytest.raises(KeyError, match="unknown x86 register 'x0'"):
            cpu.read_register("x0")
        cpu.write_register("rax", 0x1234)
        assert cpu.read_register("rax") == 0x1234 and cpu.regs().rax == 0x1234
        assert "rax=0000000000001234" in cpu.register_dump()
        assert cpu.cpuid[1][3] & (1 << 9) == 0     # the APIC bit is hidden by default
    finally:
        cpu.close()
