"""cosim: virtual platforms in Python — a SimPy kernel, device models and a KVM or software CPU."""

from . import patched_unicorn as _patched_unicorn

_patched_unicorn.select()      # before anything loads unicorn: its loader reads LIBUNICORN_PATH once

from ._bus import Bus, BusError, BusView, Response
from ._device import Device
from ._errors import CosimError, ModelError, PlatformError, SimulationError
from ._kernel import Clock, OneShot, RealtimeSimulation, ScheduledCall, Simulation, StopRequest, Summary
from ._memory import Memory
from ._platform import GiB, KiB, MiB, Platform, Property, get_platform, one_of, parse_size, registered_platforms
from ._regs import Access, Field, Reg, RegisterDevice, RegisterFile, Unmapped
from ._signal import Input, Signal
from ._time import (GHz, Hz, MHz, MS, NS, PS, SEC, US, Frequency, TimeError, format_time, kHz, ms, ns,
                    parse_time, ps, s, us)

__all__ = [
    # kernel and time
    "Simulation", "RealtimeSimulation", "Summary", "StopRequest", "Clock", "ScheduledCall", "OneShot",
    "PS", "NS", "US", "MS", "SEC", "ps", "ns", "us", "ms", "s",
    "Frequency", "Hz", "kHz", "MHz", "GHz", "format_time", "parse_time", "TimeError",
    # wires, buses, memory
    "Signal", "Input", "Bus", "BusView", "BusError", "Response", "Memory",
    # models
    "Device", "RegisterDevice", "RegisterFile", "Reg", "Field", "Access", "Unmapped",
    # platforms
    "Platform", "Property", "registered_platforms", "get_platform", "parse_size", "one_of", "KiB", "MiB", "GiB",
    # errors
    "CosimError", "PlatformError", "ModelError", "SimulationError",
]

# Campaigns: `cosim.sweep(spec)` runs a configuration matrix (the package cosim.sweep; Dask/Ray load lazily).
from .sweep import sweep  # noqa: E402

__all__ += ["sweep"]
