"""A Debian archive seen through a private apt configuration.

apt does the verification: the Release file's signature against the keyring
named in the source line (`signed-by`), the Packages index against the Release
hashes, each downloaded .deb against the index. The configuration (sources,
lists, package cache) lives inside the image cache, so the machine's own apt
set-up is neither read nor changed, and packages of any architecture can be
had on any Debian/Ubuntu host.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import ImageError

__all__ = ["Archive", "DEBIAN_MIRROR", "DEBIAN_SOURCES", "sources_from_env"]

# Debian 12's main archive; the keyring ships with Debian's apt (package debian-archive-keyring).
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SOURCES = tuple(f"deb [signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {suite} main"
                       for suite in ("bookworm", "bookworm-updates"))
SOURCES_ENV = "COSIM_IMAGE_SOURCES"

_SOURCE_LINE = re.compile(r"deb\s+(?:\[(?P<options>[^\]]*)\]\s+)?(?P<rest>\S+\s+\S+.*)")


def sources_from_env() -> tuple[str, ...]:
    """The archive's source lines: COSIM_IMAGE_SOURCES (lines of apt's one-line format,
    e.g. a local mirror or snapshot.debian.org) or Debian 12's main archive."""
    text = os.environ.get(SOURCES_ENV, "").strip()
    return tuple(line.strip() for line in text.splitlines() if line.strip()) if text else DEBIAN_SOURCES


def _stanzas(text: str) -> list[dict[str, str]]:
    """Paragraphs of deb822 control data (`apt-cache show` output) as dicts; continuation lines are dropped."""
    found = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields = {}
        for line in block.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
        if fields:
            found.append(fields)
    return found


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """apt's first error or warning (the cause: "Hash Sum mismatch", "NO_PUBKEY"; later ones are consequences)."""
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    causes = [line for line in lines if line.startswith(("E: ", "W: "))]
    return (causes or lines or [f"exit status {proc.returncode}"])[0]


class Archive:
    """Packages of architecture `arch` (and `all`) from the archive given by `sources`.

    `root` holds apt's state for this archive: its name is derived from the
    sources, so a different archive never reuses another's lists.
    """

    def __init__(self, sources: Sequence[str], arch: str, cache: Path):
        self.arch = arch
        lines = []
        for number, line in enumerate(sources, start=1):
            match = _SOURCE_LINE.fullmatch(line.strip())
            if not match:
                raise ImageError(f"{SOURCES_ENV} line {number}: {line!r} is not "
                                 f"'deb [signed-by=KEYRING] URI SUITE COMPONENT...'")
            options = (match["options"] or "").split()
            for option in options:
                key, _, value = option.partition("=")
                if key == "signed-by" and not Path(value).is_file():
                    raise ImageError(f"archive keyring {value} is missing"
                                     + (" (apt-get install debian-archive-keyring)" if Path(value) == DEBIAN_KEYRING else ""))
            options = [o for o in options if not o.startswith("arch=")] + [f"arch={arch}"]
            lines.append(f"deb [{' '.join(options)}] {match['rest']}\n")
        self.sources = "".join(lines)
        digest = hashlib.sha256(self.sources.encode()).hexdigest()[:12]
        self.root = cache / "apt" / f"{arch}-{digest}"
        self.updated = False               # apt-get update ran in this process

    def _options(self) -> list[str]:
        root = self.root
        return ["-o", f"APT::Architecture={self.arch}", "-o", f"APT::Architectures::={self.arch}",
                "-o", f"Dir::Etc::SourceList={root / 'sources.list'}", "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", "Dir::Etc::Preferences=/dev/null", "-o", "Dir::Etc::PreferencesParts=/dev/null",
                "-o", f"Dir::State::Lists={root / 'lists'}", "-o", f"Dir::Cache={root / 'cache'}",
                "-o", "Dir::State::status=/dev/null", "-o", "Acquire::Languages=none",
                # Download-only into the cache: the _apt sandbox user may not read a local
                # archive or the cache (a file: repository under a private directory).
                "-o", "APT::Sandbox::User=root"]

    def _run(self, tool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        if shutil.which(tool) is None:
            raise ImageError(f"{tool} is not available (a Debian/Ubuntu host is needed to fetch guest images)")
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        sources = self.root / "sources.list"
        if not sources.is_file() or sources.read_text() != self.sources:
            sources.write_text(self.sources)
        return subprocess.run([tool, *self._options(), *args], cwd=cwd, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)

    def has_lists(self) -> bool:
        return any(self.root.glob("lists/*Packages*"))

    def update(self) -> None:
        """Fetch the signed index; any failure (network, signature, hash) is an error."""
        proc = self._run("apt-get", "update", "-qq", "--error-on=any")
        if proc.returncode != 0:
            raise ImageError(f"apt-get update of the {self.arch} archive failed: {_error_line(proc)}")
        self.updated = True

    def show(self, spec: str) -> dict[str, str] | None:
        """The index record of `spec` (`name` for the candidate, or `name=version`), or None."""
        proc = self._run("apt-cache", "show", "--no-all-versions", spec)
        found = _stanzas(proc.stdout) if proc.returncode == 0 else []
        return found[0] if found else None

    def download(self, name: str, version: str, into: Path) -> Path:
        """The .deb of `name` at `version`, checked by apt against the signed index, in `into`."""
        with tempfile.TemporaryDirectory(dir=into, prefix=".download-") as work:
            proc = self._run("apt-get", "download", "-qq", f"{name}={version}", cwd=Path(work))
            if proc.returncode != 0:
                raise ImageError(f"apt-get download {name}={version} failed: {_error_line(proc)}")
            debs = list(Path(work).glob("*.deb"))
            if len(debs) != 1:
                raise ImageError(f"apt-get download {name}={version} produced {len(debs)} files")
            target = into / debs[0].name
            debs[0].replace(target)
        return target
