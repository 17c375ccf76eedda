"""The virtio-mmio transport (virtio 1.2 §4.2.2) and the split ring (§2.7) through the bus, with VirtioRng behind."""

import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cosim import Response
from cosim.virtio import (ACKNOWLEDGE, DEVICE_NEEDS_RESET, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_EVENT_IDX,
                          VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT,
                          VIRTQ_DESC_F_WRITE, VirtioDevice)
from cosim.virtio.rng import VirtioRng

from .conftest import RAM_BASE, RAM_SIZE

USED, CONFIG = 1, 2          # InterruptStatus bits (§4.2.2)


def test_identification_registers(attach):
    dut, _ = attach(VirtioRng(seed=1))
    assert dut.reg("MagicValue").read() == 0x74726976      # "virt"
    assert dut.reg("Version").read() == 2
    assert dut.reg("DeviceID").read() == 4
    dut.reg("QueueSel").write(0)
    assert dut.reg("QueueNumMax").read() == 64
    dut.reg("QueueSel").write(1)
    assert dut.reg("QueueNumMax").read() == 0              # no such queue
    assert dut.read(0x028) == 0 and dut.status(0x028, value=1) is Response.OK     # legacy offsets: RAZ/WI


def test_offers_version_1_and_the_ring_features(attach):
    _, driver = attach(VirtioRng(seed=1))
    offered = driver.device_features()
    assert offered >> VIRTIO_F_VERSION_1 & 1 and offered >> VIRTIO_F_INDIRECT_DESC & 1
    assert offered >> VIRTIO_F_EVENT_IDX & 1


def test_features_ok_refused_without_version_1_or_with_unoffered_bits(attach):
    dut, driver = attach(VirtioRng(seed=1))
    assert not driver.start(features=0)                    # legacy-only driver: §6.1
    assert not driver.start(features=1 << VIRTIO_F_VERSION_1 | 1 << 40)
    assert driver.start(features=1 << VIRTIO_F_VERSION_1)
    assert dut.reg("Status").read() == ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK


@pytest.mark.parametrize("indirect", [False, True])
def test_fills_a_chain_and_interrupts(attach, indirect):
    dut, driver = attach(VirtioRng(seed=7))
    irq = dut.probe(dut.device.irq)
    assert driver.start()
    head = driver.submit(0, writable=[16, 48], indirect=indirect)
    assert driver.used(0) == [(head, 64)]
    assert driver.written(0, head) == VirtioRng(seed=7).entropy(64)
    assert irq.level and driver.ack() == USED and not irq.level


def test_seeded_runs_repeat_and_host_entropy_differs(attach):
    _, driver = attach(VirtioRng(seed=3))
    driver.start()
    heads = [driver.submit(0, writable=[32]) for _ in range(2)]
    first, second = (driver.written(0, h) for h in heads)
    assert first != second and first + second == VirtioRng(seed=3).entropy(64)


def test_no_interrupt_flag_suppresses_interrupts(attach):
    dut, driver = attach(VirtioRng(seed=1))
    driver.start(features=1 << VIRTIO_F_VERSION_1)
    ring = driver.rings[0]
    driver.poke(ring.avail, (1).to_bytes(2, "little"))     # VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.7)
    driver.submit(0, writable=[8])
    assert len(driver.used(0)) == 1 and not dut.device.irq.level


def test_event_idx_interrupts_only_at_used_event(attach):
    dut, driver = attach(VirtioRng(seed=1))
    driver.start()                                         # EVENT_IDX accepted
    ring = driver.rings[0]
    used_event = ring.avail + 4 + 2 * ring.size
    driver.poke(used_event, (2).to_bytes(2, "little"))     # interrupt when used idx passes 2 (§2.7.10)
    driver.submit(0, writable=[8])
    driver.submit(0, writable=[8])
    assert not dut.device.irq.level
    driver.submit(0, writable=[8])
    assert dut.device.irq.level
    avail_event = int.from_bytes(driver.peek(ring.used + 4 + 8 * ring.size, 2), "little")
    assert avail_event == 3                                # the device wants to hear of the next one


