"""The KVM Arm64 CPU on `virt`, measured against the software CPU (unicorn) in the same run.

    python benchmarks/bench_kvm_arm64.py

Needs an Arm64 Linux host with /dev/kvm (elsewhere it says why and exits 0).
Prints, for each backend:
- compute: a counted loop of 20 M instructions, in guest MIPS (wall clock);
- MMIO exit cost: 20 000 reads of the PL011 flag register, in µs per access;
- idle: 1000 timer interrupts of 1 ms with WFI in between, as simulated/wall
  time — on KVM with the WFx exit if the host kernel has it, and with the
  wall-clock fallback (`kvm_wfx=off`), which runs at about real time.
The ratios KVM / unicorn are printed beside each figure.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from cosim import SEC
from cosim.chardev import BufferBackend
from cosim.cpu.arm64.kvm_cpu import kvm_arm64_unavailable
from cosim.platforms.virt import Virt
from cosim.toolchain import assemble

GUESTS = Path(__file__).resolve().parents[1] / "tests" / "guests" / "arm64"
LOOP, READS = 10_000_000, 20_000

COMPUTE = f"""
.include "common.inc"
.global _start
_start:
    ldr x0, ={LOOP}
1:  subs x0, x0, #1             // 2 instructions per iteration
    b.ne 1b
    poweroff
"""
MMIO = f"""
.include "common.inc"
.global _start
_start:
    ldr x1, =UART_DR
    ldr x0, ={READS}
1:  ldr w2, [x1, #0x18]         // UARTFR: one MMIO exit each
    subs x0, x0, #1
    b.ne 1b
    poweroff
"""


def build(name: str, source: str | None, work: Path) -> Path:
    path = GUESTS / f"{name}.S"
    if source is not None:
        path = work / f"{name}.S"
        path.write_text(source.replace('.include "common.inc"', f'.include "{GUESTS / "common.inc"}"'))
    return assemble(path, "aarch64", 0, work).bin


def timed(image: Path, **props) -> tuple[float, Virt, object]:
    board = Virt(firmware=str(image), console=BufferBackend(), **props)
    wall = time.perf_counter()
    summary = board.run(until=10 * SEC)
    wall = time.perf_counter() - wall
    board.cpu0.backend.close()
    return wall, board, summary


def main() -> int:
    reason = kvm_arm64_unavailable()
    if reason:
        print(f"bench_kvm_arm64: skipped: {reason}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        compute, mmio, idle = build("compute", COMPUTE, work), build("mmio", MMIO, work), build("timer_wfi", None, work)
        rows = []
        for cpu in ("unicorn", "kvm"):
            wall, board, _ = timed(compute, cpu=cpu)
            mips = board.cpu0.instructions / wall / 1e6
            wall_io, _, _ = timed(mmio, cpu=cpu)
            idle_wall, board_idle, summary = timed(idle, cpu=cpu)
            rows.append((cpu, mips, wall_io / READS * 1e6, summary.sim_time / SEC / idle_wall,
                         getattr(board.cpu0.backend, "description", "")))
        fallback_wall, _, fallback = timed(idle, cpu="kvm", kvm_wfx="off")
    (_, u_mips, u_io, u_idle, _), (_, k_mips, k_io, k_idle, k_desc) = rows
    print(f"KVM backend: {k_desc}")
    print(f"compute        unicorn {u_mips:9.1f} MIPS   kvm {k_mips:9.1f} MIPS   kvm/unicorn {k_mips / u_mips:6.1f}x")
    print(f"MMIO access    unicorn {u_io:9.2f} µs     kvm {k_io:9.2f} µs     kvm/unicorn {k_io / u_io:6.2f}x")
    print(f"idle 1000x1ms  unicorn {u_idle:9.1f}x real kvm {k_idle:9.1f}x real kvm/unicorn {k_idle / u_idle:6.2f}x")
    print(f"idle, fallback kvm_wfx=off: {fallback.sim_time / SEC / fallback_wall:.2f}x real time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
