"""Character back-ends: where a UART's bytes go and where its input comes from.

A UART model sees only the narrow `CharBackend` interface: `write(data)` for
output and a receiver callback for input. Input is delivered inside the
simulation by a poller, so models are only ever called from the kernel.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import tty
from collections.abc import Callable
from typing import Protocol

from ._errors import PlatformError
from ._kernel import Simulation
from ._time import MS

__all__ = ["CharBackend", "BufferBackend", "StdioBackend", "NullBackend", "console_backend", "attach_backend"]

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

    def run_until(self, marker: str, timeout: int, start: int = 0) -> str:
        """Run the simulation until `marker` appears in the output after index `start`.

        Returns the output from `start` to the end of the marker; raises
        TimeoutError (with the tail of the output) after `timeout` of simulated time.
        """
        assert self._sim is not None, "attach the backend to a simulation first"
        sim = self._sim
        deadline = sim.now + timeout
        step = 10 * MS
        while marker not in self.output[start:].decode(errors="replace"):
            if sim.now >= deadline or sim.stop_request is not None:
                tail = self.output[-400:].decode(errors="replace")
                raise TimeoutError(f"{marker!r} not seen by {deadline} ps; output ends with:\n{tail}")
            sim.run(until=min(sim.now + step, deadline))
        text = self.output[start:].decode(errors="replace")
        return text[: text.index(marker) + len(marker)]


class StdioBackend:
    """The cosim process's terminal: output to stdout, keys from stdin.

    In raw mode when stdin is a terminal (restored when the simulation ends,
    whatever the reason). Ctrl-A X ends the run; Ctrl-A Ctrl-A sends Ctrl-A.
    Input is polled every `poll` of simulated time; when nothing else is
    scheduled (the guest idles waiting for a key), the poller waits in real
    time rather than letting the simulation end or spin.
    """

    ESCAPE = 0x01

    def __init__(self, poll: int = MS, stdin: int | None = None, stdout: int | None = None) -> None:
        self.poll = poll
        self._in = sys.stdin.fileno() if stdin is None else stdin
        self._out = sys.stdout.fileno() if stdout is None else stdout
        self._receiver: Receiver | None = None
        self._sim: Simulation | None = None
        self._saved: list | None = None
        self._escape = False

    def attach(self, sim: Simulation) -> None:
        self._sim = sim
        if os.isatty(self._in):
            self._saved = termios.tcgetattr(self._in)
            tty.setraw(self._in)
        sim.add_finalizer(self.close)
        sim.schedule(self.poll, self._tick)

    def close(self) -> None:
        if self._saved is not None:
            termios.tcsetattr(self._in, termios.TCSADRAIN, self._saved)
            self._saved = None

    def write(self, data: bytes) -> None:
        if self._saved is not None:
            data = data.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
        os.write(self._out, data)

    def set_receiver(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def _tick(self) -> None:
        sim = self._sim
        assert sim is not None
        # Nothing else scheduled: the guest waits for us, so wait in real time.
        idle = sim.peek() == float("inf")
        ready, _, _ = select.select([self._in], [], [], 0.05 if idle else 0)
        if ready:
            data = os.read(self._in, 1024)
            if not data:
                self._in_closed()
                return
            self._deliver(data)
        sim.schedule(self.poll, self._tick)

    def _in_closed(self) -> None:
        # EOF on a pipe: stop polling, but keep the simulation going.
        pass

    def _deliver(self, data: bytes) -> None:
        out = bytearray()
        for byte in data:
            if self._escape:
                self._escape = False
                if byte in (ord("x"), ord("X")):
                    assert self._sim is not None
                    self._sim.request_stop(0, "Ctrl-A X on the console")
                    return
                out.append(byte)
            elif byte == self.ESCAPE:
                self._escape = True
            else:
                out.append(byte)
        if out and self._receiver is not None:
            self._receiver(bytes(out))


def console_backend(value: "str | CharBackend") -> CharBackend:
    """A platform's `console` property: 'stdio', 'buffer', 'none', or a CharBackend given from Python."""
    if not isinstance(value, str):
        return value
    backends = {"stdio": StdioBackend, "buffer": BufferBackend, "none": NullBackend}
    if value not in backends:
        raise PlatformError(f"unknown console {value!r}: use stdio, buffer or none")
    return backends[value]()


def attach_backend(backend: CharBackend, clock: object) -> None:
    """Connect a UART model's back-end to the simulation its clock belongs to.

    Called from the model's `attach`; a bare Clock (no simulation behind it) leaves
    the back-end detached, so input polling only runs inside a real simulation.
    """
    if isinstance(clock, Simulation):
        backend.attach(clock)
