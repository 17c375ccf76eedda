"""The simulation kernel: a SimPy environment with integer picosecond time.

`Simulation` adds what a virtual platform needs on top of SimPy: cancellable
scheduled calls for lazy device models, stop requests from models (a guest
asking to exit with a status), the quantum keeper's clock advance, and a
summary at the end. Where SimPy's behaviour changes, it is by subclassing, as
SimPy itself does (`Timeout`, `RealtimeEnvironment`): `Environment` moves the
clock for the quantum keeper, `ScheduledCall` is an event that triggers itself
with a callback, and `UrgentEvent` is one processed before the others due at
its time.
"""

from __future__ import annotations

import math
import signal as _signals
import threading
import time as _wall
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

import simpy
from simpy.core import NORMAL, URGENT, BoundClass, EmptySchedule, StopSimulation
from simpy.events import PENDING

from ._errors import CosimError, SimulationError
from ._time import SEC, format_time, parse_time

__all__ = ["Simulation", "RealtimeSimulation", "Environment", "UrgentEvent", "Resume", "Summary", "Clock",
           "ScheduledCall", "OneShot", "StopRequest", "DEADLOCK_STATUS", "SIGNAL_STATUS_BASE"]


class Clock(Protocol):
    """The narrow view of time a device model gets: read the time, schedule a call."""

    @property
    def now(self) -> int: ...

    def schedule(self, delay: int, callback: Callable[[], None]) -> "ScheduledCall": ...


class Environment(simpy.Environment):
    """SimPy's environment, plus the quantum keeper's clock advance (`advance_to`)."""

    def __init__(self, initial_time: int = 0) -> None:
        super().__init__(initial_time)
        # SimPy binds its event factories (timeout, event, process, ...) to the instance only when
        # they are in the instance's own class; in a subclass each call would build a bound
        # method again (ping-pong: 780 -> 940 ns per event). Bind them as SimPy does for itself.
        for name, factory in vars(simpy.Environment).items():
            if type(factory) is BoundClass:
                setattr(self, name, getattr(self, name))

    def advance_to(self, when: int) -> None:
        """Move the clock forward without processing events (the quantum keeper's sync).

        Only legal while no event is due before `when`: a CPU that ran ahead
        inside its budget pushes the clock to its local time before touching a
        device, so the device reads the time the guest has reached.
        """
        if when < self._now:
            raise SimulationError(f"time cannot go backwards ({format_time(when)} < {format_time(int(self._now))})")
        upcoming = self.peek()
        if when > upcoming:
            raise SimulationError(f"advance to {format_time(when)} would skip an event due at {format_time(int(upcoming))}")
        self._now = when

    def horizon(self) -> int | float:
        """Time of the next pending event that is not a CPU's `Resume`; `math.inf` when none.

        A CPU plans its run up to the next event that can change what its guest sees; the
        resumption of another CPU is not one (the CPUs of one machine take turns; other
        machines' CPUs run side by side in windows of a quantum, not in lock step). The heap's
        root is the usual answer; below a `Resume` only its children can be earlier, so
        the walk visits about two entries per CPU.
        """
        queue = self._queue
        if not queue or type(queue[0][3]) is not Resume:
            return queue[0][0] if queue else math.inf
        best: int | float = math.inf
        stack = [0]
        size = len(queue)
        while stack:
            index = stack.pop()
            if index >= size or queue[index][0] >= best:
                continue                  # a heap: nothing below is earlier
            if type(queue[index][3]) is Resume:
                stack += (2 * index + 1, 2 * index + 2)
            else:
                best = queue[index][0]
        return best


class Resume(simpy.Timeout):
    """A CPU process's own resumption after a run: `Environment.horizon` looks past it."""


class UrgentEvent(simpy.Event):
    """An event that, once triggered, is processed before the NORMAL events due at the same time
    (as SimPy's own Initialize and Interruption are): what ends a run ends it before other work."""

    def succeed_urgently(self, value: Any = None, delay: int = 0) -> None:
        """Trigger the event, to be processed `delay` ps from now ahead of the events due then."""
        if self._value is not PENDING:
            raise SimulationError(f"{self} has already been triggered")
        self._ok = True
        self._value = value
        self.env.schedule(self, URGENT, delay)


