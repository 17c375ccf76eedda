"""NS16550A through the bus, per the PC16550D data sheet."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim import Access, BusError, Response, SEC, Simulation, us
from cosim.chardev import BufferBackend
from cosim.models.ns16550 import (IIR_LINE_STATUS, IIR_MODEM, IIR_NONE, IIR_RX_DATA, IIR_THRE, IIR_TIMEOUT,
                                  Ns16550)
from cosim.testing import Harness

RBR, THR, DLL, IER, DLM, IIR, FCR, LCR, MCR, LSR, MSR, SCR = 0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7


@pytest.fixture
def uart(harness, sim):
    backend = BufferBackend(poll=us(1))
    dut = harness(Ns16550("com1", backend=backend), base=0x3F8)
    backend.attach(sim)
    return dut, backend


def rd(dut, reg):
    return dut.read(reg, 1)


def wr(dut, reg, value):
    dut.write(reg, value, 1)


def test_reset_values(uart):
    dut, _ = uart
    # Data sheet, reset states: IER 0, IIR 01h, LCR 0, MCR 0, LSR 60h; MSR shows a connected terminal.
    assert [rd(dut, r) for r in (IER, IIR, LCR, MCR, LSR, SCR)] == [0, 0x01, 0, 0, 0x60, 0]
    assert rd(dut, MSR) == 0xB0                              # CTS, DSR, DCD asserted; RI not
    assert not dut.device.irq.level


def test_register_access_types(uart):
    dut, _ = uart
    for reg in Ns16550.registers:
        if reg.access is Access.RO:
            before = rd(dut, reg.offset)
            wr(dut, reg.offset, 0xFF)
            assert rd(dut, reg.offset) == before, reg.name
    wr(dut, SCR, 0x5A)
    assert rd(dut, SCR) == 0x5A
    wr(dut, IER, 0xFF)
    assert rd(dut, IER) == 0x0F                              # IER bits 7:4 are always 0
    wr(dut, MCR, 0xFF)
    assert rd(dut, MCR) == 0x1F
    assert dut.status(LCR, size=2) is Response.BURST_ERROR


def test_divisor_latch_replaces_rbr_thr_and_ier_while_dlab_is_set(uart):
    dut, backend = uart
    wr(dut, IER, 0x05)
    wr(dut, LCR, 0x83)                                       # DLAB, 8 data bits
    wr(dut, DLL, 0x0C)
    wr(dut, DLM, 0x00)                                       # 9600 baud
    assert rd(dut, DLL) == 0x0C and rd(dut, DLM) == 0 and backend.output == b""
    wr(dut, LCR, 0x03)
    assert rd(dut, IER) == 0x05
    assert dut.device.character_time() == 10 * 16 * 12 * SEC // 1_843_200


def test_transmit_and_thre_interrupt(uart):
    dut, backend = uart
    irq = dut.probe(dut.device.irq)
    wr(dut, THR, ord("A"))
    assert backend.output == b"A" and not irq.level
    wr(dut, IER, 0x02)                                       # enabling ETBEI with THR empty interrupts
    assert irq.level and rd(dut, IIR) == IIR_THRE
    assert not irq.level and rd(dut, IIR) == IIR_NONE        # the IIR read cleared it (data sheet, IIR)
    wr(dut, THR, ord("B"))                                   # THR empties again at once
    assert irq.level and backend.output == b"AB"


def test_received_data_interrupt_at_the_fifo_trigger_level(uart):
    dut, backend = uart
    wr(dut, FCR, 0xC1)                                       # FIFOs on, trigger at 14 bytes
    wr(dut, IER, 0x01)
    backend.feed(b"x" * 13)
    dut.run(us(2))
    assert rd(dut, LSR) & 0x01 and not dut.device.irq.level
    backend.feed(b"y")
    dut.run(us(2))
    assert dut.device.irq.level and rd(dut, IIR) == 0xC0 | IIR_RX_DATA
    assert bytes(rd(dut, RBR) for _ in range(14)) == b"x" * 13 + b"y"
    assert not rd(dut, LSR) & 0x01 and not dut.device.irq.level


def test_rx_fifo_holds_16_and_the_rest_waits(uart):
    dut, backend = uart
    wr(dut, FCR, 0x01)
    backend.feed(bytes(range(20)))
    dut.run(us(2))
    assert len(dut.device._rx) == 16
    assert [rd(dut, RBR) for _ in range(20)] == list(range(20))
    assert not rd(dut, LSR) & 0x02                           # no overrun: input waited for room


def test_character_timeout_after_four_character_times(uart):
    dut, backend = uart
    wr(dut, FCR, 0xC1)
    wr(dut, LCR, 0x03)                                       # 8N1: 10 bits per character
    wr(dut, IER, 0x01)
    backend.feed(b"ab")
    dut.run(us(1))                                           # delivered at exactly 1 us
    arrived = dut.now
    char = 10 * 16 * SEC // 1_843_200                        # divisor latch unprogrammed: acts as 1
    dut.run(4 * char - 1)
    assert not dut.device.irq.level
    dut.run(1)
    dut.run(1)
    assert dut.now == arrived + 4 * char + 1
    assert dut.device.irq.level and rd(dut, IIR) == 0xC0 | IIR_TIMEOUT
    assert rd(dut, RBR) == ord("a")                          # reading a character clears it (data sheet, FIFO interrupt mode)
    assert not dut.device.irq.level


def test_iir_priority(uart):
    dut, _ = uart
    wr(dut, FCR, 0x01)
    wr(dut, MCR, 0x10)                                       # loopback
    wr(dut, IER, 0x0F)
    assert rd(dut, IIR) & 0x0F == IIR_THRE
    wr(dut, MCR, 0x13)                                       # RTS and DTR change: modem status delta
    for byte in range(17):                                   # the 17th overruns the FIFO
        wr(dut, THR, byte)
    assert rd(dut, IIR) & 0x0F == IIR_LINE_STATUS
    assert rd(dut, LSR) & 0x03 == 0x03                       # DR and OE; reading LSR clears OE
    assert rd(dut, IIR) & 0x0F == IIR_RX_DATA
    for _ in range(16):
        rd(dut, RBR)
    assert rd(dut, IIR) & 0x0F == IIR_THRE                   # ...and this read cleared THRE
    assert rd(dut, IIR) & 0x0F == IIR_MODEM
    # CTS and DSR (from RTS, DTR) set; DCTS, DDSR, DDCD: entering loopback dropped the terminal's lines.
    assert rd(dut, MSR) == 0x30 | 0x0B
    assert rd(dut, IIR) == 0xC0 | IIR_NONE


def test_loopback_mirrors_modem_lines_as_linux_probes_them(uart):
    dut, backend = uart
    wr(dut, MCR, 0x10 | 0x0A)                                # LOOP, RTS, OUT2 (drivers/tty/serial/8250)
    assert rd(dut, MSR) & 0xF0 == 0x90                       # CTS and DCD
    wr(dut, THR, 0x5A)
    assert rd(dut, RBR) == 0x5A and backend.output == b""
    backend.feed(b"q")                                       # the serial input is disconnected
    dut.run(us(2))
    assert not rd(dut, LSR) & 0x01
    wr(dut, MCR, 0x00)
    assert rd(dut, RBR) == ord("q")


def test_non_fifo_mode_has_a_one_byte_holding_register(uart):
    dut, backend = uart
    wr(dut, IER, 0x01)
    backend.feed(b"12")
    dut.run(us(2))
    assert dut.device.irq.level and rd(dut, IIR) == IIR_RX_DATA
    assert len(dut.device._rx) == 1
    assert rd(dut, RBR) == ord("1") and rd(dut, RBR) == ord("2")
    dut.run(us(1000))
    assert not dut.device.irq.level                          # no character timeout without FIFOs


def test_fifo_reset_clears_received_data(uart):
    dut, backend = uart
    wr(dut, FCR, 0x01)
    backend.feed(b"abc")
    dut.run(us(2))
    wr(dut, FCR, 0x03)                                       # RX FIFO reset (self-clearing bit)
    assert not rd(dut, LSR) & 0x01


def test_fcr_bits_need_fifo_enable(uart):
    dut, backend = uart
    wr(dut, FCR, 0xC0)                                       # trigger 14 without FCR0: not written
    wr(dut, IER, 0x01)
    backend.feed(b"z")
    dut.run(us(2))
    assert rd(dut, IIR) == IIR_RX_DATA                       # no FIFOs: one byte is enough
    wr(dut, FCR, 0xC1)
    assert rd(dut, IIR) == 0xC0 | IIR_NONE                   # enabling the FIFOs cleared them


def test_mmio_with_reg_shift_2(harness, sim):
    backend = BufferBackend(poll=us(1))
    dut = harness(Ns16550("uart", backend=backend, reg_shift=2), base=0x1000_0000)
    assert dut.device.size == 32
    assert dut.read(LSR * 4, 4) == 0x60 and dut.read(LSR * 4, 1) == 0x60
    dut.write(SCR * 4, 0xFFFF_FF33, 4)                       # only the low byte is a register
    assert dut.read(SCR * 4, 4) == 0x33
    dut.write(THR * 4, ord("M"), 4)
    assert backend.output == b"M"
    assert dut.status(LSR * 4 + 1, size=1) is Response.ADDRESS_ERROR
    assert dut.status(LSR * 4, size=2) is Response.BURST_ERROR


def test_bad_reg_shift_is_a_clear_error():
    from cosim import PlatformError

    with pytest.raises(PlatformError, match="reg_shift must be 0, 1 or 2"):
        Ns16550("uart", reg_shift=3)


regs = st.integers(0, 7)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(regs, st.one_of(st.none(), st.integers(0, 255)), st.binary(max_size=20)), max_size=40))
def test_random_accesses_keep_the_invariants(ops):
    sim = Simulation()
    backend = BufferBackend(poll=us(1))
    dut = Harness(sim, Ns16550("u", backend=backend))
    backend.attach(sim)
    for reg, value, data in ops:
        try:
            if value is None:
                assert 0 <= dut.read(reg, 1) <= 0xFF
            else:
                dut.write(reg, value, 1)
        except BusError:
            pytest.fail("8-bit accesses to registers 0-7 are always legal")
        if data:
            backend.feed(data)
        dut.run(us(50))
        u = dut.device
        assert len(u._rx) <= 16
        assert u.interrupt_id() in (IIR_NONE, IIR_LINE_STATUS, IIR_RX_DATA, IIR_TIMEOUT, IIR_THRE, IIR_MODEM)
        assert u.irq.level == (u.interrupt_id() != IIR_NONE)
