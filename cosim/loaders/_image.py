"""Raw binaries and ELF files into guest memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .._bus import Bus
from .._errors import PlatformError
from .._memory import Memory

__all__ = ["LoadedImage", "load_raw", "load_elf", "load_image", "memory_writer"]

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


def memory_writer(bus: Bus) -> Writer:
    """A `write(address, data)` into the RAM/ROM models mapped on `bus` (bypasses read-only, as loaders must)."""

    def write(address: int, data: bytes) -> None:
        done = 0
        while done < len(data):
            mapping = bus.find(address + done)
            if mapping is None or not isinstance(mapping.target, Memory):
                raise PlatformError(f"cannot load {len(data) - done:#x} bytes at {address + done:#x}: "
                                    f"no RAM or ROM there on {bus.name}")
            offset = address + done - mapping.base
            chunk = data[done:done + mapping.size - offset]
            mapping.target.load(chunk, offset)
            done += len(chunk)

    return write


def _read(path: str | Path) -> tuple[Path, bytes]:
    path = Path(path)
    if not path.is_file():
        raise PlatformError(f"guest image {path} does not exist")
    return path, path.read_bytes()


def load_raw(write: Writer, path: str | Path, address: int, entry: int | None = None) -> LoadedImage:
    """Copy a flat binary to `address`; execution starts at `entry` (default: its first byte)."""
    path, data = _read(path)
    write(address, data)
    return LoadedImage(path, address if entry is None else entry, [(address, len(data))])


def load_elf(write: Writer, path: str | Path) -> LoadedImage:
    """Load each PT_LOAD segment at its physical address (p_paddr), zero-filling up to p_memsz."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    path, _ = _read(path)
    with path.open("rb") as stream:
        try:
            elf = ELFFile(stream)
        except ELFError as error:
            raise PlatformError(f"{path}: not a valid ELF file: {error}") from error
        if elf["e_machine"] not in ("EM_X86_64", "EM_386", "EM_AARCH64"):
            raise PlatformError(f"{path}: ELF for {elf['e_machine']}, not a machine cosim runs")
        image = LoadedImage(path, elf["e_entry"])
        for segment in elf.iter_segments():
            if segment["p_type"] != PT_LOAD or segment["p_memsz"] == 0:
                continue
            data = segment.data() + bytes(segment["p_memsz"] - segment["p_filesz"])
            write(segment["p_paddr"], data)
            image.segments.append((segment["p_paddr"], len(data)))
    if not image.segments:
        raise PlatformError(f"{path}: ELF file has no loadable segment")
    return image


def load_image(write: Writer, path: str | Path, address: int) -> LoadedImage:
    """ELF files by their headers, anything else as a raw binary at `address`."""
    path, data = _read(path)
    return load_elf(write, path) if data[:4] == ELF_MAGIC else load_raw(write, path, address)
