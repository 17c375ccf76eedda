"""GICv2 through the bus, per Arm IHI 0048B."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim import Bus, BusError
from cosim.models.gicv2 import SPURIOUS, Gicv2

DIST, CPU = 0x0800_0000, 0x0801_0000
CTLR, TYPER, ISENABLER, ICENABLER, ISPENDR, ICPENDR, ISACTIVER = 0x000, 0x004, 0x100, 0x180, 0x200, 0x280, 0x300
IPRIORITYR, ITARGETSR, ICFGR, SGIR = 0x400, 0x800, 0xC00, 0xF00
GICC_CTLR, PMR, BPR, IAR, EOIR, RPR, HPPIR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18


class Gic:
    def __init__(self, num_cpus=1):
        self.gic = Gicv2("gic", num_cpus=num_cpus, num_spis=64)
        self.bus = Bus("sysbus")
        self.bus.map(DIST, 0x1000, self.gic.distributor)
        for c in range(num_cpus):
            self.bus.map(CPU + c * 0x10000, 0x2000, self.gic.cpu_interface(c))

    def d(self, off, value=None, size=4):
        if value is None:
            return self.bus.read(DIST + off, size)
        self.bus.write(DIST + off, size, value)

    def c(self, off, value=None, cpu=0):
        if value is None:
            return self.bus.read(CPU + cpu * 0x10000 + off, 4)
        self.bus.write(CPU + cpu * 0x10000 + off, 4, value)

    def enable(self, intid, prio=0xA0, cpus=1):
        self.d(ISENABLER + 4 * (intid // 32), 1 << (intid % 32))
        self.d(IPRIORITYR + intid, prio, size=1)
        if intid >= 32:
            self.d(ITARGETSR + intid, cpus, size=1)

    def on(self, pmr=0xF0, num_cpus=1):
        self.d(CTLR, 1)
        for c in range(num_cpus):
            self.c(GICC_CTLR, 1, cpu=c)
            self.c(PMR, pmr, cpu=c)


@pytest.fixture
def g():
    gic = Gic()
    gic.on()
    return gic


def test_reset_values_and_typer():
    g = Gic(num_cpus=2)
    assert g.d(CTLR) == 0 and g.c(GICC_CTLR) == 0 and g.c(PMR) == 0
    assert g.d(TYPER) == (1 << 5) | 2                 # 2 CPUs, 96 interrupts: ITLinesNumber 2 (4.3.2)
    assert g.c(IAR) == SPURIOUS and g.c(RPR) == 0xFF
    assert g.d(ITARGETSR, size=1) == 0b01              # SGI targets read as the reading CPU (4.3.12)
    assert g.d(ICFGR) == 0xAAAAAAAA                    # SGIs are edge-triggered


def test_level_spi_acknowledge_and_eoi(g):
    g.enable(33)
    line = g.gic.spi(1)
    line(True)
    assert g.gic.irq(0).level and g.c(HPPIR) == 33
    assert g.c(IAR) == 33 and not g.gic.irq(0).level   # active: not signalled again
    assert g.c(RPR) == 0xA0
    line(False)
    g.c(EOIR, 33)
    assert g.c(RPR) == 0xFF and g.c(IAR) == SPURIOUS


def test_level_input_dropped_before_acknowledge_is_no_longer_pending(g):
    g.enable(40)
    g.gic.spi(8)(True)
    g.gic.spi(8)(False)
    assert g.c(IAR) == SPURIOUS                         # level-sensitive: pending follows the line (3.2.4)


def test_edge_input_stays_pending_after_the_pulse(g):
    g.enable(40)
    g.d(ICFGR + 8, 0b10 << 16)                          # ID 40 edge-triggered
    g.gic.spi(8)(True)
    g.gic.spi(8)(False)
    assert g.c(IAR) == 40


def test_disabled_interrupt_is_never_signalled(g):
    g.enable(33)
    g.d(ICENABLER + 4, 1 << 1)
    g.gic.spi(1)(True)
    assert not g.gic.irq(0).level and g.c(IAR) == SPURIOUS
    assert g.d(ISPENDR + 4) & (1 << 1)                   # still pending, just not forwarded


def test_priority_order_and_ties_to_lowest_id(g):
    for intid, prio in ((34, 0x80), (35, 0x40), (36, 0x40)):
        g.enable(intid, prio)
        g.d(ISPENDR + 4, 1 << (intid - 32))
    assert g.c(IAR) == 35                 # highest priority, lowest ID among equals (3.3.1)
    assert g.c(IAR) == SPURIOUS           # 36 has the same priority as the running 35: no preemption
    g.c(EOIR, 35)
    assert [g.c(IAR), g.c(EOIR, 36), g.c(IAR)] == [36, None, 34]


def test_pmr_masks_equal_and_lower_priorities(g):
    g.enable(33, prio=0xF0)
    g.d(ISPENDR + 4, 1 << 1)
    assert not g.gic.irq(0).level                        # 0xF0 is not higher than PMR 0xF0 (4.4.2)
    g.c(PMR, 0xF8)
    assert g.gic.irq(0).level


def test_preemption_needs_a_higher_group_priority(g):
    g.enable(33, prio=0x80)
    g.enable(34, prio=0x70)
    g.d(ISPENDR + 4, 1 << 1)
    assert g.c(IAR) == 33
    g.c(BPR, 4)                                           # group priority bits [7:5]: 0x80 vs 0x60
    g.d(ISPENDR + 4, 1 << 2)
    assert g.c(IAR) == 34                                 # 0x70 -> group 0x60 < 0x80: preempts
    g.c(EOIR, 34)
    g.c(BPR, 7)                                           # no group priority bits: nothing preempts
    g.d(ISPENDR + 4, 1 << 2)
    assert not g.gic.irq(0).level


def test_sgi_target_filters_and_source_in_iar():
    g = Gic(num_cpus=2)
    g.on(num_cpus=2)
    g.d(SGIR, (1 << 24) | 5)                              # all but self (CPU 0)
    assert g.c(IAR, cpu=1) == 5 | (0 << 10)
    assert g.c(IAR, cpu=0) == SPURIOUS
    g.bus.write(DIST + SGIR, 4, (2 << 24) | 3)            # self only
    assert g.c(IAR, cpu=0) == 3
    g.gic.distributors[1].write(SGIR, 4, (0 << 24) | (0b01 << 16) | 7)   # CPU 1 sends to CPU 0
    g.c(EOIR, 3)
    assert g.c(IAR, cpu=0) == 7 | (1 << 10)


def test_itargetsr_routes_spis_between_cpus():
    g = Gic(num_cpus=2)
    g.on(num_cpus=2)
    g.enable(50, cpus=0b10)
    g.gic.spi(18)(True)
    assert not g.gic.irq(0).level and g.gic.irq(1).level
    assert g.c(IAR, cpu=1) == 50


def test_distributor_or_cpu_interface_disabled_gives_spurious(g):
    g.enable(33)
    g.gic.spi(1)(True)
    g.d(CTLR, 0)
    assert g.c(IAR) == SPURIOUS
    g.d(CTLR, 1)
    g.c(GICC_CTLR, 0)
    assert g.c(IAR) == SPURIOUS


def test_active_and_pending(g):
    g.enable(33)
    g.d(ICFGR + 8, 0b10 << 2)                            # edge
    g.gic.spi(1)(True)
    assert g.c(IAR) == 33
    g.gic.spi(1)(False)
    g.gic.spi(1)(True)                                    # a second edge while active
    assert g.d(ISACTIVER + 4) & 2 and g.d(ISPENDR + 4) & 2
    g.c(EOIR, 33)
    assert g.c(IAR) == 33


def test_ppi_from_the_timer(g):
    g.enable(27, prio=0x10)
    g.gic.ppi(0, 27)(True)
    assert g.c(IAR) == 27


def test_bad_size_is_a_bus_error(g):
    with pytest.raises(BusError):
        g.bus.read(DIST + ISENABLER, 1)


ops = st.lists(st.one_of(
    st.tuples(st.just("d"), st.sampled_from([CTLR, ISENABLER, ISENABLER + 4, ICENABLER + 4, ISPENDR + 4, ICPENDR + 4,
                                              IPRIORITYR + 33, ITARGETSR + 33, ICFGR + 8, SGIR]), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("c"), st.sampled_from([GICC_CTLR, PMR, BPR, IAR, EOIR, HPPIR, RPR]), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("line"), st.integers(0, 7), st.booleans()),
), max_size=40)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_never_acknowledges_a_disabled_or_masked_interrupt(sequence):
    g = Gic()
    for kind, a, b in sequence:
        if kind == "line":
            g.gic.spi(a)(b)
            continue
        size = 1 if a in (IPRIORITYR + 33, ITARGETSR + 33) else 4
        value = b & ((1 << (8 * size)) - 1)
        if kind == "c" and a == IAR:
            enabled_before = {i for i in range(96) if g.gic.distributor._bits(i // 32, g.gic.enabled | g.gic.cpus[0].enabled) >> (i % 32) & 1}
            pmr = g.gic.cpus[0].pmr
            got = g.c(IAR)
            intid = got & 0x3FF
            if intid != SPURIOUS:
                assert intid in enabled_before and g.gic._priority(0, intid) < pmr
            continue
        if kind == "d":
            if a == SGIR or b & 1:
                g.d(a, value, size=size)
            else:
                assert 0 <= g.d(a, size=size) < 1 << (8 * size)
        else:
            g.c(a, value) if a in (GICC_CTLR, PMR, BPR, EOIR) else g.c(a)
        assert g.gic.irq(0).level == (g.gic._signalled(0) is not None)


def test_uniprocessor_targets_are_raz_wi_and_spis_reach_the_cpu():
    """IHI 0048B 4.3.12: with one CPU interface ITARGETSR is RAZ/WI and every SPI goes to it,
    so a guest that never writes the targets (kvm-unit-tests' pl031) still gets its SPI."""
    g = Gic()
    g.on()
    g.d(ISENABLER + 4, 1 << 2)                    # SPI 34, targets never written
    g.d(IPRIORITYR + 34, 0xA0, size=1)
    g.d(ITARGETSR + 34, 0x01, size=1)
    assert g.d(ITARGETSR + 32) == 0 and g.d(ITARGETSR) == 0
    g.gic.spi(2)(True)
    assert g.c(HPPIR) == 34 and g.c(IAR) == 34


def test_per_cpu_views_are_named_by_cpu_and_share_the_banked_state_name():
    gic = Gicv2("gic", num_cpus=2)
    assert [d.name for d in gic.distributors] == ["gic.dist0", "gic.dist1"]
    assert [c.name for c in gic.cpu_interfaces] == ["gic.cpu0", "gic.cpu1"]
    assert gic.distributors[1].cpu_state is gic.cpu_interfaces[1].cpu_state is gic.cpus[1]
