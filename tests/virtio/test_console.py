"""virtio-console (virtio 1.2 §5.3), one port, on a BufferBackend."""

from cosim import MS
from cosim.chardev import BufferBackend
from cosim.virtio import VirtioConsole
from cosim.virtio.console import RECEIVEQ, TRANSMITQ


def test_transmitted_bytes_reach_the_backend(attach):
    backend = BufferBackend()
    dut, driver = attach(VirtioConsole(backend))
    assert dut.reg("DeviceID").read() == 3 and driver.start()
    head = driver.submit(TRANSMITQ, readable=[b"hello, ", b"hvc\n"])
    assert driver.used(TRANSMITQ) == [(head, 0)] and bytes(backend.output) == b"hello, hvc\n"


def test_input_waits_for_receive_buffers_and_is_split_across_them(attach):
    backend = BufferBackend()
    dut, driver = attach(VirtioConsole(backend))
    driver.start()
    backend.feed("typed early")
    dut.run(2 * MS)                                  # the back-end delivers it; no buffer yet
    first = driver.submit(RECEIVEQ, writable=[5])
    second = driver.submit(RECEIVEQ, writable=[64])
    assert driver.used(RECEIVEQ) == [(first, 5), (second, 6)]
    assert driver.written(RECEIVEQ, first) == b"typed" and driver.written(RECEIVEQ, second)[:6] == b" early"


def test_reset_drops_pending_input(attach):
    backend = BufferBackend()
    dut, driver = attach(VirtioConsole(backend))
    dut.device.device.receive(b"stale")
    driver.start()                                   # Status 0 first: the device resets
    driver.submit(RECEIVEQ, writable=[16])
    assert driver.used(RECEIVEQ) == []


def test_input_is_held_until_driver_ok(attach):
    from cosim.virtio import ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, VIRTIO_F_VERSION_1

    backend = BufferBackend()
    dut, driver = attach(VirtioConsole(backend))
    driver.set("Status", ACKNOWLEDGE | DRIVER)
    driver.set("DriverFeaturesSel", 1)
    driver.set("DriverFeatures", 1 << (VIRTIO_F_VERSION_1 - 32))
    driver.set("Status", ACKNOWLEDGE | DRIVER | FEATURES_OK)
    driver.setup_queue(RECEIVEQ, 64)
    head = driver.submit(RECEIVEQ, writable=[16])     # Linux fills receiveq before DRIVER_OK
    dut.device.device.receive(b"early")
    assert driver.used(RECEIVEQ) == []
    driver.set("Status", ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
    assert driver.used(RECEIVEQ) == [(head, 5)]
