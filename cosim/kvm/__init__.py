"""Linux KVM through cffi (ABI mode): generic UAPI bindings, system/VM/vCPU objects.

Architecture-specific structs live beside the generic ones (`_x86.py`; an
`_arm64.py` can sit next to it); the generic layer never includes them.
"""

from ._system import DEFAULT_DEVICE, Capabilities, Kvm, KvmError, Vcpu, Vm, probe_capabilities
from ._uapi import Cap, Exit, Ioctl

__all__ = ["Kvm", "Vm", "Vcpu", "KvmError", "Capabilities", "probe_capabilities", "Cap", "Exit", "Ioctl",
           "DEFAULT_DEVICE", "kvm_unavailable"]


def kvm_unavailable(device: str = DEFAULT_DEVICE) -> str | None:
    """Why KVM cannot be used here, or None when /dev/kvm opens (tests skip with this reason)."""
    import os

    if not os.path.exists(device):
        return f"{device} does not exist (no KVM on this host, or not exposed to this container)"
    if not os.access(device, os.R_OK | os.W_OK):
        return f"{device} is not readable and writable by this user (add it to the kvm group)"
    try:
        Kvm(device).close()
    except KvmError as error:
        return str(error)
    return None
