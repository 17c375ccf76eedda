"""Debian's arm64 Linux on cosim's virt-linux vs QEMU (TCG), measured in the same run.

    python benchmarks/bench_linux.py [--runs 8] [--counting block|instruction] [--cpus 1,4]
    python benchmarks/bench_linux.py --against REV [--rev REV2] [--runs 8]

Both boot the same kernel, initramfs and command line as separate processes
driven over the serial console, interleaved run by run (QEMU, cosim, QEMU, ...)
so that the load of a shared machine falls on both alike: time to the busybox
shell prompt (min and median over the runs), then `sleep 10` in the last run;
with 1 and with 4 CPUs by default (QEMU -smp N: its multi-threaded TCG uses the
host's cores; cosim's CPUs run one after another on one).
Each round also boots cosim in-process, on cosim's patched unicorn (the default
once scripts/bootstrap.sh has built it, cosim/patched_unicorn) and on the
released library, for the guest MIPS, what the patches give, and the
determinism check: every boot must retire the same number of instructions and
print the same console output (a SHA-256 of it, kernel timestamps included)
as `REFERENCE`, the one-CPU figures of this tree's counting modes (with several
CPUs, as every other boot).

`--against REV` is the A/B mode for one change: in-process boots of this tree
(or of `--rev REV2`) and of git revision REV, each checked out in a temporary
worktree, alternate in fresh processes; the instruction counts and outputs of
both are printed. Each round also times both trees' whole-process start-up
(three times each): `cosim run virt-linux --until 1us` (interpreter, imports,
the default images checked in the cache, building the platform and its first
microsecond), which the in-process boots leave out.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Console, QemuAarch64, cosim_env  # noqa: E402

PROMPT = b"/root # "
STARTS_PER_ROUND = 3      # start-ups timed per tree in each A/B round: ~0.2 s each, noisier than boots
ROOT = Path(__file__).resolve().parent.parent

# Instructions retired to the shell prompt and SHA-256 (first 16 hex digits) of the console output up
# to it, per counting mode. A change to the CPU backend must keep both (docs/cpu-arm64.md says why the
# block-mode figures changed with 4 KiB target pages).
REFERENCE = {
    "block": (946_661_307, "caf3cb34dd6f08ab"),
    "instruction": (946_556_665, "3b2e2b89c355a88d"),
}


def drive(console: Console, sleep: bool) -> tuple[float, float | None]:
    from cosim.images.initramfs import BANNER

    console.expect(BANNER.encode(), timeout=600)
    prompt = console.expect(PROMPT)
    slept = None
    if sleep:
        console.send(b"sleep 10\n")
        console.expect(b"sleep 10")
        before = time.perf_counter() - console.start
        slept = console.expect(PROMPT, timeout=120) - before
    console.send(b"poweroff\n")
    console.close(timeout=30)
    return prompt, slept


def use_tree_packages() -> None:
    """cosim.models and cosim.platforms from the tree this process's `cosim` comes from (an editable
    install maps them to its own checkout's models/ and platforms/, whatever PYTHONPATH says)."""
    import importlib.util

    import cosim

    tree = Path(cosim.__file__).resolve().parent.parent
    for name in ("models", "platforms"):
        folder = tree / name
        spec = importlib.util.spec_from_file_location(f"cosim.{name}", folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"cosim.{name}"] = module
        spec.loader.exec_module(module)


def boot_once(counting: str, cpus: int = 1) -> dict[str, object]:
    """One in-process boot to the shell (this process's `cosim`): wall time, instructions, output digest."""
    use_tree_packages()
    from cosim import SEC
    from cosim.chardev import BufferBackend
    from cosim.images.fetch import busybox_initramfs_image, linux_kernel
    from cosim.images.initramfs import BANNER
    from cosim.platforms.virt import VirtLinux

    kernel, initrd = linux_kernel(), busybox_initramfs_image()
    start = time.perf_counter()
    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console, counting=counting, cpus=cpus)
    console.run_until(BANNER, 20 * SEC)
    console.run_until(PROMPT.decode(), 5 * SEC, start=console.output.find(BANNER.encode()))
    wall = time.perf_counter() - start
    output = bytes(console.output)
    simulated, instructions = board.sim.now / SEC, sum(cpu.instructions for cpu in board.cpu_list)
    # `sleep 10`: idle time skipped, so a fraction of a second of wall time.
    sim0, wall0, mark = board.sim.now, time.perf_counter(), len(console.output)
    console.feed("sleep 10\n")
    console.run_until("\n" + PROMPT.decode(), 20 * SEC, start=mark)
    return {"wall": wall, "simulated": simulated, "instructions": instructions,
            "digest": hashlib.sha256(output).hexdigest()[:16],
            "sleep_wall": time.perf_counter() - wall0, "sleep_simulated": (board.sim.now - sim0) / SEC,
            "tree": str(Path(sys.modules["cosim.platforms.virt"].__file__).parent)}


