"""Image resolution against a fake signed archive: pins as known-good records, the cache offline."""

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from cosim.cli import main as cosim_main
from cosim.images import cache as cache_module
from cosim.images import fetch
from cosim.images.archive import Archive
from cosim.images.cache import ImageCache, sha256_of
from cosim.images.fetch import ImageError, KnownGood, fetch_image, known_good

from .fake_archive import FakeArchive, gnupg_home, missing_tools

PIN = fetch.IMAGES["linux"].pin          # linux-image-6.1.0-50-cloud-arm64 6.1.176-1
NEW_PACKAGE, NEW_VERSION = "linux-image-6.1.0-51-cloud-arm64", "6.1.180-1"


@pytest.fixture
def gnupg():
    if missing_tools():
        pytest.skip(f"cannot build a local archive: {', '.join(missing_tools())} missing (scripts/bootstrap.sh)")
    with gnupg_home() as home:
        yield home


@pytest.fixture
def archive(tmp_path, gnupg, monkeypatch):
    """A signed local archive the fetcher uses, and an empty cache."""
    repo = FakeArchive(tmp_path / "archive", gnupg)
    monkeypatch.setenv("COSIM_IMAGE_SOURCES", repo.sources)
    monkeypatch.setenv("COSIM_IMAGE_CACHE", str(tmp_path / "cache"))
    return repo


def add_kernel(repo, abi, version, image=b"kernel"):
    package = f"linux-image-6.1.0-{abi}-cloud-arm64"
    return repo.add(package, version, {f"boot/vmlinuz-6.1.0-{abi}-cloud-arm64": image + version.encode(),
                                       f"lib/modules/6.1.0-{abi}-cloud-arm64/modules.order": b""})


def add_metapackage(repo, abi, version):
    repo.add("linux-image-cloud-arm64", version, depends=f"linux-image-6.1.0-{abi}-cloud-arm64 (= {version})")


def pin_to(monkeypatch, repo, package, version, member):
    """Make the fake archive's build of `package` the known-good pin of image `linux`."""
    deb = repo.debs[package, version]
    extract = repo.root / "pin"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(extract)], capture_output=True, check=True)
    pin = KnownGood(package, version, sha256_of(deb), {member: sha256_of(extract / member)})
    monkeypatch.setitem(fetch.IMAGES, "linux", replace(fetch.IMAGES["linux"], pin=pin))
    return pin


def no_apt(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("apt was called although the image is cached")

    monkeypatch.setattr(Archive, "_run", refuse)


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "cosim.images" and r.levelno >= logging.WARNING]


def test_unknown_image_is_a_clear_error():
    with pytest.raises(ImageError, match="unknown image 'bios'; known: uboot, linux"):
        fetch.fetch_file("bios")


def test_cache_directory_override(monkeypatch, tmp_path):
    monkeypatch.setenv("COSIM_IMAGE_CACHE", str(tmp_path))
    assert fetch.cache_dir() == tmp_path
    assert fetch.cache_dir(tmp_path / "x") == tmp_path / "x"


def test_malformed_sources_line_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("COSIM_IMAGE_SOURCES", "http://mirror.example/debian bookworm main")
    with pytest.raises(ImageError, match="COSIM_IMAGE_SOURCES line 1: .* is not 'deb \\[signed-by=KEYRING\\]"):
        fetch_image("linux", tmp_path)


