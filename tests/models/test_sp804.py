"""SP804 through the bus, per Arm DDI 0271."""

import re
import textwrap

import pytest
from hypothesis import given, settings, strategies as st

from cosim import Access, BusError, Response, Simulation, us
import cosim.testing
from cosim.models.sp804 import Sp804
from cosim.testing import Harness

LOAD, VALUE, CTRL, INTCLR, RIS, MIS, BGLOAD = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18
T2 = 0x20
ITCR, ITOP = 0xF00, 0xF04
# TimerXControl bits (DDI 0271, Control Register)
ONESHOT, SIZE32, PRE16, PRE256, INTEN, PERIODIC, ENABLE = 1, 2, 1 << 2, 2 << 2, 1 << 5, 1 << 6, 1 << 7
TICK = us(1)                                     # 1 MHz default TIMCLK
PAST = 1                                         # run(d) stops before events due at d: go 1 ps past


@pytest.fixture
def timer(harness):
    return harness(Sp804("timer"))


def test_reset_values(timer):
    for base in (0, T2):
        assert timer.read(base + LOAD) == 0 and timer.read(base + VALUE) == 0xFFFF_FFFF
        assert timer.read(base + CTRL) == INTEN and timer.read(base + RIS) == 0 and timer.read(base + MIS) == 0
    assert [timer.read(0xFE0 + 4 * i) for i in range(4)] == [0x04, 0x18, 0x14, 0x00]
    assert [timer.read(0xFF0 + 4 * i) for i in range(4)] == [0x0D, 0xF0, 0x05, 0xB1]
    assert not timer.device.timintc.level


def test_register_access_types(timer):
    for reg in Sp804.registers:
        for index in range(reg.count):
            offset = reg.offset + index * reg.step
            if reg.access is Access.RO:
                before = timer.read(offset)
                timer.write(offset, 0xFFFF_FFFF)
                assert timer.read(offset) == before, reg.name
            elif reg.access is Access.WO and reg.name != "TimerXIntClr":
                timer.write(offset, 3)
                assert timer.read(offset) == 0, reg.name
    timer.write(LOAD, 0x1234_5678)
    assert timer.read(LOAD) == timer.read(BGLOAD) == 0x1234_5678
    timer.write(T2 + BGLOAD, 0xABCD)
    assert timer.read(T2 + LOAD) == 0xABCD
    timer.write(CTRL, 0xFF)
    assert timer.read(CTRL) == 0xEF                # bit 4 is reserved
    assert timer.status(0x40) is Response.ADDRESS_ERROR
    assert timer.status(LOAD, size=1) is Response.BURST_ERROR


def test_periodic_expiry_at_load_ticks_then_every_load_plus_one(timer):
    irq, int1 = timer.probe(timer.device.timintc), timer.probe(timer.device.timint1)
    timer.write(LOAD, 0x100)
    timer.write(CTRL, ENABLE | PERIODIC | INTEN | SIZE32)
    start = timer.now
    timer.run(0x100 * TICK + PAST)
    assert irq.rises == int1.rises == [start + 0x100 * TICK]
    assert timer.read(VALUE) == 0 and timer.read(RIS) == 1 and timer.read(MIS) == 1
    timer.write(INTCLR, 0)
    assert not irq.level
    timer.run(TICK + PAST)
    assert timer.read(VALUE) == 0x100              # wrapped past zero to Load (DDI 0271, repetition modes)
    timer.run(0x100 * TICK + PAST)
    assert irq.rises[-1] == start + (2 * 0x100 + 1) * TICK


def test_value_is_computed_from_time_without_events_per_tick(timer, sim):
    timer.write(LOAD, 1_000_000)
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32)
    before = sim.events_processed
    timer.run(us(123_456) + PAST)
    assert timer.read(VALUE) == 1_000_000 - 123_456
    assert sim.events_processed - before <= 2      # the run's time limit, no ticks


