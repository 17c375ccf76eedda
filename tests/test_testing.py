"""The model test kit itself: registers by name, run boundaries, running until a wire changes."""

import pytest

from cosim import Memory, ms, us
from cosim.models.ns16550 import Ns16550
from cosim.models.sp804 import Sp804


def test_registers_by_name_reach_their_offsets(harness):
    dut = harness(Sp804("timer"), base=0x4000)
    load2 = dut.reg("TimerXLoad", 1)
    assert load2.offset == 0x20 and dut.reg("TimerPCellID", 3).offset == 0xFFC
    load2.write(0x1234)
    assert dut.read(0x20) == 0x1234 and load2.read() == 0x1234 and load2.debug_read() == 0x1234
    with pytest.raises(IndexError, match="timer: TimerXLoad has 2 copies, no index 2"):
        dut.reg("TimerXLoad", 2)
    with pytest.raises(KeyError, match="Sp804 has no register 'TimerLoad'"):
        dut.reg("TimerLoad")


def test_registers_by_name_follow_a_device_s_offset_translation(harness):
    dut = harness(Ns16550("uart", reg_shift=2))
    scr = dut.reg("SCR")
    assert scr.offset == 0x1C
    scr.write(0x5A)
    assert dut.read(0x1C, 1) == 0x5A and scr.read() == 0x5A


def test_reg_needs_a_register_bank(harness):
    with pytest.raises(TypeError, match="ram: Harness.reg needs a RegisterDevice, not a Memory"):
        harness(Memory("ram", 0x1000)).reg("X")


def test_run_leaves_events_at_the_end_pending_unless_inclusive(harness):
    dut = harness(Sp804("timer"))
    dut.reg("TimerXLoad").write(10)
    dut.reg("TimerXControl").write(0xE2)                     # periodic, interrupt, 32-bit: zero after 10 us
    dut.run(us(10))
    assert dut.now == us(10) and not dut.device.timint1.level
    dut.run(0, inclusive=True)
    assert dut.now == us(10) and dut.device.timint1.level


def test_run_until_stops_at_the_instant_the_wire_changes(harness):
    dut = harness(Sp804("timer"))
    dut.reg("TimerXLoad").write(25)
    dut.reg("TimerXControl").write(0xE2)
    assert dut.run_until(dut.device.timint1, within=ms(1)) == us(25) and dut.now == us(25)
    assert dut.run_until(dut.device.timint1, within=0) == us(25)            # already there: no time passes
    dut.reg("TimerXIntClr").write(1)
    assert dut.run_until(dut.device.timint1, False, within=0) == us(25)


def test_run_until_fails_instead_of_hanging(harness):
    dut = harness(Sp804("timer"))
    with pytest.raises(AssertionError, match=r"timer.timint1 is still low at 1 ms, 1 ms after run_until started"):
        dut.run_until(dut.device.timint1, within=ms(1))                    # nothing scheduled at all
    dut.reg("TimerXLoad").write(2000)
    dut.reg("TimerXControl").write(0xE2)                                   # zero at 3 ms
    with pytest.raises(AssertionError, match=r"still low at 2 ms, 1 ms after"):
        dut.run_until(dut.device.timint1, within=ms(1))
    assert dut.run_until(dut.device.timint1, within=ms(1)) == ms(3)
