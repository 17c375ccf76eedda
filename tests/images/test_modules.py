"""Kernel modules for the initramfs: dependencies from .modinfo, load order, and the archive entries."""

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from cosim.images.errors import ImageError
from cosim.images.initramfs import busybox_initramfs, recipe_digest
from cosim.images.modules import KernelModules, load_order, module_depends

from .test_initramfs import parse


def fake_module(directory, name, depends=None):
    """An ELF object with a .modinfo section as modpost writes it (NUL-separated key=value strings)."""
    if shutil.which("as") is None:
        pytest.skip("binutils (as) is not installed")
    source = directory / f"{name}.s"
    info = [f"name={name.replace('-', '_')}"] + ([f"depends={depends}"] if depends is not None else [])
    section = "" if depends is False else '.section .modinfo,"a"\n' + "".join(f'.asciz "{i}"\n' for i in info)
    source.write_text(section + ".text\nnop\n")
    path = directory / f"{name}.ko"
    subprocess.run(["as", "-o", str(path), str(source)], check=True)
    return path


def test_depends_come_from_modinfo(tmp_path):
    assert module_depends(fake_module(tmp_path, "virtio_net", "virtio_ring,virtio,net_failover")) == \
        ["virtio_ring", "virtio", "net_failover"]
    assert module_depends(fake_module(tmp_path, "virtio", "")) == []
    with pytest.raises(ImageError, match="no .modinfo section"):
        module_depends(fake_module(tmp_path, "plain", False))


def test_load_order_puts_dependencies_first(tmp_path):
    available = {"virtio": fake_module(tmp_path, "virtio", ""), "virtio_ring": fake_module(tmp_path, "virtio_ring", ""),
                 "failover": fake_module(tmp_path, "failover", ""),
                 "net_failover": fake_module(tmp_path, "net_failover", "failover"),
                 "virtio_net": fake_module(tmp_path, "virtio_net", "virtio_ring,virtio,net_failover"),
                 "virtio_rng": fake_module(tmp_path, "virtio-rng", "virtio,virtio_ring")}
    assert load_order(("virtio_rng", "virtio_net"), available) == \
        ["virtio", "virtio_ring", "virtio_rng", "failover", "net_failover", "virtio_net"]
    with pytest.raises(ImageError, match="no module virtio_gpu"):
        load_order(("virtio_gpu",), available)


def test_dependency_cycles_are_an_error(tmp_path):
    available = {"a": fake_module(tmp_path, "a", "b"), "b": fake_module(tmp_path, "b", "a")}
    with pytest.raises(ImageError, match="cycle"):
        load_order(("a",), available)


def test_initramfs_carries_the_modules_and_their_order(tmp_path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake busybox")
    files = (fake_module(tmp_path, "virtio", ""), fake_module(tmp_path, "virtio-rng", "virtio"))
    modules = KernelModules("6.1.0-50-cloud-arm64", files)
    entries = {name: (mode, data) for name, mode, data, _ in parse(busybox_initramfs(busybox, modules))}
    where = "lib/modules/6.1.0-50-cloud-arm64"
    assert stat.S_ISDIR(entries[where][0])
    assert entries[f"{where}/virtio-rng.ko"][1] == files[1].read_bytes()
    assert entries[f"{where}/order"][1] == b"virtio.ko\nvirtio-rng.ko\n"
    rcs = entries["etc/init.d/rcS"][1].decode()
    assert "modules=/lib/modules/$(uname -r)" in rcs and "insmod $modules/$module" in rcs
    assert "mount -t devtmpfs devtmpfs /dev" in rcs
    assert recipe_digest("a" * 64, modules) != recipe_digest("a" * 64)


def kernel_package(tmp_path, files):
    """A .deb (dpkg-deb -b) holding `files` (path -> Path of contents)."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text("Package: linux-image-9.9-test\nVersion: 1\nArchitecture: arm64\n"
                                             "Maintainer: cosim\nDescription: test kernel\n")
    for path, source in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / path) if isinstance(source, Path) else (root / path).write_text(source)
    cache = tmp_path / "cache"
    cache.mkdir()
    deb = cache / "linux-image-9.9-test_1_arm64.deb"        # where earlier cosim versions left .debs
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)
    return cache, deb


@pytest.fixture
def fake_kernel(monkeypatch):
    from cosim.images import fetch
    from cosim.images.cache import Entry, sha256_of

    def use(deb):
        entry = Entry("linux", "linux-image-9.9-test", "1", sha256_of(deb), "boot/vmlinuz", "0" * 64, deb)
        monkeypatch.setattr(fetch, "fetch_image", lambda key, cache=None, **kw: entry)
    return use


def test_modules_come_from_the_kernel_package_skipping_built_in_ones(tmp_path, fake_kernel):
    from cosim.images.modules import kernel_modules

    release = "lib/modules/9.9-test"
    cache, deb = kernel_package(tmp_path, {
        f"{release}/kernel/drivers/virtio/virtio.ko": fake_module(tmp_path, "virtio", ""),
        f"{release}/kernel/drivers/block/virtio_blk.ko": fake_module(tmp_path, "virtio_blk", "virtio"),
        f"{release}/kernel/drivers/other.ko": fake_module(tmp_path, "other", ""),
        f"{release}/modules.builtin": "kernel/drivers/virtio/virtio_mmio.ko\n"})
    fake_kernel(deb)
    modules = kernel_modules(wanted=("virtio_mmio", "virtio_blk"), cache=cache)
    assert modules.release == "9.9-test" and [p.name for p in modules.files] == ["virtio.ko", "virtio_blk.ko"]
    assert modules.files[1].read_bytes() == (tmp_path / "virtio_blk.ko").read_bytes()
    assert kernel_modules(wanted=("virtio_mmio", "virtio_blk"), cache=cache) == modules      # cached


def test_a_kernel_package_without_modules_gives_none_and_a_missing_package_a_warning(tmp_path, fake_kernel, caplog,
                                                                                      monkeypatch):
    from cosim.images.modules import kernel_modules, kernel_modules_or_none

    cache, deb = kernel_package(tmp_path, {"boot/vmlinuz": "not really a kernel"})
    fake_kernel(deb)
    assert kernel_modules(cache=cache) == KernelModules("", ())
    modules = KernelModules("", ())
    assert busybox_initramfs(deb, modules) == busybox_initramfs(deb)
    deb.unlink()
    shutil.rmtree(next(cache.glob("modules-*")))
    monkeypatch.setenv("COSIM_IMAGE_SOURCES", "deb file:/nonexistent bookworm main")    # nothing to fetch from
    assert kernel_modules_or_none(cache=cache) is None
    assert "carries no kernel modules" in caplog.text