def test_no_events_while_ris_stays_set_and_the_count_goes_on(timer, sim):
    timer.write(LOAD, 99)                          # periodic: a zero every 100 ticks
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32)
    timer.run(99 * TICK + PAST)
    assert timer.read(RIS) == 1
    before = sim.events_processed
    timer.run(1000 * TICK)                         # ten more zeros, RIS already set: nothing to schedule
    assert sim.events_processed - before <= 1
    assert timer.read(VALUE) == 0                  # tick 1099 = 99 + 10 * 100 is itself a zero
    timer.run(TICK // 2)
    assert timer.read(VALUE) == 0                  # and the count stays 0 until the next tick reloads it
    timer.write(INTCLR, 1)
    irq = timer.probe(timer.device.timint1)
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32 | INTEN)
    timer.run(100 * TICK)
    assert irq.rises == [1199 * TICK]


def test_free_running_wraps_to_the_maximum(timer):
    timer.write(LOAD, 5)
    timer.write(CTRL, ENABLE | INTEN)               # free-running, 16-bit
    timer.run(5 * TICK + PAST)
    assert timer.device.timint1.level
    timer.run(TICK + PAST)
    assert timer.read(VALUE) == 0xFFFF
    timer.write(INTCLR, 1)
    timer.run(0xFFFF * TICK + PAST)
    assert timer.device.timint1.level              # next zero 2^16 ticks after the first


def test_changing_the_size_reloads_from_load(timer):
    timer.write(LOAD, 1_000_000)                   # still 16-bit: counts 1_000_000 & 0xFFFF
    assert timer.read(VALUE) == 1_000_000 & 0xFFFF
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32)  # now 32-bit: the whole Load
    assert timer.read(VALUE) == 1_000_000


def test_sixteen_bit_mode_counts_the_low_half_of_load(timer):
    timer.write(LOAD, 0x1_0010)
    timer.write(CTRL, ENABLE | PERIODIC | INTEN)
    irq = timer.probe(timer.device.timint1)
    start = timer.now
    timer.run(0x20 * TICK + PAST)
    assert irq.rises == [start + 0x10 * TICK] and timer.read(LOAD) == 0x1_0010
    assert timer.read(VALUE) == 1                  # reloaded with 0x10 at tick 0x11, not 0x1_0010


def test_one_shot_halts_at_zero_until_reprogrammed(timer):
    timer.write(LOAD, 10)
    timer.write(CTRL, ENABLE | ONESHOT | INTEN | SIZE32)
    timer.run(50 * TICK + PAST)
    assert timer.read(VALUE) == 0 and timer.read(RIS) == 1
    timer.write(INTCLR, 1)
    timer.run(50 * TICK + PAST)
    assert timer.read(VALUE) == 0 and timer.read(RIS) == 0   # halted: no second interrupt
    start = timer.now
    timer.write(LOAD, 7)                           # DDI 0271, repetition modes: a new Load restarts it
    irq = timer.probe(timer.device.timint1)
    timer.run(10 * TICK + PAST)
    assert irq.rises == [start + 7 * TICK]


def test_leaving_one_shot_resumes_counting(timer):
    timer.write(LOAD, 10)
    timer.write(CTRL, ENABLE | ONESHOT | PERIODIC | SIZE32)
    timer.run(20 * TICK + PAST)
    timer.write(INTCLR, 1)
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32)  # clear OneShot: periodic from zero
    timer.run(20 * TICK + PAST)
    # From 0 at tick 20: reload to 10 at tick 21, zero again at 31, 10 at 32, 2 at 40.
    assert timer.read(RIS) == 1 and timer.read(VALUE) == 2


@pytest.mark.parametrize("pre, divide", [(0, 1), (PRE16, 16), (PRE256, 256)])
def test_prescaler_divides_the_tick(timer, pre, divide):
    timer.write(LOAD, 4)
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32 | INTEN | pre)
    irq = timer.probe(timer.device.timint1)
    start = timer.now
    timer.run(4 * divide * TICK + PAST)
    assert irq.rises == [start + 4 * divide * TICK]
    assert timer.device.tick_period(0) == divide * TICK


