"""The model test kit, installed as a pytest plugin (entry point `pytest11`).

    def test_timer_fires(harness):
        dut = harness(Sp804("timer"))            # mapped at 0 on a fresh bus
        irq = dut.probe(dut.device.irq)
        start, period = dut.now, dut.device.tick_period()
        dut.reg("TimerXLoad", 0).write(0x100)     # Timer1Load, through the bus, by name
        dut.reg("TimerXControl", 0).write(0xE2)   # enable, periodic, interrupt, 32-bit
        assert dut.run_until(irq.signal, within=ms(1)) == start + 0x100 * period
        dut.reg("TimerXIntClr", 0).write(1)
        dut.run(0x101 * period, inclusive=True)   # the next zero (Load + 1 ticks) is due at exactly the end
        assert irq.level and irq.rises == [start + 0x100 * period, start + 0x201 * period]

Everything goes through the same `Bus.read`/`Bus.write` a CPU uses.

`Harness.run(d)` runs the events due before now + d and stops at now + d: events
due at exactly the end stay pending (as with `Simulation.run(until=...)`), so a
read right after sees the state just before them. `run(d, inclusive=True)` runs
those too; `run_until(signal, level)` stops at the instant a wire gets there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from ._bus import Bus, BusError, Response
from ._device import Device
from ._kernel import Simulation
from ._regs import Reg, RegisterDevice
from ._signal import Signal
from ._time import format_time

__all__ = ["Probe", "Harness", "RegisterAt", "sim", "harness"]


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

    def reg(self, name: str, index: int = 0) -> "RegisterAt":
        """Register `name` of the device (its `index`-th copy if repeated), by the manual's name, not a retyped offset."""
        if not isinstance(self.device, RegisterDevice):
            raise TypeError(f"{self.device.name}: Harness.reg needs a RegisterDevice, not a {type(self.device).__name__}")
        return RegisterAt(self, self.device.register(name), index, self.device.offset_of(name, index))

    def run(self, duration: int, *, inclusive: bool = False) -> None:
        """Advance simulated time by `duration` ps, running the events due before the end.

        Events due at exactly now + duration stay pending, so a read right after
        sees the state just before them; `inclusive=True` runs them too (the
        clock still ends at now + duration).
        """
        end = self.sim.now + duration
        self.sim.run(until=end)
        if inclusive:
            self._step_while(lambda: self.sim.peek() == end)

    def run_until(self, signal: Signal, level: bool = True, *, within: int) -> int:
        """Run until `signal` is at `level`; return that time. Events due at that instant all run.

        Fails (AssertionError naming the wire) when `within` ps pass first or nothing is left
        to happen, so a test never hangs.
        """
        deadline = self.sim.now + within
        reached = signal.wait_level(self.sim.env, bool(level))
        self._step_while(lambda: not reached.triggered and self.sim.peek() <= deadline)
        if not reached.triggered:
            self.sim.run(until=max(self.sim.now, min(deadline, self.sim.peek())))
            raise AssertionError(f"{signal.name} is still {'low' if level else 'high'} at {format_time(self.now)}, "
                                 f"{format_time(within)} after run_until started")
        self._step_while(lambda: self.sim.peek() == self.sim.now)
        return self.now

    def _step_while(self, condition: Callable[[], bool]) -> None:
        # One event at a time, without moving the clock past the event being run.
        while condition():
            self.sim.env.step()

    def probe(self, signal: Signal) -> Probe:
        return Probe(signal, self.sim)


@dataclass(frozen=True)
class RegisterAt:
    """One register of a harnessed device, named: `dut.reg("UARTFR").read()`."""

    harness: Harness
    decl: Reg
    index: int
    offset: int

    def read(self, size: int | None = None) -> int:
        return self.harness.read(self.offset, size or self.decl.nbytes)

    def write(self, value: int, size: int | None = None) -> None:
        self.harness.write(self.offset, value, size or self.decl.nbytes)

    def debug_read(self, size: int | None = None) -> int:
        """The value without the read's side effects (Bus.debug_read)."""
        return self.harness.bus.debug_read(self.harness.base + self.offset, size or self.decl.nbytes)


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
