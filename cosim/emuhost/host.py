"""Booting the emulated Arm64 host and running a command in it: the per-run archive, QEMU, the results.

One boot runs one command — a pytest selection or a script — from the current
checkout, then powers off. The L1 kernel's initramfs is the cached base root
file system (`rootfs.base_archive`) followed by a small archive made for the run
(`run_archive`): the checkout's files (byte code compiled here), the guest images
the tests boot, `/init` and the command. Results come back over the serial
console (`_inner`). `-icount shift=0` makes the emulated PMU count retired
instructions (the `pmu` budget source works) and the L1 clock virtual, several
times slower than real time, so every wait is bounded from outside, in real time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import py_compile
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..images.fetch import ImageError, busybox_initramfs_image, cache_dir, fetch_image, linux_kernel
from ..images.initramfs import Entry, newc
from .rootfs import GUEST_PYTHON, base_archive

__all__ = ["EmulatedHost", "EmuhostError", "InnerTest", "RunResult", "host_kernel", "qemu_unavailable",
           "parse_results", "run_archive", "KERNELS", "QEMU"]

QEMU = "qemu-system-aarch64"
KERNELS = ("stock", "seed-wfx")
INIT_MARKER, EXIT_MARKER = "COSIM-EMUHOST-INIT", "COSIM-EMUHOST-EXIT"
RESULTS_BEGIN, RESULTS_END = "COSIM-EMUHOST-RESULTS-BEGIN", "COSIM-EMUHOST-RESULTS-END"   # around _inner's payload
# Facts measured (issue 10): EL2 for KVM, GICv3 (its system-register CPU interface is what TCG emulates
# fastest), no pointer authentication (its emulation made booting ~10x slower), icount for an exact PMU.
QEMU_ARGS = ("-M", "virt,virtualization=on,gic-version=3", "-cpu", "max,pauth=off", "-icount", "shift=0",
             "-smp", "1", "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot")
CMDLINE = "console=ttyAMA0 rdinit=/init panic=-1 loglevel=4"
_INIT = f"""#!/bin/busybox sh
# /init of cosim's emulated Arm64 host: mount, run /cosim-run/command.json, power off.
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t tmpfs tmpfs /tmp
echo 1 > /proc/sys/kernel/printk
echo "{INIT_MARKER} $(/bin/busybox cut -d' ' -f1 /proc/uptime)"
cd /cosim
export HOME=/root PATH=/usr/local/bin:/usr/bin:/bin PYTHONPATH=/cosim PYTHONDONTWRITEBYTECODE=1 \\
    COSIM_IMAGE_CACHE=/cache/images XDG_CACHE_HOME=/tmp/cache
/usr/bin/python3 -m cosim.emuhost._inner /cosim-run/command.json
echo "{EXIT_MARKER} $?"
/bin/busybox poweroff -f
"""
# The editable install maps models/ and platforms/ to cosim.models and cosim.platforms (pyproject.toml).
_PACKAGE_LINKS = {"cosim/models": "../models", "cosim/platforms": "../platforms"}
_COMPILED = ("cosim/", "models/", "platforms/")


class EmuhostError(RuntimeError):
    """The emulated host could not be built, booted, or did not report; the message says what and where."""


def qemu_unavailable() -> str | None:
    """Why the emulated host cannot run here (one line), or None when it can."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found: install the Debian package qemu-system-arm (scripts/bootstrap.sh does)"
    return None


def host_kernel(name: str) -> Path:
    """The L1 kernel `Image`: 'stock' (Debian's cloud-arm64, KVM built in), 'seed-wfx' (our port of the seed's
    WFx patch, built by `cosim.emuhost.kernel`) or a path."""
    if name == "stock":
        return linux_kernel()
    if name == "seed-wfx":
        try:
            from .kernel import patched_kernel
        except ImportError as error:
            raise EmuhostError(f"kernel 'seed-wfx': the patched kernel recipe is missing ({error})") from error
        return patched_kernel()
    path = Path(name)
    if not path.is_file():
        raise EmuhostError(f"kernel {name!r}: not 'stock', 'seed-wfx' or an existing file")
    return path


@dataclass(frozen=True)
class InnerTest:
    """One test as pytest inside the emulated host reported it."""

    name: str              # "tests/cpu/arm64/test_guests.py::test_hello[kvm]"
    outcome: str           # passed, failed, error, skipped
    seconds: float
    detail: str = ""       # failure text and captured output, or the skip reason

    @property
    def path(self) -> str:
        return self.name.split("::", 1)[0]


