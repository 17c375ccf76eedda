"""The virtio-mmio transport, version 2 ("modern", virtio 1.2 §4.2.2).

A register bank at the device's base: identification (MagicValue "virt",
Version 2, DeviceID, VendorID), feature negotiation through 32-bit windows
selected by DeviceFeaturesSel/DriverFeaturesSel, one queue at a time selected
by QueueSel (size, ready, the three ring addresses), QueueNotify, the interrupt
status/acknowledge pair, Status, ConfigGeneration, and the device's config
space from 0x100 (any access of 1, 2, 4 or 8 bytes; §4.2.2.2 asks the driver
for natural widths). Offsets without a register (the legacy ones, the shared
memory windows no device here has) read as zero and ignore writes, as QEMU's.

Behaviour, after §2.1 and §3.1: Status written 0 resets the device and its
queues; FEATURES_OK is kept only if the driver accepted a subset of what is
offered that includes VIRTIO_F_VERSION_1 (§6.1), otherwise it reads back clear
and the driver gives up; queues take notifications only once DRIVER_OK is set.
A broken ring (docs in `_queue`) sets DEVICE_NEEDS_RESET and raises a config
change interrupt (§2.1.2). The interrupt line is level: high while
InterruptStatus is non-zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from cosim import Access, Bus, Clock, Field, Reg, RegisterDevice, Unmapped
from cosim.fdt import DeviceTree, Node

from ._device import VirtioDevice
from ._memory import GuestMemory
from ._queue import Virtqueue, VirtqueueError

__all__ = ["VirtioMmio", "VIRTIO_F_INDIRECT_DESC", "VIRTIO_F_EVENT_IDX", "VIRTIO_F_VERSION_1",
           "ACKNOWLEDGE", "DRIVER", "DRIVER_OK", "FEATURES_OK", "DEVICE_NEEDS_RESET", "FAILED"]

MAGIC = 0x7472_6976                 # "virt", little-endian
VERSION = 2
VENDOR_ID = 0x4D49_534F             # "OSIM": cosim's (QEMU answers "QEMU"); drivers do not look at it
CONFIG = 0x100                      # the device's config space starts here

# Reserved feature bits (§6) the transport and ring offer for every device.
VIRTIO_F_INDIRECT_DESC = 28
VIRTIO_F_EVENT_IDX = 29
VIRTIO_F_VERSION_1 = 32
RING_FEATURES = 1 << VIRTIO_F_INDIRECT_DESC | 1 << VIRTIO_F_EVENT_IDX | 1 << VIRTIO_F_VERSION_1

_STATUS_FIELDS = (Field("ACKNOWLEDGE", 0), Field("DRIVER", 1), Field("DRIVER_OK", 2), Field("FEATURES_OK", 3),
                  Field("DEVICE_NEEDS_RESET", 6), Field("FAILED", 7))
_INTERRUPT_FIELDS = (Field("UsedBuffer", 0), Field("ConfigChange", 1))


def _address_half(area: str, high: bool) -> Callable[["VirtioMmio", int], None]:
    """The write hook of QueueDescLow/High, QueueDriverLow/High or QueueDeviceLow/High: one half of an address."""
    shift = 32 if high else 0

    def write(self: "VirtioMmio", value: int) -> None:
        queue = self._selected()
        if queue is not None and not queue.ready:       # §4.2.2.1: not while the queue is in use
            setattr(queue, area, getattr(queue, area) & ~(0xFFFF_FFFF << shift) | value << shift)
    return write


class VirtioMmio(RegisterDevice):
    """virtio-mmio transport (virtio 1.2 §4.2, version 2) in front of a virtio device.

    Interrupts:
      irq: high while InterruptStatus is non-zero (used buffers, config changes).
    Properties:
      device: the VirtioDevice behind the transport (cosim.virtio.VirtioBlk, VirtioRng, ...).
      memory: the bus the device reaches guest RAM through (the platform's sysbus).
    """

    model: ClassVar[str] = "virtio-mmio"
    size: ClassVar[int] = 0x200
    dt_name: ClassVar[str] = "virtio_mmio"
    unmapped: ClassVar[Unmapped] = Unmapped.RAZ_WI
    registers = (
        Reg("MagicValue", 0x000, access=Access.RO, reset=MAGIC),
        Reg("Version", 0x004, access=Access.RO, reset=VERSION),
        Reg("DeviceID", 0x008, access=Access.RO, doc="the device type (§5): 2 block, 4 entropy, ..."),
        Reg("VendorID", 0x00C, access=Access.RO, reset=VENDOR_ID),
        Reg("DeviceFeatures", 0x010, access=Access.RO, doc="32 feature bits, the DeviceFeaturesSel-th window"),
        Reg("DeviceFeaturesSel", 0x014, access=Access.WO),
        Reg("DriverFeatures", 0x020, access=Access.WO, doc="the feature bits the driver accepts, by DriverFeaturesSel"),
        Reg("DriverFeaturesSel", 0x024, access=Access.WO),
        Reg("QueueSel", 0x030, access=Access.WO, doc="the queue the Queue* registers refer to"),
        Reg("QueueNumMax", 0x034, access=Access.RO, doc="largest size of the selected queue; 0: no such queue"),
        Reg("QueueNum", 0x038, access=Access.WO),
        Reg("QueueReady", 0x044, fields=(Field("Ready", 0),)),
        Reg("QueueNotify", 0x050, access=Access.WO, doc="the index of a queue with new buffers"),
        Reg("InterruptStatus", 0x060, access=Access.RO, fields=_INTERRUPT_FIELDS),
        Reg("InterruptACK", 0x064, access=Access.WO, fields=_INTERRUPT_FIELDS),
        Reg("Status", 0x070, fields=_STATUS_FIELDS, doc="device status (§2.1); writing 0 resets the device"),
        Reg("QueueDescLow", 0x080, access=Access.WO),
        Reg("QueueDescHigh", 0x084, access=Access.WO),
        Reg("QueueDriverLow", 0x090, access=Access.WO),
        Reg("QueueDriverHigh", 0x094, access=Access.WO),
        Reg("QueueDeviceLow", 0x0A0, access=Access.WO),
        Reg("QueueDeviceHigh", 0x0A4, access=Access.WO),
        Reg("ConfigGeneration", 0x0FC, access=Access.RO, doc="changes whenever the config space does"),
    )

    def __init__(self, name: str, *, device: VirtioDevice, memory: Bus) -> None:
        super().__init__(name)
        self.device = device
        self.memory = GuestMemory(memory)
        self.irq = self.output("irq")
        self.queues = [Virtqueue(i, size, self.memory, self) for i, size in enumerate(device.queue_sizes)]
        self.offered = device.features | RING_FEATURES
        self.accepted = 0                   # DriverFeatures, both windows
        device.bind(self)

    def attach(self, clock: Clock) -> None:
        super().attach(clock)
        self.device.attach(clock)
        add_finalizer = getattr(clock, "add_finalizer", None)
        if add_finalizer is not None:
            add_finalizer(self.device.close)        # the device's files and locks go with its simulation

    # -- config space at 0x100 ------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if offset >= CONFIG:
            return self._config_read(offset - CONFIG, size)
        return super().read(offset, size)

    def debug_read(self, offset: int, size: int) -> int:
        if offset >= CONFIG:
            return self._config_read(offset - CONFIG, size)
        return super().debug_read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        if offset >= CONFIG:
            if offset - CONFIG < len(self.device.config_space()):
                self.device.write_config(offset - CONFIG, value.to_bytes(size, "little"))
            return
        super().write(offset, size, value)

    def _config_read(self, offset: int, size: int) -> int:
        data = self.device.config_space()[offset:offset + size]
        return int.from_bytes(data, "little")             # past the end: zeros

    # -- registers ----------------------------------------------------------------------
    def read_DeviceID(self) -> int:
        return self.device.device_id

    def read_DeviceFeatures(self) -> int:
        window = self.regs.DeviceFeaturesSel
        return self.offered >> (32 * window) & 0xFFFF_FFFF if window < 2 else 0

    def write_DriverFeatures(self, value: int) -> None:
        window = self.regs.DriverFeaturesSel
        if window < 2 and not self.regs.Status & FEATURES_OK:     # fixed once FEATURES_OK is set (§3.1.1)
            self.accepted = self.accepted & ~(0xFFFF_FFFF << (32 * window)) | value << (32 * window)

    def read_QueueNumMax(self) -> int:
        queue = self._selected()
        return queue.size_max if queue is not None else 0

    def write_QueueNum(self, value: int) -> None:
        queue = self._selected()
        if queue is not None and not queue.ready:
            queue.size = value

    def read_QueueReady(self) -> int:
        queue = self._selected()
        return int(queue is not None and queue.ready)

    def write_QueueReady(self, value: int) -> None:
        queue = self._selected()
        if queue is None:
            return
        if not value:
            queue.ready = False
            return
        try:
            queue.check_layout()
        except VirtqueueError as error:
            queue.fail(error)
            return
        queue.event_idx = bool(self.accepted >> VIRTIO_F_EVENT_IDX & 1)
        queue.indirect = bool(self.accepted >> VIRTIO_F_INDIRECT_DESC & 1)
        queue.ready = True

    def write_QueueNotify(self, value: int) -> None:
        if value < len(self.queues) and self.driver_ok and self.queues[value].ready:
            self.device.on_queue(self.queues[value])

    def write_InterruptACK(self, value: int) -> None:
        self.regs.InterruptStatus &= ~value

    def write_Status(self, value: int) -> None:
        if value == 0:
            self.reset_device()
            return
        old = self.regs.Status
        value |= old & DEVICE_NEEDS_RESET                  # only a reset clears it
        if value & FEATURES_OK and not old & FEATURES_OK and not self._features_acceptable():
            value &= ~FEATURES_OK                         # §3.1.1 step 6: the driver reads it back clear
        if value & FEATURES_OK and not old & FEATURES_OK:
            self.device.driver_features = self.accepted
        self.regs.Status = value
        if value & DRIVER_OK and not old & DRIVER_OK and self.driver_ok:
            self.device.start()

    @property
    def driver_ok(self) -> bool:
        """Whether the device may use its queues: DRIVER_OK set, DEVICE_NEEDS_RESET not (§2.1, §3.1.1)."""
        return self.regs.Status & (DRIVER_OK | DEVICE_NEEDS_RESET) == DRIVER_OK

    write_QueueDescLow = _address_half("desc", high=False)
    write_QueueDescHigh = _address_half("desc", high=True)
    write_QueueDriverLow = _address_half("driver", high=False)
    write_QueueDriverHigh = _address_half("driver", high=True)
    write_QueueDeviceLow = _address_half("device", high=False)
    write_QueueDeviceHigh = _address_half("device", high=True)

    # -- behaviour ----------------------------------------------------------------------
    def _selected(self) -> Virtqueue | None:
        index = self.regs.QueueSel
        return self.queues[index] if index < len(self.queues) else None

    def _features_acceptable(self) -> bool:
        return not self.accepted & ~self.offered and bool(self.accepted >> VIRTIO_F_VERSION_1 & 1)

    def reset_device(self) -> None:
        """Status written 0 (§2.4): the device, its queues, the negotiation and the interrupt start over."""
        for queue in self.queues:
            queue.reset()
        self.accepted = 0
        self.device.driver_features = 0
        self.device.reset()
        self.regs.Status = 0
        self.regs.InterruptStatus = 0
        self.update()

    def reset(self) -> None:
        super().reset()
        self.reset_device()

    def queue_used(self, queue: Virtqueue) -> None:
        """A queue put a chain in its used ring: interrupt if the driver wants it."""
        if queue.needs_interrupt():
            self.regs.InterruptStatus |= USED_BUFFER
            self.update()

    def queue_failed(self, queue: Virtqueue, error: Exception) -> None:
        """A queue found its ring broken: DEVICE_NEEDS_RESET and a config change interrupt (§2.1.2)."""
        self.regs.Status |= DEVICE_NEEDS_RESET
        self.config_changed()

    def config_changed(self) -> None:
        self.regs.ConfigGeneration = (self.regs.ConfigGeneration + 1) & 0xFFFF_FFFF
        self.regs.InterruptStatus |= CONFIG_CHANGE
        self.update()

    def update(self) -> None:
        self.irq.set(bool(self.regs.InterruptStatus))

    def dt_node(self, node: Node, tree: DeviceTree) -> None:
        node.set("compatible", "virtio,mmio").set("interrupts", tree.interrupts(self.irq)).set("dma-coherent", True)

    def describe_offset(self, offset: int) -> str:
        if offset >= CONFIG:
            return f"config space byte {offset - CONFIG} (offset {offset:#x})"
        return super().describe_offset(offset)


_status = VirtioMmio.register("Status").bits
ACKNOWLEDGE, DRIVER, DRIVER_OK = _status.ACKNOWLEDGE.mask, _status.DRIVER.mask, _status.DRIVER_OK.mask
FEATURES_OK, DEVICE_NEEDS_RESET, FAILED = _status.FEATURES_OK.mask, _status.DEVICE_NEEDS_RESET.mask, _status.FAILED.mask
USED_BUFFER = VirtioMmio.register("InterruptStatus").bits.UsedBuffer.mask
CONFIG_CHANGE = VirtioMmio.register("InterruptStatus").bits.ConfigChange.mask
