"""The 8254 PIT and port 61h through the I/O bus, per the Intel 8254 data sheet (231164) and PIIX4 NMISC."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim import Response, Simulation, us
from cosim.models.i8254 import PIT_HZ, I8254, edges, time_of_edge
from cosim.testing import Harness

CH0, CH1, CH2, CTRL, PORT_B = 0x40, 0x41, 0x42, 0x43, 0x61


class Pit:
    def __init__(self, dut: Harness) -> None:
        self.dut = dut
        self.pit: I8254 = dut.device
        dut.bus.map(PORT_B, 1, self.pit.port_b)

    def outb(self, port: int, value: int) -> None:
        self.dut.bus.write(port, 1, value)

    def inb(self, port: int) -> int:
        return self.dut.bus.read(port, 1)

    def program(self, counter: int, mode: int, count: int, bcd: bool = False) -> int:
        """Control word (LSB then MSB) and count; returns the edge at which the count loads."""
        self.outb(CTRL, counter << 6 | 0x30 | mode << 1 | bcd)
        self.outb(CH0 + counter, count & 0xFF)
        self.outb(CH0 + counter, count >> 8)
        return edges(self.dut.now) + 1          # loaded on the next CLK pulse

    def out2(self) -> bool:
        """Counter 2's OUT, as software sees it: port 61h bit 5."""
        return bool(self.inb(PORT_B) & 0x20)

    def out2_at(self, k: int) -> bool:
        self.run_to_edge(k)
        return self.out2()

    def gate2_rises(self) -> int:
        """Raise counter 2's gate; returns the clock edge at which a triggered count loads."""
        self.outb(PORT_B, 0x01)
        return edges(self.dut.now) + 1

    def latched(self, counter: int) -> int:
        self.outb(CTRL, counter << 6)           # counter latch command
        return self.inb(CH0 + counter) | self.inb(CH0 + counter) << 8

    def run_to_edge(self, k: int) -> None:
        """Run until just after clock edge k (events due at the edge itself have run)."""
        self.dut.run(time_of_edge(k) + 1 - self.dut.now)


@pytest.fixture
def pit(harness):
    return Pit(harness(I8254("pit"), base=CH0, size=4))


def test_reset_values(pit):
    assert pit.inb(CTRL) == 0xFF                             # the control register cannot be read
    assert pit.inb(PORT_B) & 0xEF == 0                       # gate 2 off, OUT2 low, no NMI sources
    assert not pit.pit.irq0.level
    pit.outb(CTRL, 0xE2)                                     # read-back status of counter 0
    assert pit.inb(CH0) == 0x70                              # OUT low, null count, LSB/MSB, mode 0, binary


def test_register_access_types(pit):
    assert pit.dut.status(0, size=2) is Response.BURST_ERROR
    pit.outb(PORT_B, 0xFF)                                   # bits 7:4 are read-only status
    assert pit.inb(PORT_B) & 0x0F == 0x0F
    assert pit.pit.port_b.regs.NMISC == 0x0F


def test_mode2_rate_generator_irq0_edges_are_exact(pit):
    irq0 = pit.dut.probe(pit.pit.irq0)
    n = 11932                                                # Linux's LATCH for HZ=100
    load = pit.program(0, 2, n)
    pit.dut.run(us(50_500))
    # OUT low for one clock when the count reaches 1, high again at the reload (data sheet, mode 2).
    assert irq0.falls == [time_of_edge(load + m * n - 1) for m in range(1, 6)]
    assert irq0.rises[1:] == [time_of_edge(load + m * n) for m in range(1, 6)]
    # Lazy: two events per period, never one per clock (5 periods = ~60000 clocks).
    assert pit.dut.sim.events_processed <= 2 * 5 + 2


def test_polling_the_counters_adds_no_events(pit):
    load = pit.program(0, 2, 1000)
    for k in range(0, 1000, 10):                            # a guest polling counter 0 and port 61h
        pit.run_to_edge(load + k)
        pit.latched(0)
        pit.inb(PORT_B)
    before = pit.dut.sim.events_processed
    pit.run_to_edge(load + 3000)
    # Two transitions per period; the polls above ran only their own time steps.
    assert pit.dut.sim.events_processed - before <= 2 * 3 + 1