@dataclass
class RunResult:
    console: str
    status: int | None                      # the command's exit status inside; None if it never said
    tests: list[InnerTest] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)   # seconds of real time per stage

    def failures(self) -> list[InnerTest]:
        return [t for t in self.tests if t.outcome in ("failed", "error")]

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for test in self.tests:
            counts[test.outcome] = counts.get(test.outcome, 0) + 1
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in self.stages.items())
        return f"{', '.join(f'{n} {k}' for k, n in sorted(counts.items())) or 'no tests'}; {stages}"


def _tests(payload: bytes) -> list[InnerTest]:
    return [InnerTest(name, entry["outcome"], entry["seconds"], entry["detail"].strip())
            for name, entry in json.loads(payload).items()]


def parse_results(console: str) -> bytes | None:
    """The payload `_inner.emit` printed, checked against its digest; None when there is none."""
    lines = [line.strip() for line in console.replace("\r", "").split("\n")]
    try:
        begin = max(i for i, line in enumerate(lines) if line == RESULTS_BEGIN)
    except ValueError:
        return None
    for end in range(begin + 1, len(lines)):
        if lines[end].startswith(RESULTS_END + " "):
            payload = base64.b64decode("".join(line for line in lines[begin + 1:end]
                                               if re.fullmatch(r"[A-Za-z0-9+/=]+", line)))
            digest = lines[end].split()[1]
            if hashlib.sha256(payload).hexdigest() != digest:
                raise EmuhostError("the results from the emulated host were garbled on the console "
                                   "(digest mismatch): kernel messages interleaved?")
            return payload
    return None


def _checkout_files(root: Path) -> list[str]:
    proc = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                          capture_output=True)
    if proc.returncode != 0:
        raise EmuhostError(f"{root}: not a git checkout (git ls-files: {proc.stderr.decode().strip()}); "
                           "the emulated host runs the files git lists")
    return sorted(name for name in proc.stdout.decode().split("\0") if name and (root / name).is_file())


