"""The CPU process, written once for every backend.

Each iteration (the loop of the seed thread: "KVM exit to userspace on WFI",
linux-kernel / kvmarm lists, October 2023):

    budget = min(quantum, time to the next pending event)     # gem5's KVM CPU
    exit   = backend.run(budget)                               # guest runs natively / emulated
    Idle         -> wait for an interrupt: SimPy jumps to the next event
    BudgetSpent  -> advance simulated time by what the guest consumed; devices run
    DeviceAccess -> an access scheduled something inside the budget: re-plan
    Stop, Breakpoint -> end the simulation; a CpuError raised by the backend fails it

Because the budget never reaches past the next pending event, the guest can
run ahead without missing anything, and a device touched mid-quantum sees the
guest's local time (`Keeper.sync`).

The CPUs of one machine (SMP: `Cpu(machine=...)` the same) take turns
(`_Turns`): one CPU running at a time, each for a quantum of simulated time
before the next CPU waiting for its turn runs, in a fixed order. So the time
the CPUs read is one clock that never goes back from one CPU to another: what
one CPU saw as time t, no CPU of the machine sees earlier afterwards (Linux's
timekeeping compares counter values taken on different CPUs). The turn is held
while the CPU's run is being timed (its `Resume`). A CPU that idles or is
powered off (`Cpu.power_off`, PSCI CPU_OFF) gives its turn up and costs nothing
until an interrupt or `power_on` brings it back.

CPUs of different machines (several platforms on one simulation, cosim.net)
share no memory, so they need no turns: each plans its run up to the horizon
(`Simulation.horizon`: the next pending event that is not another CPU's
`Resume`), and the machines run side by side in windows of a quantum, each
at full speed. Time never goes backwards even so: a device access moves the
clock to the guest's local time only up to the next pending event of any
kind (`Keeper.sync`). With one CPU nothing of this is on the path: it always
has the turn, and its horizon is the next event.
"""

from __future__ import annotations

import math
import time as _wall
from collections import Counter, deque
from collections.abc import Generator
from functools import partial
from typing import Any, ClassVar

import simpy

from .._device import Device
from .._errors import PlatformError, SimulationError
from .._kernel import DEADLOCK_STATUS, Clock, Resume, Simulation
from .._time import US, format_time
from ._backend import Breakpoint, CpuBackend, CpuError, Idle, IdleKind, Stop

__all__ = ["Cpu", "Keeper"]


class Keeper:
    """The quantum keeper handed to `backend.run` (implements `QuantumKeeper`).

    Called on every device access of a KVM guest, so it keeps the environment's `peek` (how far the
    clock may move) and `horizon` (what ends the run: the next event other than another CPU's
    resumption) at hand.
    """

    __slots__ = ("sim", "start", "budget", "end", "interrupt", "_env", "_peek", "_horizon")

    def __init__(self, sim: Simulation, start: int, budget: int) -> None:
        self.sim = sim
        self.start = start
        self.budget = budget
        self.end = start + budget
        self.interrupt = False  # an interrupt input changed during this run
        self._env = sim.env
        self._peek = sim.env.peek
        self._horizon = sim.env.horizon

    def sync(self, elapsed: int) -> None:
        """Bring the kernel's clock to the guest's local time before a device access (never past
        a pending event, another CPU's resumption included: time does not go backwards)."""
        target = min(self.start + elapsed, self.end, self._peek())
        if target > self._env.now:
            self._env.advance_to(target)

    @property
    def interrupted(self) -> bool:
        """True once a signal asked the simulation to stop: a backend may end its run early."""
        return self.sim.signalled

    @property
    def must_yield(self) -> bool:
        """True when the run must end now: a new event is due inside the budget, or an IRQ changed."""
        return self.interrupt or self._horizon() < self.end


class _Turns:
    """Whose turn it is among the CPUs of one machine: the holder runs, the others wait in order.

    A CPU takes the turn when it has work (`take`: None when it has it at once, else the event
    that gives it); it passes it on after a quantum of simulated time if another CPU waits
    (`pass_on`), and gives it up when it idles or powers off (`give_up`).
    """

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.holder: Cpu | None = None
        self.waiting: deque[tuple[Cpu, simpy.Event]] = deque()

    @classmethod
    def of(cls, sim: Simulation, machine: object | None) -> "_Turns":
        """The turns of `machine`'s CPUs (kept on the simulation: a table beside it would keep every
        CPU, and so it, alive); a CPU of no machine has turns of its own."""
        if machine is None:
            return cls(sim)
        return sim.cpu_turns.setdefault(machine, cls(sim))

    def take(self, cpu: "Cpu") -> simpy.Event | None:
        if self.holder is None or self.holder is cpu:
            self.holder = cpu
            return None
        event = self.sim.event()
        self.waiting.append((cpu, event))
        return event

    def give_up(self, cpu: "Cpu") -> None:
        if self.holder is cpu:
            self.holder = None
            if self.waiting:
                self.holder, event = self.waiting.popleft()
                event.succeed()

    def pass_on(self, cpu: "Cpu") -> simpy.Event | None:
        if not self.waiting:
            return None
        self.give_up(cpu)
        return self.take(cpu)


