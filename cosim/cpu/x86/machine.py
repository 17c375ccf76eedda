"""Put a KVM x86 CPU into a platform: RAM slots from the bus, the guest image, the entry state, the wires."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ..._errors import PlatformError
from ..._memory import memory_regions
from ..._platform import Platform
from ..._signal import Signal
from ..._time import GHz, NS, US, Frequency
from ...loaders import load_image, memory_writer
from ...loaders.x86 import Mode, entry_state
from .._loop import Cpu
from .kvm_cpu import KvmX86Cpu
from .state import DEFAULT_HIDDEN, CpuidMask

__all__ = ["add_kvm_x86_cpu", "DEFAULT_LOAD_ADDRESS", "parse_frequency"]

DEFAULT_LOAD_ADDRESS = 0x10_0000    # 1 MiB: above the real-mode area and the loader's tables


_UNITS = {"hz": 1, "khz": 10**3, "mhz": 10**6, "ghz": 10**9}


def parse_frequency(text: str | Frequency) -> Frequency | Literal["host"]:
    """'host', '1GHz', '2.5 GHz', '800 MHz' -> a Frequency or "host"."""
    if isinstance(text, Frequency) or text == "host":
        return text
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kmg]?hz)\s*", text.lower())
    if not match:
        raise PlatformError(f"cannot read {text!r} as a CPU frequency (expected e.g. 1GHz, 800 MHz, or host)")
    return Frequency(round(float(match.group(1)) * _UNITS[match.group(2)]))


def add_kvm_x86_cpu(platform: Platform, name: str = "cpu0", *, kernel: str | Path, mode: Mode = "long",
                    load_address: int = DEFAULT_LOAD_ADDRESS, intr: Signal | None = None, acknowledge=None,
                    quantum: int = 100 * US, budget: str = "auto", ips: float | None = None,
                    frequency: Frequency | Literal["host"] = GHz(1), access_latency: int = 100 * NS, stack: int = 0x7C00,
                    cpuid_hidden: Iterable[CpuidMask] = DEFAULT_HIDDEN, sysbus: str = "sysbus",
                    io: str = "io") -> Cpu:
    """Load `kernel` (ELF by its headers, else raw at `load_address`) and add a CPU entering it in `mode`.

    Every Memory model on `sysbus` becomes a memory slot (ROMs read-only);
    other devices there are reached through MMIO exits, the `io` bus through
    port-I/O exits. `intr`/`acknowledge`: the interrupt controller's output and INTA;
    `cpuid_hidden`: CPUID bits of what the platform does not model (default: local APIC).
    """
    memory, ports = platform.bus(sysbus), platform.bus(io, width=16)
    write = memory_writer(memory)
    image = load_image(write, kernel, load_address)
    entry = entry_state(mode, write, image.entry, stack)
    backend = KvmX86Cpu(memory=memory, ports=ports, ram=memory_regions(memory), acknowledge=acknowledge, frequency=frequency,
                        ips=ips, budget=budget, access_latency=access_latency, entry=entry,
                        cpuid_hidden=cpuid_hidden)
    cpu = platform.add(name, Cpu, backend=backend, quantum=quantum, lines=("intr",))
    if intr is not None:
        platform.wire(intr, cpu.pins["intr"])
    return cpu
