"""Arm dual-timer module (SP804), after the Technical Reference Manual, Arm DDI 0271.

Design choices, documented once here:
- Lazy counters: each timer remembers when its tick grid started (`origin`),
  the tick at which it was last (re)based and the count it held then; Value is
  computed from simulated time on every read. Only the next zero of a timer
  whose raw interrupt is clear is scheduled, re-planned on every write: one
  event per interrupt, never one per tick.
- A write to TimerXLoad, or one that enables the timer or changes its prescale
  or size, restarts the tick grid at the write (the prescaler restarts). A
  size change also reloads the count from Load at the new width, so the usual
  "write Load, then Control" sequence counts the whole 32-bit Load.
  BGLoad, IntEnable and mode changes keep the grid, so they never shift ticks.
- Reload timing (DDI 0271, repetition modes): the counter reaches zero `Load` ticks after
  the load and raises the interrupt; it wraps past zero on the next tick, to
  Load in periodic mode or to 0xFFFF/0xFFFFFFFF in free-running mode, so
  successive interrupts are Load + 1 (or 2^16 / 2^32) ticks apart.
- TimerPre = 0b11 is undefined in the TRM; it divides by 1 here, as QEMU does.
"""

from __future__ import annotations

from typing import ClassVar

from cosim import SEC, Access, Field, OneShot, PlatformError, Reg, RegisterDevice

__all__ = ["Sp804"]

# TimerXControl bits (DDI 0271, Control Register).
CTRL_ONESHOT, CTRL_SIZE32, CTRL_INTEN, CTRL_PERIODIC, CTRL_ENABLE = 1 << 0, 1 << 1, 1 << 5, 1 << 6, 1 << 7
CTRL_PRE_SHIFT, CTRL_MASK = 2, 0xEF                 # bit 4 is reserved
_PRESCALE = {0: 1, 1: 16, 2: 256, 3: 1}
# Changing these restarts the tick grid; the other control bits leave it alone.
_GRID_BITS = CTRL_ENABLE | CTRL_SIZE32 | (3 << CTRL_PRE_SHIFT)
TIMERS = 2
STRIDE = 0x20


