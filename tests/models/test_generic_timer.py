"""The Arm generic timer model, per Armv8-A ARM D11."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim import SEC, Hz, Simulation, us
from cosim.models.generic_timer import SYSREG_NAMES, GenericTimer
from cosim.testing import Harness

FREQ = 62_500_000
TICK = SEC // FREQ  # 16 ns


@pytest.fixture
def timer(harness):
    return harness(GenericTimer("timer", frequency=Hz(FREQ)), base=None).device     # system registers, no bus


def run(sim, duration):
    sim.run(until=sim.now + duration)


def test_counter_follows_simulated_time(sim, timer):
    assert timer.read_sysreg("CNTFRQ_EL0") == FREQ and timer.read_sysreg("CNTVCT_EL0") == 0
    run(sim, us(10))
    assert timer.read_sysreg("CNTPCT_EL0") == us(10) // TICK == 625


def test_virtual_timer_fires_exactly_at_cval(sim, timer):
    seen = []
    timer.cntv.connect(lambda level: seen.append((sim.now, level)))
    timer.write_sysreg("CNTV_CVAL_EL0", 1000)
    timer.write_sysreg("CNTV_CTL_EL0", 1)
    run(sim, us(100))
    assert seen == [(1000 * TICK, True)]
    assert timer.read_sysreg("CNTV_CTL_EL0") == 0b101          # ENABLE | ISTATUS (D11.2.4)


def test_imask_hides_the_output_but_not_istatus(sim, timer):
    timer.write_sysreg("CNTP_TVAL_EL0", 10)
    timer.write_sysreg("CNTP_CTL_EL0", 0b11)                 # ENABLE | IMASK
    run(sim, us(1))
    assert not timer.cntp.level and timer.read_sysreg("CNTP_CTL_EL0") == 0b111
    timer.write_sysreg("CNTP_CTL_EL0", 1)
    assert timer.cntp.level


def test_tval_is_a_signed_32_bit_view(sim, timer):
    run(sim, us(1))
    timer.write_sysreg("CNTV_TVAL_EL0", 0xFFFF_FFF6)         # -10: already in the past
    assert timer.read_sysreg("CNTV_CVAL_EL0") == 62 - 10
    timer.write_sysreg("CNTV_CTL_EL0", 1)
    assert timer.cntv.level
    run(sim, 5 * TICK)
    assert timer.read_sysreg("CNTV_TVAL_EL0") == (-15) & 0xFFFF_FFFF


def test_reprogramming_cancels_the_old_expiry(sim, timer):
    seen = []
    timer.cntv.connect(lambda level: seen.append(sim.now))
    timer.write_sysreg("CNTV_CVAL_EL0", 1000)
    timer.write_sysreg("CNTV_CTL_EL0", 1)
    timer.write_sysreg("CNTV_CVAL_EL0", 5000)
    run(sim, us(200))
    assert seen == [5000 * TICK]


def test_encodings_map_to_names():
    assert SYSREG_NAMES[(3, 3, 14, 0, 1)] == "CNTPCT_EL0" and SYSREG_NAMES[(3, 3, 14, 3, 1)] == "CNTV_CTL_EL0"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["CNTV_CTL_EL0", "CNTV_CVAL_EL0", "CNTV_TVAL_EL0", "CNTP_CTL_EL0",
                                           "CNTP_TVAL_EL0"]), st.integers(0, 2**64 - 1), st.integers(0, 5000)),
                max_size=25))
def test_output_equals_enable_and_not_imask_and_condition(ops):
    dut = Harness(Simulation(), GenericTimer("t", frequency=Hz(FREQ)), base=None)
    sim, t = dut.sim, dut.device
    for name, value, wait in ops:
        t.write_sysreg(name, value & (0xFFFF_FFFF if "TVAL" in name or "CTL" in name else 2**64 - 1))
        sim.run(until=sim.now + wait * TICK + 1)  # +1 ps: events due exactly at `until` have run
        for timer in (t.physical, t.virtual):
            expect = bool(timer.ctl & 1) and not timer.ctl & 2 and t.count() >= timer.cval
            assert timer.line.level == expect
