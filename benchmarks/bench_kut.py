"""kvm-unit-tests on cosim's virt vs QEMU (TCG), measured side by side in the same run.

    python benchmarks/bench_kut.py [CASE ...]

Every case QEMU 7.2 TCG passes on this machine (tests/platforms/test_kvm_unit_tests.py's
list) runs on both, as the suite's own arm/run drives QEMU: same .flat, arguments, CPU
count and RAM. Printed per case: each side's EXIT status (1 = pass, 77 = skip) and wall
time, and the ratio cosim/QEMU.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "platforms"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _peers import ensure_qemu  # noqa: E402
from kvm_unit_tests import DEFAULTS, EXIT_LINE, QEMU_PASSES, build, cases, run_case  # noqa: E402


WALL_LIMIT = 900.0


def qemu(qemu_path: str, tree: Path, case) -> tuple[int | None, float]:
    argv = [qemu_path, "-M", "virt,gic-version=2", "-cpu", "max", "-smp", str(case.smp), "-m", str(case.ram_mib),
            "-nographic", "-serial", "stdio", "-monitor", "none", "-kernel", str(tree / "arm" / case.file)]
    if case.args:
        argv += ["-append", case.args]
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=WALL_LIMIT)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start
    found = EXIT_LINE.search(done.stdout)
    return (int(found.group(1)) if found else None), time.perf_counter() - start


def main(selected: list[str]) -> None:
    qemu_path = ensure_qemu()
    version = subprocess.run([qemu_path, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    tree = build()
    known = {**cases(), **DEFAULTS}
    names = selected or list(QEMU_PASSES)
    print(f"kvm-unit-tests on virt (software CPU) vs {version} (TCG, -cpu max, GICv2), wall time per case")
    print(f"{'case':28} {'CPUs':>4}  {'QEMU':>13}  {'cosim':>13}  {'cosim/QEMU':>10}")
    total = [0.0, 0.0]
    for name in names:
        case = known[name]
        q_status, q_wall = qemu(qemu_path, tree, case)
        start = time.perf_counter()
        outcome = run_case(tree, case, wall_timeout=WALL_LIMIT)
        c_wall = time.perf_counter() - start
        cosim_text, ratio = f"{outcome.status} in {c_wall:6.2f} s", f"{c_wall / q_wall:9.2f}x"
        total[0] += q_wall
        total[1] += c_wall
        print(f"{name:28} {case.smp:>4}  {q_status} in {q_wall:6.2f} s  {cosim_text:>13}  {ratio:>10}")
    if total[0]:
        print(f"{'cases run on both':28} {'':>4}  {total[0]:11.2f} s  {total[1]:11.2f} s  {total[1] / total[0]:9.2f}x")
    print("Linux boot to the shell with 1 and 4 CPUs: benchmarks/bench_linux.py")


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if not re.match(r"^-", a)])
