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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from ._bus import Bus, BusError, Response
from ._device import Device
from ._kernel import Simulation
from ._signal import Signal

__all__ = ["Probe", "Harness", "sim", "harness"]


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
