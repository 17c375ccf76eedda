"""Sim-control through the bus, per the register map in docs/sim-control.md."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim import Access, BusError, PlatformError, Response, Simulation, ns, us
from cosim.chardev import BufferBackend
from cosim.models.simctl import SIMCTL_ID, SimControl
from cosim.testing import Harness

ID, PUTC, EXIT, RESULT, TIME_LO, TIME_HI = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14


@pytest.fixture
def ctl(harness):
    log = BufferBackend()
    return harness(SimControl("simctl", log=log)), log


def test_reset_values_and_access_types(ctl):
    dut, _ = ctl
    assert dut.read(ID) == SIMCTL_ID == int.from_bytes(b"CSIM", "little")
    for reg in SimControl.registers:
        if reg.access is Access.WO:
            assert dut.read(reg.offset) == 0, reg.name
    dut.write(ID, 0)
    assert dut.read(ID) == SIMCTL_ID
    assert dut.status(0x18) is Response.ADDRESS_ERROR


def test_putc_appends_the_low_byte_with_narrow_writes(ctl):
    dut, log = ctl
    dut.write(PUTC, 0x1234_5641)                 # 'A' in the low byte
    dut.write(PUTC, ord("b"), size=1)            # x86 outb
    dut.write(PUTC, ord("\n"), size=2)
    assert log.output == b"Ab\n"


def test_default_log_is_line_buffered_to_stdout_and_flushed_at_close(sim, capsys):
    dut = Harness(sim, SimControl("simctl"))
    for byte in b"one\ntw":
        dut.write(PUTC, byte)
    assert capsys.readouterr().out == "[simctl] one\n"
    sim.close()
    assert capsys.readouterr().out == "[simctl] tw\n"


def test_exit_ends_the_run_with_the_status(ctl, sim):
    dut, _ = ctl
    dut.run(us(5))
    dut.write(EXIT, 7, size=1)
    later = []
    sim.schedule(0, lambda: later.append(sim.now))
    summary = sim.run(until=us(100))
    assert summary.status == 7 and summary.stop.time == us(5) and "SIMCTL_EXIT" in summary.stop.reason
    assert later == [] and sim.now == us(5)         # the stop comes before other work due at once


def test_results_are_kept_in_order_and_shown_in_the_summary(ctl, sim):
    dut, _ = ctl
    assert "simctl test results" not in sim.run(until=ns(1)).extra
    for code in (0, 0x2A, 0, 3):
        dut.write(RESULT, code)
    assert dut.device.results == [0, 0x2A, 0, 3] and not dut.device.passed
    row = sim.run(until=ns(2)).extra["simctl test results"]
    assert row == "2 passed, 2 failed (#2: code 0x2a, #4: code 0x3)"
    dut.device.reset()
    dut.write(RESULT, 0)
    assert dut.device.passed


def test_time_reads_nanoseconds_and_lo_latches_hi(ctl, sim):
    dut, _ = ctl
    dut.run(ns(5 << 32) + ns(123))               # past 2^32 ns, so HI is non-zero
    assert dut.read(TIME_LO) == 123 and dut.read(TIME_HI) == 5
    dut.run(ns(1 << 32))
    assert dut.read(TIME_HI) == 5                 # still the latched value
    dut.read(TIME_LO)
    assert dut.read(TIME_HI) == 6


def test_needs_a_full_simulation():
    class JustAClock:
        now = 0

    with pytest.raises(PlatformError, match="needs the full Simulation"):
        SimControl("s").attach(JustAClock())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([ID, PUTC, RESULT, TIME_LO, TIME_HI, 0x18, EXIT]), st.sampled_from([1, 2, 4]),
                          st.one_of(st.none(), st.integers(0, 2**32 - 1)), st.integers(0, 10**6)), max_size=30))
def test_random_accesses_keep_the_invariants(ops):
    sim = Simulation()
    log = BufferBackend()
    dut = Harness(sim, SimControl("s", log=log))
    results = 0
    for offset, size, value, wait in ops:
        try:
            if value is None:
                assert 0 <= dut.read(offset, size) < 1 << (8 * size)
            else:
                dut.write(offset, value & ((1 << 8 * size) - 1), size)
                results += offset == RESULT
        except BusError as error:
            assert error.status in (Response.ADDRESS_ERROR, Response.BURST_ERROR)
        if sim.stop_request is None:
            dut.run(wait)
    assert len(dut.device.results) == results and len(log.output) <= len(ops)
    assert dut.read(ID) == SIMCTL_ID
