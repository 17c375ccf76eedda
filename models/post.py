"""The PC's POST diagnostic port (I/O port 0x80).

BIOS writes its power-on self-test codes there, and Linux writes to it as an I/O
delay (`outb %al, $0x80` in arch/x86/include/asm/io.h's `native_io_delay`). On the
AT it is the spare DMA page register, so it reads back what was written last.
"""

from __future__ import annotations

from typing import ClassVar

from cosim import Reg, RegisterDevice

__all__ = ["PostPort", "POST_PORT"]

POST_PORT = 0x80


class PostPort(RegisterDevice):
    """POST code port: a byte latch; the last code written is `code` (shown by a debugger or a test).

    Interrupts: none.
    """

    model: ClassVar[str] = "post-port"
    size = 1
    registers = (Reg("POST", 0x0, width=8, doc="the last POST code written; reads back as written"),)

    @property
    def code(self) -> int:
        return self.regs.POST