def test_cli_fetch_error_is_one_line_and_a_failure_status(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COSIM_IMAGE_CACHE", str(tmp_path))
    monkeypatch.setenv("COSIM_IMAGE_SOURCES", f"deb [signed-by={tmp_path / 'none.gpg'}] file:{tmp_path} x main")
    assert cosim_main(["images", "fetch", "busybox"]) == 2
    assert capsys.readouterr().err == f"cosim: error: archive keyring {tmp_path / 'none.gpg'} is missing\n"


def test_pinned_version_gone_uses_the_newest_reports_once_then_works_offline(archive, monkeypatch, caplog):
    add_kernel(archive, 47, "6.1.170-1")                 # an older ABI generation still listed
    add_kernel(archive, 51, NEW_VERSION)
    add_metapackage(archive, 51, NEW_VERSION)
    archive.publish()
    caplog.set_level(logging.WARNING, logger="cosim.images")

    entry = fetch_image("linux")
    assert (entry.package, entry.version, known_good(entry)) == (NEW_PACKAGE, NEW_VERSION, False)
    assert entry.path.name == "vmlinuz-6.1.0-51-cloud-arm64" and entry.path.read_bytes() == b"kernel6.1.180-1"
    assert warnings_of(caplog) == [
        f"linux: pinned {PIN.package} {PIN.version} is gone from the archive; "
        f"using {NEW_PACKAGE} {NEW_VERSION}, verified by the archive signature"]

    caplog.clear()
    shutil.rmtree(archive.root)                          # no archive, no network: the cache alone serves
    no_apt(monkeypatch)
    assert fetch_image("linux") == entry
    assert warnings_of(caplog) == []


def test_pinned_version_present_is_used_silently(archive, monkeypatch, caplog):
    add_kernel(archive, 50, "6.1.176-1")
    add_kernel(archive, 51, NEW_VERSION)
    add_metapackage(archive, 51, NEW_VERSION)            # the metapackage has moved on, the pin is still there
    archive.publish()
    pin = pin_to(monkeypatch, archive, PIN.package, PIN.version, "boot/vmlinuz-6.1.0-50-cloud-arm64")
    caplog.set_level(logging.INFO, logger="cosim.images")

    entry = fetch_image("linux")
    assert (entry.package, entry.version, known_good(entry)) == (pin.package, pin.version, True)
    assert entry.sha256 == pin.files["boot/vmlinuz-6.1.0-50-cloud-arm64"]
    assert warnings_of(caplog) == []


def test_pinned_version_whose_build_differs_from_the_pin_is_refused(archive, monkeypatch):
    add_kernel(archive, 50, "6.1.176-1")
    add_metapackage(archive, 50, "6.1.176-1")
    archive.publish()
    pin = pin_to(monkeypatch, archive, PIN.package, PIN.version, "boot/vmlinuz-6.1.0-50-cloud-arm64")
    monkeypatch.setitem(fetch.IMAGES, "linux", replace(fetch.IMAGES["linux"], pin=replace(pin, sha256="0" * 64)))
    with pytest.raises(ImageError, match="checksum mismatch with the known-good pin"):
        fetch_image("linux")
    assert ImageCache(fetch.cache_dir()).entries() == []


def test_index_that_does_not_match_its_signed_release_is_refused(archive):
    add_kernel(archive, 51, NEW_VERSION)
    add_metapackage(archive, 51, NEW_VERSION)
    archive.publish()
    packages = archive.root / "dists/stable/main/binary-arm64/Packages"
    packages.write_text(packages.read_text().replace(NEW_VERSION, "6.1.999-1"))
    with pytest.raises(ImageError, match="apt-get update of the arm64 archive failed: E: Failed to fetch .*Packages"
                                         ".*(Hash Sum mismatch|unexpected size)"):
        fetch_image("linux")


def test_refresh_takes_the_archive_s_new_version_and_keeps_the_old_one(archive, monkeypatch, caplog, capsys):
    add_kernel(archive, 50, "6.1.176-1")
    add_metapackage(archive, 50, "6.1.176-1")
    archive.publish()
    pin_to(monkeypatch, archive, PIN.package, PIN.version, "boot/vmlinuz-6.1.0-50-cloud-arm64")
    old = fetch_image("linux")
    # A point release: the pinned build leaves the archive, a new ABI arrives.
    archive.remove(PIN.package, PIN.version)
    archive.remove("linux-image-cloud-arm64", "6.1.176-1")
    add_kernel(archive, 51, NEW_VERSION)
    add_metapackage(archive, 51, NEW_VERSION)
    archive.publish()
    caplog.set_level(logging.WARNING, logger="cosim.images")

    assert fetch_image("linux") == old                   # without --refresh: what is cached
    assert cosim_main(["images", "list", "--refresh"]) == 0
    new = fetch_image("linux")
    assert (new.package, new.version) == (NEW_PACKAGE, NEW_VERSION)
    assert len(warnings_of(caplog)) == 1 and "6.1.176-1 is gone from the archive" in warnings_of(caplog)[0]
    assert old.path.is_file() and {e.version for e in ImageCache(fetch.cache_dir()).entries()} == {
        "6.1.176-1", NEW_VERSION}
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("linux "))
    assert NEW_PACKAGE in line and NEW_VERSION in line and "no (pin: 6.1.176-1)" in line
    assert "also cached: 6.1.176-1" in line


