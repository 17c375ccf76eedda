"""The emulated host's base root file system: arm64 Debian plus cosim's Python dependencies, as one cpio.

Built without emulation: `mmdebstrap --variant=extract` unpacks arm64 Debian
packages (extract mode runs no maintainer scripts, so what they would do — the
BLAS/LAPACK alternatives links — is done here), and aarch64 wheels from PyPI
are unzipped beside them for what Debian has too old or not at all. Byte code is
compiled on the build machine when its Python has the guest's version (byte
code depends on the version only), saving the slow emulated CPU that work at
every import. The archive is cached in the image cache under a digest of the
recipe; the kernel accepts concatenated cpio archives, so each run only appends
a small one of its own (`host.run_archive`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..images.archive import DEBIAN_MIRROR
from ..images.fetch import ImageError, cache_dir

__all__ = ["base_archive", "recipe_digest", "SUITE", "DEBS", "WHEELS", "GUEST_PYTHON"]

SUITE = "bookworm"
GUEST_PYTHON = (3, 11)                 # bookworm's python3
# From Debian: the interpreter, what needs compiled code (cffi's backend, numpy, libfdt), the assembler
# the test guests are built with, and a static busybox for /init.
DEBS = ("python3", "python3-cffi-backend", "python3-cffi", "python3-numpy", "python3-libfdt",
        "binutils-aarch64-linux-gnu", "busybox-static")
# From PyPI (aarch64 or pure wheels): what bookworm has too old (pytest 7, simpy 4.0) or lacks.
WHEELS = ("simpy==4.1.2", "pyelftools==0.33", "pytest==9.2.0", "hypothesis==6.170.17")
SITE = "usr/local/lib/python3.11/dist-packages"       # first on Debian's sys.path for python3.11
# Alternatives a maintainer script would have made (update-alternatives in libblas3/liblapack3's postinst).
LINKS = {
    "usr/lib/aarch64-linux-gnu/libblas.so.3": "blas/libblas.so.3",
    "usr/lib/aarch64-linux-gnu/liblapack.so.3": "lapack/liblapack.so.3",
}
# Never used inside and a third of the size.
PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info", "usr/share/lintian",
         "var/cache/apt", "var/lib/apt/lists")
_RECIPE_VERSION = "1"


def recipe_digest() -> str:
    """A digest of everything the base archive is made from, naming the cached file."""
    parts = [_RECIPE_VERSION, SUITE, DEBIAN_MIRROR, *DEBS, *WHEELS, SITE, *sorted(LINKS.items()), *PRUNE,
             repr(GUEST_PYTHON), str(sys.version_info[:2] == GUEST_PYTHON)]
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:16]


def _run(command: list[str], what: str, **kwargs) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ImageError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail))


def _need(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise ImageError(f"{tool} not found: install the Debian package {package} (scripts/bootstrap.sh does)")
    return found


def _debian(root: Path) -> None:
    _run([_need("mmdebstrap", "mmdebstrap"), "--quiet", "--variant=extract", "--architectures=arm64",
          f"--include={','.join(DEBS)}", SUITE, str(root), DEBIAN_MIRROR], "mmdebstrap (arm64 Debian packages)")
    for link, target in LINKS.items():
        path = root / link
        if not path.exists() and (path.parent / target).exists():
            path.symlink_to(target)


def _wheels(root: Path, work: Path) -> None:
    wheels = work / "wheels"
    major, minor = GUEST_PYTHON
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels), "--only-binary=:all:",
          "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_17_aarch64",
          "--python-version", f"{major}.{minor}", "--implementation", "cp", *WHEELS],
         "pip download (aarch64 wheels)")
    site = root / SITE
    site.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
        for script in site.glob("*.data"):          # scripts and headers are not needed inside
            shutil.rmtree(script)


def _prune(root: Path) -> None:
    for sub in PRUNE:
        shutil.rmtree(root / sub, ignore_errors=True)


def _compile(root: Path) -> None:
    """Byte code for the guest's Python, written here when this Python has its version (else inside, lazily)."""
    if sys.version_info[:2] != GUEST_PYTHON:
        return
    major, minor = GUEST_PYTHON
    dirs = [root / SITE, root / f"usr/lib/python3/dist-packages", root / f"usr/lib/python{major}.{minor}"]
    # unchecked-hash: the byte code is trusted as is, no stat of the source at import (cpio keeps no mtimes
    # worth checking against).
    _run([sys.executable, "-m", "compileall", "-q", "-j", "1", "--invalidation-mode", "unchecked-hash",
          *[str(d) for d in dirs if d.is_dir()]], "compileall (guest byte code)")


def _pack(root: Path, out: Path) -> None:
    cpio = _need("cpio", "cpio")
    names = subprocess.run(["find", ".", "-mindepth", "1", "-print0"], cwd=root, capture_output=True, check=True)
    with out.open("wb") as sink:
        proc = subprocess.run([cpio, "--null", "--create", "--format=newc", "--quiet", "--reproducible"],
                              cwd=root, input=names.stdout, stdout=sink, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise ImageError(f"cpio of the emulated host's root file system failed: {proc.stderr.decode().strip()}")


def base_archive(cache: Path | None = None) -> Path:
    """Path of the cached base root file system (newc cpio), built on first use (~1-2 min)."""
    path = cache_dir(cache) / f"emuhost-rootfs-{recipe_digest()}.cpio"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix="emuhost-rootfs-") as work:
        root = Path(work) / "root"
        _debian(root)
        _wheels(root, Path(work))
        _prune(root)
        _compile(root)
        partial = Path(work) / "rootfs.cpio"
        _pack(root, partial)
        os.replace(partial, path)              # never a truncated archive under the final name
    return path
