"""A bus target that forwards every access to the device behind it and tells its watchers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Observed", "AccessWatcher", "register_name"]

# (device name, register name, offset, size, value, is_write)
AccessWatcher = Callable[[str, str, int, int, int, bool], None]


def register_name(target: Any, offset: int) -> str:
    """The register at `offset` as the model names it (RegisterDevice.describe_offset), else the offset."""
    describe = getattr(target, "describe_offset", None)
    text = describe(offset) if describe is not None else ""
    return text.split(" (")[0] if text else f"{offset:#x}"


class Observed:
    """Stands in for a device on the bus (Bus.interpose); anything else is the device's own."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.name = target.name
        self.watchers: list[AccessWatcher] = []
        self._names: dict[int, str] = {}          # register names by offset, looked up once

    def _name(self, offset: int) -> str:
        name = self._names.get(offset)
        if name is None:
            name = self._names[offset] = register_name(self.target, offset)
        return name

    def read(self, offset: int, size: int) -> int:
        value = self.target.read(offset, size)
        for watcher in self.watchers:
            watcher(self.name, self._name(offset), offset, size, value, False)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        self.target.write(offset, size, value)
        for watcher in self.watchers:
            watcher(self.name, self._name(offset), offset, size, value, True)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.target, attribute)     # describe_offset, debug_read, model, size, ...
