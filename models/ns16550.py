"""National Semiconductor NS16550A UART, after the PC16550D data sheet (National, June 1995).

Design choices, documented once here:
- Transmission is instantaneous (as in Pl011): a byte written to THR reaches the
  back-end at once, so THR and the transmitter are always empty (LSR THRE and TEMT
  read 1) and the THRE interrupt re-arms right after each THR write.
- Received bytes wait in the back-end until the RX FIFO (16 bytes, or the 1-byte
  holding register with FIFOs off) has room, so typed input is never overrun. Overruns
  happen only in loopback, where the transmitter feeds the receiver directly.
- The modem inputs are those of an attached terminal: CTS, DSR and DCD asserted, RI not;
  in loopback they follow RTS, DTR, OUT2 and OUT1 (data sheet, MCR bit 4 "Loop").
- One model for both buses: registers are 1 byte at offsets 0-7 << `reg_shift`
  (0 on the PC's I/O ports; 2 for MMIO UARTs at stride 4, which also accept 4-byte accesses).
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from cosim import SEC, Access, BusError, Clock, Field, OneShot, PlatformError, Reg, RegisterDevice, Response
from cosim.chardev import CharBackend, NullBackend, attach_backend

__all__ = ["Ns16550"]

FIFO_DEPTH = 16
IER_ERBFI, IER_ETBEI, IER_ELSI, IER_EDSSI = 1 << 0, 1 << 1, 1 << 2, 1 << 3
# IIR interrupt identification, highest priority first (data sheet, IIR: "Interrupt Control Functions").
IIR_NONE, IIR_LINE_STATUS, IIR_RX_DATA, IIR_TIMEOUT, IIR_THRE, IIR_MODEM = 0x01, 0x06, 0x04, 0x0C, 0x02, 0x00
IIR_FIFOS = 0xC0
FCR_FIFO_ENABLE, FCR_RX_RESET, FCR_TX_RESET = 1 << 0, 1 << 1, 1 << 2
RX_TRIGGER = (1, 4, 8, 14)      # FCR bits 7:6
LCR_STB, LCR_PEN, LCR_DLAB = 1 << 2, 1 << 3, 1 << 7
MCR_DTR, MCR_RTS, MCR_OUT1, MCR_OUT2, MCR_LOOP = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4
LSR_DR, LSR_OE, LSR_THRE, LSR_TEMT = 1 << 0, 1 << 1, 1 << 5, 1 << 6
MSR_DCTS, MSR_DDSR, MSR_TERI, MSR_DDCD = 1 << 0, 1 << 1, 1 << 2, 1 << 3
MSR_CTS, MSR_DSR, MSR_RI, MSR_DCD = 1 << 4, 1 << 5, 1 << 6, 1 << 7
PC_CLOCK_HZ = 1_843_200         # the PC's UART crystal: divisor 1 is 115200 baud


def _bits(*names: str) -> tuple[Field, ...]:
    return tuple(Field(name, lsb) for lsb, name in enumerate(names) if name)


class Ns16550(RegisterDevice):
    """NS16550A UART (PC16550D data sheet): 16-byte FIFOs, divisor latch, loopback, RX timeout.

    DLL and DLM (the divisor latch) replace RBR/THR and IER while LCR.DLAB is set.
    Interrupts:
      irq: INTR, high while IIR reports an interrupt (RX line status, RX data or character
        timeout, THR empty, modem status, each enabled in IER).
    Properties:
      backend: a CharBackend for the serial line (default: output discarded).
      clock_hz: the input clock, for the character timeout (default 1.8432 MHz, as on the PC).
      reg_shift: register spacing is 1 << reg_shift bytes (0: I/O ports; 2: 32-bit MMIO).
    """

    model: ClassVar[str] = "ns16550"
    size = 8
    registers = (
        Reg("RBR_THR", 0x0, width=8, doc="receiver buffer (read) / transmitter holding (write); DLL if DLAB"),
        Reg("IER", 0x1, width=8, fields=_bits("ERBFI", "ETBEI", "ELSI", "EDSSI"), doc="DLM if DLAB"),
        Reg("IIR_FCR", 0x2, width=8, reset=IIR_NONE, doc="interrupt identification (read) / FIFO control (write)"),
        Reg("LCR", 0x3, width=8, fields=(Field("WLS", 0, 2), Field("STB", 2), Field("PEN", 3), Field("EPS", 4),
                                          Field("STICK", 5), Field("BREAK", 6), Field("DLAB", 7))),
        Reg("MCR", 0x4, width=8, fields=_bits("DTR", "RTS", "OUT1", "OUT2", "LOOP")),
        Reg("LSR", 0x5, width=8, access=Access.RO, reset=LSR_THRE | LSR_TEMT,
            fields=_bits("DR", "OE", "PE", "FE", "BI", "THRE", "TEMT", "RXFIFO_ERR")),
        Reg("MSR", 0x6, width=8, access=Access.RO, fields=_bits("DCTS", "DDSR", "TERI", "DDCD", "CTS", "DSR", "RI", "DCD")),
        Reg("SCR", 0x7, width=8),
    )

    def __init__(self, name: str, *, backend: CharBackend | None = None, clock_hz: int = PC_CLOCK_HZ,
                 reg_shift: int = 0) -> None:
        super().__init__(name)
        if reg_shift not in (0, 1, 2):
            raise PlatformError(f"{name}: reg_shift must be 0, 1 or 2, not {reg_shift}")
        if clock_hz <= 0:
            raise PlatformError(f"{name}: clock_hz must be positive, not {clock_hz}")
        self.backend: CharBackend = backend or NullBackend()
        self.clock_hz = clock_hz
        self.reg_shift = reg_shift
        self.size = 8 << reg_shift
        self.irq = self.output("irq")
        self._rx: deque[int] = deque()
        self._waiting: deque[int] = deque()    # input not yet accepted by the receiver
        self._timeout = OneShot(self._timed_out)
        self.backend.set_receiver(self.receive)
        self._clear_state()

    def _clear_state(self) -> None:
        self.dll = self.dlm = 0
        self.fcr = 0
        self.thre_pending = False      # THRE interrupt: set when THR empties, cleared by IIR read/THR write
        self.timed_out = False         # character timeout indication (data sheet, FIFO interrupt mode operation)
        self.overrun = False
        self.msr_delta = 0
        self._modem = self._modem_inputs(0)

    def attach(self, clock: Clock) -> None:
        super().attach(clock)
        attach_backend(self.backend, clock)

    def reset(self) -> None:
        self._clear_state()
        self._rx.clear()
        self._timeout.cancel()
        super().reset()

    # -- bus surface: registers at 1 << reg_shift spacing ---------------------
    def read(self, offset: int, size: int) -> int:
        return super().read(self._register(offset, size), 1)

    def write(self, offset: int, size: int, value: int) -> None:
        super().write(self._register(offset, size), 1, value & 0xFF)

    def _register(self, offset: int, size: int) -> int:
        stride = 1 << self.reg_shift
        if offset % stride:
            raise BusError(Response.ADDRESS_ERROR, detail=f"{self.name}: offset {offset:#x} is not a register "
                                                          f"(registers are {stride} bytes apart)")
        if size not in (1, stride):
            raise BusError(Response.BURST_ERROR, detail=f"{self.name}: {size}-byte access to "
                                                        f"{self.describe_offset(offset)}")
        return offset >> self.reg_shift

    def describe_offset(self, offset: int) -> str:
        return super().describe_offset(offset >> self.reg_shift)

    # -- registers -----------------------------------------------------------
    def _dlab(self) -> bool:
        return bool(self.regs.LCR & LCR_DLAB)

    def read_RBR_THR(self) -> int:
        if self._dlab():
            return self.dll
        if not self._rx:
            return 0
        value = self._rx.popleft()
        self.timed_out = False             # reading a character clears the timeout indication
        self._accept_waiting()
        self._restart_timeout()
        return value

    def write_RBR_THR(self, value: int) -> None:
        if self._dlab():
            self.dll = value
            self._restart_timeout()
            return
        self.thre_pending = False          # writing THR clears the THRE interrupt...
        if self.regs.MCR & MCR_LOOP:
            self._push_rx(value, overrun_allowed=True)
        else:
            self.backend.write(bytes((value,)))
        self.thre_pending = True           # ...and the instantaneous transmitter empties THR again

    def read_IER(self) -> int:
        return self.dlm if self._dlab() else self.regs.IER

    def write_IER(self, value: int) -> None:
        if self._dlab():
            self.dlm = value
            self._restart_timeout()
            return
        if value & IER_ETBEI and not self.regs.IER & IER_ETBEI:
            self.thre_pending = True       # enabling ETBEI with THR empty interrupts at once
        self.regs.IER = value & 0x0F       # bits 7:4 are always 0

    def read_IIR_FCR(self) -> int:
        source = self.interrupt_id()
        if source == IIR_THRE:
            self.thre_pending = False      # reading IIR while THRE is the source clears it (data sheet, IIR)
        return source | (IIR_FIFOS if self.fcr & FCR_FIFO_ENABLE else 0)

    def write_IIR_FCR(self, value: int) -> None:
        if not value & FCR_FIFO_ENABLE:
            value = 0                      # FCR0 must be set for the other bits to be written (data sheet, FCR bit 0)
        if (value ^ self.fcr) & FCR_FIFO_ENABLE or value & FCR_RX_RESET:
            self._rx.clear()               # changing FIFO enable clears both FIFOs (data sheet, FCR bit 0)
            self.timed_out = False
            self._timeout.cancel()
        self.fcr = value & 0xC9            # bits 1 and 2 self-clear; 5:4 reserved
        self._accept_waiting()

    def read_LSR(self) -> int:
        lsr = LSR_THRE | LSR_TEMT
        if self._rx:
            lsr |= LSR_DR
        if self.overrun:
            lsr |= LSR_OE
            self.overrun = False           # error bits clear when LSR is read
        return lsr

    def write_MCR(self, value: int) -> None:
        self.regs.MCR = value & 0x1F
        modem = self._modem_inputs(self.regs.MCR)
        changed = modem ^ self._modem
        for line, delta in ((MSR_CTS, MSR_DCTS), (MSR_DSR, MSR_DDSR), (MSR_DCD, MSR_DDCD)):
            if changed & line:
                self.msr_delta |= delta
        if changed & MSR_RI and not modem & MSR_RI:
            self.msr_delta |= MSR_TERI     # RI's trailing edge only
        self._modem = modem
        self._accept_waiting()

    def read_MSR(self) -> int:
        value = self._modem | self.msr_delta
        self.msr_delta = 0                 # reading MSR clears the delta bits
        return value

    @staticmethod
    def _modem_inputs(mcr: int) -> int:
        if not mcr & MCR_LOOP:
            return MSR_CTS | MSR_DSR | MSR_DCD
        loop = ((MCR_RTS, MSR_CTS), (MCR_DTR, MSR_DSR), (MCR_OUT1, MSR_RI), (MCR_OUT2, MSR_DCD))
        return sum(status for control, status in loop if mcr & control)

    def interrupt_id(self) -> int:
        """IIR bits 3:0: the highest-priority enabled interrupt, or IIR_NONE (data sheet, IIR)."""
        ier = self.regs.IER
        if ier & IER_ELSI and self.overrun:
            return IIR_LINE_STATUS
        if ier & IER_ERBFI and self._rx and len(self._rx) >= self._rx_trigger():
            return IIR_RX_DATA
        if ier & IER_ERBFI and self.timed_out:
            return IIR_TIMEOUT
        if ier & IER_ETBEI and self.thre_pending:
            return IIR_THRE
        if ier & IER_EDSSI and self.msr_delta:
            return IIR_MODEM
        return IIR_NONE

    def update(self) -> None:
        self.irq.set(self.interrupt_id() != IIR_NONE)

    # -- receive path --------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Called by the back-end with input bytes; they enter the FIFO as space allows."""
        self._waiting.extend(data)
        self._accept_waiting()
        self.update()

    def _accept_waiting(self) -> None:
        if self.regs.MCR & MCR_LOOP:
            return                         # loopback disconnects the serial input (data sheet, MCR bit 4)
        while self._waiting and len(self._rx) < self._rx_depth():
            self._push_rx(self._waiting.popleft(), overrun_allowed=False)

    def _push_rx(self, byte: int, overrun_allowed: bool) -> None:
        if len(self._rx) >= self._rx_depth():
            self.overrun = overrun_allowed  # the new character is lost, the FIFO kept (data sheet, LSR bit 1 OE)
            return
        self._rx.append(byte)
        self._restart_timeout()

    def _fifo_enabled(self) -> bool:
        return bool(self.fcr & FCR_FIFO_ENABLE)

    def _rx_depth(self) -> int:
        return FIFO_DEPTH if self._fifo_enabled() else 1

    def _rx_trigger(self) -> int:
        return RX_TRIGGER[self.fcr >> 6] if self._fifo_enabled() else 1

    # -- character timeout: 4 character times without FIFO activity (data sheet, FIFO interrupt mode) --
    def character_time(self) -> int:
        """One character (start, data, parity, stop bits) at the programmed baud rate, in ps."""
        lcr = self.regs.LCR
        word = 5 + (lcr & 3)
        half_bits = 2 * (1 + word + bool(lcr & LCR_PEN))
        half_bits += (3 if word == 5 else 4) if lcr & LCR_STB else 2    # 1.5 stop bits with 5-bit words
        divisor = (self.dlm << 8 | self.dll) or 1                        # an unprogrammed latch acts as 1
        return half_bits * 16 * divisor * SEC // (2 * self.clock_hz)

    def _restart_timeout(self) -> None:
        self._timeout.cancel()
        if self._clock is not None and self._rx and self._fifo_enabled():
            self._timeout.start(self.clock, 4 * self.character_time())

    def _timed_out(self) -> None:
        if self._rx:
            self.timed_out = True
            self.update()
