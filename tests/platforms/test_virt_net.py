"""End to end: Linux machines on the simulated switch ping each other; the host pings a guest through a TAP."""

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from cosim import MS, SEC
from cosim.chardev import BufferBackend
from cosim.images.initramfs import BANNER
from cosim.net import read_pcap, tap_unavailable

from .linux_shell import boot_to_shell, command, images  # noqa: F401  (images: a fixture)

pytestmark = pytest.mark.slow


class Node:
    """One machine of a cluster as linux_shell's helpers see a board: the shared simulation, its console."""

    def __init__(self, cluster, index):
        self.sim, self.run = cluster.sim, cluster.run
        self.console = cluster.consoles[index]


def ping_session(images, pcap):
    """Two machines boot, ping each other, power off; returns what a rerun must repeat exactly."""
    from cosim.platforms.cluster import VirtCluster

    cluster = VirtCluster(console="buffer", pcap=str(pcap))
    n0, n1 = Node(cluster, 0), Node(cluster, 1)
    for node in (n0, n1):
        boot_to_shell(node, node.console, 10 * SEC, 5 * SEC)
    there = command(n0, n0.console, "ping -c 3 10.0.0.2")
    back = command(n1, n1.console, "ping -c 2 -s 1000 10.0.0.1")
    n0.console.feed("poweroff\n")
    n1.console.feed("poweroff\n")
    summary = cluster.run(until=cluster.sim.now + 10 * SEC)
    return there, back, summary


def test_two_machines_ping_each_other_deterministically(images, tmp_path):
    first = ping_session(images, tmp_path / "a.pcap")
    there, back, summary = first
    assert "3 packets transmitted, 3 packets received, 0% packet loss" in there
    assert "2 packets transmitted, 2 packets received, 0% packet loss" in back
    assert summary.status == 0 and summary.stop.reason.startswith("all 2 machines stopped")
    # RTT: two crossings of the 50 us switch plus serialisation and the guests' own work.
    rtts = [float(t) for t in re.findall(r"time=([0-9.]+) ms", there)]
    assert len(rtts) == 3 and all(0.1 < t < 5 for t in rtts)
    frames = read_pcap(tmp_path / "a.pcap")
    assert any(f[12:14] == b"\x08\x06" for _, f in frames)                  # ARP
    assert sum(f[12:14] == b"\x08\x00" and f[23] == 1 for _, f in frames) >= 10   # ICMP both ways

    second = ping_session(images, tmp_path / "b.pcap")
    assert second[:2] == first[:2]                                          # the same output, times included
    assert second[2].stop == first[2].stop
    assert (tmp_path / "b.pcap").read_bytes() == (tmp_path / "a.pcap").read_bytes()
    if shutil.which("tcpdump"):
        out = subprocess.run(["tcpdump", "-nn", "-r", str(tmp_path / "a.pcap"), "icmp"], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0 and "10.0.0.1 > 10.0.0.2: ICMP echo request" in out.stdout


TAP_UNAVAILABLE = tap_unavailable(("ip", "ping"))


@pytest.fixture
def namespace():
    name = f"cosim-net-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.skipif(TAP_UNAVAILABLE is not None, reason=str(TAP_UNAVAILABLE))
def test_the_host_pings_a_guest_through_a_tap_in_a_namespace(images, namespace):
    from cosim.platforms.virt import VirtLinux

    tap = f"ctap{os.getpid() % 100000}"
    console = BufferBackend()
    board = VirtLinux(console=console, nic=f"tap:{tap}",
                      bootargs=f"{VirtLinux.bootargs.default} cosim.ip=10.213.0.2/24")
    # The TAP moves into the test's own namespace (its descriptor stays ours): nothing reaches the host's network.
    netns = ["ip", "netns", "exec", namespace]
    subprocess.run(["ip", "link", "set", tap, "netns", namespace], check=True)
    subprocess.run([*netns, "ip", "addr", "add", "10.213.0.1/24", "dev", tap], check=True)
    subprocess.run([*netns, "ip", "link", "set", tap, "up"], check=True)
    boot_to_shell(board, console, 10 * SEC, 5 * SEC)
    ping = subprocess.Popen([*netns, "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.213.0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while ping.poll() is None and time.monotonic() < deadline:
        board.run(until=board.sim.now + 10 * MS)
    if ping.poll() is None:
        ping.kill()
    out = ping.communicate()[0]
    assert ping.returncode == 0 and "3 received" in out, out
    frames = board.net.rx_packets
    assert frames >= 3 and board.net.tx_packets >= 3
    console.feed("poweroff\n")
    summary = board.run(until=board.sim.now + 10 * SEC)
    assert summary.status == 0 and "SYSTEM_OFF" in summary.stop.reason


def test_cosim_run_virt_cluster_prefixes_each_machines_console(images):
    run = subprocess.run([sys.executable, "-m", "cosim", "run", "virt-cluster", "-P", "machines=2", "--until", "2.5s"],
                         capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr[-2000:]
    for name in ("n0", "n1"):
        assert f"[{name}] {BANNER}" in run.stdout
    assert "lan frames" in run.stderr and "n1 net0 (52:54:00:12:34:57)" in run.stderr


def test_the_python_example_of_docs_networking_runs(images):
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "networking.md").read_text()
    namespace: dict = {}
    exec(compile("\n".join(re.findall(r"```python\n(.*?)```", page, re.S)), "networking.md", "exec"), namespace)
    assert "3 packets transmitted, 3 packets received" in namespace["n0"].text
    assert namespace["summary"].status == 0
