"""Character back-ends: where a UART's bytes go and where its input comes from.

A UART model sees only the narrow `CharBackend` interface: `write(data)` for
output and a receiver callback for input. Input is delivered inside the
simulation by a poller, so models are only ever called from the kernel.

Back-ends that talk to the host (stdio, TCP, pty) poll without blocking,
every `poll` of simulated time; output they cannot deliver yet is kept, and
what is still pending when the simulation is closed is flushed (or, with no
one to receive it, written to stderr) so no byte is silently lost.
`open_backend("tcp:127.0.0.1:4555")` turns a platform's `console` property
into a back-end.
"""

from __future__ import annotations

import atexit
import os
import select
import socket
import sys
import termios
import time
import tty
from collections.abc import Callable
from typing import Protocol

from ._errors import PlatformError
from ._kernel import Simulation
from ._time import MS

__all__ = ["CharBackend", "BufferBackend", "StdioBackend", "NullBackend", "LineBackend", "TcpBackend", "PtyBackend",
           "open_backend", "attach_backend", "host_port"]

Receiver = Callable[[bytes], None]


class CharBackend(Protocol):
    def write(self, data: bytes) -> None: ...

    def set_receiver(self, receiver: Receiver) -> None: ...

    def attach(self, sim: Simulation) -> None: ...


class NullBackend:
    """Discards output; never produces input."""

    def write(self, data: bytes) -> None:
        pass

    def set_receiver(self, receiver: Receiver) -> None:
        pass

    def attach(self, sim: Simulation) -> None:
        pass


