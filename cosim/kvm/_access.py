"""Device accesses from KVM exits, with bus errors turned into defined guest-visible behaviour.

A guest that touches an address or port where nothing answers (or a model
refuses the access) does not crash the simulation: writes are dropped, and
reads return all ones on x86, as an undriven ISA/PCI bus does (a PCI master
abort completes with 0xFF..FF), or zero on Arm (RAZ/WI, what Arm peripherals
and QEMU's models do for a location they do not implement). Each such address
is reported once, as a warning. docs/concepts.md lists the behaviour per
architecture and backend.
"""

from __future__ import annotations

import logging

from .._bus import Bus, BusError

__all__ = ["GuestAccesses"]

log = logging.getLogger("cosim.kvm")


class GuestAccesses:
    """Reads and writes on behalf of the guest, warning once per (bus, address) that fails.

    A failed read returns all ones (`all_ones`, x86) or zero (Arm).
    """

    def __init__(self, logger: logging.Logger = log, *, all_ones: bool = True) -> None:
        self.logger = logger
        self.all_ones = all_ones
        self.failed: dict[tuple[str, int], str] = {}   # (bus name, address) -> first error

    def read(self, bus: Bus, address: int, size: int) -> int:
        try:
            return bus.read(address, size)
        except BusError as error:
            self._report(bus, address, size, "read", error)
            return (1 << (8 * size)) - 1 if self.all_ones else 0

    def write(self, bus: Bus, address: int, size: int, value: int) -> None:
        try:
            bus.write(address, size, value)
        except BusError as error:
            self._report(bus, address, size, "write", error)

    def _report(self, bus: Bus, address: int, size: int, kind: str, error: BusError) -> None:
        key = (bus.name, address)
        if key in self.failed:
            return
        self.failed[key] = str(error)
        outcome = ("reads as all ones" if self.all_ones else "reads as zero") if kind == "read" else "is ignored"
        self.logger.warning("guest %s of %d bytes at %s %#x failed (%s); it %s (reported once per address)",
                            kind, size, bus.name, address, error, outcome)
