"""A simulated Ethernet switch: ports, MAC learning, latency and bandwidth in simulated time.

Every port is a full-duplex link to the switch. A frame entering at time t
leaves towards each destination port once that port's egress is free: it is
serialised for L * 8 / bandwidth and arrives `latency` later, so an idle link
delivers a frame of L bytes at t + latency + L * 8 / bandwidth. Frames queue
behind each other on a busy egress (no loss, no reordering). Each frame in
flight is one scheduled event; nothing polls. Destinations come from the
source addresses seen so far (MAC learning, as an IEEE 802.1D bridge): a
known unicast destination gets the frame on its port only, broadcast,
multicast and unknown destinations are flooded to every other port, and a
frame for the port it came from is filtered. Events at equal times run in the
order they were scheduled, so a run repeats exactly.
"""

from __future__ import annotations

import re
import weakref
from functools import partial
from pathlib import Path

from .._errors import PlatformError, SimulationError
from .._kernel import Simulation
from .._time import SEC, US, format_time, parse_time
from ._backend import ETH_HEADER, ETH_MAX_FRAME, FrameReceiver
from .pcap import PcapWriter

__all__ = ["Switch", "SwitchPort", "parse_bandwidth", "switch_named"]

_BANDWIDTH_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmg]?)(?:bit/s|bps|bit)?\s*$", re.IGNORECASE)


def parse_bandwidth(text: str | int) -> int:
    """'1G', '100M', '10 Mbit/s', 1_000_000 -> bits per second (a positive whole number)."""
    if isinstance(text, int):
        value = text
    else:
        match = _BANDWIDTH_RE.match(text)
        if not match:
            raise PlatformError(f"cannot read {text!r} as a bandwidth (expected e.g. 1G, 100M, 10Mbit/s)")
        number, unit = match.groups()
        value = round(float(number) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[unit.lower()])
    if value <= 0:
        raise PlatformError(f"a bandwidth must be positive, not {text!r}")
    return value


class SwitchPort:
    """One port of a `Switch`: the `NetBackend` a NIC sends into and receives from."""

    def __init__(self, switch: "Switch", index: int, name: str) -> None:
        self.switch = switch
        self.index = index
        self.name = name
        self.busy_until = 0          # when this port's egress link finishes its last frame
        self.received = 0            # frames delivered to the NIC
        self.dropped = 0             # frames that arrived with no NIC listening
        self._receiver: FrameReceiver | None = None

    def attach(self, sim: Simulation) -> None:
        self.switch.attach(sim)

    def set_receiver(self, receiver: FrameReceiver) -> None:
        self._receiver = receiver

    def send(self, frame: bytes) -> None:
        self.switch.ingress(self, bytes(frame))

    def deliver(self, frame: bytes) -> None:
        if self._receiver is None:
            self.dropped += 1
            return
        self.received += 1
        self._receiver(frame)

    def __repr__(self) -> str:
        return f"SwitchPort({self.switch.name!r}, {self.name!r})"


class Switch:
    """An Ethernet switch between NICs of machines in one simulation.

    Properties (attributes; a change applies to frames sent afterwards):
      latency: ps from the end of a frame's serialisation to its arrival (default 50 us).
      bandwidth: bits per second of every link (default 1 Gbit/s).
      learning: True: learn source MACs and forward known unicast to one port; False: a hub.
      pcap: a file every frame entering the switch is written to (with its simulated time), or None.
    """

    def __init__(self, name: str = "switch0", *, latency: int | str = 50 * US, bandwidth: int | str = 10**9,
                 learning: bool = True, pcap: str | Path | None = None) -> None:
        self.name = name
        self.latency = parse_time(latency) if isinstance(latency, str) else latency
        if not isinstance(self.latency, int) or self.latency < 0:
            raise PlatformError(f"switch {name!r}: latency must be a whole, non-negative number of ps, not {latency!r}")
        self.bandwidth = parse_bandwidth(bandwidth)
        self.learning = learning
        self.ports: list[SwitchPort] = []
        self.table: dict[bytes, SwitchPort] = {}      # learned: source MAC -> the port it was seen on
        self.pcap = PcapWriter(pcap) if pcap else None
        self.forwarded = self.flooded = self.filtered = self.malformed = 0
        self._sim: Simulation | None = None

    def port(self, name: str | None = None) -> SwitchPort:
        """A new port (named `port<N>` unless given)."""
        port = SwitchPort(self, len(self.ports), name or f"port{len(self.ports)}")
        self.ports.append(port)
        return port

    def attach(self, sim: Simulation) -> None:
        if self._sim is sim:
            return
        if self._sim is not None:
            raise PlatformError(f"switch {self.name!r} is already in another simulation: machines on one switch "
                                f"share one Simulation")
        self._sim = sim
        sim.add_summary(self.summary)
        if self.pcap is not None:
            sim.add_finalizer(self.pcap.close)

    def serialisation(self, length: int) -> int:
        """ps a frame of `length` bytes takes on a link: rounded up, so no frame takes no time."""
        return -(-length * 8 * SEC // self.bandwidth)

    def ingress(self, source: SwitchPort, frame: bytes) -> None:
        sim = self._sim
        if sim is None:
            raise SimulationError(f"switch {self.name!r}: a frame was sent before the switch joined a simulation")
        if not ETH_HEADER <= len(frame) <= ETH_MAX_FRAME:
            self.malformed += 1          # a runt or giant: no Ethernet frame, nothing to forward
            return
        if self.pcap is not None:
            self.pcap.write(sim.now, frame)
        destination, origin = frame[:6], frame[6:12]
        if self.learning and not origin[0] & 1:
            self.table[origin] = source
        known = self.table.get(destination) if self.learning and not destination[0] & 1 else None
        if known is source:
            self.filtered += 1
            return
        if known is not None:
            self.forwarded += 1
            self._transmit(sim, known, frame)
            return
        self.flooded += 1
        for port in self.ports:
            if port is not source:
                self._transmit(sim, port, frame)

    def _transmit(self, sim: Simulation, port: SwitchPort, frame: bytes) -> None:
        start = max(sim.now, port.busy_until)
        port.busy_until = start + self.serialisation(len(frame))
        sim.schedule(port.busy_until + self.latency - sim.now, partial(port.deliver, frame))

    def summary(self) -> dict[str, str]:
        dropped = sum(p.dropped for p in self.ports)
        return {f"{self.name} frames": f"{self.forwarded} forwarded, {self.flooded} flooded, {self.filtered} filtered, "
                                       f"{self.malformed} malformed, {dropped} to no NIC",
                f"{self.name} link": f"{self.bandwidth / 1e6:g} Mbit/s, latency {format_time(self.latency)}"}


_SWITCHES: "weakref.WeakKeyDictionary[Simulation, dict[str, Switch]]" = weakref.WeakKeyDictionary()


def switch_named(sim: Simulation, name: str, **props: object) -> Switch:
    """The switch called `name` in `sim`, made (with `props`) the first time a machine asks for it:
    how `nic=switch:NAME` puts the machines of one simulation on one network."""
    switches = _SWITCHES.setdefault(sim, {})
    if name not in switches:
        switch = Switch(name, **props)  # type: ignore[arg-type]
        switch.attach(sim)
        switches[name] = switch
    elif props:
        raise PlatformError(f"switch {name!r} already exists in this simulation: give its properties once")
    return switches[name]
