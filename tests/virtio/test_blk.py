"""virtio-blk (virtio 1.2 §5.2) through the transport, on image files in tmp_path."""

import fcntl
import os
import struct
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cosim import PlatformError
from cosim.virtio import Drive, VirtioBlk, parse_drives
from cosim.virtio.blk import (SECTOR, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_RO, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK,
                              VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, VIRTIO_BLK_T_IN,
                              VIRTIO_BLK_T_OUT)

SECTORS = 64


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(range(256)) * (SECTORS * SECTOR // 256))
    return path


def header(kind, sector=0):
    return struct.pack("<IIQ", kind, 0, sector)


def request(driver, kind, sector=0, data=(), reply=0, indirect=False):
    """One request; returns (status, written, data the device wrote)."""
    head = driver.submit(0, [header(kind, sector), *data], [*([reply] if reply else []), 1], indirect=indirect)
    [(used_head, written)] = driver.used(0)
    assert used_head == head
    back = driver.written(0, head)
    return back[-1], written, back[:-1]


@pytest.fixture
def blk(attach, image):
    dut, driver = attach(VirtioBlk(image))
    assert driver.start()
    yield dut, driver
    dut.device.device.close()


def test_config_space_gives_capacity_and_features(blk):
    dut, driver = blk
    assert dut.read(0x100, 4) | dut.read(0x104, 4) << 32 == SECTORS      # capacity in 512-byte sectors
    assert dut.read(0x114, 4) == SECTOR                                    # blk_size
    assert driver.device_features() >> VIRTIO_BLK_F_FLUSH & 1 and not driver.device_features() >> VIRTIO_BLK_F_RO & 1


@pytest.mark.parametrize("indirect", [False, True])
def test_reads_sectors(blk, image, indirect):
    _, driver = blk
    status, written, data = request(driver, VIRTIO_BLK_T_IN, 3, reply=2 * SECTOR, indirect=indirect)
    assert status == VIRTIO_BLK_S_OK and written == 2 * SECTOR + 1
    assert data == image.read_bytes()[3 * SECTOR:5 * SECTOR]


def test_writes_reach_the_image_and_flush(blk, image):
    _, driver = blk
    payload = b"\xA5" * SECTOR + b"\x5A" * SECTOR
    status, written, _ = request(driver, VIRTIO_BLK_T_OUT, 10, data=[payload[:300], payload[300:]])
    assert status == VIRTIO_BLK_S_OK and written == 1
    assert image.read_bytes()[10 * SECTOR:12 * SECTOR] == payload
    assert request(driver, VIRTIO_BLK_T_FLUSH)[:2] == (VIRTIO_BLK_S_OK, 1)


def test_get_id_gives_the_serial(blk):
    _, driver = blk
    status, written, data = request(driver, VIRTIO_BLK_T_GET_ID, reply=20)
    assert status == VIRTIO_BLK_S_OK and written == 21 and data == b"disk.img".ljust(20, b"\0")


@pytest.mark.parametrize("kind, sector, data, reply, expected", [
    (VIRTIO_BLK_T_IN, SECTORS - 1, (), 2 * SECTOR, VIRTIO_BLK_S_IOERR),        # past the end
    (VIRTIO_BLK_T_IN, 1 << 60, (), SECTOR, VIRTIO_BLK_S_IOERR),
    (VIRTIO_BLK_T_IN, 0, (), 100, VIRTIO_BLK_S_IOERR),                         # not whole sectors
    (VIRTIO_BLK_T_OUT, SECTORS, (b"x" * SECTOR,), 0, VIRTIO_BLK_S_IOERR),
    (VIRTIO_BLK_T_GET_ID, 0, (), 8, VIRTIO_BLK_S_IOERR),                       # no room for the id
    (11, 0, (), 0, VIRTIO_BLK_S_UNSUPP),                                        # DISCARD: not offered
    (0xDEAD, 0, (), 0, VIRTIO_BLK_S_UNSUPP),
])
def test_bad_requests_get_an_error_status(blk, image, kind, sector, data, reply, expected):
    _, driver = blk
    before = image.read_bytes()
    assert request(driver, kind, sector, data, reply)[0] == expected
    assert image.read_bytes() == before


def test_short_header_and_missing_status_byte(blk):
    dut, driver = blk
    head = driver.submit(0, [b"\0" * 8], [1])
    assert driver.used(0) == [(head, 1)] and driver.written(0, head) == bytes([VIRTIO_BLK_S_IOERR])
    head = driver.submit(0, [header(VIRTIO_BLK_T_FLUSH)], [])
    assert driver.used(0) == [(head, 0)]


def test_read_only_drive_refuses_writes(attach, image):
    dut, driver = attach(VirtioBlk(Drive(image, readonly=True)))
    driver.start()
    assert driver.device_features() >> VIRTIO_BLK_F_RO & 1
    before = image.read_bytes()
    assert request(driver, VIRTIO_BLK_T_OUT, 0, data=[b"x" * SECTOR])[0] == VIRTIO_BLK_S_IOERR
    assert request(driver, VIRTIO_BLK_T_IN, 0, reply=SECTOR)[0] == VIRTIO_BLK_S_OK
    assert image.read_bytes() == before
    dut.device.device.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from([VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, 2, 0xFFFF_FFFF]),
       sector=st.integers(0, SECTORS + 2) | st.integers(0, 1 << 64 - 1),
       readable=st.lists(st.integers(1, 1200), max_size=3), writable=st.lists(st.integers(1, 1200), max_size=3))
def test_any_request_gets_a_status_and_stays_in_the_image(blk, image, kind, sector, readable, writable):
    dut, driver = blk
    head = driver.submit(0, [header(kind, sector), *(b"w" * n for n in readable)], writable)
    [(used, written)] = driver.used(0)
    assert used == head and written <= sum(writable)
    if writable:
        assert driver.written(0, head)[-1] in (VIRTIO_BLK_S_OK, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP)
    assert image.stat().st_size == SECTORS * SECTOR


def test_parse_drives():
    assert parse_drives("a.img") == (Drive(__import__("pathlib").Path("a.img")),)
    assert [str(d) for d in parse_drives("a.img,ro,b.img,c.img,rw")] == ["a.img,ro", "b.img", "c.img"]
    assert parse_drives("none") == () and parse_drives("") == ()
    with pytest.raises(PlatformError, match="'ro' must follow a path"):
        parse_drives("ro")
    with pytest.raises(PlatformError, match="an empty path"):
        parse_drives("a.img,,b.img")


def test_missing_image_directory_and_locked_image(tmp_path, image):
    with pytest.raises(PlatformError, match=r"drive .*nothere.img: no such file"):
        VirtioBlk(tmp_path / "nothere.img")
    with pytest.raises(PlatformError, match="not a regular file"):
        VirtioBlk(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'rb+'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", str(image)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for drive in (image, Drive(image, readonly=True)):
            with pytest.raises(PlatformError, match="in use by another run"):
                VirtioBlk(drive)
    finally:
        holder.kill()
        holder.wait()
    VirtioBlk(image).close()                        # free again once the other run is gone


def test_readers_share_and_a_writer_excludes(image):
    readers = [VirtioBlk(Drive(image, readonly=True)) for _ in range(2)]
    with pytest.raises(PlatformError, match="in use"):
        VirtioBlk(image)
    for reader in readers:
        reader.close()
    writer = VirtioBlk(image)
    with pytest.raises(PlatformError, match="in use"):
        VirtioBlk(Drive(image, readonly=True))
    writer.close()
    fd = os.open(image, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)      # closed means unlocked
    os.close(fd)
