"""KVM system, VM and vCPU objects over the cffi bindings, for every architecture.

Ownership: `Kvm` owns the /dev/kvm fd and the VMs it created, a `Vm` owns its
vCPUs, a `Vcpu` owns its fd and the mapping of its `kvm_run`. `close()`
releases children first, is idempotent, and also runs from a finalizer when
an object is dropped, so no fd or mapping outlives its owner, errors included.

`Vcpu.run()` calls libc's `ioctl` through cffi instead of `fcntl.ioctl`:
Python's wrapper retries on EINTR (PEP 475), which would swallow exactly the
signal that ends a quantum. cffi releases the GIL for the call and keeps
`errno` in `ffi.errno`.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import mmap
import os
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._errors import CosimError
from ._names import DEFAULT_DEVICE
from ._uapi import KVM_API_VERSION, KVM_MEM_READONLY, Cap, Ioctl, ffi, libc

__all__ = ["KvmError", "Kvm", "Vm", "Vcpu", "Capabilities", "probe_capabilities", "DEFAULT_DEVICE", "ScratchVm",
           "scratch_vm"]

PROT_READ, PROT_WRITE, MAP_SHARED = 0x1, 0x2, 0x01
_MAP_FAILED = ffi.cast("void *", -1)
_ZERO = ffi.cast("unsigned long", 0)


class KvmError(CosimError):
    """A KVM call failed: says which call, on what, and the errno."""

    def __init__(self, what: str, errno: int, hint: str = "") -> None:
        self.errno = errno
        name = _errno.errorcode.get(errno, str(errno))
        super().__init__(f"{what} failed: {name} ({os.strerror(errno)})" + (f"; {hint}" if hint else ""))


def ioctl(fd: int, request: int, arg: Any = _ZERO, what: str = "") -> int:
    """One ioctl through libc; raises KvmError naming `what` on failure.

    `arg` is an integer or a cdata pointer; varargs need C-typed values, hence the cast.
    """
    if isinstance(arg, int):
        arg = ffi.cast("unsigned long", arg)
    result = libc.ioctl(fd, request, arg)
    if result < 0:
        raise KvmError(what or f"ioctl {request:#x}", ffi.errno)
    return result


def _mmap(fd: int, size: int) -> Any:
    """Map `size` bytes of `fd` shared read/write; None when the kernel refuses."""
    pointer = libc.mmap(ffi.NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    return None if pointer == _MAP_FAILED else pointer


def _munmap(pointer: Any, size: int) -> None:
    libc.munmap(pointer, size)


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


@dataclass(frozen=True)
class Capabilities:
    """What this host's KVM offers, as probed with KVM_CHECK_EXTENSION (never assumed)."""

    values: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.values.get(name, 0)

    def has(self, name: str) -> bool:
        return self[name] > 0

    def require(self, *names: str, why: str = "") -> None:
        missing = [f"KVM_CAP_{n}" for n in names if not self.has(n)]
        if missing:
            raise KvmError(f"this host's KVM lacks {', '.join(missing)}{f' ({why})' if why else ''}; probing", _errno.ENOTSUP)


def probe_capabilities(check: Callable[[int], int]) -> Capabilities:
    """Ask `check(cap)` (KVM_CHECK_EXTENSION) about every capability in `Cap`.

    A failing probe counts as absent: an old kernel answers EINVAL for numbers it does not know.
    """
    values: dict[str, int] = {}
    for name, number in vars(Cap).items():
        if name.isupper():
            try:
                values[name] = max(0, check(number))
            except KvmError:
                values[name] = 0
    return Capabilities(values)


