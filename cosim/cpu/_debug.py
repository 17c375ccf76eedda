"""What a backend reports when a debug event ends its run (ExitReason.BREAKPOINT, in `CpuExit.detail`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["DebugStop", "StopKind", "WatchKind"]


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
