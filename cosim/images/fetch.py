"""Guest images from Debian packages, resolved by what they are, cached for offline use.

    python -m cosim.images fetch linux        (or `cosim images fetch linux`)
    python -m cosim.images list [--refresh]

Each image is a package (or, for kernels, the package a metapackage depends on)
taken from the archive's signed index: the pinned known-good version when the
archive still offers it, otherwise the archive's current one, which apt has
verified (Release signature -> Packages hash -> .deb). A version change is
reported once, when it is fetched. Once cached, an image is used without apt or
network; `refresh=True` (`--refresh`) asks the archive again.
The cache lives in ~/.cache/cosim/images (override with COSIM_IMAGE_CACHE); the
archive is Debian 12's (override with COSIM_IMAGE_SOURCES, see `archive`).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .._paths import cache_dir
from .archive import Archive, sources_from_env
from .cache import Entry, ImageCache, sha256_of
from .errors import ImageError

__all__ = ["ImageError", "Image", "KnownGood", "IMAGES", "cache_dir", "fetch_image", "fetch_file", "known_good",
           "uboot_image",
           "linux_kernel", "linux_generic_kernel", "linux_rt_kernel", "busybox_initramfs_image"]

log = logging.getLogger("cosim.images")

GUEST_ARCH = "arm64"        # every image here is for the Arm64 guests; `all` packages come with it


@dataclass(frozen=True)
class KnownGood:
    """A build the project has tested: the .deb's SHA-256 and that of the file used."""
    package: str
    version: str
    sha256: str
    files: dict[str, str]          # path inside the package -> SHA-256


@dataclass(frozen=True)
class Image:
    key: str
    package: str                   # asked of the archive: the package, or a metapackage
    member: str                    # the file used: a glob over paths inside the package
    summary: str
    depends: str = ""              # metapackage: a regex matching the dependency that holds the file
    pin: KnownGood | None = field(default=None, repr=False)


def _kernel(key: str, flavour: str, summary: str, pin: KnownGood | None = None) -> Image:
    # The kernel ABI is in the package and file names (linux-image-6.1.0-50-cloud-arm64,
    # boot/vmlinuz-6.1.0-50-cloud-arm64), so both are found by pattern, not by name.
    return Image(key, f"linux-image-{flavour}arm64", "boot/vmlinuz-*", summary,
                 depends=rf"linux-image-[0-9][0-9.]*-[0-9]+-{flavour}arm64", pin=pin)


IMAGES = {image.key: image for image in [
    Image("uboot", "u-boot-qemu", "usr/lib/u-boot/qemu_arm64/u-boot.bin", "U-Boot for QEMU's arm64 virt",
          pin=KnownGood("u-boot-qemu", "2023.01+dfsg-2+deb12u3",
                        "02a14f0876b76c0d7d7934e9b83a77515c5bdbad1e00af84c445bfeb1e6b8665",
                        {"usr/lib/u-boot/qemu_arm64/u-boot.bin":
                         "f50cb989e32b41a7389edd5a77a565c2c3870abec44a2e55678107abd34f1184"})),
    # Debian 12's "cloud" flavour of its arm64 kernel: the same 6.1 kernel with fewer
    # drivers (PL011, GICv2, PSCI and the generic timer are built in), so it boots faster.
    _kernel("linux", "cloud-", "Debian 12's arm64 kernel, cloud flavour (the demo's)",
            KnownGood("linux-image-6.1.0-50-cloud-arm64", "6.1.176-1",
                      "9d41a53f5d687ae1a33cf546d0ed8be955f72e5f9e97b2b4e45e41dff3353b97",
                      {"boot/vmlinuz-6.1.0-50-cloud-arm64":
                       "0c108326902b8cb9161796c4759fcfe6f182fa50d5cb569a70267979da7fef2c"})),
    _kernel("linux-generic", "", "Debian 12's generic arm64 kernel",
            KnownGood("linux-image-6.1.0-50-arm64", "6.1.176-1",
                      "914f75b57a8e165d85fb910c3e2dcc7000a05a9fea3f42f90b26e8dd590d5f06",
                      {"boot/vmlinuz-6.1.0-50-arm64":
                       "84b9c190bb4589c4a9527e3191fec051f9f115e88f0a3e8afae96ba0dfb4dfef"})),
    _kernel("linux-rt", "rt-", "Debian 12's PREEMPT_RT arm64 kernel",
            KnownGood("linux-image-6.1.0-50-rt-arm64", "6.1.176-1",
                      "2c8e4c0ebc99daa85a989359827d7ef93d4999ef7056f4c93eb82990d2abeefe",
                      {"boot/vmlinuz-6.1.0-50-rt-arm64":
                       "d24eeaf154a9d2235adbb19d1106a4a8fe58d22074c3bac37c1d1a2c551b6d06"})),
    Image("busybox", "busybox-static", "bin/busybox", "static busybox (the initramfs is built around it)",
          pin=KnownGood("busybox-static", "1:1.35.0-4+deb12u1+b1",
                        "732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5",
                        {"bin/busybox": "61781806ad3650b0b9d2b3fc6971e2bffdca967af1a95375abd0578bafff14fb"})),
]}


