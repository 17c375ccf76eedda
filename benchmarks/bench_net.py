"""Ping between two simulated machines: cosim's virt-cluster vs two QEMU (TCG) instances, in the same run.

    python benchmarks/bench_net.py [COUNT]

Both boot Debian's arm64 kernel and the busybox initramfs (virtio_net loaded,
eth0 given `cosim.ip=` by rcS) on two machines; machine 0 then runs
`ping -c COUNT -s SIZE 10.0.0.2` for two sizes. Reported: the round-trip times
ping prints (simulated time for cosim, where the switch has 50 us latency and
1 Gbit/s links; wall time for QEMU, whose guest clock follows the host's) and
the wall time the whole ping command took. QEMU's two instances are joined by
a socket netdev on 127.0.0.1 (`-netdev socket,listen=` / `connect=`).
"""

from __future__ import annotations

import re
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import Console, QemuAarch64  # noqa: E402

from cosim import SEC  # noqa: E402
from cosim.images.fetch import busybox_initramfs_image, linux_kernel  # noqa: E402
from cosim.images.initramfs import BANNER  # noqa: E402

PROMPT = "/root # "
SIZES = (56, 1400)
_SUMMARY = re.compile(r"round-trip min/avg/max = ([0-9.]+)/([0-9.]+)/([0-9.]+) ms")


def rtts(output: str) -> tuple[float, float, float]:
    match = _SUMMARY.search(output)
    if not match:
        raise RuntimeError(f"no ping summary in:\n{output[-600:]}")
    low, avg, high = (float(v) for v in match.groups())
    return low, avg, high


def _echo(frame: bytes, kind: int) -> tuple[int, int] | None:
    """(identifier, sequence) of an ICMP echo request (kind 8) or reply (kind 0) in an Ethernet frame."""
    if frame[12:14] != b"\x08\x00" or frame[23] != 1:
        return None
    icmp = 14 + (frame[14] & 0xF) * 4
    if frame[icmp] != kind:
        return None
    return int.from_bytes(frame[icmp + 4:icmp + 6], "big"), int.from_bytes(frame[icmp + 6:icmp + 8], "big")


def stamp_echoes(node) -> list[float]:
    """Wall-clock round trips of machine `node`'s pings, seen at its NIC: request sent to reply received."""
    port, nic = node.net.backend, node.net
    sent: dict[tuple[int, int], float] = {}
    trips: list[float] = []
    send, receive = port.send, nic.receive

    def sending(frame: bytes) -> None:
        key = _echo(frame, 8)
        if key is not None:
            sent[key] = time.perf_counter()
        send(frame)

    def receiving(frame: bytes) -> None:
        key = _echo(frame, 0)
        if key in sent:
            trips.append(time.perf_counter() - sent.pop(key))
        receive(frame)

    port.send = sending
    port.set_receiver(receiving)
    return trips


def cosim_pings(count: int) -> list[tuple[int, tuple[float, float, float], float, float, float]]:
    from cosim.platforms.cluster import VirtCluster

    cluster = VirtCluster(console="buffer")
    start = time.perf_counter()
    for console in cluster.consoles:
        console.run_until(BANNER, 20 * SEC, wall=600)
        console.run_until(PROMPT, 5 * SEC, start=console.output.find(BANNER.encode()), wall=600)
    print(f"  cosim: both machines at the shell after {time.perf_counter() - start:.1f} s wall "
          f"({cluster.sim.now / SEC:.2f} s simulated)")
    results = []
    n0 = cluster.consoles[0]
    trips = stamp_echoes(cluster.nodes[0])
    for size in SIZES:
        trips.clear()
        mark, sim0, wall0 = len(n0.output), cluster.sim.now, time.perf_counter()
        n0.feed(f"ping -c {count} -s {size} 10.0.0.2\n")
        out = n0.run_until("\n" + PROMPT, (count + 10) * SEC, start=mark, wall=600)
        wall_rtt = sum(trips) / len(trips) if trips else float("nan")
        results.append((size, rtts(out), wall_rtt, time.perf_counter() - wall0, (cluster.sim.now - sim0) / SEC))
    for console in cluster.consoles:
        console.feed("poweroff\n")
    cluster.run(until=cluster.sim.now + 10 * SEC)
    return results


def qemu_machine(kernel: Path, initrd: Path, index: int, netdev: str) -> Console:
    return QemuAarch64(kernel=kernel, initrd=initrd, append=f"console=ttyAMA0 cosim.ip=10.0.0.{index + 1}/24",
                       memory="256M", extra=("-netdev", f"socket,id=net0,{netdev}", "-device",
                                             f"virtio-net-device,netdev=net0,mac=52:54:00:12:34:{0x56 + index:02x}"))


def qemu_pings(kernel: Path, initrd: Path, count: int) -> list[tuple[int, tuple[float, float, float], float]]:
    with socket.socket() as probe:                 # a free port for the link
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener = qemu_machine(kernel, initrd, 0, f"listen=127.0.0.1:{port}")
    time.sleep(1.0)                                # the listening side first
    peer = qemu_machine(kernel, initrd, 1, f"connect=127.0.0.1:{port}")
    for console in (listener, peer):
        console.expect(BANNER.encode(), timeout=600)
        console.expect(PROMPT.encode())
    results = []
    for size in SIZES:
        wall0 = time.perf_counter()
        listener.send(f"ping -c {count} -s {size} 10.0.0.2\n".encode())
        listener.expect(b"\n" + PROMPT.encode(), timeout=count + 120)
        results.append((size, rtts(listener.before.decode(errors="replace")), time.perf_counter() - wall0))
    for console in (listener, peer):
        console.send(b"poweroff\n")
        console.close(timeout=30)
    return results


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    kernel, initrd = linux_kernel(), busybox_initramfs_image()
    print(f"ping -c {count} between two machines (Debian arm64 {kernel.name}, busybox ping)")
    ours = cosim_pings(count)
    theirs = qemu_pings(kernel, initrd, count)
    print("  RTT: as ping prints it (cosim: simulated time; QEMU: its guest clock, i.e. wall time); wall RTT:")
    print("  request out of the NIC to reply in, on the host's clock; ping -c: the whole command (1 s intervals)")
    print(f"  {'':<18}{'RTT min/avg/max (ms)':>24}{'wall RTT avg':>14}{'ping -c wall':>14}")
    for (size, rtt, wall_rtt, wall, simulated), (_, qemu_rtt, qemu_wall) in zip(ours, theirs):
        print(f"  {f'cosim, {size} B':<18}{'/'.join(f'{v:.3f}' for v in rtt):>24}{wall_rtt * 1e3:>11.1f} ms"
              f"{wall:>12.2f} s   ({simulated:.2f} s simulated)")
        print(f"  {f'QEMU TCG, {size} B':<18}{'/'.join(f'{v:.3f}' for v in qemu_rtt):>24}{qemu_rtt[1]:>11.1f} ms"
              f"{qemu_wall:>12.2f} s")


if __name__ == "__main__":
    main()
