"""PSCI 0.2 (Arm DEN 0022) served to a guest that calls HVC/SMC with a function ID in x0."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Function", "PsciResult", "call"]

NOT_SUPPORTED = -1 & 0xFFFF_FFFF_FFFF_FFFF
VERSION_0_2 = 0x0000_0002   # major 0, minor 2


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


@dataclass(frozen=True)
class PsciResult:
    x0: int                 # value returned to the guest
    stop: str | None = None  # "off" or "reset": the run ends


def call(function_id: int, x1: int = 0) -> PsciResult:
    """Serve one PSCI call for a single-CPU machine. CPU_ON is reported unsupported until SMP."""
    fid = function_id & 0xFFFF_FFFF
    if fid in (Function.SYSTEM_OFF, Function.SYSTEM_OFF & ~0x4000_0000):
        return PsciResult(0, "off")
    if fid == Function.SYSTEM_RESET:
        return PsciResult(0, "reset")
    if fid == Function.VERSION:
        return PsciResult(VERSION_0_2)
    if fid in (Function.AFFINITY_INFO, Function.AFFINITY_INFO & ~0x4000_0000):
        return PsciResult(0 if x1 == 0 else NOT_SUPPORTED)    # 0: ON (the only CPU)
    if fid == Function.MIGRATE_INFO_TYPE:
        return PsciResult(2)                                  # no Trusted OS: migration not needed
    if fid == Function.FEATURES:
        known = {int(f) for f in Function} - {Function.CPU_ON, Function.CPU_SUSPEND, Function.CPU_OFF}
        return PsciResult(0 if (x1 & 0xFFFF_FFFF) in known else NOT_SUPPORTED)
    return PsciResult(NOT_SUPPORTED)
