"""Booting a kernel on `virt`: bad set-ups are clear errors before anything runs."""

import struct

import pytest

from cosim import PlatformError
from cosim.images import fetch
from cosim.platforms.virt import Virt, VirtLinux


def test_image_that_cannot_be_fetched_names_itself_and_the_reason(monkeypatch):
    def unavailable(cache=None):
        raise fetch.ImageError("apt-get is not available")

    monkeypatch.setattr(fetch, "linux_kernel", unavailable)
    with pytest.raises(PlatformError, match="kernel image 'debian': apt-get is not available"):
        VirtLinux(console="none")


def test_kernel_and_firmware_together_are_refused(tmp_path):
    kernel = tmp_path / "Image"
    kernel.write_bytes(b"\0" * 64)
    with pytest.raises(PlatformError, match="set firmware=none"):
        Virt(kernel=str(kernel), console="none")


def test_missing_initrd_file(tmp_path):
    kernel = tmp_path / "Image"
    kernel.write_bytes(struct.pack("<II QQQ QQQ 4s I", 0, 0, 0, 0x10_0000, 0b1010, 0, 0, 0, b"ARM\x64", 0))
    with pytest.raises(PlatformError, match="initrd image .*nope does not exist"):
        VirtLinux(kernel=str(kernel), initrd=str(tmp_path / "nope"), console="none")
