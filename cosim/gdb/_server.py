"""The stub: one TCP connection to gdb, served from inside the simulation.

The CPU loop asks `before_run` before every quantum and hands debug stops to
`stopped`; while the stub waits for gdb it blocks the (single-threaded)
simulation, so simulated time stands still and no device advances. While the
guest runs, the socket is polled between quanta for Ctrl-C. When the
simulation ends, gdb is told the guest exited (`W` with the exit status).
"""

from __future__ import annotations

import logging
import select
import socket
import sys
from typing import Any

from .._errors import CosimError
from ..chardev import host_port
from .._time import format_time
from ..cpu._backend import CpuExit
from ..cpu._debug import DebugStop, StopKind
from ._commands import (Action, Breakpoint, Command, CommandError, Monitor, QuerySupported, ReadFeatures, ReadMemory,
                        ReadRegister, Resume, SetThread, Simple, ThreadAlive, ThreadInfo, Unsupported, WriteMemory,
                        WriteRegister, WriteRegisters, parse)
from ._packet import MAX_PACKET, BadPacket, Control, Packet, PacketReader, frame
from ._target import Target, TargetError, target_for

__all__ = ["GdbServer", "parse_address"]

log = logging.getLogger("cosim.gdb")

SIGINT, SIGTRAP = 2, 5


def parse_address(text: str) -> tuple[str, int]:
    """'[HOST:]PORT' -> (host, port); the host defaults to 127.0.0.1 (not reachable from other machines)."""
    try:
        return host_port(text)
    except ValueError:
        raise CosimError(f"--gdb expects [HOST:]PORT, e.g. 1234 or 0.0.0.0:1234, not {text!r}") from None


