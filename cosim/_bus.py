"""Memory-mapped and port-mapped buses, in the spirit of TLM-2.0 loosely timed.

A `Bus` maps address ranges to targets.  A target is anything with
`read(offset, size) -> int` and `write(offset, size, value)`: it sees offsets
only, never absolute addresses (STYLE.md #5).  Errors travel as `BusError`
carrying a TLM-style `Response`; an exception of any other kind escaping a
model becomes a `ModelError` naming the model, the register and the time.

Debug access (`debug_read`, `debug_write`, and `debug_read_bytes` /
`debug_write_bytes` for guest memory) reaches the same targets without side
effects, as TLM-2.0's debug transport does: for a GDB stub, traces and
`describe`. Targets implement it as `debug_read(offset, size)` /
`debug_write(offset, size, value)` (cosim.Device refuses by default); one
that accepts any length there (memory) sets `debug_any_length = True`.

Per-initiator views (`Bus.view`): on a multiprocessor, a few devices answer
each CPU with its own registers at the same address (a GICv2's banked
distributor and CPU interface). A `BusView` is the bus as one initiator sees
it: a handful of its own mappings laid over the shared bus, everything else
routed by the shared bus itself, debug access included. A CPU is given its
view in place of the bus; nothing else changes on the access path.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ._errors import CosimError, ModelError, PlatformError

__all__ = ["Response", "BusError", "Command", "Transaction", "Target", "Mapping", "Bus", "BusView"]


class Response(enum.Enum):
    OK = "ok"
    ADDRESS_ERROR = "address error"      # nothing mapped there, or a reserved offset
    COMMAND_ERROR = "command error"      # e.g. a write to ROM or a read-only register
    BURST_ERROR = "burst/size error"     # an access width the target does not accept
    GENERIC_ERROR = "generic error"


class BusError(Exception):
    """A failed bus access; `status` says how, `address` where (absolute once the bus saw it)."""

    def __init__(self, status: Response, address: int | None = None, detail: str = "") -> None:
        self.status = status
        self.address = address
        self.detail = detail
        where = f" at {address:#x}" if address is not None else ""
        super().__init__(f"{status.value}{where}" + (f": {detail}" if detail else ""))


class Command(enum.Enum):
    READ = "read"
    WRITE = "write"


class Target(Protocol):
    name: str

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


@dataclass(slots=True)
class Transaction:
    """A generic-payload access: command, address, size and data bytes (little-endian).

    The time an access costs is the CPU's business (each KVM backend's
    `access_latency`; unicorn: the instructions around it), not the bus's.
    """

    command: Command
    address: int
    size: int
    data: bytearray
    initiator: str = ""
    status: Response = Response.OK

    @classmethod
    def read(cls, address: int, size: int, initiator: str = "") -> "Transaction":
        return cls(Command.READ, address, size, bytearray(size), initiator)

    @classmethod
    def write(cls, address: int, size: int, value: int, initiator: str = "") -> "Transaction":
        return cls(Command.WRITE, address, size, bytearray(value.to_bytes(size, "little")), initiator)

    @property
    def value(self) -> int:
        return int.from_bytes(self.data, "little")


@dataclass(frozen=True, slots=True)
class Mapping:
    base: int
    size: int
    target: Target
    end: int = field(init=False, repr=False, compare=False)   # last address covered (inclusive)

    def __post_init__(self) -> None:
        # Stored, not a property: every bus access checks it (twice).
        object.__setattr__(self, "end", self.base + self.size - 1)


@dataclass
class Bus:
    """An address space: sorted, non-overlapping mappings looked up by bisection."""

    name: str
    width: int = 64                      # address bits; the I/O-port space uses 16
    time: "object | None" = None         # anything with `.now`, used to time-stamp model errors
    _bases: list[int] = field(default_factory=list, repr=False)
    _maps: list[Mapping] = field(default_factory=list, repr=False)

    def map(self, base: int, size: int, target: Target) -> Mapping:
        """Map `target` at [base, base+size); overlaps and empty ranges are rejected by name."""
        label = getattr(target, "name", repr(target))
        if size <= 0:
            raise PlatformError(f"{self.name}: {label} has an empty range (size {size}) at {base:#x}")
        if base < 0 or base + size > 1 << self.width:
            raise PlatformError(f"{self.name}: {label} at {base:#x}+{size:#x} is outside the {self.width}-bit space")
        new = Mapping(base, size, target)
        index = bisect.bisect_left(self._bases, base)
        for neighbour in self._maps[max(0, index - 1): index + 1]:
            if neighbour.base <= new.end and new.base <= neighbour.end:
                raise PlatformError(
                    f"{self.name}: {label} [{new.base:#x}..{new.end:#x}] overlaps "
                    f"{getattr(neighbour.target, 'name', neighbour.target)} [{neighbour.base:#x}..{neighbour.end:#x}]"
                )
        self._bases.insert(index, base)
        self._maps.insert(index, new)
        return new

    def interpose(self, mapping: Mapping, target: Target) -> Mapping:
        """Put `target` in front of `mapping`'s target (an observer that forwards to it): tracing and
        access logging attach here, so a bus nobody observes has nothing extra on its path."""
        index = self._maps.index(mapping)
        self._maps[index] = new = Mapping(mapping.base, mapping.size, target)
        return new

    @property
    def mappings(self) -> tuple[Mapping, ...]:
        return tuple(self._maps)

    def view(self, name: str, overrides: "dict[int, Target]") -> "BusView":
        """The bus as one initiator sees it: `overrides` (base -> target) answer in place of what
        this bus maps at each base (same range); every other address is this bus's."""
        view = BusView(name, width=self.width, time=self.time, parent=self)
        for base, target in overrides.items():
            mapping = self.find(base)
            if mapping is None or mapping.base != base:
                raise PlatformError(f"{name}: {getattr(target, 'name', target)} overrides {base:#x}, where "
                                    f"{self.name} maps nothing")
            view.map(base, mapping.size, target)
        return view

    def find(self, address: int) -> Mapping | None:
        index = bisect.bisect_right(self._bases, address) - 1
        if index >= 0:
            mapping = self._maps[index]
            if address <= mapping.end:
                return mapping
        return None

    def _route(self, address: int, size: int) -> Mapping:
        mapping = self.find(address)
        if mapping is None:
            raise BusError(Response.ADDRESS_ERROR, address, f"nothing mapped on {self.name}")
        if address + size - 1 > mapping.end:
            raise BusError(Response.BURST_ERROR, address, f"access of {size} bytes crosses the end of {mapping.target.name}")
        return mapping

    # -- the fast path CPUs use ---------------------------------------------
    def read(self, address: int, size: int) -> int:
        mapping = self._route(address, size)
        try:
            return mapping.target.read(address - mapping.base, size)
        except BusError as error:
            error.address = address
            raise
        except CosimError:
            raise  # already names its model (e.g. behind a bridge)
        except Exception as error:
            raise self._model_error(mapping, address, "read", error) from error

    def write(self, address: int, size: int, value: int) -> None:
        mapping = self._route(address, size)
        if value < 0 or value >> (size << 3):
            # Only a Python caller can do this (a CPU's access is `size` bytes): a model would store it whole.
            raise BusError(Response.COMMAND_ERROR, address, f"value {value:#x} does not fit in a {size}-byte write")
        try:
            mapping.target.write(address - mapping.base, size, value)
        except BusError as error:
            error.address = address
            raise
        except CosimError:
            raise  # already names its model (e.g. behind a bridge)
        except Exception as error:
            raise self._model_error(mapping, address, "write", error) from error

    # -- debug access: no side effects ----------------------------------------
    def debug_read(self, address: int, size: int) -> int:
        """What `read(address, size)` would return now, with none of its side effects."""
        return self._debug(address, size, None)

    def debug_write(self, address: int, size: int, value: int) -> None:
        """Store `value` as the target keeps it, with no hooks, outputs or ROM protection involved."""
        self._debug(address, size, value)

    def debug_read_bytes(self, address: int, length: int) -> bytes:
        """`length` bytes from `address` on, across mappings (a debugger's memory read).

        Memory is read in one slice per mapping; a device in naturally aligned
        32-bit words (bytes where it takes only bytes), a debug read of more
        bytes than asked being harmless.
        """
        data = bytearray()
        for where, size, skip, take in self._debug_pieces(address, length):
            data += self._debug(where, size, None).to_bytes(size, "little")[skip:skip + take]
        return bytes(data)

    def debug_write_bytes(self, address: int, data: bytes) -> None:
        """Write `data` from `address` on, across mappings (a debugger's memory write, a breakpoint).

        A device word only partly written is read first and written back whole.
        """
        done = 0
        for where, size, skip, take in self._debug_pieces(address, len(data)):
            word = bytearray(size if take == size else self._debug(where, size, None).to_bytes(size, "little"))
            word[skip:skip + take] = data[done:done + take]
            self._debug(where, size, int.from_bytes(word, "little"))
            done += take

    def _debug_pieces(self, address: int, length: int) -> Iterator[tuple[int, int, int, int]]:
        """Split a byte range into debug accesses: (address, size, bytes to skip, bytes to take)."""
        end = address + length
        while address < end:
            mapping = self._route(address, 1)
            stop = min(end, mapping.end + 1)
            if getattr(mapping.target, "debug_any_length", False):     # memory: one slice
                yield address, stop - address, 0, stop - address
                address = stop
                continue
            word = address & ~3
            take = min(word + 4, stop) - address
            if word >= mapping.base and word + 3 <= mapping.end and self._takes_words(word):
                yield word, 4, address - word, take
            else:
                take = 1
                yield address, 1, 0, 1
            address += take

    def _takes_words(self, address: int) -> bool:
        """Whether the device at `address` answers a 32-bit debug read there (byte-wide ports do not)."""
        try:
            self._debug(address, 4, None)
        except BusError as error:
            if error.status is Response.BURST_ERROR:
                return False
            raise
        return True

    def _debug(self, address: int, size: int, value: int | None) -> int:
        """One debug read (`value` None) or write, routed and with errors named like a guest access's."""
        mapping = self._route(address, size)
        access = getattr(mapping.target, "debug_read" if value is None else "debug_write", None)
        if access is None:
            raise BusError(Response.COMMAND_ERROR, address, f"{mapping.target.name} has no debug access")
        try:
            if value is None:
                return access(address - mapping.base, size)
            access(address - mapping.base, size, value)
            return 0
        except BusError as error:
            error.address = address
            raise
        except CosimError:
            raise
        except Exception as error:
            raise self._model_error(mapping, address, "debug access", error) from error

    # -- the generic payload path -------------------------------------------
    def transport(self, txn: Transaction) -> Response:
        """Carry out `txn`, setting its status and data; never raises BusError."""
        try:
            if txn.command is Command.READ:
                txn.data[:] = self.read(txn.address, txn.size).to_bytes(txn.size, "little")
            else:
                self.write(txn.address, txn.size, txn.value)
            txn.status = Response.OK
        except BusError as error:
            txn.status = error.status
        return txn.status

    def _model_error(self, mapping: Mapping, address: int, kind: str, error: Exception) -> ModelError:
        target = mapping.target
        offset = address - mapping.base
        describe = getattr(target, "describe_offset", None)
        where = f"{kind} of {describe(offset) if describe else f'offset {offset:#x}'}"
        now = getattr(self.time, "now", None)
        return ModelError(getattr(target, "name", repr(target)), where, now, error)


@dataclass
class BusView(Bus):
    """One initiator's view of a shared bus (`Bus.view`): its own mappings first, then the parent's.

    Reads, writes and debug accesses all route through `find`, so the view is complete for a
    CPU and for a debugger attached to that CPU. Maps added to the parent later are seen too.
    """

    parent: Bus | None = None

    def find(self, address: int) -> Mapping | None:
        own = Bus.find(self, address)
        if own is not None or self.parent is None:
            return own
        return self.parent.find(address)

    @property
    def mappings(self) -> tuple[Mapping, ...]:
        own = {m.base: m for m in self._maps}
        parent = self.parent.mappings if self.parent is not None else ()
        return tuple(own.get(m.base, m) for m in parent)