class Kvm:
    """The KVM subsystem (/dev/kvm): checks the API version and probes capabilities."""

    def __init__(self, device: str = DEFAULT_DEVICE) -> None:
        self.device = device
        try:
            self.fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        except OSError as error:
            hint = {_errno.ENOENT: "no KVM on this host: enable virtualization, load kvm_intel or kvm_amd",
                    _errno.EACCES: "add this user to the kvm group"}.get(error.errno or 0, "")
            raise KvmError(f"opening {device}", error.errno or _errno.EIO, hint) from error
        self._finalizer = weakref.finalize(self, _close_fd, self.fd)
        self._vms: weakref.WeakSet[Vm] = weakref.WeakSet()
        try:
            version = self.ioctl(Ioctl.GET_API_VERSION, what="KVM_GET_API_VERSION")
            if version != KVM_API_VERSION:
                raise KvmError(f"{device}: KVM API version {version}, cosim needs {KVM_API_VERSION}", _errno.ENOTSUP)
            self.capabilities = probe_capabilities(self.check_extension)
            self.capabilities.require("USER_MEMORY", why="guest RAM is mapped from host buffers")
            self.vcpu_mmap_size = self.ioctl(Ioctl.GET_VCPU_MMAP_SIZE, what="KVM_GET_VCPU_MMAP_SIZE")
        except BaseException:
            self.close()
            raise

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def ioctl(self, request: int, arg: Any = _ZERO, what: str = "") -> int:
        return ioctl(self.fd, request, arg, f"{self.device}: {what}")

    def check_extension(self, cap: int) -> int:
        return self.ioctl(Ioctl.CHECK_EXTENSION, cap, what=f"KVM_CHECK_EXTENSION({cap})")

    def create_vm(self, machine_type: int = 0) -> Vm:
        fd = self.ioctl(Ioctl.CREATE_VM, machine_type, what="KVM_CREATE_VM")
        vm = Vm(self, fd)
        self._vms.add(vm)
        return vm

    def close(self) -> None:
        for vm in list(self._vms):
            vm.close()
        self._finalizer()

    def __enter__(self) -> Kvm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class MemorySlot:
    slot: int
    guest_phys_addr: int
    size: int
    host_address: int
    read_only: bool


class Vm:
    """A VM fd: memory slots from host buffers, vCPUs."""

    def __init__(self, kvm: Kvm, fd: int) -> None:
        self.kvm = kvm
        self.fd = fd
        self._finalizer = weakref.finalize(self, _close_fd, fd)
        self.slots: list[MemorySlot] = []
        self.vcpus: list[Vcpu] = []

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def ioctl(self, request: int, arg: Any = _ZERO, what: str = "") -> int:
        return ioctl(self.fd, request, arg, f"VM: {what}")

    def check_extension(self, cap: int) -> int:
        """The VM-level answer (api.rst recommends asking the VM fd where it can differ)."""
        return self.ioctl(Ioctl.CHECK_EXTENSION, cap, what=f"KVM_CHECK_EXTENSION({cap})")

    def add_memory(self, guest_phys_addr: int, size: int, host_address: int, *, read_only: bool = False) -> MemorySlot:
        """Map `size` bytes at host address `host_address` into the guest at `guest_phys_addr`.

        Read-only slots need KVM_CAP_READONLY_MEM; writes to them exit as MMIO writes.
        """
        if read_only and not self.kvm.capabilities.has("READONLY_MEM"):
            raise KvmError(f"read-only memory slot at {guest_phys_addr:#x}: KVM_CAP_READONLY_MEM missing", _errno.ENOTSUP)
        limit = self.kvm.capabilities["NR_MEMSLOTS"] or 32
        if len(self.slots) >= limit:
            raise KvmError(f"memory slot at {guest_phys_addr:#x}: all {limit} slots in use", _errno.ENOSPC)
        region = ffi.new("struct kvm_userspace_memory_region *")
        region.slot = len(self.slots)
        region.flags = KVM_MEM_READONLY if read_only else 0
        region.guest_phys_addr = guest_phys_addr
        region.memory_size = size
        region.userspace_addr = host_address
        self.ioctl(Ioctl.SET_USER_MEMORY_REGION, region,
                   what=f"KVM_SET_USER_MEMORY_REGION(slot {region.slot}, {guest_phys_addr:#x}+{size:#x})")
        slot = MemorySlot(region.slot, guest_phys_addr, size, host_address, read_only)
        self.slots.append(slot)
        return slot

    def create_vcpu(self, index: int = 0) -> Vcpu:
        fd = self.ioctl(Ioctl.CREATE_VCPU, index, what=f"KVM_CREATE_VCPU({index})")
        try:
            vcpu = Vcpu(self, fd, index)
        except BaseException:
            _close_fd(fd)
            raise
        self.vcpus.append(vcpu)
        return vcpu

    def close(self) -> None:
        for vcpu in self.vcpus:
            vcpu.close()
        self._finalizer()

    def __enter__(self) -> Vm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _release_vcpu(fd: int, pointer: Any, size: int) -> None:
    _munmap(pointer, size)
    _close_fd(fd)


