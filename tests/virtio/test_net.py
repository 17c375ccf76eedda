"""virtio-net (virtio 1.2 §5.1) through the transport, with a Python driver and a fake network."""

import struct

from hypothesis import HealthCheck, given, settings, strategies as st

from cosim import Simulation, us
from cosim.net import Switch
from cosim.virtio import DEVICE_NEEDS_RESET, VIRTIO_F_VERSION_1, VirtioMmio
from cosim.virtio.net import NET_HDR_SIZE, VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS, VirtioNet
from cosim.virtio.testing import Driver

from .conftest import RAM_BASE, RAM_SIZE

RX, TX = 0, 1
USED = 1
MAC = "52:54:00:12:34:57"
PEER = bytes.fromhex("525400123456")
FRAME = PEER + bytes.fromhex("525400123457") + b"\x08\x00" + bytes(range(50))
HEADER = bytes(NET_HDR_SIZE)


class FakeNet:
    """A NetBackend that keeps what the NIC sends and lets a test hand it frames."""

    def __init__(self):
        self.sent = []
        self.receiver = None

    def attach(self, sim):
        pass

    def set_receiver(self, receiver):
        self.receiver = receiver

    def send(self, frame):
        self.sent.append(frame)


def nic(attach, **props):
    net = FakeNet()
    dut, driver = attach(VirtioNet(net, mac=MAC, **props))
    return dut, driver, net


def test_offers_mac_status_and_version_1_only(attach):
    dut, driver, _ = nic(attach)
    offered = driver.device_features()
    assert offered >> VIRTIO_NET_F_MAC & 1 and offered >> VIRTIO_NET_F_STATUS & 1 and offered >> VIRTIO_F_VERSION_1 & 1
    assert offered & 0xFFFF_FFFF & ~(1 << VIRTIO_NET_F_MAC | 1 << VIRTIO_NET_F_STATUS | 0b11 << 28) == 0
    assert dut.reg("DeviceID").read() == 1
    config = bytes(dut.read(0x100 + i, 1) for i in range(10))
    assert config == bytes.fromhex("525400123457") + struct.pack("<HH", 1, 1)     # MAC, LINK_UP, one pair


def test_transmits_a_frame_after_its_header(attach):
    dut, driver, net = nic(attach)
    irq = dut.probe(dut.device.irq)
    assert driver.start()
    head = driver.submit(TX, readable=[HEADER, FRAME])        # header and data in two descriptors
    assert net.sent == [FRAME] and driver.used(TX) == [(head, 0)]
    assert irq.level and driver.ack() == USED and dut.device.device.tx_packets == 1


def test_offload_requests_and_short_chains_are_errors_not_frames(attach):
    _, driver, net = nic(attach)
    driver.start()
    driver.submit(TX, readable=[b"\x01" + bytes(11) + FRAME])   # NEEDS_CSUM: not offered
    driver.submit(TX, readable=[bytes([0, 1]) + bytes(10) + FRAME])  # GSO TCPv4: not offered
    driver.submit(TX, readable=[bytes(7)])                     # shorter than the header
    assert net.sent == [] and len(driver.used(TX)) == 3
    assert driver.dut.device.device.tx_errors == 3


def test_receives_into_a_buffer_with_num_buffers_1(attach):
    _, driver, net = nic(attach)
    driver.start()
    head = driver.submit(RX, writable=[NET_HDR_SIZE + 1514])
    net.receiver(FRAME)
    assert driver.used(RX) == [(head, NET_HDR_SIZE + len(FRAME))]
    written = driver.written(RX, head)
    assert written[:NET_HDR_SIZE] == struct.pack("<BBHHHHH", 0, 0, 0, 0, 0, 0, 1)
    assert written[NET_HDR_SIZE:NET_HDR_SIZE + len(FRAME)] == FRAME


