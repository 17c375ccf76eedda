"""Build small bare-metal guests from assembly with the host's binutils.

Test guests live in the repository as `.S` sources; this module turns one into
an ELF and a flat binary, cached by content so repeated test runs are cheap.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ToolchainError", "GuestBinary", "assemble", "binutils"]

# GNU triplet prefixes per guest architecture; the x86-64 host's own tools carry none.
_PREFIXES = {"x86_64": ("", "x86_64-linux-gnu-"), "aarch64": ("aarch64-linux-gnu-",)}
_DEBIAN_PACKAGE = {"x86_64": "binutils", "aarch64": "binutils-aarch64-linux-gnu"}


class ToolchainError(RuntimeError):
    """Binutils for a guest architecture are missing or rejected a source."""


@dataclass(frozen=True)
class GuestBinary:
    elf: Path
    bin: Path
    load_address: int


def binutils(arch: str, tool: str) -> str:
    """Path of `tool` (as, ld, objcopy) for `arch`, or a ToolchainError naming the package."""
    if arch not in _PREFIXES:
        raise ToolchainError(f"no toolchain known for architecture {arch!r}")
    for prefix in _PREFIXES[arch]:
        found = shutil.which(prefix + tool)
        if found and (prefix or arch == _host_arch()):
            return found
    raise ToolchainError(
        f"{_PREFIXES[arch][0]}{tool} not found: install the Debian package "
        f"{_DEBIAN_PACKAGE[arch]} (scripts/bootstrap.sh does)"
    )


def _host_arch() -> str:
    import platform

    return {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine())


def assemble(source: Path, arch: str, load_address: int, cache_dir: Path, extra_flags: tuple[str, ...] = ()) -> GuestBinary:
    """Assemble and link `source` at `load_address`; returns the ELF and flat binary.

    Outputs are cached in `cache_dir` under a hash of the source, the `.inc`
    files beside it, the address and the flags, so an edit always rebuilds.
    """
    source = Path(source)
    text = source.read_bytes() + b"".join(p.read_bytes() for p in sorted(source.parent.glob("*.inc")))
    key = hashlib.sha256(text + f"{arch}:{load_address:#x}:{extra_flags}".encode()).hexdigest()[:16]
    out = Path(cache_dir) / f"{source.stem}-{key}"
    elf, flat = out.with_suffix(".elf"), out.with_suffix(".bin")
    if elf.exists() and flat.exists():
        return GuestBinary(elf, flat, load_address)
    out.parent.mkdir(parents=True, exist_ok=True)
    obj = out.with_suffix(".o")
    _run([binutils(arch, "as"), *extra_flags, "-I", str(source.parent), "-o", str(obj), str(source)], source)
    _run([binutils(arch, "ld"), "-nostdlib", "-static", "--no-warn-rwx-segments", f"-Ttext={load_address:#x}", "-e", "_start", "-o", str(elf), str(obj)], source)
    _run([binutils(arch, "objcopy"), "-O", "binary", str(elf), str(flat)], source)
    obj.unlink(missing_ok=True)
    return GuestBinary(elf, flat, load_address)


def _run(cmd: list[str], source: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ToolchainError(f"{Path(cmd[0]).name} failed on {source}:\n{proc.stderr.strip()}")
