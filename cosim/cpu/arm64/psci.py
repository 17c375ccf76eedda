"""PSCI 0.2 (Arm DEN 0022) served to a guest that calls HVC/SMC with a function ID in x0.

`Psci` is the power controller of one machine's CPUs: it knows each CPU's MPIDR
and power state (ON, OFF, ON_PENDING) and turns CPU_ON / CPU_OFF into calls of
`power_on(index, entry, context_id)` / `power_off(index)` that the platform binds
to its CPUs. A CPU started by CPU_ON is ON_PENDING until it runs its first
instruction (`started`), so AFFINITY_INFO and a second CPU_ON see the race as
DEN 0022 describes it (5.6, 5.9). `call(fid, x1)` serves a one-CPU machine.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Function", "PowerState", "Psci", "PsciResult", "call", "SUCCESS", "NOT_SUPPORTED",
           "INVALID_PARAMETERS", "ALREADY_ON", "ON_PENDING", "MPIDR_AFFINITY"]

_U64 = 0xFFFF_FFFF_FFFF_FFFF
# Return codes (DEN 0022D 5.2.2), as the 64-bit register value the guest reads.
SUCCESS = 0
NOT_SUPPORTED = -1 & _U64
INVALID_PARAMETERS = -2 & _U64
DENIED = -3 & _U64
ALREADY_ON = -4 & _U64
ON_PENDING = -5 & _U64
VERSION_0_2 = 0x0000_0002   # major 0, minor 2
SMC64 = 0x4000_0000         # the bit that tells a function's SMC64 ID from its SMC32 one
# MPIDR_EL1 bits that name a CPU: Aff3 [39:32], Aff2..Aff0 [23:0].
MPIDR_AFFINITY = 0xFF_00FF_FFFF


class Function(enum.IntEnum):
    VERSION = 0x8400_0000
    CPU_SUSPEND = 0xC400_0001
    CPU_OFF = 0x8400_0002
    CPU_ON = 0xC400_0003
    AFFINITY_INFO = 0xC400_0004
    MIGRATE_INFO_TYPE = 0x8400_0006
    SYSTEM_OFF = 0x8400_0008
    SYSTEM_RESET = 0x8400_0009
    FEATURES = 0x8400_000A


class PowerState(enum.IntEnum):
    """AFFINITY_INFO's answers (DEN 0022D 5.9.2)."""

    ON = 0
    OFF = 1
    ON_PENDING = 2


@dataclass(frozen=True)
class PsciResult:
    x0: int                  # value returned to the guest
    stop: str | None = None  # "off" or "reset": the run ends
    off: bool = False        # CPU_OFF succeeded: the caller stops running (the call does not return)
    suspend: bool = False    # CPU_SUSPEND: the caller waits for an interrupt, as WFI


class Psci:
    """PSCI 0.2 for the CPUs of one machine; CPU `i` has MPIDR affinity `mpidrs[i]`, CPU 0 starts ON."""

    def __init__(self, mpidrs: list[int], power_on: Callable[[int, int, int], None] | None = None,
                 power_off: Callable[[int], None] | None = None) -> None:
        self.mpidrs = [m & MPIDR_AFFINITY for m in mpidrs]
        self.state = [PowerState.ON] + [PowerState.OFF] * (len(mpidrs) - 1)
        self._power_on = power_on
        self._power_off = power_off

    def _index(self, mpidr: int) -> int | None:
        try:
            return self.mpidrs.index(mpidr & MPIDR_AFFINITY)
        except ValueError:
            return None

    def started(self, index: int) -> None:
        """CPU `index` runs its first instruction after CPU_ON: ON_PENDING becomes ON."""
        self.state[index] = PowerState.ON

    def call(self, caller: int, function_id: int, x1: int = 0, x2: int = 0, x3: int = 0) -> PsciResult:
        """Serve one call made by CPU `caller` with x0..x3 as given."""
        fid = function_id & 0xFFFF_FFFF
        base = fid & ~SMC64           # SMC32 and SMC64 forms of one function behave alike here
        if base == Function.SYSTEM_OFF & ~SMC64:
            return PsciResult(SUCCESS, "off")
        if fid == Function.SYSTEM_RESET:
            return PsciResult(SUCCESS, "reset")
        if fid == Function.VERSION:
            return PsciResult(VERSION_0_2)
        if base == Function.CPU_ON & ~SMC64:
            return PsciResult(self._cpu_on(x1, x2, x3))
        if fid == Function.CPU_OFF:
            self.state[caller] = PowerState.OFF
            if self._power_off is not None:
                self._power_off(caller)
            return PsciResult(DENIED, off=True)       # what x0 holds if the CPU ever came back here
        if base == Function.AFFINITY_INFO & ~SMC64:
            if x2 != 0:
                return PsciResult(INVALID_PARAMETERS)  # affinity levels above 0: no clusters here
            target = self._index(x1)
            return PsciResult(INVALID_PARAMETERS if target is None else int(self.state[target]))
        if base == Function.CPU_SUSPEND & ~SMC64:
            # Every power state is entered as standby (WFI): DEN 0022D 5.4.2 lets an implementation
            # choose a shallower state than asked; the call then returns SUCCESS on wake-up.
            return PsciResult(SUCCESS, suspend=True)
        if fid == Function.MIGRATE_INFO_TYPE:
            return PsciResult(2)                      # no Trusted OS: migration not needed
        if fid == Function.FEATURES:
            return PsciResult(SUCCESS if (x1 & 0xFFFF_FFFF) in {int(f) for f in Function} | {
                int(f) & ~SMC64 for f in (Function.CPU_ON, Function.AFFINITY_INFO, Function.CPU_SUSPEND)}
                else NOT_SUPPORTED)
        return PsciResult(NOT_SUPPORTED)

    def _cpu_on(self, mpidr: int, entry: int, context_id: int) -> int:
        """DEN 0022D 5.6: start `mpidr` at `entry` with x0 = `context_id`."""
        target = self._index(mpidr)
        if target is None or mpidr & ~MPIDR_AFFINITY & ~(1 << 31):
            return INVALID_PARAMETERS
        if self.state[target] is PowerState.ON:
            return ALREADY_ON
        if self.state[target] is PowerState.ON_PENDING:
            return ON_PENDING
        self.state[target] = PowerState.ON_PENDING
        if self._power_on is not None:
            self._power_on(target, entry, context_id)
        return SUCCESS


def call(function_id: int, x1: int = 0) -> PsciResult:
    """Serve one PSCI call for a single-CPU machine (MPIDR affinity 0)."""
    return Psci([0]).call(0, function_id, x1)
