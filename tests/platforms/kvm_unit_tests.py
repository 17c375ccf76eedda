"""kvm-unit-tests (the third-party snapshot in ../shared/kvm-unit-tests) built out of tree and run on `virt`.

The snapshot is test material, not part of the project: it is copied into the image cache,
built there with Debian's aarch64 cross compiler (cached under a hash of the snapshot and the
compiler), and each case of its `arm/unittests.cfg` is run the way its own `arm/run` drives
QEMU: `cosim run virt -P firmware=none -P kernel=arm/X.flat -P bootargs=ARGS -P ram_size=MM`,
reading the `EXIT: STATUS=` line it prints before PSCI SYSTEM_OFF.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cosim.images.fetch import cache_dir

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO.parent / "shared" / "kvm-unit-tests"
CROSS = "aarch64-linux-gnu-"
EXIT_LINE = re.compile(rb"EXIT: STATUS=(\d+)")
PASSED, SKIPPED = 1, 77        # the suite's exit statuses (lib/libcflat.h: report_summary)


class KutError(RuntimeError):
    """The suite could not be built; the message says what is missing."""


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    smp: int
    args: str
    ram_mib: int


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _materialise_links(tree: Path) -> None:
    """The snapshot stores the suite's symlinks as one-line files naming their target
    (arm/sieve.c holds `../common/sieve.c`): put the target's text in their place."""
    for path in tree.rglob("*.[ch]"):
        text = path.read_bytes()
        if len(text) < 200 and b"\n" not in text.strip() and not text.startswith(b"#"):
            target = (path.parent / text.strip().decode(errors="replace"))
            if target.is_file():
                shutil.copyfile(target, path)


def _add_missing_offsets_header(tree: Path) -> None:
    """`asm/asm-offsets.h` for arm and arm64 is absent from the snapshot (its riscv twin is there):
    the upstream file only includes the generated header."""
    for arch in ("arm", "arm64"):
        header = tree / "lib" / arch / "asm" / "asm-offsets.h"
        if not header.exists():
            header.write_text("#include <generated/asm-offsets.h>\n")


def build(snapshot: Path = SNAPSHOT) -> Path:
    """The built tree (with arm/*.flat), cached; built on first use (~10 s on 2 cores)."""
    if not (snapshot / "arm" / "unittests.cfg").is_file():
        raise KutError(f"kvm-unit-tests snapshot not found at {snapshot}")
    gcc = shutil.which(CROSS + "gcc")
    if gcc is None:
        raise KutError(f"{CROSS}gcc not found: install Debian's gcc-aarch64-linux-gnu (scripts/bootstrap.sh does)")
    compiler = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    key = hashlib.sha256((_tree_hash(snapshot) + compiler).encode()).hexdigest()[:16]
    tree = cache_dir() / f"kvm-unit-tests-{key}"
    if (tree / ".built").exists():
        return tree
    work = tree.with_name(tree.name + f".tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(snapshot, work, symlinks=True)
    for path in work.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)          # the shared copy is read-only
    _materialise_links(work)
    _add_missing_offsets_header(work)
    for step in (["./configure", "--arch=arm64", f"--cross-prefix={CROSS}"], ["make", "-j2"]):
        done = subprocess.run(step, cwd=work, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise KutError(f"kvm-unit-tests: {' '.join(step)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    (work / ".built").touch()
    try:
        work.rename(tree)
    except OSError:                  # another process finished first: use its tree
        shutil.rmtree(work, ignore_errors=True)
    return tree


def cases(snapshot: Path = SNAPSHOT, max_smp: int = 8) -> dict[str, Case]:
    """The Arm64-relevant cases of `arm/unittests.cfg`, with $MAX_SMP and its min() forms expanded."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(snapshot / "arm" / "unittests.cfg")
    found = {}
    for name in parser.sections():
        section = parser[name]
        if section.get("arch", "arm64") != "arm64":
            continue
        smp_text = section.get("smp", "1").replace("$MAX_SMP", str(max_smp))
        ternary = re.fullmatch(r"\$\(\(\((\d+) < (\d+)\)\?(\d+):(\d+)\)\)", smp_text.strip())
        smp = min(int(ternary.group(1)), int(ternary.group(2))) if ternary else int(smp_text)
        params = section.get("qemu_params", "")
        memory = re.search(r"-m (\d+)", params)
        found[name] = Case(name, section["file"], smp, section.get("test_args", "").strip("'\""),
                           int(memory.group(1)) if memory else 128)
    return found


@dataclass(frozen=True)
class Outcome:
    status: int | None       # the EXIT: STATUS= value, None when the test never printed one
    output: str
    exit_code: int


def run_case(tree: Path, case: Case, wall_timeout: float = 120, until: str = "60s", keys: bytes = b"") -> Outcome:
    """Run one case on `virt` through the real `cosim` CLI, bounded in wall time; `keys` are typed
    on its console (the UART keeps them until the guest reads)."""
    command = [sys.executable, "-m", "cosim", "run", "virt", "-P", "firmware=none",
               "-P", f"kernel={tree / 'arm' / case.file}", "-P", f"bootargs={case.args}",
               "-P", f"ram_size={case.ram_mib}M", "-P", "console=stdio", "--until", until]
    if case.smp > 1:
        command += ["-P", f"cpus={case.smp}"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=wall_timeout, input=keys)
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"") + (expired.stderr or b"")
        return Outcome(None, output.decode(errors="replace") + f"\n[timed out after {wall_timeout} s]", -1)
    found = EXIT_LINE.search(done.stdout)
    return Outcome(int(found.group(1)) if found else None,
                   (done.stdout + done.stderr).decode(errors="replace"), done.returncode)


# The cases QEMU TCG passes here (../shared/kvm-unit-tests.md); pl031, sieve and spinlock-test
# are not in arm/unittests.cfg and run with the suite's defaults.
QEMU_PASSES = ("selftest-setup", "selftest-vectors-kernel", "selftest-vectors-user", "selftest-smp", "gicv2-ipi",
               "gicv2-active", "psci", "timer", "cache", "debug-bp", "debug-wp", "debug-sstep", "pmu-cycle-counter",
               "pmu-event-counter-config", "pmu-sw-incr", "pl031", "sieve", "spinlock-test", "fpu-context")
DEFAULTS = {
    "pl031": Case("pl031", "pl031.flat", 1, "", 128),
    "sieve": Case("sieve", "sieve.flat", 1, "", 256),          # mallocs 100 MB three times
    "spinlock-test": Case("spinlock-test", "spinlock-test.flat", 4, "", 128),
}
_SMP = "needs several CPUs (-P cpus=N: SMP on virt, issue 11)"
KNOWN_GAPS = {
    "selftest-setup": _SMP, "selftest-smp": _SMP, "gicv2-ipi": _SMP, "gicv2-active": _SMP, "psci": _SMP,
    "spinlock-test": _SMP, "fpu-context": _SMP,
}
# Wall-time bounds catch hangs; they are generous because CI machines may be loaded. Most cases take
# 2-4 s; sieve sieves 100 MB three times (~150 s of CPU on the software CPU here).
WALL_TIMEOUT = {"sieve": 900}
