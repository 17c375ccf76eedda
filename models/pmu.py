"""The Arm PMUv3 of one CPU (Armv8-A ARM, DDI 0487, chapter D11 "The Performance Monitors
Extension"), served as system registers to a software CPU.

Not a bus device: the CPU backend calls `read_sysreg` / `write_sysreg` on MRS/MSR of a PMU
register (`SYSREG_NAMES`), and gives the model `instructions()`, the instructions the CPU
has retired. Design choices, documented once here:
- Counters are lazy: each keeps the value it had when it last started or was written
  and computes the rest from simulated time (CPU_CYCLES, the cycle counter: one cycle
  per CPU period) or from instructions retired (INST_RETIRED). Nothing is scheduled
  unless an overflow interrupt is enabled; then one event, at the planned overflow.
- Events implemented (PMCEID0_EL0): SW_INCR (0x00), INST_RETIRED (0x08), CPU_CYCLES
  (0x11). Other event numbers can be programmed but do not count.
- Six event counters (PMCR_EL0.N = 6, as Cortex-A57) of 32 bits, and the 64-bit cycle
  counter (overflow at 32 or 64 bits per PMCR_EL0.LC). PMUv3 for Armv8.0: ID_AA64DFR0_EL1
  says PMUVer = 1, so PMCR_EL0.LP (64-bit event counters) does not exist.
- The filters of PMEVTYPER<n>/PMCCFILTR (exclude EL0/EL1) are stored but not applied:
  the count does not follow exception levels. SW_INCR honours them (it is counted by
  the write, whose level is known).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from cosim import Device, Frequency, GHz, OneShot

__all__ = ["Pmu", "SYSREG_NAMES", "COUNTERS"]

COUNTERS = 6
CYCLE = 31                            # the cycle counter's bit in PMCNTEN/PMOVS/PMINTEN
SW_INCR, INST_RETIRED, CPU_CYCLES = 0x00, 0x08, 0x11
PMCR_E, PMCR_P, PMCR_C, PMCR_D, PMCR_LC = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 6
# PMCR_EL0 read-only part: IMP 0x41 (Arm), IDCODE 0x01, N = 6 (Cortex-A57's value).
PMCR_ID = (0x41 << 24) | (0x01 << 16) | (COUNTERS << 11)
PMCR_RW = PMCR_E | PMCR_D | (1 << 4) | (1 << 5) | PMCR_LC      # E, D, X, DP, LC
TYPER_U, TYPER_P = 1 << 30, 1 << 31                             # exclude EL0 / EL1
PMUSERENR_EN, PMUSERENR_SW, PMUSERENR_CR, PMUSERENR_ER = 1, 2, 4, 8
_MASK32, _MASK64 = (1 << 32) - 1, (1 << 64) - 1
_VALID = ((1 << COUNTERS) - 1) | (1 << CYCLE)
# The SET/CLR register pairs (D13.4) and the state each pair reads and writes.
_SETS = {"PMCNTENSET_EL0": "enabled", "PMOVSSET_EL0": "overflows", "PMINTENSET_EL1": "interrupts"}
_CLEARS = {"PMCNTENCLR_EL0": "enabled", "PMOVSCLR_EL0": "overflows", "PMINTENCLR_EL1": "interrupts"}

# (op0, op1, CRn, CRm, op2) -> name (D13.4 / C5.3 encodings).
SYSREG_NAMES: dict[tuple[int, int, int, int, int], str] = {
    (3, 3, 9, 12, 0): "PMCR_EL0", (3, 3, 9, 12, 1): "PMCNTENSET_EL0", (3, 3, 9, 12, 2): "PMCNTENCLR_EL0",
    (3, 3, 9, 12, 3): "PMOVSCLR_EL0", (3, 3, 9, 12, 4): "PMSWINC_EL0", (3, 3, 9, 12, 5): "PMSELR_EL0",
    (3, 3, 9, 12, 6): "PMCEID0_EL0", (3, 3, 9, 12, 7): "PMCEID1_EL0", (3, 3, 9, 13, 0): "PMCCNTR_EL0",
    (3, 3, 9, 13, 1): "PMXEVTYPER_EL0", (3, 3, 9, 13, 2): "PMXEVCNTR_EL0", (3, 3, 9, 14, 0): "PMUSERENR_EL0",
    (3, 0, 9, 14, 1): "PMINTENSET_EL1", (3, 0, 9, 14, 2): "PMINTENCLR_EL1", (3, 3, 9, 14, 3): "PMOVSSET_EL0",
    (3, 0, 0, 5, 0): "ID_AA64DFR0_EL1",
    **{(3, 3, 14, 8 + (n >> 3), n & 7): f"PMEVCNTR{n}_EL0" for n in range(31)},
    **{(3, 3, 14, 12 + (n >> 3), n & 7): f"PMEVTYPER{n}_EL0" for n in range(31)},
    (3, 3, 14, 15, 7): "PMCCFILTR_EL0",
}


class _Counter:
    """One counter: its value when last started or written, and what it counts since."""

    __slots__ = ("value", "type", "since", "running")

    def __init__(self) -> None:
        self.value = 0
        self.type = 0              # PMEVTYPER / PMCCFILTR
        self.since = 0             # time (ps) or instructions retired when last (re)based
        self.running = False


class Pmu(Device):
    """PMUv3 of one CPU (DDI 0487 D11): six event counters and the cycle counter.

    Interrupts:
      irq: the overflow interrupt (PMUIRQ), a PPI (23 on QEMU's virt).
    Properties:
      frequency: the CPU's clock, for CPU_CYCLES and the cycle counter (default 1 GHz).
    """

    model: ClassVar[str] = "pmuv3"

    def __init__(self, name: str, *, frequency: Frequency = GHz(1)) -> None:
        super().__init__(name)
        self.period = frequency.period
        self.irq = self.output("irq")
        self.instructions: Callable[[], int] = lambda: 0    # set by the CPU backend
        self.el: Callable[[], int] = lambda: 1              # the CPU's exception level, likewise
        self.dfr0 = 0x10305106                              # ID_AA64DFR0_EL1 without PMUVer; set by the backend
        self._counters = [_Counter() for _ in range(COUNTERS)]
        self._cycle = _Counter()
        self._overflow = OneShot(self._overflowed)
        self.reset()

    def reset(self) -> None:
        self._overflow.cancel()
        self.pmcr = 0
        self.enabled = self.overflows = self.interrupts = self.selected = self.userenr = 0
        for counter in (*self._counters, self._cycle):
            counter.value, counter.type, counter.since, counter.running = 0, 0, 0, False
        if self._clock is not None:
            self.irq.set(False)

    # -- counting ------------------------------------------------------------------------
    def _event(self, index: int) -> int:
        return CPU_CYCLES if index == CYCLE else self._counters[index].type & 0xFFFF

    def _counter(self, index: int) -> _Counter:
        return self._cycle if index == CYCLE else self._counters[index]

    def _source(self, index: int) -> int | None:
        """Where a counting counter's progress comes from now: ps or instructions; None if it does not count."""
        event = self._event(index)
        if event == CPU_CYCLES:
            return self.clock.now
        if event == INST_RETIRED:
            return self.instructions()
        return None

    def _progress(self, index: int, counter: _Counter) -> int:
        if not counter.running:
            return 0
        source = self._source(index)
        if source is None:
            return 0
        delta = source - counter.since
        if self._event(index) == CPU_CYCLES:
            delta //= self.period * (64 if index == CYCLE and self.pmcr & PMCR_D else 1)
        return delta

    def _width(self, index: int) -> int:
        return 64 if index == CYCLE and self.pmcr & PMCR_LC else 32

    def _settle(self, index: int) -> int:
        """Fold the progress into the value, recording an overflow; returns the value."""
        counter = self._counter(index)
        total = counter.value + self._progress(index, counter)
        limit = 1 << self._width(index)
        if total >= limit:
            self.overflows |= 1 << index
        counter.value = total & (_MASK64 if index == CYCLE else (limit - 1))
        counter.since = self._source(index) or 0
        return counter.value

    def _counting(self, index: int) -> bool:
        return bool(self.pmcr & PMCR_E and self.enabled & (1 << index))

    def _restart(self) -> None:
        """Settle every counter and start the ones that now count (after PMCR/PMCNTEN/type changes)."""
        for index in (*range(COUNTERS), CYCLE):
            self._settle(index)
            counter = self._counter(index)
            counter.running = self._counting(index)
            counter.since = self._source(index) or 0
        self.update()

    def _plan_overflow(self) -> None:
        """One event at the first overflow that raises the interrupt (time-based counters exactly,
        INST_RETIRED at one instruction per CPU period, the backend's pace between exits)."""
        soonest = None
        for index in (*range(COUNTERS), CYCLE):
            bit = 1 << index
            if not (self.interrupts & bit and self._counter(index).running) or self.overflows & bit:
                continue
            event = self._event(index)
            if event not in (CPU_CYCLES, INST_RETIRED):
                continue
            left = (1 << self._width(index)) - self._settle(index)
            scale = 64 if index == CYCLE and self.pmcr & PMCR_D else 1
            delay = left * self.period * scale
            soonest = delay if soonest is None else min(soonest, delay)
        if soonest is None:
            self._overflow.cancel()
        else:
            self._overflow.start(self.clock, max(soonest, 1))

    def _overflowed(self) -> None:
        for index in (*range(COUNTERS), CYCLE):
            self._settle(index)
        self.update()

    def update(self) -> None:
        self.irq.set(bool(self.overflows & self.interrupts and self.pmcr & PMCR_E))
        self._plan_overflow()

    # -- system registers ----------------------------------------------------------------
    def el0_allowed(self, name: str, read: bool) -> bool:
        """PMUSERENR_EL0 (D13.4.22): what EL0 may touch; the rest traps to EL1."""
        if name.endswith("_EL1"):
            return False
        enr = self.userenr
        if enr & PMUSERENR_EN or (name == "PMUSERENR_EL0" and read):
            return True
        if name == "PMSWINC_EL0":
            return bool(enr & PMUSERENR_SW)
        if name == "PMCCNTR_EL0":
            return read and bool(enr & PMUSERENR_CR)
        if name in ("PMXEVCNTR_EL0", "PMSELR_EL0") or name.startswith("PMEVCNTR"):
            return read and bool(enr & PMUSERENR_ER)
        return False

    def read_sysreg(self, name: str) -> int:
        before = self.overflows
        value = self._read(name)
        if self.overflows != before:         # a read found a counter past its overflow
            self.update()
        return value

    def _read(self, name: str) -> int:
        if name == "PMCR_EL0":
            return PMCR_ID | self.pmcr
        if name in _SETS or name in _CLEARS:
            if name.startswith("PMOVS"):
                for index in (*range(COUNTERS), CYCLE):
                    self._settle(index)
            return getattr(self, _SETS.get(name) or _CLEARS[name])
        if name == "PMSELR_EL0":
            return self.selected
        if name == "PMCEID0_EL0":
            return (1 << SW_INCR) | (1 << INST_RETIRED) | (1 << CPU_CYCLES)
        if name in ("PMCEID1_EL0", "PMSWINC_EL0"):
            return 0
        if name == "PMUSERENR_EL0":
            return self.userenr
        if name == "ID_AA64DFR0_EL1":
            return (self.dfr0 & ~(0xF << 8)) | (1 << 8)      # PMUVer = 1: PMUv3 (Armv8.0)
        if name == "PMCCNTR_EL0":
            return self._settle(CYCLE)
        index = self._index(name)
        if index is None:
            return 0
        if "TYPER" in name or name == "PMCCFILTR_EL0":
            return self._counter(index).type
        return self._settle(index)

    def write_sysreg(self, name: str, value: int) -> None:
        if name == "PMCR_EL0":
            for index in (*range(COUNTERS), CYCLE):
                self._settle(index)
            if value & PMCR_P:
                for counter in self._counters:
                    counter.value = 0
            if value & PMCR_C:
                self._cycle.value = 0
            self.pmcr = value & PMCR_RW
            self._restart()
        elif name in _SETS:
            setattr(self, _SETS[name], getattr(self, _SETS[name]) | value & _VALID)
            self._restart()
        elif name in _CLEARS:
            setattr(self, _CLEARS[name], getattr(self, _CLEARS[name]) & ~value)
            self._restart()
        elif name == "PMSELR_EL0":
            self.selected = value & 0x1F
        elif name == "PMUSERENR_EL0":
            self.userenr = value & 0xF
        elif name == "PMSWINC_EL0":
            self._software_increment(value)
        elif name == "PMCCNTR_EL0":
            self._settle(CYCLE)
            self._cycle.value = value & _MASK64
            self.update()
        else:
            index = self._index(name)
            if index is None:
                return
            self._settle(index)
            if "TYPER" in name or name == "PMCCFILTR_EL0":
                self._counter(index).type = value & (0xF800_0000 if index == CYCLE else 0xF800_FFFF)
                self._restart()
            else:
                self._counter(index).value = value & _MASK32
                self.update()

    def _index(self, name: str) -> int | None:
        """The counter a PMEVCNTR<n>/PMEVTYPER<n>/PMXEV*/PMCCFILTR register reaches (None: unimplemented)."""
        if name == "PMCCFILTR_EL0":
            return CYCLE
        if name.startswith("PMXEV"):
            n = self.selected
            return CYCLE if n == 31 and "TYPER" in name else (n if n < COUNTERS else None)
        n = int(name[len("PMEVCNTR"):-len("_EL0")] if name.startswith("PMEVCNTR") else
                name[len("PMEVTYPER"):-len("_EL0")])
        return n if n < COUNTERS else None

    def _software_increment(self, value: int) -> None:
        """PMSWINC_EL0 (D13.4.20): +1 on each enabled counter programmed with SW_INCR."""
        if not self.pmcr & PMCR_E:
            return
        excluded = TYPER_U if self.el() == 0 else TYPER_P
        for index, counter in enumerate(self._counters):
            bit = 1 << index
            if value & bit and self.enabled & bit and counter.type & 0xFFFF == SW_INCR and not counter.type & excluded:
                counter.value += 1
                if counter.value > _MASK32:
                    counter.value = 0
                    self.overflows |= bit
        self.update()
