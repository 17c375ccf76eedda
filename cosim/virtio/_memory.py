"""Guest memory as a device sees it: a DMA view of a bus.

A virtio device reads descriptors and buffers where the driver put them, in
the platform's RAM. `GuestMemory` reaches it through the bus the CPU uses:
each access is routed by `Bus.find` to the mapping that holds it, and served
from that `Memory` model's buffer (the direct memory interface the CPU
backends map, so a device sees exactly what the guest wrote). A range that is
not wholly inside one Memory mapping (unmapped, a device's registers, across
the end of RAM) or a write to read-only memory is a `GuestMemoryError`: the
device turns it into an error the guest sees, never a crash.
"""

from __future__ import annotations

from cosim import Bus, Memory

__all__ = ["GuestMemory", "GuestMemoryError"]


class GuestMemoryError(Exception):
    """A DMA access outside guest RAM (the message says where)."""


class GuestMemory:
    """Byte-range reads and writes of guest physical memory through `bus`."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    def _slice(self, address: int, length: int, writing: bool) -> tuple[Memory, int]:
        if address < 0 or length < 0 or address + length > 1 << self.bus.width:
            raise GuestMemoryError(f"{length:#x} bytes at {address:#x} are outside the address space")
        mapping = self.bus.find(address)
        target = mapping.target if mapping is not None else None
        if not isinstance(target, Memory):
            what = "nothing" if target is None else getattr(target, "name", "a device")
            raise GuestMemoryError(f"{address:#x} is not RAM ({what} is mapped there)")
        if address + length - 1 > mapping.end:
            raise GuestMemoryError(f"{length:#x} bytes at {address:#x} run past the end of {target.name}")
        if writing and target.read_only:
            raise GuestMemoryError(f"{address:#x} is in read-only {target.name}")
        return target, address - mapping.base

    def check(self, address: int, length: int, writing: bool = False) -> None:
        """Raise GuestMemoryError unless [address, address + length) is guest RAM (writable if `writing`)."""
        self._slice(address, length, writing)

    def read(self, address: int, length: int) -> bytes:
        memory, offset = self._slice(address, length, False)
        return memory.buffer[offset:offset + length]

    def write(self, address: int, data: bytes | bytearray | memoryview) -> None:
        memory, offset = self._slice(address, len(data), True)
        memory.store(offset, data)

    def read_u16(self, address: int) -> int:
        return int.from_bytes(self.read(address, 2), "little")

    def write_u16(self, address: int, value: int) -> None:
        self.write(address, value.to_bytes(2, "little"))
