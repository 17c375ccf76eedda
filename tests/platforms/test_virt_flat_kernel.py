"""`virt -P kernel=FILE` with a file that is not a Linux Image: a flat binary, loaded as QEMU's
-kernel loads one (RAM + 0x80000, x0 = the device tree)."""

from pathlib import Path

import pytest

from cosim import MiB, PlatformError
from cosim.loaders.arm64_linux import FLAT_LOAD_OFFSET, plan_flat_layout
from cosim.platforms.virt import VIRT_MAP, Virt
from cosim.toolchain import assemble

GUESTS = Path(__file__).resolve().parents[1] / "guests" / "arm64"


@pytest.fixture(scope="module")
def flat_kernel(tmp_path_factory) -> Path:
    return assemble(GUESTS / "flat_kernel.S", "aarch64", VIRT_MAP["ram"][0] + FLAT_LOAD_OFFSET,
                    tmp_path_factory.mktemp("flat")).bin


def test_flat_binary_runs_at_ram_plus_0x80000_with_the_dtb_in_x0(flat_kernel):
    platform = Virt(firmware="none", kernel=str(flat_kernel), console="none")
    try:
        summary = platform.run(until="10ms")
    finally:
        platform.sim.close()
    assert summary.stop is not None, "the guest never exited"
    assert summary.status == 0, summary.stop.reason


def test_flat_layout_keeps_initrd_and_dtb_clear_of_the_image():
    layout = plan_flat_layout(0x1234, 128 * MiB, 2 * MiB, 3 * MiB)
    assert layout.kernel == 0x8_0000
    assert layout.initrd == 64 * MiB and layout.dtb == 67 * MiB        # half of RAM, as QEMU
    big = plan_flat_layout(100 * MiB, 256 * MiB, 2 * MiB, 0)
    assert big.initrd >= big.kernel + 100 * MiB and big.dtb >= big.initrd


def test_flat_layout_that_does_not_fit_says_how_much_ram_it_needs():
    with pytest.raises(PlatformError, match=r"need 130 MiB of RAM; this machine has 128 MiB"):
        plan_flat_layout(127 * MiB, 128 * MiB, 2 * MiB, 0)


def test_empty_kernel_file_is_refused(tmp_path):
    kernel = tmp_path / "empty"
    kernel.write_bytes(b"")
    with pytest.raises(PlatformError, match="kernel image .*empty is empty"):
        Virt(firmware="none", kernel=str(kernel), console="none")
