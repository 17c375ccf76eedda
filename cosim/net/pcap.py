"""Capture files in the classic libpcap format, nanosecond variant, as tcpdump and Wireshark read them.

A 24-byte global header (magic 0xa1b23c4d: timestamps in ns; version 2.4;
snaplen; link type 1, Ethernet) then, per frame, a 16-byte record header
(seconds, nanoseconds, captured length, original length) and the bytes
(https://www.tcpdump.org/manpages/pcap-savefile.5.html). Timestamps are
simulated time, so a capture of a deterministic run is itself deterministic.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from .._errors import PlatformError
from .._time import NS, SEC

__all__ = ["PcapWriter", "read_pcap", "LINKTYPE_ETHERNET"]

MAGIC_NS = 0xA1B2_3C4D
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
_GLOBAL = struct.Struct("<IHHiIII")      # magic, major, minor, thiszone, sigfigs, snaplen, network
_RECORD = struct.Struct("<IIII")         # ts_sec, ts_nsec, incl_len, orig_len


class PcapWriter:
    """Frames appended to a pcap file, each with the simulated time it was seen (ps, rounded down to ns)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: BinaryIO | None = open(self.path, "wb")
        except OSError as error:
            raise PlatformError(f"pcap file {self.path}: {error.strerror}") from None
        self._file.write(_GLOBAL.pack(MAGIC_NS, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        self.frames = 0

    def write(self, time: int, frame: bytes) -> None:
        if self._file is None:
            return
        captured = frame[:SNAPLEN]
        self._file.write(_RECORD.pack(time // SEC, time % SEC // NS, len(captured), len(frame)))
        self._file.write(captured)
        self.frames += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_pcap(path: str | Path) -> list[tuple[int, bytes]]:
    """(time in ps, frame) of every record of a file PcapWriter wrote: for tests and tools."""
    data = Path(path).read_bytes()
    magic, _, _, _, _, _, link = _GLOBAL.unpack_from(data)
    if magic != MAGIC_NS or link != LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: not a nanosecond Ethernet pcap file (magic {magic:#x}, link type {link})")
    records, offset = [], _GLOBAL.size
    while offset < len(data):
        seconds, nanos, captured, _ = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        records.append((seconds * SEC + nanos * NS, data[offset:offset + captured]))
        offset += captured
    return records
