"""CPU backends and the quantum loop shared by all of them."""

from ._backend import (BUDGET_SPENT, DEVICE_ACCESS, Breakpoint, BudgetSpent, CpuBackend, CpuError, CpuExit,
                       DeviceAccess, ExitReason, Idle, IdleKind, QuantumKeeper, Stop)
from .._memory import MemoryRegion, memory_regions
from ._loop import Cpu, Keeper

__all__ = ["Cpu", "Keeper", "CpuBackend", "CpuError", "CpuExit", "QuantumKeeper",
           "ExitReason", "BudgetSpent", "DeviceAccess", "Idle", "IdleKind", "Stop", "Breakpoint",
           "BUDGET_SPENT", "DEVICE_ACCESS", "MemoryRegion", "memory_regions"]
