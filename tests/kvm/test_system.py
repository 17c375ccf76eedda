"""Capability probing, and that every fd and mapping is released on close and on errors."""

import errno
import gc
import os

import pytest

from cosim.kvm import Capabilities, Kvm, KvmError, _system, probe_capabilities
from cosim.kvm._uapi import Cap


def open_fds() -> set[str]:
    gc.collect()     # objects dropped by earlier tests release their fds now, not mid-test
    return set(os.listdir("/proc/self/fd"))


def mapped() -> int:
    with open("/proc/self/maps") as maps:
        return sum(1 for line in maps if "anon_inode:kvm-vcpu" in line)


# -- probing logic, with a fake KVM_CHECK_EXTENSION ---------------------------
def test_probe_asks_every_capability_and_keeps_the_answers():
    asked = []

    def check(cap):
        asked.append(cap)
        return {Cap.READONLY_MEM: 1, Cap.NR_MEMSLOTS: 509}.get(cap, 0)

    caps = probe_capabilities(check)
    assert sorted(asked) == sorted(v for k, v in vars(Cap).items() if k.isupper())
    assert caps.has("READONLY_MEM") and not caps.has("IMMEDIATE_EXIT") and caps["NR_MEMSLOTS"] == 509


def test_a_failing_probe_counts_as_absent():
    def check(cap):
        if cap == Cap.SYNC_REGS:
            raise KvmError("KVM_CHECK_EXTENSION", errno.EINVAL)
        return 1

    caps = probe_capabilities(check)
    assert not caps.has("SYNC_REGS") and caps.has("USER_MEMORY")


def test_require_names_the_missing_capabilities():
    caps = Capabilities({"USER_MEMORY": 1})
    caps.require("USER_MEMORY")
    with pytest.raises(KvmError, match="KVM_CAP_READONLY_MEM, KVM_CAP_IMMEDIATE_EXIT.*ROM"):
        caps.require("READONLY_MEM", "IMMEDIATE_EXIT", why="ROM")


def test_missing_device_is_a_clear_error(tmp_path):
    with pytest.raises(KvmError, match=r"opening .*nokvm failed: ENOENT .*; no KVM on this host"):
        Kvm(str(tmp_path / "nokvm"))


def test_a_device_that_is_not_kvm_is_refused_and_its_fd_closed():
    before = open_fds()
    with pytest.raises(KvmError, match="/dev/null: KVM_GET_API_VERSION failed"):
        Kvm("/dev/null")
    assert open_fds() == before


# -- real /dev/kvm ------------------------------------------------------------
def test_close_releases_every_fd_and_mapping(kvm_device):
    before, maps = open_fds(), mapped()
    kvm = Kvm(kvm_device)
    vm = kvm.create_vm()
    vcpu = vm.create_vcpu(0)
    assert vcpu.kvm_run.exit_reason == 0 and mapped() == maps + 1
    assert len(open_fds() - before) == 3
    kvm.close()
    assert vcpu.closed and vm.closed and kvm.closed
    assert open_fds() == before and mapped() == maps
    kvm.close()  # idempotent


def test_context_managers_release_on_errors(kvm_device):
    before = open_fds()
    with pytest.raises(KvmError, match="KVM_SET_USER_MEMORY_REGION"):
        with Kvm(kvm_device) as kvm, kvm.create_vm() as vm:
            vm.add_memory(0x1000, 0x123, 0)     # not page-sized: EINVAL
    assert open_fds() == before


def test_dropped_objects_are_finalized(kvm_device):
    before, maps = open_fds(), mapped()
    kvm = Kvm(kvm_device)
    kvm.create_vm().create_vcpu(0)
    del kvm
    import gc

    gc.collect()
    assert open_fds() == before and mapped() == maps


def test_failed_kvm_run_mapping_closes_the_vcpu_fd(kvm_device, monkeypatch):
    monkeypatch.setattr(_system, "_mmap", lambda fd, size: None)
    with Kvm(kvm_device) as kvm:
        vm = kvm.create_vm()
        before = open_fds()
        with pytest.raises(KvmError, match="mmap of kvm_run"):
            vm.create_vcpu(0)
        assert open_fds() == before and vm.vcpus == []


def test_memory_slots_and_immediate_exit(kvm_device):
    import mmap

    buffer = mmap.mmap(-1, 0x10000)
    import ctypes

    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    with Kvm(kvm_device) as kvm:
        vm = kvm.create_vm()
        slot = vm.add_memory(0, 0x10000, address)
        assert slot.slot == 0 and vm.slots == [slot]
        vcpu = vm.create_vcpu(0)
        vcpu.kvm_run.immediate_exit = 1
        assert vcpu.run() is False               # immediate_exit: EINTR without running the guest
        vcpu.kvm_run.immediate_exit = 0
        vcpu.complete_pending()                  # sets and clears immediate_exit itself
        assert vcpu.kvm_run.immediate_exit == 0


def test_scratch_vm_maps_its_ram_and_releases_everything_also_on_errors(kvm_device):
    before, maps = open_fds(), mapped()
    with _system.scratch_vm(kvm_device, 0x10000) as scratch:
        assert [(s.guest_phys_addr, s.size) for s in scratch.vm.slots] == [(0, 0x10000)]
        assert scratch.vcpu.index == 0 and scratch.vm.vcpus == [scratch.vcpu] and len(scratch.ram) == 0x10000
        assert len(open_fds() - before) == 3 and mapped() == maps + 1
    assert scratch.kvm.closed and scratch.vm.closed and scratch.vcpu.closed and scratch.ram.closed
    assert open_fds() == before and mapped() == maps
    with pytest.raises(RuntimeError, match="set-up failed"):
        with _system.scratch_vm(kvm_device, 0x10000) as scratch:
            raise RuntimeError("the caller's vCPU set-up failed")
    assert scratch.kvm.closed and scratch.ram.closed and open_fds() == before and mapped() == maps


def test_kvm_unavailable_says_why(tmp_path):
    from cosim.kvm import kvm_unavailable

    assert "does not exist" in kvm_unavailable(str(tmp_path / "kvm"))
    assert "KVM_GET_API_VERSION failed" in kvm_unavailable("/dev/null")
