"""The 8259A pair through the I/O bus, per the Intel 8259A data sheet (231468) and PIIX4 ELCR1/ELCR2 (290562)."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim import BusError, Response, Simulation
from cosim.models.i8259 import I8259
from cosim.testing import Harness

MASTER, SLAVE, ELCR = 0x20, 0xA0, 0x4D0
MASTER_BASE, SLAVE_BASE = 0x30, 0x38          # vector bases as Linux programs them (0x30, 0x38)


class Pics:
    """The pair mapped as on the PC: master through the harness, slave and ELCR on the same bus."""

    def __init__(self, dut: Harness) -> None:
        self.dut = dut
        self.pic: I8259 = dut.device.pair
        dut.bus.map(SLAVE, 2, self.pic.slave)
        dut.bus.map(ELCR, 2, self.pic.elcr)
        self.pic.cascade.connect(self.pic.irq(2))
        self.intr = dut.probe(self.pic.intr)

    def outb(self, port: int, value: int) -> None:
        self.dut.bus.write(port, 1, value)

    def inb(self, port: int) -> int:
        return self.dut.bus.read(port, 1)

    def init(self, aeoi: bool = False) -> None:
        """Linux's init_8259A: ICW1 edge+ICW4, vector bases, cascade on IR2, 8086 mode."""
        icw4 = 0x03 if aeoi else 0x01
        for port, base, icw3 in ((MASTER, MASTER_BASE, 1 << 2), (SLAVE, SLAVE_BASE, 2)):
            self.outb(port, 0x11)
            self.outb(port + 1, base)
            self.outb(port + 1, icw3)
            self.outb(port + 1, icw4)

    def line(self, irq: int, level: bool) -> None:
        self.pic.irq(irq)(level)

    def pulse(self, irq: int) -> None:
        self.line(irq, True)
        self.line(irq, False)

    def isr(self, port: int) -> int:
        self.outb(port, 0x0B)                 # OCW3: read ISR
        value = self.inb(port)
        self.outb(port, 0x0A)                 # OCW3: back to IRR
        return value


@pytest.fixture
def pics(harness):
    dut = harness(I8259("pic").master, base=MASTER, size=2)
    p = Pics(dut)
    p.init()
    return p


def test_reset_values(harness):
    p = Pics(harness(I8259("pic").master, base=MASTER, size=2))
    for port in (MASTER, SLAVE):
        assert p.inb(port + 1) == 0x00        # IMR
        assert p.inb(port) == 0x00            # IRR (status reads select IRR at power-on)
        assert p.isr(port) == 0x00
    assert p.inb(ELCR) == 0 and p.inb(ELCR + 1) == 0
    assert not p.pic.intr.level


def test_ports_are_one_byte_and_elcr_reserved_bits_read_zero(pics):
    dut = pics.dut
    assert dut.status(0, size=2) is Response.BURST_ERROR
    with pytest.raises(BusError):
        dut.bus.read(SLAVE, 2)
    pics.outb(ELCR, 0xFF)
    pics.outb(ELCR + 1, 0xFF)
    # PIIX4 ELCR1/ELCR2: IRQ0, 1, 2 (ELCR1 bits 2:0) and IRQ8, 13 (ELCR2 bits 0, 5) are reserved.
    assert pics.inb(ELCR) == 0xF8 and pics.inb(ELCR + 1) == 0xDE
    pics.outb(MASTER + 1, 0xA5)               # OCW1 is read back as IMR
    assert pics.inb(MASTER + 1) == 0xA5


def test_edge_interrupt_is_acknowledged_and_ended_by_non_specific_eoi(pics):
    pics.pulse(0)
    assert pics.pic.intr.level and pics.inb(MASTER) == 0x01      # IRR bit 0 latched by the edge
    assert pics.pic.acknowledge() == MASTER_BASE
    assert not pics.pic.intr.level and pics.isr(MASTER) == 0x01 and pics.inb(MASTER) == 0
    pics.outb(MASTER, 0x20)                                      # OCW2: non-specific EOI
    assert pics.isr(MASTER) == 0 and not pics.pic.intr.level


def test_an_edge_line_held_high_does_not_request_again(pics):
    pics.line(1, True)
    assert pics.pic.acknowledge() == MASTER_BASE + 1
    pics.outb(MASTER, 0x20)
    assert not pics.pic.intr.level                               # no new rising edge


