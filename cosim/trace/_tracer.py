"""The tracer: hooks signals, bus targets and CPUs of a platform up to the trace sinks."""

from __future__ import annotations

import enum
from dataclasses import fields
from pathlib import Path
from typing import Any

from .._errors import CosimError
from .._memory import Memory
from ..cpu._backend import CpuExit
from ._observed import Observed
from ._sinks import JsonSink, VcdSink

__all__ = ["Tracer", "attach", "observe"]


def observe(platform: Any, device: str) -> list[Observed]:
    """The `Observed` stand-ins for `device`'s mappings on every bus, put in place once."""
    found = []
    for bus in platform.buses.values():
        for mapping in bus.mappings:
            target = mapping.target
            if isinstance(target, Observed):
                if _owner(target.name) == device:
                    found.append(target)
            elif not isinstance(target, Memory) and _owner(getattr(target, "name", "")) == device:
                observed = Observed(target)
                bus.interpose(mapping, observed)
                found.append(observed)
    return found


def _owner(name: str) -> str:
    """The device a bus target or a signal belongs to: 'gic' for 'gic.cpu0', 'uart0' for 'uart0.irq'."""
    return name.partition(".")[0]


class Tracer:
    """Writes `base`.vcd and/or `base`.json for `platform`; `only` limits it to some devices (and CPUs)."""

    def __init__(self, platform: Any, base: str | Path, *, only: set[str] | None = None, vcd: bool = True,
                 json: bool = True) -> None:
        self.platform = platform
        self.sim = platform.sim
        name = platform.name or type(platform).__name__
        self.prefix = name
        if only is not None:
            unknown = sorted(only - set(platform.devices))
            if unknown:
                raise CosimError(f"--trace-filter: no device named {', '.join(unknown)} in {name} "
                                 f"(devices: {', '.join(platform.devices)})")
        self.only = only
        base = Path(base)
        if base.suffix in (".vcd", ".json"):
            base = base.with_suffix("")
        self.vcd = VcdSink(base.with_suffix(".vcd")) if vcd else None
        self.json = JsonSink(base.with_suffix(".json"), name) if json else None
        self.paths = [base.with_suffix(suffix) for suffix, on in ((".vcd", vcd), (".json", json)) if on]
        self._signals()
        for device in platform.devices.values():
            if not self._traced(device.name):
                continue
            if hasattr(device, "observer") and hasattr(device, "backend"):
                device.observer = self
            elif self.json is not None:
                for observed in observe(platform, device.name):
                    observed.watchers.append(self._access)
        self.sim.add_finalizer(self.close)

    def _traced(self, device: str) -> bool:
        return self.only is None or device in self.only

    def _signals(self) -> None:
        """A listener on each traced signal; the inputs it drives (a CPU's irq) are recorded with it."""
        for device in self.platform.devices.values():
            for port, signal in device.outputs.items():
                names = [signal.name] + [pin.name for pin in signal.inputs]
                names = [n for n in names if self._traced(_owner(n))]
                if not names:
                    continue
                paths = [f"{self.prefix}.{n}" for n in names]
                if self.vcd is not None:
                    for path in paths:
                        self.vcd.wire(path, signal.level)
                # JSON: on the track of the first traced end (the CPU's input when only the CPU is traced)
                signal.connect(self._edge_listener(names[0], paths, signal.level))

    def _edge_listener(self, name: str, paths: list[str], initial: bool):  # -> Callable[[bool], None]
        vcd, json, sim = self.vcd, self.json, self.sim
        owner = _owner(name)
        seen = [initial]

        def edge(level: bool) -> None:
            if level == seen[0]:
                return          # Signal.connect replays a high level once: already recorded as the initial value
            seen[0] = level
            now = sim.now
            if vcd is not None:
                for path in paths:
                    vcd.change(path, now, level)
            if json is not None:
                json.instant(owner, f"{name} {'rise' if level else 'fall'}", now, "irq", {"level": int(level)})

        return edge

    # -- observers ------------------------------------------------------------------------------
    def _access(self, device: str, register: str, offset: int, size: int, value: int, write: bool) -> None:
        assert self.json is not None
        self.json.instant(_owner(device), f"{'write' if write else 'read'} {register}", self.sim.now, "bus",
                          {"target": device, "register": register, "offset": f"{offset:#x}", "size": size,
                           "value": f"{value:#x}", "access": "write" if write else "read"})

    def ran(self, cpu: Any, start: int, result: CpuExit) -> None:
        """A quantum: a span of the time the guest ran; why it stopped is its `exit` argument."""
        if self.json is not None:
            reason = result.reason
            details = {f.name: _plain(getattr(reason, f.name)) for f in fields(reason)}
            self.json.span(cpu.name, "quantum", start, result.elapsed,
                           {"exit": reason.name, "instructions": result.instructions, **details})

    def idled(self, cpu: Any, start: int, end: int) -> None:
        if self.json is not None and end > start:
            self.json.span(cpu.name, "idle jump", start, end - start, {"skipped_ps": end - start})

    def close(self) -> None:
        now = self.sim.now
        for sink in (self.vcd, self.json):
            if sink is not None:
                sink.close(now)
        self.vcd = self.json = None
        for device in self.platform.devices.values():
            if getattr(device, "observer", None) is self:
                device.observer = None


def _plain(value: Any) -> Any:
    """An exit reason's field as JSON: enums by value, addresses in hex, debug stops by kind."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    kind = getattr(value, "kind", None)
    return None if value is None else kind.value if isinstance(kind, enum.Enum) else str(value)


def attach(platform: Any, base: str | Path, *, only: set[str] | None = None, vcd: bool = True,
           json: bool = True) -> Tracer:
    """Trace `platform` into `base`.vcd and `base`.json until its simulation closes."""
    return Tracer(platform, base, only=only, vcd=vcd, json=json)