class ScheduledCall(simpy.Event):
    """A callback due at `when`; `cancel()` makes it a no-op (SimPy events cannot be removed).

    It is itself the SimPy event on the queue, so scheduling costs one object. It
    triggers itself at creation, initialising its own Event state inline as SimPy's
    Timeout does (a `super().__init__()` costs ~10% of a scheduled call).
    """

    def __init__(self, env: simpy.Environment, delay: int, callback: Callable[[], None]) -> None:
        self.env = env
        self.callbacks = [self._fire]
        self._ok = True
        self._value = None
        self.when = int(env.now) + delay
        self._callback: Callable[[], None] | None = callback
        env.schedule(self, NORMAL, delay)

    @property
    def active(self) -> bool:
        return self._callback is not None

    def cancel(self) -> None:
        self._callback = None

    def _fire(self, _event: simpy.Event) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            try:
                callback()
            except CosimError:
                raise                     # already names what failed
            except Exception as error:
                raise SimulationError(f"scheduled call {_describe(callback)} failed at "
                                      f"{format_time(self.when)}: {type(error).__name__}: {error}") from error


def _describe(callback: Callable[[], None]) -> str:
    """`model 'uart0' (Pl011._expire)` for a device's bound method; the callable's name otherwise."""
    func = getattr(callback, "func", callback)          # functools.partial
    owner = getattr(func, "__self__", None)
    if isinstance(owner, OneShot):
        return _describe(owner._callback)
    name = getattr(func, "__qualname__", repr(func))
    model = getattr(owner, "name", None)
    return f"of model {model!r} ({name})" if isinstance(model, str) and model else name


