"""L1 kernels for the emulated Arm64 KVM host: Debian's stock one, and Debian's 6.1 with our WFx patch.

    python -m cosim.emuhost.kernel           # build (or find) the patched Image, print its path

`stock_kernel()` is Debian 12's cloud-arm64 kernel, the one cosim.images
fetches for the virt-linux demo: KVM built in, no WFx exit. `patched_kernel()`
builds Debian's `linux-source-6.1` with `patches/kvm-exit-on-wfx-6.1.patch`
(our port of the seed's KVM_CAP_EXIT_ON_WFX) and a small configuration
(`tinyconfig` plus `L1_CONFIG`), cross-compiled with aarch64-linux-gnu-gcc
and `make -j2`. The `Image` is cached in the image cache under a key made of
its inputs (source package version and SHA-256, patch, configuration,
compiler version), so a second call returns in seconds. A fresh build is
~10 min of CPU time, run with -j2 (docs/cpu-kvm-arm64.md has the figures).
The Debian packages it needs (`BUILD_PACKAGES`) are installed by
scripts/bootstrap.sh.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .._paths import file_lock
from ..images.fetch import ImageError, cache_dir, linux_kernel
from ..kvm._arm64 import PORT_WFX_CAP, PORT_WFX_EXIT

__all__ = ["KernelBuildError", "SOURCE_PACKAGE", "PATCH", "L1_CONFIG", "BUILD_PACKAGES", "BUILD_TIMEOUT",
           "stock_kernel", "patched_kernel", "patch_numbers", "build_key"]

SOURCE_PACKAGE = "linux-source-6.1"
PATCH = Path(__file__).parent / "patches" / "kvm-exit-on-wfx-6.1.patch"
# Debian packages the build needs (installed by scripts/bootstrap.sh).
BUILD_PACKAGES = ("gcc-aarch64-linux-gnu", "make", "flex", "bison", "bc", "libssl-dev", "libelf-dev",
                  "xz-utils", "patch")
BUILD_TIMEOUT = 3600.0          # seconds for the whole recipe: ~10 min on 2 busy cores, bounded all the same
JOBS = 2                        # the machines this runs on are shared: never more

# Merged over `make tinyconfig`; every line must survive `olddefconfig` (checked).
L1_CONFIG = """\
# what the host's /init and a Python test runner need
CONFIG_EXPERT=y
CONFIG_PRINTK=y
CONFIG_BUG=y
CONFIG_MULTIUSER=y
CONFIG_POSIX_TIMERS=y
CONFIG_FUTEX=y
CONFIG_EPOLL=y
CONFIG_SIGNALFD=y
CONFIG_TIMERFD=y
CONFIG_EVENTFD=y
CONFIG_SHMEM=y
CONFIG_FILE_LOCKING=y
CONFIG_ADVISE_SYSCALLS=y
CONFIG_MEMBARRIER=y
CONFIG_SYSVIPC=y
CONFIG_PROC_FS=y
CONFIG_PROC_SYSCTL=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_DEVTMPFS=y
CONFIG_DEVTMPFS_MOUNT=y
CONFIG_INOTIFY_USER=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_TTY=y
CONFIG_UNIX98_PTYS=y
# QEMU virt: PL011 console, both GICs, few ticks (TCG pays for each)
CONFIG_SERIAL_AMBA_PL011=y
CONFIG_SERIAL_AMBA_PL011_CONSOLE=y
CONFIG_SERIAL_EARLYCON=y
CONFIG_ARM_GIC=y
CONFIG_ARM_GIC_V3=y
CONFIG_HIGH_RES_TIMERS=y
CONFIG_NO_HZ_IDLE=y
CONFIG_HZ_100=y
# the PMU: cosim's budget source (perf events on the vCPU thread) and the guest's PMUv3
CONFIG_PERF_EVENTS=y
CONFIG_ARM_PMU=y
CONFIG_HW_PERF_EVENTS=y
# KVM itself
CONFIG_VIRTUALIZATION=y
CONFIG_KVM=y
# unix sockets, loopback, and virtio-mmio disks, consoles and 9p shares for the runner
CONFIG_NET=y
CONFIG_UNIX=y
CONFIG_INET=y
CONFIG_BLOCK=y
CONFIG_VIRTIO_MENU=y
CONFIG_VIRTIO=y
CONFIG_VIRTIO_MMIO=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_CONSOLE=y
CONFIG_NETWORK_FILESYSTEMS=y
CONFIG_NET_9P=y
CONFIG_NET_9P_VIRTIO=y
CONFIG_9P_FS=y
"""

# Bumped when the steps below change in a way that changes the Image.
_RECIPE = "1"
_CROSS = "aarch64-linux-gnu-"


class KernelBuildError(ImageError):
    """A step of the kernel recipe failed; the message names the step and where its log is."""


def stock_kernel(cache: Path | None = None) -> Path:
    """Debian 12's cloud-arm64 kernel (`vmlinuz`, gzip), as fetched for virt-linux: KVM, no WFx exit."""
    return linux_kernel(cache)


