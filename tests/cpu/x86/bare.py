"""A machine with nothing but RAM and a KVM CPU, for guests that need no device."""

from cosim import MiB, Memory, Platform, Property
from cosim.chardev import BufferBackend
from cosim.models.simctl import SimControl
from cosim.cpu.x86.machine import add_kvm_x86_cpu


ROM_BASE = 0x40_0000        # just above the RAM


class Bare(Platform):
    """RAM at 0 on sysbus, sim-control at port 0x500, one KVM x86 CPU (not registered: no `name`)."""

    kernel = Property(None, "guest image")
    mode = Property("long", "entry mode")
    budget = Property("auto", "budget source: a name or a BudgetSource object")
    load_address = Property(0x10_0000, "where a raw image goes", int)
    rom = Property(False, "a 64 KiB ROM at ROM_BASE holding 0x5A bytes")

    def build(self) -> None:
        self.ram = self.add("ram", Memory, size=4 * MiB)
        self.map("sysbus", 0, self.ram)
        if self.rom:
            self.rom_model = self.add("rom", Memory, size=0x1_0000, read_only=True)
            self.rom_model.load(b"\x5a" * 0x1_0000)
            self.map("sysbus", ROM_BASE, self.rom_model)
        self.log = BufferBackend()
        self.simctl = self.add("simctl", SimControl, log=self.log)
        self.map(self.bus("io", width=16), 0x500, self.simctl, size=0x20)
        self.cpu0 = add_kvm_x86_cpu(self, kernel=self.kernel, mode=self.mode, budget=self.budget,
                                    load_address=self.load_address)
