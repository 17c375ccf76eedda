"""RSP packets parsed into typed commands (gdb manual, E.2 "Packets").

`parse(payload)` returns one of the dataclasses below, `Unsupported` for a packet
the stub does not implement (answered with an empty reply, as the protocol asks),
or raises `CommandError` for a malformed one (answered with an error reply).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CommandError", "Command", "parse", "Simple", "WriteRegisters", "ReadRegister", "WriteRegister",
           "ReadMemory", "WriteMemory", "Resume", "Action", "Breakpoint", "BreakpointKind", "QuerySupported",
           "ReadFeatures", "ThreadInfo", "SetThread", "ThreadAlive", "Monitor", "Unsupported"]


class CommandError(ValueError):
    """A packet gdb should not have sent: answered with `E01` and otherwise ignored."""


class Action(enum.Enum):
    CONTINUE = "c"
    STEP = "s"


class BreakpointKind(enum.IntEnum):
    """The type digit of Z/z packets."""

    SOFTWARE = 0
    HARDWARE = 1
    WRITE = 2          # write watchpoint
    READ = 3           # read watchpoint
    ACCESS = 4         # access watchpoint


class Simple(enum.Enum):
    """The commands that carry nothing but their name."""

    HALT_REASON = "?"
    READ_REGISTERS = "g"
    START_NO_ACK = "QStartNoAckMode"
    CURRENT_THREAD = "qC"
    ATTACHED = "qAttached"
    KILL = "k"
    DETACH = "D"
    VCONT_QUERY = "vCont?"


@dataclass(frozen=True)
class WriteRegisters:
    """`G XX...`: all registers, in the target description's order."""

    data: bytes


@dataclass(frozen=True)
class ReadRegister:
    """`p n`: one register by its number in the target description."""

    number: int


@dataclass(frozen=True)
class WriteRegister:
    """`P n=XX...`: one register."""

    number: int
    data: bytes


@dataclass(frozen=True)
class ReadMemory:
    """`m addr,length`."""

    address: int
    length: int


@dataclass(frozen=True)
class WriteMemory:
    """`M addr,length:XX...` (hex) or `X addr,length:bytes` (binary, escaped)."""

    address: int
    data: bytes


@dataclass(frozen=True)
class Resume:
    """c, s, and vCont: one action for the threads it names (None: all), optionally from `address`."""

    action: Action
    address: int | None = None
    thread: int | None = None


@dataclass(frozen=True)
class Breakpoint:
    """`Z type,addr,kind` inserts, `z` removes; kind is the length (watchpoints) or instruction size."""

    insert: bool
    kind: BreakpointKind
    address: int
    length: int


@dataclass(frozen=True)
class QuerySupported:
    """`qSupported:features`: what gdb supports; the reply says what the stub does."""

    features: tuple[str, ...]


@dataclass(frozen=True)
class ReadFeatures:
    """`qXfer:features:read:annex:offset,length`: a piece of the target description."""

    annex: str
    offset: int
    length: int


@dataclass(frozen=True)
class ThreadInfo:
    """`qfThreadInfo` / `qsThreadInfo`: the thread list, first and following pieces."""

    first: bool        # qfThreadInfo (True) or qsThreadInfo


@dataclass(frozen=True)
class SetThread:
    """`Hg` / `Hc` + thread: the thread later register, memory or resume packets apply to."""

    operation: str     # 'g' (registers, memory) or 'c' (resumption)
    thread: int        # 0: any, -1: all


@dataclass(frozen=True)
class ThreadAlive:
    """`T thread`: is it alive."""

    thread: int


@dataclass(frozen=True)
class Monitor:
    """`qRcmd,hex`: a `monitor` command."""

    command: str


@dataclass(frozen=True)
class Unsupported:
    """Any other packet: answered with the empty reply, as the protocol asks."""

    payload: bytes


Command = (Simple | WriteRegisters | ReadRegister | WriteRegister | ReadMemory | WriteMemory | Resume | Breakpoint
           | QuerySupported | ReadFeatures | ThreadInfo | SetThread | ThreadAlive | Monitor | Unsupported)


