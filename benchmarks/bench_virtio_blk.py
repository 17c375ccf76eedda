"""virtio-blk throughput inside Debian's arm64 Linux: cosim's virt-linux vs QEMU (TCG), in the same run.

    python benchmarks/bench_virtio_blk.py [MiB]

Both boot the same kernel and initramfs with the same raw disk image (a copy
each) on a virtio-mmio transport (QEMU: `-device virtio-blk-device`), driven
over the serial console as separate processes. In the guest, `dd` writes MiB
megabytes to /dev/vda (conv=fsync: through to the image) and, after dropping
the page cache, reads them back; each is timed on the wall clock from the
command being typed to the next prompt. cosim is also measured in-process for
the same transfers in simulated time (requests complete at once in the
model, so that time is the guest's own work).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Console, QemuAarch64, cosim_env, warm_cosim  # noqa: E402

from cosim import SEC  # noqa: E402
from cosim.chardev import BufferBackend  # noqa: E402
from cosim.images.fetch import busybox_initramfs_image, linux_kernel  # noqa: E402
from cosim.images.initramfs import BANNER  # noqa: E402

PROMPT = b"/root # "


def commands(mib: int) -> dict[str, str]:
    return {"write": f"dd if=/dev/zero of=/dev/vda bs=1M count={mib} conv=fsync",
            "read": f"sync; echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda of=/dev/null bs=1M count={mib}"}


def drive(console: Console, mib: int) -> dict[str, float]:
    """Wall seconds of each transfer, from typing the command to the prompt after it."""
    console.expect(BANNER.encode(), timeout=600)
    console.expect(PROMPT)
    seconds = {}
    for name, text in commands(mib).items():
        before = time.perf_counter()
        console.send(text.encode() + b"\n")
        console.expect(b"records out", timeout=600)
        console.expect(PROMPT, timeout=600)
        seconds[name] = time.perf_counter() - before
    console.send(b"poweroff\n")
    console.close(timeout=60)
    return seconds


def in_process(kernel: Path, initrd: Path, image: Path, mib: int) -> dict[str, tuple[float, float]]:
    """(wall, simulated) seconds of each transfer, cosim in this process."""
    from cosim.platforms.virt import VirtLinux

    console = BufferBackend()
    board = VirtLinux(kernel=str(kernel), initrd=str(initrd), console=console, drive=str(image))
    try:
        console.run_until(BANNER, 20 * SEC)
        console.run_until(PROMPT.decode(), 5 * SEC, start=console.output.find(BANNER.encode()))
        figures = {}
        for name, text in commands(mib).items():
            sim0, wall0, mark = board.sim.now, time.perf_counter(), len(console.output)
            console.feed(text + "\n")
            console.run_until("\n" + PROMPT.decode(), 600 * SEC, start=mark)
            figures[name] = (time.perf_counter() - wall0, (board.sim.now - sim0) / SEC)
        return figures
    finally:
        board.sim.close()


def main() -> None:
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    kernel, initrd = linux_kernel(), busybox_initramfs_image()
    with tempfile.TemporaryDirectory(prefix="bench-virtio-blk-") as work:
        images = [Path(work) / f"{who}.img" for who in ("qemu", "cosim", "inproc")]
        with images[0].open("wb") as f:
            f.truncate((mib + 1) << 20)
        for copy in images[1:]:
            shutil.copyfile(images[0], copy)
        qemu = drive(QemuAarch64(kernel=kernel, initrd=initrd, append="console=ttyAMA0", memory="256M",
                                 extra=("-drive", f"file={images[0]},format=raw,if=none,id=d0",
                                        "-device", "virtio-blk-device,drive=d0")), mib)
        warm_cosim()
        cosim = drive(Console([sys.executable, "-m", "cosim", "run", "virt-linux", "-P", f"kernel={kernel}",
                               "-P", f"initrd={initrd}", "-P", f"drive={images[1]}"], env=cosim_env()), mib)
        inproc = in_process(kernel, initrd, images[2], mib)
    print(f"virtio-blk: dd of {mib} MiB in Debian 12 arm64 Linux ({kernel.name}), MB/s of wall time "
          f"(whole processes; read after dropping the page cache, write with conv=fsync)")
    print(f"  {'':<22}{'write':>10}{'read':>10}")
    rate = {who: {k: mib * (1 << 20) / 1e6 / v for k, v in figures.items()} for who, figures in
            (("qemu", qemu), ("cosim", cosim))}
    print(f"  {'QEMU TCG (peer)':<22}{rate['qemu']['write']:>10.1f}{rate['qemu']['read']:>10.1f}")
    print(f"  {'cosim virt (unicorn)':<22}{rate['cosim']['write']:>10.1f}{rate['cosim']['read']:>10.1f}")
    print(f"  ratio cosim/QEMU: write {rate['cosim']['write'] / rate['qemu']['write']:.2f}x, "
          f"read {rate['cosim']['read'] / rate['qemu']['read']:.2f}x (higher is faster)")
    for name, (wall, simulated) in inproc.items():
        print(f"  cosim in-process {name}: {mib * (1 << 20) / 1e6 / wall:.1f} MB/s wall, "
              f"{mib * (1 << 20) / 1e6 / simulated:.1f} MB/s simulated ({wall:.2f} s wall, {simulated:.3f} s simulated)")


if __name__ == "__main__":
    main()
