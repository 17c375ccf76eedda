"""Know the host: the guest's instruction rate under KVM, next to the same loop run natively.

The calibration guest is a counted loop (`mov ecx, N; 1: dec ecx; jnz 1b; hlt`,
2N + 2 instructions) in 64-bit long mode in a throw-away VM; the native
reference is the same loop as a function in an executable host page. N
doubles until a run takes `min_seconds` of thread CPU time, so the figure is
good on fast and slow hosts alike. The guest rate is the instructions-per-
second figure time-based budget sources need; a ratio far below 1 means KVM
is not hardware accelerated (nested KVM emulating its guests, for instance).
A second guest that does nothing but `out` measures the CPU time one exit
costs inside KVM_RUN, which those sources do not count as guest progress, and
a third checks that KVM honours interrupt-window requests. All three share
one throw-away VM.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ...kvm._system import DEFAULT_DEVICE, Vcpu, scratch_vm
from ...kvm._uapi import Exit
from ...loaders.x86 import long_mode
from .state import X86State, set_cpuid

__all__ = ["Calibration", "calibrate", "guest_rate", "native_rate", "LOOP_CODE", "ACCELERATION_THRESHOLD"]

CODE_ADDRESS = 0x8000
RAM_SIZE = 0x20_0000
# A guest running below this fraction of the native rate is not hardware accelerated.
ACCELERATION_THRESHOLD = 0.1


def LOOP_CODE(iterations: int) -> bytes:  # noqa: N802 (reads like the constant it is)
    """mov ecx, N; 1: dec ecx; jnz 1b; hlt — identical in 32- and 64-bit mode."""
    return b"\xb9" + struct.pack("<I", iterations) + b"\xff\xc9\x75\xfc\xf4"


NATIVE_CODE = b"\x89\xf9\xff\xc9\x75\xfc\xc3"   # mov ecx, edi; 1: dec ecx; jnz 1b; ret


@dataclass(frozen=True)
class Calibration:
    guest_ips: float        # guest instructions per second of vCPU thread CPU time
    native_ips: float       # the same loop run natively
    exit_ns: float = 0.0    # CPU time one exit costs inside KVM_RUN (not guest progress)
    irq_window: bool = True  # KVM exits when an interrupt window opens (request_interrupt_window)

    @property
    def ratio(self) -> float:
        return self.guest_ips / self.native_ips

    @property
    def accelerated(self) -> bool:
        return self.ratio >= ACCELERATION_THRESHOLD

    def describe(self) -> str:
        text = (f"guest {self.guest_ips / 1e6:.3g}M instructions/s = {self.ratio:.3g} x native "
                f"({self.native_ips / 1e6:.4g}M/s), {self.exit_ns / 1000:.3g} us per exit")
        if not self.accelerated:
            text += ("; KVM is not hardware accelerated on this host (nested or emulated): "
                     "guests run far below native speed")
        if not self.irq_window:
            text += ("; no interrupt-window exits: an interrupt due while IF=0 is delivered at the "
                     "guest's next exit (within the quantum)")
        return text


def _timed(run, iterations: int, min_seconds: float, limit: int) -> float:
    """Instructions per CPU second of `run(iterations)`, doubling iterations until it takes `min_seconds`."""
    while True:
        start = time.thread_time_ns()
        run(iterations)
        spent = time.thread_time_ns() - start
        if spent >= min_seconds * 1e9 or iterations >= limit:
            return (2 * iterations + 2) / max(spent, 1) * 1e9
        iterations = min(limit, iterations * 2)


Loader = Callable[[bytes], None]     # puts code at CODE_ADDRESS and resets the entry state
OUT_LOOP = b"\xe6\x80\xff\xc9\x75\xfa"    # 1: out %al, $0x80; dec ecx; jnz 1b


@contextmanager
def _scratch_vcpu(device: str) -> Iterator[tuple[Loader, Vcpu, X86State]]:
    """A throw-away VM in long mode: `load(code)` puts code at CODE_ADDRESS and resets the entry state."""
    with scratch_vm(device, RAM_SIZE) as (kvm, _vm, vcpu, ram):
        set_cpuid(kvm, vcpu)
        state = X86State(vcpu)

        def write(address: int, data: bytes) -> None:
            ram[address:address + len(data)] = data

        entry = long_mode(write, CODE_ADDRESS)

        def load(code: bytes) -> None:
            write(CODE_ADDRESS, code)
            state.set_entry(entry)

        yield load, vcpu, state


def guest_rate(load: Loader, vcpu: Vcpu, min_seconds: float = 0.02, start: int = 10_000) -> float:
    """Guest instructions per second of vCPU-thread CPU time, for the counted loop."""
    def run(iterations: int) -> None:
        load(LOOP_CODE(iterations))
        vcpu.run()

    return _timed(run, start, min_seconds, 1 << 31)


def exit_cost(load: Loader, vcpu: Vcpu, exits: int = 200) -> float:
    """CPU ns one exit to userspace and back costs inside KVM_RUN (a guest doing nothing but `out`)."""
    load(b"\xb9" + struct.pack("<I", exits) + OUT_LOOP + b"\xf4")
    inside = 0
    for _ in range(exits):
        start = time.thread_time_ns()
        vcpu.run()
        inside += time.thread_time_ns() - start
    return inside / exits


def irq_window_exits(load: Loader, vcpu: Vcpu, state: X86State) -> bool:
    """Does KVM exit as soon as the guest can take an interrupt (request_interrupt_window)?

    The guest runs `sti; nop; nop; hlt` with IF=0 and a window requested: KVM
    should return KVM_EXIT_IRQ_WINDOW_OPEN right after the STI shadow (the first
    nop). A host that does not (the emulating nested KVM of the development
    machine runs on to the HLT) delivers such interrupts at the guest's next
    exit instead: still within the quantum, but later.
    """
    load(b"\xfb\x90\x90\xf4")
    vcpu.kvm_run.request_interrupt_window = 1
    try:
        vcpu.run()
    finally:
        vcpu.kvm_run.request_interrupt_window = 0
    return vcpu.kvm_run.exit_reason == Exit.IRQ_WINDOW_OPEN and state.read("rip") <= CODE_ADDRESS + 2


def native_rate(min_seconds: float = 0.02, start: int = 1_000_000) -> float:
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(NATIVE_CODE)
    pin = ctypes.c_char.from_buffer(page)
    # Safe: the page holds exactly NATIVE_CODE, a leaf function taking one unsigned int (SysV: edi).
    loop = ctypes.CFUNCTYPE(None, ctypes.c_uint)(ctypes.addressof(pin))
    try:
        return _timed(loop, start, min_seconds, (1 << 32) - 1)
    finally:
        del loop, pin
        page.close()


@functools.cache
def calibrate(device: str = DEFAULT_DEVICE) -> Calibration:
    """Measured once per process and device: the host does not change under a running simulation."""
    with _scratch_vcpu(device) as (load, vcpu, state):
        guest_ips = guest_rate(load, vcpu)
        exit_ns = exit_cost(load, vcpu)
        window = irq_window_exits(load, vcpu, state)
    return Calibration(guest_ips, native_rate(), exit_ns, window)
