from pathlib import Path

import pytest

from cosim.kvm import kvm_unavailable
from cosim.toolchain import ToolchainError, assemble

GUESTS = Path(__file__).resolve().parents[2] / "guests" / "x86"
LOAD_ADDRESS = 0x10_0000   # the guests are linked at 1 MiB
RESULTS = 0x20_0000        # their results area (common.inc)


@pytest.fixture(scope="session")
def x86_guest(tmp_path_factory):
    """`x86_guest("hello")`: tests/guests/x86/hello.S built with binutils (ELF and flat binary)."""
    out = tmp_path_factory.mktemp("x86-guests")

    def build(name: str):
        try:
            return assemble(GUESTS / f"{name}.S", "x86_64", LOAD_ADDRESS, out)
        except ToolchainError as error:
            pytest.skip(str(error))

    return build


@pytest.fixture(scope="session")
def kvm():
    """Skips, saying why, where /dev/kvm is missing or not usable."""
    reason = kvm_unavailable()
    if reason:
        pytest.skip(f"needs KVM: {reason}")
