"""The split virtqueue (virtio 1.2 §2.7), device side.

Three areas in guest memory, laid out by the driver: the descriptor table
(16-byte `struct virtq_desc`: addr, len, flags, next), the driver area or
available ring (flags, idx, ring[size], used_event) and the device area or used
ring (flags, idx, ring[size] of {id, len}, avail_event). `Virtqueue.pop` takes
the next chain the driver made available and checks it whole before a device
sees it: every descriptor's buffer lies in guest RAM (writable ones in writable
RAM), device-readable buffers come before device-writable ones (§2.7.4.2), no
buffer is empty, an indirect table (§2.7.5.3) is a non-empty multiple of 16
bytes, not nested and not chained on, and a chain is no longer than the queue
(§2.7.5.3.1: which also ends any loop). A chain that breaks a rule, or ring
areas outside RAM, make the queue *broken*: `pop` returns None from then on and
the transport sets DEVICE_NEEDS_RESET (§2.1.2), so a bad driver gets an error,
never a crashed or hung simulator.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from typing import Protocol

from ._memory import GuestMemory, GuestMemoryError

__all__ = ["Virtqueue", "Chain", "VirtqueueError", "VIRTQ_DESC_F_NEXT", "VIRTQ_DESC_F_WRITE", "VIRTQ_DESC_F_INDIRECT",
           "VIRTQ_AVAIL_F_NO_INTERRUPT", "MAX_QUEUE_SIZE"]

log = logging.getLogger("cosim.virtio")

# struct virtq_desc flags (§2.7.5)
VIRTQ_DESC_F_NEXT = 1
VIRTQ_DESC_F_WRITE = 2
VIRTQ_DESC_F_INDIRECT = 4
VIRTQ_AVAIL_F_NO_INTERRUPT = 1      # §2.7.7: the driver asks for no used-buffer interrupts (no EVENT_IDX)
MAX_QUEUE_SIZE = 32768              # §2.7: the largest split-ring Queue Size
_DESC = struct.Struct("<QIHH")      # addr, len, flags, next
_USED_ELEM = struct.Struct("<II")   # id, len
_MAX_CHAIN_BYTES = 1 << 32          # §2.7.4: a chain carries at most 4 GiB


class VirtqueueError(Exception):
    """A ring or chain that breaks the split-ring rules (the message says which)."""


class _Owner(Protocol):
    def queue_used(self, queue: "Virtqueue") -> None: ...

    def queue_failed(self, queue: "Virtqueue", error: Exception) -> None: ...


@dataclass
class Chain:
    """One descriptor chain: the buffers the device reads, then those it writes, as (address, length).

    `head` is the index the used ring reports back. `read`/`write` gather and scatter across the buffers.
    """

    head: int
    readable: list[tuple[int, int]] = field(default_factory=list)
    writable: list[tuple[int, int]] = field(default_factory=list)
    memory: GuestMemory | None = field(default=None, repr=False)

    @property
    def readable_len(self) -> int:
        return sum(length for _, length in self.readable)

    @property
    def writable_len(self) -> int:
        return sum(length for _, length in self.writable)

    def read(self, offset: int = 0, length: int | None = None) -> bytes:
        """`length` bytes (all that remain by default) of the readable buffers, from `offset` on."""
        end = self.readable_len if length is None else offset + length
        if offset < 0 or end > self.readable_len or end < offset:
            raise ValueError(f"chain {self.head}: bytes {offset}..{end} of {self.readable_len} readable")
        return b"".join(self.memory.read(address, length) for address, length in _pieces(self.readable, offset, end))

    def write(self, data: bytes | bytearray | memoryview, offset: int = 0) -> None:
        """Scatter `data` into the writable buffers from byte `offset` of them on."""
        end = offset + len(data)
        if offset < 0 or end > self.writable_len:
            raise ValueError(f"chain {self.head}: {len(data)} bytes at {offset} exceed {self.writable_len} writable")
        done = 0
        view = memoryview(data)
        for address, length in _pieces(self.writable, offset, end):
            self.memory.write(address, view[done:done + length])
            done += length


def _pieces(buffers: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The (address, length) pieces of `buffers` covering bytes [start, end) of their concatenation."""
    pieces, base = [], 0
    for address, length in buffers:
        lo, hi = max(start, base), min(end, base + length)
        if lo < hi:
            pieces.append((address + lo - base, hi - lo))
        base += length
    return pieces


