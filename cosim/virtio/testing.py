"""A driver for model tests: virtqueues set up in a RAM model, as a guest's virtio driver would.

    ram = Memory("ram", size=0x10_0000)
    memory = Bus("dma"); memory.map(RAM_BASE, ram.size, ram)
    dut = harness(VirtioMmio("virtio0", device=VirtioRng(seed=1), memory=memory))
    driver = Driver(dut, ram, RAM_BASE)
    driver.start()                                   # §3.1.1: status, features, queues, DRIVER_OK
    driver.submit(0, writable=[64])                  # one chain: a 64-byte buffer for the device
    [(head, written)] = driver.used(0)
    data = driver.written(0, head)

Everything reaches the transport through its registers (the harness's bus) and
the device through the rings in `ram`; `descriptors()` writes raw descriptor
tables, so tests can hand the device malformed chains.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from cosim import Memory
from cosim.testing import Harness

from ._mmio import ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK
from ._queue import VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE

__all__ = ["Driver", "Ring"]

_DESC = struct.Struct("<QIHH")


@dataclass
class Ring:
    """Where one queue's areas and buffers live in RAM, and the driver's view of its indices."""

    size: int
    desc: int
    avail: int
    used: int
    data: int                   # buffers are allocated from here on
    avail_idx: int = 0
    used_seen: int = 0
    next_free: int = 0          # the next descriptor to use (descriptors are used round-robin)
    chains: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)   # head -> (addr, len, flags)


class Driver:
    """The guest's side of a virtio-mmio device, in Python (see the module docstring)."""

    QUEUE_SPAN = 0x4_0000       # RAM per queue: rings, indirect tables and buffers

    def __init__(self, harness: Harness, ram: Memory, base: int) -> None:
        self.dut = harness
        self.ram = ram
        self.base = base
        self.rings: dict[int, Ring] = {}

    # -- registers ----------------------------------------------------------------------
    def reg(self, name: str) -> int:
        return self.dut.reg(name).read()

    def set(self, name: str, value: int) -> None:
        self.dut.reg(name).write(value)

    def device_features(self) -> int:
        self.set("DeviceFeaturesSel", 0)
        low = self.reg("DeviceFeatures")
        self.set("DeviceFeaturesSel", 1)
        return self.reg("DeviceFeatures") << 32 | low

    def start(self, features: int | None = None, queue_size: int | None = None) -> bool:
        """Initialise as §3.1.1 says; returns whether the device kept FEATURES_OK (then the queues are set up)."""
        self.set("Status", 0)
        self.set("Status", ACKNOWLEDGE)
        self.set("Status", ACKNOWLEDGE | DRIVER)
        accepted = self.device_features() if features is None else features
        for window in (0, 1):
            self.set("DriverFeaturesSel", window)
            self.set("DriverFeatures", accepted >> (32 * window) & 0xFFFF_FFFF)
        self.set("Status", ACKNOWLEDGE | DRIVER | FEATURES_OK)
        if not self.reg("Status") & FEATURES_OK:
            return False
        index = 0
        while True:
            self.set("QueueSel", index)
            size_max = self.reg("QueueNumMax")
            if not size_max:
                break
            self.setup_queue(index, min(size_max, queue_size or size_max))
            index += 1
        self.set("Status", ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        return True

    def setup_queue(self, index: int, size: int, *, desc: int | None = None, ready: bool = True) -> Ring:
        start = self.base + index * self.QUEUE_SPAN
        ring = Ring(size, start if desc is None else desc, start + 16 * size, 0, 0)
        ring.used = (ring.avail + 6 + 2 * size + 3) & ~3
        ring.data = (ring.used + 6 + 8 * size + 15) & ~15
        self.rings[index] = ring
        self.set("QueueSel", index)
        self.set("QueueNum", size)
        for area, address in (("Desc", ring.desc), ("Driver", ring.avail), ("Device", ring.used)):
            self.set(f"Queue{area}Low", address & 0xFFFF_FFFF)
            self.set(f"Queue{area}High", address >> 32)
        if ready:
            self.set("QueueReady", 1)
        return ring

    # -- memory ---------------------------------------------------------------------------
    def poke(self, address: int, data: bytes) -> None:
        self.ram.load(data, address - self.base)

    def peek(self, address: int, length: int) -> bytes:
        offset = address - self.base
        return bytes(self.ram.buffer[offset:offset + length])

    def alloc(self, queue: int, length: int) -> int:
        """Room for a buffer in the queue's part of RAM; old buffers are reused once it is full."""
        ring = self.rings[queue]
        first = (ring.used + 6 + 8 * ring.size + 15) & ~15
        end = self.base + (queue + 1) * self.QUEUE_SPAN
        if first + length > end:
            raise ValueError(f"a {length}-byte buffer does not fit in queue {queue}'s {self.QUEUE_SPAN:#x} bytes")
        if ring.data + length > end:
            ring.data = first
        address = ring.data
        ring.data = (ring.data + max(length, 1) + 15) & ~15
        return address

    # -- chains ---------------------------------------------------------------------------
    def submit(self, queue: int, readable: Sequence[bytes] = (), writable: Sequence[int] = (), *,
               indirect: bool = False, notify: bool = True) -> int:
        """Put one chain in the queue: buffers holding `readable`, then empty ones of the `writable` lengths."""
        ring = self.rings[queue]
        buffers = []
        for data in readable:
            address = self.alloc(queue, len(data))
            self.poke(address, data)
            buffers.append((address, len(data), 0))
        for length in writable:
            buffers.append((self.alloc(queue, length), length, VIRTQ_DESC_F_WRITE))
        if indirect:
            table = self.alloc(queue, 16 * len(buffers))
            self.poke(table, self._table(buffers, 0))
            head = self.descriptors(queue, [(table, 16 * len(buffers), VIRTQ_DESC_F_INDIRECT, 0)])
        else:
            head = self.descriptors(queue, [(a, n, f, 0) for a, n, f in buffers], chained=True)
        ring.chains[head] = buffers
        self.make_available(queue, head, notify=notify)
        return head

    @staticmethod
    def _table(buffers: list[tuple[int, int, int]], first: int) -> bytes:
        last = len(buffers) - 1
        return b"".join(_DESC.pack(a, n, f | (VIRTQ_DESC_F_NEXT if i < last else 0), first + i + 1 if i < last else 0)
                        for i, (a, n, f) in enumerate(buffers))

    def descriptors(self, queue: int, entries: list[tuple[int, int, int, int]], *, chained: bool = False) -> int:
        """Write raw descriptors (addr, len, flags, next) into consecutive table slots; returns the first slot.
        `chained`: link them in order with NEXT instead of using the given flags' NEXT and next."""
        ring = self.rings[queue]
        first = ring.next_free % ring.size
        if first + len(entries) > ring.size:
            first = 0
        if chained:
            data = self._table([(a, n, f) for a, n, f, _ in entries], first)
        else:
            data = b"".join(_DESC.pack(*entry) for entry in entries)
        self.poke(ring.desc + 16 * first, data)
        ring.next_free = first + len(entries)
        return first

    def make_available(self, queue: int, head: int, *, notify: bool = True) -> None:
        ring = self.rings[queue]
        self.poke(ring.avail + 4 + 2 * (ring.avail_idx % ring.size), head.to_bytes(2, "little"))
        ring.avail_idx = (ring.avail_idx + 1) & 0xFFFF
        self.poke(ring.avail + 2, ring.avail_idx.to_bytes(2, "little"))
        if notify:
            self.set("QueueNotify", queue)

    def used(self, queue: int) -> list[tuple[int, int]]:
        """The used entries (head, written) the device added since the last call."""
        ring = self.rings[queue]
        idx = int.from_bytes(self.peek(ring.used + 2, 2), "little")
        entries = []
        while ring.used_seen != idx:
            slot = ring.used + 4 + 8 * (ring.used_seen % ring.size)
            entries.append(struct.unpack("<II", self.peek(slot, 8)))
            ring.used_seen = (ring.used_seen + 1) & 0xFFFF
        return entries

    def written(self, queue: int, head: int) -> bytes:
        """The contents of the writable buffers of the chain `submit` made at `head`, concatenated."""
        return b"".join(self.peek(a, n) for a, n, f in self.rings[queue].chains[head] if f & VIRTQ_DESC_F_WRITE)

    def ack(self) -> int:
        """Read InterruptStatus and acknowledge it all; returns what was pending."""
        pending = self.reg("InterruptStatus")
        self.set("InterruptACK", pending)
        return pending
