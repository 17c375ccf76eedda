"""End to end: Debian's Linux on virt-linux uses virtio-blk drives (ext4 made on the host), virtio-rng and
virtio-console."""

import hashlib
import re
import shutil
import subprocess

import pytest

from cosim import SEC
from cosim.chardev import BufferBackend
from cosim.images.fetch import ImageError, busybox_initramfs_image, linux_kernel

from .linux_shell import boot_to_shell, command

pytestmark = pytest.mark.slow


def ext4_image(path, files):
    """A 16 MiB ext4 image holding `files` (name -> text), made with mke2fs -d as a user would."""
    content = path.with_suffix(".d")
    content.mkdir()
    for name, text in files.items():
        (content / name).write_text(text)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(content), str(path), "16M"], check=True,
                   capture_output=True)
    return path


def debugfs_cat(image, name):
    proc = subprocess.run(["debugfs", "-R", f"cat /{name}", str(image)], capture_output=True, text=True, check=True)
    return proc.stdout


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    if shutil.which("mke2fs") is None or shutil.which("debugfs") is None:
        pytest.skip("e2fsprogs is not installed (scripts/bootstrap.sh installs it)")
    try:
        kernel, initrd = linux_kernel(), busybox_initramfs_image()
    except ImageError as error:
        pytest.skip(f"Linux images not available: {error}")
    from cosim.platforms.virt import VirtLinux

    where = tmp_path_factory.mktemp("drives")
    data = ext4_image(where / "data.img", {"hello.txt": "hello from the host\n"})
    frozen = ext4_image(where / "frozen.img", {"keep.txt": "read-only\n"})
    console, hvc = BufferBackend(), BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console, drive=f"{data},{frozen},ro",
                      rng="seed:42", hvc=hvc)
    board.hvc = hvc
    boot_to_shell(board, console, 10 * SEC, 5 * SEC)
    board.images = {"data": data, "frozen": frozen,
                    "frozen_sha": hashlib.sha256(frozen.read_bytes()).hexdigest()}
    yield board, console
    board.sim.close()


def test_drives_appear_as_vda_and_vdb(booted):
    board, console = booted
    assert re.search(r"virtio_blk virtio0: \[vda\] 32768 512-byte logical blocks", console.text)
    assert re.search(r"virtio_blk virtio1: \[vdb\] 32768 512-byte logical blocks", console.text)
    assert command(*booted, "cat /sys/block/vda/ro /sys/block/vdb/ro").split()[:2] == ["0", "1"]


def test_hw_random_is_virtio_rng(booted):
    assert "virtio_rng" in command(*booted, "cat /sys/class/misc/hw_random/rng_available")
    assert command(*booted, "cat /sys/class/misc/hw_random/rng_current").strip().startswith("virtio_rng")
    dump = command(*booted, "head -c 32 /dev/hwrng | od -An -tx1 | wc -w")
    assert dump.split()[0] == "32"


def test_virtio_console_is_hvc0_both_ways(booted):
    board, console = booted
    command(board, console, "echo out through hvc0 > /dev/hvc0")
    assert b"out through hvc0" in board.hvc.output
    board.hvc.feed("typed into hvc0\n")
    assert "got: typed into hvc0" in command(board, console, "read line < /dev/hvc0; echo got: $line")


def test_mounts_reads_writes_and_the_host_finds_the_file(booted):
    board, console = booted
    out = command(board, console, "mount -t ext4 /dev/vda /mnt && cat /mnt/hello.txt", timeout=20 * SEC)
    assert "hello from the host" in out
    command(board, console, "echo written by the guest > /mnt/guest.txt && sync", timeout=20 * SEC)
    out = command(board, console, "umount /mnt && echo unmounted", timeout=20 * SEC)
    assert "unmounted" in out
    assert debugfs_cat(board.images["data"], "guest.txt") == "written by the guest\n"


def test_read_only_drive_refuses_writes(booted):
    board, console = booted
    out = command(board, console, "mount -t ext4 /dev/vdb /mnt; cat /mnt/keep.txt; "
                  "echo x > /mnt/new.txt; umount /mnt", timeout=20 * SEC)
    assert "read-only" in [line.strip() for line in out.splitlines()] and "Read-only file system" in out
    out = command(board, console, "dd if=/dev/zero of=/dev/vdb bs=512 count=1; echo dd=$?", timeout=20 * SEC)
    assert re.search(r"^dd=[1-9]", out, re.MULTILINE)
    assert hashlib.sha256(board.images["frozen"].read_bytes()).hexdigest() == board.images["frozen_sha"]


def test_poweroff_after_disk_use_ends_cleanly(booted):
    board, console = booted
    console.feed("poweroff\n")
    summary = board.run(until=board.sim.now + 10 * SEC)
    assert summary.stop is not None and "SYSTEM_OFF" in summary.stop.reason and summary.status == 0
    assert "Oops" not in console.text and "I/O error" not in console.text.split("dd if=/dev/zero")[0]
    assert debugfs_cat(board.images["data"], "hello.txt") == "hello from the host\n"
    assert debugfs_cat(board.images["data"], "guest.txt") == "written by the guest\n"     # nothing lost


def test_seeded_rng_gives_the_guest_the_same_bytes_every_run():
    try:
        kernel, initrd = linux_kernel(), busybox_initramfs_image()
    except ImageError as error:
        pytest.skip(f"Linux images not available: {error}")
    from cosim.platforms.virt import VirtLinux

    def hwrng_bytes(rng):
        console = BufferBackend()
        board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console, rng=rng)
        try:
            boot_to_shell(board, console, 10 * SEC, 5 * SEC)
            return command(board, console, "head -c 16 /dev/hwrng | od -An -tx1").split()[:16]
        finally:
            board.sim.close()

    first = hwrng_bytes("seed:7")
    assert len(first) == 16 and hwrng_bytes("seed:7") == first and hwrng_bytes("seed:8") != first
