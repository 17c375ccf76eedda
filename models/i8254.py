"""Intel 8254 programmable interval timer, after the 8254 data sheet (Intel 231164), and the PC's
system control port B (I/O 61h; NMISC, "NMI status and control", in the PIIX4 data sheet 290562).

Lazy: the counters are never stepped per clock. Each counter keeps its state as of a
clock edge index (edges of the 1.193182 MHz input counted from time 0:
`now * 1193182 // 10**12`, exact, never through a rounded period) and catches up in
closed form, per mode, when it is read, written or gated. Only counter 0's OUT (IRQ0)
has scheduled events: one at each OUT transition, planned from the current state.
Counters 1 and 2 compute OUT when it is read (port 61h bit 5 shows OUT2).

Gates: counters 0 and 1 are tied high, as on the PC; counter 2's gate is port 61h bit 0.
BCD counting is supported. Counts of 1 in modes 2 and 3 are illegal (data sheet: the
minimum is 2); the model logs it and uses 2.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import ClassVar

from cosim import Access, BusError, Device, Field, Hz, Reg, OneShot, RegisterDevice, Response

__all__ = ["I8254", "Counter", "PortB", "PIT_HZ", "edges", "time_of_edge"]

log = logging.getLogger(__name__)

PIT_HZ = 1_193_182
PIT_CLOCK = Hz(PIT_HZ)
REFRESH_CLOCKS = 18            # the BIOS's counter 1 divisor (15.08 us): port 61h bit 4 toggles at that rate

# Control word (data sheet, "Control Word Format"): SC1:SC0, RW1:RW0, M2:M0, BCD.
CW_BCD = 1 << 0
RW_LATCH, RW_LSB, RW_MSB, RW_WORD = 0, 1, 2, 3
READ_BACK = 3                  # SC = 11
RB_NOT_COUNT, RB_NOT_STATUS = 1 << 5, 1 << 4

# Counter states: no count yet (or waiting for a gate trigger), load on the next clock, counting.
_IDLE, _LOAD, _COUNTING = 0, 1, 2


def edges(t: int) -> int:
    """Input clock edges at or before simulated time t (exact integer arithmetic)."""
    return PIT_CLOCK.cycles(t)


def time_of_edge(k: int) -> int:
    """The first picosecond at which edge k has happened (rounded up)."""
    return PIT_CLOCK.duration(k)


def _from_bcd(raw: int) -> int:
    return sum(((raw >> (4 * i)) & 0xF) * 10**i for i in range(4))


def _to_bcd(value: int) -> int:
    return sum((value // 10**i % 10) << (4 * i) for i in range(4))


class Counter:
    """One of the three counters: count register, counting element, output latches, OUT."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.gate = index != 2          # counters 0 and 1 have GATE tied high on the PC
        self.power_on()

    def power_on(self) -> None:
        self.control = RW_WORD << 4     # mode 0, LSB then MSB, binary, until programmed
        self.count = 0                  # initial count (decoded, 1..modulus)
        self.ce = 0                     # counting element (modes 0, 1, 4, 5) or the value shown while idle
        self.pos = 0                    # modes 2, 3: clocks since the last reload / half-cycle start
        self.period = 0                 # modes 2, 3: the count in use since the last reload
        self.state = _IDLE
        self.out = False
        self.armed = False              # modes 0, 1, 4, 5: the terminal-count action is still ahead
        self.null = True                # status NULL COUNT: a count written but not yet loaded
        self.synced = 0
        self.low_byte: int | None = None   # LSB written, MSB awaited (RW = 3)
        self.read_msb = False               # next unlatched read returns the MSB (RW = 3)
        self.latch: deque[int] = deque()    # latched count bytes still to be read
        self.status: int | None = None      # latched status byte

    @property
    def mode(self) -> int:
        mode = (self.control >> 1) & 7
        return mode - 4 if mode > 5 else mode    # M2 is "don't care" in modes 2 and 3

    @property
    def rw(self) -> int:
        return (self.control >> 4) & 3

    @property
    def modulus(self) -> int:
        return 10_000 if self.control & CW_BCD else 0x10000

    # -- catching up ------------------------------------------------------------
    def advance(self, k: int) -> None:
        """Bring the state to clock edge k, given that nothing changed since `synced`."""
        d = k - self.synced
        if d <= 0:
            return
        self.synced = k
        mode = self.mode
        if self.state == _LOAD:
            if mode in (2, 3) and not self.gate:
                return                          # a low gate holds off the (re)load
            self._load()
            d -= 1
        if self.state != _COUNTING or d == 0 or (not self.gate and mode in (0, 2, 3, 4)):
            return
        if mode in (0, 1):
            if self.armed and d >= self.ce:
                self.out, self.armed = True, False           # terminal count: OUT goes high
            self.ce = (self.ce - d) % self.modulus
        elif mode in (4, 5):
            if self.armed and d >= self.ce:
                self.out = d != self.ce                      # low for the one clock at count 0
                self.armed = not self.out
            self.ce = (self.ce - d) % self.modulus
        elif mode == 2:
            self._advance_rate(d)
        else:
            self._advance_square(d)

    def _load(self) -> None:
        mode = self.mode
        self.null = False
        self.state = _COUNTING
        if mode in (2, 3):
            self.period, self.pos, self.out = self.count, 0, True
            return
        self.ce = self.count
        self.armed = True
        if mode in (4, 5):
            self.out = True                                  # a reload during the strobe ends it
        elif mode == 1:
            self.out = False                                 # the one-shot starts: OUT low

    def _advance_rate(self, d: int) -> None:
        # Mode 2: N, N-1, ..., 1 (OUT low for that clock), then reload with the current count.
        left = self.period - self.pos
        if d < left:
            self.pos += d
        else:
            self.period, self.null = self.count, False       # a new count takes effect at the reload
            self.pos = (d - left) % self.period
        self.out = self.pos != self.period - 1

    def _half(self) -> int:
        # Mode 3: odd counts are high one clock longer than low (data sheet, mode 3).
        return (self.period + 1) // 2 if self.out else self.period // 2

    def _advance_square(self, d: int) -> None:
        left = self._half() - self.pos
        if d < left:
            self.pos += d
            return
        d -= left
        self.out = not self.out
        self.period, self.null = self.count, False           # reloaded at the end of each half-cycle
        d %= self.period                                     # whole periods change nothing
        if d >= self._half():
            d -= self._half()
            self.out = not self.out
        self.pos = d

    def value(self) -> int:
        """The counting element as a binary number (0..modulus-1)."""
        if self.state != _COUNTING:
            return self.ce % self.modulus
        mode = self.mode
        if mode == 2:
            return (self.period - self.pos) % self.modulus
        if mode == 3:
            n, p = self.period, self.pos
            if p == 0:
                shown = n
            elif n % 2 == 0:
                shown = n - 2 * p
            else:                                            # odd: -1 then -2s high, -3 then -2s low
                shown = n + 1 - 2 * p if self.out else n - 1 - 2 * p
            return shown % self.modulus
        return self.ce % self.modulus

    def next_out_change(self) -> int | None:
        """The next clock edge at which OUT changes, if nothing else happens first."""
        mode = self.mode
        if self.state == _LOAD:
            if mode in (2, 3) and not self.gate:
                return None
            load = self.synced + 1
            if mode in (0, 4) and not self.gate:
                return None                                  # loaded, but a low gate stops the count
            if mode == 1 or (mode in (4, 5) and not self.out):
                return load                                  # the load itself moves OUT
            if mode == 2:
                return load + self.count - 1
            if mode == 3:
                return load + (self.count + 1) // 2
            return load + self.count
        if self.state != _COUNTING or (not self.gate and mode in (0, 2, 3, 4)):
            return None
        if mode in (0, 1):
            return self.synced + self.ce if self.armed else None
        if mode in (4, 5):
            if not self.armed:
                return None
            return self.synced + (1 if self.ce == 0 else self.ce)
        if mode == 2:
            return self.synced + (1 if self.pos == self.period - 1 else self.period - 1 - self.pos)
        return self.synced + self._half() - self.pos

    # -- programming ------------------------------------------------------------
    def set_state(self, state: int) -> None:
        self.ce = self.value()            # what reads show until the next load
        self.state = state

    def program(self, control: int) -> None:
        """A control word for this counter (RW != 0): all its control logic is reset."""
        self.set_state(_IDLE)
        self.control = control & 0x3F
        self.count = 0
        self.out = self.mode != 0         # OUT's initial state: low in mode 0, high otherwise
        self.armed = False
        self.null = True
        self.low_byte, self.read_msb = None, False
        self.latch.clear()
        self.status = None

    def write_byte(self, byte: int) -> None:
        rw = self.rw
        if rw == RW_WORD and self.low_byte is None:
            self.low_byte = byte
            if self.mode == 0:
                self.set_state(_IDLE)     # mode 0: the first byte stops the count and OUT goes low
                self.out = False
            return
        if rw == RW_WORD:
            raw = self.low_byte | byte << 8
            self.low_byte = None
        else:
            raw = byte << 8 if rw == RW_MSB else byte
        self._new_count(raw)

    def _new_count(self, raw: int) -> None:
        count = raw
        if self.control & CW_BCD:
            count = _from_bcd(raw)
            if count >= self.modulus:
                log.warning("counter %d: %#06x is not a BCD count; using %d", self.index, raw, count % self.modulus)
                count %= self.modulus
        count = count or self.modulus     # 0 is the largest count: 2^16, or 10^4 in BCD
        mode = self.mode
        if mode in (2, 3) and count == 1:
            log.warning("counter %d: count 1 is illegal in mode %d (minimum 2); using 2", self.index, mode)
            count = 2
        self.count = count
        self.null = True
        if mode == 0:
            self.set_state(_LOAD)
            self.out = False
        elif mode == 4 or (mode in (2, 3) and self.state == _IDLE):
            self.set_state(_LOAD)
        # Modes 1 and 5 wait for a gate trigger; modes 2 and 3 take it at the next reload.

    def set_gate(self, level: bool) -> None:
        rising = level and not self.gate
        self.gate = level
        mode = self.mode
        if mode in (2, 3) and not level:
            # A low gate forces OUT high and stops the count; the rising gate reloads it.
            if self.state == _COUNTING:
                self.set_state(_LOAD)
            self.out = True
        if not rising:
            return
        # A rising gate triggers modes 1 and 5 once a count is written, and restarts a
        # running mode 2 or 3 count; either way the count is (re)loaded on the next clock.
        if (mode in (1, 5) and self.count) or (mode in (2, 3) and self.state != _IDLE):
            self.set_state(_LOAD)

    # -- reading ------------------------------------------------------------------
    def latch_count(self) -> None:
        if self.latch:
            return                        # a second latch before the read is ignored
        value = self.value()
        if self.control & CW_BCD:
            value = _to_bcd(value)
        self.latch.extend(self._bytes(value))

    def latch_status(self) -> None:
        if self.status is None:
            self.status = (self.out << 7) | (self.null << 6) | self.control

    def _bytes(self, value: int) -> list[int]:
        if self.rw == RW_LSB:
            return [value & 0xFF]
        if self.rw == RW_MSB:
            return [value >> 8]
        return [value & 0xFF, value >> 8]

    def peek_byte(self) -> int:
        """The byte `read_byte` returns next, without taking it."""
        if self.status is not None:
            return self.status
        if self.latch:
            return self.latch[0]
        value = self.value()
        if self.control & CW_BCD:
            value = _to_bcd(value)
        if self.rw == RW_WORD:
            return value >> 8 if self.read_msb else value & 0xFF
        return self._bytes(value)[0]

    def read_byte(self) -> int:
        byte = self.peek_byte()
        if self.status is not None:
            self.status = None
        elif self.latch:
            self.latch.popleft()
        elif self.rw == RW_WORD:
            self.read_msb = not self.read_msb
        return byte


