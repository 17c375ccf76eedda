"""virtio-net (virtio 1.2 §5.1): an Ethernet NIC on a `cosim.net` back-end (a switch port, a host TAP).

Queues: 0 receiveq1, 1 transmitq1; no control queue, one queue pair. Features
offered: VIRTIO_NET_F_MAC (the config space holds the MAC) and
VIRTIO_NET_F_STATUS (link up); with VIRTIO_F_VERSION_1 every buffer starts with
the 12-byte `struct virtio_net_hdr` (§5.1.6: flags, gso_type, hdr_len,
gso_size, csum_start, csum_offset, num_buffers). No offload is offered, so a
transmitted header asking for checksum or segmentation work is a driver error:
the frame is dropped and counted. A received frame takes the next receive
chain whole (no VIRTIO_NET_F_MRG_RXBUF: num_buffers is 1, §5.1.6.4); a frame
that finds no chain (the driver has not refilled the ring) or one too small is
dropped and counted, as a real NIC drops on an empty ring.
"""

from __future__ import annotations

import struct
from typing import ClassVar

from cosim import Clock, Simulation
from cosim.net import NetBackend, mac_text, parse_mac

from ._device import VirtioDevice
from ._queue import Virtqueue

__all__ = ["VirtioNet", "VIRTIO_NET_F_MAC", "VIRTIO_NET_F_STATUS", "VIRTIO_NET_S_LINK_UP", "NET_HDR_SIZE"]

VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS = 5, 16                 # feature bits (§5.1.3)
VIRTIO_NET_S_LINK_UP = 1                                       # virtio_net_config.status (§5.1.4)
VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE = 1, 0    # virtio_net_hdr flags, gso_type (§5.1.6)
RX, TX = 0, 1                                                  # receiveq1, transmitq1 (§5.1.2)
NET_HDR = struct.Struct("<BBHHHHH")    # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset, num_buffers
NET_HDR_SIZE = NET_HDR.size            # 12
_RX_HDR = NET_HDR.pack(0, VIRTIO_NET_HDR_GSO_NONE, 0, 0, 0, 0, 1)


class VirtioNet(VirtioDevice):
    """An Ethernet NIC: frames the driver transmits go to `backend`, frames from it fill receive buffers.

    Properties:
      backend: the NetBackend (cosim.net: a Switch port, a TapBackend).
      mac: the MAC address, '52:54:00:12:34:56' (QEMU's default) unless given.
    Counters: tx_packets, rx_packets, rx_dropped (no or too small a receive buffer), tx_errors
    (a chain too short for the header, a header asking for an offload that was not offered).
    """

    device_id: ClassVar[int] = 1
    queue_sizes: ClassVar[tuple[int, ...]] = (256, 256)
    features = 1 << VIRTIO_NET_F_MAC | 1 << VIRTIO_NET_F_STATUS

    def __init__(self, backend: NetBackend, mac: str | bytes = "52:54:00:12:34:56") -> None:
        super().__init__()
        self.mac = parse_mac(mac) if isinstance(mac, str) else bytes(mac)
        if len(self.mac) != 6:
            raise ValueError(f"a MAC address is 6 bytes, not {len(self.mac)}")
        self.backend = backend
        self.link_up = True
        self.tx_packets = self.rx_packets = self.rx_dropped = self.tx_errors = 0
        backend.set_receiver(self.receive)

    def attach(self, clock: Clock) -> None:
        if isinstance(clock, Simulation):         # a bare clock (some tests) has no back-end to drive
            self.backend.attach(clock)
            clock.add_summary(self.summary)

    def config_space(self) -> bytes:
        # struct virtio_net_config (§5.1.4): mac[6], status, max_virtqueue_pairs (1: no VIRTIO_NET_F_MQ).
        return self.mac + struct.pack("<HH", VIRTIO_NET_S_LINK_UP if self.link_up else 0, 1)

    def on_queue(self, queue: Virtqueue) -> None:
        if queue.index == TX:
            self._transmit(queue)
        # receiveq: new buffers wait for the next frame; nothing is held back to deliver.

    def _transmit(self, queue: Virtqueue) -> None:
        while (chain := queue.pop()) is not None:
            if chain.readable_len < NET_HDR_SIZE:
                self.tx_errors += 1
            else:
                flags, gso_type, *_ = NET_HDR.unpack(chain.read(0, NET_HDR_SIZE))
                if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM or gso_type != VIRTIO_NET_HDR_GSO_NONE:
                    self.tx_errors += 1             # offloads were not offered (§5.1.6.2.1)
                else:
                    self.tx_packets += 1
                    self.backend.send(chain.read(NET_HDR_SIZE))
            queue.push(chain, 0)

    def receive(self, frame: bytes) -> None:
        """A frame from the network (called by the back-end, from an event)."""
        if not self.driver_ok or not self.link_up:      # no buffer is ours before DRIVER_OK (§3.1.1)
            self.rx_dropped += 1
            return
        assert self.transport is not None
        queue = self.transport.queues[RX]
        chain = queue.pop()
        if chain is None:
            self.rx_dropped += 1
            return
        if chain.writable_len < NET_HDR_SIZE + len(frame):
            self.rx_dropped += 1
            queue.push(chain, 0)                    # the buffer goes back unused
            return
        chain.write(_RX_HDR + frame)
        self.rx_packets += 1
        queue.push(chain, NET_HDR_SIZE + len(frame))

    def summary(self) -> dict[str, str]:
        return {f"{self.name} ({mac_text(self.mac)})": f"{self.tx_packets} frames sent ({self.tx_errors} errors), "
                                                       f"{self.rx_packets} received, {self.rx_dropped} dropped"}
