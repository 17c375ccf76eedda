"""CPU backends and the quantum loop shared by all of them."""

from ._backend import CpuBackend, CpuError, CpuExit, ExitReason, QuantumKeeper
from ._loop import Cpu, Keeper

__all__ = ["Cpu", "Keeper", "CpuBackend", "CpuError", "CpuExit", "ExitReason", "QuantumKeeper"]
