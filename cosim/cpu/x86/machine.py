"""Put a KVM x86 CPU into a platform: RAM slots from the bus, the guest image, the entry state, the wires."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ..._errors import PlatformError
from ..._memory import memory_regions
from ..._platform import Platform
from ..._signal import Signal
from ..._time import GHz, NS, US, Frequency, TimeError
from ...loaders import LoadedImage, load_image, memory_writer
from ...loaders.x86 import TABLES_SIZE, Mode, entry_state
from .._loop import Cpu
from .kvm_cpu import KvmX86Cpu
from .state import DEFAULT_HIDDEN, CpuidMask

__all__ = ["add_kvm_x86_cpu", "DEFAULT_LOAD_ADDRESS", "parse_frequency"]

DEFAULT_LOAD_ADDRESS = 0x10_0000    # 1 MiB: above the real-mode area and the loader's tables
TABLES_AT = 0x1000                  # the loader's GDT and page tables (cosim.loaders.x86)
X86_MACHINES = ("EM_X86_64", "EM_386")


def parse_frequency(text: str | Frequency) -> Frequency | Literal["host"]:
    """'host', '1GHz', '2.5 GHz', '800 MHz' -> a Frequency or "host"."""
    if isinstance(text, Frequency) or text == "host":
        return text
    try:
        frequency = Frequency.parse(text)
    except TimeError:
        raise PlatformError(f"cannot read {text!r} as a CPU frequency (expected e.g. 1GHz, 800 MHz, or host)") from None
    if frequency.period < 1:
        raise PlatformError(f"CPU frequency {text!r} is above 1 THz: its period would round to 0 ps")
    return frequency


def _check_clear_of_tables(image: LoadedImage, tables: int, mode: str) -> None:
    """The loader writes its GDT (and page tables) after the image: overlapping them would
    silently overwrite the guest's code or data."""
    end = tables + (TABLES_SIZE if mode == "long" else 0x1000)
    for address, size in image.segments:
        if address < end and tables < address + size:
            raise PlatformError(f"{image.path}: [{address:#x}..{address + size - 1:#x}] overlaps the loader's "
                                f"{mode}-mode tables at [{tables:#x}..{end - 1:#x}]: link or load the image "
                                f"at {DEFAULT_LOAD_ADDRESS:#x} or above")


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
    image = load_image(write, kernel, load_address, machines=X86_MACHINES)
    if mode != "real":
        _check_clear_of_tables(image, TABLES_AT, mode)
    entry = entry_state(mode, write, image.entry, stack, TABLES_AT)
    backend = KvmX86Cpu(memory=memory, ports=ports, ram=memory_regions(memory), acknowledge=acknowledge, frequency=frequency,
                        ips=ips, budget=budget, access_latency=access_latency, entry=entry,
                        cpuid_hidden=cpuid_hidden)
    cpu = platform.add(name, Cpu, backend=backend, quantum=quantum, lines=("intr",))
    if intr is not None:
        platform.wire(intr, cpu.pins["intr"])
    return cpu