def test_refresh_without_the_archive_keeps_the_cached_image(archive, caplog):
    add_kernel(archive, 51, NEW_VERSION)
    add_metapackage(archive, 51, NEW_VERSION)
    archive.publish()
    entry = fetch_image("linux")
    shutil.rmtree(archive.root)
    caplog.set_level(logging.WARNING, logger="cosim.images")
    assert fetch_image("linux", refresh=True) == entry
    assert any("cannot refresh" in message for message in warnings_of(caplog))


def test_package_without_the_file_is_a_clear_error(archive):
    archive.add("linux-image-6.1.0-51-cloud-arm64", NEW_VERSION, {"boot/config-6.1.0-51-cloud-arm64": b""})
    add_metapackage(archive, 51, NEW_VERSION)
    archive.publish()
    with pytest.raises(ImageError, match=r"has 0 files like boot/vmlinuz-\* \(none\)"):
        fetch_image("linux")


def test_interrupted_fetch_leaves_no_entry_and_the_next_one_succeeds(archive, monkeypatch):
    add_kernel(archive, 51, NEW_VERSION)
    add_metapackage(archive, 51, NEW_VERSION)
    archive.publish()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(cache_module.json, "dumps", killed)   # dies while writing the entry's record
        with pytest.raises(KeyboardInterrupt):
            fetch_image("linux")
    store = ImageCache(fetch.cache_dir())
    assert store.entries() == [] and store.selected("linux") is None
    stale = store.root / "entries" / ".partial-killed"     # what SIGKILL would leave behind
    (stale / "boot").mkdir(parents=True)
    assert fetch_image("linux").version == NEW_VERSION
    assert not stale.exists()


def test_damaged_cached_file_is_fetched_again(archive):
    add_kernel(archive, 51, NEW_VERSION)
    add_metapackage(archive, 51, NEW_VERSION)
    archive.publish()
    path = fetch_image("linux").path
    path.write_bytes(b"tampered")
    assert fetch_image("linux").path.read_bytes() == b"kernel6.1.180-1"


def test_pinned_deb_left_by_an_older_cache_layout_is_used_offline(archive, monkeypatch):
    add_kernel(archive, 50, "6.1.176-1")
    archive.publish()
    pin_to(monkeypatch, archive, PIN.package, PIN.version, "boot/vmlinuz-6.1.0-50-cloud-arm64")
    cache = fetch.cache_dir()
    cache.mkdir()
    shutil.copy(archive.debs[PIN.package, PIN.version], cache)
    no_apt(monkeypatch)
    entry = fetch_image("linux")
    assert known_good(entry) and entry.version == PIN.version


def test_concurrent_fetches_give_one_entry_and_one_report(archive):
    add_kernel(archive, 51, NEW_VERSION, image=os.urandom(1 << 20))
    add_metapackage(archive, 51, NEW_VERSION)
    archive.publish()
    procs = [subprocess.Popen([sys.executable, "-m", "cosim.images", "fetch", "linux"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], results
    assert len({out for out, _ in results}) == 1
    assert sum("is gone from the archive" in err for _, err in results) == 1, results
    assert len(ImageCache(fetch.cache_dir()).entries()) == 1


def test_real_fetch_of_u_boot_is_cached_and_listed(tmp_path, monkeypatch, capsys):
    """Debian's archive, whatever version it offers today (skips without network)."""
    monkeypatch.delenv("COSIM_IMAGE_SOURCES", raising=False)
    monkeypatch.setenv("COSIM_IMAGE_CACHE", str(tmp_path))
    try:
        path = fetch.uboot_image()
    except ImageError as error:
        pytest.skip(f"cannot fetch u-boot-qemu here: {error}")
    assert path.read_bytes()[:4] != b"\0\0\0\0" and path.stat().st_size > 100_000
    no_apt(monkeypatch)
    assert fetch.uboot_image() == path
    assert cosim_main(["images", "list"]) == 0
    assert any(line.startswith("uboot ") and "u-boot-qemu" in line for line in capsys.readouterr().out.splitlines())


def test_archive_signed_by_another_key_is_refused(archive, tmp_path):
    add_kernel(archive, 51, NEW_VERSION)
    add_metapackage(archive, 51, NEW_VERSION)
    archive.publish()
    with gnupg_home() as other:
        archive.keyring.write_bytes(FakeArchive(tmp_path / "other", other).keyring.read_bytes())
    with pytest.raises(ImageError, match="apt-get update of the arm64 archive failed: .*NO_PUBKEY"):
        fetch_image("linux")
    assert ImageCache(fetch.cache_dir()).entries() == []