def test_mode2_counter_value_follows_time_exactly(pit):
    load = pit.program(0, 2, 1000)
    pit.run_to_edge(load + 250)
    assert pit.latched(0) == 750
    pit.run_to_edge(load + 1000 + 10)
    assert pit.latched(0) == 990                             # reloaded at 1000 clocks
    # Counts come from elapsed_ps * 1193182 // 10**12, not from a rounded period.
    pit.dut.run(10**12 - pit.dut.now)
    assert pit.latched(0) == 1000 - (PIT_HZ - load) % 1000


def test_mode2_new_count_takes_effect_at_the_next_reload(pit):
    irq0 = pit.dut.probe(pit.pit.irq0)
    load = pit.program(0, 2, 100)
    pit.run_to_edge(load + 30)
    pit.outb(CH0, 50)
    pit.outb(CH0, 0)
    pit.dut.run(time_of_edge(load + 100 + 50 + 1) - pit.dut.now)
    assert irq0.rises[1:] == [time_of_edge(load + 100), time_of_edge(load + 150)]


def test_mode3_square_wave_odd_count(pit):
    irq0 = pit.dut.probe(pit.pit.irq0)
    load = pit.program(0, 3, 5)
    pit.run_to_edge(load + 10)
    # Odd N: high for (N+1)/2 clocks, low for (N-1)/2 (data sheet, mode 3).
    assert irq0.falls == [time_of_edge(load + 3), time_of_edge(load + 8)]
    assert irq0.rises[1:] == [time_of_edge(load + 5), time_of_edge(load + 10)]


def test_mode3_counts_down_by_two(pit):
    load = pit.program(2, 3, 10)
    pit.outb(PORT_B, 0x01)                                   # gate 2 high: counting (re)starts
    load = edges(pit.dut.now) + 1
    values = []
    for k in range(6):
        pit.run_to_edge(load + k)
        values.append(pit.latched(2))
    assert values == [10, 8, 6, 4, 2, 10]


def test_mode0_interrupt_on_terminal_count(pit):
    irq0 = pit.dut.probe(pit.pit.irq0)
    load = pit.program(0, 0, 100)
    assert not pit.pit.irq0.level
    pit.run_to_edge(load + 40)
    assert pit.latched(0) == 60 and not pit.pit.irq0.level
    pit.run_to_edge(load + 102)
    assert irq0.rises == [time_of_edge(load + 100)]
    assert pit.latched(0) == 0xFFFE                          # the counter keeps counting, wrapping


def test_mode0_first_byte_stops_the_count(pit):
    load = pit.program(0, 0, 100)
    pit.run_to_edge(load + 10)
    pit.outb(CH0, 0x20)                                      # LSB only: counting stops
    pit.run_to_edge(load + 200)
    assert not pit.pit.irq0.level and pit.latched(0) == 90


def test_counter_latch_holds_the_value_until_read(pit):
    load = pit.program(0, 2, 1000)
    pit.run_to_edge(load + 100)
    pit.outb(CTRL, 0x00)
    pit.run_to_edge(load + 300)
    pit.outb(CTRL, 0x00)                                     # a second latch before reading is ignored
    assert pit.inb(CH0) | pit.inb(CH0) << 8 == 900


def test_read_back_status_and_count(pit):
    pit.outb(CTRL, 0xB4)                                     # counter 2, LSB/MSB, mode 2
    pit.outb(CH2, 0x10)
    pit.outb(CH2, 0x00)
    pit.outb(CTRL, 0xC8)                                     # read back count and status of counter 2
    assert pit.inb(CH2) == 0xC0 | 0x34                       # OUT high, null count (gate low: not loaded)
    assert pit.inb(CH2) == 0x00 and pit.inb(CH2) == 0x00
    pit.outb(PORT_B, 0x01)
    pit.dut.run(us(2))
    pit.outb(CTRL, 0xE8)                                     # status only
    assert pit.inb(CH2) == 0x80 | 0x34                       # loaded: null count clear


