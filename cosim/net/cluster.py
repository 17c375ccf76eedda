"""Several machines in one simulation: one event kernel, each machine its own CPU, devices and console.

`Cluster` builds platforms on one shared `Simulation` and decides when the run
ends: when every machine has stopped (each guest powered off), or as soon as
the `primary` machine stops when one is named. A machine that stops with a
non-zero status (a failed guest, a deadlock) ends the run at once with that
status, so a failing guest always fails the run. The machines' CPUs share the
timeline in windows of one quantum (`Environment.horizon`, cosim.cpu's loop):
frames between them are events in simulated time, never more than a quantum
off, and the run is deterministic in any case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .._errors import PlatformError
from .._kernel import Simulation, StopRequest, Summary
from .._platform import Platform
from .._time import format_time
from .switch import Switch

__all__ = ["Cluster"]

P = TypeVar("P", bound=Platform)


class Cluster:
    """Machines side by side in `sim` (a new Simulation unless given)."""

    def __init__(self, sim: Simulation | None = None, *, primary: str | None = None) -> None:
        self.sim = sim or Simulation()
        if self.sim.stop_filter is not None:
            raise PlatformError("this simulation already has a stop filter (is it another cluster's?)")
        self.sim.stop_filter = self._machine_stopped
        self.primary = primary
        self.machines: dict[str, Platform] = {}
        self.stops: dict[str, StopRequest] = {}
        self._owner: dict[int, str] = {}          # id() of a machine's device (its CPU) -> the machine's name

    def add(self, name: str, platform: type[P], **props: Any) -> P:
        """Build machine `name` from `platform` with `props`; its summary rows are prefixed with its name."""
        if name in self.machines:
            raise PlatformError(f"two machines are named {name!r}")
        summaries = self.sim._summaries          # the providers the machine's devices add while it is built
        first = len(summaries)
        machine = platform(self.sim, **props)
        # A switch the machine asked for first is shared by all: its rows keep their own name.
        summaries[first:] = [provider if isinstance(getattr(provider, "__self__", None), Switch)
                             else _prefixed(f"{name} ", provider) for provider in summaries[first:]]
        self.machines[name] = machine
        self._owner.update({id(device): name for device in machine.devices.values()})
        return machine

    def run(self, until: int | str | None = None) -> Summary:
        if self.primary is not None and self.primary not in self.machines:
            raise PlatformError(f"primary machine {self.primary!r} is not one of {', '.join(self.machines)}")
        summary = self.sim.run(until)
        for name, stop in self.stops.items():
            summary.extra[f"{name} stopped by"] = f"{stop.reason} (status {stop.status}) at {format_time(stop.time)}"
        return summary

    def _machine_stopped(self, status: int, reason: str, source: object) -> bool:
        name = self._owner.get(id(source))
        if name is None:
            return True                          # not a machine's: ends the run as it would alone
        if name in self.stops:
            return False
        self.stops[name] = StopRequest(status, reason, self.sim.now)
        if status != 0:
            self.sim.request_stop(status, f"{name}: {reason}")
        elif name == self.primary:
            self.sim.request_stop(0, f"{name} (the primary machine): {reason}")
        elif len(self.stops) == len(self.machines) and self.primary is None:
            self.sim.request_stop(0, f"all {len(self.machines)} machines stopped (last {name}: {reason})")
        return False


def _prefixed(prefix: str, provider: Callable[[], dict[str, str]]) -> Callable[[], dict[str, str]]:
    return lambda: {prefix + key: value for key, value in provider().items()}
