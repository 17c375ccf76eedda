"""virtio entropy device (virtio 1.2 §5.4): one queue of buffers the device fills with random bytes.

Requests complete at once, in the notification: entropy costs no simulated
time. The bytes come from the host (`os.urandom`) or, for runs that must
repeat, from a generator seeded with `seed` (Python's Mersenne Twister: good
enough for a guest's entropy pool, not for keys that must stay secret).
"""

from __future__ import annotations

import os
import random
from typing import ClassVar

from ._device import VirtioDevice
from ._queue import Virtqueue

__all__ = ["VirtioRng", "VIRTIO_ID_ENTROPY"]

VIRTIO_ID_ENTROPY = 4


class VirtioRng(VirtioDevice):
    """Entropy source: fills every device-writable buffer the driver offers (§5.4.6)."""

    device_id: ClassVar[int] = VIRTIO_ID_ENTROPY
    queue_sizes: ClassVar[tuple[int, ...]] = (64,)      # requestq

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.seed = seed
        self._random = random.Random(seed) if seed is not None else None

    def entropy(self, length: int) -> bytes:
        return self._random.randbytes(length) if self._random is not None else os.urandom(length)

    def on_queue(self, queue: Virtqueue) -> None:
        while (chain := queue.pop()) is not None:
            # §5.4.6.1: the device MUST NOT read from a buffer; a chain with none to write gets 0 bytes.
            length = chain.writable_len
            chain.write(self.entropy(length))
            queue.push(chain, length)