class I8254(Device):
    """Intel 8254 PIT at 1.193182 MHz: three counters, modes 0-5, latch and read-back, BCD.

    Ports: counters 0-2 at offsets 0-2, the control word at offset 3; map `port_b`
    (1 port, I/O 61h on the PC) for counter 2's gate and OUT.
    Interrupts:
      irq0: counter 0's OUT (IRQ0 on the PC); edge-triggered receivers see its rising edges.
    """

    model: ClassVar[str] = "i8254"
    size: ClassVar[int] = 4

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.irq0 = self.output("irq0")
        self.counters = [Counter(i) for i in range(3)]
        self.port_b = PortB(f"{name}.port_b", self)
        self._out0_change = OneShot(self._update_out0)
        self._planned: int | None = None      # the clock edge _out0_change is set for

    def reset(self) -> None:
        for counter in self.counters:
            counter.power_on()
            counter.synced = self._now_edge()
        self.counters[2].gate = False
        self.port_b.reset()
        self._update_out0()

    def _now_edge(self) -> int:
        return edges(self.clock.now) if self._clock is not None else 0

    def counter(self, index: int) -> Counter:
        """Counter `index`, brought up to the present."""
        counter = self.counters[index]
        counter.advance(self._now_edge())
        return counter

    # -- bus surface ------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        self._check(offset, size)
        if offset == 3:
            return 0xFF                   # the control word register cannot be read (data sheet, "Read/Write Operations")
        return self.counter(offset).read_byte()     # reads change no state that OUT depends on

    def debug_read(self, offset: int, size: int) -> int:
        self._check(offset, size)
        return 0xFF if offset == 3 else self.counter(offset).peek_byte()   # counter(): catching up is no side effect

    def write(self, offset: int, size: int, value: int) -> None:
        self._check(offset, size)
        value &= 0xFF
        if offset < 3:
            self.counter(offset).write_byte(value)
        elif value >> 6 == READ_BACK:
            for index in range(3):
                if value & (2 << index):
                    counter = self.counter(index)
                    if not value & RB_NOT_COUNT:
                        counter.latch_count()
                    if not value & RB_NOT_STATUS:
                        counter.latch_status()
        else:
            counter = self.counter(value >> 6)
            if (value >> 4) & 3 == RW_LATCH:
                counter.latch_count()
            else:
                counter.program(value)
        if offset == 0 or (offset == 3 and value >> 6 == 0):
            self._update_out0()                    # only counter 0 drives a line

    def _check(self, offset: int, size: int) -> None:
        if size != 1:
            raise BusError(Response.BURST_ERROR, detail=f"{self.name}: the 8254 ports are 8 bits, not {size} bytes")

    def describe_offset(self, offset: int) -> str:
        return "control word" if offset == 3 else f"counter {offset}"

    # -- gates and outputs ------------------------------------------------------
    def set_gate(self, index: int, level: bool) -> None:
        self.counter(index).set_gate(level)
        if index == 0:
            self._update_out0()

    def out(self, index: int) -> bool:
        """OUT of counter `index` now."""
        return self.counter(index).out

    def _update_out0(self) -> None:
        """Drive IRQ0 from counter 0 and plan its next transition (the only scheduled event)."""
        clock = self._clock
        if clock is None:
            return
        now = clock.now                            # read once: this runs at every OUT0 edge
        counter = self.counters[0]
        counter.advance(edges(now))
        self.irq0.set(counter.out)
        edge = counter.next_out_change()
        if edge == self._planned and self._out0_change.pending:
            return                                 # already planned: keep the event queue short
        self._planned = edge
        if edge is None:
            self._out0_change.cancel()
        else:
            self._out0_change.start(clock, time_of_edge(edge) - now)


