"""Guest images from Debian packages: fetched with apt, checked, extracted, cached.

    python -m cosim.images fetch uboot

Packages are pinned by version and SHA-256; so are the files taken from them.
The cache lives in ~/.cache/cosim/images (override with COSIM_IMAGE_CACHE).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ImageError", "Package", "PACKAGES", "cache_dir", "fetch_file", "uboot_image"]


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
}


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


def _download(package: Package, into: Path) -> Path:
    if shutil.which("apt-get") is None:
        raise ImageError(f"cannot fetch {package.name}: apt-get is not available (a Debian/Ubuntu host is needed)")
    into.mkdir(parents=True, exist_ok=True)
    spec = f"{package.name}={package.version}"
    with tempfile.TemporaryDirectory(dir=into) as work:
        proc = subprocess.run(["apt-get", "download", spec], cwd=work, capture_output=True, text=True)
        if proc.returncode != 0 and "Unable to locate" in proc.stderr + proc.stdout:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
            proc = subprocess.run(["apt-get", "download", spec], cwd=work, capture_output=True, text=True)
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