def fetch_image(key: str, cache: Path | None = None, *, refresh: bool = False) -> Entry:
    """The cache entry of image `key`, fetching it on first use (or when `refresh`)."""
    if key not in IMAGES:
        raise ImageError(f"unknown image {key!r}; known: {', '.join(IMAGES)}")
    image, store = IMAGES[key], ImageCache(cache_dir(cache))
    if not refresh and (entry := store.selected(key)) is not None:
        return entry                                          # offline: no apt, no network
    with store.locked():
        current = store.selected(key)
        if current is not None and not refresh:
            return current                                    # another process fetched it meanwhile
        try:
            entry = (None if refresh else _from_legacy_deb(image, store)) or _from_archive(image, store, refresh)
        except ImageError as error:
            if current is None:
                raise
            log.warning("%s: cannot refresh (%s); keeping the cached %s %s", key, error, current.package,
                        current.version)
            return current
        store.select(entry)
    return entry


def known_good(entry: Entry) -> bool:
    """Whether `entry` is the build of its image's known-good pin (the .deb and the file)."""
    pin = IMAGES[entry.key].pin if entry.key in IMAGES else None
    return pin is not None and (pin.package, pin.version, pin.sha256) == (entry.package, entry.version,
                                                                         entry.deb_sha256) \
        and pin.files.get(entry.member) == entry.sha256


def fetch_file(key: str, cache: Path | None = None, *, refresh: bool = False) -> Path:
    """Path of the file image `key` uses (a kernel, U-Boot, busybox), fetching it on first use."""
    return fetch_image(key, cache, refresh=refresh).path


def _choose(image: Image, archive: Archive) -> tuple[str, str]:
    """(package, version) to fetch: the pin while the archive has it, else the archive's current one."""
    pin = image.pin
    if pin is not None and archive.show(f"{pin.package}={pin.version}") is not None:
        return pin.package, pin.version
    record = archive.show(image.package)
    if record is None:
        raise ImageError(f"the archive has no {image.package}")
    if not image.depends:
        return image.package, record["Version"]
    # Depends: linux-image-6.1.0-50-cloud-arm64 (= 6.1.176-1), ...  (alternatives after '|')
    for dependency in re.split(r"[,|]", record.get("Depends", "")):
        match = re.fullmatch(r"\s*(\S+)\s*(?:\(\s*=\s*([^)\s]+)\s*\))?\s*", dependency)
        if match and re.fullmatch(image.depends, match[1]):
            if match[2]:
                return match[1], match[2]
            target = archive.show(match[1])
            if target is not None:
                return match[1], target["Version"]
    raise ImageError(f"{image.package} {record['Version']} depends on no package like {image.depends!r}")


def _from_archive(image: Image, store: ImageCache, refresh: bool) -> Entry:
    archive = Archive(sources_from_env(), GUEST_ARCH, store.root)
    if refresh or not archive.has_lists():
        archive.update()

    def fetch() -> Entry:
        package, version = _choose(image, archive)
        return store.entry(package, version) or _download_and_install(image, store, archive, package, version)

    try:
        return fetch()
    except ImageError:
        if archive.updated:
            raise
        archive.update()                # the lists were stale (the archive moved on): once more, fresh
        return fetch()


