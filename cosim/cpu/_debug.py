"""What a backend reports when a debug event ends its run (ExitReason.BREAKPOINT, in `CpuExit.detail`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["DebugStop", "StopKind", "WatchKind", "DebugSlots"]


class StopKind(enum.Enum):
    BREAKPOINT = "breakpoint"   # about to execute a breakpoint's address
    STEP = "step"               # one instruction retired (or an exception entered) in single-step mode
    WATCH = "watch"             # a watched address was accessed


class WatchKind(enum.Enum):
    WRITE = "watch"             # the names are the stop-reply keys of gdb's protocol
    READ = "rwatch"
    ACCESS = "awatch"


@dataclass(frozen=True, slots=True)
class DebugStop:
    kind: StopKind
    address: int | None = None          # data address of a watchpoint hit
    watch: WatchKind | None = None


class DebugSlots:
    """A backend's few hardware debug registers: what each holds, refused by name when all are taken."""

    def __init__(self, capacity: int, what: str) -> None:
        self.capacity = capacity
        self.what = what
        self.items: list = []

    def add(self, item: object) -> bool:
        """True when `item` is new (the backend then reprograms its debug registers)."""
        if item in self.items:
            return False
        if len(self.items) >= self.capacity:
            from .._errors import PlatformError

            raise PlatformError(f"all {self.capacity} {self.what} are in use")
        self.items.append(item)
        return True

    def remove(self, item: object) -> bool:
        if item not in self.items:
            return False
        self.items.remove(item)
        return True