class _Counter:
    """The down-counter of one timer, computed from simulated time."""

    def __init__(self, owner: "Sp804", index: int) -> None:
        self.owner = owner
        self.index = index
        self.expiry = OneShot(self._zero)      # the next zero that changes RIS
        self.reset()

    def reset(self) -> None:
        self.cancel()
        self.origin = 0             # ps: when the tick grid started
        self.base = 0               # tick (since origin) at which the counter held `start`
        self.start = 0xFFFF_FFFF    # DDI 0271: TimerXValue resets to 0xFFFFFFFF
        self.running = False

    # -- registers this counter depends on ---------------------------------
    @property
    def control(self) -> int:
        return self.owner.regs.TimerXControl[self.index]

    @property
    def size_mask(self) -> int:
        return 0xFFFF_FFFF if self.control & CTRL_SIZE32 else 0xFFFF

    def reload(self) -> int:
        """What the counter wraps to after zero: Load (periodic) or its maximum (free-running)."""
        if self.control & CTRL_PERIODIC:
            return self.owner.regs.TimerXLoad[self.index] & self.size_mask
        return self.size_mask

    def tick_ps_numerator(self) -> int:
        return SEC * _PRESCALE[(self.control >> CTRL_PRE_SHIFT) & 3]

    # -- time ---------------------------------------------------------------
    def ticks(self, when: int) -> int:
        return (when - self.origin) * self.owner.clock_hz // self.tick_ps_numerator()

    def time_of(self, tick: int) -> int:
        """First simulated time at which `tick` ticks of the grid have elapsed (rounded up)."""
        return self.origin - ((-tick * self.tick_ps_numerator()) // self.owner.clock_hz)

    def value(self) -> int:
        if not self.running:
            return self.start
        elapsed = self.ticks(self.owner.clock.now) - self.base
        if elapsed <= self.start:
            return self.start - elapsed
        if self.control & CTRL_ONESHOT:
            return 0                                 # DDI 0271, repetition modes: one-shot halts at zero
        reload = self.reload()
        return reload - (elapsed - self.start - 1) % (reload + 1)

    # -- changes ------------------------------------------------------------
    def restart(self, count: int) -> None:
        """Start a new tick grid now with the counter at `count` (a Load write, enable, size or prescale change)."""
        self.origin, self.base, self.start = self.owner.clock.now, 0, count & self.size_mask
        self.running = bool(self.control & CTRL_ENABLE)
        self.plan()

    def rebase(self) -> None:
        """Keep the grid, re-anchor at the current tick (before Load/mode changes the future count)."""
        if self.running:
            self.start, self.base = self.value(), self.ticks(self.owner.clock.now)

    def settle(self) -> None:
        """Turn a zero due at this very instant into RIS before anything reads or replans."""
        when = self.expiry.when
        if when is not None and when <= self.owner.clock.now:
            self.expiry.cancel()
            self._zero()

    def plan(self) -> None:
        """Schedule the first zero after now if it would change RIS; cancel any other."""
        self.cancel()
        if not self.running or self.owner.regs.TimerXRIS[self.index]:
            return
        now = self.owner.clock.now
        zero = self.base + self.start
        when = self.time_of(zero)
        if when <= now:
            if self.control & CTRL_ONESHOT:
                return                               # one-shot: halted at zero until reprogrammed
            period = self.reload() + 1
            zero += max(1, (self.ticks(now) - zero) // period) * period
            while (when := self.time_of(zero)) <= now:
                zero += period
        self.expiry.start(self.owner.clock, when - now)

    def cancel(self) -> None:
        self.expiry.cancel()

    def _zero(self) -> None:
        self.owner.regs.TimerXRIS[self.index] = 1
        self.owner.update()


class Sp804(RegisterDevice):
    """Arm SP804 dual-input timer module (DDI 0271): two 32/16-bit down-counters.

    Each timer has free-running, periodic and one-shot modes and a 1/16/256
    prescaler. TimerX* registers are repeated: index 0 is Timer1 (0x00-0x1C),
    index 1 is Timer2 (0x20-0x3C). Value is computed from simulated time.

    Interrupts:
      timint1: Timer1's interrupt (Timer1MIS), level-sensitive.
      timint2: Timer2's interrupt (Timer2MIS), level-sensitive.
      timintc: the combined interrupt, TIMINT1 OR TIMINT2 (also available as `irq`).
    Properties:
      clock_hz: TIMCLK, the counter clock before the prescaler (default 1 MHz).
    """

    model: ClassVar[str] = "sp804"
    size: ClassVar[int] = 0x1000
    compatible: ClassVar[tuple[str, ...]] = ("arm,sp804", "arm,primecell")
    registers = (
        Reg("TimerXLoad", 0x00, count=TIMERS, stride=STRIDE, doc="count to load; restarts the counter"),
        Reg("TimerXValue", 0x04, count=TIMERS, stride=STRIDE, access=Access.RO, reset=0xFFFF_FFFF,
            doc="current count"),
        Reg("TimerXControl", 0x08, count=TIMERS, stride=STRIDE, reset=CTRL_INTEN,
            fields=(Field("OneShot", 0), Field("TimerSize", 1), Field("TimerPre", 2, 2), Field("IntEnable", 5),
                    Field("TimerMode", 6), Field("TimerEn", 7))),
        Reg("TimerXIntClr", 0x0C, count=TIMERS, stride=STRIDE, access=Access.WO, doc="any write clears the interrupt"),
        Reg("TimerXRIS", 0x10, count=TIMERS, stride=STRIDE, access=Access.RO, fields=(Field("RIS", 0),)),
        Reg("TimerXMIS", 0x14, count=TIMERS, stride=STRIDE, access=Access.RO, fields=(Field("MIS", 0),)),
        Reg("TimerXBGLoad", 0x18, count=TIMERS, stride=STRIDE, doc="Load for the next reload, count unchanged"),
        # Integration test registers (DDI 0271): ITOP drives the outputs while ITCR bit 0 is set.
        Reg("TimerITCR", 0xF00, fields=(Field("ITEN", 0),)),
        Reg("TimerITOP", 0xF04, access=Access.WO, fields=(Field("TIMINT1", 0), Field("TIMINT2", 1))),
        # PrimeCell identification (DDI 0271): part 0x804, designer 0x41 (Arm), revision 1.
        Reg("TimerPeriphID", 0xFE0, count=4, access=Access.RO, reset=(0x04, 0x18, 0x14, 0x00)),
        Reg("TimerPCellID", 0xFF0, count=4, access=Access.RO, reset=(0x0D, 0xF0, 0x05, 0xB1)),
    )

    def __init__(self, name: str, *, clock_hz: int = 1_000_000) -> None:
        if clock_hz <= 0:
            raise PlatformError(f"{name}: clock_hz must be positive, not {clock_hz}")
        super().__init__(name)
        self.clock_hz = clock_hz
        self.timint1 = self.output("timint1")
        self.timint2 = self.output("timint2")
        self.timintc = self.output("timintc")
        self.irq = self.timintc
        self.counters = tuple(_Counter(self, i) for i in range(TIMERS))
        self._itop = 0

    def reset(self) -> None:
        for counter in self.counters:
            counter.reset()
        self._itop = 0
        super().reset()

    def tick_period(self, index: int = 0) -> int:
        """One (prescaled) tick of timer `index` in ps, rounded to the nearest ps."""
        return (self.counters[index].tick_ps_numerator() + self.clock_hz // 2) // self.clock_hz

    # -- bus surface: a zero due at this instant is seen before the access --
    def read(self, offset: int, size: int) -> int:
        self._settle()
        return super().read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self._settle()
        super().write(offset, size, value)

    def _settle(self) -> None:
        for counter in self.counters:
            counter.settle()

    # -- registers ---------------------------------------------------------
    def write_TimerXLoad(self, value: int, index: int) -> None:
        # DDI 0271, TimerXLoad: writing Load makes the counter restart at once from the new value.
        self.regs.TimerXLoad[index] = value & 0xFFFF_FFFF
        counter = self.counters[index]
        if value & counter.size_mask == 0 and counter.control & CTRL_ENABLE:
            self.regs.TimerXRIS[index] = 1           # DDI 0271, TimerXLoad: a Load of 0 interrupts at once
        counter.restart(value)

    def write_TimerXBGLoad(self, value: int, index: int) -> None:
        # DDI 0271, TimerXBGLoad: the same Load register, used from the next reload; the count goes on.
        counter = self.counters[index]
        counter.rebase()
        self.regs.TimerXLoad[index] = value & 0xFFFF_FFFF
        counter.plan()

    def read_TimerXBGLoad(self, index: int) -> int:
        return self.regs.TimerXLoad[index]

    def read_TimerXValue(self, index: int) -> int:
        return self.counters[index].value()

    def write_TimerXControl(self, value: int, index: int) -> None:
        counter = self.counters[index]
        old, new = self.regs.TimerXControl[index], value & CTRL_MASK
        current = counter.value()                    # the count under the old settings
        counter.rebase()
        self.regs.TimerXControl[index] = new
        if (old ^ new) & CTRL_SIZE32:
            current = self.regs.TimerXLoad[index]    # the count is Load read at the new width
        if (old ^ new) & _GRID_BITS:
            counter.restart(current)                 # enable, size or prescale change: a new tick grid
        else:
            counter.plan()                           # e.g. leaving one-shot resumes the count

    def write_TimerXIntClr(self, value: int, index: int) -> None:
        self.regs.TimerXRIS[index] = 0
        self.counters[index].plan()

    def read_TimerXMIS(self, index: int) -> int:
        return self._mis(index)

    def write_TimerITCR(self, value: int) -> None:
        self.regs.TimerITCR = value & 1

    def write_TimerITOP(self, value: int) -> None:
        self._itop = value & 3

    def _mis(self, index: int) -> int:
        return self.regs.TimerXRIS[index] & (self.regs.TimerXControl[index] >> 5) & 1

    def update(self) -> None:
        regs = self.regs
        if regs.TimerITCR & 1:
            int1, int2 = self._itop & 1, self._itop & 2                # integration test mode (DDI 0271, TimerITOP)
        else:
            ris, control = regs.TimerXRIS, regs.TimerXControl
            int1, int2 = ris[0] and control[0] & CTRL_INTEN, ris[1] and control[1] & CTRL_INTEN
        self.timint1.set(bool(int1))
        self.timint2.set(bool(int2))
        self.timintc.set(bool(int1 or int2))
