"""What a virtio device implements: its identity, features, config space and request handling.

The transport (`VirtioMmio`) owns everything common to every device: the
registers, feature negotiation, the virtqueues and the interrupt. A device owns
only its configuration and what its requests do (docs/virtio.md, "Writing a
virtio device").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ._queue import Virtqueue

if TYPE_CHECKING:
    from cosim import Clock

    from ._mmio import VirtioMmio

__all__ = ["VirtioDevice"]


class VirtioDevice:
    """Base of every virtio device. Subclasses set `device_id` (§5) and `queue_sizes`, and override
    `on_queue`; `config_space`, `write_config` and `reset` when they have configuration or state.

    The transport calls `on_queue(queue)` when the driver notifies a queue; the device takes chains
    with `queue.pop()` and gives each back with `queue.push(chain, written)` — at once, or later from
    an event it schedules on `self.clock`.
    """

    device_id: ClassVar[int] = 0
    queue_sizes: ClassVar[tuple[int, ...]] = ()   # QueueNumMax of each queue (powers of 2)
    features: int = 0                             # device-specific feature bits offered (§5.x.3)

    def __init__(self) -> None:
        self.transport: "VirtioMmio | None" = None
        self.driver_features = 0                  # what the driver accepted, once FEATURES_OK is set

    # -- what a device implements -------------------------------------------------
    def config_space(self) -> bytes:
        """The device configuration structure (§5.x.4), little-endian, as the driver reads it at 0x100."""
        return b""

    def write_config(self, offset: int, data: bytes) -> None:
        """A driver write into the config space; read-only by default (the write is ignored)."""

    def on_queue(self, queue: Virtqueue) -> None:
        """The driver made buffers available in `queue` (it wrote QueueNotify)."""

    def start(self) -> None:
        """The driver set DRIVER_OK: the device may now use its queues (work that waited for them)."""

    def reset(self) -> None:
        """Back to the state before the driver found the device (Status written 0, or platform reset)."""

    def attach(self, clock: "Clock") -> None:
        """The transport was given its clock: connect what needs the simulation (a character back-end)."""

    def close(self) -> None:
        """Release what the device holds on the host (files, locks): when its simulation is closed."""

    # -- what a device may call ---------------------------------------------------------
    def bind(self, transport: "VirtioMmio") -> None:
        if self.transport is not None and self.transport is not transport:
            raise ValueError(f"{type(self).__name__} is already behind transport {self.transport.name!r}")
        self.transport = transport

    @property
    def clock(self) -> "Clock":
        if self.transport is None:
            raise ValueError(f"{type(self).__name__} is behind no transport")
        return self.transport.clock

    @property
    def name(self) -> str:
        return self.transport.name if self.transport is not None else type(self).__name__

    def negotiated(self, bit: int) -> bool:
        """Whether the driver accepted feature `bit`."""
        return bool(self.driver_features >> bit & 1)

    @property
    def driver_ok(self) -> bool:
        """Whether the driver is ready (DRIVER_OK) and the device may use its queues (§3.1.1)."""
        return self.transport is not None and self.transport.driver_ok

    def config_changed(self) -> None:
        """Tell the driver the config space changed (a config-change interrupt, §2.5.2)."""
        if self.transport is not None:
            self.transport.config_changed()

    def queue(self, index: int) -> Virtqueue:
        if self.transport is None:
            raise ValueError(f"{type(self).__name__} is behind no transport")
        return self.transport.queues[index]
