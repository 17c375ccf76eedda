"""cosim's patched unicorn: the patches to the unicorn engine that cosim's software CPU runs faster
with, building the patched library from unicorn's released source, and choosing it at start-up.

Unicorn 2.1.4 as released checks for an exit request with a helper call after every load and store
and at the start of every block, and calls cosim's instruction counter once per block (or per
instruction). `fast-paths.patch` gives it QEMU's inline exit check at the start of a block, leaves
the check after loads and stores out where nothing can ask for one (cosim's MMIO callbacks never stop
a run; memory hooks keep it, and system-register hooks get their own), and counts inside the
translated code while the budget lasts (the counter's hook runs only when a run must stop). Same
instructions, same output; Linux boots in ~0.8x the time counting per block, ~0.6x per instruction
(docs/cpu-arm64.md, "The patched unicorn"). `python -m cosim.patched_unicorn build` (run by
scripts/bootstrap.sh) downloads the source release from PyPI, checks its SHA-256, applies the patch
and builds the AArch64 engine only (~35 s on 2 cores) into the artifact cache, keyed by the source,
the patch and this recipe. `import cosim` then points unicorn's loader at that library
(LIBUNICORN_PATH), unless unicorn is already loaded, LIBUNICORN_PATH is set, or COSIM_UNICORN=stock;
without it (or if it does not load: the CPU backend says so) everything runs on the released
library, as before, only slower.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from .._paths import cache_dir, file_lock

__all__ = ["UNICORN_VERSION", "PATCH", "BuildError", "build", "build_key", "built_library", "in_use",
           "library_dir", "report_fallback", "select"]

UNICORN_VERSION = "2.1.4"
# PyPI's source release of that version (unicorn-2.1.4.tar.gz), checked before it is built.
SOURCE_SHA256 = "00567a70e323f749b419cd86bee4f9115beab7ebba32194581c090cbb7c59cff"
PATCH = Path(__file__).with_name("fast-paths.patch")
LIBRARY = "libunicorn.so.2"
# Bump when the build steps below change what they produce.
_RECIPE = "patched-unicorn-1: cmake Release, UNICORN_ARCH=aarch64"
BUILD_TIMEOUT = 1200.0
_selected: Path | None = None     # the library `select` pointed unicorn at


class BuildError(RuntimeError):
    """The patched library could not be built; the message says which step and where its log is."""


def build_key() -> str:
    """A short digest of everything the library depends on, naming its cache entry."""
    parts = [_RECIPE, UNICORN_VERSION, SOURCE_SHA256, hashlib.sha256(PATCH.read_bytes()).hexdigest()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def library_dir(cache: Path | None = None) -> Path:
    return cache_dir(cache) / f"unicorn-{UNICORN_VERSION}-{build_key()}"


def built_library(cache: Path | None = None) -> Path | None:
    """The patched library if it has been built for the current patch, else None."""
    library = library_dir(cache) / LIBRARY
    return library if library.is_file() else None


def select(cache: Path | None = None) -> Path | None:
    """Point unicorn's loader at the patched library (before unicorn is imported): the library
    chosen, or None when the released one stays (see the module's docstring for when)."""
    if "unicorn" in sys.modules or os.environ.get("LIBUNICORN_PATH") or os.environ.get("COSIM_UNICORN") == "stock":
        return None
    global _selected
    library = built_library(cache)
    if library is not None:
        os.environ["LIBUNICORN_PATH"] = str(library.parent)
        _selected = library
    return library


def in_use() -> bool:
    """Whether the unicorn library this process loaded has cosim's patches."""
    from unicorn.unicorn_py3.unicorn import uclib

    return hasattr(uclib, "uc_cosim_configure")


def report_fallback() -> None:
    """Called where the patches are missed (unicorn loaded): if `select` chose the patched library
    but unicorn loaded another (its loader falls back without a word when a library does not load:
    damaged, or built on another machine sharing the cache), say so on stderr, once."""
    global _selected
    if _selected is not None and not in_use():
        print(f"cosim: {_selected} did not load; running on the released unicorn (slower)", file=sys.stderr)
        _selected = None


def _run(args: list[str], what: str, log: Path, deadline: float) -> None:
    import subprocess
    import time

    with open(log, "ab") as out:
        out.write(f"$ {' '.join(args)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    timeout=max(1.0, deadline - time.monotonic()), check=False)
        except FileNotFoundError:
            raise BuildError(f"patched unicorn: {what}: {args[0]} is not installed (scripts/bootstrap.sh installs it)") \
                from None
        except subprocess.TimeoutExpired:
            raise BuildError(f"patched unicorn: {what} timed out (log: {log})") from None
    if result.returncode != 0:
        raise BuildError(f"patched unicorn: {what} failed with status {result.returncode} (log: {log})")


def _source(work: Path, log: Path, deadline: float) -> Path:
    """The released source tree, downloaded from PyPI and checked against SOURCE_SHA256."""
    import tarfile

    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
          f"unicorn=={UNICORN_VERSION}", "-d", str(work)], "downloading the source release", log, deadline)
    archive = work / f"unicorn-{UNICORN_VERSION}.tar.gz"
    if not archive.is_file():
        raise BuildError(f"patched unicorn: pip left no {archive.name} in {work} (log: {log})")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        raise BuildError(f"patched unicorn: {archive.name}: SHA-256 {digest}, expected {SOURCE_SHA256}")
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    return work / f"unicorn-{UNICORN_VERSION}" / "src"


