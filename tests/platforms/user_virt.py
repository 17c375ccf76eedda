"""What a user writes in a module of their own: virt-linux with one more PL011, at 0x0904_0000 on
SPI 8. Used in-process (test_virt_extend.py) and as `cosim run FILE:Class` (test_cli_runs.py)."""

from cosim import Property
from cosim.chardev import open_backend
from cosim.models.pl011 import Pl011
from cosim.platforms.virt import VirtLinux


class VirtTwoUarts(VirtLinux):
    """virt-linux with a second PL011 at 0x0904_0000 on SPI 8."""

    console1 = Property("none", "the second UART's console")

    def build(self) -> None:
        super().build()
        self.uart1 = self.add("uart1", Pl011, backend=open_backend(self.console1))
        self.map("sysbus", 0x0904_0000, self.uart1)
        self.wire(self.uart1.irq, self.gic.spi(8))
