"""A platform's `nic` property turned into a network back-end."""

from __future__ import annotations

from .._kernel import Simulation
from ._backend import NetBackend
from .switch import switch_named
from .tap import TapBackend

__all__ = ["open_nic"]


def open_nic(spec: str, sim: Simulation) -> NetBackend:
    """`switch:NAME` (a port of `sim`'s switch NAME) or `tap:NAME` (the host TAP NAME); the NIC attaches it."""
    kind, _, name = spec.partition(":")
    return switch_named(sim, name).port() if kind == "switch" else TapBackend(name)