class PortB(RegisterDevice):
    """System control port B (I/O 61h): counter 2's gate and OUT, speaker enable, refresh toggle.

    Named NMISC in the PIIX4 data sheet. NMI sources (SERR#, IOCHK#) are not modelled and read 0.
    """

    size: ClassVar[int] = 1
    registers = (
        Reg("NMISC", 0x0, width=8, fields=(
            Field("TIM2_GATE", 0, doc="counter 2 gate"),
            Field("SPKR_DAT_EN", 1, doc="speaker data enable (OUT2 to the speaker)"),
            Field("PCI_SERR_EN", 2),
            Field("IOCHK_EN", 3),
            Field("REF_TOGGLE", 4, access=Access.RO, doc="toggles on every DRAM refresh request"),
            Field("TMR2_OUT_STS", 5, access=Access.RO, doc="counter 2 OUT"),
            Field("IOCHK_NMI_STS", 6, access=Access.RO),
            Field("SERR_NMI_STS", 7, access=Access.RO),
        )),
    )

    def __init__(self, name: str, pit: I8254) -> None:
        super().__init__(name)
        self.pit = pit

    def read_NMISC(self) -> int:
        refresh = (edges(self.pit.clock.now) // REFRESH_CLOCKS) & 1
        return (self.regs.NMISC & 0x0F) | refresh << 4 | self.pit.out(2) << 5

    def write_NMISC(self, value: int) -> None:
        self.regs.NMISC = value & 0x0F
        self.pit.set_gate(2, bool(value & 1))
