"""Arm PrimeCell real-time clock (PL031), after the Technical Reference Manual, Arm DDI 0224 (r1p3).

Design choices, documented once here:
- The counter is computed from simulated time: RTCDR = the value last loaded plus
  the whole seconds since that load (TRM 2.2: the counter increments on CLK1HZ).
  A load restarts the one-second grid at the write, so the next increment is one
  second after it. Nothing is scheduled per second: only the one match event.
- The match interrupt (TRM 2.2, 3.3.2) is raised when the counter becomes equal
  to RTCMR; RTCRIS records it whatever RTCIMSC says, and RTCINTR is RTCMIS. A
  match register written equal to the current count matches at once (as QEMU's
  model does; the TRM leaves the case open). The match time is kept; an event
  is scheduled for it only while the interrupt is unmasked (it must wake the
  CPU then). Masked, RTCRIS is brought up to date when read, so an idle guest
  with a masked RTC has nothing pending that would move time on.
- RTCCR's RTCStart bit is not modelled as a gate: the counter always runs, as on
  QEMU's virt, where firmware never starts it. The bit reads back as written,
  and once set stays set until reset (TRM 3.3.4).
- Where the count starts is a property (`start`, seconds since 1970) so runs
  repeat; platforms may offer the host's time instead.
"""

from __future__ import annotations

from typing import ClassVar

from cosim import Access, Clock, Field, Hz, OneShot, PlatformError, Reg, RegisterDevice
from cosim.fdt import DeviceTree, Node

__all__ = ["Pl031"]

CLK1HZ = Hz(1)           # the counter's clock (TRM 2.2)
WRAP = CLK1HZ.duration(1 << 32)   # ps: the count returns to any value after 2^32 seconds
_BYTES = (1, 2, 4)     # every register answers 8-, 16- and 32-bit accesses (kvm-unit-tests checks RO ones)


