"""Know the host: the guest's instruction rate under KVM, next to the same loop run natively.

The calibration guest is a counted loop (`mov ecx, N; 1: dec ecx; jnz 1b; hlt`,
2N + 2 instructions) in 64-bit long mode in a throw-away VM; the native
reference is the same loop as a function in an executable host page. N
doubles until a run takes `min_seconds` of thread CPU time, so the figure is
good on fast and slow hosts alike. The guest rate is the instructions-per-
second figure time-based budget sources need; a ratio far below 1 means KVM
is not hardware accelerated (nested KVM emulating its guests, for instance).
A second guest that does nothing but `out` measures the CPU time one exit
costs inside KVM_RUN, which those sources do not count as guest progress.
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

from ...kvm._system import DEFAULT_DEVICE, Kvm, Vcpu
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


OUT_LOOP = b"\xe6\x80\xff\xc9\x75\xfa"    # 1: out %al, $0x80; dec ecx; jnz 1b


@contextmanager
def _scratch_vcpu(device: str) -> Iterator[tuple[Callable[[bytes], None], Vcpu]]:
    """A throw-away VM in long mode: `load(code)` puts code at CODE_ADDRESS and resets the entry state."""
    ram = mmap.mmap(-1, RAM_SIZE)
    pin = ctypes.c_char.from_buffer(ram)
    try:
        with Kvm(device) as kvm:
            vm = kvm.create_vm()
            vm.add_memory(0, RAM_SIZE, ctypes.addressof(pin))
            vcpu = vm.create_vcpu(0)
            set_cpuid(kvm, vcpu)
            state = X86State(vcpu)

            def write(address: int, data: bytes) -> None:
                ram[address:address + len(data)] = data

            entry = long_mode(write, CODE_ADDRESS)

            def load(code: bytes) -> None:
                write(CODE_ADDRESS, code)
                state.set_entry(entry)

            yield load, vcpu
    finally:
        del pin
        ram.close()


def guest_rate(device: str = DEFAULT_DEVICE, min_seconds: float = 0.02, start: int = 10_000) -> float:
    """Guest instructions per second of vCPU-thread CPU time, for the counted loop."""
    with _scratch_vcpu(device) as (load, vcpu):
        def run(iterations: int) -> None:
            load(LOOP_CODE(iterations))
            vcpu.run()

        return _timed(run, start, min_seconds, 1 << 31)


def exit_cost(device: str = DEFAULT_DEVICE, exits: int = 200) -> float:
    """CPU ns one exit to userspace and back costs inside KVM_RUN (a guest doing nothing but `out`)."""
    with _scratch_vcpu(device) as (load, vcpu):
        load(b"\xb9" + struct.pack("<I", exits) + OUT_LOOP + b"\xf4")
        inside = 0
        for _ in range(exits):
            start = time.thread_time_ns()
            vcpu.run()
            inside += time.thread_time_ns() - start
        return inside / exits


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
    return Calibration(guest_rate(device), native_rate(), exit_cost(device))