def test_lsb_only_and_msb_only_access(pit):
    pit.outb(CTRL, 0x14)                                     # counter 0, LSB only, mode 2
    pit.outb(CH0, 200)
    load = edges(pit.dut.now) + 1
    pit.run_to_edge(load + 50)
    pit.outb(CTRL, 0x00)
    assert pit.inb(CH0) == 150
    pit.outb(CTRL, 0x24)                                     # MSB only: count 0x0200
    pit.outb(CH0, 0x02)
    load = edges(pit.dut.now) + 1
    pit.run_to_edge(load + 0x100)
    assert pit.inb(CH0) == 0x01 and pit.inb(CH0) == 0x01     # unlatched reads, MSB each time


def test_linux_pit_calibrate_tsc_polls_out2(pit):
    # arch/x86/kernel/tsc.c pit_calibrate_tsc(): gate on, speaker off, mode 0 on counter 2, poll bit 5.
    pit.outb(PORT_B, (pit.inb(PORT_B) & ~0x02) | 0x01)
    latch = PIT_HZ // (1000 // 10)
    pit.outb(CTRL, 0xB0)
    pit.outb(CH2, latch & 0xFF)
    pit.outb(CH2, latch >> 8)
    load = edges(pit.dut.now) + 1
    pit.run_to_edge(load + latch - 1)
    assert not pit.out2()
    pit.run_to_edge(load + latch)
    assert pit.out2()
    assert pit.dut.sim.events_processed <= 4                 # OUT2 is computed when read, not scheduled


def test_linux_pit_expect_msb_reads_lsb_then_msb(pit):
    # quick_pit_calibrate(): mode 0, count 0xFFFF on counter 2, then unlatched LSB/MSB reads.
    pit.outb(PORT_B, 0x01)
    pit.outb(CTRL, 0xB0)
    pit.outb(CH2, 0xFF)
    pit.outb(CH2, 0xFF)
    load = edges(pit.dut.now) + 1
    for msb in (0xFF, 0xFE, 0xF0):
        pit.run_to_edge(load + 0xFFFF - (msb << 8 | 0x80))
        pit.inb(CH2)
        assert pit.inb(CH2) == msb


def test_gate_low_suspends_mode0_counting(pit):
    load = pit.program(2, 0, 100)                            # gate 2 is low after reset
    pit.run_to_edge(load + 50)
    assert pit.latched(2) == 100                             # loaded, but not counting
    pit.outb(PORT_B, 0x01)
    start = edges(pit.dut.now)
    pit.run_to_edge(start + 30)
    assert pit.latched(2) == 70
    pit.outb(PORT_B, 0x00)
    pit.run_to_edge(start + 90)
    assert pit.latched(2) == 70


def test_mode1_one_shot_is_triggered_and_retriggered_by_the_gate(pit):
    pit.program(2, 1, 10)
    assert pit.out2()                                        # OUT high until triggered
    trigger = pit.gate2_rises()
    pit.run_to_edge(trigger + 5)
    assert not pit.out2()
    pit.outb(PORT_B, 0x00)
    trigger = pit.gate2_rises()                              # retrigger: starts over
    assert [pit.out2_at(trigger + k) for k in (9, 10)] == [False, True]


def test_mode4_software_strobe_is_one_clock_low(pit):
    irq0 = pit.dut.probe(pit.pit.irq0)
    load = pit.program(0, 4, 20)
    pit.run_to_edge(load + 100)
    assert irq0.falls == [time_of_edge(load + 20)] and irq0.rises[1:] == [time_of_edge(load + 21)]


def test_mode4_new_count_restarts_the_count(pit):
    irq0 = pit.dut.probe(pit.pit.irq0)
    load = pit.program(0, 4, 20)
    pit.run_to_edge(load + 20)                               # inside the one-clock strobe
    assert not pit.pit.irq0.level
    pit.outb(CH0, 10)
    pit.outb(CH0, 0)
    reload = edges(pit.dut.now) + 1
    pit.run_to_edge(reload + 11)
    assert irq0.falls == [time_of_edge(load + 20), time_of_edge(reload + 10)]
    assert irq0.rises[1:] == [time_of_edge(reload), time_of_edge(reload + 11)]


