"""The PMUv3 model through its system registers, per DDI 0487 D11/D13.4."""

import pytest

from cosim import MHz, NS, US
from cosim.models.pmu import COUNTERS, CPU_CYCLES, INST_RETIRED, SW_INCR, Pmu

E, P, C, LC = 1, 2, 4, 64


class Cpu:
    """Stands in for the backend: instructions retired and the exception level."""

    def __init__(self, pmu: Pmu) -> None:
        self.retired, self.level = 0, 1
        pmu.instructions = lambda: self.retired
        pmu.el = lambda: self.level


@pytest.fixture
def pmu(harness):
    h = harness(Pmu("pmu"), base=None)
    h.cpu = Cpu(h.device)
    return h


def rd(h, name):
    return h.device.read_sysreg(name)


def wr(h, name, value):
    h.device.write_sysreg(name, value)


def test_identification(pmu):
    assert rd(pmu, "PMCR_EL0") >> 11 & 0x1F == COUNTERS and rd(pmu, "PMCR_EL0") >> 24 == 0x41
    assert rd(pmu, "PMCEID0_EL0") == (1 << SW_INCR) | (1 << INST_RETIRED) | (1 << CPU_CYCLES)
    assert rd(pmu, "ID_AA64DFR0_EL1") >> 8 & 0xF == 1                   # PMUv3


def test_cycle_counter_counts_simulated_cycles_only_while_enabled(pmu):
    wr(pmu, "PMCNTENSET_EL0", 1 << 31)
    pmu.run(10 * US)
    assert rd(pmu, "PMCCNTR_EL0") == 0                                   # PMCR.E clear
    wr(pmu, "PMCR_EL0", E)
    pmu.run(10 * US)
    assert rd(pmu, "PMCCNTR_EL0") == 10_000                              # 1 GHz
    wr(pmu, "PMCR_EL0", 0)
    pmu.run(10 * US)
    assert rd(pmu, "PMCCNTR_EL0") == 10_000
    wr(pmu, "PMCR_EL0", E | C)                                           # C resets it
    assert rd(pmu, "PMCCNTR_EL0") == 0


def test_cycle_counter_follows_the_cpu_frequency(harness):
    h = harness(Pmu("pmu", frequency=MHz(250)), base=None)
    wr(h, "PMCNTENSET_EL0", 1 << 31)
    wr(h, "PMCR_EL0", E)
    h.run(1 * US)
    assert rd(h, "PMCCNTR_EL0") == 250


def test_inst_retired_counts_what_the_cpu_retires(pmu):
    wr(pmu, "PMEVTYPER2_EL0", INST_RETIRED)
    wr(pmu, "PMCNTENSET_EL0", 1 << 2)
    wr(pmu, "PMCR_EL0", E)
    pmu.cpu.retired += 1234
    assert rd(pmu, "PMEVCNTR2_EL0") == 1234
    wr(pmu, "PMSELR_EL0", 2)
    assert rd(pmu, "PMXEVCNTR_EL0") == 1234 and rd(pmu, "PMXEVTYPER_EL0") == INST_RETIRED


def test_event_counter_overflows_at_32_bits_and_raises_the_interrupt(pmu):
    wr(pmu, "PMEVTYPER0_EL0", INST_RETIRED)
    wr(pmu, "PMEVCNTR0_EL0", 0xFFFF_FFF0)
    wr(pmu, "PMINTENSET_EL1", 1)
    wr(pmu, "PMCNTENSET_EL0", 1)
    wr(pmu, "PMCR_EL0", E)
    pmu.cpu.retired += 0x20
    assert rd(pmu, "PMEVCNTR0_EL0") == 0x10 and rd(pmu, "PMOVSCLR_EL0") == 1
    assert pmu.device.irq.level
    wr(pmu, "PMOVSCLR_EL0", 1)
    assert not pmu.device.irq.level


def test_cycle_overflow_interrupt_is_one_planned_event(pmu):
    irq = pmu.probe(pmu.device.irq)
    wr(pmu, "PMCCNTR_EL0", 0xFFFF_FFFF - 999)          # 1000 cycles to the 32-bit overflow (LC clear)
    wr(pmu, "PMINTENSET_EL1", 1 << 31)
    wr(pmu, "PMCNTENSET_EL0", 1 << 31)
    wr(pmu, "PMCR_EL0", E)
    assert pmu.sim.peek() == 1000 * NS
    pmu.run(2 * US)
    assert irq.rises == [1000 * NS]
    assert rd(pmu, "PMOVSSET_EL0") == 1 << 31


def test_software_increment_honours_enable_and_the_el_filter(pmu):
    wr(pmu, "PMEVTYPER0_EL0", SW_INCR)
    wr(pmu, "PMEVTYPER1_EL0", SW_INCR | (1 << 31))     # P: not counted at EL1
    wr(pmu, "PMCNTENSET_EL0", 0b11)
    wr(pmu, "PMSWINC_EL0", 0b11)
    assert rd(pmu, "PMEVCNTR0_EL0") == 0                # PMCR.E clear
    wr(pmu, "PMCR_EL0", E)
    wr(pmu, "PMSWINC_EL0", 0b11)
    assert rd(pmu, "PMEVCNTR0_EL0") == 1 and rd(pmu, "PMEVCNTR1_EL0") == 0
    pmu.cpu.level = 0
    wr(pmu, "PMSWINC_EL0", 0b11)
    assert rd(pmu, "PMEVCNTR0_EL0") == 2 and rd(pmu, "PMEVCNTR1_EL0") == 1


def test_reset_counters_with_pmcr_p_leaves_the_cycle_counter(pmu):
    wr(pmu, "PMEVCNTR0_EL0", 5)
    wr(pmu, "PMCCNTR_EL0", 7)
    wr(pmu, "PMCR_EL0", P)
    assert rd(pmu, "PMEVCNTR0_EL0") == 0 and rd(pmu, "PMCCNTR_EL0") == 7


def test_el0_access_follows_pmuserenr(pmu):
    dev = pmu.device
    assert not dev.el0_allowed("PMCCNTR_EL0", read=True) and not dev.el0_allowed("PMINTENSET_EL1", read=True)
    wr(pmu, "PMUSERENR_EL0", 4)                          # CR: cycle counter reads
    assert dev.el0_allowed("PMCCNTR_EL0", read=True) and not dev.el0_allowed("PMCCNTR_EL0", read=False)
    wr(pmu, "PMUSERENR_EL0", 1)                          # EN: everything at EL0 but EL1 registers
    assert dev.el0_allowed("PMCR_EL0", read=False) and not dev.el0_allowed("PMINTENSET_EL1", read=False)


def test_unimplemented_counters_read_zero(pmu):
    wr(pmu, "PMEVCNTR7_EL0", 9)
    assert rd(pmu, "PMEVCNTR7_EL0") == 0
