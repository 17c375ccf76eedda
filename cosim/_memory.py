"""Memory backed by one contiguous, mmap'd buffer.

The buffer is what a CPU backend maps straight into the guest (DMI: direct
memory interface) so RAM accesses never leave the guest; the bus path below
serves loaders, debuggers and other initiators. `memory_regions(bus)` lists
the Memory models on a bus as the `MemoryRegion`s every backend maps.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple

from ._bus import BusError, Response
from ._device import Device
from ._errors import PlatformError

if TYPE_CHECKING:
    import numpy as np

    from ._bus import Bus

__all__ = ["Memory", "MemoryRegion", "memory_regions"]

# How many outside writes a Memory remembers the place of (Memory.written_since): a virtio queue's
# burst between two passes of the CPU fits; more than that and translated code is dropped whole.
WRITE_LOG = 64


class MemoryRegion(NamedTuple):
    """Guest memory a CPU backend maps straight into the guest: guest physical `base` and `size`,
    the `host` address of its buffer, and whether the guest may only read it (ROM, flash)."""

    base: int
    size: int
    host: int
    read_only: bool


def memory_regions(bus: "Bus") -> list[MemoryRegion]:
    """Every Memory model mapped on `bus`, as regions for a CPU backend to map."""
    return [MemoryRegion(m.base, m.size, m.target.address, m.target.read_only)
            for m in bus.mappings if isinstance(m.target, Memory)]


class Memory(Device):
    """RAM (read_only=False) or ROM.  `array` is a numpy uint8 view of the contents."""

    model: ClassVar[str] = "memory"
    debug_any_length: ClassVar[bool] = True    # debug_read/debug_write take any size (Bus.debug_read_bytes)

    def __init__(self, name: str, size: int, *, read_only: bool = False,
                 on_write: Literal["error", "ignore"] = "error", image: str | Path | None = None,
                 image_offset: int = 0) -> None:
        super().__init__(name)
        if size <= 0 or size % mmap.PAGESIZE:
            raise PlatformError(f"{name}: size {size:#x} must be a positive multiple of {mmap.PAGESIZE:#x}")
        if on_write not in ("error", "ignore"):
            raise PlatformError(f"{name}: on_write must be 'error' or 'ignore', not {on_write!r}")
        self.size = size
        self.read_only = read_only
        self.on_write = on_write
        try:
            self.buffer = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        except (OverflowError, OSError, MemoryError) as error:
            raise PlatformError(f"{name}: cannot allocate {size:#x} bytes: {error}") from error
        # The ctypes view pins the buffer's address for backends that map it; it
        # lives exactly as long as the buffer, so the address stays valid.
        self._pin = ctypes.c_char.from_buffer(self.buffer)
        self.address = ctypes.addressof(self._pin)
        # Writes from outside the CPUs that map the buffer (loaders, device DMA, debuggers): a CPU
        # that caches translated code (unicorn) compares this count to drop what such a write changed,
        # and `written_since` says where the latest ones went.
        self.writes = 0
        self._written: deque[tuple[int, int, int]] = deque(maxlen=WRITE_LOG)
        self._image = (Path(image), image_offset) if image is not None else None
        if self._image:
            self.load_file(*self._image)

    def _wrote(self, offset: int, length: int) -> None:
        self.writes += 1
        self._written.append((self.writes, offset, length))

    def written_since(self, count: int) -> list[tuple[int, int]] | None:
        """(offset, length) of each write after the first `count` (of `writes`), or None when
        there were more than WRITE_LOG since: the caller then treats everything as written."""
        if self.writes - count > len(self._written):
            return None
        return [(offset, length) for number, offset, length in self._written if number > count]

    @functools.cached_property
    def array(self) -> "np.ndarray":
        """The contents as a numpy uint8 array (a view: writes through it change guest memory). numpy
        loads on first use, not with cosim: a platform that never asks pays nothing for it."""
        import numpy as np

        return np.frombuffer(self.buffer, dtype=np.uint8)

    def load(self, data: bytes, offset: int = 0) -> None:
        """Copy `data` in at `offset` (loaders use this; it bypasses read-only)."""
        if offset < 0 or offset + len(data) > self.size:
            raise PlatformError(
                f"{self.name}: {len(data):#x} bytes at offset {offset:#x} do not fit in {self.size:#x} bytes"
            )
        self.buffer[offset:offset + len(data)] = data
        self._wrote(offset, len(data))

    def store(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Bytes written by a device (DMA) at `offset`; the caller has checked the range."""
        self.buffer[offset:offset + len(data)] = data
        self._wrote(offset, len(data))

    def load_file(self, path: Path, offset: int = 0) -> None:
        if not path.is_file():
            raise PlatformError(f"{self.name}: image {path} does not exist")
        size = path.stat().st_size        # checked before reading: the file may be huge
        if offset + size > self.size:
            raise PlatformError(f"{self.name}: image {path} ({size:#x} bytes at offset {offset:#x}) does not fit "
                                f"in {self.size:#x} bytes")
        self.load(path.read_bytes(), offset)

    def read(self, offset: int, size: int) -> int:
        return int.from_bytes(self.buffer[offset:offset + size], "little")

    def write(self, offset: int, size: int, value: int) -> None:
        if self.read_only:
            if self.on_write == "ignore":
                return
            raise BusError(Response.COMMAND_ERROR, detail=f"{self.name} is read-only")
        self.buffer[offset:offset + size] = value.to_bytes(size, "little")
        self._wrote(offset, size)

    # Debug access: any length; a debug write reaches ROM too (a debugger plants breakpoints in flash).
    debug_read = read

    def debug_write(self, offset: int, size: int, value: int) -> None:
        self.buffer[offset:offset + size] = value.to_bytes(size, "little")
        self._wrote(offset, size)
