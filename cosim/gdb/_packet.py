"""The framing of gdb's Remote Serial Protocol: `$payload#checksum`, escapes, run-length encoding, acks.

Pure functions and one incremental reader, no sockets: `PacketReader.feed(bytes)` turns
whatever arrived into `Packet` and `Control` events (ack, nak, Ctrl-C: a lone 0x03),
and a packet whose checksum does not match into `BadPacket` (gdb manual, E.1
"Overview", "Binary Data" and "Run-Length Encoding").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Packet", "BadPacket", "Control", "Event", "PacketReader", "checksum", "frame",
           "escape", "unescape", "expand_rle", "MAX_PACKET"]

MAX_PACKET = 0x4000            # what the stub advertises in qSupported (PacketSize)
_ESCAPED = frozenset(b"#$}*")  # bytes escaped as '}' followed by the byte XOR 0x20


@dataclass(frozen=True, slots=True)
class Packet:
    payload: bytes             # escapes and run-length encoding undone


@dataclass(frozen=True, slots=True)
class BadPacket:
    raw: bytes                 # what came between '$' and the checksum
    reason: str


class Control(enum.Enum):
    """The single bytes outside packets."""

    ACK = b"+"
    NAK = b"-"
    INTERRUPT = b"\x03"       # Ctrl-C


Event = Packet | BadPacket | Control


_CONTROL = {control.value[0]: control for control in Control}


def checksum(data: bytes) -> int:
    """The modulo-256 sum of the bytes between '$' and '#'."""
    return sum(data) & 0xFF


def escape(data: bytes) -> bytes:
    out = bytearray()
    for byte in data:
        if byte in _ESCAPED:
            out += bytes((0x7D, byte ^ 0x20))
        else:
            out.append(byte)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """Undo '}' escapes; a trailing lone '}' is an error (ValueError)."""
    out = bytearray()
    it = iter(data)
    for byte in it:
        if byte == 0x7D:
            following = next(it, None)
            if following is None:
                raise ValueError("escape character '}' at the end of the packet")
            out.append(following ^ 0x20)
        else:
            out.append(byte)
    return bytes(out)


def expand_rle(data: bytes) -> bytes:
    """Expand 'X*n': X repeated ord(n) - 29 more times. A '*' with nothing before it is an error."""
    out = bytearray()
    i = 0
    while i < len(data):
        byte = data[i]
        if byte == 0x2A:          # '*'
            if not out or i + 1 >= len(data):
                raise ValueError("run-length marker '*' without a character to repeat or a count")
            count = data[i + 1] - 29
            if count < 0:
                raise ValueError(f"run-length count {data[i + 1]:#x} is below the minimum")
            out += bytes((out[-1],)) * count
            i += 2
        else:
            out.append(byte)
            i += 1
    return bytes(out)


def frame(payload: bytes) -> bytes:
    """`$payload#cs` with the payload escaped (replies are sent without run-length encoding)."""
    body = escape(payload)
    return b"$" + body + b"#" + f"{checksum(body):02x}".encode()


class PacketReader:
    """Reassembles events from a byte stream cut anywhere; bytes outside a packet other than
    '+', '-' and 0x03 are line noise and skipped (the manual's advice)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._in_packet = False

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        buffer = self._buffer
        for byte in data:
            if not self._in_packet:
                if byte == 0x24:      # '$'
                    self._in_packet = True
                    buffer.clear()
                elif byte in _CONTROL:
                    events.append(_CONTROL[byte])
                continue
            buffer.append(byte)
            # A packet ends two characters after an unescaped '#'.
            hash_at = len(buffer) - 3
            if hash_at >= 0 and buffer[hash_at] == 0x23 and not _escaped_at(buffer, hash_at):
                events.append(self._finish(bytes(buffer[:hash_at]), bytes(buffer[hash_at + 1:])))
                self._in_packet = False
                buffer.clear()
            elif len(buffer) > 2 * MAX_PACKET + 3:
                events.append(BadPacket(bytes(buffer[:64]), f"packet longer than {2 * MAX_PACKET} bytes"))
                self._in_packet = False
                buffer.clear()
        return events

    @staticmethod
    def _finish(body: bytes, sent: bytes) -> Event:
        try:
            expected = int(sent, 16)
        except ValueError:
            return BadPacket(body, f"checksum {sent!r} is not two hex digits")
        if checksum(body) != expected:
            return BadPacket(body, f"checksum {expected:02x} does not match the packet's {checksum(body):02x}")
        try:
            return Packet(unescape(expand_rle(body)))
        except ValueError as error:
            return BadPacket(body, str(error))


def _escaped_at(buffer: bytearray, index: int) -> bool:
    """True when the byte at `index` follows an escape character (an odd run of '}')."""
    run = 0
    while index - run - 1 >= 0 and buffer[index - run - 1] == 0x7D:
        run += 1
    return run % 2 == 1
