"""The one interface every CPU backend implements (KVM x86, KVM arm64, unicorn arm64).

A backend runs guest code for a budget of simulated time and reports why it
stopped.  Everything about *when* to run it lives in `cosim.cpu._loop.CpuProcess`,
written once for all backends.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["ExitReason", "CpuExit", "QuantumKeeper", "CpuBackend", "CpuError"]


class CpuError(RuntimeError):
    """The guest or the backend hit a state the simulation cannot continue from.

    `dump` carries a human-readable register dump for the error message.
    """

    def __init__(self, message: str, dump: str = "") -> None:
        super().__init__(message)
        self.dump = dump

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n{self.dump}" if self.dump else base


class ExitReason(enum.Enum):
    BUDGET = "budget"          # the budget was spent
    IDLE = "idle"              # WFI/WFE/HLT: nothing to do until an interrupt
    IO = "io"                  # a device access changed the schedule or raised an interrupt
    BREAKPOINT = "breakpoint"  # a debug stop
    STOP = "stop"              # the guest asked to end the run (PSCI SYSTEM_OFF, ...)
    ERROR = "error"            # unrecoverable: `detail` says why


@dataclass(slots=True)
class CpuExit:
    reason: ExitReason
    elapsed: int               # simulated picoseconds the guest consumed in this run
    instructions: int          # guest instructions retired (estimated where the source is time)
    detail: object = None      # reason-specific: stop status, error text, ...


class QuantumKeeper(Protocol):
    """Local time of a CPU inside one quantum (TLM-2.0 quantum keeper).

    `start` is the simulated time (ps) the quantum began and `budget` its length.
    A backend that services a device access in the middle of a quantum first
    calls `sync(elapsed)`, so the device sees the time the guest has reached;
    afterwards `must_yield` tells whether that access scheduled an event inside
    the budget or changed an interrupt input, in which case the backend ends the
    run early with `ExitReason.IO`.  Because the budget never extends past the
    next pending event, moving the kernel's clock forward inside it skips nothing.
    The implementation is `cosim.cpu._loop.Keeper`.
    """

    start: int
    budget: int

    def sync(self, elapsed: int) -> None: ...

    @property
    def must_yield(self) -> bool: ...

    @property
    def interrupted(self) -> bool:
        """A signal asked the run to stop: a backend may end its run early with `ExitReason.IO`."""


@runtime_checkable
class CpuBackend(Protocol):
    """What `CpuProcess` needs from a CPU backend."""

    name: str

    def run(self, keeper: QuantumKeeper) -> CpuExit:
        """Run the guest for at most `keeper.budget` picoseconds of simulated time."""

    def set_irq(self, line: str, level: bool) -> None:
        """Drive an interrupt input ("irq"/"fiq" on Arm, "intr" on x86)."""

    def interrupt_pending(self) -> bool:
        """True when a pending interrupt would wake the CPU from WFI/HLT."""

    def read_register(self, name: str) -> int: ...

    def write_register(self, name: str, value: int) -> None: ...

    @property
    def pc(self) -> int: ...

    def register_dump(self) -> str: ...

    def close(self) -> None: ...