class BufferBackend:
    """For tests: output accumulates in `output`; `feed()` queues input for the guest.

    Queued input is offered to the receiver every `poll` of simulated time,
    as a terminal would deliver typed text, so a guest polling its UART sees it.
    """

    def __init__(self, poll: int = MS) -> None:
        self.output = bytearray()
        self.poll = poll
        self._pending = bytearray()
        self._receiver: Receiver | None = None
        self._sim: Simulation | None = None
        self._scheduled = False

    def attach(self, sim: Simulation) -> None:
        self._sim = sim

    def write(self, data: bytes) -> None:
        self.output += data

    def set_receiver(self, receiver: Receiver) -> None:
        self._receiver = receiver

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def feed(self, data: bytes | str) -> None:
        self._pending += data.encode() if isinstance(data, str) else data
        self._arm()

    def _arm(self) -> None:
        if self._sim is not None and not self._scheduled and self._pending:
            self._scheduled = True
            self._sim.schedule(self.poll, self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        if self._receiver is not None and self._pending:
            data, self._pending = bytes(self._pending), bytearray()
            self._receiver(data)
        self._arm()

    def run_until(self, marker: str, timeout: int, start: int = 0, *, wall: float | None = None) -> str:
        """Run the simulation until `marker` appears in the output after index `start`.

        Returns the output from `start` to the end of the marker; raises
        TimeoutError (with the tail of the output) after `timeout` of simulated time,
        or after `wall` seconds of wall time when given (a test that must not stall CI).
        """
        assert self._sim is not None, "attach the backend to a simulation first"
        sim = self._sim
        deadline = sim.now + timeout
        wall_deadline = None if wall is None else time.monotonic() + wall
        step = 10 * MS
        while marker not in self.output[start:].decode(errors="replace"):
            late = wall_deadline is not None and time.monotonic() > wall_deadline
            if sim.now >= deadline or sim.stop_request is not None or late:
                tail = self.output[-400:].decode(errors="replace")
                limit = f"within {wall} s of wall time" if late else f"by {deadline} ps"
                raise TimeoutError(f"{marker!r} not seen {limit}; output ends with:\n{tail}")
            sim.run(until=min(sim.now + step, deadline))
        text = self.output[start:].decode(errors="replace")
        return text[: text.index(marker) + len(marker)]


class LineBackend:
    """Output cut into lines, each passed to `sink` (default: printed on stdout after `prefix`).

    A last line without a newline is passed on when the simulation is closed.
    Never produces input.
    """

    def __init__(self, sink: Callable[[str], None] | None = None, prefix: str = "") -> None:
        self._sink = sink or self._printer(prefix)
        self._partial = bytearray()

    @staticmethod
    def _printer(prefix: str) -> Callable[[str], None]:
        def show(line: str) -> None:
            # \r\n on a terminal: a stdio console may have put it in raw mode.
            end = "\r\n" if sys.stdout.isatty() else "\n"
            sys.stdout.write(f"{prefix}{line}{end}")
            sys.stdout.flush()

        return show

    def attach(self, sim: Simulation) -> None:
        sim.add_finalizer(self.close)

    def write(self, data: bytes) -> None:
        self._partial += data
        while (end := self._partial.find(b"\n")) >= 0:
            line = bytes(self._partial[:end]).rstrip(b"\r")
            del self._partial[: end + 1]
            self._sink(line.decode(errors="replace"))

    def set_receiver(self, receiver: Receiver) -> None:
        pass

    def close(self) -> None:
        if self._partial:
            line, self._partial = bytes(self._partial), bytearray()
            self._sink(line.decode(errors="replace"))


class _PolledBackend:
    """A back-end on host file descriptors, polled without blocking from simulated time.

    Subclasses say which descriptors to watch (`_watched`), what to do when one
    is readable (`_readable`) and how to send output (`_send`, which may take
    only part of it). Output not taken yet waits in `pending` and is retried
    on every poll; `close()` gives it one bounded last chance, then writes
    what is left to stderr. When nothing else is scheduled (the guest idles
    waiting for input), a poll waits a little in real time instead of letting
    the simulation end or spin.
    """

    IDLE_WAIT = 0.05   # s of real time a poll may wait when the simulation has nothing else to do
    CLOSE_WAIT = 1.0   # s of real time close() spends delivering pending output

    def __init__(self, poll: int = MS) -> None:
        if poll <= 0:
            raise PlatformError(f"console poll period must be positive, not {poll} ps")
        self.poll = poll
        self.pending = bytearray()
        self._receiver: Receiver | None = None
        self._sim: Simulation | None = None
        self._closed = False

    # -- the CharBackend interface -----------------------------------------
    def attach(self, sim: Simulation) -> None:
        self._sim = sim
        sim.add_finalizer(self.close)
        atexit.register(self.close)       # also when the process ends without closing the simulation
        sim.schedule(self.poll, self._tick)

    def set_receiver(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def write(self, data: bytes) -> None:
        self.pending += data
        if self._closed:
            self._spill()                 # written after the end: nowhere else to go
        else:
            self._flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._closing()
        deadline = time.monotonic() + self.CLOSE_WAIT
        while self.pending and self._can_send() and time.monotonic() < deadline:
            if not self._flush():
                time.sleep(0.01)
        self._spill()
        self._release()

    def _spill(self) -> None:
        if self.pending:
            sys.stderr.write(f"cosim: {self.describe()}: {len(self.pending)} bytes of output were not delivered:\n")
            sys.stderr.write(self.pending.decode(errors="replace") + "\n")
            self.pending.clear()

    # -- for subclasses ----------------------------------------------------
    def describe(self) -> str:
        return type(self).__name__

    def _watched(self) -> list[int]:
        raise NotImplementedError

    def _readable(self, fd: int) -> None:
        raise NotImplementedError

    def _send(self, data: bytes) -> int:
        """Send what can be sent without blocking; return how many bytes were taken."""
        raise NotImplementedError

    def _can_send(self) -> bool:
        return True

    def _closing(self) -> None:
        """Last chance to find a receiver for pending output (a client waiting to be accepted)."""

    def _release(self) -> None:
        """Give the host resources back (restore the terminal, close descriptors)."""

    def _deliver(self, data: bytes) -> None:
        if data and self._receiver is not None:
            self._receiver(data)

    # -- polling -----------------------------------------------------------
    def _flush(self) -> bool:
        if not self.pending or not self._can_send():
            return False
        try:
            sent = self._send(bytes(self.pending))
        except BlockingIOError:
            sent = 0
        del self.pending[:sent]
        return sent > 0

    def _tick(self) -> None:
        sim = self._sim
        assert sim is not None
        if self._closed:
            return
        self._flush()
        idle = sim.peek() == float("inf")
        watched = self._watched()
        if watched:
            ready, _, _ = select.select(watched, [], [], self.IDLE_WAIT if idle else 0)
            for fd in ready:
                self._readable(fd)
        elif sim.quiet:
            return                        # nothing can ever arrive: let the simulation end (or see a deadlock)
        sim.schedule(self.poll, self._tick)


class StdioBackend(_PolledBackend):
    """The cosim process's terminal: output to stdout, keys from stdin.

    In raw mode when stdin is a terminal (restored when the simulation is
    closed, or at the latest when the process exits). Ctrl-A X ends the run;
    Ctrl-A Ctrl-A sends Ctrl-A. Input is polled every `poll` of simulated time.
    """

    ESCAPE = 0x01

    def __init__(self, poll: int = MS, stdin: int | None = None, stdout: int | None = None) -> None:
        super().__init__(poll)
        self._stdin, self._stdout = stdin, stdout
        self._in = self._out = -1             # resolved at attach: stdin may be replaced until then
        self._saved: list | None = None
        self._escape = False
        self._eof = False

    def describe(self) -> str:
        return "stdio console"

    def attach(self, sim: Simulation) -> None:
        self._in = sys.stdin.fileno() if self._stdin is None else self._stdin
        self._out = sys.stdout.fileno() if self._stdout is None else self._stdout
        if os.isatty(self._in):
            self._saved = termios.tcgetattr(self._in)
            tty.setraw(self._in)
        super().attach(sim)

    def _release(self) -> None:
        if self._saved is not None:
            termios.tcsetattr(self._in, termios.TCSADRAIN, self._saved)
            self._saved = None

    def write(self, data: bytes) -> None:
        if self._saved is not None:
            data = data.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
        super().write(data)

    def _can_send(self) -> bool:
        return self._out >= 0                 # output before attach waits for it

    def _send(self, data: bytes) -> int:
        return os.write(self._out, data)

    def _watched(self) -> list[int]:
        return [] if self._eof else [self._in]

    def _readable(self, fd: int) -> None:
        data = os.read(self._in, 1024)
        if not data:
            self._eof = True              # EOF on a pipe: stop reading, keep the simulation going
            return
        out = bytearray()
        for byte in data:
            if self._escape:
                self._escape = False
                if byte in (ord("x"), ord("X")):
                    assert self._sim is not None
                    self._deliver(bytes(out))     # what was typed before the escape still counts
                    self._sim.request_stop(0, "Ctrl-A X on the console")
                    return
                out.append(byte)
            elif byte == self.ESCAPE:
                self._escape = True
            else:
                out.append(byte)
        self._deliver(bytes(out))


class TcpBackend(_PolledBackend):
    """A TCP server for the console (raw bytes: `nc 127.0.0.1 4555`, `socat - TCP:127.0.0.1:4555`).

    Listens on `host:port` (port 0 picks a free one; see `address`) from
    construction. One client at a time: a second is told the console is busy
    and disconnected. Output written while no client is connected is kept and
    sent when one connects; input comes from the connected client.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, poll: int = MS, announce: bool = True) -> None:
        super().__init__(poll)
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self._server = socket.create_server((host, port), family=family, backlog=1)
        except OSError as error:
            raise PlatformError(f"cannot listen on tcp:{host}:{port}: {error.strerror or error}") from error
        self._server.setblocking(False)
        self.address: tuple[str, int] = self._server.getsockname()[:2]
        self._client: socket.socket | None = None
        self._announce = announce

    def describe(self) -> str:
        host = f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0]
        return f"console on tcp:{host}:{self.address[1]}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    def attach(self, sim: Simulation) -> None:
        if self._announce:
            print(f"cosim: {self.describe()} (connect with: nc {self.address[0]} {self.address[1]})",
                  file=sys.stderr, flush=True)
        super().attach(sim)

    def _watched(self) -> list[int]:
        fds = [self._server.fileno()]
        if self._client is not None:
            fds.append(self._client.fileno())
        return fds

    def _readable(self, fd: int) -> None:
        if fd == self._server.fileno():
            self._accept()
            return
        assert self._client is not None
        try:
            data = self._client.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop()
            return
        self._deliver(data)

    def _accept(self) -> None:
        try:
            client, _ = self._server.accept()
        except (BlockingIOError, InterruptedError):
            return
        if self._client is not None:
            client.sendall(b"cosim: console busy (one client at a time)\r\n")
            client.close()
            return
        client.setblocking(False)
        self._client = client
        self._flush()                     # what was written while nobody listened

    def _closing(self) -> None:
        if self._client is None:
            self._accept()                # connected but not yet accepted by a poll

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _can_send(self) -> bool:
        return self._client is not None

    def _send(self, data: bytes) -> int:
        assert self._client is not None
        try:
            return self._client.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:                   # the client went away: keep the output for the next one
            self._drop()
            return 0

    def _release(self) -> None:
        self._drop()
        self._server.close()


class PtyBackend(_PolledBackend):
    """A pseudo-terminal for the console: connect a terminal program to `path` (printed at start).

    The slave side is in raw mode, so bytes pass unchanged. cosim keeps the
    slave open as well, so output written while no program has it open waits
    in the terminal (and then in `pending`) instead of failing.
    """

    def __init__(self, poll: int = MS, announce: bool = True) -> None:
        super().__init__(poll)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._announce = announce

    def describe(self) -> str:
        return f"console on {self.path}"

    def attach(self, sim: Simulation) -> None:
        if self._announce:
            print(f"cosim: {self.describe()} (connect with: screen {self.path})", file=sys.stderr, flush=True)
        super().attach(sim)

    def _watched(self) -> list[int]:
        return [self._master]

    def _readable(self, fd: int) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        self._deliver(data)

    def _send(self, data: bytes) -> int:
        return os.write(self._master, data)

    def _release(self) -> None:
        for fd in (self._master, self._slave):
            os.close(fd)


def host_port(text: str) -> tuple[str, int]:
    """'[HOST:]PORT' -> (host, port), the host 127.0.0.1 unless given; ValueError for a bad port."""
    host, sep, port_text = text.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ValueError(f"the port must be a number 0..65535, not {port_text!r}")
    return (host.strip("[]") if sep else "") or "127.0.0.1", port


def open_backend(spec: str | CharBackend) -> CharBackend:
    """A back-end from a platform's `console` property.

    `stdio`, `none`, `buffer`, `pty`, `tcp:PORT`, `tcp:HOST:PORT`; a
    CharBackend object is returned as it is.
    """
    if not isinstance(spec, str):
        return spec
    kind, _, rest = spec.strip().partition(":")
    if kind == "tcp" and rest:
        try:
            host, port = host_port(rest)
        except ValueError:
            raise PlatformError(f"console {spec!r}: the port must be a number 0..65535 (e.g. tcp:127.0.0.1:4555)") \
                from None
        return TcpBackend(host, port)
    simple: dict[str, Callable[[], CharBackend]] = {
        "stdio": StdioBackend, "none": NullBackend, "buffer": BufferBackend, "pty": PtyBackend,
    }
    if rest or kind not in simple:
        raise PlatformError(f"unknown console {spec!r}: use stdio, buffer, none, pty, tcp:PORT or tcp:HOST:PORT")
    return simple[kind]()


def attach_backend(backend: CharBackend, clock: object) -> None:
    """Connect a UART model's back-end to the simulation its clock belongs to.

    Called from the model's `attach`; a bare Clock (no simulation behind it) leaves
    the back-end detached, so input polling only runs inside a real simulation.
    """
    if isinstance(clock, Simulation):
        backend.attach(clock)
