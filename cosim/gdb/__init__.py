"""A gdb remote stub for cosim's CPUs: `cosim run PLATFORM --gdb [HOST:]PORT`.

This package owns the Remote Serial Protocol (framing in `_packet`, typed
commands in `_commands`), the target descriptions per architecture (`_arch`),
the targets built on the CPU backend interface with the debug capabilities each
backend offers (`_target`: unicorn Arm64, KVM x86-64, KVM Arm64), and the
server that the CPU loop consults between quanta (`_server`): while gdb holds
the CPUs, simulated time stands still.
"""

from ._server import GdbServer, parse_address
from ._target import Target, TargetError, target_for

__all__ = ["GdbServer", "Target", "TargetError", "parse_address", "target_for", "serve"]


def serve(platform, address: str = "1234", *, wait: bool = True) -> GdbServer:
    """Attach a stub to every CPU of `platform` (devices with a CPU backend), listening on [HOST:]PORT."""
    cpus = [device for device in platform.devices.values() if getattr(device, "backend", None) is not None
            and hasattr(device, "debugger")]
    return GdbServer(platform.sim, cpus, address, wait=wait, describe=platform.describe)