def _byte_code(source: Path, name: str) -> bytes | None:
    if sys.version_info[:2] != GUEST_PYTHON:
        return None
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "out.pyc"
        try:
            py_compile.compile(str(source), cfile=str(out), dfile=f"/cosim/{name}", doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        except py_compile.PyCompileError:
            return None                       # a syntax error shows up inside, where the test runs
        return out.read_bytes()


def _guest_images() -> dict[str, Path]:
    """The images the inner tests boot, fetched here (the emulated host has no apt), by cache-relative
    path: each image's cache entry and its selection (cosim/images/cache.py), and the initramfs."""
    images = {}
    root = cache_dir()
    for key in ("uboot", "linux", "busybox"):
        entry = fetch_image(key)
        for path in (root / "entries" / entry.name / "entry.json", entry.path, root / "selected" / f"{key}.json"):
            images[str(path.relative_to(root))] = path
    initramfs = busybox_initramfs_image()
    images[initramfs.name] = initramfs
    return images


def run_archive(root: Path, kind: str, args: list[str]) -> bytes:
    """The per-run newc archive: /init, the command, the checkout under /cosim, the guest images."""
    d, f = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644
    files: dict[str, bytes] = {"init": _INIT.encode(),
                               "cosim-run/command.json": json.dumps({"kind": kind, "args": args}).encode()}
    for name in _checkout_files(root):
        source = root / name
        files[f"cosim/{name}"] = source.read_bytes()
        if name.endswith(".py") and name.startswith(_COMPILED):
            code = _byte_code(source, name)
            if code is not None:
                cached = Path(name).parent / "__pycache__" / f"{Path(name).stem}.{sys.implementation.cache_tag}.pyc"
                files[f"cosim/{cached}"] = code
    for name, path in _guest_images().items():
        files[f"cache/images/{name}"] = path.read_bytes()
    dirs = {"dev", "proc", "sys", "tmp", "root"}
    for name in [*files, *(f"cosim/{link}" for link in _PACKAGE_LINKS)]:
        parts = name.split("/")[:-1]
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    entries = [Entry(name, d) for name in sorted(dirs)]
    entries.append(Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    entries += [Entry(name, (f | 0o111) if name == "init" else f, data) for name, data in files.items()]
    entries += [Entry(f"cosim/{link}", stat.S_IFLNK | 0o777, target.encode()) for link, target in _PACKAGE_LINKS.items()]
    return newc(entries)


def _echo(line: bytes, echo: IO[str], hiding: list[bool]) -> None:
    """Copy a console line to `echo`, without the base64 results block (machine talk)."""
    text = line.decode(errors="replace")
    if text.startswith(RESULTS_BEGIN):
        hiding[0] = True
    if not hiding[0]:
        echo.write(text)
        echo.flush()
    if text.startswith(RESULTS_END):
        hiding[0] = False


def _reader(stream: IO[bytes], sink: bytearray, echo: IO[str] | None, init_at: list[float]) -> None:
    hiding = [False]
    for line in iter(stream.readline, b""):
        sink += line
        if echo is not None:
            _echo(line, echo, hiding)
        if not init_at and line.startswith(INIT_MARKER.encode()):
            init_at.append(time.monotonic())
        if not init_at and INIT_MARKER.encode() in sink[-len(chunk) - 64:]:
            init_at.append(time.monotonic())


class EmulatedHost:
    """An emulated Arm64 KVM host booting `kernel` (an arm64 `Image`, gzip or not), for one command per boot.

    `memory`: the L1 RAM (the initramfs, the checkout and the nested guests live in it);
    `echo`: a stream the console is copied to as it comes (humans watching).
    """

    def __init__(self, kernel: Path, *, memory: str = "2G", cache: Path | None = None,
                 checkout: Path | None = None, echo: IO[str] | None = None) -> None:
        reason = qemu_unavailable()
        if reason:
            raise EmuhostError(reason)
        self.kernel = Path(kernel)
        self.memory = memory
        self.cache = cache
        self.checkout = checkout or Path(__file__).resolve().parents[2]
        self.echo = echo

    def pytest(self, args: list[str], timeout: float) -> RunResult:
        """Run `pytest args` inside; per-test outcomes as its plugin (`_inner.Recorder`) saw them."""
        result = self._run("pytest", args, timeout)
        payload = parse_results(result.console)
        if payload is None:
            raise EmuhostError(f"pytest inside the emulated host reported no results (exit status {result.status}); "
                               f"console ends:\n{result.console[-3000:]}")
        result.tests = _tests(payload)
        return result

    def script(self, args: list[str], timeout: float) -> RunResult:
        """Run `python3 args...` inside (a benchmark); its output is in the console."""
        return self._run("script", args, timeout)

    def _run(self, kind: str, args: list[str], timeout: float) -> RunResult:
        stages: dict[str, float] = {}
        began = time.monotonic()
        try:
            base = base_archive(self.cache)
        except ImageError as error:
            raise EmuhostError(f"emulated host root file system: {error}") from error
        stages["root file system"] = time.monotonic() - began
        mark = time.monotonic()
        try:
            extra = run_archive(self.checkout, kind, args)
        except ImageError as error:
            raise EmuhostError(f"emulated host guest images: {error}") from error
        work = Path(tempfile.mkdtemp(prefix="emuhost-run-", dir=cache_dir(self.cache)))
        try:
            initrd = work / "initrd.cpio"
            with initrd.open("wb") as out, base.open("rb") as head:
                shutil.copyfileobj(head, out, 1 << 22)
                out.write(extra)               # Linux unpacks concatenated archives in order
            stages["run archive"] = time.monotonic() - mark
            return self._boot(kind, initrd, timeout, stages, began)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _boot(self, kind: str, initrd: Path, timeout: float, stages: dict[str, float], began: float) -> RunResult:
        command = [QEMU, *QEMU_ARGS, "-m", self.memory, "-kernel", str(self.kernel), "-initrd", str(initrd),
                   "-append", CMDLINE]
        mark = time.monotonic()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sink, init_at = bytearray(), []
        reader = threading.Thread(target=_reader, args=(proc.stdout, sink, self.echo, init_at), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=max(1.0, timeout - (mark - began)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            reader.join(5)
            raise EmuhostError(f"the emulated host ({self.kernel.name}) did not finish within {timeout:.0f} s of real "
                               f"time; console ends:\n{sink[-3000:].decode(errors='replace')}") from None
        reader.join(5)
        console = sink.decode(errors="replace")
        ended = time.monotonic()
        if not init_at:
            raise EmuhostError(f"the emulated host ({self.kernel.name}) never reached /init (QEMU exit "
                               f"{proc.returncode}); console ends:\n{console[-3000:]}")
        status = re.search(rf"{EXIT_MARKER} (\d+)", console)
        stages["boot to /init"] = init_at[0] - mark
        stages[f"{kind} inside"] = ended - init_at[0]
        return RunResult(console, int(status.group(1)) if status else None, stages=stages)
