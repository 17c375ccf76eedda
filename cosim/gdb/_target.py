"""What the stub debugs: a CPU's registers, its view of memory, and the debug capabilities its backend has.

A `Target` is written against the CPU backend interface plus a few optional
backend methods, discovered rather than assumed (the gdbstub crate's shape):
`insert_breakpoint`/`remove_breakpoint` (software), `insert_hw_breakpoint`,
`insert_watchpoint`, `single_step`, `translate` (virtual to physical). A kind
of breakpoint the backend lacks is answered with an empty reply, so gdb falls
back on what it can do instead.

Memory goes through the paths the CPU uses: the address is translated as the
guest's MMU would, RAM is read straight from its buffer, anything else through
the bus (side-effect-free `debug_read`/`debug_write` where the bus has them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._bus import Bus, BusError
from .._errors import CosimError
from .._memory import Memory
from ..cpu._debug import WatchKind
from ._arch import AARCH64_CORE, AARCH64_FPU, X86_64_CORE, X86_64_SEGMENTS, X86_64_SSE, Arch, arch
from ._commands import BreakpointKind

__all__ = ["Target", "TargetError", "GuestMemory", "target_for"]


class TargetError(CosimError):
    """A request the target cannot carry out (answered with an error reply)."""


class GuestMemory:
    """Physical memory as the bus sees it: RAM buffers directly, devices one register at a time."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._read = getattr(bus, "debug_read", bus.read)     # side-effect-free when the bus offers it
        self._write = getattr(bus, "debug_write", bus.write)

    def read(self, address: int, length: int) -> bytes:
        out = bytearray()
        while length > 0:
            mapping = self.bus.find(address)
            if mapping is None:
                raise TargetError(f"nothing mapped at {address:#x}")
            chunk = min(length, mapping.end + 1 - address)
            if isinstance(mapping.target, Memory):
                offset = address - mapping.base
                out += mapping.target.buffer[offset:offset + chunk]
            else:
                chunk = 4 if chunk >= 4 and address % 4 == 0 else 1
                try:
                    out += self._read(address, chunk).to_bytes(chunk, "little")
                except BusError as error:
                    raise TargetError(str(error)) from error
            address += chunk
            length -= chunk
        return bytes(out)

    def write(self, address: int, data: bytes) -> None:
        while data:
            mapping = self.bus.find(address)
            if mapping is None:
                raise TargetError(f"nothing mapped at {address:#x}")
            chunk = min(len(data), mapping.end + 1 - address)
            if isinstance(mapping.target, Memory):
                offset = address - mapping.base
                # The debugger may patch ROM (a breakpoint in flash), as a JTAG probe can.
                mapping.target.buffer[offset:offset + chunk] = data[:chunk]
            else:
                chunk = 4 if chunk >= 4 and address % 4 == 0 else 1
                try:
                    self._write(address, chunk, int.from_bytes(data[:chunk], "little"))
                except BusError as error:
                    raise TargetError(str(error)) from error
            address += chunk
            data = data[chunk:]


Getter = Callable[[], int | None]
Setter = Callable[[int], None] | None

_WATCH = {BreakpointKind.WRITE: WatchKind.WRITE, BreakpointKind.READ: WatchKind.READ,
          BreakpointKind.ACCESS: WatchKind.ACCESS}


