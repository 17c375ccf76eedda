"""virtio: paravirtual devices for the guests, after the OASIS virtio 1.2 specification.

This package owns everything virtio: the virtio-mmio transport (`VirtioMmio`,
§4.2, the register bank a platform maps), the split virtqueue (`Virtqueue`,
`Chain`, §2.7) that reads and writes the rings in guest RAM through a DMA view
of the platform's bus (`GuestMemory`), the small device-side API a virtio
device implements (`VirtioDevice`: device id, features, config space,
`on_queue`), and the devices built on it: block (`VirtioBlk`, §5.2) and entropy
(`VirtioRng`, §5.4). Platforms place transports (`virt`: QEMU's addresses);
docs/virtio.md is the user's page.
"""

from ._device import VirtioDevice
from ._memory import GuestMemory, GuestMemoryError
from ._mmio import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK, FAILED, FEATURES_OK, VIRTIO_F_EVENT_IDX,
                    VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, VirtioMmio)
from .blk import Drive, VirtioBlk, parse_drives
from .console import VirtioConsole
from .rng import VirtioRng
from ._queue import (VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, Chain,
                     Virtqueue, VirtqueueError)

__all__ = [
    "VirtioMmio", "VirtioDevice", "VirtioBlk", "VirtioRng", "VirtioConsole", "Drive", "parse_drives", "Virtqueue", "Chain", "VirtqueueError", "GuestMemory", "GuestMemoryError",
    "VIRTIO_F_INDIRECT_DESC", "VIRTIO_F_EVENT_IDX", "VIRTIO_F_VERSION_1",
    "ACKNOWLEDGE", "DRIVER", "DRIVER_OK", "FEATURES_OK", "DEVICE_NEEDS_RESET", "FAILED",
    "VIRTQ_DESC_F_NEXT", "VIRTQ_DESC_F_WRITE", "VIRTQ_DESC_F_INDIRECT", "VIRTQ_AVAIL_F_NO_INTERRUPT",
]
