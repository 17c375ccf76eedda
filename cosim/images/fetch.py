"""Guest images from Debian packages: fetched with apt, checked, extracted, cached.

    python -m cosim.images fetch uboot

Packages are pinned by version and SHA-256; so are the files taken from them.
The cache lives in ~/.cache/cosim/images (override with COSIM_IMAGE_CACHE).
Packages of another architecture (arm64 guests on any host) are downloaded
through a private apt configuration inside the cache, so the machine's own
apt set-up is left as it is.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ImageError", "Package", "PACKAGES", "cache_dir", "fetch_file", "uboot_image", "linux_kernel",
           "busybox_initramfs_image"]


class ImageError(RuntimeError):
    """A guest image could not be fetched or failed its check; the message says what to do."""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    arch: str
    sha256: str
    files: dict[str, str]          # path inside the package -> SHA-256

    @property
    def deb(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.arch}.deb"


PACKAGES = {
    "uboot": Package(
        name="u-boot-qemu",
        version="2023.01+dfsg-2+deb12u3",
        arch="all",
        sha256="02a14f0876b76c0d7d7934e9b83a77515c5bdbad1e00af84c445bfeb1e6b8665",
        files={"usr/lib/u-boot/qemu_arm64/u-boot.bin": "f50cb989e32b41a7389edd5a77a565c2c3870abec44a2e55678107abd34f1184"},
    ),
    # Debian 12's "cloud" flavour of its arm64 kernel: the same 6.1 kernel with fewer
    # drivers (PL011, GICv2, PSCI and the generic timer are built in), so it boots faster.
    "linux": Package(
        name="linux-image-6.1.0-50-cloud-arm64",
        version="6.1.176-1",
        arch="arm64",
        sha256="9d41a53f5d687ae1a33cf546d0ed8be955f72e5f9e97b2b4e45e41dff3353b97",
        files={"boot/vmlinuz-6.1.0-50-cloud-arm64": "0c108326902b8cb9161796c4759fcfe6f182fa50d5cb569a70267979da7fef2c"},
    ),
    "busybox": Package(
        name="busybox-static",
        version="1:1.35.0-4+deb12u1+b1",
        arch="arm64",
        sha256="732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5",
        files={"bin/busybox": "61781806ad3650b0b9d2b3fc6971e2bffdca967af1a95375abd0578bafff14fb"},
    ),
}

# Where packages of a foreign architecture come from (the keyring ships with Debian's apt).
DEBIAN_SUITES = ("bookworm", "bookworm-updates")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def cache_dir(override: Path | None = None) -> Path:
    if override is not None:
        return Path(override)
    env = os.environ.get("COSIM_IMAGE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "cosim" / "images"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _host_arch() -> str:
    proc = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _apt_options(arch: str, into: Path) -> list[str]:
    """apt options for a private configuration that sees Debian's `arch` packages (none
    for the host's own architecture or `all`)."""
    if arch in ("all", _host_arch()):
        return []
    if not DEBIAN_KEYRING.is_file():
        raise ImageError(f"cannot fetch {arch} packages: {DEBIAN_KEYRING} is missing (apt-get install debian-archive-keyring)")
    root = into / f"apt-{arch}"
    for sub in ("lists/partial", "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    sources = root / "sources.list"
    sources.write_text("".join(f"deb [arch={arch} signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {suite} main\n"
                               for suite in DEBIAN_SUITES))
    return ["-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures::={arch}",
            "-o", f"Dir::Etc::SourceList={sources}", "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={root / 'lists'}", "-o", f"Dir::Cache={root / 'cache'}",
            "-o", "Dir::State::status=/dev/null"]


def _download(package: Package, into: Path) -> Path:
    if shutil.which("apt-get") is None:
        raise ImageError(f"cannot fetch {package.name}: apt-get is not available (a Debian/Ubuntu host is needed)")
    into.mkdir(parents=True, exist_ok=True)
    options = _apt_options(package.arch, into)
    spec = f"{package.name}={package.version}"
    with tempfile.TemporaryDirectory(dir=into) as work:
        proc = subprocess.run(["apt-get", *options, "download", spec], cwd=work, capture_output=True, text=True)
        if proc.returncode != 0 and "Unable to locate" in proc.stderr + proc.stdout:
            update = subprocess.run(["apt-get", *options, "update", "-qq"], capture_output=True, text=True)
            if update.returncode != 0 and options:
                raise ImageError(f"apt-get update for {package.arch} packages failed: "
                                 f"{(update.stderr or update.stdout).strip().splitlines()[-1:]}")
            proc = subprocess.run(["apt-get", *options, "download", spec], cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageError(f"apt-get download {spec} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        debs = list(Path(work).glob("*.deb"))
        if len(debs) != 1:
            raise ImageError(f"apt-get download {spec} produced {len(debs)} files")
        target = into / package.deb
        shutil.move(str(debs[0]), target)
    return target


def fetch_file(key: str, member: str | None = None, cache: Path | None = None) -> Path:
    """Path of a checked file from pinned package `key`, downloading and extracting on first use."""
    if key not in PACKAGES:
        raise ImageError(f"unknown image {key!r}; known: {', '.join(PACKAGES)}")
    package = PACKAGES[key]
    member = member or next(iter(package.files))
    root = cache_dir(cache) / f"{package.name}_{package.version}"
    path = root / member
    if path.is_file() and _sha256(path) == package.files[member]:
        return path
    deb = root.parent / package.deb
    if not deb.is_file() or _sha256(deb) != package.sha256:
        deb = _download(package, root.parent)
        found = _sha256(deb)
        if found != package.sha256:
            deb.unlink()
            raise ImageError(f"{package.deb}: checksum mismatch (expected {package.sha256}, got {found})")
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageError(f"dpkg-deb -x {deb} failed: {proc.stderr.strip()}")
    if not path.is_file():
        raise ImageError(f"{package.deb} has no {member}")
    found = _sha256(path)
    if found != package.files[member]:
        raise ImageError(f"{member} from {package.deb}: checksum mismatch (expected {package.files[member]}, got {found})")
    return path


def uboot_image(cache: Path | None = None) -> Path:
    """Debian's U-Boot 2023.01 built for QEMU's arm64 virt (`qemu_arm64/u-boot.bin`)."""
    return fetch_file("uboot", cache=cache)


def linux_kernel(cache: Path | None = None) -> Path:
    """Debian 12's arm64 kernel (`vmlinuz`; the loader decompresses it if it is gzip)."""
    return fetch_file("linux", cache=cache)


def busybox_initramfs_image(cache: Path | None = None) -> Path:
    """The demo initramfs (busybox init, /proc and /sys, a banner, a shell), built once
    from the pinned busybox-static and cached under a name derived from its inputs."""
    from .initramfs import busybox_initramfs, recipe_digest

    busybox = fetch_file("busybox", cache=cache)
    path = cache_dir(cache) / f"initramfs-busybox-{recipe_digest(PACKAGES['busybox'].files['bin/busybox'])}.cpio"
    if not path.is_file():
        data = busybox_initramfs(busybox)
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(path)                  # never leave a truncated archive under the final name
    return path