class Cpu(Device):
    """A CPU in a platform: interrupt inputs, a backend, and the quantum loop.

    Interrupts: inputs named after the backend's lines ("irq", "fiq" on Arm;
    "intr" on x86), wired by the platform from the interrupt controller.
    Properties: backend (a CpuBackend), quantum (ps; SystemC's global quantum), machine (what the
    CPU belongs to, e.g. its platform: the CPUs of one machine take turns; None: a CPU of its own).
    """

    model: ClassVar[str] = "cpu"

    def __init__(self, name: str, *, backend: CpuBackend, quantum: int = 100 * US,
                 lines: tuple[str, ...] = ("irq", "fiq"), machine: object | None = None) -> None:
        super().__init__(name)
        if quantum <= 0:
            raise PlatformError(f"{name}: quantum must be positive, not {quantum} ps")
        period = getattr(backend, "period", None)    # backends that count instructions at a fixed period
        if isinstance(period, int) and quantum < period:
            # A run retires at least one instruction: a shorter quantum would make time depend on it.
            raise PlatformError(f"{name}: quantum {format_time(quantum)} is shorter than one CPU period "
                                f"({format_time(period)})")
        self.backend = backend
        self.quantum = quantum
        self.machine = machine
        self.pins = {line: self.input(line, partial(self._line, line)) for line in lines}
        self._sim: Simulation | None = None
        self._keeper: Keeper | None = None
        self._wake: simpy.Event | None = None
        self.instructions = 0
        self.idle_skipped = 0
        self._idle_since: int | None = None   # when the guest went idle, while it is
        self.exits: Counter[str] = Counter()
        self._wall_start = 0.0
        # A debugger (cosim.gdb) attached to this CPU: asked before each run whether to go on, and
        # handed the debug stops. None when no debugger is attached: one attribute test per quantum.
        self.debugger: Any = None
        # A trace observer (cosim.trace): told of every run and idle jump; None when not tracing.
        self.observer: Any = None
        # Powered off (a secondary before PSCI CPU_ON, or after CPU_OFF): runs nothing, costs nothing.
        self.online = True
        self._power: simpy.Event | None = None
        self._turns: _Turns | None = None
        self._turn_start = 0

    def attach(self, clock: Clock) -> None:
        if not isinstance(clock, Simulation):
            raise PlatformError(f"{self.name}: a CPU needs the full Simulation, not just a clock")
        super().attach(clock)
        if self._sim is None:
            self._sim = clock
            clock.add_finalizer(self.backend.close)
            clock.add_summary(self.summary)
            clock.add_quiet_check(self._quiet)
            self._wall_start = _wall.perf_counter()
            self._turns = _Turns.of(clock, self.machine)
            clock.process(self._loop())

    # -- power (PSCI CPU_ON / CPU_OFF) ----------------------------------------
    def power_on(self) -> None:
        """Bring an offline CPU back: it takes its turn to run from the next event on."""
        self.online = True
        if self._power is not None and not self._power.triggered:
            self._power.succeed()

    def power_off(self) -> None:
        """Take the CPU offline once its current run ends (its own CPU_OFF, or a CPU never started)."""
        self.online = False
        if self._keeper is not None:
            self._keeper.interrupt = True          # end the run at the next device access

    # -- interrupt inputs --------------------------------------------------
    def _line(self, line: str, level: bool) -> None:
        self.backend.set_irq(line, level)
        # Only a raised line needs the running guest's attention; a lowered one (often
        # the backend's own interrupt acknowledge) is seen at the next injection anyway.
        if level and self._keeper is not None:
            self._keeper.interrupt = True
        if level and self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    # -- the loop ----------------------------------------------------------
    def _loop(self) -> Generator[simpy.Event, Any, None]:
        sim = self._sim
        assert sim is not None
        backend = self.backend
        turns = self._turns
        assert turns is not None
        while True:
            if not self.online:
                turns.give_up(self)
                self._power = sim.event()
                yield self._power
                self._power = None
                continue
            if turns.holder is not self:
                waiting = turns.take(self)
                if waiting is not None:
                    yield waiting
                self._turn_start = sim.now
            now = sim.now
            upcoming = sim.horizon()       # other CPUs' resumptions do not bound the run
            budget = self.quantum if upcoming == math.inf else min(self.quantum, int(upcoming) - now)
            if turns.waiting:                   # another CPU waits: this turn ends a quantum after it began
                budget = min(budget, self._turn_start + self.quantum - now)
            if budget <= 0:
                yield Resume(sim.env, 0)  # events due now run before the guest continues
                continue
            # The debugger holds the CPU (and, the simulation being single-threaded, simulated time)
            # for as long as it is stopped; False: it ended the run (gdb's kill).
            if self.debugger is not None and not self.debugger.before_run(self):
                yield Resume(sim.env, 0)
                continue
            keeper = Keeper(sim, now, budget)
            self._keeper = keeper
            try:
                result = backend.run(keeper)
            except CpuError as error:
                dump = error.dump or backend.register_dump()
                raise SimulationError(f"{self.name}: {error.args[0]}\n{dump}") from error
            finally:
                self._keeper = None
            self.instructions += result.instructions
            reason = result.reason
            kind = type(reason)
            try:
                self.exits[kind.name] += 1
            except AttributeError:
                raise SimulationError(f"{self.name}: backend {backend.name} ended a run with {reason!r}, "
                                      "which is not one of cosim.cpu.ExitReason") from None
            if self.observer is not None:
                self.observer.ran(self, now, result)
            # One branch per reason of the closed set; BudgetSpent and DeviceAccess both just advance time.
            if kind is Idle and not backend.interrupt_pending():
                if not getattr(backend, "wakeable", True):    # x86 HLT with IF=0
                    self._deadlock("with interrupts disabled")
                    return
                turns.give_up(self)
                yield from self._idle(reason)
            elif kind is Stop:
                self._stopped_at(now + result.elapsed)
                sim.request_stop(reason.status, reason.message, source=self)
                return
            elif kind is Breakpoint and self.debugger is not None:
                self.debugger.stopped(self, result)         # holds the CPU until gdb resumes it
                yield Resume(sim.env, max(0, now + result.elapsed - sim.now))
            elif kind is Breakpoint:
                self._stopped_at(now + result.elapsed)
                sim.request_stop(0, f"{self.name}: breakpoint at {reason.address:#x}", source=self)
                return
            else:
                yield Resume(sim.env, max(0, now + result.elapsed - sim.now))
                if sim.now - self._turn_start >= self.quantum:
                    waiting = turns.pass_on(self)
                    if waiting is not None:
                        yield waiting
                    self._turn_start = sim.now

    def _idle(self, idle: Idle) -> Generator[simpy.Event, Any, None]:
        """Sleep until an interrupt is raised: SimPy jumps straight to the event that raises it.

        Nothing is due inside the budget, so the instructions run before the
        WFI/HLT need no time of their own: the wake-up comes later anyway.
        """
        sim = self._sim
        assert sim is not None
        wake = self._wake = sim.event()
        start = self._idle_since = sim.now
        upcoming = sim.peek()
        if idle.kind is IdleKind.WFE and upcoming != math.inf:
            # WFE also wakes on events not modelled one by one (SEV, the event
            # stream): resume at the next scheduled event instead of an IRQ only.
            yield sim.env.any_of([wake, sim.timeout(int(upcoming) - start)])
        else:
            yield wake
        self._wake = self._idle_since = None
        self.idle_skipped += sim.now - start
        if self.observer is not None:
            self.observer.idled(self, start, sim.now)

    def _quiet(self) -> None:
        """No event is left: if the guest is waiting for an interrupt, nothing can raise one."""
        if self._wake is not None and not self._wake.triggered:
            self._deadlock("with no pending event")

    def _deadlock(self, why: str) -> None:
        sim = self._sim
        assert sim is not None
        sim.request_stop(DEADLOCK_STATUS, f"{self.name}: guest idle at PC {self.backend.pc:#x} {why}: deadlock",
                         source=self)

    def _stopped_at(self, local: int) -> None:
        """A stop happens at the guest's local time, not at its last device access."""
        sim = self._sim
        assert sim is not None
        if sim.now < local <= sim.peek():
            sim.advance_to(local)

    # -- reporting ---------------------------------------------------------
    def _idle_now(self) -> int:
        """The idle stretch in progress (a run that ends while the guest waits)."""
        sim = self._sim
        return 0 if sim is None or self._idle_since is None else sim.now - self._idle_since

    def summary(self) -> dict[str, str]:
        wall = max(_wall.perf_counter() - self._wall_start, 1e-9)
        exits = ", ".join(f"{k} {v}" for k, v in sorted(self.exits.items())) or "none"
        rows = {
            f"{self.name} backend": getattr(self.backend, "description", self.backend.name),
            f"{self.name} instructions": f"{self.instructions:,}",
            f"{self.name} MIPS": f"{self.instructions / wall / 1e6:.1f}",
            f"{self.name} idle skipped": format_time(self.idle_skipped + self._idle_now()),
            f"{self.name} exits": exits,
        }
        # A backend may add rows of its own (KVM: exits by kind, budget kicks).
        backend_rows = getattr(self.backend, "summary", None)
        if callable(backend_rows):
            rows |= {f"{self.name} {key}": value for key, value in backend_rows().items()}
        return rows
