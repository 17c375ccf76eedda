"""Raw binaries and ELF files into guest memory."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .._bus import Bus
from .._errors import PlatformError
from .._memory import Memory

__all__ = ["LoadedImage", "MemoryWriter", "load_raw", "load_elf", "load_image", "memory_writer"]

Writer = Callable[[int, bytes], None]
ELF_MAGIC = b"\x7fELF"
PT_LOAD = "PT_LOAD"


@dataclass
class LoadedImage:
    path: Path
    entry: int
    segments: list[tuple[int, int]] = field(default_factory=list)   # (guest physical address, bytes)

    @property
    def end(self) -> int:
        return max((a + n for a, n in self.segments), default=self.entry)


class MemoryWriter:
    """`write(address, data)` into the RAM/ROM models mapped on a bus (bypasses read-only, as loaders
    must); `room(address)` says how many bytes of RAM/ROM follow `address` without a gap, so a loader
    can refuse an image before reading it."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def __call__(self, address: int, data: bytes) -> None:
        done = 0
        while done < len(data):
            mapping = self.bus.find(address + done)
            if mapping is None or not isinstance(mapping.target, Memory):
                raise PlatformError(f"cannot load {len(data) - done:#x} bytes at {address + done:#x}: "
                                    f"no RAM or ROM there on {self.bus.name}")
            offset = address + done - mapping.base
            chunk = data[done:done + mapping.size - offset]
            mapping.target.load(chunk, offset)
            done += len(chunk)

    def room(self, address: int) -> int:
        end = address
        while (mapping := self.bus.find(end)) is not None and isinstance(mapping.target, Memory):
            end = mapping.base + mapping.size
        return end - address


def memory_writer(bus: Bus) -> MemoryWriter:
    """A `write(address, data)` into the RAM/ROM models mapped on `bus` (see `MemoryWriter`)."""
    return MemoryWriter(bus)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise PlatformError(f"guest image {path} does not exist")
    return path


def _check_room(write: Writer, path: Path, address: int, size: int, what: str) -> None:
    """Refuse what cannot fit before reading it: a 2 GiB file is not read to find that out."""
    room = getattr(write, "room", None)
    if room is None or size <= (free := room(address)):
        return
    if free == 0:
        write(address, b"\0")            # the writer's own message: nothing there
    raise PlatformError(f"{path}: {what} of {size:#x} bytes at {address:#x} does not fit in the RAM/ROM "
                        f"there ({free:#x} bytes)")


def load_raw(write: Writer, path: str | Path, address: int, entry: int | None = None) -> LoadedImage:
    """Copy a flat binary to `address`; execution starts at `entry` (default: its first byte)."""
    path = _existing(path)
    size = path.stat().st_size
    if size == 0:
        raise PlatformError(f"{path}: the image is empty")
    _check_room(write, path, address, size, "the image")
    write(address, path.read_bytes())
    return LoadedImage(path, address if entry is None else entry, [(address, size)])


def load_elf(write: Writer, path: str | Path, machines: tuple[str, ...] = ("EM_X86_64", "EM_386", "EM_AARCH64"),
             ) -> LoadedImage:
    """Load each PT_LOAD segment at its physical address (p_paddr), zero-filling up to p_memsz.

    `machines`: the ELF machines the caller can run (`pc` runs x86 only). Every header is
    checked before anything is loaded: a bad file is one line naming what is wrong.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    path = _existing(path)
    size = path.stat().st_size
    with path.open("rb") as stream:
        try:
            elf = ELFFile(stream)
            machine = elf["e_machine"]
            loads = [(n, seg.header) for n, seg in enumerate(elf.iter_segments()) if seg["p_type"] == PT_LOAD]
        except (ELFError, struct.error, ValueError, KeyError, OverflowError) as error:
            raise PlatformError(f"{path}: not a valid ELF file: {error or type(error).__name__}") from error
        if machine not in machines:
            raise PlatformError(f"{path}: ELF for {machine}, not a machine this platform runs "
                                f"({', '.join(machines)})")
        for n, header in loads:
            where = f"segment {n} (p_paddr {header.p_paddr:#x})"
            if header.p_filesz > header.p_memsz:
                raise PlatformError(f"{path}: {where}: p_filesz {header.p_filesz:#x} exceeds p_memsz {header.p_memsz:#x}")
            if header.p_offset + header.p_filesz > size:
                raise PlatformError(f"{path}: {where}: its {header.p_filesz:#x} bytes at offset {header.p_offset:#x} "
                                    f"run past the end of the file ({size:#x} bytes): truncated?")
            if header.p_memsz:
                _check_room(write, path, header.p_paddr, header.p_memsz, where)
        image = LoadedImage(path, elf["e_entry"])
        for n, header in loads:
            if header.p_memsz == 0:
                continue
            stream.seek(header.p_offset)
            data = stream.read(header.p_filesz) + bytes(header.p_memsz - header.p_filesz)
            write(header.p_paddr, data)
            image.segments.append((header.p_paddr, len(data)))
    if not image.segments:
        raise PlatformError(f"{path}: ELF file has no loadable segment")
    return image


def load_image(write: Writer, path: str | Path, address: int,
               machines: tuple[str, ...] = ("EM_X86_64", "EM_386", "EM_AARCH64")) -> LoadedImage:
    """ELF files by their headers, anything else as a raw binary at `address`."""
    path = _existing(path)
    with path.open("rb") as stream:
        magic = stream.read(4)            # not the whole file: it may be huge
    return load_elf(write, path, machines) if magic == ELF_MAGIC else load_raw(write, path, address)
