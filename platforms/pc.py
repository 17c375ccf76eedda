"""`pc`: the legacy devices of an x86 PC, on an I/O-port bus named "io".

| I/O ports | device | model | IRQ |
|---|---|---|---|
| 0x020-0x021 | PIC master | I8259 | INTR to the CPU |
| 0x040-0x043 | PIT | I8254 | 0 |
| 0x061 | system control port B (PIT counter 2 gate/OUT) | I8254 | |
| 0x0A0-0x0A1 | PIC slave | I8259 | cascade on master IRQ 2 |
| 0x3F8-0x3FF | COM1 | Ns16550 | 4 |
| 0x4D0-0x4D1 | ELCR1/ELCR2 (edge/level per IRQ) | I8259 | |
| 0x500-0x51F | sim-control | SimControl | |

RAM starts at physical address 0 on "sysbus". With an `image`, a KVM x86 CPU
runs it (`cosim run pc --image FILE`): the loader puts an ELF at its physical
addresses (anything else raw at `load_address`), builds the entry state for
`mode` (64-bit long mode by default: identity-mapped low 4 GiB, GDT at 0x1000),
and the CPU takes `pic.intr`, calling `pic.acknowledge()` for each vector.
Without an image the platform has no CPU (device-level tests and demos).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from cosim import (NS, US, Frequency, GHz, Memory, MiB, Platform, PlatformError, Property, format_time, parse_size,
                   parse_time)
from cosim.chardev import open_backend
from cosim.kvm import SOURCE_NAMES, budget_source_name
from cosim.models.i8254 import I8254
from cosim.models.i8259 import CASCADE_IRQ, I8259
from cosim.models.ns16550 import Ns16550
from cosim.models.simctl import SimControl

if TYPE_CHECKING:
    from cosim.cpu import Cpu

__all__ = ["Pc", "PC_IO_MAP", "SIMCTL_PORTS", "COM1_IRQ", "PIT_IRQ"]

# I/O port ranges (base, size), as on every PC since the AT.
PC_IO_MAP: dict[str, tuple[int, int]] = {
    "pic_master": (0x020, 2),
    "pit": (0x040, 4),
    "port_b": (0x061, 1),
    "pic_slave": (0x0A0, 2),
    "com1": (0x3F8, 8),
    "elcr": (0x4D0, 2),
    "simctl": (0x500, 0x20),   # sim-control (docs/sim-control.md)
}
SIMCTL_PORTS = PC_IO_MAP["simctl"]
PIT_IRQ, COM1_IRQ = 0, 4
IO_BUS, IO_BUS_BITS = "io", 16


def _frequency(text: str) -> Frequency | Literal["host"]:
    from cosim.cpu.x86.machine import parse_frequency

    return parse_frequency(text)


class Pc(Platform):
    """x86 PC: KVM CPU (given an image), 8259A pair, 8254 PIT with port 61h, 16550A COM1, sim-control, RAM at 0."""

    name = "pc"
    summary = "x86 PC: KVM CPU, 8259A pair, 8254 PIT, 16550A COM1, sim-control; runs a bare-metal image"
    ram_size = Property(128 * MiB, "RAM size in bytes, from physical address 0", parse_size)
    console = Property("stdio", "COM1 console: stdio, buffer, none, pty, tcp:[HOST:]PORT (or a CharBackend from Python)")
    image = Property("none", "guest image for the KVM CPU (ELF, or raw at load_address), or 'none': no CPU")
    mode = Property("long", "x86 entry mode: real, protected or long")
    load_address = Property(0x10_0000, "where a raw image is loaded and entered", lambda text: int(text, 0),
                            lambda value: f"{value:#x}")
    quantum = Property(100 * US, "CPU quantum (longest run of the guest between device updates)", parse_time,
                       format_time)
    cpu = Property("kvm", "CPU backend: kvm (the host's /dev/kvm)")
    budget = Property("auto", f"what ends a quantum: auto, {', '.join(SOURCE_NAMES)}", budget_source_name)
    ips = Property(0.0, "guest instructions per host CPU second for time-based budgets (0: calibrate)", float)
    access_latency = Property(100 * NS, "simulated time each device access costs the guest", parse_time,
                              format_time)
    frequency = Property(GHz(1), "guest instructions per simulated second: e.g. 1GHz, or host (its measured "
                         "rate here: simulated time follows guest execution)", _frequency, str)

    def build(self) -> None:
        if self.cpu != "kvm":
            raise PlatformError(f"unknown CPU backend {self.cpu!r} for pc: use kvm")
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

        self.simctl = self.add("simctl", SimControl)
        self.map(io, SIMCTL_PORTS[0], self.simctl, size=SIMCTL_PORTS[1])

        self.intr = self.pic.intr

    def finish_build(self) -> None:
        """The CPU last, so it sees every device a subclass's build() added too."""
        if self.image not in (None, "none"):
            self.cpu0 = self._cpu()

    def _cpu(self) -> Cpu:
        from cosim.cpu.x86.machine import add_kvm_x86_cpu

        return add_kvm_x86_cpu(self, kernel=self.image, mode=self.mode, load_address=self.load_address,
                               intr=self.pic.intr, acknowledge=self.pic.acknowledge, quantum=self.quantum,
                               budget=self.budget, ips=self.ips or None, access_latency=self.access_latency,
                               frequency=self.frequency)
