"""The one interface every CPU backend implements (KVM x86, KVM arm64, unicorn arm64).

A backend runs guest code for a budget of simulated time and returns a
`CpuExit`: how much time and how many instructions the run took, and why it
ended, as one of a closed set of typed reasons (`ExitReason`): the budget was
spent, a device access must be seen by the rest of the platform, the guest
idles, the guest asked to stop, a breakpoint was hit. Errors are not exits: a
backend raises `CpuError`. Everything about *when* to run a backend lives in
`cosim.cpu._loop.Cpu`, written once for all backends.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

__all__ = ["CpuExit", "ExitReason", "BudgetSpent", "DeviceAccess", "Idle", "IdleKind", "Stop", "Breakpoint",
           "BUDGET_SPENT", "DEVICE_ACCESS", "QuantumKeeper", "CpuBackend", "CpuError"]


class CpuError(RuntimeError):
    """The guest or the backend hit a state the simulation cannot continue from.

    The one error channel of a backend: `run` raises it (never returns it).
    `dump` carries a human-readable register dump for the error message; the
    CPU loop fills it in from `register_dump()` when the backend left it empty.
    """

    def __init__(self, message: str, dump: str = "") -> None:
        super().__init__(message)
        self.dump = dump

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n{self.dump}" if self.dump else base


# -- why a run ended: a closed set of typed reasons (Firecracker's VcpuExit is the model) --------
# Each has `name`, the key under which the CPU counts its exits (the summary's "exits" row).

@dataclass(frozen=True, slots=True)
class BudgetSpent:
    """The budget was spent (or nearly: the run stops at an instruction boundary)."""

    name: ClassVar[str] = "budget"


@dataclass(frozen=True, slots=True)
class DeviceAccess:
    """A device access scheduled an event inside the budget or changed an interrupt input:
    the loop must let the platform run before the guest goes on."""

    name: ClassVar[str] = "io"


class IdleKind(enum.Enum):
    """The instruction the guest idles in."""

    WFI = "wfi"     # Arm: wakes on an interrupt (even a masked one, Arm ARM D1.16.2)
    WFE = "wfe"     # Arm: also wakes on events not modelled one by one (SEV, the event stream)
    HLT = "hlt"     # x86: wakes on an interrupt the guest can take


@dataclass(frozen=True, slots=True)
class Idle:
    """The guest waits for an interrupt (WFI/WFE/HLT): simulated time may jump to the next event."""

    kind: IdleKind
    name: ClassVar[str] = "idle"


@dataclass(frozen=True, slots=True)
class Stop:
    """The guest asked to end the simulation (PSCI SYSTEM_OFF, sim-control EXIT, `cli; hlt`, ...)."""

    status: int
    message: str
    name: ClassVar[str] = "stop"


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """The guest reached a breakpoint at `address` (the PC it stopped at)."""

    address: int
    name: ClassVar[str] = "breakpoint"


ExitReason = BudgetSpent | DeviceAccess | Idle | Stop | Breakpoint
BUDGET_SPENT = BudgetSpent()
DEVICE_ACCESS = DeviceAccess()


# Made on every run: plain slotted (a frozen one costs ~250 ns more), treated as a value all the same.
@dataclass(slots=True)
class CpuExit:
    """What one `CpuBackend.run` did: why it ended, the simulated picoseconds the guest consumed
    (at most the budget) and the guest instructions it retired (estimated where the source is time)."""

    reason: ExitReason
    elapsed: int
    instructions: int


class QuantumKeeper(Protocol):
    """Local time of a CPU inside one quantum (TLM-2.0 quantum keeper).

    `start` is the simulated time (ps) the quantum began and `budget` its length.
    A backend that services a device access in the middle of a quantum first
    calls `sync(elapsed)`, so the device sees the time the guest has reached;
    afterwards `must_yield` tells whether that access scheduled an event inside
    the budget or changed an interrupt input, in which case the backend ends the
    run early with `DEVICE_ACCESS`.  Because the budget never extends past the
    next pending event, moving the kernel's clock forward inside it skips nothing.
    The implementation is `cosim.cpu._loop.Keeper`.
    """

    start: int
    budget: int

    def sync(self, elapsed: int) -> None: ...

    @property
    def must_yield(self) -> bool: ...


@runtime_checkable
class CpuBackend(Protocol):
    """What the CPU loop (`cosim.cpu.Cpu`) needs from a CPU backend.

    `cosim.testing.ScriptedBackend` is one that plays a script, for tests of the loop and of platforms.
    """

    name: str

    def run(self, keeper: QuantumKeeper) -> CpuExit:
        """Run the guest for at most `keeper.budget` picoseconds of simulated time.

        Returns why the run ended (`CpuExit.reason`, one of `ExitReason`); raises `CpuError` when
        the guest or the backend cannot go on.
        """

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