class Target:
    """One CPU as gdb sees it: `arch` and, per register of it, how to read and write it."""

    def __init__(self, backend: Any, bus: Bus, arch: Arch, registers: dict[str, tuple[Getter, Setter]]) -> None:
        self.backend = backend
        self.arch = arch
        self.memory = GuestMemory(bus)
        self._registers = [registers[reg.name] for reg in arch.registers]
        self._translate = getattr(backend, "translate", None)

    # -- capabilities, discovered from the backend ----------------------------------
    def supports(self, kind: BreakpointKind) -> bool:
        method = {BreakpointKind.SOFTWARE: "insert_breakpoint", BreakpointKind.HARDWARE: "insert_hw_breakpoint"}
        return hasattr(self.backend, method.get(kind, "insert_watchpoint"))

    @property
    def can_step(self) -> bool:
        return hasattr(self.backend, "single_step")

    def breakpoint(self, insert: bool, kind: BreakpointKind, address: int, length: int) -> None:
        verb = "insert" if insert else "remove"
        try:
            if kind in _WATCH:
                getattr(self.backend, f"{verb}_watchpoint")(_WATCH[kind], address, length)
            elif kind is BreakpointKind.HARDWARE:
                getattr(self.backend, f"{verb}_hw_breakpoint")(address)
            else:
                getattr(self.backend, f"{verb}_breakpoint")(address)
        except CosimError as error:
            raise TargetError(str(error)) from error

    def single_step(self, on: bool) -> None:
        if self.can_step:
            self.backend.single_step(on)

    # -- registers -----------------------------------------------------------------
    def read_register(self, number: int) -> bytes | None:
        """Little-endian bytes, None when the backend cannot say (sent as 'xx')."""
        if not 0 <= number < len(self._registers):
            raise TargetError(f"no register {number}")
        value = self._registers[number][0]()
        return None if value is None else value.to_bytes(self.arch.registers[number].bits // 8, "little")

    def write_register(self, number: int, data: bytes) -> None:
        if not 0 <= number < len(self._registers):
            raise TargetError(f"no register {number}")
        setter = self._registers[number][1]
        if setter is None:
            raise TargetError(f"register {self.arch.registers[number].name} cannot be written")
        if len(data) != self.arch.registers[number].bits // 8:
            raise TargetError(f"register {self.arch.registers[number].name} takes "
                              f"{self.arch.registers[number].bits // 8} bytes, not {len(data)}")
        setter(int.from_bytes(data, "little"))

    # -- memory ----------------------------------------------------------------------
    def _physical(self, address: int) -> int:
        if self._translate is None:
            return address
        physical = self._translate(address)
        if physical is None:
            raise TargetError(f"{address:#x} is not mapped by the guest's page tables")
        return physical

    def _pages(self, address: int, length: int) -> list[tuple[int, int]]:
        """(physical address, length) pieces, one per 4 KiB page: each page translates on its own."""
        pieces = []
        while length > 0:
            chunk = min(length, 0x1000 - (address & 0xFFF))
            pieces.append((self._physical(address), chunk))
            address += chunk
            length -= chunk
        return pieces

    def read_memory(self, address: int, length: int) -> bytes:
        return b"".join(self.memory.read(physical, chunk) for physical, chunk in self._pages(address, length))

    def write_memory(self, address: int, data: bytes) -> None:
        for physical, chunk in self._pages(address, len(data)):
            self.memory.write(physical, data[:chunk])
            data = data[chunk:]


def _named(backend: Any, name: str, writable: bool = True) -> tuple[Getter, Setter]:
    return ((lambda: backend.read_register(name)),
            (lambda value: backend.write_register(name, value)) if writable else None)


def _arm64_core(backend: Any) -> dict[str, tuple[Getter, Setter]]:
    registers = {f"x{i}": _named(backend, f"x{i}") for i in range(31)}
    return registers | {"sp": _named(backend, "sp"), "pc": _named(backend, "pc"), "cpsr": _named(backend, "pstate")}


def _unicorn_arm64(backend: Any, bus: Bus) -> Target:
    from unicorn import arm64_const as A

    uc = backend.uc
    registers = _arm64_core(backend)
    for i in range(32):
        reg = getattr(A, f"UC_ARM64_REG_V{i}")
        registers[f"v{i}"] = ((lambda reg=reg: uc.reg_read(reg)), (lambda value, reg=reg: uc.reg_write(reg, value)))
    for name, reg in (("fpsr", A.UC_ARM64_REG_FPSR), ("fpcr", A.UC_ARM64_REG_FPCR)):
        registers[name] = ((lambda reg=reg: uc.reg_read(reg)), (lambda value, reg=reg: uc.reg_write(reg, value)))
    return Target(backend, bus, arch("aarch64", AARCH64_CORE, AARCH64_FPU), registers)


def _kvm_arm64(backend: Any, bus: Bus) -> Target:
    # The core registers through KVM_GET_ONE_REG; the FP/SIMD ones are not offered (yet).
    return Target(backend, bus, arch("aarch64", AARCH64_CORE), _arm64_core(backend))


def _kvm_x86(backend: Any, bus: Bus) -> Target:
    from ..kvm._x86 import X86Ioctl, ffi

    fpu = ffi.new("struct kvm_fpu *")

    def get_fpu():  # -> cdata 'struct kvm_fpu *' (a fresh snapshot)
        backend.vcpu.ioctl(X86Ioctl.GET_FPU, fpu, what="KVM_GET_FPU")
        return fpu

    def gpr(name: str) -> tuple[Getter, Setter]:
        return (lambda: getattr(backend.regs(), name)), (lambda value: backend.write_register(name, value))

    def segment(name: str) -> tuple[Getter, Setter]:
        return (lambda: getattr(backend.sregs(), name).selector), None

    def tag_word() -> int:
        # KVM gives the abridged (FXSAVE) tag: one bit per register, 1 = in use. gdb wants the full
        # x87 word, 2 bits each: in use is shown as 00 (valid), free as 11 (empty).
        ftwx = get_fpu().ftwx
        return sum((0 if ftwx >> i & 1 else 3) << (2 * i) for i in range(8))

    registers = {name: gpr(name) for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                                              *(f"r{i}" for i in range(8, 16)), "rip")}
    registers["eflags"] = (lambda: backend.regs().rflags), (lambda value: backend.write_register("rflags", value))
    registers |= {name: segment(name) for name in ("cs", "ss", "ds", "es", "fs", "gs")}
    for i in range(8):
        registers[f"st{i}"] = (lambda i=i: int.from_bytes(bytes(get_fpu().fpr[i])[:10], "little")), None
    registers |= {
        "fctrl": ((lambda: get_fpu().fcw), None), "fstat": ((lambda: get_fpu().fsw), None),
        "ftag": (tag_word, None), "fiseg": ((lambda: 0), None),       # 64-bit FXSAVE keeps no selectors
        "fioff": ((lambda: get_fpu().last_ip & 0xFFFF_FFFF), None), "foseg": ((lambda: 0), None),
        "fooff": ((lambda: get_fpu().last_dp & 0xFFFF_FFFF), None), "fop": ((lambda: get_fpu().last_opcode), None),
        "mxcsr": ((lambda: get_fpu().mxcsr), None),
        "fs_base": ((lambda: backend.sregs().fs.base), None), "gs_base": ((lambda: backend.sregs().gs.base), None),
    }
    for i in range(16):
        registers[f"xmm{i}"] = (lambda i=i: int.from_bytes(bytes(get_fpu().xmm[i]), "little")), None
    return Target(backend, bus, arch("i386:x86-64", X86_64_CORE, X86_64_SSE, X86_64_SEGMENTS), registers)


_BUILDERS: dict[str, Callable[[Any, Bus], Target]] = {
    "unicorn-arm64": _unicorn_arm64, "kvm-arm64": _kvm_arm64, "kvm-x86": _kvm_x86}


def target_for(cpu: Any) -> Target:
    """The target for a `cosim.cpu.Cpu`, chosen by its backend's name."""
    backend = cpu.backend
    builder = _BUILDERS.get(backend.name)
    if builder is None:
        raise TargetError(f"{cpu.name}: no debugger support for the {backend.name!r} CPU backend "
                          f"(known: {', '.join(_BUILDERS)})")
    bus = getattr(backend, "bus", None) or getattr(backend, "memory")
    return builder(backend, bus)
