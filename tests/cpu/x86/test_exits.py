"""handle_exit fed fake exits: routing, bus errors as guest-visible behaviour, fatal exits."""

import logging

import pytest

from cosim import Bus, BusError, Response
from cosim.cpu import Breakpoint, CpuError, Idle, IdleKind, Stop
from cosim.cpu.x86.exits import (Debug, FailEntry, Halt, InternalError, IrqWindow, Mmio, OtherExit, PortIo, RunView,
                                 Shutdown, SystemEventExit, decode, handle_exit)
from cosim.kvm._access import GuestAccesses
from cosim.kvm._uapi import KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT, Exit, ffi


class Recorder:
    """A target that logs accesses and answers reads with offset-derived data."""

    def __init__(self, name="dev", refuse_writes=False):
        self.name = name
        self.log = []
        self.refuse_writes = refuse_writes

    def read(self, offset, size):
        self.log.append(("read", offset, size))
        return (0x1122334455667788 + offset) & ((1 << 8 * size) - 1)

    def write(self, offset, size, value):
        if self.refuse_writes:
            raise BusError(Response.COMMAND_ERROR, detail="read-only register")
        self.log.append(("write", offset, size, value))


@pytest.fixture
def rig():
    ports, memory = Bus("io", width=16), Bus("sysbus")
    dev, mmio = Recorder("uart"), Recorder("regs")
    ports.map(0x3F8, 8, dev)
    memory.map(0x1000_0000, 0x1000, mmio)
    return ports, memory, dev, mmio, GuestAccesses(logging.getLogger("test.exits"))


def handle(rig, exit):
    ports, memory, _, _, accesses = rig
    return handle_exit(exit, ports=ports, memory=memory, accesses=accesses)


def test_out_goes_to_the_port_bus_as_offsets(rig):
    outcome = handle(rig, PortIo(0x3F9, 1, 1, True, b"\x5a"))
    assert outcome.reason is None and outcome.reply is None
    assert rig[2].log == [("write", 1, 1, 0x5A)]


def test_string_out_writes_each_element(rig):
    handle(rig, PortIo(0x3F8, 2, 3, True, b"\x01\x00\x02\x00\x03\x00"))
    assert rig[2].log == [("write", 0, 2, 1), ("write", 0, 2, 2), ("write", 0, 2, 3)]


def test_in_replies_little_endian_bytes_for_each_element(rig):
    outcome = handle(rig, PortIo(0x3FA, 2, 2, False))
    assert outcome.reply == (0x778A).to_bytes(2, "little") * 2 and outcome.reason is None


def test_mmio_read_and_write_reach_the_system_bus(rig):
    assert handle(rig, Mmio(0x1000_0010, 4, False)).reply == (0x55667798).to_bytes(4, "little")
    handle(rig, Mmio(0x1000_0020, 8, True, (0xDEADBEEF_01020304).to_bytes(8, "little")))
    assert rig[3].log[-1] == ("write", 0x20, 8, 0xDEADBEEF_01020304)


def test_unmapped_reads_are_all_ones_and_warn_once_per_address(rig, caplog):
    caplog.set_level(logging.WARNING)
    assert handle(rig, PortIo(0x2F0, 1, 1, False)).reply == b"\xff"
    assert handle(rig, PortIo(0x2F0, 4, 1, False)).reply == b"\xff" * 4
    assert handle(rig, Mmio(0xE000_0000, 8, False)).reply == b"\xff" * 8
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "io 0x2f0" in warnings[0] and "all ones" in warnings[0]
    assert "sysbus 0xe0000000" in warnings[1]


def test_unmapped_and_refused_writes_are_dropped_with_a_warning(rig, caplog):
    caplog.set_level(logging.WARNING)
    ports, memory, _, _, accesses = rig
    refusing = Recorder("rom", refuse_writes=True)
    memory.map(0x2000_0000, 0x1000, refusing)
    assert handle(rig, PortIo(0x80, 1, 1, True, b"\x01")).reason is None
    assert handle(rig, Mmio(0x2000_0004, 4, True, b"\0\0\0\0")).reason is None
    assert "command error" in accesses.failed[("sysbus", 0x2000_0004)]
    assert ("io", 0x80) in accesses.failed and all("ignored" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("exit, reason", [
    (Halt(), Idle(IdleKind.HLT)),
    (Debug(1, 0x9002, 0xFFFF0FF1), Breakpoint(0x9002)),
    (SystemEventExit(1), Stop(0, "guest requested shutdown (KVM_EXIT_SYSTEM_EVENT)")),
])
def test_exits_that_end_the_run(rig, exit, reason):
    assert handle(rig, exit).reason == reason


@pytest.mark.parametrize("exit, text", [
    (Shutdown(), "triple fault"),
    (FailEntry(0x80000021, 1), "hardware reason 0x80000021 on CPU 1"),
    (InternalError(1, (0x1234,)), "emulation failure (data 0x1234)"),
    (SystemEventExit(3), "system event 3"),
    (OtherExit(Exit.X86_RDMSR), "KVM_EXIT_X86_RDMSR"),
])
def test_fatal_exits_raise_cpu_error(rig, exit, text):
    with pytest.raises(CpuError) as error:
        handle(rig, exit)
    assert text in str(error.value)


def test_interrupt_window_keeps_running(rig):
    assert handle(rig, IrqWindow()).reason is None


def test_decode_reads_the_kvm_run_exit_union():
    run = ffi.new("struct kvm_run *")
    view = RunView(run, ffi.sizeof("struct kvm_run"))
    base = ffi.offsetof("struct kvm_run", "s")      # put OUT data somewhere inside the structure
    run.exit_reason = Exit.IO
    run.io.direction, run.io.size, run.io.port, run.io.count, run.io.data_offset = KVM_EXIT_IO_OUT, 2, 0x60, 2, base
    ffi.memmove(ffi.cast("char *", run) + base, b"\x01\x02\x03\x04", 4)
    assert decode(view) == PortIo(0x60, 2, 2, True, b"\x01\x02\x03\x04")
    run.io.direction = KVM_EXIT_IO_IN
    assert decode(view) == PortIo(0x60, 2, 2, False)
    run.exit_reason = Exit.MMIO
    run.mmio.phys_addr, run.mmio.len, run.mmio.is_write = 0xFEE0_0000, 4, 1
    run.mmio.data[0:4] = [1, 2, 3, 4]
    assert decode(view) == Mmio(0xFEE0_0000, 4, True, b"\x01\x02\x03\x04")
    run.exit_reason = Exit.INTERNAL_ERROR
    run.internal.suberror, run.internal.ndata = 3, 2
    run.internal.data[0:2] = [7, 8]
    assert decode(view) == InternalError(3, (7, 8))
    run.exit_reason = Exit.FAIL_ENTRY
    run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu = 0x21, 0
    assert decode(view) == FailEntry(0x21, 0)
    for reason, expected in ((Exit.HLT, Halt()), (Exit.SHUTDOWN, Shutdown()), (Exit.IRQ_WINDOW_OPEN, IrqWindow()),
                             (Exit.NOTIFY, OtherExit(Exit.NOTIFY))):
        run.exit_reason = reason
        assert decode(view) == expected
