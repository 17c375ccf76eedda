"""Arm64 exit decoding from a fake kvm_run, and the pure exit policy fed fake exits."""

import logging

import pytest

from cosim import Bus, BusError, Response
from cosim.cpu import BUDGET_SPENT, CpuError, Idle, IdleKind, Stop
from cosim.cpu.arm64.kvm_exits import (ArmNisv, ExternalAbort, FailEntry, Interrupted, InternalError, Mmio, OtherExit,
                                       SystemEventExit, Wfx, decode, handle_exit)
from cosim.kvm._access import GuestAccesses
from cosim.kvm._arm64 import DEFAULT_WFX_EXIT, ffi
from cosim.kvm._uapi import KVM_RUN_EXIT_UNION_OFFSET, Exit, SystemEvent


class Register:
    """A one-register target that remembers writes."""

    name = "reg"

    def __init__(self, value=0):
        self.value = value
        self.writes = []

    def read(self, offset, size):
        return self.value >> (8 * (offset % 8)) & ((1 << 8 * size) - 1)

    def write(self, offset, size, value):
        self.writes.append((offset, size, value))


class Refusing:
    """A target that refuses every access, as a model does at an offset it does not implement."""

    name = "refusing"

    def read(self, offset, size):
        raise BusError(Response.ADDRESS_ERROR)

    def write(self, offset, size, value):
        raise BusError(Response.ADDRESS_ERROR)


@pytest.fixture
def bus():
    bus = Bus("sysbus")
    bus.map(0x0900_0000, 0x1000, Register(0x1122_3344_5566_7788))
    return bus


def fake_run(reason):
    run = ffi.new("struct kvm_run *")
    run.exit_reason = reason
    return run


def handle(exit, bus, inject_abort=True):
    accesses = GuestAccesses(logging.getLogger("test"), all_ones=False)     # as the Arm64 backend makes it
    return handle_exit(exit, bus=bus, accesses=accesses, inject_abort=inject_abort)


# -- decode ---------------------------------------------------------------------------
def test_decode_mmio_write_and_read():
    run = fake_run(Exit.MMIO)
    run.mmio.phys_addr, run.mmio.len, run.mmio.is_write = 0x0900_0018, 4, 1
    run.mmio.data[0:4] = [0x78, 0x56, 0x34, 0x12]
    assert decode(run, ran=True, wfx_exit=DEFAULT_WFX_EXIT) == Mmio(0x0900_0018, 4, True, b"\x78\x56\x34\x12")
    run.mmio.is_write = 0
    assert decode(run, ran=True, wfx_exit=DEFAULT_WFX_EXIT) == Mmio(0x0900_0018, 4, False)


def test_decode_wfx_exit_at_its_configured_number():
    run = fake_run(DEFAULT_WFX_EXIT)
    # kvm_run.wfx.esr sits at the start of the exit union (the seed patch's struct)
    ffi.cast("unsigned long long *", ffi.cast("char *", run) + KVM_RUN_EXIT_UNION_OFFSET)[0] = (1 << 26) | 1
    exit = decode(run, ran=True, wfx_exit=DEFAULT_WFX_EXIT)
    assert exit == Wfx((1 << 26) | 1) and exit.wfe
    assert isinstance(decode(run, ran=True, wfx_exit=40), OtherExit)   # another number: not the WFx exit
    assert decode(fake_run(40), ran=True, wfx_exit=40) == Wfx(0)


def test_decode_eintr_and_intr_are_interruptions():
    assert decode(fake_run(Exit.MMIO), ran=False, wfx_exit=DEFAULT_WFX_EXIT) == Interrupted()
    assert decode(fake_run(Exit.INTR), ran=True, wfx_exit=DEFAULT_WFX_EXIT) == Interrupted()


