"""Kernel modules from the kernel's own Debian package, for the busybox initramfs.

Debian's cloud kernel builds the virtio drivers as modules (VIRTIO, VIRTIO_MMIO,
VIRTIO_BLK, VIRTIO_NET, HW_RANDOM_VIRTIO, VIRTIO_CONSOLE =m). `kernel_modules`
takes the ones asked for, and the modules they depend on, from the very package
the cached kernel came from (the .deb is fetched again through apt and checked
against the SHA-256 the kernel's cache entry recorded), and caches them under a
name made of the package and the module list. Debian ships them uncompressed
(`.ko`) and without modules.dep (depmod runs at install), so the dependencies
are read from each module's `.modinfo` section (`depends=`), and the modules are
listed in an order that loads every dependency first — busybox's `insmod`
needs nothing more.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .archive import Archive, sources_from_env
from .cache import ImageCache, sha256_of
from .errors import ImageError

__all__ = ["VIRTIO_MODULES", "KernelModules", "kernel_modules", "kernel_modules_or_none", "module_depends", "load_order"]

# The drivers the virtio devices need (module names; their dependencies come along).
VIRTIO_MODULES = ("virtio_mmio", "virtio_blk", "virtio_rng", "virtio_console", "virtio_net")


@dataclass(frozen=True)
class KernelModules:
    release: str                    # the kernel's `uname -r`: the modules' directory in the guest
    files: tuple[Path, ...]         # the .ko files, in load order


def module_depends(path: Path) -> list[str]:
    """The modules `path` needs loaded first: its .modinfo `depends=` (names with '_', as the kernel spells them)."""
    from elftools.elf.elffile import ELFFile      # only when an initramfs is built, not on every run

    with path.open("rb") as f:
        section = ELFFile(f).get_section_by_name(".modinfo")
        if section is None:
            raise ImageError(f"{path.name} has no .modinfo section: not a kernel module")
        for item in section.data().split(b"\0"):
            if item.startswith(b"depends="):
                return [name for name in item[8:].decode().split(",") if name]
    return []


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def load_order(wanted: tuple[str, ...], available: dict[str, Path]) -> list[str]:
    """`wanted` and everything they depend on, each after its dependencies."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ImageError(f"kernel modules depend on each other in a cycle through {name}")
        if name not in available:
            raise ImageError(f"the kernel package has no module {name}")
        visiting.add(name)
        for dependency in module_depends(available[name]):
            visit(dependency)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name)
    return order


def kernel_modules(key: str = "linux", wanted: tuple[str, ...] = VIRTIO_MODULES, cache: Path | None = None) -> KernelModules:
    """The `wanted` modules (and their dependencies) of the kernel image `key`, extracted once and cached."""
    from .fetch import cache_dir, fetch_image

    kernel = fetch_image(key, cache)
    root = cache_dir(cache)
    digest = hashlib.sha256("\0".join((kernel.deb_sha256, *wanted)).encode()).hexdigest()[:12]
    directory = root / f"modules-{kernel.name.replace(':', '%3a')}-{digest}"
    if not (directory / "order").is_file():
        store = ImageCache(root)
        with store.locked():
            if not (directory / "order").is_file():
                _extract(kernel, store, wanted, directory)
    release = (directory / "release").read_text().strip()
    return KernelModules(release, tuple(directory / name for name in (directory / "order").read_text().split()))


def kernel_modules_or_none(key: str = "linux", cache: Path | None = None) -> KernelModules | None:
    """`kernel_modules`, or None with a warning when they cannot be had (offline, with a cache filled
    before the initramfs carried modules): Linux then boots as before, without the virtio drivers."""
    try:
        return kernel_modules(key, cache=cache)
    except ImageError as error:
        logging.getLogger("cosim.images").warning(
            "the initramfs carries no kernel modules (%s): Linux will not find virtio devices", error)
        return None


def _builtin(release: Path) -> set[str]:
    """The modules the kernel has built in (modules.builtin lists them as paths of .ko files)."""
    listing = release / "modules.builtin"
    lines = listing.read_text().split() if listing.is_file() else []
    return {_module_name(Path(line)) for line in lines}


def _kernel_deb(kernel, store: ImageCache, into: Path) -> Path:
    """The kernel's .deb: one left in the cache by earlier versions if intact, or fetched again through apt."""
    for deb in store.root.glob(f"{kernel.package}_{kernel.version.replace(':', '%3a')}_*.deb"):
        if sha256_of(deb) == kernel.deb_sha256:
            return deb
    from .fetch import GUEST_ARCH

    archive = Archive(sources_from_env(), GUEST_ARCH, store.root)
    if not archive.has_lists():
        archive.update()
    try:
        deb = archive.download(kernel.package, kernel.version, into)
    except ImageError:
        archive.update()                # stale lists: once more, fresh
        deb = archive.download(kernel.package, kernel.version, into)
    if sha256_of(deb) != kernel.deb_sha256:
        raise ImageError(f"{deb.name} is not the package the cached kernel came from (SHA-256 differs)")
    return deb


def _extract(kernel, store: ImageCache, wanted: tuple[str, ...], directory: Path) -> None:
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".extract-") as work:
        deb = _kernel_deb(kernel, store, Path(work))
        tree = Path(work) / "tree"
        proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()}")
        releases = [p for p in (tree / "lib" / "modules").glob("*") if p.is_dir()]
        if len(releases) > 1:
            raise ImageError(f"{deb.name} has {len(releases)} module directories under lib/modules")
        # A kernel without modules (all built in, or a re-packaged Image alone) gets none.
        available = {_module_name(p): p for p in releases[0].rglob("*.ko")} if releases else {}
        builtin = _builtin(releases[0]) if releases else set(wanted)
        order = load_order(tuple(name for name in wanted if name not in builtin), available)
        partial = Path(tempfile.mkdtemp(dir=store.root, prefix=".extract-modules-"))
        try:
            for name in order:
                shutil.copyfile(available[name], partial / available[name].name)
            (partial / "release").write_text((releases[0].name if releases else "") + "\n")
            (partial / "order").write_text("".join(f"{available[name].name}\n" for name in order))
            if directory.exists():
                shutil.rmtree(directory)
            os.rename(partial, directory)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
