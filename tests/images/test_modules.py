"""Kernel modules for the initramfs: dependencies from .modinfo, load order, and the archive entries."""

import shutil
import stat
import subprocess

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
