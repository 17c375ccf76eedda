"""PL011 through the bus, per Arm DDI 0183."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim import Access, BusError, MHz, Response, SimulationError, us
from cosim.chardev import BufferBackend
from cosim.models.pl011 import FR_RXFE, FR_RXFF, FR_TXFE, INT_RT, INT_RX, INT_TX, Pl011

DR, RSR, FR, IBRD, FBRD, LCR_H, CR, IFLS, IMSC, RIS, MIS, ICR = (0x0, 0x4, 0x18, 0x24, 0x28, 0x2C, 0x30, 0x34,
                                                                  0x38, 0x3C, 0x40, 0x44)


@pytest.fixture
def uart(harness, sim):
    backend = BufferBackend(poll=us(1))
    dut = harness(Pl011("uart0", backend=backend))
    backend.attach(sim)
    dut.write(CR, 0x301)                 # UARTEN | TXE | RXE
    return dut, backend


def test_reset_values(harness):
    dut = harness(Pl011("uart0"))
    assert dut.read(FR) == FR_RXFE | FR_TXFE and dut.read(CR) == 0x300 and dut.read(IFLS) == 0x12
    assert [dut.read(0xFE0 + 4 * i) for i in range(4)] == [0x11, 0x10, 0x14, 0x00]
    assert [dut.read(0xFF0 + 4 * i) for i in range(4)] == [0x0D, 0xF0, 0x05, 0xB1]


def test_register_access_types(harness):
    dut = harness(Pl011("uart0"))
    for reg in Pl011.registers:
        if reg.access is Access.RO and reg.count == 1:
            before = dut.read(reg.offset)
            dut.write(reg.offset, 0xFFFF)
            assert dut.read(reg.offset) == before, reg.name
    dut.write(IBRD, 13)
    assert dut.read(IBRD) == 13
    assert dut.status(0x100) is Response.ADDRESS_ERROR


def test_reserved_bits_read_zero_and_unmodelled_fields_warn_once(uart, caplog):
    dut, _ = uart
    dut.write(CR, 0xFFFF)                # bits 6:3 reserved (TRM 3.3.8)
    dut.write(IFLS, 0xFFFF)              # bits 15:6 reserved (TRM 3.3.10)
    dut.write(IMSC, 0xFFFF)              # bits 15:11 reserved (TRM 3.3.12)
    assert (dut.read(CR), dut.read(IFLS), dut.read(IMSC)) == (0xFF87, 0x3F, 0x7FF)
    dut.write(CR, 0x0F01)                # DTR, RTS written again: already reported
    warned = sorted(r.getMessage().split(" is not")[0] for r in caplog.records)
    assert warned == [f"uart0: UARTCR.{name}" for name in ("CTSEn", "DTR", "Out1", "Out2", "RTS", "RTSEn", "SIREN", "SIRLP")]


def test_transmit_reaches_the_backend_and_raises_tx_interrupt(uart):
    dut, backend = uart
    irq = dut.probe(dut.device.irq)
    dut.write(IMSC, INT_TX)
    dut.write(DR, ord("A"))
    assert backend.output == b"A" and irq.level and dut.read(MIS) == INT_TX
    dut.write(ICR, INT_TX)
    assert not irq.level


def test_nothing_is_sent_while_the_uart_is_disabled(uart):
    dut, backend = uart
    dut.write(CR, 0x300)                 # TRM 3.3.8: UARTEN clear
    dut.write(DR, ord("x"))
    assert backend.output == b""


def test_receive_fifo_levels_and_flags(uart):
    dut, backend = uart
    dut.write(LCR_H, 0x70)               # FEN, 8 bits
    dut.write(IMSC, INT_RX)
    backend.feed(b"0123456789abcdef")    # 16 bytes = the 1/2 level of IFLS reset (TRM 3.3.10)
    dut.run(us(2))
    assert dut.read(RIS) & INT_RX and dut.device.irq.level
    assert not dut.read(FR) & FR_RXFE
    assert bytes(dut.read(DR) for _ in range(16)) == b"0123456789abcdef"
    assert dut.read(FR) & FR_RXFE and not dut.read(RIS) & INT_RX


def test_input_beyond_the_fifo_waits_instead_of_overrunning(uart):
    dut, backend = uart
    backend.feed(b"xyz")                 # FIFOs off: a 1-byte holding register
    dut.run(us(2))
    assert dut.read(FR) & FR_RXFF
    assert [dut.read(DR) for _ in range(3)] == [ord("x"), ord("y"), ord("z")]


def test_receive_timeout_after_32_bit_periods(uart):
    dut, backend = uart
    dut.write(IBRD, 13)                  # 24 MHz / (16 * 13.02) ~ 115200 baud
    dut.write(FBRD, 1)
    dut.write(LCR_H, 0x70)
    dut.write(IMSC, INT_RT)
    backend.feed(b"a")
    dut.run(us(2))
    arrived = dut.now - (dut.now - us(1))
    assert dut.device.baud() == MHz(24) * 64 / (16 * (13 * 64 + 1))
    bit = dut.device.baud().period
    dut.run(31 * bit)
    assert not dut.read(RIS) & INT_RT
    dut.run(2 * bit)
    assert dut.read(RIS) & INT_RT and dut.device.irq.level
    dut.read(DR)                         # emptying the FIFO clears the timeout (TRM 3.4.3)
    assert not dut.read(RIS) & INT_RT and arrived


def test_loopback_sends_tx_to_rx(uart):
    dut, backend = uart
    dut.write(CR, 0x381)                 # LBE
    dut.write(DR, 0x5A)
    assert backend.output == b"" and dut.read(DR) == 0x5A


def test_wrong_size_is_a_burst_error(uart):
    dut, _ = uart
    assert dut.status(IMSC, size=1) is Response.BURST_ERROR


offsets = st.sampled_from([DR, RSR, FR, IBRD, FBRD, LCR_H, CR, IFLS, IMSC, RIS, MIS, ICR, 0x48, 0x50, 0xFE0])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(offsets, st.sampled_from([1, 2, 4]), st.one_of(st.none(), st.integers(0, 2**32 - 1)),
                          st.binary(max_size=3)), max_size=30))
def test_random_accesses_keep_the_invariants(ops):
    from cosim import Simulation
    from cosim.testing import Harness

    sim = Simulation()
    backend = BufferBackend(poll=us(1))
    dut = Harness(sim, Pl011("u", backend=backend))
    backend.attach(sim)
    for offset, size, value, data in ops:
        try:
            if value is None:
                assert 0 <= dut.read(offset, size) < 1 << (8 * size)
            else:
                dut.write(offset, value & ((1 << (8 * size)) - 1), size)
        except BusError:
            pass
        if data:
            backend.feed(data)
        dut.run(us(3))
        u = dut.device
        assert len(u._rx) <= 32
        assert u.irq.level == bool(u.regs.UARTRIS & u.regs.UARTIMSC)


def test_bad_clock_is_a_configuration_error():
    from cosim import PlatformError

    with pytest.raises(PlatformError, match="uart0: frequency: frequency must be positive, not 0 Hz"):
        Pl011("uart0", frequency="0 Hz")


@pytest.mark.parametrize("imsc, ris_first", [(0, False), (INT_TX, True)])
def test_bytes_handed_over_in_bulk_do_what_their_uartdr_writes_do(harness, sim, imsc, ris_first):
    """`transmit` (a CPU backend's queued UARTDR writes, tx_only() holding) against the same bytes
    written one by one: the output, TXRIS and the interrupt output come out the same."""
    ends = []
    for bulk in (False, True):
        backend = BufferBackend(poll=us(1))
        dut = harness(Pl011("uart0", backend=backend))
        irq = dut.probe(dut.device.irq)
        dut.write(CR, 0x301)
        dut.write(IMSC, imsc)
        if ris_first:
            dut.write(DR, ord(">"))      # TXRIS set: further writes cannot change UARTINTR
        assert dut.device.tx_only()
        if bulk:
            dut.device.transmit(b"hello\n")
        else:
            for byte in b"hello\n":
                dut.write(DR, byte)
        ends.append((bytes(backend.output), dut.read(RIS), irq.level))
    assert ends[0] == ends[1]


def test_bulk_bytes_are_refused_when_a_write_would_do_more_than_send(harness):
    dut = harness(Pl011("uart0"))
    dut.write(CR, 0x381)                 # UARTEN | TXE | RXE | LBE: loopback feeds the receiver
    with pytest.raises(SimulationError, match="handed over in bulk"):
        dut.device.transmit(b"x")
