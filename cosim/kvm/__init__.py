"""Linux KVM through cffi (ABI mode), for every architecture.

- `_uapi`: the architecture-independent UAPI (kvm_run and its exit union,
  memory regions, capabilities, ioctl numbers); `_x86` adds the x86 structs
  beside it, and an `_arm64` can sit next to it (the generic cdef includes no
  architecture's structs).
- `Kvm` / `Vm` / `Vcpu` (`_system`): fds and the kvm_run mapping, released on
  close and on errors; `Vcpu.run()` issues KVM_RUN so a signal interrupts it;
  `scratch_vm` makes the throw-away VM the host calibrations run in.
- `choose_budget_source` (`_budget`): what ends a quantum (PMU instruction
  counter, task-clock perf event, POSIX timer), with the kick-signal protocol;
  `SOURCE_NAMES` and `budget_source_name` (a Property parser) for platforms.
- `DEFAULT_WFX_CAP` / `DEFAULT_WFX_EXIT` (`_arm64`): the numbers of the WFx
  capability and exit of our 6.1 port of the seed patch (`SEED_WFX_*`: the
  seed's own), for platforms offering the Arm64 KVM CPU.
- `GuestAccesses` (`_access`): device accesses on the guest's behalf, bus
  errors turned into all-ones reads and dropped writes, warned once per address.

Only the names platforms declare their properties with (`_names`) load with
the package; the others load from their submodule on first use (module
`__getattr__`), so a platform whose CPU is not KVM never parses the UAPI's
cdefs with cffi (~50 ms of every `cosim run virt-linux` on the software CPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names
from ._names import (DEFAULT_DEVICE, DEFAULT_WFX_CAP, DEFAULT_WFX_EXIT, SEED_WFX_CAP, SEED_WFX_EXIT, SOURCE_NAMES,
                     budget_source_name)

if TYPE_CHECKING:
    from ._access import GuestAccesses
    from ._budget import KICK_SIGNAL, BudgetChoice, BudgetSource, choose_budget_source
    from ._system import Capabilities, Kvm, KvmError, Vcpu, Vm, probe_capabilities
    from ._uapi import Cap, Exit, Ioctl

# Each lazily loaded name and the submodule defining it.
_LAZY = {
    "GuestAccesses": "_access",
    **dict.fromkeys(("KICK_SIGNAL", "BudgetChoice", "BudgetSource", "choose_budget_source"), "_budget"),
    **dict.fromkeys(("Capabilities", "Kvm", "KvmError", "Vcpu", "Vm", "probe_capabilities"), "_system"),
    **dict.fromkeys(("Cap", "Exit", "Ioctl"), "_uapi"),
}

__all__ = ["Kvm", "Vm", "Vcpu", "KvmError", "Capabilities", "probe_capabilities", "Cap", "Exit", "Ioctl",
           "DEFAULT_DEVICE", "kvm_unavailable", "GuestAccesses", "KICK_SIGNAL", "BudgetChoice", "BudgetSource",
           "choose_budget_source", "SOURCE_NAMES", "budget_source_name", "DEFAULT_WFX_CAP", "DEFAULT_WFX_EXIT",
           "SEED_WFX_CAP", "SEED_WFX_EXIT"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())


def kvm_unavailable(device: str = DEFAULT_DEVICE) -> str | None:
    """Why KVM cannot be used here, or None when /dev/kvm opens (tests skip with this reason)."""
    import os

    from ._system import Kvm, KvmError

    if not os.path.exists(device):
        return f"{device} does not exist (no KVM on this host, or not exposed to this container)"
    if not os.access(device, os.R_OK | os.W_OK):
        return f"{device} is not readable and writable by this user (add it to the kvm group)"
    try:
        Kvm(device).close()
    except KvmError as error:
        return str(error)
    return None
