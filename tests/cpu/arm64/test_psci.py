import pytest

from cosim.cpu.arm64 import psci
from cosim.cpu.arm64.psci import (ALREADY_ON, INVALID_PARAMETERS, NOT_SUPPORTED, ON_PENDING, SUCCESS, Function,
                                  PowerState, Psci)

MPIDRS = [0x8000_0000 | i for i in range(4)]


def test_psci_0_2_functions():
    assert psci.call(0x8400_0000).x0 == 2
    assert psci.call(0x8400_0008).stop == "off" and psci.call(0x8400_0009).stop == "reset"
    assert psci.call(0xC400_0003, 1).x0 == INVALID_PARAMETERS           # no CPU with MPIDR 1 on one CPU
    assert psci.call(0xC400_0003, 0).x0 == ALREADY_ON                   # the caller itself
    assert psci.call(0x8400_000A, 0x8400_0008).x0 == SUCCESS
    assert psci.call(0x8400_000A, 0xC400_0003).x0 == SUCCESS
    assert psci.call(0x8400_000A, 0x8400_0003).x0 == SUCCESS            # CPU_ON's SMC32 form too
    assert psci.call(0x8400_000A, 0xC400_0005).x0 == NOT_SUPPORTED
    assert psci.call(0x1234).x0 == NOT_SUPPORTED


@pytest.fixture
def machine():
    calls = []
    controller = Psci(MPIDRS, power_on=lambda i, entry, ctx: calls.append(("on", i, entry, ctx)),
                      power_off=lambda i: calls.append(("off", i)))
    return controller, calls


def affinity(controller, mpidr, level=0):
    return controller.call(0, Function.AFFINITY_INFO, mpidr, level).x0


def test_cpu_on_starts_the_target_pending_until_it_runs(machine):
    controller, calls = machine
    assert affinity(controller, MPIDRS[2]) == PowerState.OFF
    assert controller.call(0, Function.CPU_ON, MPIDRS[2], 0x4008_0000, 0x1234).x0 == SUCCESS
    assert calls == [("on", 2, 0x4008_0000, 0x1234)]
    assert affinity(controller, MPIDRS[2]) == PowerState.ON_PENDING
    # A second CPU_ON while the first has not taken effect (DEN 0022D 5.6.2).
    assert controller.call(1, Function.CPU_ON, MPIDRS[2], 0x4009_0000, 0).x0 == ON_PENDING
    controller.started(2)
    assert affinity(controller, MPIDRS[2]) == PowerState.ON
    assert controller.call(0, Function.CPU_ON & 0xBFFF_FFFF, MPIDRS[2], 0, 0).x0 == ALREADY_ON   # SMC32 form
    assert len(calls) == 1


def test_cpu_off_then_on_again(machine):
    controller, calls = machine
    controller.call(0, Function.CPU_ON, MPIDRS[1], 0x100, 7)
    controller.started(1)
    result = controller.call(1, Function.CPU_OFF)
    assert result.off and calls[-1] == ("off", 1)
    assert affinity(controller, MPIDRS[1]) == PowerState.OFF
    assert controller.call(0, Function.CPU_ON, MPIDRS[1], 0x200, 8).x0 == SUCCESS
    assert calls[-1] == ("on", 1, 0x200, 8)


def test_bad_targets_are_invalid_parameters(machine):
    controller, calls = machine
    assert controller.call(0, Function.CPU_ON, 0x8000_0004, 0, 0).x0 == INVALID_PARAMETERS   # no 5th CPU
    assert controller.call(0, Function.CPU_ON, 0x0000_0100 | 1, 0, 0).x0 == INVALID_PARAMETERS   # Aff1 = 1
    assert controller.call(0, Function.CPU_ON, 1 << 24 | 1, 0, 0).x0 == INVALID_PARAMETERS      # not affinity bits
    assert affinity(controller, MPIDRS[1], level=1) == INVALID_PARAMETERS
    assert affinity(controller, 9) == INVALID_PARAMETERS
    assert calls == []
    # MPIDR bit 31 (RES1) may be given or not: Linux passes the affinity fields only.
    assert controller.call(0, Function.CPU_ON, 3, 0, 0).x0 == SUCCESS


def test_cpu_suspend_is_standby():
    result = Psci(MPIDRS).call(0, Function.CPU_SUSPEND, 0, 0, 0)
    assert result.x0 == SUCCESS and result.suspend