def tree_env(tree: Path, unicorn: str = "default") -> dict[str, str]:
    """`cosim_env()` for a process whose `cosim` comes from `tree`, on the unicorn library that tree
    chooses by default (cosim.patched_unicorn) or on the released one (`unicorn="stock"`)."""
    env = {**cosim_env(), "PYTHONPATH": str(tree)}
    if unicorn == "stock":
        env["COSIM_UNICORN"] = "stock"
    return env


def boot_in(tree: Path, counting: str, cpus: int = 1, unicorn: str = "default") -> dict[str, object]:
    """`boot_once` in a fresh process whose `cosim` (and models, platforms) come from `tree`."""
    result = subprocess.run([sys.executable, __file__, "--boot-once", "--counting", counting, "--cpus", str(cpus)],
                            env=tree_env(tree, unicorn), cwd=tree, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"boot in {tree} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def startup_in(tree: Path) -> float:
    """Wall time of a whole `cosim run virt-linux --until 1us` process whose `cosim` comes from `tree`: the
    command as users type it, so the default images are looked up (and checked) in the cache. The
    caller runs it once first, to write the tree's bytecode cache."""
    argv = ["run", "virt-linux", "--until", "1us"]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, "--cli", *argv], env=tree_env(tree), cwd=tree,
                            capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"cosim run in {tree} failed:\n{result.stderr[-2000:]}")
    return wall


def spread(values: list[float]) -> str:
    return f"min {min(values):.3f} s, median {statistics.median(values):.3f} s"


def check(label: str, boots: list[dict[str, object]], counting: str, reference: bool) -> bool:
    """Same instruction count and output in every boot (and, with `reference`, REFERENCE's)."""
    seen = {(b["instructions"], b["digest"]) for b in boots}
    ok = len(seen) == 1
    text = ", ".join(f"{n:,} instructions, output {d}" for n, d in sorted(seen))
    want = REFERENCE.get(counting)
    if reference and want and want[0]:
        ok = ok and seen == {want}
        text += f" (reference {want[0]:,}, {want[1]}: {'same' if seen == {want} else 'DIFFERENT'})"
    print(f"  {label}: {text}: {'OK' if ok else 'MISMATCH'}")
    return ok


def checkout(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev], check=True,
                   capture_output=True)
    return where


def compare(against: str, rev: str | None, runs: int, counting: str) -> bool:
    """A/B: in-process boots of revision `against` and of `rev` (default: this tree), alternating."""
    with tempfile.TemporaryDirectory(prefix="cosim-ab-") as tmp:
        trees = [checkout(against, Path(tmp) / "a")]
        trees.append(checkout(rev, Path(tmp) / "b") if rev else ROOT)
        try:
            boots: dict[str, list[dict[str, object]]] = {"A": [], "B": []}
            starts: dict[str, list[float]] = {"A": [], "B": []}
            loads = []
            for tree in trees:
                startup_in(tree)              # writes the tree's bytecode cache
            for _ in range(runs):
                boots["A"].append(boot_in(trees[0], counting))
                boots["B"].append(boot_in(trees[1], counting))
                for _ in range(STARTS_PER_ROUND):
                    starts["A"].append(startup_in(trees[0]))
                    starts["B"].append(startup_in(trees[1]))
                loads.append(os.getloadavg()[0])
        finally:
            for tree in trees:
                if tree != ROOT:
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    print(f"A/B, in-process boot to the shell, counting={counting}, {runs} runs each, interleaved "
          f"(1-minute load average {min(loads):.2f}-{max(loads):.2f})")
    a, b = ([float(x["wall"]) for x in boots[k]] for k in "AB")
    print(f"  A {against:<12} {spread(a)}")
    print(f"  B {rev or 'this tree':<12} {spread(b)}")
    print(f"  B/A: min {min(b) / min(a):.3f}, median {statistics.median(b) / statistics.median(a):.3f}")
    print(f"  start-up (whole process, cosim run virt-linux --until 1us): A {spread(starts['A'])}, "
          f"B {spread(starts['B'])}; B/A: min {min(starts['B']) / min(starts['A']):.3f}, "
          f"median {statistics.median(starts['B']) / statistics.median(starts['A']):.3f}")
    for key in "AB":
        sleeps = [float(x["sleep_wall"]) for x in boots[key] if "sleep_wall" in x]
        if sleeps:
            print(f"  {key} sleep 10: {spread(sleeps)} of wall time")
    ok_a = check("A", boots["A"], counting, reference=False)
    ok_b = check("B", boots["B"], counting, reference=True)
    return ok_a and ok_b


