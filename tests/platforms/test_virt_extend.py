"""Extending `virt-linux` from a user's own code: a device added after `super().build()` is seen by the
CPU and describes itself in the device tree; a device mapped after the platform is built is refused."""

from pathlib import Path

import pytest

from cosim import PlatformError
from cosim.chardev import BufferBackend
from cosim.fdt import from_dtb
from cosim.loaders.arm64_linux import FLAT_LOAD_OFFSET
from cosim.models.pl011 import Pl011
from cosim.platforms.virt import VIRT_MAP
from cosim.toolchain import assemble

from .user_virt import VirtTwoUarts

GUESTS = Path(__file__).resolve().parents[1] / "guests" / "arm64"


@pytest.fixture
def board(tmp_path):
    guest = assemble(GUESTS / "second_uart.S", "aarch64", VIRT_MAP["ram"][0] + FLAT_LOAD_OFFSET, tmp_path).bin
    platform = VirtTwoUarts(kernel=str(guest), initrd="none", console="none", console1=BufferBackend())
    yield platform
    platform.sim.close()


def test_a_device_added_after_super_build_is_reached_by_the_cpu(board):
    summary = board.run(until="10ms")
    assert summary.stop is not None and summary.status == 0, summary
    assert board.uart1.backend.output == b"ok"


def test_a_device_added_after_super_build_has_its_own_device_tree_node(board):
    fdt = from_dtb(board.dtb)
    node = fdt.path_offset("/pl011@9040000")
    assert bytes(fdt.getprop(node, "compatible")) == b"arm,pl011\0arm,primecell\0"
    assert list(fdt.getprop(node, "interrupts").as_uint32_list()) == [0, 8, 4]        # SPI 8, level-high


def test_mapping_a_device_after_the_platform_is_built_is_refused(board):
    with pytest.raises(PlatformError, match=r"map 'late'.*already built.*add and map devices in build\(\)"):
        board.map("sysbus", 0x0905_0000, Pl011("late"))
    with pytest.raises(PlatformError, match=r"add 'late'.*already built"):
        board.add("late", Pl011)
