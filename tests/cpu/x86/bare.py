"""A machine with nothing but RAM and a KVM CPU, for guests that need no device."""

from cosim import MiB, Memory, Platform, Property
from cosim.cpu.x86.machine import add_kvm_x86_cpu


class Bare(Platform):
    """RAM at 0 on sysbus, an empty I/O-port bus, one KVM x86 CPU (not registered: no `name`)."""

    kernel = Property(None, "guest image")
    mode = Property("long", "entry mode")
    budget = Property("auto", "budget source")
    load_address = Property(0x10_0000, "where a raw image goes", int)

    def build(self) -> None:
        self.ram = self.add("ram", Memory, size=4 * MiB)
        self.map("sysbus", 0, self.ram)
        self.bus("io", width=16)
        self.cpu0 = add_kvm_x86_cpu(self, kernel=self.kernel, mode=self.mode, budget=self.budget,
                                    load_address=self.load_address)