def test_mode5_hardware_strobe_waits_for_the_gate(pit):
    pit.program(2, 5, 20)
    pit.dut.run(us(100))
    assert pit.out2()                                        # no trigger yet
    load = pit.gate2_rises()
    assert [pit.out2_at(load + k) for k in (19, 20, 21)] == [True, False, True]


def test_bcd_counting(pit):
    load = pit.program(0, 2, 0x0100, bcd=True)               # 100 decimal
    pit.run_to_edge(load + 1)
    assert pit.latched(0) == 0x0099
    pit.run_to_edge(load + 37)
    assert pit.latched(0) == 0x0063


def test_refresh_toggle_flips_every_18_clocks(pit):
    seen = []
    for k in range(1, 72, 9):
        pit.run_to_edge(k)
        seen.append(pit.inb(PORT_B) >> 4 & 1)
    assert seen == [0, 0, 1, 1, 0, 0, 1, 1]


def test_count_of_one_in_mode2_is_rejected_to_two(pit, caplog):
    irq0 = pit.dut.probe(pit.pit.irq0)
    load = pit.program(0, 2, 1)
    assert "count 1 is illegal in mode 2" in caplog.text
    pit.run_to_edge(load + 4)
    assert irq0.rises[1:] == [time_of_edge(load + 2), time_of_edge(load + 4)]


registers = st.sampled_from([CH0, CH1, CH2, CTRL, PORT_B])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(registers, st.one_of(st.none(), st.integers(0, 255)), st.integers(0, 3000)), max_size=40))
def test_random_programming_keeps_the_invariants(ops):
    sim = Simulation()
    pit = Pit(Harness(sim, I8254("pit"), base=CH0, size=4))
    for port, value, clocks in ops:
        if value is None:
            assert 0 <= pit.inb(port) <= 0xFF
        else:
            pit.outb(port, value)
        pit.dut.run(time_of_edge(edges(sim.now) + clocks) - sim.now + 1)
        for index in range(3):
            counter = pit.pit.counter(index)
            assert 0 <= counter.value() < counter.modulus   # the counter is always within its range
        assert pit.pit.irq0.level == pit.pit.counters[0].out


class ReferenceCounter:
    """A clock-by-clock 8254 counter written straight from the data sheet's mode descriptions.

    Slow (one step per CLK edge) and used only to check the lazy model's closed-form catch-up.
    """

    def __init__(self, gate: bool) -> None:
        self.gate, self.mode, self.count, self.ce, self.out = gate, 0, 0, 0, False
        self.state, self.armed, self.fresh, self.low_byte = "idle", False, False, None

    def program(self, mode: int) -> None:
        self.mode, self.count, self.state, self.armed, self.low_byte = mode, 0, "idle", False, None
        self.out = mode != 0

    def write(self, rw: int, byte: int) -> None:
        if rw == 3 and self.low_byte is None:
            self.low_byte = byte
            if self.mode == 0:
                self.state, self.out = "idle", False
            return
        self.count = ((self.low_byte | byte << 8) if rw == 3 else byte) or 0x10000
        self.low_byte = None
        if self.mode == 0:
            self.state, self.out = "load", False
        elif self.mode == 4 or (self.mode in (2, 3) and self.state == "idle"):
            self.state = "load"

    def set_gate(self, level: bool) -> None:
        rising = level and not self.gate
        self.gate = level
        if self.mode in (2, 3) and not level:
            self.out = True
        if rising and ((self.mode in (1, 5) and self.count) or (self.mode in (2, 3) and self.state != "idle")):
            self.state = "load"

    def clock(self) -> None:
        mode = self.mode
        if self.state == "load":
            if mode in (2, 3) and not self.gate:
                return
            self.ce, self.state, self.armed, self.fresh = self.count, "counting", True, True
            self.out = mode != 1 if mode != 0 else False
            return
        if self.state != "counting" or (not self.gate and mode in (0, 2, 3, 4)):
            return
        if mode in (0, 1):
            self.ce = (self.ce - 1) % 0x10000
            if self.armed and self.ce == 0:
                self.out, self.armed = True, False
        elif mode in (4, 5):
            if not self.out:
                self.out, self.armed = True, False           # the strobe lasts one clock
            self.ce = (self.ce - 1) % 0x10000
            if self.armed and self.ce == 0:
                self.out = False
        elif mode == 2:
            self.ce -= 1
            if self.ce == 0:
                self.ce, self.out = self.count, True         # reload with the current count
            else:
                self.out = self.ce != 1
        else:
            odd = self.ce % 2 if self.fresh else self.count % 2
            step = (1 if self.out else 3) if self.fresh and odd else 2
            self.fresh = False
            self.ce -= step
            if self.ce <= 0:
                self.ce, self.out, self.fresh = self.count, not self.out, True


