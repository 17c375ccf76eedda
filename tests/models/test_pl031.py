"""PL031 through the bus, per Arm DDI 0224."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim import MS, SEC, Simulation
from cosim.models.pl031 import Pl031
from cosim.testing import Harness

DR, MR, LR, CR, IMSC, RIS, MIS, ICR = range(0, 0x20, 4)
PAST = 1                                         # run(d) stops before events due at d: go 1 ps past


@pytest.fixture
def rtc(harness):
    return harness(Pl031("rtc", start=1_000))


def test_reset_values_and_ids(rtc):
    assert rtc.read(DR) == 1_000 and rtc.read(MR) == 0 and rtc.read(CR) == 0
    assert rtc.read(IMSC) == 0 and rtc.read(RIS) == 0 and rtc.read(MIS) == 0
    assert [rtc.read(0xFE0 + 4 * i) for i in range(4)] == [0x31, 0x10, 0x14, 0x00]
    assert [rtc.read(0xFF0 + 4 * i) for i in range(4)] == [0x0D, 0xF0, 0x05, 0xB1]
    assert not rtc.device.irq.level


def test_counts_whole_simulated_seconds(rtc):
    rtc.run(SEC - 1)
    assert rtc.read(DR) == 1_000
    rtc.run(1)
    assert rtc.read(DR) == 1_001
    rtc.run(41 * SEC)
    assert rtc.read(DR) == 1_042


def test_load_restarts_the_second_grid(rtc):
    rtc.run(SEC // 2)
    rtc.write(LR, 77)
    assert rtc.read(DR) == 77 and rtc.read(LR) == 77
    rtc.run(SEC - 1)
    assert rtc.read(DR) == 77                # a full second after the load, not at the old grid's tick
    rtc.run(1)
    assert rtc.read(DR) == 78


def test_read_only_registers_ignore_writes_of_every_width(rtc):
    for offset in (RIS, MIS, 0xFE0, 0xFF4, DR):
        before = [rtc.read(offset, size) for size in (1, 2, 4)]
        for size in (1, 2, 4):
            rtc.write(offset, 0xDEADBEEF & ((1 << 8 * size) - 1), size)
        assert [rtc.read(offset, size) for size in (1, 2, 4)] == before


def test_match_sets_raw_status_even_when_masked_and_schedules_nothing(rtc):
    rtc.write(MR, 1_002)
    assert rtc.sim.peek() == float("inf")    # masked: an idle guest has nothing to wait for
    rtc.run(2 * SEC - 1)
    assert rtc.read(RIS) == 0
    rtc.run(1)
    assert rtc.read(RIS) == 1 and rtc.read(MIS) == 0 and not rtc.device.irq.level
    rtc.write(IMSC, 1)                       # unmasking a recorded match raises RTCINTR at once
    assert rtc.read(MIS) == 1 and rtc.device.irq.level
    rtc.write(ICR, 1)
    assert rtc.read(RIS) == 0 and rtc.read(MIS) == 0 and not rtc.device.irq.level


def test_unmasked_match_interrupts_at_the_planned_time(rtc):
    irq = rtc.probe(rtc.device.irq)
    rtc.run(300 * MS)
    rtc.write(IMSC, 1)
    rtc.write(MR, 1_003)                     # 3 s after time zero: 2.7 s from now
    rtc.run(3 * SEC)
    assert irq.rises == [3 * SEC]
    rtc.write(ICR, 1)
    assert irq.falls == [3 * SEC + 300 * MS]


def test_match_written_equal_to_the_count_matches_at_once(rtc):
    rtc.write(IMSC, 1)
    rtc.write(MR, rtc.read(DR))
    assert rtc.read(RIS) == 1 and rtc.device.irq.level


def test_load_equal_to_match_matches_at_once(rtc):
    rtc.write(MR, 5)
    rtc.write(LR, 5)
    assert rtc.read(RIS) == 1


def test_start_bit_sticks_until_reset(rtc):
    rtc.write(CR, 1)
    rtc.write(CR, 0)
    assert rtc.read(CR) == 1
    rtc.device.reset()
    assert rtc.read(CR) == 0


def test_reset_reloads_the_start_value_from_now(rtc):
    rtc.run(5 * SEC)
    rtc.write(IMSC, 1)
    rtc.device.reset()
    assert rtc.read(DR) == 1_000 and rtc.read(IMSC) == 0 and rtc.read(RIS) == 0


def test_start_must_fit_the_counter():
    from cosim import PlatformError

    with pytest.raises(PlatformError, match="32-bit"):
        Pl031("rtc", start=1 << 32)


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 2**32 - 1), load_at=st.integers(0, 3 * SEC), ahead=st.integers(1, 5))
def test_match_fires_exactly_when_the_count_reaches_it(start, load_at, ahead):
    sim = Simulation()
    rtc = Harness(sim, Pl031("rtc", start=start))
    irq = rtc.probe(rtc.device.irq)
    rtc.run(load_at)
    rtc.write(MR, (rtc.read(DR) + ahead) & 0xFFFF_FFFF)
    rtc.write(ICR, 1)                            # a match of the reset RTCMR (0) may be recorded already
    rtc.write(IMSC, 1)
    rtc.run(ahead * SEC + PAST)
    assert irq.rises == [(load_at // SEC + ahead) * SEC]       # on the second the count reaches RTCMR
    assert rtc.read(DR) == (start + rtc.now // SEC) & 0xFFFF_FFFF
