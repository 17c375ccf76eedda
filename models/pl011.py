"""Arm PrimeCell UART (PL011), after the Technical Reference Manual, Arm DDI 0183 (r1p5).

Design choices, documented once here:
- Transmission is instantaneous: a byte written to UARTDR reaches the back-end
  at once and the transmit FIFO is always empty (as QEMU's model does). That
  keeps console output cheap; the TX interrupt is raised on every write, which
  is what a driver waiting for FIFO space expects (TRM 3.4.3 UARTTXINTR).
- Received bytes wait in the back-end until the RX FIFO has room, so typed input
  is never lost to an overrun.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

from cosim import Access, Clock, Field, Frequency, Hz, MHz, OneShot, Reg, RegisterDevice, SimulationError
from cosim.chardev import CharBackend, NullBackend, attach_backend
from cosim.fdt import DeviceTree, Node

__all__ = ["Pl011"]

FIFO_DEPTH = 32  # r1p5: 32-entry FIFOs (TRM 2.4.2)
# UARTIFLS level select -> fraction of the FIFO in eighths (TRM 3.3.10).
_IFLS_EIGHTHS = {0: 1, 1: 2, 2: 4, 3: 6, 4: 7}
_DEFAULT_BAUD = Hz(115_200)


def _interrupt_bits(modem: str, other: str) -> tuple[Field, ...]:
    """UARTIMSC/RIS/MIS/ICR share a layout (TRM 3.3.12-3.3.15); the manual's names differ by suffix."""
    return (tuple(Field(f"{name}{modem}", lsb) for lsb, name in enumerate(("RI", "CTS", "DCD", "DSR")))
            + tuple(Field(f"{name}{other}", lsb) for lsb, name in enumerate(("RX", "TX", "RT", "FE", "PE", "BE", "OE"), 4)))


