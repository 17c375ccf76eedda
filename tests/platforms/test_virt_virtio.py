"""virtio on `virt`: transports at QEMU's addresses for the attached devices only, and -P drive/rng errors."""

import libfdt
import pytest

from cosim import PlatformError
from cosim.chardev import BufferBackend
from cosim.cli import main
from cosim.fdt import from_dtb
from cosim.platforms.virt import Virt
from cosim.virtio import VirtioBlk, VirtioMmio, VirtioRng


@pytest.fixture
def images(tmp_path):
    paths = [tmp_path / name for name in ("a.img", "b.img")]
    for path in paths:
        path.write_bytes(bytes(8 * 512))
    return paths


def build(**props):
    return Virt(firmware="none", console="none", **props)


def test_no_virtio_device_no_transport():
    board = build()
    try:
        assert not any(isinstance(m.target, VirtioMmio) for m in board.buses["sysbus"].mappings)
        fdt = from_dtb(board.dtb)
        assert fdt.path_offset("/virtio_mmio@a000000", quiet=[libfdt.FDT_ERR_NOTFOUND]) < 0
    finally:
        board.sim.close()


def test_drives_then_rng_at_qemu_addresses_with_their_nodes(images):
    board = build(drive=f"{images[0]},{images[1]},ro", rng="seed:3")
    try:
        found = [(m.base, m.size, m.target) for m in board.buses["sysbus"].mappings if isinstance(m.target, VirtioMmio)]
        assert [(base, size) for base, size, _ in found] == [(0x0a00_0000, 0x200), (0x0a00_0200, 0x200),
                                                             (0x0a00_0400, 0x200)]
        devices = [target.device for _, _, target in found]
        assert isinstance(devices[0], VirtioBlk) and not devices[0].drive.readonly and devices[1].drive.readonly
        assert isinstance(devices[2], VirtioRng) and devices[2].seed == 3
        fdt = from_dtb(board.dtb)
        for index, (base, _, _) in enumerate(found):
            node = fdt.path_offset(f"/virtio_mmio@{base:x}")
            assert fdt.getprop(node, "compatible").as_str() == "virtio,mmio"
            assert list(fdt.getprop(node, "interrupts").as_uint32_list()) == [0, 16 + index, 4]   # SPI 16 + i, level
            assert fdt.getprop(node, "dma-coherent") is not None
            assert list(fdt.getprop(node, "reg").as_uint32_list()) == [0, base, 0, 0x200]
    finally:
        board.sim.close()


def test_rng_host_console_and_the_drive_list_from_python(images):
    hvc = BufferBackend()
    board = build(drive=[str(images[0]), images[1]], rng="host", hvc=hvc)
    try:
        assert board.devices["rng"].device.seed is None
        assert board.devices["hvc"].device.backend is hvc
        assert any(m.base == 0x0a00_0600 and m.target is board.devices["hvc"] for m in board.buses["sysbus"].mappings)
        assert [board.devices[f"drive{i}"].device.drive.path for i in (0, 1)] == images
    finally:
        board.sim.close()


def test_closing_the_simulation_releases_the_images(images):
    build(drive=str(images[0])).sim.close()
    board = build(drive=str(images[0]))           # the lock went with the first simulation
    board.sim.close()


def test_an_image_in_use_by_another_board_is_refused(images):
    board = build(drive=str(images[0]))
    try:
        with pytest.raises(PlatformError, match="in use by another run"):
            build(drive=f"{images[0]},ro")
    finally:
        board.sim.close()


@pytest.mark.parametrize("value, message", [
    ("/nonexistent/disk.img", "drive /nonexistent/disk.img: no such file"),
    ("{tmp}", "not a regular file"),
    ("ro", "'ro' must follow a path"),
])
def test_bad_drives_are_one_line_errors(capsys, tmp_path, value, message):
    assert main(["describe", "virt", "-P", "firmware=none", "-P", f"drive={value.format(tmp=tmp_path)}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cosim: error: ") and message in err and "\n" not in err


@pytest.mark.parametrize("value", ["seed:", "seed:x", "random"])
def test_bad_rng_values_are_one_line_errors(capsys, value):
    assert main(["describe", "virt", "-P", "firmware=none", "-P", f"rng={value}"]) == 2
    assert "rng expects none, host or seed:N" in capsys.readouterr().err


def test_more_transports_than_virt_has_are_refused():
    class Crowded(Virt):
        def build(self):
            super().build()
            for index in range(33):
                self.add_virtio(f"rng{index}", VirtioRng(seed=index))

    with pytest.raises(PlatformError, match="room for 32 virtio devices"):
        Crowded(firmware="none", console="none")
