"""Arm PrimeCell GPIO (PL061), after the Technical Reference Manual, Arm DDI 0190 (r1p1).

Design choices, documented once here:
- Eight pins. A pin whose GPIODIR bit is set drives its output wire with the
  GPIODATA latch; otherwise it reads the level of its input wire.
- GPIODATA is address-masked (TRM 3.3.1): address bits [9:2] select which bits
  a read returns (others read 0) and which bits a write changes. It is declared
  once with `count=256`, the index being that mask.
- Interrupts (TRM 3.3.3-3.3.9) are detected on input pins only, as QEMU's model
  does: level-sensitive pins (GPIOIS) report their level compared with GPIOIEV
  in GPIORIS; edge-sensitive ones latch an edge (either with GPIOIBE, else the
  one GPIOIEV selects) until GPIOIC clears it. GPIOINTR is the OR of GPIOMIS.
"""

from __future__ import annotations

from typing import ClassVar

from cosim import Access, Field, Reg, RegisterDevice
from cosim.fdt import DeviceTree, Node

__all__ = ["Pl061"]

PINS = 8
_ALL = (1 << PINS) - 1
# A bit per pin in [7:0]; bits [31:8], outside the field, are reserved: they read as zero and ignore writes.
_PER_PIN = dict(fields=(Field("pins", 0, PINS),), sizes=(1, 4))


class Pl061(RegisterDevice):
    """Arm PL061 GPIO (DDI 0190): eight pins, each an input or an output, with interrupts.

    Interrupts:
      irq: GPIOINTR, the OR of the masked interrupt status (GPIOMIS).
    Ports:
      in0..in7: input wires (the level outside drives an input pin).
      out0..out7: output wires (the GPIODATA latch of each output pin).
    """

    model: ClassVar[str] = "pl061"
    size: ClassVar[int] = 0x1000
    compatible: ClassVar[tuple[str, ...]] = ("arm,pl061", "arm,primecell")
    dt_name: ClassVar[str] = "pl061"
    registers = (
        Reg("GPIODATA", 0x000, count=256, sizes=(1, 4), doc="data, masked by address bits [9:2]"),
        Reg("GPIODIR", 0x400, doc="direction: 1 = output", **_PER_PIN),
        Reg("GPIOIS", 0x404, doc="interrupt sense: 1 = level, 0 = edge", **_PER_PIN),
        Reg("GPIOIBE", 0x408, doc="interrupt on both edges", **_PER_PIN),
        Reg("GPIOIEV", 0x40C, doc="interrupt event: 1 = rising edge / high level", **_PER_PIN),
        Reg("GPIOIE", 0x410, doc="interrupt mask: 1 = enabled", **_PER_PIN),
        Reg("GPIORIS", 0x414, access=Access.RO, sizes=(1, 4), doc="raw interrupt status"),
        Reg("GPIOMIS", 0x418, access=Access.RO, sizes=(1, 4), doc="masked interrupt status"),
        Reg("GPIOIC", 0x41C, access=Access.WO, sizes=(1, 4), doc="interrupt clear: 1 clears an edge"),
        Reg("GPIOAFSEL", 0x420, doc="alternate function select (no effect here)", **_PER_PIN),
        # PrimeCell identification (TRM 3.3.11-3.3.18): part 0x061, designer 0x41 (Arm), revision 0.
        Reg("GPIOPeriphID", 0xFE0, count=4, access=Access.RO, reset=(0x61, 0x10, 0x04, 0x00), sizes=(1, 4)),
        Reg("GPIOPCellID", 0xFF0, count=4, access=Access.RO, reset=(0x0D, 0xF0, 0x05, 0xB1), sizes=(1, 4)),
    )

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.irq = self.output("irq")
        self.pin_out = [self.output(f"out{n}") for n in range(PINS)]
        self.pin_in = [self.input(f"in{n}", self._input_sink(n)) for n in range(PINS)]
        self._levels = 0         # what the input wires say
        self._latch = 0          # the GPIODATA output latch
        self._edges = 0          # edge interrupts latched, until GPIOIC

    def reset(self) -> None:
        self._latch = self._edges = 0
        super().reset()

    # -- pins -----------------------------------------------------------------------
    def pins(self) -> int:
        """The value of every pin: outputs from the latch, inputs from their wires."""
        direction = self.regs.GPIODIR
        return (self._latch & direction) | (self._levels & ~direction & _ALL)

    def _input_sink(self, pin: int):
        def sink(level: bool) -> None:
            bit = 1 << pin
            before = self._levels
            self._levels = before | bit if level else before & ~bit
            if self._levels != before and not self.regs.GPIODIR & bit:
                self._edge(bit, rising=level)
                self.update()
        return sink

    def _edge(self, bit: int, rising: bool) -> None:
        if self.regs.GPIOIS & bit:
            return                                  # level-sensitive: seen in GPIORIS directly
        if self.regs.GPIOIBE & bit or bool(self.regs.GPIOIEV & bit) == rising:
            self._edges |= bit

    def _raw_status(self) -> int:
        sense, event = self.regs.GPIOIS, self.regs.GPIOIEV
        inputs = ~self.regs.GPIODIR & _ALL
        level = sense & inputs & ~(self.pins() ^ event)            # level equals the chosen one
        return (level | (self._edges & ~sense)) & _ALL

    def dt_node(self, node: Node, tree: DeviceTree) -> None:
        node.set("compatible", list(self.compatible)).set("interrupts", tree.interrupts(self.irq))
        node.set("gpio-controller", True).set("#gpio-cells", 2)
        tree.apb_clock(node)

    # -- registers ----------------------------------------------------------------
    def read_GPIODATA(self, mask: int) -> int:
        return self.pins() & mask

    def write_GPIODATA(self, value: int, mask: int) -> None:
        self._latch = (self._latch & ~mask) | (value & mask)

    def read_GPIORIS(self) -> int:
        return self._raw_status()

    def read_GPIOMIS(self) -> int:
        return self._raw_status() & self.regs.GPIOIE

    def write_GPIOIC(self, value: int) -> None:
        self._edges &= ~value

    def update(self) -> None:
        pins, direction = self.pins(), self.regs.GPIODIR
        for n, wire in enumerate(self.pin_out):
            wire.set(bool(direction >> n & 1 and pins >> n & 1))
        self.irq.set(bool(self._raw_status() & self.regs.GPIOIE))
