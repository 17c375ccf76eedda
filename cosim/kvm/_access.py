"""Device accesses from KVM exits, with bus errors turned into defined guest-visible behaviour.

A guest that touches an address or port where nothing answers (or a model
refuses the access) does not crash the simulation: reads return all ones, as
an undriven ISA/PCI bus does (a PCI master abort completes with 0xFF..FF),
and writes are dropped. Each such address is reported once, as a warning.
"""

from __future__ import annotations

import logging

from .._bus import Bus, BusError

__all__ = ["GuestAccesses", "DirectAccesses"]

log = logging.getLogger("cosim.kvm")


class DirectAccesses:
    """Reads and writes straight to the bus: a BusError reaches the caller (to abort the guest's access, say)."""

    @staticmethod
    def read(bus: Bus, address: int, size: int) -> int:
        return bus.read(address, size)

    @staticmethod
    def write(bus: Bus, address: int, size: int, value: int) -> None:
        bus.write(address, size, value)


class GuestAccesses:
    """Reads and writes on behalf of the guest, warning once per (bus, address) that fails."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger
        self.failed: dict[tuple[str, int], str] = {}   # (bus name, address) -> first error

    def read(self, bus: Bus, address: int, size: int) -> int:
        try:
            return bus.read(address, size)
        except BusError as error:
            self._report(bus, address, size, "read", error)
            return (1 << (8 * size)) - 1

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
        outcome = "reads as all ones" if kind == "read" else "is ignored"
        self.logger.warning("guest %s of %d bytes at %s %#x failed (%s); it %s (reported once per address)",
                            kind, size, bus.name, address, error, outcome)
