"""End to end: Debian's U-Boot on the `virt` platform, driven over the PL011 console."""

import re

import pytest

from cosim import SEC, ms
from cosim.chardev import BufferBackend
from cosim.fdt import from_dtb
from cosim.images.fetch import ImageError, uboot_image

UBOOT_VERSION = r"U-Boot 20\d\d\.\d\d"      # whichever release the archive has (2023.01 in Debian 12)


@pytest.fixture(scope="module")
def firmware():
    try:
        return uboot_image()
    except ImageError as error:
        pytest.skip(f"U-Boot image not available: {error}")


@pytest.fixture
def booted(firmware):
    from cosim.platforms.virt import Virt

    console = BufferBackend()
    board = Virt(firmware=str(firmware), console=console)
    console.run_until("Hit any key to stop autoboot", timeout=10 * SEC)
    console.feed("\n")
    console.run_until("=> ", timeout=5 * SEC, start=len(console.output) - 1)
    return board, console


def command(console, text, timeout=10 * SEC):
    start = len(console.output)
    console.feed(text + "\n")
    return console.run_until("\n=> ", timeout=timeout, start=start)


def test_boots_to_prompt_and_reports_its_version(booted):
    board, console = booted
    assert re.search(UBOOT_VERSION, console.text) and "DRAM:  128 MiB" in console.text
    assert re.search(UBOOT_VERSION, command(console, "version"))


def test_fdt_shows_the_generated_tree(booted):
    board, console = booted
    command(console, "fdt addr 0x40000000")
    tree = command(console, "fdt print /pl011@9000000")
    assert 'compatible = "arm,pl011", "arm,primecell"' in tree
    assert from_dtb(board.dtb).path_offset("/pl011@9000000") >= 0
    assert "linux,dummy-virt" in command(console, "fdt print /")


def test_sleep_skips_its_polling_instead_of_executing_it(booted):
    """U-Boot's sleep polls the counter; the polls let time move on, so 3 s of simulated time
    cost far fewer instructions than 3 s at 1 GHz would (wall-time figures: benchmarks/bench_uboot.py)."""
    board, console = booted
    before, executed = board.sim.now, board.cpu0.instructions
    command(console, "sleep 3", timeout=10 * SEC)
    assert board.sim.now - before >= 3 * SEC
    assert board.cpu0.instructions - executed < 0.05 * 3e9


@pytest.mark.parametrize("word, reason", [("poweroff", "SYSTEM_OFF"), ("reset", "SYSTEM_RESET")])
def test_poweroff_and_reset_end_the_run_cleanly(booted, word, reason):
    board, console = booted
    console.feed(word + "\n")
    summary = board.run(until=board.sim.now + 5 * SEC)
    assert summary.stop is not None and reason in summary.stop.reason and summary.status == 0


def test_same_input_gives_the_same_simulated_times(firmware):
    from cosim.platforms.virt import Virt

    def trace():
        console = BufferBackend()
        board = Virt(firmware=str(firmware), console=console)
        console.run_until("Hit any key", timeout=10 * SEC)
        return board.sim.now, board.cpu0.instructions, bytes(console.output)

    assert trace() == trace()


@pytest.mark.slow
def test_uboot_reads_a_virtio_drive(firmware, tmp_path):
    """A second driver for the transport and virtio-blk: U-Boot's virtio-mmio and virtio_blk."""
    from cosim.platforms.virt import Virt

    image = tmp_path / "disk.img"
    image.write_bytes(b"".join(bytes([sector % 251]) * 512 for sector in range(2048)))
    console = BufferBackend()
    board = Virt(firmware=str(firmware), console=console, drive=str(image))
    try:
        console.run_until("Hit any key to stop autoboot", timeout=10 * SEC)
        console.feed("\n")
        console.run_until("=> ", timeout=5 * SEC, start=len(console.output) - 1)
        info = command(console, "virtio scan; virtio info")
        assert "VirtIO Block Device" in info and "(2048 x 512)" in info
        command(console, "virtio read 0x41000000 7 2")
        dump = command(console, "md.b 0x41000000 4; md.b 0x41000200 4")
        assert re.search(r"41000000: 07 07 07 07", dump) and re.search(r"41000200: 08 08 08 08", dump)
    finally:
        board.sim.close()
