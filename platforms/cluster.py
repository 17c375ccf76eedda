"""`virt-cluster`: N `virt-linux` machines on one simulated Ethernet switch, in one simulation.

Machine i is named n<i>, has the MAC 52:54:00:12:34:(56 + i) and the address
SUBNET + 1 + i (10.0.0.1, 10.0.0.2, ... by default), which its initramfs sets
on eth0 from the kernel command line (`cosim.ip=`). Each machine's console
output goes to stdout line by line, prefixed with `[n<i>] ` (or to a buffer,
for Python). The run ends when every machine has powered off, when the
`primary` one has, or at once when one fails (cosim.net.Cluster);
docs/networking.md is the user's page.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from cosim import Platform, PlatformError, Property, Simulation, Summary, US, format_time, one_of, parse_time
from cosim.chardev import BufferBackend, CharBackend, LineBackend, NullBackend
from cosim.net import Cluster, Switch, parse_bandwidth, switch_named

from .virt import VirtLinux

__all__ = ["VirtCluster"]


def _parse_machines(text: str) -> int:
    count = int(text, 0)
    if not 1 <= count <= 200:
        raise ValueError("use 1 to 200 machines")
    return count


def _parse_subnet(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text.strip(), strict=True)


class VirtCluster(Platform):
    """N virt-linux machines on one simulated switch (see the module docstring)."""

    name = "virt-cluster"
    summary = "several virt-linux machines on a simulated Ethernet switch, in one deterministic simulation"
    machines = Property(2, "number of machines (n0, n1, ...)", _parse_machines)
    latency = Property(50 * US, "switch latency (one way, after a frame's serialisation)", parse_time, format_time)
    bandwidth = Property(10**9, "bandwidth of every link, bits/s (1G, 100M, ...)", parse_bandwidth,
                         lambda v: f"{v / 1e6:g}M")
    pcap = Property("none", "capture every frame entering the switch into this pcap file ('none': no capture)")
    subnet = Property(ipaddress.IPv4Network("10.0.0.0/24"), "the machines' IPv4 network: machine i gets host 1 + i",
                      _parse_subnet)
    console = Property("lines", "each machine's console: lines (stdout, each line prefixed [n<i>]), buffer or none",
                       one_of("lines", "buffer", "none"))
    primary = Property("none", "the machine whose poweroff ends the run ('none': the run ends when all have)")
    quantum = Property(50 * US, "each CPU's quantum; at most the latency keeps frames exactly in time order",
                       parse_time, format_time)

    def __init__(self, sim: Simulation | None = None, **props: Any) -> None:
        self.nodes: list[VirtLinux] = []
        self.consoles: list[CharBackend] = []
        super().__init__(sim, **props)

    def build(self) -> None:
        hosts = self.subnet.num_addresses - 2
        if self.machines > hosts:
            raise PlatformError(f"subnet {self.subnet} has room for {hosts} machines, not {self.machines}")
        names = [f"n{i}" for i in range(self.machines)]
        if self.primary not in ("none", *names):
            raise PlatformError(f"primary {self.primary!r} is not one of the machines {', '.join(names)}")
        self.cluster = Cluster(self.sim, primary=None if self.primary == "none" else self.primary)
        self.switch: Switch = switch_named(self.sim, "lan", latency=self.latency, bandwidth=self.bandwidth,
                                           pcap=None if self.pcap == "none" else self.pcap)
        base = VirtLinux.bootargs.default
        for i, name in enumerate(names):
            console: CharBackend = {"lines": lambda: LineBackend(prefix=f"[{name}] "), "buffer": BufferBackend,
                                    "none": NullBackend}[self.console]()
            address = f"{self.subnet.network_address + 1 + i}/{self.subnet.prefixlen}"
            node = self.cluster.add(name, VirtLinux, console=console, nic="switch:lan", mac=f"52:54:00:12:34:{0x56 + i:02x}",
                                    bootargs=f"{base} cosim.ip={address}", quantum=self.quantum)
            self.nodes.append(node)
            self.consoles.append(console)

    def address(self, index: int) -> str:
        """Machine `index`'s IPv4 address."""
        return str(self.subnet.network_address + 1 + index)

    def run(self, until: int | str | None = None) -> Summary:
        return self.cluster.run(until)

    def describe(self) -> str:
        lines = [f"platform {self.name}: {self.machines} x virt-linux on switch lan "
                 f"({self.bandwidth / 1e6:g} Mbit/s, latency {format_time(self.latency)})"]
        for i, node in enumerate(self.nodes):
            lines.append(f"\nmachine n{i}: {self.address(i)}, MAC {node.mac}\n" + node.describe())
        return "\n".join(lines)