class OneShot:
    """A device's restartable timer: at most one pending call of `callback` (STYLE.md #7).

    `start(clock, delay)` replaces any pending call, `cancel()` drops it; a receive
    timeout or a timer expiry is one of these instead of hand-kept ScheduledCalls.
    """

    __slots__ = ("_callback", "_call")

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self._call: ScheduledCall | None = None

    @property
    def pending(self) -> bool:
        return self._call is not None

    @property
    def when(self) -> int | None:
        """Absolute time (ps) of the pending call; None when none is pending."""
        return self._call.when if self._call is not None else None

    def start(self, clock: Clock, delay: int) -> None:
        self.cancel()
        self._call = clock.schedule(delay, self._fire)

    def cancel(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None

    def _fire(self) -> None:
        self._call = None
        self._callback()


@dataclass(frozen=True)
class StopRequest:
    status: int
    reason: str
    time: int


# Exit statuses of runs a guest did not end itself (docs/concepts.md, "Why a run stops").
DEADLOCK_STATUS = 3
SIGNAL_STATUS_BASE = 128       # 128 + the signal number, as a shell reports a process killed by it


@dataclass
class Summary:
    """What a run did; `str()` gives the table printed at the end of `cosim run`."""

    sim_time: int
    wall_time: float
    events: int
    stop: StopRequest | None
    extra: dict[str, str] = field(default_factory=dict)
    ended: str = ""                # why a run without a stop request ended (--until, no events left)

    @property
    def status(self) -> int:
        return self.stop.status if self.stop else 0

    def __str__(self) -> str:
        ratio = (self.sim_time / 1e12) / self.wall_time if self.wall_time > 0 else math.inf
        rows = [
            ("simulated time", format_time(self.sim_time)),
            ("wall time", f"{self.wall_time:.3f} s"),
            ("simulated/wall", f"{ratio:.3g}x"),
            ("events processed", f"{self.events}"),
        ]
        if self.stop:
            rows.append(("stopped by", f"{self.stop.reason} (status {self.stop.status}) at {format_time(self.stop.time)}"))
        elif self.ended:
            rows.append(("stopped by", self.ended))
        rows += list(self.extra.items())
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


class Simulation:
    """A simulation: SimPy underneath, integer picoseconds on top.

    Processes are ordinary SimPy generator functions; `sim.env` is the SimPy
    environment for anything not wrapped here.
    """

    def __init__(self) -> None:
        self.env = Environment(initial_time=0)
        self.events_processed = 0  # counted by run(); SimPy itself keeps no count
        self._stop_event = UrgentEvent(self.env)
        self._stop: StopRequest | None = None
        self._finalizers: list[Callable[[], None]] = []
        self._summaries: list[Callable[[], dict[str, str]]] = []
        self._quiet: list[Callable[[], None]] = []
        self._limit: simpy.Event | None = None    # the event that ends the current run at `until`
        self._signal = 0           # a signal delivered during the run, handled at the next event
        # Asked before a stop request with a `source` takes effect (cosim.net.Cluster: one machine
        # of several powering off); returns whether the run ends now.
        self.stop_filter: Callable[[int, str, object], bool] | None = None
        self.cpu_turns: dict[object, Any] = {}   # per machine, whose turn it is among its CPUs (cosim.cpu)

    # -- time ---------------------------------------------------------------
    @property
    def now(self) -> int:
        return int(self.env.now)

    def peek(self) -> int | float:
        """Time of the next pending event, `math.inf` when none is scheduled."""
        return self.env.peek()

    def horizon(self) -> int | float:
        """Time of the next pending event other than a CPU's resumption: `Environment.horizon`."""
        return self.env.horizon()

    @property
    def quiet(self) -> bool:
        """True when nothing is scheduled but the end of the current run (`run(until=)`)."""
        queue = self.env._queue           # SimPy's heap of (time, priority, id, event)
        return not queue or (len(queue) == 1 and queue[0][3] is self._limit)

    def advance_to(self, when: int) -> None:
        """Move the clock forward to `when` without processing events: `Environment.advance_to`."""
        self.env.advance_to(when)

    # -- scheduling ---------------------------------------------------------
    def timeout(self, delay: int, value: Any = None) -> simpy.Timeout:
        return self.env.timeout(_delay(delay, "timeout"), value)

    def schedule(self, delay: int, callback: Callable[[], None]) -> ScheduledCall:
        """Call `callback()` after `delay` ps; cancel it with the returned handle."""
        return ScheduledCall(self.env, _delay(delay, "schedule"), callback)

    def process(self, generator: Generator[simpy.Event, Any, Any]) -> simpy.Process:
        return self.env.process(generator)

    def event(self) -> simpy.Event:
        return self.env.event()

    # -- ending -------------------------------------------------------------
    @property
    def stop_request(self) -> StopRequest | None:
        return self._stop

    def request_stop(self, status: int = 0, reason: str = "stop requested", source: object = None) -> None:
        """End the run after the current event; the first request wins.

        `source` is what asks (a CPU whose guest powered off): with a `stop_filter` set, the
        filter decides whether the whole run ends (a machine of several may just stop alone).
        """
        if source is not None and self.stop_filter is not None and not self.stop_filter(status, reason, source):
            return
        if self._stop is None:
            self._stop = StopRequest(status, reason, self.now)
            self._stop_event.succeed_urgently(self._stop)     # the run ends before other work due now

    def add_finalizer(self, finalizer: Callable[[], None]) -> None:
        """Run `finalizer()` when the simulation is closed: after a stop, an error, or `close()`."""
        self._finalizers.append(finalizer)

    def add_summary(self, provider: Callable[[], dict[str, str]]) -> None:
        """Contribute rows to the end-of-run summary (a CPU adds instructions, MIPS, ...)."""
        self._summaries.append(provider)

    def add_quiet_check(self, check: Callable[[], None]) -> None:
        """Call `check()` when no event is left; it may `request_stop` (a CPU waiting for an
        interrupt that nothing can raise any more reports a deadlock)."""
        self._quiet.append(check)

    def signal(self, signum: int) -> None:
        """Note a signal; the run stops at the next event with status 128 + `signum`.

        Safe from a signal handler: it only stores a number, so a handler running
        inside a native callback (unicorn's hooks) raises nothing there.
        """
        self._signal = self._signal or signum

    @property
    def signalled(self) -> bool:
        return self._signal != 0

    def _stop_for_signal(self) -> None:
        try:
            name = _signals.Signals(self._signal).name
        except ValueError:
            name = f"signal {self._signal}"
        self.request_stop(SIGNAL_STATUS_BASE + self._signal, f"{name} received")

    def run(self, until: int | str | None = None) -> Summary:
        """Run until the absolute time `until` (ps or text like '10 ms'), a stop request, or no events.

        A run can be continued by calling `run()` again unless it was stopped.
        On a stop request or an error the simulation is closed (finalizers run,
        so output is flushed and file descriptors closed) before returning or
        raising. Ctrl-C (SIGINT with Python's default handler) stops the run at
        the next event, then raises KeyboardInterrupt: raised where it arrives,
        it could land in a native callback, where cffi prints it and drops it.
        """
        previous = None
        if (threading.current_thread() is threading.main_thread()
                and _signals.getsignal(_signals.SIGINT) is _signals.default_int_handler):
            previous = _signals.signal(_signals.SIGINT, lambda signum, _frame: self.signal(signum))
        try:
            summary = self._run(until)
        finally:
            if previous is not None:
                _signals.signal(_signals.SIGINT, previous)
        if previous is not None and self._signal == _signals.SIGINT:
            raise KeyboardInterrupt
        return summary

    def _run(self, until: int | str | None) -> Summary:
        if isinstance(until, str):
            until = parse_time(until)
        if until is not None and until < self.now:
            raise SimulationError(f"--until {format_time(until)} is before the current time {format_time(self.now)}")
        start_wall = _wall.perf_counter()
        start_events = self.events_processed
        stoppers = [self._stop_event]
        limit = self._limit = None
        if until is not None:
            # Like SimPy's numeric `until`: urgent, so events due exactly at `until` do not run.
            limit = UrgentEvent(self.env)
            limit.succeed_urgently(delay=until - self.now)
            stoppers.append(limit)
            self._limit = limit
        queue = self.env._queue
        try:
            if self._stop is None:
                for event in stoppers:
                    if event.callbacks is not None:
                        event.callbacks.append(StopSimulation.callback)
                step = self._stepper()
                while True:
                    if self._signal:
                        self._stop_for_signal()
                        raise StopSimulation(None)
                    if len(queue) < 2 and self.quiet:
                        # Nothing left but the end of the run: is anything waiting that nothing can wake?
                        for check in self._quiet:
                            check()
                        if self._stop is not None:
                            raise StopSimulation(None)
                        if not queue:
                            raise EmptySchedule()
                    step()
                    self.events_processed += 1
        except (StopSimulation, EmptySchedule):
            pass  # stopped, reached `until`, or the platform went quiet
        except BaseException:
            self.close()
            raise
        finally:
            # A limit not reached must not stop a later run().
            if limit is not None and limit.callbacks and StopSimulation.callback in limit.callbacks:
                limit.callbacks.remove(StopSimulation.callback)
        if self._stop is not None:
            self.close()
        if self._stop is not None:
            ended = ""
        elif until is not None and self.now >= until:
            ended = f"--until {format_time(until)} reached"
        else:
            ended = "no event left to simulate"
        summary = Summary(
            sim_time=self.now,
            wall_time=_wall.perf_counter() - start_wall,
            events=self.events_processed - start_events,
            stop=self._stop,
            ended=ended,
        )
        for provider in self._summaries:
            summary.extra.update(provider())
        return summary

    def _stepper(self) -> Callable[[], None]:
        """The call that processes one event; subclasses change how a run advances (RealtimeSimulation)."""
        return self.env.step

    def close(self) -> None:
        """Run the finalizers once (newest first); idempotent."""
        finalizers, self._finalizers = self._finalizers, []
        for finalizer in reversed(finalizers):
            finalizer()

    def __enter__(self) -> "Simulation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _delay(delay: int, what: str) -> int:
    """A delay as exact whole picoseconds: 1.5, nan or inf would corrupt or stall the schedule."""
    if isinstance(delay, bool) or not isinstance(delay, int):
        if isinstance(delay, float) and delay.is_integer():
            delay = int(delay)
        else:
            raise SimulationError(f"{what}: a delay must be a whole number of ps, not {delay!r}")
    if delay < 0:
        raise SimulationError(f"{what}: cannot schedule {delay} ps in the past")
    return delay


class RealtimeSimulation(Simulation):
    """A simulation whose clock never runs ahead of wall-clock time (scaled by `factor`).

    For interactive sessions: a guest idling at a shell prompt keeps a plausible
    clock and leaves the host CPU idle, where a plain Simulation skips ahead as
    fast as it can. When the models cannot keep up, simulated time simply runs
    slower than wall time (SimPy's RealtimeEnvironment with strict=False).
    """

    def __init__(self, factor: float = 1.0) -> None:
        super().__init__()
        if not factor > 0:
            raise SimulationError(f"real-time factor must be positive, not {factor}")
        self.factor = factor

    def _stepper(self) -> Callable[[], None]:
        env, clock, sleep = self.env, _wall.perf_counter, _wall.sleep
        wall_start, sim_start = clock(), self.now     # each run() paces from where it starts
        scale = 1.0 / (SEC * self.factor)

        def step() -> None:
            due = env.peek()
            if due != math.inf:
                ahead = wall_start + (due - sim_start) * scale - clock()
                while ahead > 0:
                    sleep(min(ahead, 0.1))        # in slices: a signal ends the run within 0.1 s
                    if self._signal:
                        return
                    ahead = wall_start + (due - sim_start) * scale - clock()
            env.step()

        return step
