"""Interrupt lines and other wires between models.

A `Signal` is a wire with one driver and any number of listeners.  It carries
a level; edge-triggered receivers act on the rising edge they see in the
listener call.  `Input` is the receiving end a device exposes; the platform
connects a device's output `Signal` to other devices' `Input`s.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy

__all__ = ["Signal", "Input"]

Listener = Callable[[bool], None]


class Input:
    """A named sink for a wire, e.g. GIC SPI 33 or the CPU's IRQ pin."""

    __slots__ = ("name", "_sink", "driver")

    def __init__(self, name: str, sink: Listener) -> None:
        self.name = name
        self._sink = sink
        self.driver: Signal | None = None  # set once by Signal.connect: an input has one driver

    def __call__(self, level: bool) -> None:
        self._sink(level)

    def __repr__(self) -> str:
        return f"Input({self.name!r})"


class Signal:
    """A wire carrying a level from one driver to many listeners.

    `set(level)` notifies listeners only on a change; `pulse()` drives a
    high-then-low edge for edge-triggered receivers.  Processes can `yield
    signal.wait_change(env)` or `yield signal.wait_level(env, True)`.
    """

    __slots__ = ("name", "level", "required", "_listeners", "_waiters", "_inputs")

    def __init__(self, name: str, *, required: bool = False, level: bool = False) -> None:
        self.name = name
        self.level = level
        self.required = required  # an unconnected required output is a build-time error
        self._listeners: list[Listener] = []
        self._inputs: list[Input] = []
        self._waiters: list[tuple[simpy.Event, bool | None]] = []

    # -- driving -----------------------------------------------------------
    def set(self, level: bool) -> None:
        level = bool(level)
        if level == self.level:
            return
        self.level = level
        for listener in self._listeners:
            listener(level)
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for event, wanted in waiters:
                if wanted is None or wanted == level:
                    event.succeed(level)
                else:
                    self._waiters.append((event, wanted))

    def raise_(self) -> None:
        self.set(True)

    def lower(self) -> None:
        self.set(False)

    def pulse(self) -> None:
        """One rising and one falling edge at the current instant (edge-triggered use)."""
        self.set(True)
        self.set(False)

    # -- listening ---------------------------------------------------------
    def connect(self, target: Input | Listener) -> None:
        """Attach a listener; an `Input` may be driven by only one signal."""
        if isinstance(target, Input):
            if target.driver is not None:
                from ._errors import PlatformError

                raise PlatformError(
                    f"input {target.name} is wired twice: from {target.driver.name} and from {self.name}"
                )
            target.driver = self
            self._inputs.append(target)
            # Call the sink itself: one call less per level change on every wire (interrupt paths are hot).
            self._listeners.append(target._sink)
        else:
            self._listeners.append(target)
        if self.level:
            target(True)  # a late connection still sees the current level

    @property
    def connected(self) -> bool:
        return bool(self._listeners)

    @property
    def inputs(self) -> tuple[Input, ...]:
        return tuple(self._inputs)

    def wait_change(self, env: simpy.Environment) -> simpy.Event:
        """An event that fires on the next level change, with the new level as value."""
        event = env.event()
        self._waiters.append((event, None))
        return event

    def wait_level(self, env: simpy.Environment, level: bool = True) -> simpy.Event:
        """An event that fires when the line is (or becomes) `level`."""
        event = env.event()
        if self.level == level:
            event.succeed(level)
        else:
            self._waiters.append((event, level))
        return event

    def __repr__(self) -> str:
        return f"Signal({self.name!r}, level={int(self.level)})"