def test_frames_without_a_fitting_buffer_are_dropped_and_counted(attach):
    dut, driver, net = nic(attach)
    net.receiver(FRAME)                                        # before the driver is there
    driver.start()
    net.receiver(FRAME)                                        # no receive buffer yet
    small = driver.submit(RX, writable=[20])
    net.receiver(FRAME)                                        # the buffer is too small: given back unused
    assert driver.used(RX) == [(small, 0)]
    device = dut.device.device
    assert (device.rx_dropped, device.rx_packets) == (3, 0)
    big = driver.submit(RX, writable=[NET_HDR_SIZE + 64, 2000])   # the frame may span buffers
    net.receiver(FRAME)
    assert driver.used(RX) == [(big, NET_HDR_SIZE + len(FRAME))] and device.rx_packets == 1


def test_two_nics_on_a_switch_see_latency_and_serialisation(harness, ram, memory):
    from cosim import Bus, Memory

    switch = Switch(latency=us(5), bandwidth="1G")
    ram2 = Memory("ram2", size=RAM_SIZE)
    memory2 = Bus("dma2")
    memory2.map(RAM_BASE, RAM_SIZE, ram2)
    a = harness(VirtioMmio("net-a", device=VirtioNet(switch.port(), mac="52:54:00:12:34:57"), memory=memory))
    b = harness(VirtioMmio("net-b", device=VirtioNet(switch.port(), mac="52:54:00:12:34:56"), memory=memory2))
    sim = a.sim
    for port in switch.ports:
        port.attach(sim)
    da, db = Driver(a, ram, RAM_BASE), Driver(b, ram2, RAM_BASE)
    da.start(), db.start()
    head = db.submit(RX, writable=[NET_HDR_SIZE + 1514])
    start = sim.now
    da.submit(TX, readable=[HEADER + FRAME])
    sim.run()
    assert db.used(RX) == [(head, NET_HDR_SIZE + len(FRAME))]
    assert sim.now == start + us(5) + len(FRAME) * 8 * 1000      # latency + 8 ns a byte at 1 Gbit/s


descriptor = st.tuples(
    st.one_of(st.integers(0, (1 << 64) - 1), st.integers(RAM_BASE - 64, RAM_BASE + RAM_SIZE + 64)),
    st.integers(0, (1 << 32) - 1) | st.integers(0, 100),
    st.sampled_from([0, 1, 2, 3, 4, 6]),
    st.integers(0, 8))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=st.lists(descriptor, min_size=1, max_size=8), heads=st.lists(st.integers(0, 9), min_size=1, max_size=4),
       frames=st.lists(st.binary(max_size=100), max_size=4))
def test_random_chains_and_frames_never_crash(harness, ram, memory, table, heads, frames):
    """Any descriptors on both queues and any frames in: frames are sent, dropped or the device needs a reset."""
    ram.buffer[:] = bytes(RAM_SIZE)
    net = FakeNet()
    dut = harness(VirtioMmio("virtio0", device=VirtioNet(net), memory=memory))
    driver = Driver(dut, ram, RAM_BASE)
    driver.start(queue_size=8)
    for queue in (RX, TX):
        driver.poke(driver.rings[queue].desc, b"".join(struct.pack("<QIHH", *d) for d in table))
        for head in heads:
            driver.make_available(queue, head, notify=False)
    driver.set("QueueNotify", TX)
    for frame in frames:
        net.receiver(frame)
    device = dut.device
    broken = dut.reg("Status").read() & DEVICE_NEEDS_RESET
    assert broken or len(driver.used(TX)) == len(heads)
    assert device.device.rx_packets + device.device.rx_dropped == len(frames)


def test_no_receive_buffer_is_used_before_driver_ok(attach):
    from cosim.virtio import ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK

    dut, driver, net = nic(attach)
    driver.set("Status", ACKNOWLEDGE | DRIVER)
    driver.set("DriverFeaturesSel", 1)
    driver.set("DriverFeatures", 1)                            # VERSION_1
    driver.set("Status", ACKNOWLEDGE | DRIVER | FEATURES_OK)
    driver.setup_queue(RX, 16)
    head = driver.submit(RX, writable=[NET_HDR_SIZE + 1514], notify=False)
    net.receiver(FRAME)                                        # queues ready, DRIVER_OK not yet set
    assert driver.used(RX) == [] and dut.device.device.rx_dropped == 1
    driver.set("Status", ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
    net.receiver(FRAME)
    assert driver.used(RX) == [(head, NET_HDR_SIZE + len(FRAME))]
