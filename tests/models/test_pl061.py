"""PL061 through the bus, per Arm DDI 0190."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim import Simulation
from cosim.models.pl061 import Pl061
from cosim.testing import Harness

DIR, IS, IBE, IEV, IE, RIS, MIS, IC, AFSEL = 0x400, 0x404, 0x408, 0x40C, 0x410, 0x414, 0x418, 0x41C, 0x420


def data(mask: int) -> int:
    """GPIODATA's address for a mask of pins (TRM 3.3.1: address bits [9:2])."""
    return mask << 2


@pytest.fixture
def gpio(harness):
    return harness(Pl061("gpio"))


def test_reset_values_and_ids(gpio):
    for offset in (DIR, IS, IBE, IEV, IE, RIS, MIS, AFSEL, data(0xFF)):
        assert gpio.read(offset) == 0
    assert [gpio.read(0xFE0 + 4 * i) for i in range(4)] == [0x61, 0x10, 0x04, 0x00]
    assert [gpio.read(0xFF0 + 4 * i) for i in range(4)] == [0x0D, 0xF0, 0x05, 0xB1]


def test_outputs_drive_their_wires_through_the_address_mask(gpio):
    out = [gpio.probe(wire) for wire in gpio.device.pin_out]
    gpio.write(DIR, 0x0F)
    gpio.write(data(0x05), 0xFF)                 # only pins 0 and 2 change
    assert [p.level for p in out] == [True, False, True, False, False, False, False, False]
    assert gpio.read(data(0xFF)) == 0x05 and gpio.read(data(0x04)) == 0x04 and gpio.read(data(0x02)) == 0
    gpio.write(data(0x01), 0)
    assert gpio.read(data(0xFF)) == 0x04 and not out[0].level


def test_inputs_read_their_wires_and_ignore_the_latch(gpio):
    gpio.device.pin_in[6](True)
    gpio.write(data(0xFF), 0x01)                 # pin 0 is an input: the latch does not show
    assert gpio.read(data(0xFF)) == 0x40 and gpio.read(data(0x3F)) == 0


def test_reserved_bits_read_zero(gpio):
    for offset in (DIR, IS, IBE, IEV, IE, AFSEL):
        gpio.write(offset, 0xFFFF_FFFF)
        assert gpio.read(offset) == 0xFF


def test_rising_edge_latches_until_cleared(gpio):
    gpio.write(IEV, 0x01)                        # edge-sensitive (IS=0), rising
    gpio.write(IE, 0x01)
    gpio.device.pin_in[0](True)
    assert gpio.read(RIS) == 0x01 and gpio.read(MIS) == 0x01 and gpio.device.irq.level
    gpio.device.pin_in[0](False)                 # the edge stays latched
    assert gpio.read(RIS) == 0x01
    gpio.write(IC, 0x01)
    assert gpio.read(RIS) == 0 and not gpio.device.irq.level


def test_falling_edge_and_both_edges(gpio):
    gpio.write(IBE, 0x02)                        # pin 1: both edges; pin 0: falling (IEV=0)
    gpio.device.pin_in[0](True)
    gpio.device.pin_in[1](True)
    assert gpio.read(RIS) == 0x02
    gpio.device.pin_in[0](False)
    assert gpio.read(RIS) == 0x03
    assert gpio.read(MIS) == 0 and not gpio.device.irq.level      # masked


def test_level_sensitive_follows_the_pin(gpio):
    gpio.write(IS, 0x08)
    gpio.write(IEV, 0x08)                        # high level
    gpio.write(IE, 0x08)
    assert gpio.read(RIS) == 0
    gpio.device.pin_in[3](True)
    assert gpio.read(RIS) == 0x08 and gpio.device.irq.level
    gpio.write(IC, 0x08)                         # a level cannot be cleared
    assert gpio.read(RIS) == 0x08
    gpio.device.pin_in[3](False)
    assert gpio.read(RIS) == 0 and not gpio.device.irq.level
    gpio.write(IEV, 0)                           # low level
    assert gpio.read(RIS) == 0x08


def test_output_pins_raise_no_interrupts(gpio):
    gpio.write(DIR, 0x01)
    gpio.write(IE, 0x01)
    gpio.write(IBE, 0x01)
    gpio.device.pin_in[0](True)
    gpio.write(data(0x01), 1)
    assert gpio.read(RIS) == 0 and not gpio.device.irq.level


@settings(max_examples=50, deadline=None)
@given(direction=st.integers(0, 255), latch=st.integers(0, 255), levels=st.integers(0, 255), mask=st.integers(0, 255))
def test_data_reads_are_pins_under_the_address_mask(direction, latch, levels, mask):
    gpio = Harness(Simulation(), Pl061("gpio"))
    for pin in range(8):
        gpio.device.pin_in[pin](bool(levels >> pin & 1))
    gpio.write(DIR, direction)
    gpio.write(data(0xFF), latch)
    assert gpio.read(data(mask)) == ((latch & direction) | (levels & ~direction)) & mask