class Vcpu:
    """A vCPU fd and its mapped `kvm_run`. `run()` is the hot path."""

    def __init__(self, vm: Vm, fd: int, index: int) -> None:
        self.vm = vm
        self.fd = fd
        self.index = index
        size = vm.kvm.vcpu_mmap_size
        if size < ffi.sizeof("struct kvm_run"):
            raise KvmError(f"vCPU {index}: mmap size {size} is smaller than struct kvm_run", _errno.EINVAL)
        pointer = _mmap(fd, size)
        if pointer is None:
            raise KvmError(f"vCPU {index}: mmap of kvm_run", ffi.errno)
        self._finalizer = weakref.finalize(self, _release_vcpu, fd, pointer, size)
        # Safe: the kernel maps a struct kvm_run at offset 0 of the vCPU fd
        # (api.rst 4.41 KVM_GET_VCPU_MMAP_SIZE), and `size` covers it (checked above).
        self.kvm_run = ffi.cast("struct kvm_run *", pointer)
        self.mapping = pointer
        self._run = libc.ioctl
        self._run_request = Ioctl.RUN

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def ioctl(self, request: int, arg: Any = _ZERO, what: str = "") -> int:
        return ioctl(self.fd, request, arg, f"vCPU {self.index}: {what}")

    def run(self) -> bool:
        """Issue KVM_RUN once. True on an exit (see kvm_run.exit_reason), False when a signal interrupted it."""
        if self._run(self.fd, self._run_request, _ZERO) == 0:
            return True
        code = ffi.errno
        if code == _errno.EINTR:
            return False
        if code == _errno.EAGAIN:  # e.g. an INIT-received AP; nothing ran
            return False
        raise KvmError(f"vCPU {self.index}: KVM_RUN", code)

    def complete_pending(self) -> None:
        """Finish a half-done I/O or MMIO exit without running guest code.

        After an IO/MMIO exit the instruction completes only on the next KVM_RUN;
        registers read before that are stale (api.rst, KVM_RUN: "immediate_exit").
        """
        if not self.vm.kvm.capabilities.has("IMMEDIATE_EXIT"):
            return
        run = self.kvm_run
        run.immediate_exit = 1
        try:
            if self._run(self.fd, self._run_request, _ZERO) != 0 and ffi.errno != _errno.EINTR:
                raise KvmError(f"vCPU {self.index}: KVM_RUN with immediate_exit", ffi.errno)
        finally:
            run.immediate_exit = 0

    def set_signal_mask(self, blocked: set[int] | None) -> None:
        """The signal mask in force while this vCPU is inside KVM_RUN (None: the thread's own).

        The kernel's sigset is 64 bits on x86-64 and arm64 (`_NSIG` / 8 bytes).
        """
        if blocked is None:
            self.ioctl(Ioctl.SET_SIGNAL_MASK, ffi.NULL, what="KVM_SET_SIGNAL_MASK(NULL)")
            return
        bits = 0
        for signo in blocked:
            bits |= 1 << (int(signo) - 1)
        mask = ffi.new("struct kvm_signal_mask *", {"len": 8, "sigset": list(bits.to_bytes(8, "little"))})
        self.ioctl(Ioctl.SET_SIGNAL_MASK, mask, what="KVM_SET_SIGNAL_MASK")

    def close(self) -> None:
        self._finalizer()
        self.kvm_run = None

    def __enter__(self) -> Vcpu:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScratchVm(NamedTuple):
    kvm: Kvm
    vm: Vm
    vcpu: Vcpu
    ram: mmap.mmap      # guest RAM from guest address 0


@contextmanager
def scratch_vm(device: str, ram_size: int) -> Iterator[ScratchVm]:
    """A throw-away VM (host calibration): `ram_size` bytes of RAM at guest address 0 and vCPU 0.

    The caller does the architecture's vCPU set-up. Everything is released on
    exit, errors included: the VM and vCPU with the Kvm, then the RAM.
    """
    ram = mmap.mmap(-1, ram_size)
    # Pins the buffer: its address must stay valid while the memory slot maps it (closed after the Kvm).
    pin = ctypes.c_char.from_buffer(ram)
    try:
        with Kvm(device) as kvm:
            vm = kvm.create_vm()
            vm.add_memory(0, ram_size, ctypes.addressof(pin))
            yield ScratchVm(kvm, vm, vm.create_vcpu(0), ram)
    finally:
        del pin
        ram.close()
