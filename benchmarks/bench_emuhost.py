"""The seed's WFx exit against the fallback, on a real Arm64 KVM: inside the emulated Arm64 host.

    python benchmarks/bench_emuhost.py               # boots the emulated host once per L1 kernel
    python benchmarks/bench_emuhost.py --inside      # what runs inside (an Arm64 host with /dev/kvm)

For each L1 kernel (`stock`: no WFx exit; `seed-wfx`: our port of the seed's
patch), in the same emulated host, side by side:
- WFI idle: 1000 timer interrupts of 1 ms with WFI between them (timer_wfi.S):
  the round trip per interrupt and simulated/wall time, with the WFx exit where
  the kernel has it and with the fallback (`kvm_wfx=off`);
- Debian's Linux on `virt-linux --cpu kvm`: boot to the shell, then `sleep 10`;
- the PMU budget's overshoot (skid): guest instructions retired past the
  budget at each quantum the PMU ended (a counted loop, 100 µs quanta).
Times inside are the emulated host's own clock (with -icount it runs several
times slower than real time; the outer run prints the real time of each stage).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOOP = 2_000_000


def inside() -> int:
    from cosim import SEC, US
    from cosim.chardev import BufferBackend
    from cosim.cpu import BUDGET_SPENT
    from cosim.cpu.arm64.kvm_cpu import kvm_arm64_unavailable
    from cosim.images.fetch import busybox_initramfs_image, linux_kernel
    from cosim.platforms.virt import Virt, VirtLinux
    from cosim.toolchain import assemble

    sys.path.insert(0, str(ROOT / "tests" / "platforms"))
    import linux_shell

    reason = kvm_arm64_unavailable()
    if reason:
        print(f"bench_emuhost: {reason}")
        return 1
    guests = ROOT / "tests" / "guests" / "arm64"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        idle = assemble(guests / "timer_wfi.S", "aarch64", 0, work).bin
        loop = work / "loop.S"
        loop.write_text(f'.include "{guests / "common.inc"}"\n.global _start\n_start:\n    ldr x0, ={LOOP}\n'
                        "1:  subs x0, x0, #1\n    b.ne 1b\n    poweroff\n")
        compute = assemble(loop, "aarch64", 0, work).bin
        board = Virt(firmware=str(idle), console=BufferBackend(), cpu="kvm")
        print(f"BENCH backend: {board.cpu0.backend.description}")
        wfx = board.cpu0.backend.features.wfx_exit
        board.cpu0.backend.close()
        for mode in (["wfx"] if wfx else []) + ["fallback"]:
            props = {} if mode == "wfx" else {"kvm_wfx": "off"}
            board = Virt(firmware=str(idle), console=BufferBackend(), cpu="kvm", **props)
            wall = time.perf_counter()
            summary = board.run(until=5 * SEC)
            wall = time.perf_counter() - wall
            ticks = board.ram.read(0x0020_0000, 8)
            print(f"BENCH idle {mode}: {ticks} ticks, {wall / max(ticks, 1) * 1e6:.0f} us per interrupt round trip, "
                  f"simulated/wall {summary.sim_time / SEC / wall:.2f}, idle skipped {board.cpu0.idle_skipped / SEC:.3f} s")
            board.cpu0.backend.close()

        board = Virt(firmware=str(compute), console=BufferBackend(), cpu="kvm", quantum=100 * US)
        backend, skids, short = board.cpu0.backend, [], [0]
        run = backend.run

        def measured(keeper):
            result = run(keeper)
            if result.reason is BUDGET_SPENT:
                over = result.instructions - keeper.budget // backend.period
                if over >= 0:
                    skids.append(over)
                else:
                    short[0] += 1          # ended by the fallback's wall-clock guard, not the PMU
            return result

        backend.run = measured
        board.run(until=5 * SEC)
        if backend.source.name == "pmu" and skids:
            print(f"BENCH pmu skid: {len(skids)} quanta of {100 * US // backend.period} instructions: overshoot "
                  f"median {statistics.median(skids):.0f}, max {max(skids)}, min {min(skids)} instructions"
                  f" ({short[0]} more quanta ended by the wall-clock guard)")
        elif backend.source.name == "pmu":
            print(f"BENCH pmu skid: no quantum ended by the PMU ({short[0]} ended first by the wall-clock guard)")
        else:
            print(f"BENCH pmu skid: budget source is {backend.source.name}, not the PMU")
        backend.close()

        console = BufferBackend()
        board = VirtLinux(kernel=str(linux_kernel()), initrd=str(busybox_initramfs_image()), console=console,
                          cpu="kvm")
        wall = time.perf_counter()
        linux_shell.boot_to_shell(board, console, 60 * SEC, 20 * SEC, wall_limit=600)
        boot_wall, boot_sim = time.perf_counter() - wall, board.sim.now
        wall = time.perf_counter()
        linux_shell.command(board, console, "sleep 10", 30 * SEC, wall_limit=600)
        sleep_wall, sleep_sim = time.perf_counter() - wall, board.sim.now - boot_sim
        print(f"BENCH linux kvm: boot to shell {boot_wall:.1f} s wall ({boot_sim / SEC:.2f} s simulated); "
              f"sleep 10: {sleep_wall:.1f} s wall ({sleep_sim / SEC:.2f} s simulated)")
    return 0


def outside() -> int:
    from cosim.emuhost import EmulatedHost, host_kernel, qemu_unavailable
    from cosim.emuhost.host import KERNELS

    reason = qemu_unavailable()
    if reason:
        print(f"bench_emuhost: skipped: {reason}")
        return 0
    for kernel in KERNELS:
        began = time.perf_counter()
        image = host_kernel(kernel)
        result = EmulatedHost(image).script(["benchmarks/bench_emuhost.py", "--inside"], timeout=1800)
        print(f"== {kernel} kernel ({time.perf_counter() - began:.0f} s real in all; "
              + ", ".join(f"{k} {v:.1f} s" for k, v in result.stages.items()) + ")")
        for line in result.console.splitlines():
            if line.startswith("BENCH ") or "Error" in line:
                print("  " + line.removeprefix("BENCH "))
        if result.status != 0:
            print(f"  (exit status {result.status}; console ends:)\n{result.console[-1500:]}")
    return 0


if __name__ == "__main__":
    sys.exit(inside() if "--inside" in sys.argv[1:] else outside())