def versus_qemu(runs: int, counting: str, cpus: int = 1) -> bool:
    from cosim.images.fetch import busybox_initramfs_image, linux_kernel
    from cosim.platforms.virt import VirtLinux

    kernel, initrd = linux_kernel(), busybox_initramfs_image()
    bootargs = VirtLinux.properties()["bootargs"].default
    qemu, cosim, inproc, released = [], [], [], []
    qemu_sleep = cosim_sleep = None
    loads = []
    startup_in(ROOT)                  # writes this tree's bytecode cache, as an installed cosim has it
    for run in range(runs):
        last = run == runs - 1
        boot, slept = drive(QemuAarch64(kernel=kernel, initrd=initrd, append=bootargs, memory="256M", smp=cpus), last)
        qemu.append(boot)
        qemu_sleep = slept if last else qemu_sleep
        console = Console([sys.executable, __file__, "--cli", "run", "virt-linux", "-P", f"kernel={kernel}",
                           "-P", f"initrd={initrd}", "-P", f"counting={counting}", "-P", f"cpus={cpus}"],
                          env=tree_env(ROOT))
        boot, slept = drive(console, last)
        cosim.append(boot)
        cosim_sleep = slept if last else cosim_sleep
        inproc.append(boot_in(ROOT, counting, cpus))
        released.append(boot_in(ROOT, counting, cpus, unicorn="stock"))
        loads.append(os.getloadavg()[0])
    assert qemu_sleep is not None and cosim_sleep is not None
    print(f"Debian 12 arm64 Linux ({kernel.name}) on {cpus} CPU{'s' if cpus > 1 else ''} to a busybox shell, "
          f"whole processes, {runs} interleaved runs each "
          f"(1-minute load average {min(loads):.2f}-{max(loads):.2f})")
    print(f"  {'QEMU TCG (peer)':<42}{spread(qemu)}, sleep 10: {qemu_sleep:.2f} s")
    print(f"  {f'cosim virt-linux (unicorn, {counting})':<42}{spread(cosim)}, sleep 10: {cosim_sleep:.2f} s")
    print(f"  ratio cosim/QEMU: boot min {min(cosim) / min(qemu):.2f}x, median "
          f"{statistics.median(cosim) / statistics.median(qemu):.2f}x (goal <= 1x); "
          f"sleep 10 {cosim_sleep / qemu_sleep:.3f}x")
    walls = [float(b["wall"]) for b in inproc]
    n, sim = int(inproc[0]["instructions"]), float(inproc[0]["simulated"])
    library = "patched unicorn" if inproc[0]["patched"] else "released unicorn: patched one NOT BUILT"
    print(f"  cosim in-process ({library}): {spread(walls)} to the shell ({sim:.3f} s simulated, "
          f"{n / 1e6:.1f} M instructions, {n / statistics.median(walls) / 1e6:.0f} guest MIPS at the median)")
    stock = [float(b["wall"]) for b in released]
    print(f"  cosim in-process (released unicorn): {spread(stock)}; patched/released: min "
          f"{min(walls) / min(stock):.3f}, median {statistics.median(walls) / statistics.median(stock):.3f}")
    sleeps = [float(b["sleep_wall"]) for b in inproc]
    print(f"  cosim in-process: sleep 10 took {spread(sleeps)} of wall time for "
          f"{float(inproc[0]['sleep_simulated']):.3f} s simulated")
    # The reference figures are one CPU's; with several, every boot must still agree with the others.
    return check("determinism", inproc + released, counting, reference=cpus == 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--counting", choices=("block", "instruction"), default="block")
    parser.add_argument("--cpus", default="1,4", help="CPU counts to boot with, comma-separated (QEMU -smp, virt cpus=)")
    parser.add_argument("--against", metavar="REV", help="A/B in-process boots of this tree against git revision REV")
    parser.add_argument("--rev", metavar="REV", help="with --against: B is git revision REV instead of this tree")
    parser.add_argument("--boot-once", action="store_true", help=argparse.SUPPRESS)
    if sys.argv[1:2] == ["--cli"]:     # startup_in: the `cosim` command of the tree PYTHONPATH names
        use_tree_packages()
        from cosim.cli import main as cosim_main

        sys.exit(cosim_main(sys.argv[2:]))
    args = parser.parse_args()
    if args.boot_once:
        result = boot_once(args.counting, int(args.cpus))
        from cosim import patched_unicorn

        print(json.dumps({**result, "patched": patched_unicorn.in_use()}))
        return
    if args.against:
        ok = compare(args.against, args.rev, args.runs, args.counting)
    else:
        ok = all([versus_qemu(args.runs, args.counting, int(cpus)) for cpus in args.cpus.split(",")])
    if not ok:
        sys.exit("instruction counts or console output differ from the reference")


if __name__ == "__main__":
    main()
