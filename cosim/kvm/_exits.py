"""KVM exits every architecture shares, decoded from `kvm_run` into small values.

Architecture modules (`cosim.cpu.x86.exits`, `cosim.cpu.arm64.kvm_exits`)
decode their own exits and fall back to `decode_common`; their pure
`handle_exit` functions serve MMIO with `mmio_outcome` and hand the shared
fatal/stop exits to `common_outcome`. A fatal exit raises `CpuError`; the
backend adds the PC and the registers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._bus import Bus
from ..cpu._backend import CpuError, ExitReason, Stop
from ._access import GuestAccesses
from ._uapi import CData, Exit, SystemEvent

__all__ = ["Mmio", "FailEntry", "InternalError", "SystemEventExit", "OtherExit", "Outcome", "CONTINUE",
           "INTERNAL_SUBERRORS", "decode_common", "common_outcome", "mmio_outcome"]


# Made on every device exit: a plain slotted class, cheaper to build than a frozen one.
@dataclass(slots=True)
class Mmio:
    address: int
    size: int
    write: bool
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class FailEntry:
    reason: int
    cpu: int


@dataclass(frozen=True, slots=True)
class InternalError:
    suberror: int
    data: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SystemEventExit:
    type: int


@dataclass(frozen=True, slots=True)
class OtherExit:
    reason: int


# Made on every device read (the reply): plain slotted, like Mmio. Treated as a value: never changed once made.
@dataclass(slots=True)
class Outcome:
    """What the backend does next: `reason` None = keep running, else end the run with it;
    `reply` = bytes for an IN / MMIO read; `abort` = an exception for the guest to take in
    place of the access (arm64: `cosim.cpu.arm64.kvm_exits.ExternalAbort`)."""

    reason: ExitReason | None
    reply: bytes | None = None
    abort: object = None


CONTINUE = Outcome(None)
INTERNAL_SUBERRORS = {1: "emulation failure", 2: "simultaneous exceptions", 3: "exit during event delivery",
                      4: "unexpected exit reason"}


def decode_common(run: CData) -> Mmio | FailEntry | InternalError | SystemEventExit | OtherExit:
    """The exits whose kvm_run layout is the same on every architecture."""
    reason = run.exit_reason
    if reason == Exit.MMIO:
        mmio = run.mmio
        length = mmio.len
        return Mmio(mmio.phys_addr, length, bool(mmio.is_write), bytes(mmio.data[0:length]) if mmio.is_write else b"")
    if reason == Exit.FAIL_ENTRY:
        return FailEntry(run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu)
    if reason == Exit.INTERNAL_ERROR:
        internal = run.internal
        return InternalError(internal.suberror, tuple(internal.data[0:min(internal.ndata, 16)]))
    if reason == Exit.SYSTEM_EVENT:
        return SystemEventExit(run.system_event.type)
    return OtherExit(reason)


def mmio_outcome(exit: Mmio, bus: Bus, accesses: GuestAccesses) -> Outcome:
    """An MMIO exit served on `bus` through `accesses`: a write continues, a read replies with the value's bytes."""
    if exit.write:
        accesses.write(bus, exit.address, exit.size, int.from_bytes(exit.data, "little"))
        return CONTINUE
    return Outcome(None, accesses.read(bus, exit.address, exit.size).to_bytes(exit.size, "little"))


def common_outcome(exit: FailEntry | InternalError | SystemEventExit | OtherExit) -> Outcome:
    """Shutdown/reset events stop the run; failed entries, internal errors and unknown exits raise CpuError."""
    if isinstance(exit, SystemEventExit) and exit.type in (SystemEvent.SHUTDOWN, SystemEvent.RESET):
        kind = "shutdown" if exit.type == SystemEvent.SHUTDOWN else "reset"
        return Outcome(Stop(0, f"guest requested {kind} (KVM_EXIT_SYSTEM_EVENT)"))
    if isinstance(exit, FailEntry):
        raise CpuError(f"VM entry failed (KVM_EXIT_FAIL_ENTRY): hardware reason {exit.reason:#x} on CPU "
                       f"{exit.cpu}; the guest state is invalid")
    if isinstance(exit, InternalError):
        what = INTERNAL_SUBERRORS.get(exit.suberror, f"suberror {exit.suberror}")
        data = " ".join(f"{d:#x}" for d in exit.data)
        raise CpuError(f"KVM internal error: {what}" + (f" (data {data})" if data else ""))
    if isinstance(exit, SystemEventExit):
        raise CpuError(f"guest system event {exit.type} (KVM_EXIT_SYSTEM_EVENT)")
    raise CpuError(f"unexpected {Exit.name(exit.reason)} from KVM")