class Pl031(RegisterDevice):
    """Arm PL031 real-time clock (DDI 0224): a 32-bit seconds counter with a match interrupt.

    Interrupts:
      irq: RTCINTR, the match interrupt masked by RTCIMSC (RTCMIS).
    Properties:
      start: the counter's value at time zero, in seconds since 1970 (default 0).
    """

    model: ClassVar[str] = "pl031"
    size: ClassVar[int] = 0x1000
    compatible: ClassVar[tuple[str, ...]] = ("arm,pl031", "arm,primecell")
    dt_name: ClassVar[str] = "pl031"
    registers = (
        Reg("RTCDR", 0x000, access=Access.RO, sizes=_BYTES, doc="data: the current count (seconds)"),
        Reg("RTCMR", 0x004, sizes=_BYTES, doc="match: RTCRIS is set when the count reaches it"),
        Reg("RTCLR", 0x008, sizes=_BYTES, doc="load: writing sets the count"),
        # TRM 3.3.4-3.3.8: one bit each; bits [31:1] are reserved.
        Reg("RTCCR", 0x00C, sizes=_BYTES, fields=(Field("RTCStart", 0),), doc="control"),
        Reg("RTCIMSC", 0x010, sizes=_BYTES, fields=(Field("RTCIMSC", 0),), doc="interrupt mask: 1 enables RTCINTR"),
        Reg("RTCRIS", 0x014, access=Access.RO, sizes=_BYTES, fields=(Field("RTCRIS", 0),), doc="raw interrupt status"),
        Reg("RTCMIS", 0x018, access=Access.RO, sizes=_BYTES, fields=(Field("RTCMIS", 0),),
            doc="masked interrupt status"),
        Reg("RTCICR", 0x01C, access=Access.WO, sizes=_BYTES, fields=(Field("RTCICR", 0),),
            doc="interrupt clear: writing 1 clears RTCRIS"),
        # PrimeCell identification (TRM 3.3.9-3.3.16): part 0x031, designer 0x41 (Arm), revision 1.
        Reg("RTCPeriphID", 0xFE0, count=4, access=Access.RO, reset=(0x31, 0x10, 0x14, 0x00), sizes=_BYTES),
        Reg("RTCPCellID", 0xFF0, count=4, access=Access.RO, reset=(0x0D, 0xF0, 0x05, 0xB1), sizes=_BYTES),
    )

    def __init__(self, name: str, *, start: int = 0) -> None:
        super().__init__(name)
        if not 0 <= start < 1 << 32:
            raise PlatformError(f"{name}: start {start} does not fit the 32-bit counter")
        self.start = start
        self.irq = self.output("irq")
        self._match = OneShot(self._matched)
        self._loaded_at = 0          # ps: when the count was last loaded
        self._loaded = start         # the count then
        self._next_match = WRAP      # ps: when the count next equals RTCMR

    def attach(self, clock: Clock) -> None:
        super().attach(clock)
        self._plan(now_matches=False)

    def reset(self) -> None:
        self._match.cancel()
        super().reset()
        self._loaded = self.start
        if self._clock is not None:
            self._loaded_at = self.clock.now
            self._plan(now_matches=False)   # count and RTCMR may both be 0 at reset without a match

    # -- the counter and its match, from simulated time ---------------------------
    def count(self) -> int:
        return (self._loaded + CLK1HZ.cycles(self.clock.now - self._loaded_at)) & 0xFFFF_FFFF

    def _plan(self, now_matches: bool = True) -> None:
        """Find when the count next equals RTCMR (after a write that makes them equal: now)."""
        now = self.clock.now
        seconds = (self.regs.RTCMR - self.count()) & 0xFFFF_FFFF
        if seconds == 0 and now_matches:
            self.regs.RTCRIS = 1
        # The count moves on whole seconds counted from the load.
        self._next_match = now + CLK1HZ.duration(seconds or 1 << 32) - (now - self._loaded_at) % CLK1HZ.period
        self._arm()

    def _catch_up(self) -> None:
        """Record matches that passed while no event was scheduled (interrupt masked)."""
        now = self.clock.now
        while now >= self._next_match:
            self.regs.RTCRIS = 1
            self._next_match += WRAP

    def _arm(self) -> None:
        if self.regs.RTCIMSC & 1 and not self.regs.RTCRIS:
            self._match.start(self.clock, self._next_match - self.clock.now)
        else:
            self._match.cancel()

    def _matched(self) -> None:
        self._catch_up()
        self.update()

    def dt_node(self, node: Node, tree: DeviceTree) -> None:
        node.set("compatible", list(self.compatible)).set("interrupts", tree.interrupts(self.irq))
        tree.apb_clock(node)

    # -- registers ----------------------------------------------------------------
    def read_RTCDR(self) -> int:
        return self.count()

    def write_RTCMR(self, value: int) -> None:
        self.regs.RTCMR = value & 0xFFFF_FFFF
        self._plan()

    def write_RTCLR(self, value: int) -> None:
        self.regs.RTCLR = value & 0xFFFF_FFFF
        self._catch_up()
        self._loaded_at, self._loaded = self.clock.now, self.regs.RTCLR
        self._plan()

    def write_RTCCR(self, value: int) -> None:
        self.regs.RTCCR |= value              # RTCStart: writes of 0 have no effect once set

    def write_RTCIMSC(self, value: int) -> None:
        self.regs.RTCIMSC = value

    def write_RTCICR(self, value: int) -> None:
        self._catch_up()
        if value:
            self.regs.RTCRIS = 0

    def read_RTCRIS(self) -> int:
        self._catch_up()
        return self.regs.RTCRIS

    def read_RTCMIS(self) -> int:
        self._catch_up()
        return self.regs.RTCRIS & self.regs.RTCIMSC

    def update(self) -> None:
        self._catch_up()
        self._arm()
        self.irq.set(bool(self.regs.RTCRIS & self.regs.RTCIMSC))