def test_priority_and_nesting(pics):
    pics.pulse(3)
    pics.pulse(5)
    assert pics.pic.acknowledge() == MASTER_BASE + 3             # IR0 highest, IR7 lowest
    assert not pics.pic.intr.level                               # IR5 waits for IR3's EOI
    pics.pulse(1)
    assert pics.pic.intr.level                                   # a higher level nests
    assert pics.pic.acknowledge() == MASTER_BASE + 1
    assert pics.isr(MASTER) == 0b1010
    pics.outb(MASTER, 0x20)                                      # ends the highest in service: IR1
    assert pics.isr(MASTER) == 0b1000 and not pics.pic.intr.level
    pics.outb(MASTER, 0x63)                                      # specific EOI for IR3
    assert pics.isr(MASTER) == 0 and pics.pic.acknowledge() == MASTER_BASE + 5


def test_masked_requests_stay_pending_but_do_not_interrupt(pics):
    pics.outb(MASTER + 1, 0x10)
    pics.pulse(4)
    assert pics.inb(MASTER) == 0x10 and not pics.pic.intr.level
    pics.outb(MASTER + 1, 0x00)
    assert pics.pic.acknowledge() == MASTER_BASE + 4


def test_slave_interrupt_cascades_through_master_ir2(pics):
    pics.pulse(12)
    assert pics.pic.cascade.level and pics.pic.intr.level
    assert pics.pic.acknowledge() == SLAVE_BASE + 4
    assert pics.isr(MASTER) == 0x04 and pics.isr(SLAVE) == 0x10
    assert not pics.pic.intr.level
    pics.outb(SLAVE, 0x20)
    pics.outb(MASTER, 0x20)
    assert pics.isr(MASTER) == 0 and pics.isr(SLAVE) == 0


def test_second_slave_request_is_delivered_after_the_eois(pics):
    pics.pulse(9)
    pics.pulse(14)
    assert pics.pic.acknowledge() == SLAVE_BASE + 1
    pics.outb(SLAVE, 0x20)
    pics.outb(MASTER, 0x20)
    assert pics.pic.intr.level and pics.pic.acknowledge() == SLAVE_BASE + 6


def test_auto_eoi_with_slave_requests_pending(harness):
    p = Pics(harness(I8259("pic").master, base=MASTER, size=2))
    p.init(aeoi=True)
    p.pulse(9)
    p.pulse(10)
    assert p.pic.acknowledge() == SLAVE_BASE + 1
    assert p.isr(MASTER) == 0 and p.isr(SLAVE) == 0              # ICW4 AEOI: no ISR bit set
    # The slave's INT fell during INTA and rose again: the master latched a new edge on IR2.
    assert p.pic.intr.level and p.pic.acknowledge() == SLAVE_BASE + 2


def test_level_triggered_irq_via_elcr_requests_until_the_line_drops(pics):
    pics.outb(ELCR, 0x20)                                        # IRQ5 level-sensitive
    pics.line(5, True)
    assert pics.pic.acknowledge() == MASTER_BASE + 5
    pics.outb(MASTER, 0x20)
    assert pics.pic.intr.level                                   # still high: requests again
    pics.line(5, False)
    assert not pics.pic.intr.level and pics.inb(MASTER) == 0


def test_spurious_irq7_when_a_level_request_vanishes(pics):
    pics.outb(ELCR, 0x20)
    pics.line(5, True)
    pics.line(5, False)                                          # dropped before INTA
    assert pics.pic.acknowledge() == MASTER_BASE + 7
    assert pics.isr(MASTER) == 0                                 # a spurious IR7 sets no ISR bit


def test_spurious_irq15_when_the_slave_request_vanishes(pics):
    pics.outb(ELCR + 1, 0x04)                                    # IRQ10 level-sensitive
    pics.line(10, True)
    pics.line(10, False)                                         # master's IR2 edge stays latched
    assert pics.pic.intr.level
    assert pics.pic.acknowledge() == SLAVE_BASE + 7
    assert pics.isr(SLAVE) == 0 and pics.isr(MASTER) == 0x04     # the master did take IR2


def test_rotate_on_non_specific_eoi(pics):
    pics.pulse(1)
    pics.pulse(3)
    assert pics.pic.acknowledge() == MASTER_BASE + 1
    pics.outb(MASTER, 0xA0)                                      # OCW2 rotate on non-specific EOI
    pics.pulse(1)                                                # IR1 is now the lowest priority
    assert pics.pic.acknowledge() == MASTER_BASE + 3


def test_set_priority_command(pics):
    pics.outb(MASTER, 0xC4)                                      # OCW2 set priority: IR4 lowest
    pics.pulse(3)
    pics.pulse(6)
    assert pics.pic.acknowledge() == MASTER_BASE + 6             # order is now 5, 6, 7, 0, 1, 2, 3, 4