def patch_numbers(text: str | None = None) -> tuple[int, int]:
    """(KVM_CAP_EXIT_ON_WFX, KVM_EXIT_WFX) as the patch defines them."""
    text = PATCH.read_text() if text is None else text
    found = {}
    for name in ("KVM_CAP_EXIT_ON_WFX", "KVM_EXIT_WFX"):
        match = re.search(rf"^\+#define {name}\s+(\d+)\s*$", text, re.MULTILINE)
        if match is None:
            raise KernelBuildError(f"{PATCH}: no '#define {name}' added")
        found[name] = int(match.group(1))
    return found["KVM_CAP_EXIT_ON_WFX"], found["KVM_EXIT_WFX"]


def _progress(message: str) -> None:
    print(f"cosim: L1 kernel: {message}", file=sys.stderr, flush=True)


def _run(args: list[str], what: str, *, deadline: float, cwd: Path | None = None, log: Path | None = None,
         stdin=None) -> str:
    """Run one step; a failure or the recipe's deadline raises a one-line KernelBuildError."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise KernelBuildError(f"{what}: the recipe ran out of time ({BUILD_TIMEOUT:.0f} s)")
    out = log.open("ab") if log is not None else subprocess.PIPE
    start = out.tell() if log is not None else 0          # this step's output begins here
    try:
        proc = subprocess.run(args, cwd=cwd, stdin=stdin, stdout=out, stderr=subprocess.STDOUT, timeout=remaining)
    except subprocess.TimeoutExpired:
        raise KernelBuildError(f"{what}: timed out (the recipe is bounded to {BUILD_TIMEOUT:.0f} s)"
                               + (f"; log: {log}" if log else "")) from None
    except FileNotFoundError:
        raise KernelBuildError(f"{what}: {args[0]} not found (install {' '.join(BUILD_PACKAGES)}; "
                               "scripts/bootstrap.sh does)") from None
    finally:
        if log is not None:
            out.close()
    text = (log.read_bytes()[start:] if log is not None else proc.stdout).decode(errors="replace")
    if proc.returncode != 0:
        lines = text.splitlines() or [""]
        # the compiler's first "error:" says more than make's closing "Error 2"
        first = next((line for line in lines if "error:" in line.lower()), lines[-1])
        raise KernelBuildError(f"{what} failed (exit {proc.returncode}): {first.strip()}"
                               + (f"; log: {log}" if log else ""))
    return text


def _source(deadline: float) -> tuple[str, str]:
    """(version, SHA-256) of the linux-source-6.1 apt would install, from its metadata (nothing downloaded)."""
    def candidate() -> str:
        text = _run(["apt-cache", "policy", SOURCE_PACKAGE], "apt-cache policy", deadline=deadline)
        match = re.search(r"Candidate:\s*(\S+)", text)
        return match.group(1) if match and match.group(1) != "(none)" else ""

    if shutil.which("apt-cache") is None:
        raise KernelBuildError(f"cannot get {SOURCE_PACKAGE}: apt is not available (a Debian host is needed)")
    version = candidate()
    if not version:
        _progress("apt-get update (no candidate for linux-source-6.1)")
        _run(["apt-get", "update", "-qq"], "apt-get update", deadline=deadline)
        version = candidate()
        if not version:
            raise KernelBuildError(f"apt offers no {SOURCE_PACKAGE}: a Debian 12 (bookworm) apt source is needed")
    text = _run(["apt-cache", "show", f"{SOURCE_PACKAGE}={version}"], "apt-cache show", deadline=deadline)
    match = re.search(r"^SHA256:\s*([0-9a-f]{64})", text, re.MULTILINE)
    if match is None:
        raise KernelBuildError(f"apt-cache show {SOURCE_PACKAGE}={version}: no SHA256 field")
    return version, match.group(1)


def _compiler(deadline: float) -> str:
    return _run([f"{_CROSS}gcc", "--version"], f"{_CROSS}gcc --version", deadline=deadline).splitlines()[0].strip()


def build_key(version: str, source_sha256: str, compiler: str) -> str:
    """A short digest of everything the Image depends on, naming its cache entry."""
    parts = [_RECIPE, SOURCE_PACKAGE, version, source_sha256, hashlib.sha256(PATCH.read_bytes()).hexdigest(),
             hashlib.sha256(L1_CONFIG.encode()).hexdigest(), compiler]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _check_config(config: Path) -> None:
    have = set(config.read_text().splitlines())
    wanted = [line for line in L1_CONFIG.splitlines() if line.startswith("CONFIG_")]
    missing = [line for line in wanted if line not in have]
    if missing:
        raise KernelBuildError(f"the kernel configuration lost {', '.join(missing)} (a dependency is missing "
                               f"from L1_CONFIG); config: {config}")


def _build(version: str, source_sha256: str, target: Path, deadline: float) -> None:
    with tempfile.TemporaryDirectory(prefix="build-", dir=target.parent) as tmp:
        work = Path(tmp)
        log = target.parent / "build.log"
        log.write_text("")
        _progress(f"downloading {SOURCE_PACKAGE} {version}")
        _run(["apt-get", "download", f"{SOURCE_PACKAGE}={version}"], f"apt-get download {SOURCE_PACKAGE}",
             deadline=deadline, cwd=work)
        debs = list(work.glob("*.deb"))
        if len(debs) != 1:
            raise KernelBuildError(f"apt-get download {SOURCE_PACKAGE}={version} produced {len(debs)} files")
        digest = hashlib.sha256(debs[0].read_bytes()).hexdigest()
        if digest != source_sha256:
            raise KernelBuildError(f"{debs[0].name}: checksum mismatch (apt says {source_sha256}, got {digest})")
        _progress("extracting the source")
        tarball = work / "source.tar.xz"
        with tarball.open("wb") as out:
            _run_pipe(["dpkg-deb", "--fsys-tarfile", str(debs[0])],
                      ["tar", "-xO", f"./usr/src/{SOURCE_PACKAGE}.tar.xz"], out, deadline)
        debs[0].unlink()
        _run(["tar", "-xf", str(tarball), "-C", str(work)], "extracting the source", deadline=deadline)
        tarball.unlink()
        tree = work / SOURCE_PACKAGE
        _progress(f"applying {PATCH.name}")
        with PATCH.open("rb") as patch:
            _run(["patch", "-p1", "--forward", "--batch"], f"applying {PATCH.name}", deadline=deadline, cwd=tree,
                 log=log, stdin=patch)
        out = work / "out"
        make = ["make", "-C", str(tree), f"O={out}", "ARCH=arm64", f"CROSS_COMPILE={_CROSS}"]
        _progress("configuring (tinyconfig + L1_CONFIG)")
        fragment = work / "l1.config"
        fragment.write_text(L1_CONFIG)
        _run([*make, "tinyconfig"], "make tinyconfig", deadline=deadline, log=log)
        _run([str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(out), str(out / ".config"),
              str(fragment)], "merging L1_CONFIG", deadline=deadline, cwd=tree, log=log)
        _run([*make, "olddefconfig"], "make olddefconfig", deadline=deadline, log=log)
        _check_config(out / ".config")
        _progress(f"building Image with make -j{JOBS} (~10 min of CPU time, longer on a busy machine; log: {log})")
        began = time.monotonic()
        _run([*make, f"-j{JOBS}", "Image"], "make Image", deadline=deadline, log=log)
        _progress(f"built in {time.monotonic() - began:.0f} s")
        shutil.copyfile(out / ".config", target.with_name("config"))
        partial = target.with_suffix(".partial")
        shutil.copyfile(out / "arch/arm64/boot/Image", partial)
        partial.replace(target)          # never a truncated Image under the final name


def _run_pipe(first: list[str], second: list[str], out, deadline: float) -> None:
    """`first | second > out`, bounded by the deadline."""
    what = f"{' '.join(first[:2])} | {' '.join(second[:2])}"
    try:
        producer = subprocess.Popen(first, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise KernelBuildError(f"{what}: {first[0]} not found") from None
    try:
        consumer = subprocess.run(second, stdin=producer.stdout, stdout=out, stderr=subprocess.PIPE,
                                  timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise KernelBuildError(f"{what}: timed out") from None
    finally:
        producer.stdout.close()
        producer.kill()
        producer.wait()
    if consumer.returncode != 0:
        raise KernelBuildError(f"{what} failed: {consumer.stderr.decode(errors='replace').strip()}")


def patched_kernel(cache: Path | None = None, *, timeout: float = BUILD_TIMEOUT) -> Path:
    """Path of the arm64 `Image` of Debian's 6.1 with our KVM_CAP_EXIT_ON_WFX port, building it on first use.

    Idempotent and safe to call from several processes at once (a lock file
    serialises builds of the same key). Progress goes to stderr; a failed
    step raises KernelBuildError with one line naming it.
    """
    deadline = time.monotonic() + timeout
    if patch_numbers() != (PORT_WFX_CAP, PORT_WFX_EXIT):
        raise KernelBuildError(f"{PATCH.name} defines {patch_numbers()} but cosim.kvm._arm64 says "
                               f"{(PORT_WFX_CAP, PORT_WFX_EXIT)}: make them agree")
    version, source_sha256 = _source(deadline)
    key = build_key(version, source_sha256, _compiler(deadline))
    folder = cache_dir(cache) / f"linux-l1-wfx-{version}-{key}"
    target = folder / "Image"
    if target.is_file():
        return target
    with file_lock(folder / "lock", deadline - time.monotonic(),
                   lambda: KernelBuildError(f"another process held {folder / 'lock'} for {timeout:.0f} s"),
                   lambda: _progress(f"another process is building it; waiting for {folder / 'lock'}")):
        if not target.is_file():          # another process may have built it meanwhile
            _build(version, source_sha256, target, deadline)
    return target


def main(argv: list[str] | None = None) -> int:
    try:
        print(patched_kernel())
    except ImageError as error:
        print(f"cosim: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
