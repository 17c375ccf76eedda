"""The image cache: one directory per package version, made whole or not at all.

    <cache>/entries/<package>_<version>/entry.json   what it is: key, package, version, SHA-256s
    <cache>/entries/<package>_<version>/<member>     the file used, at its path inside the package
    <cache>/selected/<key>.json                      which entry an image key uses now
    <cache>/.lock                                    held while fetching (several processes, one cache)

An entry is assembled in a `.partial-*` directory and renamed into place, and a
selection is replaced with `os.replace`: a fetch killed half-way leaves no
entry that looks whole. Versions coexist; `--refresh` only moves the selection.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .._paths import file_lock
from .errors import ImageError

__all__ = ["Entry", "ImageCache", "sha256_of"]

LOCK_WAIT = 900.0          # seconds a fetch waits for another process's fetch (a kernel download) to end


# Digests of files hashed earlier in this process, by what identifies a version of a file (device, inode,
# size, modification and change times): `cosim run virt-linux` checks the kernel's entry twice (the
# kernel, then its modules' recipe), ~15 ms each. Only files last changed well before they were hashed
# are remembered: a later write gives them a new time even where timestamps are coarse (git's "racily
# clean" rule), so a changed file is always read again.
_digests: dict[tuple[int, int, int, int, int], str] = {}
_SETTLED_NS = 2_000_000_000


def sha256_of(path: Path) -> str:
    before = time.time_ns()
    stat = path.stat()
    version = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    known = _digests.get(version)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if max(stat.st_mtime_ns, stat.st_ctime_ns) < before - _SETTLED_NS:
        _digests[version] = digest.hexdigest()
    return digest.hexdigest()


@dataclass(frozen=True)
class Entry:
    key: str
    package: str
    version: str
    deb_sha256: str
    member: str                 # path of the file used, inside the package
    sha256: str                 # of that file
    path: Path                  # the cached file

    @property
    def name(self) -> str:
        return entry_name(self.package, self.version)


def entry_name(package: str, version: str) -> str:
    return f"{package}_{version}"


class ImageCache:
    def __init__(self, root: Path):
        self.root = root

    @contextlib.contextmanager
    def locked(self, wait: float = LOCK_WAIT) -> Iterator[None]:
        """Hold the cache's fetch lock (released by the kernel if the holder dies, so never stale)."""
        busy = ImageError(f"another process has been fetching into {self.root} for over {wait:.0f} s "
                          f"(lock {self.root / '.lock'})")
        with file_lock(self.root / ".lock", wait, lambda: busy):
            for pattern in ("entries/.partial-*", ".fetch-*", ".extract-*"):   # left by a killed fetch
                for stale in self.root.glob(pattern):
                    shutil.rmtree(stale, ignore_errors=True)
            yield

    def entry(self, package: str, version: str) -> Entry | None:
        """The cached entry, if it is there and its file still has the recorded SHA-256."""
        return self._load(self.root / "entries" / entry_name(package, version))

    def _load(self, directory: Path) -> Entry | None:
        try:
            record = json.loads((directory / "entry.json").read_text())
            entry = Entry(**{**record, "path": directory / record["member"]})
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if not entry.path.is_file() or sha256_of(entry.path) != entry.sha256:
            return None                                   # damaged: fetched again
        return entry

    def entries(self) -> list[Entry]:
        found = (self._load(d) for d in sorted((self.root / "entries").glob("[!.]*")))
        return [entry for entry in found if entry is not None]

    def selected(self, key: str) -> Entry | None:
        try:
            name = json.loads((self.root / "selected" / f"{key}.json").read_text())["entry"]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return self._load(self.root / "entries" / name)

    def select(self, entry: Entry) -> None:
        directory = self.root / "selected"
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomically(directory / f"{entry.key}.json", json.dumps({"entry": entry.name}) + "\n")

    def install(self, key: str, package: str, version: str, deb: Path, extract: Path, member: str) -> Entry:
        """Make the entry for `member` of the extracted package at `extract` (renamed into place)."""
        entries = self.root / "entries"
        entries.mkdir(parents=True, exist_ok=True)
        final = entries / entry_name(package, version)
        partial = Path(tempfile.mkdtemp(dir=entries, prefix=".partial-"))
        try:
            target = partial / member
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(extract / member), target)
            record = Entry(key, package, version, sha256_of(deb), member, sha256_of(target), target)
            fields = {k: v for k, v in asdict(record).items() if k != "path"}
            (partial / "entry.json").write_text(json.dumps(fields, indent=1) + "\n")
            if final.exists():                             # a damaged copy of the same version
                shutil.rmtree(final)
            partial.rename(final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return Entry(**{**fields, "path": final / member})


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    partial.replace(path)