class GdbServer:
    """A gdb remote stub for the CPUs of a platform (thread N+1 is `cpus[N]`).

    `wait=True` holds the guest before its first instruction until gdb attaches
    and continues (QEMU's -s -S); otherwise the guest runs and gdb may attach
    at any time, stopping it. `describe()` gives the text of `monitor map`.
    """

    def __init__(self, sim: Any, cpus: list[Any], address: str = "1234", *, wait: bool = True,
                 describe: Any = None) -> None:
        if not cpus:
            raise CosimError("--gdb: the platform has no CPU to debug")
        self.sim = sim
        self.cpus = cpus
        self.targets = [target_for(cpu) for cpu in cpus]
        self.describe = describe
        host, port = parse_address(address)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, port))
        except OSError as error:
            self._listener.close()
            raise CosimError(f"--gdb {address}: cannot listen on {host}:{port}: {error.strerror}") from error
        self._listener.listen(1)
        self.host, self.port = self._listener.getsockname()[:2]
        self._conn: socket.socket | None = None
        self._reader = PacketReader()
        self._ack = True
        self._last_reply = b""
        self.halted = wait                 # the CPUs are held: the stub serves gdb before they run again
        self._reason = f"S{SIGTRAP:02x}"   # the stop reply '?' repeats
        self._current = 0                  # Hg: the CPU registers and memory are read from
        self.killed = False
        for cpu in cpus:
            cpu.debugger = self
        sim.add_finalizer(self.close)
        what = "waiting for gdb on" if wait else "gdb may attach on"
        print(f"cosim: {what} {self.host}:{self.port} (target remote {self.host}:{self.port})", file=sys.stderr,
              flush=True)

    # -- called by the CPU loop -------------------------------------------------------------
    def before_run(self, cpu: Any) -> bool:
        """Serve gdb while it holds the CPUs; otherwise look for Ctrl-C (or a new connection). False: killed."""
        if not self.halted:
            self._poll()
        if self.halted:
            self._serve()
        return not self.killed

    def stopped(self, cpu: Any, result: CpuExit) -> None:
        """A breakpoint, watchpoint or single step ended the run of `cpu`: report it and serve gdb."""
        self._current = self.cpus.index(cpu)
        stop = getattr(result.reason, "stop", None)
        extra = ""
        if isinstance(stop, DebugStop) and stop.kind is StopKind.WATCH and stop.watch is not None:
            extra = f"{stop.watch.value}:{stop.address:x};"
        self._stop(f"T{SIGTRAP:02x}{extra}thread:{self._current + 1:x};")

    # -- the connection ------------------------------------------------------------------------
    def _poll(self) -> None:
        if self._conn is None:
            if select.select([self._listener], [], [], 0)[0]:
                self._accept()
                self._stop(f"T{SIGINT:02x}thread:{self._current + 1:x};", send=False)   # attaching stops the guest
            return
        if select.select([self._conn], [], [], 0)[0]:
            self._receive(running=True)

    def _accept(self) -> None:
        conn, peer = self._listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log.info("gdb connected from %s:%s", *peer[:2])
        self._conn = conn
        self._reader = PacketReader()
        self._ack = True

    def _stop(self, reply: str, send: bool = True) -> None:
        self.halted = True
        self._reason = reply
        for target in self.targets:
            target.single_step(False)
        if send:
            self._send(reply.encode())

    def _serve(self) -> None:
        while self.halted and not self.killed:
            if self._conn is None:
                if self._reason.startswith("T"):     # a stop with nobody connected (gdb went away)
                    log.warning("guest stopped (%s); waiting for gdb on %s:%s", self._reason, self.host, self.port)
                self._accept()
            self._receive(running=False)

    def _receive(self, running: bool) -> None:
        assert self._conn is not None
        try:
            data = self._conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            log.warning("gdb closed the connection; the guest runs on")
            self._drop()
            return
        for event in self._reader.feed(data):
            if event is Control.INTERRUPT:
                if running and not self.halted:
                    self._stop(f"T{SIGINT:02x}thread:{self._current + 1:x};")
            elif event is Control.NAK:
                self._resend()
            elif isinstance(event, BadPacket):
                log.warning("bad packet from gdb (%s)", event.reason)
                if self._ack:
                    self._raw(b"-")          # ask gdb to send it again
                else:
                    self._send(b"E01")
            elif isinstance(event, Packet):
                if self._ack:
                    self._raw(b"+")
                self._handle(event.payload)
            if self._conn is None:
                return

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self.halted = False
        for target in self.targets:
            target.single_step(False)

    def _raw(self, data: bytes) -> None:
        if self._conn is not None:
            try:
                self._conn.sendall(data)
            except OSError:
                self._drop()

    def _send(self, payload: bytes) -> None:
        self._last_reply = frame(payload)
        self._raw(self._last_reply)

    def _resend(self) -> None:
        if self._last_reply:
            self._raw(self._last_reply)

    # -- commands ------------------------------------------------------------------------------
    def _handle(self, payload: bytes) -> None:
        try:
            command = parse(payload)
        except CommandError as error:
            log.warning("gdb sent %r: %s", payload[:40], error)
            self._send(b"E01")
            return
        try:
            reply = self._execute(command)
        except TargetError as error:
            log.info("gdb %s: %s", type(command).__name__, error)
            reply = b"E0e"
        except Exception as error:  # noqa: BLE001 - a request gdb made must not end the simulation
            log.warning("gdb %s failed: %s: %s", command, type(error).__name__, error)
            reply = b"E0f"
        if reply is not None:
            self._send(reply)

    @property
    def target(self) -> Target:
        return self.targets[self._current]

    def _execute(self, command: Command) -> bytes | None:
        """The reply to `command`; None for a resume, answered by the next stop."""
        match command:
            case QuerySupported():
                return (f"PacketSize={MAX_PACKET:x};qXfer:features:read+;QStartNoAckMode+;vContSupported+"
                        .encode())
            case Simple.START_NO_ACK:
                self._send(b"OK")
                self._ack = False
                return None
            case ReadFeatures(annex=annex, offset=offset, length=length):
                if annex != "target.xml":
                    return b"E00"
                document = self.target.arch.xml().encode()
                piece = document[offset:offset + length]
                return (b"l" if offset + length >= len(document) else b"m") + piece
            case Simple.HALT_REASON:
                return self._reason.encode()
            case Simple.READ_REGISTERS:
                target = self.target
                return b"".join(_hex_or_unknown(target.read_register(n), reg.bits // 8)
                                for n, reg in enumerate(target.arch.registers))
            case WriteRegisters(data=data):
                target, offset = self.target, 0
                for number, reg in enumerate(target.arch.registers):
                    size = reg.bits // 8
                    if offset + size > len(data):
                        break
                    try:
                        target.write_register(number, data[offset:offset + size])
                    except TargetError:
                        pass            # a G packet writes all registers back: read-only ones stay
                    offset += size
                return b"OK"
            case ReadRegister(number=number):
                bits = self.target.arch.registers[number].bits if number < len(self.target.arch.registers) else 0
                return _hex_or_unknown(self.target.read_register(number), bits // 8)
            case WriteRegister(number=number, data=data):
                self.target.write_register(number, data)
                return b"OK"
            case ReadMemory(address=address, length=length):
                return self.target.read_memory(address, min(length, MAX_PACKET // 2 - 8)).hex().encode()
            case WriteMemory(address=address, data=data):
                self.target.write_memory(address, data)
                return b"OK"
            case Breakpoint(insert=insert, kind=kind, address=address, length=length):
                if not self.target.supports(kind):
                    return b""
                self.target.breakpoint(insert, kind, address, length)
                return b"OK"
            case Simple.VCONT_QUERY:
                return b"vCont;c;C;s;S"
            case Resume(action=action, address=address):
                if address is not None:
                    self.target.write_register(self.target.arch.number(_PC[self.target.arch.architecture]),
                                               address.to_bytes(8, "little"))
                if action is Action.STEP:
                    if not self.target.can_step:
                        return b"E01"
                    self.target.single_step(True)
                self.halted = False
                return None
            case ThreadInfo(first=first):
                return ("m" + ",".join(f"{n + 1:x}" for n in range(len(self.cpus)))).encode() if first else b"l"
            case Simple.CURRENT_THREAD:
                return f"QC{self._current + 1:x}".encode()
            case SetThread(operation=operation, thread=thread):
                if thread > len(self.cpus):
                    return b"E02"
                if operation == "g" and thread > 0:
                    self._current = thread - 1
                return b"OK"
            case ThreadAlive(thread=thread):
                return b"OK" if thread == -1 or 0 < thread <= len(self.cpus) else b"E01"
            case Simple.ATTACHED:
                return b"1"
            case Monitor(command=text):
                return self._monitor(text).encode().hex().encode()
            case Simple.KILL:
                self.killed = True
                self.sim.request_stop(0, "killed by gdb")
                self._drop()
                return None
            case Simple.DETACH:
                for target in self.targets:
                    target.single_step(False)
                self._send(b"OK")
                self._drop()
                return None
            case Unsupported():
                return b""
        raise AssertionError(command)

    def _monitor(self, text: str) -> str:
        words = text.split()
        if words[:1] == ["time"]:
            return f"simulated time: {format_time(self.sim.now)} ({self.sim.now} ps)\n"
        if words[:1] == ["map"] and self.describe is not None:
            return self.describe() + "\n"
        return "monitor commands: time (simulated time), map (the platform's address map and wiring)\n"

    def close(self) -> None:
        """Tell gdb the guest exited, with its status, and stop listening (a simulation finalizer)."""
        if self._conn is not None and not self.killed:
            request = self.sim.stop_request
            status = request.status if request is not None else 0
            self._send(f"W{status & 0xFF:02x}".encode())
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._listener.close()
        for cpu in self.cpus:
            cpu.debugger = None


_PC = {"aarch64": "pc", "i386:x86-64": "rip"}


def _hex_or_unknown(data: bytes | None, size: int) -> bytes:
    return b"xx" * size if data is None else data.hex().encode()
