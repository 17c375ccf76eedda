"""End to end: the Linux demo when Debian's archive has moved on, and Debian's other arm64 kernels.

The archive that has moved on is a local signed one (tests/images/fake_archive.py)
holding Debian's kernel and busybox re-packaged under newer versions and a new
kernel ABI, without the pinned builds: the demo fetches, reports the change once,
boots, and then boots again from the cache with the archive gone.
"""

import logging
import shutil
import subprocess
import sys

import pytest

from cosim import SEC
from cosim.chardev import BufferBackend
from cosim.images.fetch import ImageError, fetch_file, linux_kernel

from ..images.fake_archive import FakeArchive, gnupg_home, missing_tools
from .linux_shell import boot_to_shell, command

pytestmark = pytest.mark.slow


def boot_and_uname(**props):
    from cosim.platforms.virt import VirtLinux

    console = BufferBackend()
    board = VirtLinux(console=console, **props)
    boot_to_shell(board, console, 20 * SEC, 5 * SEC)
    return console, command(board, console, "uname -rm").splitlines()[0].split()


@pytest.mark.parametrize("kernel, flavour", [("debian-generic", "-arm64"), ("debian-rt", "-rt-arm64")])
def test_debian_s_other_arm64_kernels_boot_to_the_shell(kernel, flavour):
    from cosim.images import fetch

    try:
        getattr(fetch, {"debian-generic": "linux_generic_kernel", "debian-rt": "linux_rt_kernel"}[kernel])()
    except ImageError as error:
        pytest.skip(f"{kernel} not available: {error}")
    console, (release, machine) = boot_and_uname(kernel=kernel)
    assert machine == "aarch64" and release.endswith(flavour) and not release.endswith("-cloud-arm64")
    assert "Oops" not in console.text


def test_demo_boots_when_the_pinned_builds_are_gone_and_then_offline(tmp_path, monkeypatch, caplog):
    if missing_tools():
        pytest.skip(f"cannot build a local archive: {', '.join(missing_tools())} missing")
    try:
        kernel, busybox = linux_kernel(), fetch_file("busybox")    # Debian's builds, to re-package
    except ImageError as error:
        pytest.skip(f"Linux images not available: {error}")
    with gnupg_home() as gnupg:
        repo = FakeArchive(tmp_path / "archive", gnupg)
        repo.add("linux-image-6.1.0-99-cloud-arm64", "6.1.999-1",
                 {"boot/vmlinuz-6.1.0-99-cloud-arm64": kernel.read_bytes()})
        repo.add("linux-image-cloud-arm64", "6.1.999-1", depends="linux-image-6.1.0-99-cloud-arm64 (= 6.1.999-1)")
        repo.add("busybox-static", "1:1.99.0-1", {"bin/busybox": busybox.read_bytes()})
        repo.publish()
    monkeypatch.setenv("COSIM_IMAGE_SOURCES", repo.sources)
    monkeypatch.setenv("COSIM_IMAGE_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.WARNING, logger="cosim.images")

    _, uname = boot_and_uname()
    assert uname[1] == "aarch64"
    reports = [r.getMessage() for r in caplog.records if "is gone from the archive" in r.getMessage()]
    assert len(reports) == 2 and any("using linux-image-6.1.0-99-cloud-arm64 6.1.999-1" in r for r in reports)
    assert any("using 1:1.99.0-1" in r for r in reports)

    caplog.clear()
    shutil.rmtree(repo.root)
    _, uname = boot_and_uname()
    assert uname[1] == "aarch64"
    assert not [r for r in caplog.records if r.name == "cosim.images"]
    listing = subprocess.run([sys.executable, "-m", "cosim.images", "list"], capture_output=True, text=True)
    assert "6.1.999-1" in listing.stdout, listing
