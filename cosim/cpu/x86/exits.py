"""KVM exits on x86: decoded from `kvm_run` into small values, handled by a pure function.

`decode(view)` reads the exit union once (through a `RunView` of kvm_run); `handle_exit(exit, ...)` decides what
happens, touching nothing but the buses it is given, so tests feed it fake
exits (STYLE.md #9). The backend copies `Outcome.reply` back into kvm_run; a
fatal exit raises `CpuError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._bus import Bus
from ...kvm._access import GuestAccesses
from ...kvm._exits import (CONTINUE, INTERNAL_SUBERRORS, FailEntry, InternalError, Mmio, OtherExit, Outcome,
                           SystemEventExit, common_outcome, decode_common, mmio_outcome)
from ...kvm._uapi import KVM_EXIT_IO_OUT, KVM_RUN_EXIT_UNION_OFFSET, CData, Exit, ffi
from ...kvm._x86 import ffi as x86_ffi
from .._backend import Breakpoint, CpuError, Idle, IdleKind

__all__ = ["PortIo", "Mmio", "Halt", "IrqWindow", "Shutdown", "Debug", "FailEntry", "InternalError", "SystemEventExit",
           "OtherExit", "KvmExit", "Outcome", "RunView", "decode", "handle_exit", "INTERNAL_SUBERRORS"]


# PortIo and Mmio (cosim.kvm._exits) are made on every device exit: plain slotted classes, cheaper than frozen ones.
@dataclass(slots=True)
class PortIo:
    port: int
    size: int
    count: int          # > 1 for string I/O (rep ins/outs)
    write: bool
    data: bytes = b""   # OUT: count * size bytes


@dataclass(frozen=True, slots=True)
class Halt:
    pass


@dataclass(frozen=True, slots=True)
class IrqWindow:
    pass


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


@dataclass(frozen=True, slots=True)
class Debug:
    """A guest-debug stop (KVM_EXIT_DEBUG): a hardware breakpoint or single step."""

    exception: int      # 1: #DB, 3: #BP
    pc: int
    dr6: int


KvmExit = PortIo | Mmio | Halt | IrqWindow | Shutdown | Debug | FailEntry | InternalError | SystemEventExit | OtherExit
_HALT, _WINDOW, _SHUTDOWN = Halt(), IrqWindow(), Shutdown()
_IDLE = Outcome(Idle(IdleKind.HLT))     # every idle guest's exit: made once


class RunView:
    """Views into one vCPU's kvm_run, taken once: the exit union members and the raw bytes.

    Safe: `run` points at the vCPU's kvm_run mapping of `size` bytes, which
    outlives this view (the backend drops both together).
    """

    __slots__ = ("run", "io", "mmio", "debug", "raw")

    def __init__(self, run: CData, size: int) -> None:
        self.run = run
        self.io = run.io
        self.mmio = run.mmio
        # The debug member of the exit union is x86's struct kvm_debug_exit_arch, at the union's offset.
        self.debug = x86_ffi.cast("struct kvm_debug_exit_arch *", x86_ffi.cast("char *", run) + KVM_RUN_EXIT_UNION_OFFSET)
        self.raw = ffi.buffer(run, size)


def decode(view: RunView) -> KvmExit:
    reason = view.run.exit_reason
    if reason == Exit.IO:
        io = view.io
        size, count = io.size, io.count
        if io.direction == KVM_EXIT_IO_OUT:
            # KVM put count * size bytes at data_offset inside the kvm_run mapping (api.rst KVM_EXIT_IO).
            offset = io.data_offset
            return PortIo(io.port, size, count, True, view.raw[offset:offset + size * count])
        return PortIo(io.port, size, count, False)
    if reason == Exit.MMIO:
        mmio = view.mmio
        length = mmio.len
        if mmio.is_write:
            return Mmio(mmio.phys_addr, length, True, bytes(ffi.buffer(mmio.data, length)))
        return Mmio(mmio.phys_addr, length, False)
    run = view.run
    if reason == Exit.HLT:
        return _HALT
    if reason == Exit.IRQ_WINDOW_OPEN:
        return _WINDOW
    if reason == Exit.SHUTDOWN:
        return _SHUTDOWN
    if reason == Exit.DEBUG:
        debug = view.debug
        return Debug(debug.exception, debug.pc, debug.dr6)
    return decode_common(run)


def handle_exit(exit: KvmExit, ports: Bus, memory: Bus, accesses: GuestAccesses) -> Outcome:
    """The x86 exit policy. Device accesses go through `accesses` (bus errors: all ones / dropped, warned once);
    a triple fault, a failed entry or an internal error raises CpuError."""
    if type(exit) is PortIo:
        size, count = exit.size, exit.count
        if exit.write:
            if count == 1:
                accesses.write(ports, exit.port, size, int.from_bytes(exit.data, "little"))
            else:
                for i in range(count):
                    accesses.write(ports, exit.port, size, int.from_bytes(exit.data[i * size:(i + 1) * size], "little"))
            return CONTINUE
        if count == 1:
            return Outcome(None, accesses.read(ports, exit.port, size).to_bytes(size, "little"))
        reply = b"".join(accesses.read(ports, exit.port, size).to_bytes(size, "little") for _ in range(count))
        return Outcome(None, reply)
    if isinstance(exit, Mmio):
        return mmio_outcome(exit, memory, accesses)
    if isinstance(exit, Halt):
        return _IDLE
    if isinstance(exit, IrqWindow):
        return CONTINUE
    if isinstance(exit, Shutdown):
        raise CpuError("triple fault: the guest took an exception it could not deliver (KVM_EXIT_SHUTDOWN)")
    if isinstance(exit, Debug):
        return Outcome(Breakpoint(exit.pc))
    return common_outcome(exit)
