"""KVM exits every architecture shares, decoded from `kvm_run` into small values.

Architecture modules (`cosim.cpu.x86.exits`, `cosim.cpu.arm64.kvm_exits`)
decode their own exits and fall back to `decode_common`; their pure
`handle_exit` functions serve MMIO with `mmio_outcome` and hand the shared
fatal/stop exits to `common_outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._bus import Bus
from ..cpu._backend import ExitReason
from ._access import DirectAccesses, GuestAccesses
from ._uapi import Exit, SystemEvent

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
    """What the backend does next: `reason` None = keep running; `reply` = bytes for an IN / MMIO read."""

    reason: ExitReason | None
    reply: bytes | None = None
    detail: object = None


CONTINUE = Outcome(None)
INTERNAL_SUBERRORS = {1: "emulation failure", 2: "simultaneous exceptions", 3: "exit during event delivery",
                      4: "unexpected exit reason"}


def decode_common(run) -> Mmio | FailEntry | InternalError | SystemEventExit | OtherExit:  # run: 'struct kvm_run *'
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


def mmio_outcome(exit: Mmio, bus: Bus, accesses: GuestAccesses | DirectAccesses) -> Outcome:
    """An MMIO exit served on `bus` through `accesses`: a write continues, a read replies with the value's bytes."""
    if exit.write:
        accesses.write(bus, exit.address, exit.size, int.from_bytes(exit.data, "little"))
        return CONTINUE
    return Outcome(None, accesses.read(bus, exit.address, exit.size).to_bytes(exit.size, "little"))


def common_outcome(exit: FailEntry | InternalError | SystemEventExit | OtherExit) -> Outcome:
    """Failed entries, internal errors and unknown exits are errors; shutdown/reset events stop the run."""
    if isinstance(exit, FailEntry):
        return Outcome(ExitReason.ERROR, None, f"VM entry failed (KVM_EXIT_FAIL_ENTRY): hardware reason "
                                               f"{exit.reason:#x} on CPU {exit.cpu}; the guest state is invalid")
    if isinstance(exit, InternalError):
        what = INTERNAL_SUBERRORS.get(exit.suberror, f"suberror {exit.suberror}")
        data = " ".join(f"{d:#x}" for d in exit.data)
        return Outcome(ExitReason.ERROR, None, f"KVM internal error: {what}" + (f" (data {data})" if data else ""))
    if isinstance(exit, SystemEventExit):
        if exit.type in (SystemEvent.SHUTDOWN, SystemEvent.RESET):
            kind = "shutdown" if exit.type == SystemEvent.SHUTDOWN else "reset"
            return Outcome(ExitReason.STOP, None, (0, f"guest requested {kind} (KVM_EXIT_SYSTEM_EVENT)"))
        return Outcome(ExitReason.ERROR, None, f"guest system event {exit.type} (KVM_EXIT_SYSTEM_EVENT)")
    return Outcome(ExitReason.ERROR, None, f"unexpected {Exit.name(exit.reason)} from KVM")
