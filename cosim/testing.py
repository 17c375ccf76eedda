"""The model test kit, installed as a pytest plugin (entry point `pytest11`).

    def test_timer_fires(harness):
        dut = harness(Sp804("timer"))            # mapped at 0 on a fresh bus
        irq = dut.probe(dut.device.irq)
        start, period = dut.now, dut.device.tick_period()
        dut.write(0x00, 0x100)                    # Timer1Load, through the bus
        dut.write(0x08, 0xE2)                     # enable, periodic, interrupt, 32-bit
        dut.run(0x100 * period + 1)               # run(d) leaves events due at exactly +d for later
        assert irq.level and irq.rises == [start + 0x100 * period]

Everything goes through the same `Bus.read`/`Bus.write` a CPU uses.

`ScriptedBackend` is a CPU backend that plays a script instead of running
code: a `cosim.cpu.Cpu` built on it exercises the quantum loop, a platform's
wiring or a device's mid-quantum timing without a guest; `run_backend` runs
one quantum of a real backend and checks what it returns against the backend
contract (docs/cpu.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import get_args

import pytest

from ._bus import Bus, BusError, Response
from ._device import Device
from ._kernel import Simulation
from ._signal import Signal
from ._time import NS
from .cpu._backend import (BUDGET_SPENT, DEVICE_ACCESS, Breakpoint, CpuBackend, CpuError, CpuExit, ExitReason, Idle,
                           IdleKind, QuantumKeeper, Stop)
from .cpu._loop import Keeper

__all__ = ["Probe", "Harness", "ScriptedBackend", "run_backend", "sim", "harness"]


@dataclass
class Probe:
    """Records every level change of a signal with its simulated time."""

    signal: Signal
    sim: Simulation
    history: list[tuple[int, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.signal.connect(self._seen)

    def _seen(self, level: bool) -> None:
        self.history.append((self.sim.now, level))

    @property
    def level(self) -> bool:
        return self.signal.level

    @property
    def rises(self) -> list[int]:
        return [t for t, level in self.history if level]

    @property
    def falls(self) -> list[int]:
        return [t for t, level in self.history if not level]

    def clear(self) -> None:
        self.history.clear()


class Harness:
    """One device on its own bus in a fresh simulation.

    `base=None` leaves the bus empty, for a device reached by other means (the
    generic timer's system registers): it is still attached and reset.
    """

    def __init__(self, sim: Simulation, device: Device, base: int | None = 0, size: int | None = None) -> None:
        self.sim = sim
        self.device = device
        self.base = base or 0
        self.bus = Bus("testbus", time=sim)
        if base is not None:
            size = size if size is not None else getattr(device, "size", None) or 0x1000
            self.bus.map(base, size, device)
        device.attach(sim)
        device.reset()

    @property
    def now(self) -> int:
        return self.sim.now

    def read(self, offset: int, size: int = 4) -> int:
        return self.bus.read(self.base + offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self.bus.write(self.base + offset, size, value)

    def status(self, offset: int, size: int = 4, value: int | None = None) -> Response:
        """The bus response of one access (OK or the error), for tests of bad accesses."""
        try:
            if value is None:
                self.read(offset, size)
            else:
                self.write(offset, value, size)
        except BusError as error:
            return error.status
        return Response.OK

    def run(self, duration: int) -> None:
        """Advance simulated time by `duration` ps, running every event due on the way."""
        self.sim.run(until=self.sim.now + duration)

    def probe(self, signal: Signal) -> Probe:
        return Probe(signal, self.sim)


@pytest.fixture
def sim() -> Simulation:
    """A fresh simulation at time 0; closed after the test."""
    simulation = Simulation()
    yield simulation
    simulation.close()


@pytest.fixture
def harness(sim: Simulation) -> Callable[..., Harness]:
    """`harness(device, base=0, size=None)`: map `device` on a bus in `sim` (not when `base` is None),
    reset it, return the Harness."""

    def make(device: Device, base: int | None = 0, size: int | None = None) -> Harness:
        return Harness(sim, device, base, size)

    return make


Action = Callable[["ScriptedBackend", QuantumKeeper], CpuExit]


class ScriptedBackend:
    """A CPU backend (`cosim.cpu.CpuBackend`) whose runs follow a script: for tests of the CPU loop,
    of platforms and of devices a CPU touches mid-quantum, with no guest code.

    Each `run(keeper)` records `(keeper.start, keeper.budget)` in `budgets` and plays the
    next action of `script`; when the script is done, the guest stops with status 0.
    The guest retires one instruction per `period`. Actions (static methods):
    `spin()` spends the whole budget; `idle(n, kind)` idles after n instructions;
    `access(n, fn)` calls `fn(keeper)` after n instructions, as a device access does
    (after `keeper.sync`), then ends the run early if the access asks for it;
    `stop(status, message, n)`, `breakpoint(address, n)`; `fail(message)` raises CpuError.
    An action is any callable `(backend, keeper) -> CpuExit`.

        cpu = Cpu("cpu0", backend=ScriptedBackend([ScriptedBackend.spin(), ScriptedBackend.stop(3)]))
    """

    name = "scripted"

    def __init__(self, script: Iterable[Action], *, period: int = NS, lines: tuple[str, ...] = ("irq", "fiq"),
                 pc: int = 0) -> None:
        self.script = list(script)
        self.period = period
        self.budgets: list[tuple[int, int]] = []
        self.lines = dict.fromkeys(lines, False)
        self.registers = {"pc": pc}
        self.closed = False

    # -- the script -----------------------------------------------------------
    @staticmethod
    def spin() -> Action:
        def action(backend: ScriptedBackend, keeper: QuantumKeeper) -> CpuExit:
            return CpuExit(BUDGET_SPENT, keeper.budget, keeper.budget // backend.period)
        return action

    @staticmethod
    def idle(instructions: int = 0, kind: IdleKind = IdleKind.WFI) -> Action:
        return ScriptedBackend._after(instructions, Idle(kind))

    @staticmethod
    def stop(status: int = 0, message: str = "guest exit", instructions: int = 0) -> Action:
        return ScriptedBackend._after(instructions, Stop(status, message))

    @staticmethod
    def breakpoint(address: int, instructions: int = 0) -> Action:
        return ScriptedBackend._after(instructions, Breakpoint(address))

    @staticmethod
    def access(instructions: int, fn: Callable[[QuantumKeeper], object]) -> Action:
        def action(backend: ScriptedBackend, keeper: QuantumKeeper) -> CpuExit:
            elapsed = instructions * backend.period
            keeper.sync(elapsed)
            fn(keeper)
            if keeper.must_yield:
                return CpuExit(DEVICE_ACCESS, elapsed, instructions)
            return CpuExit(BUDGET_SPENT, keeper.budget, keeper.budget // backend.period)
        return action

    @staticmethod
    def fail(message: str = "guest crashed") -> Action:
        def action(backend: ScriptedBackend, keeper: QuantumKeeper) -> CpuExit:
            raise CpuError(message)
        return action

    @staticmethod
    def _after(instructions: int, reason: ExitReason) -> Action:
        def action(backend: ScriptedBackend, keeper: QuantumKeeper) -> CpuExit:
            return CpuExit(reason, min(instructions * backend.period, keeper.budget), instructions)
        return action

    # -- the backend interface ------------------------------------------------------
    def run(self, keeper: QuantumKeeper) -> CpuExit:
        self.budgets.append((keeper.start, keeper.budget))
        action = self.script.pop(0) if self.script else self.stop()
        return action(self, keeper)

    def set_irq(self, line: str, level: bool) -> None:
        if line not in self.lines:
            raise ValueError(f"{self.name}: no interrupt input {line!r} (inputs: {', '.join(self.lines)})")
        self.lines[line] = level

    def interrupt_pending(self) -> bool:
        return any(self.lines.values())

    def read_register(self, name: str) -> int:
        return self.registers.get(name, 0)

    def write_register(self, name: str, value: int) -> None:
        self.registers[name] = value

    @property
    def pc(self) -> int:
        return self.registers["pc"]

    def register_dump(self) -> str:
        return "  ".join(f"{name}={value:#x}" for name, value in self.registers.items())

    def close(self) -> None:
        self.closed = True


_REASONS = get_args(ExitReason)        # the closed set, from its one definition


def run_backend(backend: CpuBackend, sim: Simulation, budget: int) -> CpuExit:
    """Run `backend` for one quantum of `budget` ps from `sim.now`, as the CPU loop would, and check
    the backend contract on what it returns: a `CpuExit` whose reason is one of `ExitReason`, at
    most `budget` of elapsed time, no negative counts. Errors are `CpuError`s, raised as they are;
    a broken contract is an AssertionError saying what is wrong."""
    if budget <= 0:
        raise ValueError(f"the budget must be positive, not {budget} ps")
    keeper = Keeper(sim, sim.now, budget)
    result = backend.run(keeper)
    name = getattr(backend, "name", type(backend).__name__)
    assert isinstance(result, CpuExit), f"{name}: run() returned {result!r}, not a CpuExit"
    assert type(result.reason) in _REASONS, f"{name}: exit reason {result.reason!r} is not one of ExitReason"
    assert 0 <= result.elapsed <= budget, f"{name}: elapsed {result.elapsed} ps outside 0..{budget} ps"
    assert result.instructions >= 0, f"{name}: {result.instructions} instructions"
    return result
