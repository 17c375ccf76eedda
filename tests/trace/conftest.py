from pathlib import Path

import pytest

from cosim.toolchain import ToolchainError, assemble

GUESTS = Path(__file__).resolve().parents[1] / "guests" / "arm64"


@pytest.fixture(scope="session")
def arm_guest(tmp_path_factory):
    """`arm_guest("timer_wfi")`: the flat binary of tests/guests/arm64/timer_wfi.S, linked at 0 (flash)."""
    out = tmp_path_factory.mktemp("trace-guests")

    def build(name: str) -> Path:
        try:
            return assemble(GUESTS / f"{name}.S", "aarch64", 0, out).bin
        except ToolchainError as error:
            pytest.skip(str(error))

    return build