class Virtqueue:
    """One split virtqueue of a device: its configuration (set by the transport) and ring state."""

    def __init__(self, index: int, size_max: int, memory: GuestMemory, owner: _Owner) -> None:
        if not 1 <= size_max <= MAX_QUEUE_SIZE or size_max & (size_max - 1):
            raise ValueError(f"queue {index}: size {size_max} is not a power of 2 up to {MAX_QUEUE_SIZE}")
        self.index = index
        self.size_max = size_max
        self.memory = memory
        self._owner = owner
        self.event_idx = False          # VIRTIO_F_EVENT_IDX negotiated (§2.7.10)
        self.indirect = False           # VIRTIO_F_INDIRECT_DESC negotiated
        self.reset()

    def reset(self) -> None:
        self.size = self.size_max       # QueueNum: the driver may make it smaller
        self.ready = False
        self.desc = self.driver = self.device = 0
        self.last_avail = 0             # the next available-ring entry to take
        self.used_idx = 0
        self.broken = False

    def check_layout(self) -> None:
        """Raise VirtqueueError unless the three areas fit the size and lie in RAM (§2.7: alignments 16, 2, 4)."""
        size = self.size
        if not 1 <= size <= self.size_max or size & (size - 1):
            raise VirtqueueError(f"queue {self.index}: QueueNum {size} is not a power of 2 up to {self.size_max}")
        for what, address, length, align, writing in (("descriptor table", self.desc, 16 * size, 16, False),
                                                      ("driver area", self.driver, 6 + 2 * size, 2, False),
                                                      ("device area", self.device, 6 + 8 * size, 4, True)):
            if address % align:
                raise VirtqueueError(f"queue {self.index}: {what} at {address:#x} is not {align}-byte aligned")
            try:
                self.memory.check(address, length, writing)
            except GuestMemoryError as error:
                raise VirtqueueError(f"queue {self.index}: {what}: {error}") from None

    # -- the device's side ----------------------------------------------------------
    def pop(self) -> Chain | None:
        """The next available chain, checked whole; None when there is none or the queue is broken."""
        if self.broken or not self.ready:
            return None
        try:
            avail_idx = self.memory.read_u16(self.driver + 2)
            pending = (avail_idx - self.last_avail) & 0xFFFF
            if pending == 0:
                return None
            if pending > self.size:
                raise VirtqueueError(f"queue {self.index}: avail idx {avail_idx} is {pending} entries ahead "
                                     f"of the device, more than the {self.size} in the ring")
            head = self.memory.read_u16(self.driver + 4 + 2 * (self.last_avail % self.size))
            self.last_avail = (self.last_avail + 1) & 0xFFFF
            chain = self._walk(head)
            if self.event_idx:              # avail_event: notify us of every new buffer (§2.7.10)
                self.memory.write_u16(self.device + 4 + 8 * self.size, self.last_avail)
            return chain
        except (VirtqueueError, GuestMemoryError) as error:
            self.fail(error)
            return None

    def push(self, chain: Chain, written: int) -> None:
        """Return `chain` to the driver through the used ring, `written` bytes having been written into it."""
        if self.broken:
            return
        try:
            slot = self.device + 4 + 8 * (self.used_idx % self.size)
            self.memory.write(slot, _USED_ELEM.pack(chain.head, written))
            self.used_idx = (self.used_idx + 1) & 0xFFFF
            self.memory.write_u16(self.device + 2, self.used_idx)
        except GuestMemoryError as error:
            self.fail(error)
            return
        self._owner.queue_used(self)

    def needs_interrupt(self) -> bool:
        """Whether the driver wants an interrupt for the used entry just pushed (§2.7.7, §2.7.10)."""
        try:
            if self.event_idx:
                used_event = self.memory.read_u16(self.driver + 4 + 2 * self.size)
                # vring_need_event(used_event, new, old) with old = new - 1: the driver asked for exactly this one
                return ((self.used_idx - used_event - 1) & 0xFFFF) < 1
            return not self.memory.read_u16(self.driver) & VIRTQ_AVAIL_F_NO_INTERRUPT
        except GuestMemoryError as error:
            self.fail(error)
            return False

    # -- checks -----------------------------------------------------------------------
    def _walk(self, head: int) -> Chain:
        chain = Chain(head, memory=self.memory)
        table, entries, index = self.desc, self.size, head
        indirect = False
        count = total = 0
        while True:
            if index >= entries:
                raise VirtqueueError(f"queue {self.index}: descriptor index {index} outside a table of {entries}")
            count += 1
            if count > self.size:
                raise VirtqueueError(f"queue {self.index}: chain from {head} is longer than the queue "
                                     f"({self.size}): a loop or an overlong chain")
            address, length, flags, following = _DESC.unpack(self.memory.read(table + 16 * index, 16))
            if flags & VIRTQ_DESC_F_INDIRECT:
                if not self.indirect or indirect or flags & VIRTQ_DESC_F_NEXT or not length or length % 16:
                    raise VirtqueueError(f"queue {self.index}: bad indirect descriptor {index} (len {length}, "
                                         f"flags {flags:#x}{', nested' if indirect else ''}"
                                         f"{'' if self.indirect else ', not negotiated'})")
                self.memory.check(address, length)
                table, entries, index, indirect = address, length // 16, 0, True
                continue
            if not length:
                raise VirtqueueError(f"queue {self.index}: descriptor {index} of chain {head} is empty")
            writing = bool(flags & VIRTQ_DESC_F_WRITE)
            if not writing and chain.writable:
                raise VirtqueueError(f"queue {self.index}: chain {head} has a readable buffer after a writable one")
            self.memory.check(address, length, writing)
            (chain.writable if writing else chain.readable).append((address, length))
            total += length
            if total > _MAX_CHAIN_BYTES:
                raise VirtqueueError(f"queue {self.index}: chain {head} carries more than 4 GiB")
            if not flags & VIRTQ_DESC_F_NEXT:
                return chain
            index = following

    def fail(self, error: Exception) -> None:
        """Mark the queue broken (it takes nothing more until reset) and tell the transport."""
        self.broken = True
        log.warning("virtio queue %d: %s", self.index, error)
        self._owner.queue_failed(self, error)