def _download_and_install(image: Image, store: ImageCache, archive: Archive, package: str, version: str) -> Entry:
    store.root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".fetch-") as work:
        deb = archive.download(package, version, Path(work))
        entry = _install(image, store, package, version, deb)
    pin = image.pin
    if pin is not None and not known_good(entry):
        pinned = pin.version if pin.package == package else f"{pin.package} {pin.version}"
        using = version if pin.package == package else f"{package} {version}"
        log.warning("%s: pinned %s is gone from the archive; using %s, verified by the archive signature",
                    image.key, pinned, using)
    return entry


def _install(image: Image, store: ImageCache, package: str, version: str, deb: Path) -> Entry:
    """Check `deb` against the pin if it is the pinned build, extract it and make the cache entry."""
    pin = image.pin
    pinned = pin is not None and (pin.package, pin.version) == (package, version)
    if pinned and (found := sha256_of(deb)) != pin.sha256:
        raise ImageError(f"{deb.name}: checksum mismatch with the known-good pin (expected {pin.sha256}, got {found})")
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".extract-") as extract:
        proc = subprocess.run(["dpkg-deb", "-x", str(deb), extract], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()}")
        matches = sorted(str(p.relative_to(extract)) for p in Path(extract).glob(image.member) if p.is_file())
        if len(matches) != 1:
            raise ImageError(f"{deb.name} has {len(matches)} files like {image.member} ({', '.join(matches) or 'none'})")
        member = matches[0]
        if pinned:
            expected, found = pin.files.get(member), sha256_of(Path(extract) / member)
            if expected != found:
                raise ImageError(f"{member} from {deb.name}: checksum mismatch with the known-good pin "
                                 f"(expected {expected}, got {found})")
        return store.install(image.key, package, version, deb, Path(extract), member)


def _from_legacy_deb(image: Image, store: ImageCache) -> Entry | None:
    """The pinned .deb left at the top of the cache by earlier versions of cosim, if intact:
    a cache filled before this layout keeps working offline."""
    pin = image.pin
    if pin is None:
        return None
    for deb in store.root.glob(f"{pin.package}_{pin.version.replace(':', '%3a')}_*.deb"):   # apt's file name
        if sha256_of(deb) == pin.sha256:
            return _install(image, store, pin.package, pin.version, deb)
    return None


def uboot_image(cache: Path | None = None) -> Path:
    """Debian's U-Boot built for QEMU's arm64 virt (`qemu_arm64/u-boot.bin`)."""
    return fetch_file("uboot", cache)


def linux_kernel(cache: Path | None = None) -> Path:
    """Debian 12's arm64 kernel, cloud flavour (`vmlinuz`; the loader decompresses it if it is gzip)."""
    return fetch_file("linux", cache)


def linux_generic_kernel(cache: Path | None = None) -> Path:
    """Debian 12's generic arm64 kernel (metapackage linux-image-arm64)."""
    return fetch_file("linux-generic", cache)


def linux_rt_kernel(cache: Path | None = None) -> Path:
    """Debian 12's PREEMPT_RT arm64 kernel (metapackage linux-image-rt-arm64)."""
    return fetch_file("linux-rt", cache)


def busybox_initramfs_image(cache: Path | None = None) -> Path:
    """The demo initramfs (busybox init, /proc, /sys and /dev, the cloud kernel's virtio modules, a
    banner, a shell), built once from the cached busybox-static and kernel package and cached under a
    name derived from its inputs."""
    from .initramfs import busybox_initramfs, recipe_digest
    from .modules import kernel_modules_or_none

    busybox = fetch_image("busybox", cache)
    modules = kernel_modules_or_none("linux", cache)
    path = cache_dir(cache) / f"initramfs-busybox-{recipe_digest(busybox.sha256, modules)}.cpio"
    if not path.is_file():
        data = busybox_initramfs(busybox.path, modules)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_bytes(data)
        partial.replace(path)                  # never leave a truncated archive under the final name
    return path
