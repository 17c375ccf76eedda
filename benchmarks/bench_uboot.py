"""U-Boot on cosim's virt vs QEMU (TCG), measured in the same run.

    python benchmarks/bench_uboot.py

Both boot Debian's U-Boot 2023.01 as separate processes driven over the
serial console: time to the `=>` prompt (a key stops autoboot at "Hit any
key", as a user would), then `sleep 3`. cosim is also measured in-process,
without interpreter start-up, for its guest MIPS and simulated/wall ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Console, QemuAarch64, cosim_env, warm_cosim  # noqa: E402

from cosim import SEC  # noqa: E402
from cosim.chardev import BufferBackend  # noqa: E402
from cosim.images.fetch import uboot_image  # noqa: E402


def drive(console: Console) -> tuple[float, float]:
    console.expect(b"Hit any key")
    console.send(b"\n")
    prompt = console.expect(b"=> ")
    console.send(b"sleep 3\n")
    console.expect(b"sleep 3")
    before = time.perf_counter() - console.start
    done = console.expect(b"=> ")
    console.send(b"poweroff\n")
    console.close()
    return prompt, done - before


def in_process(firmware: Path) -> None:
    from cosim.platforms.virt import Virt

    start = time.perf_counter()
    console = BufferBackend()
    board = Virt(firmware=str(firmware), console=console)
    console.run_until("Hit any key", 10 * SEC)
    console.feed("\n")
    console.run_until("=> ", 5 * SEC, start=len(console.output) - 1)
    boot = time.perf_counter() - start
    instructions = board.cpu0.instructions
    sim0, wall0 = board.sim.now, time.perf_counter()
    mark = len(console.output)
    console.feed("sleep 3\n")
    console.run_until("\n=> ", 10 * SEC, start=mark)
    sleep_wall, sleep_sim = time.perf_counter() - wall0, (board.sim.now - sim0) / SEC
    print(f"  cosim in-process: boot to prompt {boot:.3f} s, {instructions / boot / 1e6:.0f} guest MIPS over the boot")
    print(f"  cosim in-process: sleep 3 took {sleep_wall:.3f} s wall for {sleep_sim:.3f} s simulated "
          f"(simulated/wall {sleep_sim / sleep_wall:.1f}x)")


def main() -> None:
    firmware = uboot_image()
    qemu_boot, qemu_sleep = drive(QemuAarch64(bios=firmware))
    warm_cosim()
    cosim = Console([sys.executable, "-m", "cosim", "run", "virt", "-P", f"firmware={firmware}"], env=cosim_env())
    cosim_boot, cosim_sleep = drive(cosim)
    print("U-Boot 2023.01 to its prompt, then `sleep 3` (wall seconds, whole processes)")
    print(f"  {'':<22}{'boot to =>':>12}{'sleep 3':>10}")
    print(f"  {'QEMU TCG (peer)':<22}{qemu_boot:>12.3f}{qemu_sleep:>10.3f}")
    print(f"  {'cosim virt (unicorn)':<22}{cosim_boot:>12.3f}{cosim_sleep:>10.3f}")
    print(f"  ratio cosim/QEMU: boot {cosim_boot / qemu_boot:.2f}x (goal <= 2x), sleep {cosim_sleep / qemu_sleep:.2f}x (goal < 1x)")
    in_process(firmware)


if __name__ == "__main__":
    main()