def test_bgload_changes_the_next_period_not_the_current_count(timer):
    timer.write(LOAD, 100)
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32)
    start = timer.now
    timer.run(40 * TICK + PAST)
    timer.write(BGLOAD, 20)
    assert timer.read(VALUE) == 60
    timer.run(60 * TICK + PAST)
    assert timer.read(RIS) == 1
    timer.write(INTCLR, 1)
    timer.run(21 * TICK + PAST)
    assert timer.read(RIS) == 1 and timer.now == start + (100 + 21) * TICK + 3 * PAST


def test_interrupt_enable_masks_only_mis_and_the_outputs(timer):
    timer.write(LOAD, 3)
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32)   # IntEnable clear
    timer.run(3 * TICK + PAST)
    assert timer.read(RIS) == 1 and timer.read(MIS) == 0 and not timer.device.timint1.level
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32 | INTEN)
    assert timer.read(MIS) == 1 and timer.device.timint1.level and timer.device.timintc.level


def test_disabling_holds_the_count(timer):
    timer.write(LOAD, 100)
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32)
    timer.run(30 * TICK + PAST)
    timer.write(CTRL, PERIODIC | SIZE32)
    timer.run(500 * TICK + PAST)
    assert timer.read(VALUE) == 70 and timer.read(RIS) == 0
    timer.write(CTRL, ENABLE | PERIODIC | SIZE32)
    timer.run(70 * TICK + PAST)
    assert timer.read(RIS) == 1


def test_two_timers_are_independent_and_combine_on_timintc(timer):
    c = timer.probe(timer.device.timintc)
    timer.write(LOAD, 10)
    timer.write(T2 + LOAD, 25)
    for base in (0, T2):
        timer.write(base + CTRL, ENABLE | ONESHOT | SIZE32 | INTEN)
    timer.run(12 * TICK + PAST)
    assert timer.device.timint1.level and not timer.device.timint2.level and c.level
    timer.write(INTCLR, 1)
    assert not c.level
    timer.run(13 * TICK + PAST)
    assert timer.device.timint2.level and c.rises == [10 * TICK, 25 * TICK]


def test_clock_hz_sets_the_tick(harness):
    dut = harness(Sp804("t", clock_hz=24_000_000))
    dut.write(LOAD, 24)
    dut.write(CTRL, ENABLE | ONESHOT | SIZE32)
    dut.run(us(1) + PAST)
    assert dut.read(RIS) == 1 and dut.read(VALUE) == 0


def test_integration_test_mode_drives_the_outputs(timer):
    timer.write(ITCR, 0xFFFF_FFFF)
    assert timer.read(ITCR) == 1                   # DDI 0271, TimerITCR: only ITEN is implemented
    timer.write(ITOP, 2)
    assert timer.device.timint2.level and timer.device.timintc.level and not timer.device.timint1.level
    timer.write(ITCR, 0)
    assert not timer.device.timintc.level


def test_bad_clock_is_an_error():
    from cosim import PlatformError

    with pytest.raises(PlatformError, match="clock_hz"):
        Sp804("t", clock_hz=0)


offsets = st.sampled_from([b + o for b in (0, T2) for o in (LOAD, VALUE, CTRL, INTCLR, RIS, MIS, BGLOAD)]
                          + [ITCR, ITOP, 0xFE0, 0x40])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(offsets, st.sampled_from([1, 4]), st.one_of(st.none(), st.integers(0, 2**32 - 1)),
                          st.integers(0, 300)), max_size=30))
def test_random_accesses_keep_the_invariants(ops):
    sim = Simulation()
    dut = Harness(sim, Sp804("t"))
    for offset, size, value, wait in ops:
        try:
            if value is None:
                assert 0 <= dut.read(offset, size) < 1 << (8 * size)
            else:
                dut.write(offset, value, size)
        except BusError as error:
            assert error.status in (Response.ADDRESS_ERROR, Response.BURST_ERROR)
        dut.run(wait * TICK)
        d = dut.device
        for i, line in enumerate((d.timint1, d.timint2)):
            mis = dut.read(MIS + i * T2)
            assert mis == dut.read(RIS + i * T2) & (dut.read(CTRL + i * T2) >> 5) & 1
            if not dut.read(ITCR) & 1:
                assert line.level == bool(mis)
        assert d.timintc.level == (d.timint1.level or d.timint2.level)
        for i, c in enumerate(d.counters):
            assert 0 <= dut.read(VALUE + i * T2) <= 0xFFFF_FFFF
            halted = c.control & ONESHOT and c.time_of(c.base + c.start) <= sim.now
            if c.running and not d.regs.TimerXRIS[i] and not halted:
                assert c.expiry.when is not None and c.expiry.when > sim.now                # no lost expiry


