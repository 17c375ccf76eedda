"""Arm64 capability probing with a fake KVM_CHECK_EXTENSION / KVM_ENABLE_CAP layer."""

import errno

import pytest

from cosim.kvm import KvmError
from cosim.kvm._arm64 import DEFAULT_WFX_CAP, PORT_WFX_CAP, SEED_WFX_CAP, Arm64Cap, probe_arm64


class FakeVm:
    """Answers KVM_CHECK_EXTENSION from a table; KVM_ENABLE_CAP succeeds only for `enableable`."""

    def __init__(self, offered, enableable=()):
        self.offered = dict(offered)
        self.enableable = set(enableable)
        self.enabled = []

    def check(self, cap):
        if cap not in self.offered:
            raise KvmError(f"KVM_CHECK_EXTENSION({cap})", errno.EINVAL)
        return self.offered[cap]

    def enable(self, cap):
        if cap not in self.enableable:
            raise KvmError(f"KVM_ENABLE_CAP({cap})", errno.EINVAL)
        self.enabled.append(cap)


STOCK = {Arm64Cap.ARM_USER_IRQ: 1, Arm64Cap.ARM_PMU_V3: 1, Arm64Cap.ARM_PSCI_0_2: 1,
         Arm64Cap.ARM_NISV_TO_USER: 1, Arm64Cap.ARM_INJECT_EXT_DABT: 1}


def test_stock_kernel_has_no_wfx_exit_and_says_why():
    vm = FakeVm(STOCK)
    features = probe_arm64(vm.check, vm.enable)
    assert features.user_irq and features.pmu_v3 and features.ext_dabt and features.nisv_to_user
    assert not features.wfx_exit and vm.enabled == []
    assert "lacks the seed's KVM_CAP_EXIT_ON_WFX" in features.wfx_note
    assert "wall-clock budget" in features.describe()


def test_patched_kernel_gets_the_wfx_exit_enabled():
    vm = FakeVm(STOCK | {DEFAULT_WFX_CAP: 1}, enableable={DEFAULT_WFX_CAP})
    features = probe_arm64(vm.check, vm.enable)
    assert features.wfx_exit and vm.enabled == [DEFAULT_WFX_CAP]
    assert f"KVM_CAP_EXIT_ON_WFX = {PORT_WFX_CAP}" in features.describe()


def test_the_wfx_number_is_configurable():
    vm = FakeVm(STOCK | {240: 1}, enableable={240})
    assert probe_arm64(vm.check, vm.enable, wfx_cap=240).wfx_exit and vm.enabled == [240]
    assert not probe_arm64(FakeVm(STOCK).check, vm.enable, wfx_cap=240).wfx_exit


@pytest.mark.parametrize("cap", [PORT_WFX_CAP, SEED_WFX_CAP], ids=["port", "seed"])
def test_both_numberings_probe_and_enable(cap):
    vm = FakeVm(STOCK | {cap: 1}, enableable={cap})
    assert probe_arm64(vm.check, vm.enable, wfx_cap=cap).wfx_exit and vm.enabled == [cap]
    other = PORT_WFX_CAP + SEED_WFX_CAP - cap            # a kernel with the other numbering: not found
    vm = FakeVm(STOCK | {other: 1}, enableable={other})
    assert not probe_arm64(vm.check, vm.enable, wfx_cap=cap).wfx_exit and vm.enabled == []


@pytest.mark.parametrize("cap", [PORT_WFX_CAP, SEED_WFX_CAP], ids=["port", "seed"])
def test_an_offered_number_that_will_not_enable_is_another_capability(cap):
    # e.g. upstream 222 = KVM_CAP_S390_CPU_TOPOLOGY, 224 = KVM_CAP_S390_PROTECTED_ASYNC_DISABLE
    vm = FakeVm(STOCK | {cap: 1})
    features = probe_arm64(vm.check, vm.enable, wfx_cap=cap)
    assert not features.wfx_exit and "enabling it failed" in features.wfx_note


def test_wfx_can_be_turned_off():
    vm = FakeVm(STOCK | {DEFAULT_WFX_CAP: 1}, enableable={DEFAULT_WFX_CAP})
    features = probe_arm64(vm.check, vm.enable, use_wfx=False)
    assert not features.wfx_exit and vm.enabled == [] and "disabled by configuration" in features.wfx_note


def test_missing_optional_capabilities_are_reported_not_fatal():
    vm = FakeVm({Arm64Cap.ARM_USER_IRQ: 1})
    features = probe_arm64(vm.check, vm.enable)
    assert not (features.pmu_v3 or features.psci_0_2 or features.ext_dabt or features.nisv_to_user)


def test_user_irq_is_required():
    vm = FakeVm({k: v for k, v in STOCK.items() if k != Arm64Cap.ARM_USER_IRQ})
    with pytest.raises(KvmError, match="lacks KVM_CAP_ARM_USER_IRQ.*GIC model"):
        probe_arm64(vm.check, vm.enable)
