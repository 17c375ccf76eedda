"""Intel 8259A programmable interrupt controllers, cascaded as on the PC, after the 8259A data sheet
(Intel 231468) and, for the edge/level control registers, the PIIX4 data sheet (Intel 290562, ELCR1/ELCR2).

One `I8259` is the PC's pair: the master (ports 0x20/0x21) and the slave (0xA0/0xA1)
on its IR2, plus the edge/level control registers ELCR1/ELCR2 (0x4D0/0x4D1). The bus
sees three views: `pic.master`, `pic.slave` and `pic.elcr`. Each chip is a small state
machine on two ports (A0 = offset 0 or 1), so it is written on the plain Device API.

The cascade is a board wire, as in hardware: the slave's INT is the `cascade` output,
which the platform wires to `irq(2)`; the master's ICW3 says which of its inputs has a
slave, and on the interrupt acknowledge the slave whose ICW3 ID matches supplies the vector.

A rising edge on an edge-triggered input stays latched in IRR until acknowledged, even
if the line falls first (the data sheet asks for it to stay high until the first INTA,
else IR7 is given): so a device may `pulse()` its line, as QEMU's model also allows.

Not modelled: the MCS-80/85 call sequence (ICW4 uPM=0 still yields an 8086 vector),
buffered mode and special fully nested mode (stored, no effect).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from cosim import BusError, Device, Field, Input, Reg, RegisterDevice, Response

__all__ = ["I8259", "I8259Chip", "Elcr"]

log = logging.getLogger(__name__)

# ICW1 (A0=0, D4=1) and ICW4 bits (data sheet, "Initialization Command Words").
ICW1_IC4, ICW1_SNGL, ICW1_LTIM, ICW1_INIT = 1 << 0, 1 << 1, 1 << 3, 1 << 4
ICW4_UPM, ICW4_AEOI = 1 << 0, 1 << 1
# OCW2 (A0=0, D4:D3=00): R, SL, EOI in D7:D5; OCW3 (A0=0, D4:D3=01).
OCW3_SELECT, OCW3_RIS, OCW3_RR, OCW3_POLL, OCW3_SMM, OCW3_ESMM = 1 << 3, 1 << 0, 1 << 1, 1 << 2, 1 << 5, 1 << 6
CASCADE_IRQ = 2

# Where the next A0=1 write goes during the initialization sequence.
_READY, _ICW2, _ICW3, _ICW4 = 0, 2, 3, 4
# Priority order, highest first, for each lowest-priority level (rotation moves it): looked up on every IRQ edge.
_PRIORITY = tuple(tuple((lowest + 1 + i) & 7 for i in range(8)) for lowest in range(8))


class I8259Chip(Device):
    """One 8259A: two ports, A0=0 (ICW1, OCW2, OCW3; reads IRR/ISR/poll) and A0=1 (ICW2-4, OCW1/IMR)."""

    size: ClassVar[int] = 2

    def __init__(self, name: str, pair: "I8259") -> None:
        super().__init__(name)
        self.pair = pair
        self.elcr = 0            # level-triggered inputs (ELCR); every input is edge-triggered otherwise
        self.lines = 0           # current input levels
        self.power_on()

    def power_on(self) -> None:
        self.irr = self.isr = self.imr = 0
        self.icw1 = self.icw3 = self.icw4 = 0
        self.vector_base = 0
        self.step = _READY
        self.lowest = 7          # the lowest-priority level; rotation moves it (OCW2 R=1)
        self.read_isr = False    # OCW3 RR/RIS: status read selects IRR (power-on) or ISR
        self.special_mask = False
        self.poll = False
        self.rotate_on_aeoi = False

    def reset(self) -> None:
        self.power_on()
        self.pair.update()

    # -- inputs --------------------------------------------------------------
    def level_triggered(self, bit: int) -> bool:
        return bool(self._level_mask() & bit)

    def set_line(self, n: int, level: bool) -> None:
        bit = 1 << n
        if level:
            if not self.lines & bit and not self._level_mask() & bit:
                self.irr |= bit    # a rising edge latches the request
            self.lines |= bit
        else:
            self.lines &= ~bit
        self.pair.update()

    def requests(self) -> int:
        """IRR as the priority resolver sees it: edge latches, and level inputs as they are now."""
        level = self._level_mask()
        return (self.irr & ~level) | (self.lines & level)

    def _level_mask(self) -> int:
        return 0xFF if self.icw1 & ICW1_LTIM else self.elcr

    # -- priority resolution -------------------------------------------------
    def _priority_order(self) -> tuple[int, ...]:
        return _PRIORITY[self.lowest]

    def highest(self) -> int | None:
        """The level the chip would signal on INT now, or None.

        A request is served if it is unmasked and no in-service level of equal or
        higher priority blocks it; in special mask mode masked in-service levels do
        not block (data sheet, OCW3 "Special Mask Mode").
        """
        if not (self.irr | self.lines) & ~self.imr:
            return None            # nothing unmasked could request (requests() is part of IRR | lines)
        pending = self.requests() & ~self.imr
        if not pending:
            return None
        blocking = self.isr & ~self.imr if self.special_mask else self.isr
        for level in self._priority_order():
            bit = 1 << level
            if blocking & bit:
                return None
            if pending & bit:
                return level
        return None

    def acknowledge(self) -> int | None:
        """The two INTA pulses: take the highest request into service; None if it vanished."""
        level = self.highest()
        if level is None:
            return None
        bit = 1 << level
        if not self._level_mask() & bit:
            self.irr &= ~bit
        if self.icw4 & ICW4_AEOI:
            if self.rotate_on_aeoi:
                self.lowest = level
        else:
            self.isr |= bit
        return level

    # -- bus surface ---------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if offset == 1 or not self.poll:
            return self.debug_read(offset, size)            # IMR, IRR and ISR reads change nothing
        self._check(offset, size)
        # Poll command: this read is the interrupt acknowledge (data sheet, "The Poll Command").
        self.poll = False
        return self._poll_byte(self.pair.poll(self))

    def debug_read(self, offset: int, size: int) -> int:
        self._check(offset, size)
        if offset == 1:
            return self.imr
        if self.poll:
            return self._poll_byte(self.highest())         # the level the poll read would take
        return self.isr if self.read_isr else self.requests()

    @staticmethod
    def _poll_byte(level: int | None) -> int:
        return 0 if level is None else 0x80 | level

    def write(self, offset: int, size: int, value: int) -> None:
        self._check(offset, size)
        value &= 0xFF
        if offset == 0:
            if value & ICW1_INIT:
                self._icw1(value)
            elif value & OCW3_SELECT:
                self._ocw3(value)
            else:
                self._ocw2(value)
        elif self.step == _ICW2:
            self.vector_base = value & 0xF8
            self.step = _ICW3 if not self.icw1 & ICW1_SNGL else self._after_icw3()
        elif self.step == _ICW3:
            self.icw3 = value
            self.step = self._after_icw3()
        elif self.step == _ICW4:
            self.icw4 = value & 0x1F
            self.step = _READY
            if not value & ICW4_UPM:
                log.warning("%s: ICW4 selects MCS-80/85 mode; vectors are delivered in 8086 form", self.name)
        else:
            self.imr = value                              # OCW1
        self.pair.update()

    def _after_icw3(self) -> int:
        return _ICW4 if self.icw1 & ICW1_IC4 else _READY

    def _icw1(self, value: int) -> None:
        # ICW1 clears the edge latches and IMR, makes IR7 lowest priority, selects IRR for
        # status reads and leaves special mask mode; without IC4, ICW4 is 0 (data sheet,
        # ICW1). ISR is cleared too: nothing is in service on a freshly initialised chip.
        self.icw1 = value
        self.irr = self.isr = self.imr = 0
        self.icw4 = 0
        self.lowest = 7
        self.read_isr = self.special_mask = self.poll = self.rotate_on_aeoi = False
        self.step = _ICW2

    def _ocw2(self, value: int) -> None:
        rotate, specific, eoi, level = value & 0x80, value & 0x40, value & 0x20, value & 7
        if eoi:
            if not specific:
                level = self._highest_in_service()
                if level is None:
                    return
            self.isr &= ~(1 << level)
            if rotate:
                self.lowest = level                       # the served level becomes the lowest
        elif specific:
            if rotate:
                self.lowest = level                       # set priority command
        else:
            self.rotate_on_aeoi = bool(rotate)            # 100 set / 000 clear rotate in AEOI mode

    def _highest_in_service(self) -> int | None:
        for level in self._priority_order():
            if self.isr & (1 << level):
                return level
        return None

    def _ocw3(self, value: int) -> None:
        if value & OCW3_ESMM:
            self.special_mask = bool(value & OCW3_SMM)
        if value & OCW3_RR:
            self.read_isr = bool(value & OCW3_RIS)
        self.poll = bool(value & OCW3_POLL)

    def _check(self, offset: int, size: int) -> None:
        if size != 1:
            raise BusError(Response.BURST_ERROR, detail=f"{self.name}: the 8259A ports are 8 bits, not {size} bytes")

    def describe_offset(self, offset: int) -> str:
        return f"{'command (A0=0)' if offset == 0 else 'data (A0=1)'} port"


class Elcr(RegisterDevice):
    """Edge/level control registers ELCR1 (IRQ0-7) and ELCR2 (IRQ8-15), as in the PIIX4 data sheet.

    A set bit makes that IRQ level-sensitive (active high here). IRQ0, 1, 2, 8 and 13 are
    always edge-triggered: their bits are reserved and read 0.
    """

    size: ClassVar[int] = 2
    registers = (
        # The bits of IRQ0-2, 8 and 13 are not declared: the DSL keeps them reserved (0).
        Reg("ELCR1", 0x0, width=8, fields=tuple(Field(f"IRQ{n}", n) for n in range(3, 8))),
        Reg("ELCR2", 0x1, width=8, fields=tuple(Field(f"IRQ{8 + n}", n) for n in (1, 2, 3, 4, 6, 7))),
    )

    def __init__(self, name: str, pair: "I8259") -> None:
        super().__init__(name)
        self.pair = pair

    def update(self) -> None:
        self.pair.master.elcr = self.regs.ELCR1
        self.pair.slave.elcr = self.regs.ELCR2
        self.pair.update()


class I8259(Device):
    """Intel 8259A master/slave pair as on the PC, with the PIIX4 edge/level control registers.

    Map `master` (2 ports, 0x20), `slave` (2 ports, 0xA0) and `elcr` (2 ports, 0x4D0).
    Supports ICW1-ICW4, OCW1-OCW3, IRR/ISR reads, specific and non-specific EOI,
    auto-EOI, priority rotation, special mask mode, poll mode and spurious IRQ7/IRQ15.
    Interrupts:
      intr: the master's INT output, to the CPU; the CPU calls `acknowledge()` for the vector.
      cascade: the slave's INT output; wire it to irq(2) (required).
      irq(n): input for IRQ n, 0-7 on the master, 8-15 on the slave (irq(2) takes the cascade).
    """

    model: ClassVar[str] = "i8259"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.intr = self.output("intr")
        self.cascade = self.output("cascade", required=True)
        self.master = I8259Chip(f"{name}.master", self)
        self.slave = I8259Chip(f"{name}.slave", self)
        self.elcr = Elcr(f"{name}.elcr", self)
        self._irq = [self.input(f"irq{n}", self._sink(n)) for n in range(16)]
        self._in_inta = False

    def irq(self, n: int) -> Input:
        if not 0 <= n < 16:
            raise IndexError(f"{self.name}: there is no IRQ {n} (0-15)")
        return self._irq[n]

    def _sink(self, n: int) -> Callable[[bool], None]:
        chip, line = (self.master, n) if n < 8 else (self.slave, n - 8)
        return partial(chip.set_line, line)

    def reset(self) -> None:
        self.master.power_on()
        self.slave.power_on()
        self.elcr.reset()          # ends in update()

    def update(self) -> None:
        if self._in_inta:
            return                 # outputs settle once the acknowledge cycle is over
        self.cascade.set(self.slave.highest() is not None)
        self.intr.set(self.master.highest() is not None)

    # -- the CPU side --------------------------------------------------------
    def acknowledge(self) -> int:
        """The INTA cycle: returns the vector and takes the interrupt into service.

        The master resolves priority; if the winner is an input with a slave on it
        (ICW3), the slave supplies the vector in the second INTA pulse. A request that
        vanished before the acknowledge (a level input that dropped, or a request masked
        after the slave's INT was latched) gives the spurious vector of IR7 of the chip
        that was asked (IRQ7 or IRQ15) without setting its ISR bit.
        """
        self._in_inta = True
        try:
            vector = self._acknowledge(self.master)
        finally:
            self._in_inta = False
        self.update()
        return vector

    def _acknowledge(self, chip: I8259Chip) -> int:
        level = chip.acknowledge()
        if level is None:
            return chip.vector_base | 7
        if chip is self.master and self._slave_on(level):
            # The slave's INT falls during its INTA cycle; if it still has a request
            # afterwards (auto-EOI, or a higher level) INT rises again and the master's
            # edge-triggered IR2 latches it anew.
            self.cascade.set(False)
            return self._acknowledge(self.slave)
        return chip.vector_base | level

    def _slave_on(self, level: int) -> bool:
        return bool(self.master.icw3 & (1 << level)) and (self.slave.icw3 & 7) == level

    def poll(self, chip: I8259Chip) -> int | None:
        """The poll command's acknowledge: the level taken into service, or None."""
        level = chip.acknowledge()
        self.update()
        return level

    def pending_vector(self) -> int | None:
        """The vector `acknowledge()` would return now, without acknowledging (for debuggers)."""
        level = self.master.highest()
        if level is None:
            return None
        if self._slave_on(level):
            slave = self.slave.highest()
            return self.slave.vector_base | (7 if slave is None else slave)
        return self.master.vector_base | level
