"""Networks between simulated machines, and to the host.

This package owns what lies between NICs: the `NetBackend` interface a network
interface model (cosim.virtio's virtio-net) sends frames into, the simulated
Ethernet `Switch` (ports, MAC learning, latency and bandwidth in simulated time,
pcap capture), the host `TapBackend`, and `Cluster`, which puts several machines
in one simulation and decides when their run ends. docs/networking.md is the
user's page.
"""

from ._backend import NetBackend, mac_text, parse_mac, parse_nic
from ._open import open_nic
from .cluster import Cluster
from .pcap import PcapWriter, read_pcap
from .switch import Switch, SwitchPort, parse_bandwidth, switch_named
from .tap import TapBackend, tap_unavailable

__all__ = ["NetBackend", "Switch", "SwitchPort", "TapBackend", "Cluster", "PcapWriter", "read_pcap",
           "parse_bandwidth", "switch_named", "parse_mac", "mac_text", "parse_nic", "open_nic", "tap_unavailable"]