def _hex(text: bytes, what: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise CommandError(f"{what}: {text!r} is not a hex number") from None


def _hex_bytes(text: bytes, what: str) -> bytes:
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise CommandError(f"{what}: not an even number of hex digits") from None


def _thread(text: bytes) -> int:
    """A thread id: hex, or -1 for all; 'p<pid>.<tid>' keeps the tid."""
    if text.startswith(b"p"):
        text = text.partition(b".")[2] or b"-1"
    return -1 if text == b"-1" else _hex(text, "thread id")


def _address_length(text: bytes, what: str) -> tuple[int, int]:
    address, sep, length = text.partition(b",")
    if not sep:
        raise CommandError(f"{what}: expected ADDR,LENGTH")
    return _hex(address, f"{what} address"), _hex(length, f"{what} length")


def _vcont(body: bytes) -> Resume:
    """vCont;ACTION[:TID]...: the stub runs one CPU at a time, so the first action that names
    the current thread or all threads decides (gdb sends `s:1;c` for a step)."""
    actions = [item for item in body.split(b";") if item]
    if not actions:
        raise CommandError("vCont without an action")
    for item in actions:
        action, _, thread = item.partition(b":")
        name = action[:1].decode("ascii", "replace")
        if name not in ("c", "s", "C", "S"):
            raise CommandError(f"vCont action {action!r} is not supported (c, s, C, S)")
        # C/S carry a signal number: a bare-metal target has no signals to deliver.
        return Resume(Action(name.lower()), None, _thread(thread) if thread else None)
    raise CommandError("vCont without an action")


_SIMPLE = {simple.value.encode(): simple for simple in Simple}


def parse(payload: bytes) -> Command:
    """One packet's payload (framing already removed) as a command."""
    if not payload:
        raise CommandError("empty packet")
    head, body = payload[:1], payload[1:]
    if payload in _SIMPLE:
        return _SIMPLE[payload]
    if head == b"G":
        return WriteRegisters(_hex_bytes(body, "G"))
    if head == b"p":
        return ReadRegister(_hex(body, "p register number"))
    if head == b"P":
        number, sep, value = body.partition(b"=")
        if not sep:
            raise CommandError("P: expected N=VALUE")
        return WriteRegister(_hex(number, "P register number"), _hex_bytes(value, "P value"))
    if head == b"m":
        return ReadMemory(*_address_length(body, "m"))
    if head in (b"M", b"X"):
        where, sep, data = body.partition(b":")
        if not sep:
            raise CommandError(f"{head.decode()}: expected ADDR,LENGTH:DATA")
        address, length = _address_length(where, head.decode())
        data = _hex_bytes(data, "M data") if head == b"M" else data
        if len(data) != length:
            raise CommandError(f"{head.decode()}: {len(data)} bytes of data for a length of {length}")
        return WriteMemory(address, data)
    if head in (b"c", b"s"):
        return Resume(Action(head.decode()), _hex(body, f"{head.decode()} address") if body else None)
    if head in (b"C", b"S"):
        _signal, _, address = body.partition(b";")
        return Resume(Action(head.decode().lower()), _hex(address, "address") if address else None)
    if head in (b"Z", b"z"):
        fields = body.split(b";")[0].split(b",")
        if len(fields) != 3:
            raise CommandError(f"{head.decode()}: expected TYPE,ADDR,KIND")
        kind = _hex(fields[0], "breakpoint type")
        if kind > 4:
            raise CommandError(f"breakpoint type {kind} is not 0-4")
        return Breakpoint(head == b"Z", BreakpointKind(kind), _hex(fields[1], "breakpoint address"),
                          _hex(fields[2], "breakpoint kind"))
    if head == b"H":
        if len(body) < 2 or body[:1] not in (b"g", b"c"):
            raise CommandError("H: expected Hg or Hc and a thread id")
        return SetThread(body[:1].decode(), _thread(body[1:]))
    if head == b"T":
        return ThreadAlive(_thread(body))
    if head == b"D":
        return Simple.DETACH             # D;pid detaches the one process there is
    if payload.startswith(b"vKill"):
        return Simple.KILL
    if payload.startswith(b"vCont;"):
        return _vcont(payload[6:])
    if payload.startswith(b"qSupported"):
        features = payload.partition(b":")[2]
        return QuerySupported(tuple(f.decode("ascii", "replace") for f in features.split(b";") if f))
    if payload.startswith(b"qXfer:features:read:"):
        annex, sep, span = payload[len(b"qXfer:features:read:"):].partition(b":")
        if not sep:
            raise CommandError("qXfer:features:read: expected ANNEX:OFFSET,LENGTH")
        return ReadFeatures(annex.decode("ascii", "replace"), *_address_length(span, "qXfer"))
    if payload in (b"qfThreadInfo", b"qsThreadInfo"):
        return ThreadInfo(payload == b"qfThreadInfo")
    if payload.startswith(b"qAttached"):
        return Simple.ATTACHED
    if payload.startswith(b"qRcmd,"):
        try:
            return Monitor(_hex_bytes(payload[6:], "qRcmd").decode())
        except UnicodeDecodeError:
            raise CommandError("qRcmd: the command is not text") from None
    return Unsupported(payload)
