"""Device trees built from Python and serialised with libfdt (pylibfdt).

Platforms describe their hardware once; the same description yields the
models and, through this module, the device tree blob the guest is given.

    root = Node("")
    root.set("#address-cells", 2)
    uart = root.add("pl011@9000000")
    uart.set("compatible", ["arm,pl011", "arm,primecell"])
    uart.set("reg", cells64(0x0900_0000, 0x1000))
    blob = to_dtb(root)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import libfdt

from ._time import SEC, Frequency

__all__ = ["Node", "Phandle", "DeviceTree", "IRQ_TYPE_LEVEL_HIGH", "cells64", "to_dtb", "from_dtb"]

# Interrupt flags of the common GIC binding (include/dt-bindings/interrupt-controller/irq.h).
IRQ_TYPE_LEVEL_HIGH = 4


class Phandle:
    """A reference to a node, resolved to the node's phandle number when serialised."""

    __slots__ = ("node",)

    def __init__(self, node: "Node") -> None:
        self.node = node


Value = int | str | bytes | bool | Phandle | list[int | Phandle] | list[str] | tuple[int | Phandle, ...]


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.props: dict[str, Value] = {}
        self.children: list[Node] = []
        self.phandle_value: int | None = None

    def add(self, name: str) -> "Node":
        child = Node(name)
        self.children.append(child)
        return child

    def set(self, name: str, value: Value) -> "Node":
        """Set a property: int = one u32 cell, list of ints/Phandles = cells,
        str = string, list of str = string list, bytes = raw, True = empty."""
        self.props[name] = value
        return self

    def ref(self) -> Phandle:
        return Phandle(self)

    def find(self, path: str) -> "Node":
        node = self
        for part in filter(None, path.split("/")):
            matches = [c for c in node.children if c.name == part or c.name.split("@")[0] == part]
            if not matches:
                raise KeyError(f"no node {part!r} under {node.name or '/'}")
            node = matches[0]
        return node

    def walk(self) -> Iterable["Node"]:
        yield self
        for child in self.children:
            yield from child.walk()


class DeviceTree:
    """What a device needs to describe itself (`Device.dt_node`): the interrupt specifier of
    one of its output wires, in the binding of the controller it is wired to, and shared
    fixed clocks. A platform makes one per blob from its wiring and its interrupt controllers
    (objects with `interrupt_cells(input) -> list[int] | None`)."""

    def __init__(self, root: Node, wires: Iterable[tuple[object, object]], controllers: Iterable[object]) -> None:
        self.root = root
        self._wires = list(wires)
        self._controllers = list(controllers)
        self._clocks: dict[int, Node] = {}

    def interrupts(self, signal: object) -> list[int]:
        """The `interrupts` cells for an output wire (a Signal wired to an interrupt controller)."""
        for output, target in self._wires:
            if output is signal:
                for controller in self._controllers:
                    cells = controller.interrupt_cells(target)  # type: ignore[attr-defined]
                    if cells is not None:
                        return cells
        name = getattr(signal, "name", signal)
        raise ValueError(f"{name} is not wired to an interrupt controller the device tree describes")

    def clock(self, rate: Frequency | int) -> Phandle:
        """A fixed-rate clock node of `rate` (a Frequency, or Hz), one per frequency, shared by the devices that name it."""
        hz = rate.cycles(SEC) if isinstance(rate, Frequency) else rate    # clock-frequency holds whole Hz
        if hz not in self._clocks:
            label = f"clk{hz // 1_000_000}mhz" if hz % 1_000_000 == 0 else f"clk{hz}hz"
            node = self.root.add(label)
            node.set("compatible", "fixed-clock").set("#clock-cells", 0).set("clock-frequency", hz)
            node.set("clock-output-names", label)
            self._clocks[hz] = node
        return self._clocks[hz].ref()

    def apb_clock(self, node: Node, rate: Frequency | int = 24_000_000) -> None:
        """An AMBA (PrimeCell) device's bus clock: `clocks` and `clock-names = "apb_pclk"`, which
        Linux's AMBA bus needs to probe it (24 MHz, as on QEMU's virt, unless given)."""
        node.set("clocks", [self.clock(rate)]).set("clock-names", ["apb_pclk"])


def cells64(*values: int) -> list[int]:
    """Split 64-bit values into pairs of u32 cells (#address-cells = #size-cells = 2)."""
    out: list[int] = []
    for value in values:
        out += [(value >> 32) & 0xFFFF_FFFF, value & 0xFFFF_FFFF]
    return out


def _encode(value: Value) -> bytes:
    if value is True:
        return b""
    if isinstance(value, (int, Phandle)):
        value = [value]
    if isinstance(value, str):
        return value.encode() + b"\0"
    if isinstance(value, bytes):
        return value
    items = list(value)  # type: ignore[arg-type]
    if items and all(isinstance(v, str) for v in items):
        return b"".join(v.encode() + b"\0" for v in items)  # type: ignore[union-attr]
    cells = []
    for v in items:
        if isinstance(v, Phandle):
            if v.node.phandle_value is None:
                raise ValueError(f"node {v.node.name!r} is referenced but has no phandle")
            v = v.node.phandle_value
        cells.append(v & 0xFFFF_FFFF)
    return struct.pack(f">{len(cells)}I", *cells)


def to_dtb(root: Node, reserve: Iterable[tuple[int, int]] = ()) -> bytes:
    """Serialise the tree; referenced nodes get phandles numbered from 1."""
    referenced = {id(v.node): v.node for node in root.walk() for value in node.props.values()
                  for v in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(v, Phandle)}
    for number, node in enumerate(referenced.values(), start=1):
        node.phandle_value = number
    sw = libfdt.FdtSw()
    for address, size in reserve:
        sw.add_reservemap_entry(address, size)
    sw.finish_reservemap()

    def emit(node: Node) -> None:
        with sw.add_node(node.name):
            if node.phandle_value is not None:
                sw.property_u32("phandle", node.phandle_value)
            for name, value in node.props.items():
                sw.property(name, _encode(value))
            for child in node.children:
                emit(child)

    emit(root)
    return bytes(sw.as_fdt().as_bytearray())


def from_dtb(blob: bytes) -> libfdt.Fdt:
    """Parse a blob (tests and tools use this to check what the guest will see)."""
    return libfdt.Fdt(blob)
