"""The KVM names platforms need while their properties are declared, before (or without) any KVM CPU:
the WFx capability/exit numbers and the budget sources' names. Kept free of cffi so that a platform
whose CPU is not KVM never loads the UAPI (its cdefs take ~50 ms to parse)."""

from __future__ import annotations

__all__ = ["DEFAULT_DEVICE", "SEED_WFX_CAP", "SEED_WFX_EXIT", "PORT_WFX_CAP", "PORT_WFX_EXIT", "DEFAULT_WFX_CAP",
           "DEFAULT_WFX_EXIT", "SOURCE_NAMES", "budget_source_name"]

DEFAULT_DEVICE = "/dev/kvm"

# KVM_CAP_EXIT_ON_WFX and KVM_EXIT_WFX are not upstream, so their numbers are configurable and probed.
# The seed patch (the RFC in the KVM thread "KVM exit to userspace on WFI", October 2023, on 5.15) used
# 222:35; our port to Debian's 6.1 (cosim/emuhost/patches/kvm-exit-on-wfx-6.1.patch, built by
# cosim.emuhost.kernel) takes the first numbers free after 6.1's, and is the default (docs/cpu-kvm-arm64.md).
SEED_WFX_CAP = 222
SEED_WFX_EXIT = 35
PORT_WFX_CAP = 224
PORT_WFX_EXIT = 38
DEFAULT_WFX_CAP = PORT_WFX_CAP
DEFAULT_WFX_EXIT = PORT_WFX_EXIT

SOURCE_NAMES = ("pmu", "task-clock", "posix-timer")    # best first: the order "auto" tries them in


def budget_source_name(name: str) -> str:
    """`name` when it is "auto" or a budget source's name, else ValueError saying the valid ones.

    The parser of the platforms' budget properties: a bad name is refused as
    the properties are read, before a CPU is built (and calibrated).
    """
    if name != "auto" and name not in SOURCE_NAMES:
        raise ValueError(f"unknown budget source {name!r}: use auto, {', '.join(SOURCE_NAMES)}")
    return name
