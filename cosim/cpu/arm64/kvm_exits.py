"""KVM exits on arm64: decoded from `kvm_run` into small values, handled by a pure function.

`decode(run, ...)` reads the exit once; `handle_exit(exit, ...)` decides what
happens, touching nothing but the bus it is given, so tests feed it fake
exits (STYLE.md #9). The backend copies `Outcome.reply` back into kvm_run and
injects the external abort `Outcome.abort` asks for; a fatal exit raises `CpuError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._bus import Bus
from ...kvm._access import GuestAccesses
from ...kvm._arm64 import ESR_WFX_ISS_WFE, arm_nisv, wfx_esr
from ...kvm._exits import (FailEntry, InternalError, Mmio, OtherExit, Outcome, SystemEventExit, common_outcome,
                           decode_common, mmio_outcome)
from ...kvm._uapi import CData, Exit, SystemEvent
from .._backend import BUDGET_SPENT, CpuError, Idle, IdleKind, Stop

__all__ = ["Wfx", "Interrupted", "ArmNisv", "ExternalAbort", "KvmExit", "decode", "handle_exit", "Mmio",
           "SystemEventExit", "FailEntry", "InternalError", "OtherExit", "Outcome"]


@dataclass(frozen=True, slots=True)
class Wfx:
    """The seed patch's KVM_EXIT_WFX: the guest executed a WFI/WFE that would have blocked."""

    esr: int

    @property
    def wfe(self) -> bool:
        return bool(self.esr & ESR_WFX_ISS_WFE)


@dataclass(frozen=True, slots=True)
class Interrupted:
    """KVM_RUN returned EINTR (exit reason KVM_EXIT_INTR): a kick, or an in-kernel device level changed."""


@dataclass(frozen=True, slots=True)
class ArmNisv:
    """KVM_EXIT_ARM_NISV: a data abort on MMIO whose syndrome KVM cannot decode (e.g. LDP/STP)."""

    esr_iss: int
    fault_ipa: int


@dataclass(frozen=True, slots=True)
class ExternalAbort:
    """Nothing answered the access: the guest takes a synchronous external abort (Arm ARM D1.10)."""

    address: int
    write: bool
    error: str


KvmExit = Mmio | Wfx | Interrupted | ArmNisv | SystemEventExit | FailEntry | InternalError | OtherExit
INTERRUPTED = Interrupted()
_PSCI_STOPS = {SystemEvent.SHUTDOWN: "SYSTEM_OFF", SystemEvent.RESET: "SYSTEM_RESET"}
_WFI, _WFE = Outcome(Idle(IdleKind.WFI)), Outcome(Idle(IdleKind.WFE))
_SPENT = Outcome(BUDGET_SPENT)


def decode(run: CData, *, ran: bool, wfx_exit: int) -> KvmExit:
    """The exit KVM_RUN reported: `ran` False when it returned EINTR; `wfx_exit` = the WFx exit's number."""
    if not ran:
        return INTERRUPTED
    reason = run.exit_reason
    if reason == wfx_exit:
        return Wfx(wfx_esr(run))
    if reason == Exit.INTR:
        return INTERRUPTED
    if reason == Exit.ARM_NISV:
        return ArmNisv(*arm_nisv(run))
    return decode_common(run)


def handle_exit(exit: KvmExit, *, bus: Bus, accesses: GuestAccesses, inject_abort: bool) -> Outcome:
    """The arm64 exit policy.

    MMIO goes to `bus`. An access where nothing is mapped is a synchronous
    external abort the guest takes, as on the unicorn backend and in QEMU's
    virt, when `inject_abort` (the host has KVM_CAP_ARM_INJECT_EXT_DABT); an
    access a model refuses, or any failed access without `inject_abort`, goes
    through `accesses` (Arm: reads as zero, writes dropped, warned once). An `Interrupted` run answers
    BUDGET_SPENT: the backend decides whether the budget is really spent. An
    access KVM cannot decode raises CpuError.
    """
    if isinstance(exit, Mmio):
        return _mmio(exit, bus, accesses, inject_abort)
    if isinstance(exit, Wfx):
        return _WFE if exit.wfe else _WFI
    if isinstance(exit, Interrupted):
        return _SPENT
    if isinstance(exit, SystemEventExit) and exit.type in _PSCI_STOPS:
        # With PSCI 0.2 in KVM these events are the guest's PSCI calls (api.rst, KVM_EXIT_SYSTEM_EVENT).
        return Outcome(Stop(0, f"guest called PSCI {_PSCI_STOPS[exit.type]} (KVM_EXIT_SYSTEM_EVENT)"))
    if isinstance(exit, ArmNisv):
        raise CpuError(f"guest MMIO access at {exit.fault_ipa:#x} with an instruction KVM cannot decode "
                       f"(KVM_EXIT_ARM_NISV, ISS {exit.esr_iss:#x}): device registers must be accessed with "
                       "single loads/stores (no LDP/STP, no writeback)")
    return common_outcome(exit)


def _mmio(exit: Mmio, bus: Bus, accesses: GuestAccesses, inject_abort: bool) -> Outcome:
    if inject_abort and bus.find(exit.address) is None:
        return Outcome(None, abort=ExternalAbort(exit.address, exit.write, f"nothing mapped on {bus.name}"))
    return mmio_outcome(exit, bus, accesses)
