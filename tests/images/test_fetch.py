import hashlib

import pytest

from cosim.images import fetch
from cosim.images.fetch import ImageError, Package, fetch_file


def test_unknown_image_is_a_clear_error():
    with pytest.raises(ImageError, match="unknown image 'bios'; known: uboot"):
        fetch_file("bios")


def test_package_checksum_mismatch_is_rejected_and_removed(tmp_path, monkeypatch):
    bogus = Package("u-boot-qemu", "1.0", "all", "0" * 64, {"usr/x": "0" * 64})
    monkeypatch.setitem(fetch.PACKAGES, "bogus", bogus)

    def fake_download(package, into):
        into.mkdir(parents=True, exist_ok=True)
        deb = into / package.deb
        deb.write_bytes(b"not the pinned package")
        return deb

    monkeypatch.setattr(fetch, "_download", fake_download)
    with pytest.raises(ImageError, match="checksum mismatch"):
        fetch_file("bogus", cache=tmp_path)
    assert not (tmp_path / bogus.deb).exists()


def test_cache_directory_override(monkeypatch, tmp_path):
    monkeypatch.setenv("COSIM_IMAGE_CACHE", str(tmp_path))
    assert fetch.cache_dir() == tmp_path
    assert fetch.cache_dir(tmp_path / "x") == tmp_path / "x"


def test_real_fetch_of_u_boot_verifies_and_reuses_the_cache(tmp_path):
    try:
        path = fetch.uboot_image(cache=tmp_path)
    except ImageError as error:
        pytest.skip(f"cannot fetch u-boot-qemu here: {error}")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == fetch.PACKAGES["uboot"].files[
        "usr/lib/u-boot/qemu_arm64/u-boot.bin"]
    path.write_bytes(b"tampered")                     # a damaged cached file is re-extracted
    assert fetch.uboot_image(cache=tmp_path).read_bytes() != b"tampered"
