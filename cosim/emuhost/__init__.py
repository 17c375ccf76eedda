"""The emulated Arm64 KVM host: how the Arm64 KVM backend is tested on machines that are not Arm64.

QEMU's TCG emulates an Armv8 CPU with EL2 (`-M virt,virtualization=on`), and an
arm64 Linux kernel booted on it offers `/dev/kvm`: a real Arm64 KVM, slowly.
This package owns everything about that host — the arm64 root file system with
cosim's dependencies (`rootfs`, cached in the image cache under a key made of its
inputs), the small per-run archive carrying the current checkout and the guest
images, the QEMU command line, the `/init` that runs a pytest selection (or a
script) inside, and bringing per-test outcomes back over the serial console,
every wait bounded in real time (`host`). `python -m cosim.emuhost run --kernel
stock -- tests/cpu/arm64 -k kvm` is the entry for humans; `tests/emuhost` runs the
Arm64 KVM tests through it (`pytest -m arm64_host`). The L1 kernels are Debian's
stock cloud kernel and our port of the seed's WFx patch (`kernel`).
"""

from .host import EmulatedHost, EmuhostError, InnerTest, RunResult, host_kernel, qemu_unavailable
from .rootfs import base_archive

__all__ = ["EmulatedHost", "EmuhostError", "InnerTest", "RunResult", "base_archive", "host_kernel",
           "qemu_unavailable"]
