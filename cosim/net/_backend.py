"""What a network interface model sees of the network: frames out, a receiver for frames in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .._kernel import Simulation

__all__ = ["NetBackend", "FrameReceiver", "ETH_HEADER", "ETH_MAX_FRAME", "mac_text", "parse_mac", "parse_nic"]

FrameReceiver = Callable[[bytes], None]
ETH_HEADER = 14                 # destination MAC, source MAC, EtherType
ETH_MAX_FRAME = 65535           # the largest frame carried (a 64 KiB GSO-less jumbo at most)


class NetBackend(Protocol):
    """A NIC's side of a link: a switch port (`Switch.port`) or a host TAP (`TapBackend`).

    `send(frame)` takes an Ethernet frame without FCS; frames for the NIC are handed to the
    receiver from inside the simulation (an event), never from another thread.
    """

    def attach(self, sim: Simulation) -> None: ...

    def set_receiver(self, receiver: FrameReceiver) -> None: ...

    def send(self, frame: bytes) -> None: ...


def parse_mac(text: str) -> bytes:
    """'52:54:00:12:34:56' -> 6 bytes; ValueError for anything else (or a multicast address)."""
    parts = text.strip().split(":")
    try:
        if len(parts) != 6 or any(len(p) != 2 for p in parts):
            raise ValueError
        mac = bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r} is not a MAC address (expected six hex pairs: 52:54:00:12:34:56)") from None
    if mac[0] & 1:
        raise ValueError(f"{text!r} is a multicast address: a NIC needs a unicast one")
    return mac


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def parse_nic(text: str) -> str | None:
    """A platform's `nic` property: none, switch:NAME or tap:NAME -> the spec (None for none)."""
    spec = text.strip()
    kind, sep, name = spec.partition(":")
    if spec.lower() == "none":
        return None
    if kind in ("switch", "tap") and sep and name:
        return spec
    raise ValueError(f"nic expects none, switch:NAME (a simulated switch the machines of one simulation share) "
                     f"or tap:NAME (a host TAP interface), not {text!r}")