def test_decode_nisv_system_event_failures():
    run = fake_run(Exit.ARM_NISV)
    words = ffi.cast("unsigned long long *", ffi.cast("char *", run) + KVM_RUN_EXIT_UNION_OFFSET)
    words[0], words[1] = 0x93, 0x0900_0000
    assert decode(run, ran=True, wfx_exit=DEFAULT_WFX_EXIT) == ArmNisv(0x93, 0x0900_0000)
    run = fake_run(Exit.SYSTEM_EVENT)
    run.system_event.type = SystemEvent.RESET
    assert decode(run, ran=True, wfx_exit=DEFAULT_WFX_EXIT) == SystemEventExit(SystemEvent.RESET)
    run = fake_run(Exit.FAIL_ENTRY)
    run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu = 0x5, 3
    assert decode(run, ran=True, wfx_exit=DEFAULT_WFX_EXIT) == FailEntry(0x5, 3)
    run = fake_run(Exit.INTERNAL_ERROR)
    run.internal.suberror, run.internal.ndata, run.internal.data[0] = 1, 1, 0xAB
    assert decode(run, ran=True, wfx_exit=DEFAULT_WFX_EXIT) == InternalError(1, (0xAB,))


# -- handle_exit ------------------------------------------------------------------------
def test_mmio_read_replies_little_endian_from_the_bus(bus):
    outcome = handle(Mmio(0x0900_0000, 4, False), bus)
    assert outcome.reason is None and outcome.reply == bytes.fromhex("88776655")


def test_mmio_write_reaches_the_device_at_its_offset(bus):
    outcome = handle(Mmio(0x0900_0010, 2, True, b"\x34\x12"), bus)
    assert outcome.reason is None and outcome.reply is None
    assert bus.find(0x0900_0000).target.writes == [(0x10, 2, 0x1234)]


def test_unanswered_mmio_is_an_external_abort_where_kvm_can_inject_one(bus):
    outcome = handle(Mmio(0x2000_0000, 4, False), bus)
    assert outcome.reason is None and outcome.reply is None
    assert isinstance(outcome.abort, ExternalAbort) and outcome.abort.address == 0x2000_0000
    assert not outcome.abort.write


def test_an_access_the_model_refuses_is_raz_wi_not_an_abort(bus, caplog):
    bus.map(0x0A00_0000, 0x1000, Refusing())
    outcome = handle(Mmio(0x0A00_0004, 4, False), bus)
    assert outcome.reply == b"\0" * 4 and outcome.abort is None
    assert handle(Mmio(0x0A00_0004, 4, True, b"\1\0\0\0"), bus).abort is None
    assert "0xa000004" in caplog.text and "reads as zero" in caplog.text


def test_unanswered_mmio_reads_zero_without_abort_injection(bus, caplog):
    outcome = handle(Mmio(0x2000_0000, 4, False), bus, inject_abort=False)
    assert outcome.reply == b"\0" * 4 and outcome.abort is None
    assert handle(Mmio(0x2000_0000, 4, True, b"\0" * 4), bus, inject_abort=False).reason is None
    assert "0x20000000" in caplog.text


@pytest.mark.parametrize("esr, kind", [(0x0400_0000, IdleKind.WFI), (0x0400_0001, IdleKind.WFE)])
def test_wfx_exit_is_the_idle_exit(bus, esr, kind):
    assert handle(Wfx(esr), bus).reason == Idle(kind)


def test_interruption_asks_the_backend_about_the_budget(bus):
    assert handle(Interrupted(), bus).reason is BUDGET_SPENT


@pytest.mark.parametrize("kind, word", [(SystemEvent.SHUTDOWN, "PSCI SYSTEM_OFF"), (SystemEvent.RESET, "PSCI SYSTEM_RESET")])
def test_psci_shutdown_and_reset_stop_the_run(bus, kind, word):
    reason = handle(SystemEventExit(kind), bus).reason
    assert type(reason) is Stop and reason.status == 0 and word in reason.message


@pytest.mark.parametrize("exit, text", [
    (FailEntry(0x5, 0), "VM entry failed"),
    (InternalError(1, (0xAB,)), "emulation failure (data 0xab)"),
    (ArmNisv(0x93, 0x0900_0008), "0x9000008 with an instruction KVM cannot decode"),
    (SystemEventExit(SystemEvent.CRASH), "system event 3"),
    (OtherExit(Exit.X86_RDMSR), "KVM_EXIT_X86_RDMSR"),
])
def test_errors_raise_cpu_error_saying_what_happened(bus, exit, text):
    with pytest.raises(CpuError) as error:
        handle(exit, bus)
    assert text in str(error.value)