def test_poll_command_acknowledges_by_reading(pics):
    pics.pulse(6)
    pics.outb(MASTER, 0x0C)                                      # OCW3 poll
    assert pics.inb(MASTER) == 0x86                              # I bit and level 6
    assert pics.isr(MASTER) == 0x40
    pics.outb(MASTER, 0x0C)
    assert pics.inb(MASTER) == 0x00                              # nothing requesting


def test_special_mask_mode_lets_lower_levels_interrupt(pics):
    pics.pulse(3)
    assert pics.pic.acknowledge() == MASTER_BASE + 3
    pics.pulse(5)
    assert not pics.pic.intr.level
    pics.outb(MASTER + 1, 0x08)                                  # mask IR3 (in service)
    pics.outb(MASTER, 0x68)                                      # OCW3 ESMM|SMM
    assert pics.pic.intr.level and pics.pic.acknowledge() == MASTER_BASE + 5
    pics.outb(MASTER, 0x48)                                      # leave special mask mode
    pics.outb(MASTER, 0x65)
    assert pics.isr(MASTER) == 0x08


def test_icw1_reinitialises(pics):
    pics.outb(MASTER + 1, 0xFF)
    pics.pulse(0)
    pics.outb(MASTER, 0x11)                                      # ICW1 clears IMR and the edge latches
    assert pics.inb(MASTER + 1) == 0 and pics.inb(MASTER) == 0
    pics.outb(MASTER + 1, 0x50)                                  # ICW2
    pics.outb(MASTER + 1, 0x04)                                  # ICW3
    pics.outb(MASTER + 1, 0x01)                                  # ICW4
    pics.outb(MASTER + 1, 0xFE)                                  # now OCW1
    assert pics.inb(MASTER + 1) == 0xFE
    pics.pulse(0)
    assert pics.pic.acknowledge() == 0x50


def test_single_mode_skips_icw3(harness):
    p = Pics(harness(I8259("pic").master, base=MASTER, size=2))
    p.outb(MASTER, 0x13)                                         # SNGL | IC4
    p.outb(MASTER + 1, 0x40)
    p.outb(MASTER + 1, 0x01)                                     # ICW4, not ICW3
    p.outb(MASTER + 1, 0x00)                                     # OCW1
    p.pulse(2)
    assert p.pic.acknowledge() == 0x42                           # IR2 is an ordinary input here


def test_bad_irq_number_is_a_clear_error():
    with pytest.raises(IndexError, match="no IRQ 16"):
        I8259("pic").irq(16)


ports = st.sampled_from([MASTER, MASTER + 1, SLAVE, SLAVE + 1, ELCR, ELCR + 1])
actions = st.one_of(
    st.tuples(st.just("out"), ports, st.integers(0, 255)),
    st.tuples(st.just("in"), ports, st.just(0)),
    st.tuples(st.just("line"), st.integers(0, 15).filter(lambda n: n != 2), st.booleans()),
    st.tuples(st.just("ack"), st.just(0), st.just(0)),
)


@settings(max_examples=150, deadline=None)
@given(st.booleans(), st.lists(actions, max_size=40))
def test_random_programming_keeps_the_invariants(initialise, ops):
    sim = Simulation()
    pic = I8259("pic")
    p = Pics(Harness(sim, pic.master, base=MASTER, size=2))
    if initialise:
        p.init()
    for kind, where, value in ops:
        if kind == "out":
            p.outb(where, value)
        elif kind == "in":
            assert 0 <= p.inb(where) <= 0xFF
        elif kind == "line":
            p.line(where, value)
        else:
            chips = (pic.master, pic.slave)
            before = [(c.isr, c.imr, c.icw4) for c in chips]
            vector = pic.acknowledge()
            assert 0 <= vector <= 0xFF
            for chip, (isr, imr, _) in zip(chips, before):
                # Never acknowledges a masked interrupt: no masked level newly enters service.
                assert (chip.isr & ~isr) & imr == 0
        for chip in (pic.master, pic.slave):
            assert 0 <= chip.isr <= 0xFF and 0 <= chip.irr <= 0xFF
        assert pic.intr.level == (pic.master.highest() is not None)
        if pic.master.imr == 0xFF:
            assert not pic.intr.level


def test_pending_vector_peeks_without_acknowledging(pics):
    assert pics.pic.pending_vector() is None
    pics.pulse(11)
    assert pics.pic.pending_vector() == SLAVE_BASE + 3
    assert pics.inb(SLAVE) == 0x08 and pics.isr(SLAVE) == 0          # still only requested
    assert pics.pic.acknowledge() == SLAVE_BASE + 3
