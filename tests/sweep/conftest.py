"""Sweep tests: tiny bare-metal guests from tests/guests/arm64 on `virt`, and Dask clusters to run them on."""

from pathlib import Path

import pytest

from cosim.toolchain import ToolchainError, assemble

GUESTS = Path(__file__).resolve().parents[1] / "guests" / "arm64"


@pytest.fixture(scope="session")
def guests(tmp_path_factory):
    """{name: flat binary} of the guests sweeps run: hello (powers off), simctl (exits 3), spin (never stops)."""
    out = tmp_path_factory.mktemp("sweep-guests")
    try:
        return {name: assemble(GUESTS / f"{name}.S", "aarch64", 0, out).bin for name in ("hello", "simctl", "spin")}
    except ToolchainError as error:
        pytest.skip(str(error))


@pytest.fixture
def four_runs(guests):
    """Two guests under both instruction countings (ok, ok, exit 3, exit 3): the engine tests' matrix."""
    return {"platform": "virt", "until": "20 ms",
            "matrix": {"firmware": [str(guests["hello"]), str(guests["simctl"])], "counting": ["block", "instruction"]}}
