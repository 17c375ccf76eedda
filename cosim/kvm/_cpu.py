"""What the KVM CPU backends (x86-64, arm64) share: memory slots, the kick signal, ending a run, teardown."""

from __future__ import annotations

import errno as _errno
import logging
import signal
from collections.abc import Iterable

from .._memory import MemoryRegion
from ..cpu._backend import CpuError, CpuExit, ExitReason, QuantumKeeper
from ._budget import drain
from ._system import Kvm, KvmError, Vcpu, Vm

__all__ = ["KvmCpuBase", "MemoryRegion", "map_memory", "block_kick"]


def map_memory(kvm: Kvm, vm: Vm, regions: Iterable[MemoryRegion], logger: logging.Logger) -> None:
    """Each region becomes a memory slot; ROM is read-only where the host has KVM_CAP_READONLY_MEM."""
    readonly = kvm.capabilities.has("READONLY_MEM")
    for base, size, host, read_only in regions:
        if read_only and not readonly:
            logger.warning("ROM at %#x is mapped writable: this host's KVM lacks KVM_CAP_READONLY_MEM", base)
        vm.add_memory(base, size, host, read_only=read_only and readonly)


def block_kick(vcpu: Vcpu, signo: int) -> None:
    """Keep `signo` blocked in this thread and unblock it only inside KVM_RUN (see cosim.kvm._budget):
    a kick can then never be lost nor run a handler."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signo})
    vcpu.set_signal_mask(set(blocked) - {signo})


class KvmCpuBase:
    """Ending a run and tearing down, for a backend with `kvm`, `source` (a budget source or None),
    `kick_signal`, `pc` and `register_dump()`. `pc_name` names the PC in error messages."""

    pc_name = "pc"
    kvm: Kvm
    kick_signal: int
    _closed = False
    _resume_at: int | None = None

    @property
    def pc(self) -> int:
        raise NotImplementedError

    def register_dump(self) -> str:
        raise NotImplementedError

    def _closeables(self) -> list:
        """Budget sources and timers to close before the VM goes."""
        source = getattr(self, "source", None)
        return [source] if source is not None else []

    def _exit(self, keeper: QuantumKeeper, reason: ExitReason, elapsed: int, done: int) -> CpuExit:
        elapsed = min(elapsed, keeper.budget)
        self._resume_at = keeper.start + elapsed
        return CpuExit(reason, elapsed, done)

    def _located(self, error: CpuError) -> CpuError:
        """`error` (raised by an exit handler) with the PC it happened at and the registers."""
        return CpuError(f"{error.args[0]} ({self.pc_name} {self._safe_pc()})", error.dump or self.register_dump())

    def _safe_pc(self) -> str:
        try:
            return f"{self.pc:#x}"
        except KvmError:
            return "unknown"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for part in self._closeables():
            part.close()
        self.kvm.close()
        try:
            drain(self.kick_signal)
        except OSError as error:
            if error.errno != _errno.EINTR:
                raise