def build(cache: Path | None = None, *, jobs: int = 2, timeout: float = BUILD_TIMEOUT) -> Path:
    """The patched library, built first if the cache has none for the current patch."""
    # Here, not at the top: `import cosim` loads this module and should stay quick.
    import shutil
    import tempfile
    import time

    target = library_dir(cache)
    lock = target.parent / f".{target.name}.lock"
    deadline = time.monotonic() + timeout
    with file_lock(lock, timeout, lambda: BuildError(f"patched unicorn: another process held {lock} for "
                                                     f"{timeout:.0f} s")):
        if (library := built_library(cache)) is not None:      # built meanwhile by that process
            return library
        log = target.parent / f"{target.name}.log"
        log.write_bytes(b"")
        with tempfile.TemporaryDirectory(prefix="cosim-unicorn-") as tmp:
            work = Path(tmp)
            source = _source(work, log, deadline)
            _run(["patch", "-p1", "--batch", "--forward", "-d", str(source), "-i", str(PATCH)],
                 f"applying {PATCH.name}", log, deadline)
            generator = ["-G", "Ninja"] if shutil.which("ninja") else []
            _run(["cmake", "-S", str(source), "-B", str(work / "build"), *generator, "-DCMAKE_BUILD_TYPE=Release",
                  "-DUNICORN_BUILD_TESTS=off", "-DUNICORN_ARCH=aarch64"], "configuring", log, deadline)
            _run(["cmake", "--build", str(work / "build"), "--parallel", str(jobs)], "compiling", log, deadline)
            staged = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
            shutil.copy2(work / "build" / LIBRARY, staged / LIBRARY)
            shutil.rmtree(target, ignore_errors=True)
            staged.rename(target)
        return target / LIBRARY


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cosim.patched_unicorn",
                                     description="Build or locate cosim's patched unicorn library.")
    parser.add_argument("action", choices=["build", "path"], nargs="?", default="build",
                        help="build: build it unless cached (prints its path); path: print its path or fail")
    args = parser.parse_args(argv)
    if args.action == "path":
        library = built_library()
        if library is None:
            print("cosim: the patched unicorn is not built (python -m cosim.patched_unicorn build)", file=sys.stderr)
            return 1
    else:
        try:
            library = build()
        except BuildError as error:
            print(f"cosim: {error}", file=sys.stderr)
            return 1
    print(library)
    return 0
