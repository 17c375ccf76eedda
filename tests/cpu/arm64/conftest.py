from pathlib import Path

import pytest

from cosim.toolchain import ToolchainError, assemble

GUESTS = Path(__file__).resolve().parents[2] / "guests" / "arm64"


@pytest.fixture(scope="session")
def arm_guest(tmp_path_factory):
    """`arm_guest("hello")`: the flat binary of tests/guests/arm64/hello.S, linked at 0 (flash)."""
    out = tmp_path_factory.mktemp("arm64-guests")

    def build(name: str) -> Path:
        try:
            return assemble(GUESTS / f"{name}.S", "aarch64", 0, out).bin
        except ToolchainError as error:
            pytest.skip(str(error))

    return build


@pytest.fixture(params=["unicorn", "unicorn-exact", "kvm"])
def cpu(request):
    """`virt` properties choosing the CPU backend: unicorn counting per block (the default) and exactly
    per instruction, everywhere; KVM where this host is Arm64 with /dev/kvm."""
    if request.param == "kvm":
        from cosim.cpu.arm64.kvm_cpu import kvm_arm64_unavailable

        reason = kvm_arm64_unavailable()
        if reason:
            pytest.skip(f"KVM Arm64 backend: {reason}")
        return {"cpu": "kvm"}
    return {"cpu": "unicorn", "counting": "instruction" if request.param == "unicorn-exact" else "block"}
