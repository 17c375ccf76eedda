"""virtio block device (virtio 1.2 §5.2) on a raw disk image file.

Design choices, documented once here:
- Requests complete at once, in the notification that made them available:
  the image is read or written with pread/pwrite while the guest's QueueNotify
  write is handled, and the used-buffer interrupt follows before the guest's
  next instruction. Disk time is not modelled (the host's page cache decides
  what a real read would cost, which would make runs not repeat).
- FLUSH (§5.2.6.1, offered as VIRTIO_BLK_F_FLUSH) is an fsync of the image.
  Writes reach the file at once either way; the flush makes them durable.
- Read-only drives offer VIRTIO_BLK_F_RO and answer writes with IOERR, writing
  nothing (§5.2.6.2).
- The capacity is the image's size in whole 512-byte sectors, fixed when the
  drive is opened. A request reaching past it, or whose data is not whole
  sectors, gets IOERR; a request type not listed here gets UNSUPP.
- The image is locked with flock while the drive is open: exclusively when
  read-write, shared when read-only, so two runs never write one image and a
  reader never sees a writer's half-done state.
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable

from cosim import PlatformError

from ._device import VirtioDevice
from ._queue import Chain, Virtqueue

__all__ = ["VirtioBlk", "Drive", "parse_drives", "VIRTIO_ID_BLOCK", "SECTOR"]

VIRTIO_ID_BLOCK = 2
SECTOR = 512
# Feature bits (§5.2.3)
VIRTIO_BLK_F_SEG_MAX = 2
VIRTIO_BLK_F_BLK_SIZE = 6
VIRTIO_BLK_F_RO = 5
VIRTIO_BLK_F_FLUSH = 9
# Request types and status values (§5.2.6)
VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID = 0, 1, 4, 8
VIRTIO_BLK_S_OK, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP = 0, 1, 2
VIRTIO_BLK_ID_BYTES = 20
_HEADER = struct.Struct("<IIQ")         # type, reserved, sector
QUEUE_SIZE = 128


@dataclass(frozen=True)
class Drive:
    """A disk image and how it is attached."""

    path: Path
    readonly: bool = False

    def __str__(self) -> str:
        return f"{self.path}{',ro' if self.readonly else ''}"


def parse_drives(value: "str | Path | Drive | Iterable[str | Path | Drive]") -> tuple[Drive, ...]:
    """Drives from `PATH[,ro][,PATH[,ro]...]` (a `ro` or `rw` item applies to the path before it),
    or from Python a Drive, a path or a list of them. 'none' or '' is no drive."""
    if isinstance(value, Drive):
        return (value,)
    if isinstance(value, Path):
        return (Drive(value),)
    if not isinstance(value, str):
        return tuple(drive for item in value for drive in parse_drives(item))
    drives: list[Drive] = []
    for item in (part.strip() for part in value.split(",")):
        if item in ("ro", "rw"):
            if not drives:
                raise PlatformError(f"drive {value!r}: {item!r} must follow a path (PATH,{item})")
            drives[-1] = Drive(drives[-1].path, readonly=item == "ro")
        elif item and item != "none":
            drives.append(Drive(Path(item)))
        elif not item and value.strip() not in ("", "none"):
            raise PlatformError(f"drive {value!r}: an empty path (expected PATH[,ro][,PATH[,ro]...])")
    return tuple(drives)


class VirtioBlk(VirtioDevice):
    """Block device on a raw image: read, write, flush, get-id (§5.2)."""

    device_id: ClassVar[int] = VIRTIO_ID_BLOCK
    queue_sizes: ClassVar[tuple[int, ...]] = (QUEUE_SIZE,)

    def __init__(self, drive: Drive | str | Path, *, serial: str | None = None) -> None:
        super().__init__()
        self.drive = drive if isinstance(drive, Drive) else parse_drives(drive)[0]
        path = self.drive.path
        if not path.exists():
            raise PlatformError(f"drive {path}: no such file")
        if not path.is_file():
            raise PlatformError(f"drive {path}: not a regular file (a disk image is one)")
        try:
            self._fd = os.open(path, os.O_RDONLY if self.drive.readonly else os.O_RDWR)
        except OSError as error:
            raise PlatformError(f"drive {path}: cannot open {'to read' if self.drive.readonly else 'to read and write'}: "
                                f"{error.strerror}") from None
        try:
            fcntl.flock(self._fd, (fcntl.LOCK_SH if self.drive.readonly else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise PlatformError(f"drive {path}: in use by another run or drive (which holds the image's lock"
                                f"{'' if self.drive.readonly else '; read-only users block writers too'})") from None
        self.capacity = os.fstat(self._fd).st_size // SECTOR
        self.serial = (serial if serial is not None else path.name).encode()[:VIRTIO_BLK_ID_BYTES]
        self.features = 1 << VIRTIO_BLK_F_SEG_MAX | 1 << VIRTIO_BLK_F_BLK_SIZE | 1 << VIRTIO_BLK_F_FLUSH \
            | (1 << VIRTIO_BLK_F_RO if self.drive.readonly else 0)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)          # and with it the lock
            self._fd = -1

    def config_space(self) -> bytes:
        # struct virtio_blk_config (§5.2.4) up to blk_size: capacity, size_max, seg_max, geometry, blk_size.
        return struct.pack("<QIIHBBI", self.capacity, 0, QUEUE_SIZE - 2, 0, 0, 0, SECTOR)

    def on_queue(self, queue: Virtqueue) -> None:
        while (chain := queue.pop()) is not None:
            if chain.writable_len < 1:
                queue.push(chain, 0)        # no room for a status: nothing to tell the driver
                continue
            status, written = self.request(chain)
            chain.write(bytes([status]), chain.writable_len - 1)
            queue.push(chain, written + 1)

    def request(self, chain: Chain) -> tuple[int, int]:
        """Carry out one request; returns (status, data bytes written into the chain)."""
        if chain.readable_len < _HEADER.size:
            return VIRTIO_BLK_S_IOERR, 0
        kind, _, sector = _HEADER.unpack(chain.read(0, _HEADER.size))
        if kind == VIRTIO_BLK_T_IN:
            return self._transfer(sector, chain.writable_len - 1, chain, reading=True)
        if kind == VIRTIO_BLK_T_OUT:
            if self.drive.readonly:
                return VIRTIO_BLK_S_IOERR, 0
            return self._transfer(sector, chain.readable_len - _HEADER.size, chain, reading=False)
        if kind == VIRTIO_BLK_T_FLUSH:
            if not self.drive.readonly:
                try:
                    os.fsync(self._fd)
                except OSError:
                    return VIRTIO_BLK_S_IOERR, 0
            return VIRTIO_BLK_S_OK, 0
        if kind == VIRTIO_BLK_T_GET_ID:
            length = min(chain.writable_len - 1, VIRTIO_BLK_ID_BYTES)
            if length < VIRTIO_BLK_ID_BYTES:
                return VIRTIO_BLK_S_IOERR, 0
            chain.write(self.serial.ljust(VIRTIO_BLK_ID_BYTES, b"\0"))
            return VIRTIO_BLK_S_OK, VIRTIO_BLK_ID_BYTES
        return VIRTIO_BLK_S_UNSUPP, 0

    def _transfer(self, sector: int, length: int, chain: Chain, *, reading: bool) -> tuple[int, int]:
        if length % SECTOR or sector + length // SECTOR > self.capacity:
            return VIRTIO_BLK_S_IOERR, 0
        try:
            if reading:
                data = os.pread(self._fd, length, sector * SECTOR)
                chain.write(data)
                return VIRTIO_BLK_S_OK, length
            os.pwrite(self._fd, chain.read(_HEADER.size), sector * SECTOR)
        except OSError:
            return VIRTIO_BLK_S_IOERR, 0
        return VIRTIO_BLK_S_OK, 0