def test_notifications_before_driver_ok_are_ignored(attach):
    dut, driver = attach(VirtioRng(seed=1))
    driver.set("Status", ACKNOWLEDGE | DRIVER)
    for window in (0, 1):
        driver.set("DriverFeaturesSel", window)
        driver.set("DriverFeatures", (1 << VIRTIO_F_VERSION_1) >> (32 * window) & 0xFFFF_FFFF)
    driver.set("Status", ACKNOWLEDGE | DRIVER | FEATURES_OK)
    driver.setup_queue(0, 64)
    driver.submit(0, writable=[8])
    assert driver.used(0) == []
    driver.set("Status", ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
    driver.set("QueueNotify", 0)
    assert len(driver.used(0)) == 1


def test_status_zero_resets_queues_and_negotiation(attach):
    dut, driver = attach(VirtioRng(seed=1))
    driver.start()
    driver.submit(0, writable=[8])
    assert dut.device.irq.level
    dut.reg("Status").write(0)
    assert dut.reg("Status").read() == 0 and dut.reg("InterruptStatus").read() == 0 and not dut.device.irq.level
    dut.reg("QueueSel").write(0)
    assert dut.reg("QueueReady").read() == 0
    assert dut.device.accepted == 0 and dut.device.device.driver_features == 0
    assert driver.start()                                  # and it works again from the start
    head = driver.submit(0, writable=[8])
    assert driver.used(0) == [(head, 8)]


def test_config_space_reads_and_generation(attach):
    class Configured(VirtioDevice):
        device_id = 42
        queue_sizes = (4,)

        def __init__(self):
            super().__init__()
            self.value = 0x1122_3344_5566_7788

        def config_space(self):
            return self.value.to_bytes(8, "little")

    device = Configured()
    dut, _ = attach(device)
    assert dut.read(0x100, 8 // 2) == 0x5566_7788 and dut.read(0x104) == 0x1122_3344
    assert dut.read(0x101, 1) == 0x77 and dut.read(0x102, 2) == 0x5566
    assert dut.read(0x108) == 0                            # past the structure: zeros
    generation = dut.reg("ConfigGeneration").read()
    device.value = 1
    device.config_changed()
    assert dut.reg("ConfigGeneration").read() != generation
    assert dut.reg("InterruptStatus").read() == CONFIG and dut.device.irq.level


def _broken(dut):
    return bool(dut.reg("Status").read() & DEVICE_NEEDS_RESET)


@pytest.mark.parametrize("entries, why", [
    ([(RAM_BASE + RAM_SIZE - 4, 8, VIRTQ_DESC_F_WRITE, 0)], "runs past the end of RAM"),
    ([(0x1000, 8, VIRTQ_DESC_F_WRITE, 0)], "not RAM"),
    ([(RAM_BASE + 0x8_0000, 0, VIRTQ_DESC_F_WRITE, 0)], "empty buffer"),
    ([(RAM_BASE + 0x8_0000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1),
      (RAM_BASE + 0x8_0100, 8, VIRTQ_DESC_F_NEXT, 0)], "readable after writable (and a loop)"),
    ([(RAM_BASE + 0x8_0000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0)], "a loop onto itself"),
    ([(RAM_BASE + 0x8_0000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 999)], "next outside the table"),
    ([(RAM_BASE + 0x8_0000, 20, VIRTQ_DESC_F_INDIRECT, 0)], "indirect table not a multiple of 16"),
    ([(RAM_BASE + 0x8_0000, 0, VIRTQ_DESC_F_INDIRECT, 0)], "empty indirect table"),
    ([(RAM_BASE + 0x8_0000, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1)], "indirect with NEXT"),
])
def test_malformed_chains_set_device_needs_reset(attach, entries, why):
    dut, driver = attach(VirtioRng(seed=1))
    driver.start()
    head = driver.descriptors(0, entries)
    driver.make_available(0, head)
    assert _broken(dut), why
    assert driver.used(0) == [] and dut.reg("InterruptStatus").read() & CONFIG
    driver.submit(0, writable=[8])                         # a broken queue takes nothing more
    assert driver.used(0) == []
    assert driver.start() and not _broken(dut)             # until the driver resets the device


def test_nested_indirect_tables_and_overlong_chains_are_refused(attach):
    dut, driver = attach(VirtioRng(seed=1))
    driver.start(queue_size=4)
    inner = RAM_BASE + 0x8_0000
    driver.poke(inner, struct.pack("<QIHH", inner, 16, VIRTQ_DESC_F_INDIRECT, 0))
    driver.make_available(0, driver.descriptors(0, [(inner, 16, VIRTQ_DESC_F_INDIRECT, 0)]))
    assert _broken(dut)
    driver.start(queue_size=4)
    table = b"".join(struct.pack("<QIHH", RAM_BASE + 0x9_0000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, i + 1)
                     for i in range(7)) + struct.pack("<QIHH", RAM_BASE + 0x9_0000, 8, VIRTQ_DESC_F_WRITE, 0)
    driver.poke(inner, table)                              # 8 descriptors > the queue's 4 (§2.7.5.3.1)
    driver.make_available(0, driver.descriptors(0, [(inner, len(table), VIRTQ_DESC_F_INDIRECT, 0)]))
    assert _broken(dut)


def test_indirect_refused_when_not_negotiated(attach):
    dut, driver = attach(VirtioRng(seed=1))
    driver.start(features=1 << VIRTIO_F_VERSION_1)
    driver.submit(0, writable=[8], indirect=True)
    assert _broken(dut)


def test_avail_index_running_ahead_and_rings_outside_ram(attach):
    dut, driver = attach(VirtioRng(seed=1))
    driver.start(queue_size=8)
    ring = driver.rings[0]
    driver.poke(ring.avail + 2, (100).to_bytes(2, "little"))
    driver.set("QueueNotify", 0)
    assert _broken(dut)
    driver.start()
    driver.set("Status", 0)
    driver.set("Status", ACKNOWLEDGE | DRIVER)
    driver.set("DriverFeaturesSel", 1)
    driver.set("DriverFeatures", 1)
    driver.set("Status", ACKNOWLEDGE | DRIVER | FEATURES_OK)
    driver.setup_queue(0, 64, desc=0x1000)                 # a descriptor table where no RAM is
    assert _broken(dut) and dut.reg("QueueReady").read() == 0


descriptor = st.tuples(
    st.one_of(st.integers(0, 1 << 64 - 1), st.integers(RAM_BASE - 64, RAM_BASE + RAM_SIZE + 64)),
    st.integers(0, 1 << 32 - 1) | st.integers(0, 256),
    st.integers(0, 0xFFFF) | st.sampled_from([0, 1, 2, 3, 4, 6]),
    st.integers(0, 0xFFFF) | st.integers(0, 8))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables=st.lists(st.lists(descriptor, min_size=1, max_size=8), min_size=1, max_size=4),
       heads=st.lists(st.integers(0, 0xFFFF) | st.integers(0, 8), min_size=1, max_size=6),
       avail_idx=st.none() | st.integers(0, 0xFFFF))
def test_random_rings_never_crash_or_hang(harness, ram, memory, tables, heads, avail_idx):
    """Any descriptors and available entries: the device either fills buffers or sets DEVICE_NEEDS_RESET."""
    from cosim.virtio import VirtioMmio
    from cosim.virtio.testing import Driver

    ram.buffer[:] = bytes(RAM_SIZE)
    dut = harness(VirtioMmio("virtio0", device=VirtioRng(seed=1), memory=memory))
    driver = Driver(dut, ram, RAM_BASE)
    driver.start(queue_size=8)
    ring = driver.rings[0]
    inner = RAM_BASE + 0x8_0000
    for i, table in enumerate(tables[1:]):                 # extra tables for indirect descriptors to point at
        driver.poke(inner + 0x100 * i, b"".join(struct.pack("<QIHH", *d) for d in table))
    driver.poke(ring.desc, b"".join(struct.pack("<QIHH", *d) for d in tables[0][:8]))
    for head in heads:
        driver.make_available(0, head, notify=False)
    if avail_idx is not None:
        driver.poke(ring.avail + 2, avail_idx.to_bytes(2, "little"))
    driver.set("QueueNotify", 0)
    used = driver.used(0)
    assert _broken(dut) or len(used) == min(len(heads) if avail_idx is None else avail_idx, 8)
    for head, written in used:
        assert head < 8 and written <= 1 << 32
