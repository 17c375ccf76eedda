"""virtio console device (virtio 1.2 §5.3): one port, no MULTIPORT, on a character back-end.

Linux's virtio_console driver makes it /dev/hvc0. Bytes the driver transmits go
to the back-end at once; bytes from the back-end wait in the device until the
driver offers receive buffers, so nothing typed before the driver is ready is
lost.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from cosim import Clock
from cosim.chardev import CharBackend, NullBackend, attach_backend

from ._device import VirtioDevice
from ._queue import Virtqueue

__all__ = ["VirtioConsole", "VIRTIO_ID_CONSOLE"]

VIRTIO_ID_CONSOLE = 3
RECEIVEQ, TRANSMITQ = 0, 1


class VirtioConsole(VirtioDevice):
    """Console port 0 (§5.3.6): transmitq to the back-end, the back-end's input into receiveq."""

    device_id: ClassVar[int] = VIRTIO_ID_CONSOLE
    queue_sizes: ClassVar[tuple[int, ...]] = (64, 64)     # receiveq0, transmitq0

    def __init__(self, backend: CharBackend | None = None) -> None:
        super().__init__()
        self.backend: CharBackend = backend or NullBackend()
        self._input = bytearray()
        self.backend.set_receiver(self.receive)

    def attach(self, clock: Clock) -> None:
        attach_backend(self.backend, clock)

    def config_space(self) -> bytes:
        # struct virtio_console_config (§5.3.4): cols, rows (VIRTIO_CONSOLE_F_SIZE, not offered),
        # max_nr_ports (MULTIPORT, not offered), emerg_wr (EMERG_WRITE, not offered).
        return struct.pack("<HHII", 0, 0, 1, 0)

    def receive(self, data: bytes) -> None:
        """Input from the back-end."""
        self._input += data
        self._deliver()

    def on_queue(self, queue: Virtqueue) -> None:
        if queue.index == TRANSMITQ:
            while (chain := queue.pop()) is not None:
                self.backend.write(chain.read())
                queue.push(chain, 0)
        self._deliver()

    def start(self) -> None:
        self._deliver()                 # what was typed while the driver was still setting up

    def _deliver(self) -> None:
        if not self.driver_ok:          # §3.1.1: no buffers used before DRIVER_OK
            return
        receive = self.queue(RECEIVEQ)
        while self._input and (chain := receive.pop()) is not None:
            data = bytes(self._input[:chain.writable_len])
            chain.write(data)
            receive.push(chain, len(data))
            del self._input[:len(data)]

    def reset(self) -> None:
        self._input.clear()
