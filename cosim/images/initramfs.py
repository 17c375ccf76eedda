"""Initramfs archives in the kernel's "newc" cpio format, written from Python.

The format (Documentation/driver-api/early-userspace/buffer-format.rst): each
entry is a 110-byte ASCII header of hex fields, the NUL-terminated name padded
to 4 bytes, then the data padded to 4 bytes; "TRAILER!!!" ends the archive.
Device nodes and ownership come from the header, so no root rights are needed.

`busybox_initramfs` builds the demo's root file system: busybox's own init runs
`/etc/init.d/rcS` (mounts /proc, /sys and devtmpfs on /dev, loads the kernel
modules it carries, gives eth0 the address of `cosim.ip=` on the kernel
command line, prints a banner) and a shell on the console; `poweroff`
goes through init to the kernel and PSCI SYSTEM_OFF. The modules (the virtio
drivers, `cosim.images.modules`) sit in /lib/modules/RELEASE with a file
`order` listing them dependencies first; rcS loads them only when the running
kernel is that release, so another kernel boots the same archive unharmed.
"""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path

from .cache import sha256_of
from .modules import KernelModules

__all__ = ["Entry", "newc", "busybox_initramfs", "recipe_digest", "BANNER"]

BANNER = "cosim: Debian arm64 Linux is up; busybox shell follows"

_MAGIC = "070701"
_TRAILER = "TRAILER!!!"
_HEADER_SIZE = 110


@dataclass(frozen=True)
class Entry:
    path: str                     # inside the archive, without a leading "/"
    mode: int                     # file type and permission bits (stat.S_IF* | 0o755)
    data: bytes = b""             # file contents, or the target of a symlink
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, mode: int, size: int, name_size: int, rdev: tuple[int, int]) -> bytes:
    # magic ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    fields = (ino, mode, 0, 0, 1, 0, size, 0, 0, rdev[0], rdev[1], name_size, 0)
    return (_MAGIC + "".join(f"{v:08x}" for v in fields)).encode("ascii")


def newc(entries: list[Entry]) -> bytes:
    """A newc archive of `entries`, in order (parents before children)."""
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry(_TRAILER, 0)], start=1):
        if entry.path.startswith("/") or not entry.path:
            raise ValueError(f"initramfs entry {entry.path!r}: paths are relative and non-empty")
        name = entry.path.encode() + b"\0"
        out += _header(ino if entry.path != _TRAILER else 0, entry.mode, len(entry.data), len(name), entry.rdev)
        out += name + _pad4(_HEADER_SIZE + len(name))   # each entry starts 4-aligned
        out += entry.data + _pad4(len(entry.data))
    return bytes(out)


_DIRS = ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "etc", "etc/init.d", "proc", "sys", "tmp", "root", "mnt"]

_INITTAB = """\
::sysinit:/etc/init.d/rcS
::respawn:-/bin/sh
"""

_RCS = f"""\
#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
modules=/lib/modules/$(uname -r)
if [ -f $modules/order ]; then
    for module in $(cat $modules/order); do insmod $modules/$module; done
fi
# cosim.ip=ADDRESS/PREFIX on the kernel command line: eth0's address (docs/networking.md).
address=$(sed -n 's/.*cosim\\.ip=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
ip link set lo up
if [ -n "$address" ] && [ -e /sys/class/net/eth0 ]; then
    ip addr add $address dev eth0 && ip link set eth0 up
fi
echo
echo "{BANNER}"
"""

_PROFILE = "export PS1='\\w # '\nexport HOME=/root PATH=/bin:/sbin:/usr/bin:/usr/sbin\ncd /root\n"


def busybox_initramfs(busybox: Path, modules: KernelModules | None = None) -> bytes:
    """The demo's root file system around a static busybox binary, with `modules` for their kernel release."""
    binary = busybox.read_bytes()
    d, f, lnk = stat.S_IFDIR | 0o755, stat.S_IFREG, stat.S_IFLNK | 0o777
    entries = [Entry(p, d) for p in _DIRS]
    if modules is not None and modules.files:
        where = f"lib/modules/{modules.release}"
        entries += [Entry("lib", d), Entry("lib/modules", d), Entry(where, d)]
        entries += [Entry(f"{where}/{path.name}", f | 0o644, path.read_bytes()) for path in modules.files]
        entries.append(Entry(f"{where}/order", f | 0o644, "".join(f"{p.name}\n" for p in modules.files).encode()))
    entries += [
        Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        Entry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3)),
        Entry("bin/busybox", f | 0o755, binary),
        Entry("bin/sh", lnk, b"busybox"),
        Entry("init", lnk, b"bin/busybox"),     # busybox's init, chosen by the name it runs under
        Entry("etc/inittab", f | 0o644, _INITTAB.encode()),
        Entry("etc/init.d/rcS", f | 0o755, _RCS.encode()),
        Entry("etc/profile", f | 0o644, _PROFILE.encode()),
    ]
    return newc(entries)


def recipe_digest(busybox_sha256: str, modules: KernelModules | None = None) -> str:
    """A short digest of everything `busybox_initramfs` puts in, to name cached archives."""
    carried = [modules.release, *(f"{p.name}:{sha256_of(p)}" for p in modules.files)] if modules else []
    recipe = "\0".join([busybox_sha256, _INITTAB, _RCS, _PROFILE, *_DIRS, *carried])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]
