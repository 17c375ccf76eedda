"""Memory-mapped and port-mapped buses, in the spirit of TLM-2.0 loosely timed.

A `Bus` maps address ranges to targets.  A target is anything with
`read(offset, size) -> int` and `write(offset, size, value)`: it sees offsets
only, never absolute addresses (STYLE.md #5).  Errors travel as `BusError`
carrying a TLM-style `Response`; an exception of any other kind escaping a
model becomes a `ModelError` naming the model, the register and the time.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field
from typing import Protocol

from ._errors import CosimError, ModelError, PlatformError

__all__ = ["Response", "BusError", "Command", "Transaction", "Target", "Mapping", "Bus"]


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

    @property
    def mappings(self) -> tuple[Mapping, ...]:
        return tuple(self._maps)

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
        try:
            mapping.target.write(address - mapping.base, size, value)
        except BusError as error:
            error.address = address
            raise
        except CosimError:
            raise  # already names its model (e.g. behind a bridge)
        except Exception as error:
            raise self._model_error(mapping, address, "write", error) from error

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
