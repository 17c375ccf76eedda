"""`pc`: the legacy devices of an x86 PC, on an I/O-port bus named "io".

| I/O ports | device | model | IRQ |
|---|---|---|---|
| 0x020-0x021 | PIC master | I8259 | INTR to the CPU |
| 0x040-0x043 | PIT | I8254 | 0 |
| 0x061 | system control port B (PIT counter 2 gate/OUT) | I8254 | |
| 0x0A0-0x0A1 | PIC slave | I8259 | cascade on master IRQ 2 |
| 0x3F8-0x3FF | COM1 | Ns16550 | 4 |
| 0x4D0-0x4D1 | ELCR1/ELCR2 (edge/level per IRQ) | I8259 | |
| 0x500-0x51F | reserved for the sim-control device | | |

RAM starts at physical address 0 on "sysbus". The CPU (a KVM backend) is added
later: it will take `pic.intr` and call `pic.acknowledge()` for the vector.
"""

from __future__ import annotations

from cosim import Memory, MiB, Platform, Property, parse_size
from cosim.chardev import open_backend
from cosim.models.i8254 import I8254
from cosim.models.i8259 import CASCADE_IRQ, I8259
from cosim.models.ns16550 import Ns16550

__all__ = ["Pc", "PC_IO_MAP", "SIMCTL_PORTS", "COM1_IRQ", "PIT_IRQ"]

# I/O port ranges (base, size), as on every PC since the AT.
PC_IO_MAP: dict[str, tuple[int, int]] = {
    "pic_master": (0x020, 2),
    "pit": (0x040, 4),
    "port_b": (0x061, 1),
    "pic_slave": (0x0A0, 2),
    "com1": (0x3F8, 8),
    "elcr": (0x4D0, 2),
    "simctl": (0x500, 0x20),   # sim-control device: added with the CPU; the range is kept free for it
}
SIMCTL_PORTS = PC_IO_MAP["simctl"]
PIT_IRQ, COM1_IRQ = 0, 4
IO_BUS, IO_BUS_BITS = "io", 16


class Pc(Platform):
    """x86 PC legacy devices: 8259A pair, 8254 PIT with port 61h, 16550A COM1, RAM at 0."""

    name = "pc"
    summary = "x86 PC legacy devices (8259A, 8254, 16550A COM1) on the I/O-port bus; CPU to come"
    ram_size = Property(128 * MiB, "RAM size in bytes, from physical address 0", parse_size)
    console = Property("stdio", "COM1 console: stdio, buffer, none, pty, tcp:[HOST:]PORT (or a CharBackend from Python)")

    def build(self) -> None:
        self.ram = self.add("ram", Memory, size=self.ram_size)
        self.map("sysbus", 0, self.ram)
        io = self.bus(IO_BUS, width=IO_BUS_BITS)

        self.pic = self.add("pic", I8259)
        self.map(io, PC_IO_MAP["pic_master"][0], self.pic.master)
        self.map(io, PC_IO_MAP["pic_slave"][0], self.pic.slave)
        self.map(io, PC_IO_MAP["elcr"][0], self.pic.elcr)
        self.wire(self.pic.cascade, self.pic.irq(CASCADE_IRQ))

        self.pit = self.add("pit", I8254)
        self.map(io, PC_IO_MAP["pit"][0], self.pit)
        self.map(io, PC_IO_MAP["port_b"][0], self.pit.port_b)
        self.wire(self.pit.irq0, self.pic.irq(PIT_IRQ))

        self.com1 = self.add("com1", Ns16550, backend=open_backend(self.console))
        self.map(io, PC_IO_MAP["com1"][0], self.com1)
        self.wire(self.com1.irq, self.pic.irq(COM1_IRQ))

        # The CPU's interrupt pin, for the CPU backend added later (not required until then).
        self.intr = self.pic.intr
