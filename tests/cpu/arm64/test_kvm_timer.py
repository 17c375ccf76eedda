"""The in-kernel generic timer as the simulation sees it: levels from kvm_run, expiries planned while idle."""

import platform

import pytest

from cosim import SEC, us
from cosim.cpu.arm64.kvm_timer import Comparator, KvmGenericTimer, host_counter_frequency
from cosim.kvm._arm64 import DeviceIrq
from cosim.testing import Probe

FREQ = 62_500_000
TICK = SEC // FREQ  # 16 ns


@pytest.fixture
def timer(harness):
    return harness(KvmGenericTimer("timer", frequency_hz=FREQ), base=None).device


def test_levels_follow_device_irq_level(sim, timer):
    cntv, cntp, pmu = Probe(timer.cntv, sim), Probe(timer.cntp, sim), Probe(timer.pmu, sim)
    timer.levels(DeviceIrq.EL1_VTIMER | DeviceIrq.PMU)
    assert cntv.level and not cntp.level and pmu.level
    timer.levels(DeviceIrq.EL1_PTIMER)
    assert not cntv.level and cntp.level and not pmu.level
    assert cntv.history == [(0, True), (0, False)]


def test_planned_expiry_raises_the_line_when_the_counter_reaches_cval(sim, timer):
    cntv = Probe(timer.cntv, sim)
    sim.run(until=us(3))
    # the guest stopped at 2 us with its counter at 5000; CVAL is 1000 ticks later
    timer.plan([Comparator("cntv", 1, 6000, 5000)], at=us(2))
    sim.run(until=SEC)
    assert cntv.rises == [us(2) + 1000 * TICK]
    assert timer.cancel() is True and timer.cancel() is False     # it fired, reported once


@pytest.mark.parametrize("ctl, cval, count", [
    (0, 6000, 5000),      # disabled
    (0b11, 6000, 5000),   # IMASK: the output stays low (D11.2.4)
    (0b111, 5000, 7000),  # IMASK, even though ISTATUS says the condition holds
])
def test_only_armed_comparators_are_planned(sim, timer, ctl, cval, count):
    cntv = Probe(timer.cntv, sim)
    timer.plan([Comparator("cntv", ctl, cval, count)], at=0)
    sim.run(until=SEC)
    assert cntv.history == [] and timer.cancel() is False


@pytest.mark.parametrize("cval, count", [(5000, 5000), (5000, 7000)])
def test_a_timer_that_expired_before_kvm_reported_its_level_fires_at_once(sim, timer, cval, count):
    # The race the emulated Arm64 host found (issue 10): ISTATUS set, count >= CVAL, device_irq_level still 0.
    cntv = Probe(timer.cntv, sim)
    sim.run(until=us(3))
    timer.plan([Comparator("cntv", 0b101, cval, count)], at=us(2))
    sim.run(until=SEC)
    assert cntv.rises == [us(3)] and timer.cancel() is True


def test_a_due_timer_whose_output_is_already_high_is_left_to_the_gic(sim, timer):
    timer.levels(DeviceIrq.EL1_VTIMER)
    cntv = Probe(timer.cntv, sim)
    cntv.clear()
    timer.plan([Comparator("cntv", 0b101, 5000, 7000)], at=0)
    sim.run(until=SEC)
    assert cntv.history == [] and timer.cancel() is False     # no wake-up at once, for ever


def test_resuming_cancels_the_plan(sim, timer):
    cntp = Probe(timer.cntp, sim)
    timer.plan([Comparator("cntp", 1, 2000, 1000)], at=0)
    sim.run(until=500 * TICK)
    assert timer.cancel() is False          # the guest woke up early (another interrupt)
    sim.run(until=SEC)
    assert cntp.history == []


def test_expiry_rounds_up_to_the_first_picosecond_the_counter_reads_cval(sim, harness):
    timer = harness(KvmGenericTimer("timer", frequency_hz=24_000_000), base=None).device   # 41666.67 ps per tick
    cntv = Probe(timer.cntv, sim)
    timer.plan([Comparator("cntv", 1, 3, 0)], at=0)
    sim.run(until=SEC)
    (t,) = cntv.rises
    assert timer.count_at(t) == 3 and timer.count_at(t - 1) == 2


def test_both_timers_planned_and_a_missed_deadline_fires_at_once(sim, timer):
    cntv, cntp = Probe(timer.cntv, sim), Probe(timer.cntp, sim)
    sim.run(until=us(10))
    timer.plan([Comparator("cntv", 1, 100, 0), Comparator("cntp", 1, 10, 0)], at=0)   # cntp was due at 160 ns
    sim.run(until=SEC)
    assert cntp.rises == [us(10)] and cntv.rises == [us(10)]   # 100 ticks = 1.6 us, also past


def test_unknown_frequency_is_an_error(harness):
    timer = harness(KvmGenericTimer("timer"), base=None).device
    with pytest.raises(ValueError, match="counter frequency unknown"):
        timer.plan([Comparator("cntv", 1, 10, 0)], at=0)


@pytest.mark.skipif(platform.machine() == "aarch64", reason="checks the error on hosts that are not Arm64")
def test_host_counter_frequency_needs_an_arm64_host():
    with pytest.raises(OSError, match="only readable on an Arm64 host"):
        host_counter_frequency()


@pytest.mark.skipif(platform.machine() != "aarch64", reason="reads CNTFRQ_EL0: needs an Arm64 host")
def test_host_counter_frequency_on_arm64():
    assert 1_000_000 <= host_counter_frequency() <= 2_000_000_000