class _TickByTick:
    """A reference SP804 timer that takes every tick, as the TRM describes the counter.

    On a tick the counter decrements; at zero it wraps (to Load in periodic
    mode, to its maximum in free-running mode) or, in one-shot mode, halts; reaching
    zero raises RIS. Ticks due at the time of an access happen before it.
    """

    def __init__(self) -> None:
        self.load, self.control, self.count, self.ris = 0, INTEN, 0xFFFF_FFFF, 0
        self.origin, self.ticks = 0, 0

    @property
    def mask(self) -> int:
        return 0xFFFF_FFFF if self.control & SIZE32 else 0xFFFF

    @property
    def period(self) -> int:
        return TICK * {0: 1, 1: 16, 2: 256, 3: 1}[(self.control >> 2) & 3]

    def advance(self, now: int) -> None:
        if not self.control & ENABLE:
            return
        while self.origin + (self.ticks + 1) * self.period <= now:
            self.ticks += 1
            if self.count == 0:
                if self.control & ONESHOT:
                    continue
                self.count = self.load & self.mask if self.control & PERIODIC else self.mask
            else:
                self.count -= 1
            if self.count == 0:
                self.ris = 1

    def restart(self, now: int, count: int) -> None:
        self.origin, self.ticks, self.count = now, 0, count & self.mask

    def write(self, now: int, offset: int, value: int) -> None:
        if offset == LOAD:
            self.load = value
            self.restart(now, value)
            if self.count == 0 and self.control & ENABLE:
                self.ris = 1
        elif offset == BGLOAD:
            self.load = value
        elif offset == INTCLR:
            self.ris = 0
        elif offset == CTRL:
            old, self.control = self.control, value & 0xEF
            if (old ^ self.control) & (ENABLE | SIZE32 | 0xC):
                self.restart(now, self.load if (old ^ self.control) & SIZE32 else self.count)


_waits = st.integers(0, 60 * TICK)
# Small counts (so zeros happen), with random upper halves (which 16-bit mode must ignore).
_loads = st.one_of(st.integers(0, 40), st.tuples(st.sampled_from([1, 0xFFFF, 0x1234]), st.integers(0, 40))
                   .map(lambda t: t[0] << 16 | t[1]))
_reference_ops = st.one_of(
    st.tuples(st.sampled_from([LOAD, BGLOAD]), _loads, _waits),
    st.tuples(st.just(CTRL), st.integers(0, 0xFF).map(lambda v: v & ~PRE256), _waits),  # prescale 1 or 16
    st.tuples(st.just(INTCLR), st.just(0), _waits),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_reference_ops, max_size=25))
def test_lazy_counter_matches_a_tick_by_tick_reference(ops):
    sim = Simulation()
    dut = Harness(sim, Sp804("t"))
    ref = _TickByTick()
    for offset, value, wait in ops:
        ref.advance(sim.now)
        dut.write(offset, value)
        ref.write(sim.now, offset, value)
        dut.run(wait)
        ref.advance(sim.now)
        assert (dut.read(VALUE), dut.read(RIS)) == (ref.count, ref.ris), f"at {sim.now} ps"
        assert dut.device.timint1.level == bool(ref.ris and ref.control & INTEN)


def test_the_test_kit_docstring_example_runs(harness):
    example = re.search(r"(    def test_timer_fires.*?)\n\n", cosim.testing.__doc__, re.S).group(1)
    namespace = {"Sp804": Sp804}
    exec(compile(textwrap.dedent(example), "cosim.testing docstring", "exec"), namespace)
    namespace["test_timer_fires"](harness)
