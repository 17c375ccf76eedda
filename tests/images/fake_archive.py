"""A local Debian archive for tests: tiny .debs built with dpkg-deb, indexed with
apt-ftparchive, its Release signed with a throw-away gpg key, so apt's whole
verification chain (signature -> Packages hash -> .deb) runs as on Debian's mirror.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

TOOLS = ("dpkg-deb", "apt-ftparchive", "gpg", "apt-get")
SUITE = "stable"


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@contextlib.contextmanager
def gnupg_home() -> Iterator[Path]:
    """A throw-away gpg home (short path: gpg-agent's socket path is limited), its agent stopped after."""
    home = Path(tempfile.mkdtemp(prefix="cosim-gpg-"))
    try:
        yield home
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


class FakeArchive:
    """`add()` packages, then `publish()`; `sources` is the line for COSIM_IMAGE_SOURCES."""

    def __init__(self, root: Path, gnupg: Path):
        self.root, self.gnupg = root, gnupg
        self.pool = root / "pool"
        self.pool.mkdir(parents=True)
        self.keyring = root / "archive-key.gpg"
        self._gpg("--quick-generate-key", "--passphrase", "", "cosim test archive <test@cosim.invalid>",
                  "ed25519", "sign", "never")
        self.keyring.write_bytes(self._gpg("--export").stdout)
        self.debs: dict[tuple[str, str], Path] = {}

    @property
    def sources(self) -> str:
        return f"deb [signed-by={self.keyring}] file:{self.root} {SUITE} main"

    def _gpg(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["gpg", "--homedir", str(self.gnupg), "--batch", "--yes", *args],
                              check=True, capture_output=True)

    def add(self, name: str, version: str, files: dict[str, bytes] | None = None, depends: str = "",
            arch: str = "arm64") -> Path:
        """Build package `name` at `version` holding `files` (path inside the package -> contents)."""
        tree = self.root / "build" / f"{name}_{version}"
        for path, data in (files or {}).items():
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            (tree / path).write_bytes(data)
        (tree / "DEBIAN").mkdir(parents=True)
        control = (f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\n"
                   f"Maintainer: cosim tests <test@cosim.invalid>\nDescription: cosim test package\n")
        (tree / "DEBIAN" / "control").write_text(control + (f"Depends: {depends}\n" if depends else ""))
        deb = self.pool / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", str(tree), str(deb)],
                       check=True, capture_output=True)
        shutil.rmtree(tree)
        self.debs[name, version] = deb
        return deb

    def remove(self, name: str, version: str) -> None:
        self.debs.pop((name, version)).unlink()

    def publish(self) -> None:
        """(Re)write the index and the signed Release, as a mirror does at a point release."""
        binary = self.root / "dists" / SUITE / "main" / "binary-arm64"
        binary.mkdir(parents=True, exist_ok=True)
        packages = subprocess.run(["apt-ftparchive", "packages", "pool"], cwd=self.root, check=True,
                                  capture_output=True).stdout
        (binary / "Packages").write_bytes(packages)
        dists = self.root / "dists" / SUITE
        release = subprocess.run(["apt-ftparchive", "-o", f"APT::FTPArchive::Release::Suite={SUITE}",
                                  "-o", "APT::FTPArchive::Release::Architectures=arm64",
                                  "-o", "APT::FTPArchive::Release::Components=main", "release", "."],
                                 cwd=dists, check=True, capture_output=True).stdout
        (dists / "Release").write_bytes(release)
        (dists / "InRelease").unlink(missing_ok=True)
        self._gpg("--clearsign", "--output", str(dists / "InRelease"), str(dists / "Release"))
        os.utime(dists / "InRelease")
