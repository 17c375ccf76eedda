"""The device base class: a plain object with offsets, ports and a clock.

A device never knows who calls it.  The bus calls `read`/`write` with offsets;
the platform (or the test kit) gives it a `Clock` and connects its ports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from ._bus import BusError, Response
from ._errors import PlatformError
from ._kernel import Clock
from ._signal import Input, Signal

if TYPE_CHECKING:
    from .fdt import DeviceTree, Node

__all__ = ["Device"]


class Device:
    """Base of every model.  Subclasses set `model` (the name `cosim list` shows)."""

    model: ClassVar[str] = ""
    # The name of the device-tree node of a device that describes itself there ("pl011" gives
    # "pl011@9000000" on virt); "" for devices the guest finds by other means.
    dt_name: ClassVar[str] = ""

    def __init__(self, name: str) -> None:
        self.name = name
        self._clock: Clock | None = None
        self._outputs: dict[str, Signal] = {}
        self._inputs: dict[str, Input] = {}

    # -- time ---------------------------------------------------------------
    def attach(self, clock: Clock) -> None:
        """Give the device its view of simulated time (done by the platform / test kit)."""
        self._clock = clock

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            raise PlatformError(f"device {self.name!r} is not attached to a simulation")
        return self._clock

    # -- ports --------------------------------------------------------------
    def output(self, port: str, *, required: bool = False) -> Signal:
        """Declare an output wire; a required one must be connected when the platform is built."""
        if port in self._outputs:
            raise PlatformError(f"{self.name}: output {port!r} declared twice")
        signal = Signal(f"{self.name}.{port}", required=required)
        self._outputs[port] = signal
        return signal

    def input(self, port: str, sink: Callable[[bool], None]) -> Input:
        """Declare an input wire; `sink(level)` is called on every level change."""
        if port in self._inputs:
            raise PlatformError(f"{self.name}: input {port!r} declared twice")
        pin = Input(f"{self.name}.{port}", sink)
        self._inputs[port] = pin
        return pin

    @property
    def outputs(self) -> dict[str, Signal]:
        return dict(self._outputs)

    @property
    def inputs(self) -> dict[str, Input]:
        return dict(self._inputs)

    # -- behaviour ----------------------------------------------------------
    def reset(self) -> None:
        """Return to the power-on state."""

    def read(self, offset: int, size: int) -> int:
        raise BusError(Response.ADDRESS_ERROR, detail=f"{self.name} has no registers")

    def write(self, offset: int, size: int, value: int) -> None:
        raise BusError(Response.ADDRESS_ERROR, detail=f"{self.name} has no registers")

    def dt_node(self, node: "Node", tree: "DeviceTree") -> None:
        """Fill this device's device-tree node: `compatible`, `interrupts` (`tree.interrupts(wire)`),
        clocks and the like. The platform has created the node from `dt_name` and the mapping,
        with `reg` set; devices with a `dt_name` override this."""

    def describe_offset(self, offset: int) -> str:
        return f"offset {offset:#x}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
