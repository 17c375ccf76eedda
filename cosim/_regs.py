"""The register DSL: register banks declared as data, behaviour in named hooks.

    class Sp804(RegisterDevice):                  # models/sp804.py, abridged
        registers = (
            Reg("TimerXLoad", 0x00, count=2, stride=0x20),
            Reg("TimerXValue", 0x04, count=2, stride=0x20, access=Access.RO, reset=0xFFFF_FFFF),
            Reg("TimerXControl", 0x08, count=2, stride=0x20, reset=0x20,
                fields=(Field("OneShot", 0), Field("IntEnable", 5), Field("TimerEn", 7))),
            Reg("TimerXIntClr", 0x0C, count=2, stride=0x20, access=Access.WO),
        )

        def read_TimerXValue(self, index: int) -> int: ...          # computed on read
        def write_TimerXLoad(self, value: int, index: int) -> None: ...

Without a hook a register behaves as its access mode says (per bit, fields may
override the register's mode).  With a `write_<NAME>` hook the hook decides
what is stored.  Registers repeated in the manual (GICD_ISENABLER<n>) are one
declaration with `count`, and their hooks take the index. A narrow write to a
register that allows it (`sizes=(1, 4)`) reaches the write hook merged with the
current value, read through the read hook: such registers must read without
side effects.  After every write,
and every read with a side effect, the bank calls the device's `update()`:
the one place status bits and interrupt outputs are recomputed from state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

from ._bus import BusError, Response
from ._device import Device
from ._errors import PlatformError

__all__ = ["Access", "Field", "Reg", "Unmapped", "RegisterFile", "RegisterDevice"]


class Access(enum.Enum):
    RW = "RW"
    RO = "RO"     # writes ignored
    WO = "WO"     # reads as zero
    W1C = "W1C"   # writing 1 clears the bit
    W1S = "W1S"   # writing 1 sets the bit
    RC = "RC"     # reading clears the bit; writes ignored


class Unmapped(enum.Enum):
    """What an access to an offset without a register does."""

    ERROR = "error"    # BusError(ADDRESS_ERROR)
    RAZ_WI = "raz/wi"  # read as zero, write ignored (e.g. GIC reserved space, IHI 0048B 4.1.2)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    lsb: int
    width: int = 1
    access: Access | None = None  # None: the register's mode
    doc: str = ""

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def get(self, value: int) -> int:
        return (value >> self.lsb) & ((1 << self.width) - 1)

    def put(self, value: int, field_value: int) -> int:
        return (value & ~self.mask) | ((field_value << self.lsb) & self.mask)


@dataclass(frozen=True)
class Reg:
    """One register (or `count` identical ones `stride` bytes apart), named as in the manual."""

    name: str
    offset: int
    width: int = 32
    reset: int | tuple[int, ...] = 0          # a tuple gives each repeated register its own reset
    access: Access = Access.RW
    fields: tuple[Field, ...] = ()
    count: int = 1
    stride: int = 0                           # 0: width / 8
    sizes: tuple[int, ...] = ()               # accepted access sizes in bytes; () means (width/8,)
    doc: str = ""
    _masks: dict[Access, int] = field(init=False, repr=False, compare=False)
    # The masks merge_write and reads need, precomputed: registers sit on the hot path.
    _new: int = field(init=False, repr=False, compare=False)
    _old: int = field(init=False, repr=False, compare=False)
    _w1c: int = field(init=False, repr=False, compare=False)
    _w1s: int = field(init=False, repr=False, compare=False)
    _rc: int = field(init=False, repr=False, compare=False)
    _wo: int = field(init=False, repr=False, compare=False)
    _nbytes: int = field(init=False, repr=False, compare=False)            # nbytes, for every access's checks
    _sizes: tuple[int, ...] = field(init=False, repr=False, compare=False)  # access_sizes, likewise

    def __post_init__(self) -> None:
        if self.width not in (8, 16, 32, 64):
            raise PlatformError(f"register {self.name}: width {self.width} is not 8, 16, 32 or 64")
        if self.count < 1:
            raise PlatformError(f"register {self.name}: count must be >= 1")
        if isinstance(self.reset, tuple) and len(self.reset) != self.count:
            raise PlatformError(f"register {self.name}: {len(self.reset)} reset values for {self.count} registers")
        full = (1 << self.width) - 1
        masks = {mode: 0 for mode in Access}
        rest = full
        for f in self.fields:
            if f.lsb + f.width > self.width:
                raise PlatformError(f"register {self.name}: field {f.name} lies outside {self.width} bits")
            masks[f.access or self.access] |= f.mask
            rest &= ~f.mask
        masks[self.access] |= rest
        object.__setattr__(self, "_masks", masks)
        for name, value in (("_new", masks[Access.RW] | masks[Access.WO]), ("_old", masks[Access.RO] | masks[Access.RC]),
                            ("_w1c", masks[Access.W1C]), ("_w1s", masks[Access.W1S]), ("_rc", masks[Access.RC]),
                            ("_wo", masks[Access.WO])):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_nbytes", self.width // 8)
        object.__setattr__(self, "_sizes", self.sizes or (self.width // 8,))

    @property
    def nbytes(self) -> int:
        return self._nbytes

    @property
    def step(self) -> int:
        return self.stride or self.nbytes

    @property
    def access_sizes(self) -> tuple[int, ...]:
        return self._sizes

    def reset_value(self, index: int = 0) -> int:
        return self.reset[index] if isinstance(self.reset, tuple) else self.reset

    def mask(self, mode: Access) -> int:
        return self._masks[mode]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name}")

    def merge_write(self, old: int, new: int) -> int:
        """Stored value after writing `new` over `old`, bit by bit per access mode."""
        return (new & self._new) | (old & self._old) | (old & ~new & self._w1c) | ((old | new) & self._w1s)


class RegisterFile:
    """Current register values as attributes: `regs.UARTCR`, `regs.GICD_ISENABLER[1]`."""

    def __init__(self, registers: tuple[Reg, ...]) -> None:
        self._registers = registers
        self.reset()

    def reset(self) -> None:
        for reg in self._registers:
            if reg.count == 1:
                setattr(self, reg.name, reg.reset_value())
            else:
                setattr(self, reg.name, [reg.reset_value(i) for i in range(reg.count)])

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)


# One decoded byte offset: (register, index, first byte of that register, read hook, write hook).
_Slot = tuple[Reg, int, int, Callable[..., int] | None, Callable[..., None] | None]


class RegisterDevice(Device):
    """A device whose bus surface is a declared register bank."""

    registers: ClassVar[tuple[Reg, ...]] = ()
    unmapped: ClassVar[Unmapped] = Unmapped.ERROR
    _decode: ClassVar[dict[int, _Slot]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._decode = cls._build_decoder()

    @classmethod
    def _build_decoder(cls) -> dict[int, _Slot]:
        table: dict[int, _Slot] = {}
        names: set[str] = set()
        for reg in cls.registers:
            if reg.name in names:
                raise PlatformError(f"{cls.__name__}: register {reg.name} declared twice")
            names.add(reg.name)
            rd = getattr(cls, f"read_{reg.name}", None)
            wr = getattr(cls, f"write_{reg.name}", None)
            for index in range(reg.count):
                start = reg.offset + index * reg.step
                for byte in range(start, start + reg.nbytes):
                    if byte in table:
                        raise PlatformError(
                            f"{cls.__name__}: {reg.name} overlaps {table[byte][0].name} at offset {byte:#x}"
                        )
                    table[byte] = (reg, index, start, rd, wr)
        return table

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.regs = RegisterFile(self.registers)

    def reset(self) -> None:
        self.regs.reset()
        self.update()

    def update(self) -> None:
        """Recompute status bits and outputs from state; called after every write."""

    # -- bus surface --------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        slot = self._decode.get(offset)
        if slot is None:
            return self._unmapped(offset, size, None)
        reg, index, start, hook, _ = slot
        shift = self._check(reg, offset, start, size)
        if hook is not None:
            value = hook(self, index) if reg.count > 1 else hook(self)
            self.update()
        else:
            value = self._stored(reg, index)
            if reg._rc:
                self._store(reg, index, value & ~reg._rc)
                self.update()
            value &= ~reg._wo
        return (value >> shift) & ((1 << (size * 8)) - 1)

    def write(self, offset: int, size: int, value: int) -> None:
        slot = self._decode.get(offset)
        if slot is None:
            self._unmapped(offset, size, value)
            return
        reg, index, start, read_hook, hook = slot
        shift = self._check(reg, offset, start, size)
        if size < reg._nbytes:
            # A narrow write merges into the current value (from the read hook if there is
            # one: registers that allow narrow access must read without side effects);
            # W1C/W1S bits outside the written bytes take 0 so they are left alone.
            lane = ((1 << (size * 8)) - 1) << shift
            if read_hook is not None:
                current = read_hook(self, index) if reg.count > 1 else read_hook(self)
            else:
                current = self._stored(reg, index)
            keep = current & ~lane & ~(reg._w1c | reg._w1s)
            value = keep | ((value << shift) & lane)
        if hook is not None:
            if reg.count > 1:
                hook(self, value, index)
            else:
                hook(self, value)
        else:
            self._store(reg, index, reg.merge_write(self._stored(reg, index), value))
        self.update()

    def describe_offset(self, offset: int) -> str:
        slot = self._decode.get(offset)
        if slot is None:
            return f"unmapped offset {offset:#x}"
        reg, index, _, _, _ = slot
        label = f"{reg.name}[{index}]" if reg.count > 1 else reg.name
        return f"{label} (offset {offset:#x})"

    # -- helpers ------------------------------------------------------------
    def _check(self, reg: Reg, offset: int, start: int, size: int) -> int:
        if size not in reg._sizes or (offset - start) % size:
            raise BusError(Response.BURST_ERROR, detail=f"{self.name}: {size}-byte access to {self.describe_offset(offset)}")
        return (offset - start) * 8

    def _stored(self, reg: Reg, index: int) -> int:
        value = getattr(self.regs, reg.name)
        return value[index] if reg.count > 1 else value

    def _store(self, reg: Reg, index: int, value: int) -> None:
        if reg.count > 1:
            getattr(self.regs, reg.name)[index] = value
        else:
            setattr(self.regs, reg.name, value)

    def _unmapped(self, offset: int, size: int, value: int | None) -> int:
        if self.unmapped is Unmapped.RAZ_WI and size in (1, 2, 4, 8):
            return 0
        raise BusError(Response.ADDRESS_ERROR, detail=f"{self.name}: no register at offset {offset:#x}")