counts = st.one_of(st.integers(2, 40), st.just(0x10000))
pit_ops = st.one_of(
    # A whole programming step (control word, LSB, MSB), so most examples count something.
    st.tuples(st.just("program"), st.integers(0, 2), st.integers(0, 5), counts),
    st.tuples(st.just("count"), st.integers(0, 2), st.just(0), counts),      # a new count, same mode
    st.tuples(st.just("control"), st.integers(0, 2), st.sampled_from([1, 3]), st.integers(0, 5)),
    st.tuples(st.just("byte"), st.integers(0, 2), st.sampled_from([0, 2, 3, 5, 40]), st.just(0)),
    st.tuples(st.just("gate"), st.booleans(), st.just(0), st.just(0)),
    st.tuples(st.just("wait"), st.integers(0, 60), st.just(0), st.just(0)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(pit_ops, min_size=10, max_size=40))
def test_lazy_counters_agree_with_a_clock_by_clock_reference(ops):
    sim = Simulation()
    pit = Pit(Harness(sim, I8254("pit"), base=CH0, size=4))
    irq0 = pit.dut.probe(pit.pit.irq0)
    refs = [ReferenceCounter(gate=i != 2) for i in range(3)]
    expected_irq0: list[tuple[int, bool]] = []

    def note_out0(when: int) -> None:
        level = expected_irq0[-1][1] if expected_irq0 else False
        if refs[0].out != level:
            expected_irq0.append((when, refs[0].out))

    rws = [3, 3, 3]
    edge = edges(sim.now)
    for kind, a, b, c in ops:
        if kind == "program":
            pit.outb(CTRL, a << 6 | 0x30 | b << 1)
            refs[a].program(b)
            rws[a] = 3
        if kind in ("program", "count"):
            for byte in (c & 0xFF, c >> 8 & 0xFF) if rws[a] == 3 else ():
                pit.outb(CH0 + a, byte)
                refs[a].write(3, byte)
        elif kind == "control":
            pit.outb(CTRL, a << 6 | b << 4 | c << 1)
            refs[a].program(c)
            rws[a] = b
        elif kind == "byte":
            pit.outb(CH0 + a, b)
            refs[a].write(rws[a], b)
        elif kind == "gate":
            pit.outb(PORT_B, int(a))
            refs[2].set_gate(a)
        note_out0(sim.now)
        for _ in range(a if kind == "wait" else 1):
            edge += 1
            for ref in refs:
                ref.clock()
            note_out0(time_of_edge(edge))
        pit.run_to_edge(edge)
        for index, ref in enumerate(refs):
            counter = pit.pit.counter(index)
            if ref.state == "counting":
                assert counter.value() == ref.ce % 0x10000, (index, ref.mode)
            assert counter.out == ref.out, (index, ref.mode)
        assert pit.out2() == refs[2].out
    # Every IRQ0 transition happened, at the exact clock edge: the scheduled events are right.
    assert irq0.history == expected_irq0