class Pl011(RegisterDevice):
    """Arm PL011 UART (DDI 0183) with 32-byte FIFOs and the PrimeCell ID registers Linux probes.

    Interrupts:
      irq: UARTINTR, the OR of the masked interrupt status (UARTMIS).
    Properties:
      backend: a CharBackend for the console (default: output discarded).
      frequency: UARTCLK, for the baud rate and the receive timeout (default 24 MHz; a Frequency or text such as '24MHz').
    """

    model: ClassVar[str] = "pl011"
    size: ClassVar[int] = 0x1000
    compatible: ClassVar[tuple[str, ...]] = ("arm,pl011", "arm,primecell")
    dt_name: ClassVar[str] = "pl011"
    registers = (
        # Linux's amba-pl011 driver uses 16-bit accesses (readw/writew) for every register.
        Reg("UARTDR", 0x000, sizes=(1, 2, 4), doc="data: read pops the RX FIFO, write transmits"),
        Reg("UARTRSR_ECR", 0x004, sizes=(1, 2, 4), doc="receive status (read) / error clear (write)"),
        Reg("UARTFR", 0x018, access=Access.RO, reset=0x90, sizes=(1, 2, 4),          # RXFE | TXFE
            fields=(Field("BUSY", 3), Field("RXFE", 4), Field("TXFF", 5), Field("RXFF", 6), Field("TXFE", 7))),
        Reg("UARTILPR", 0x020, sizes=(1, 2, 4)),
        Reg("UARTIBRD", 0x024, sizes=(2, 4)),
        Reg("UARTFBRD", 0x028, sizes=(1, 2, 4)),
        Reg("UARTLCR_H", 0x02C, sizes=(1, 2, 4), fields=(Field("BRK", 0, tagged=True), Field("PEN", 1), Field("EPS", 2),
                                                          Field("STP2", 3), Field("FEN", 4), Field("WLEN", 5, 2), Field("SPS", 7))),
        # TRM 3.3.8: IrDA (SIREN, SIRLP) and the modem lines are not modelled; bits 6:3 are reserved.
        Reg("UARTCR", 0x030, reset=0x300, sizes=(2, 4), fields=(
            Field("UARTEN", 0), Field("SIREN", 1, tagged=True), Field("SIRLP", 2, tagged=True), Field("LBE", 7),
            Field("TXE", 8), Field("RXE", 9), Field("DTR", 10, tagged=True), Field("RTS", 11, tagged=True),
            Field("Out1", 12, tagged=True), Field("Out2", 13, tagged=True), Field("RTSEn", 14, tagged=True),
            Field("CTSEn", 15, tagged=True))),
        Reg("UARTIFLS", 0x034, reset=0x12, sizes=(1, 2, 4), fields=(Field("TXIFLSEL", 0, 3), Field("RXIFLSEL", 3, 3))),
        Reg("UARTIMSC", 0x038, sizes=(2, 4), fields=_interrupt_bits("MIM", "IM")),
        Reg("UARTRIS", 0x03C, access=Access.RO, sizes=(2, 4), fields=_interrupt_bits("RMIS", "RIS")),
        Reg("UARTMIS", 0x040, access=Access.RO, sizes=(2, 4), fields=_interrupt_bits("MMIS", "MIS")),
        Reg("UARTICR", 0x044, access=Access.WO, sizes=(2, 4), fields=_interrupt_bits("MIC", "IC")),
        # TRM 3.3.16: DMA is not modelled.
        Reg("UARTDMACR", 0x048, sizes=(1, 2, 4), fields=(Field("RXDMAE", 0, tagged=True), Field("TXDMAE", 1, tagged=True),
                                                          Field("DMAONERR", 2, tagged=True))),
        # PrimeCell identification (TRM 3.3.17-3.3.24): part 0x011, designer 0x41 (Arm), revision 1.
        Reg("UARTPeriphID", 0xFE0, count=4, access=Access.RO, reset=(0x11, 0x10, 0x14, 0x00)),
        Reg("UARTPCellID", 0xFF0, count=4, access=Access.RO, reset=(0x0D, 0xF0, 0x05, 0xB1)),
    )

    def __init__(self, name: str, *, backend: CharBackend | None = None, frequency: Frequency | str = MHz(24)) -> None:
        super().__init__(name)
        self.backend: CharBackend = backend or NullBackend()
        self.frequency = self.frequency_of(frequency)
        self.irq = self.output("irq")
        self._rx: deque[int] = deque()
        self._waiting: deque[int] = deque()   # input not yet accepted by the FIFO
        self._timeout = OneShot(self._timed_out)
        self.backend.set_receiver(self.receive)

    def attach(self, clock: Clock) -> None:
        super().attach(clock)
        attach_backend(self.backend, clock)

    def dt_node(self, node: Node, tree: DeviceTree) -> None:
        clock = tree.clock(self.frequency)
        node.set("compatible", list(self.compatible)).set("interrupts", tree.interrupts(self.irq))
        node.set("clocks", [clock, clock]).set("clock-names", ["uartclk", "apb_pclk"])

    def reset(self) -> None:
        self._rx.clear()
        self._timeout.cancel()
        super().reset()

    # -- registers ---------------------------------------------------------
    def read_UARTDR(self) -> int:
        return self._rx[0] if self._rx else 0    # no framing/parity errors are modelled: bits 11:8 read 0

    def after_read_UARTDR(self, value: int) -> None:
        if not self._rx:
            return
        self._rx.popleft()
        self._accept_waiting()
        if self._rx:
            self._restart_timeout()        # TRM 3.4.3: reading restarts the timeout count
        else:
            self._timeout.cancel()
            self.regs.UARTRIS &= ~INT_RT   # an empty FIFO clears the receive timeout
        if len(self._rx) < self._rx_trigger():
            self.regs.UARTRIS &= ~INT_RX

    def write_UARTDR(self, value: int) -> None:
        cr = self.regs.UARTCR
        if not (cr & CR_UARTEN and cr & CR_TXE):
            return                          # TRM 3.3.8: data is only sent when UARTEN and TXE are set
        byte = value & 0xFF
        if cr & CR_LBE:
            self._push_rx(byte)             # loopback: TX feeds RX internally
        else:
            self.backend.write(bytes((byte,)))
        self.regs.UARTRIS |= INT_TX

    def tx_only(self) -> bool:
        """Whether a UARTDR write now would only send its byte and set TXRIS: enabled to send, no
        loopback, and UARTINTR cannot change (TXIM clear, or TXRIS already set). A CPU backend may
        then queue such writes and hand them over in order before anything else reaches the UART
        (the software Arm64 CPU does: docs/cpu-arm64.md)."""
        cr, regs = self.regs.UARTCR, self.regs
        return bool(cr & CR_UARTEN and cr & CR_TXE and not cr & CR_LBE
                    and (not regs.UARTIMSC & INT_TX or regs.UARTRIS & INT_TX))

    def transmit(self, data: bytes) -> None:
        """The UARTDR writes of `data`'s bytes, made while `tx_only()` held (a CPU backend queued them):
        each would only send its byte and set TXRIS, so the bytes reach the back-end in one write (a
        console then writes once, not once a byte) and the interrupt output stays as it was."""
        if not self.tx_only():
            raise SimulationError(f"{self.name}: UARTDR writes handed over in bulk while they do more than send")
        self.backend.write(data)
        self.regs.UARTRIS |= INT_TX
        self.update()

    def read_UARTRSR_ECR(self) -> int:
        return 0

    def write_UARTRSR_ECR(self, value: int) -> None:
        pass                                # clears the (never set) error flags

    def read_UARTFR(self) -> int:
        fr = FR_TXFE
        if not self._rx:
            fr |= FR_RXFE
        if len(self._rx) >= self._rx_depth():
            fr |= FR_RXFF
        return fr

    def read_UARTMIS(self) -> int:
        return self.regs.UARTRIS & self.regs.UARTIMSC

    def write_UARTICR(self, value: int) -> None:
        self.regs.UARTRIS &= ~value

    def write_UARTLCR_H(self, value: int) -> None:
        if (value ^ self.regs.UARTLCR_H) & LCR_H_FEN:
            self._rx.clear()                # TRM: changing FEN flushes the FIFOs
        self.regs.UARTLCR_H = value
        self._accept_waiting()

    def write_UARTCR(self, value: int) -> None:
        self.regs.UARTCR = value
        self._accept_waiting()

    def update(self) -> None:
        self.irq.set(bool(self.regs.UARTRIS & self.regs.UARTIMSC))

    # -- receive path ------------------------------------------------------
    def receive(self, data: bytes) -> None:
        """Called by the back-end with input bytes; they enter the FIFO as space allows."""
        self._waiting.extend(data)
        self._accept_waiting()
        self.update()

    def _accept_waiting(self) -> None:
        cr = self.regs.UARTCR
        if not (cr & CR_UARTEN and cr & CR_RXE):
            return
        while self._waiting and len(self._rx) < self._rx_depth():
            self._push_rx(self._waiting.popleft())

    def _push_rx(self, byte: int) -> None:
        self._rx.append(byte)
        if len(self._rx) >= self._rx_trigger():
            self.regs.UARTRIS |= INT_RX
        self._restart_timeout()

    def _rx_depth(self) -> int:
        return FIFO_DEPTH if self.regs.UARTLCR_H & LCR_H_FEN else 1

    def _rx_trigger(self) -> int:
        if not self.regs.UARTLCR_H & LCR_H_FEN:
            return 1
        eighths = _IFLS_EIGHTHS.get(_RXIFLSEL.get(self.regs.UARTIFLS), 4)
        return FIFO_DEPTH * eighths // 8

    # -- receive timeout (TRM 3.4.3 UARTRTINTR: 32 bit periods without data) --
    def baud(self) -> Frequency:
        """The bit rate from UARTIBRD/UARTFBRD: UARTCLK / (16 * divisor) (115200 baud if never programmed)."""
        divisor64 = self.regs.UARTIBRD * 64 + self.regs.UARTFBRD    # baud divisor in 1/64ths
        if divisor64 == 0:
            return _DEFAULT_BAUD
        return self.frequency * 4 / divisor64                     # 64 / 16 = 4

    def _restart_timeout(self) -> None:
        if self._clock is not None:
            self._timeout.start(self.clock, self.baud().duration(32))

    def _timed_out(self) -> None:
        if self._rx:
            self.regs.UARTRIS |= INT_RT
            self.update()


# Bits the behaviour above tests, from the declarations.
_FR, _CR, _IM = (Pl011.register(name).bits for name in ("UARTFR", "UARTCR", "UARTIMSC"))
FR_BUSY, FR_RXFE, FR_TXFF, FR_RXFF, FR_TXFE = (f.mask for f in (_FR.BUSY, _FR.RXFE, _FR.TXFF, _FR.RXFF, _FR.TXFE))
CR_UARTEN, CR_LBE, CR_TXE, CR_RXE = (f.mask for f in (_CR.UARTEN, _CR.LBE, _CR.TXE, _CR.RXE))
INT_RX, INT_TX, INT_RT = _IM.RXIM.mask, _IM.TXIM.mask, _IM.RTIM.mask
LCR_H_FEN = Pl011.register("UARTLCR_H").bits.FEN.mask
_RXIFLSEL = Pl011.register("UARTIFLS").bits.RXIFLSEL
