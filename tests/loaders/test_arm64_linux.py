"""Loading an arm64 Linux Image (booting.rst): header, layout, and the boot stub run on unicorn."""

import gzip
import struct

import pytest
from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, UC_PROT_ALL, Uc
from unicorn import arm64_const as A

from cosim import MiB, PlatformError
from cosim.loaders.arm64_linux import ImageHeader, boot_stub, decompress_kernel, parse_image, plan_layout


def image(text_offset=0, image_size=0x1A0_0000, flags=0b1010, magic=b"ARM\x64") -> bytes:
    return struct.pack("<II QQQ QQQ 4s I", 0x91005A4D, 0x14000000, text_offset, image_size, flags, 0, 0, 0, magic, 0)


def test_header_fields():
    assert parse_image(image(0x8_0000)) == ImageHeader(0x8_0000, 0x1A0_0000, 0b1010)


@pytest.mark.parametrize("data, message", [
    (image(magic=b"MZ\0\0"), "not an arm64 Image"),
    (image(flags=1), "big-endian"),
    (b"\0" * 16, "too short"),
])
def test_bad_images_are_clear_errors(data, message):
    with pytest.raises(PlatformError, match=message):
        parse_image(data)


def test_gzip_vmlinuz_is_decompressed_and_plain_image_passes_through():
    assert decompress_kernel(gzip.compress(image())) == image()
    assert decompress_kernel(image()) == image()
    with pytest.raises(PlatformError, match="gzip"):
        decompress_kernel(b"\x1f\x8b" + b"broken")


def test_layout_aligns_dtb_and_initrd_after_the_kernel():
    layout = plan_layout(ImageHeader(0x8_0000, 0x1A0_0123, 0), 256 * MiB, 2 * MiB, 5 * MiB)
    assert layout.kernel == 0x8_0000
    assert layout.dtb % (2 * MiB) == 0 and layout.dtb >= 0x8_0000 + 0x1A0_0123
    assert layout.initrd == layout.dtb + 2 * MiB


def test_layout_that_does_not_fit_names_the_ram_needed():
    with pytest.raises(PlatformError, match="need 33 MiB of RAM; this machine has 32 MiB"):
        plan_layout(ImageHeader(0, 28 * MiB, 0), 32 * MiB, 2 * MiB, 3 * MiB)


def test_boot_stub_enables_the_uart_and_enters_the_kernel_with_the_dtb_in_x0():
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(0, 0x1000, UC_PROT_ALL)
    uc.mem_map(0x0900_0000, 0x1000, UC_PROT_ALL)       # stands in for the PL011
    uc.mem_map(0x4000_0000, 0x1000, UC_PROT_ALL)       # the "kernel"
    uc.mem_write(0, boot_stub(0x4000_0000, 0x4160_0000, (0x0900_0030, 0x301)))
    for reg in (A.UC_ARM64_REG_X1, A.UC_ARM64_REG_X2, A.UC_ARM64_REG_X3):
        uc.reg_write(reg, 0xDEAD)
    uc.emu_start(0, 0x4000_0000)
    assert uc.reg_read(A.UC_ARM64_REG_PC) == 0x4000_0000
    assert uc.reg_read(A.UC_ARM64_REG_X0) == 0x4160_0000
    assert [uc.reg_read(r) for r in (A.UC_ARM64_REG_X1, A.UC_ARM64_REG_X2, A.UC_ARM64_REG_X3)] == [0, 0, 0]
    assert int.from_bytes(uc.mem_read(0x0900_0030, 4), "little") == 0x301


def test_decompression_stops_at_the_limit_and_truncated_gzip_is_refused():
    bomb = gzip.compress(bytes(64 * 1024 * 1024))             # 64 KiB of gzip, 64 MiB of zeros
    with pytest.raises(PlatformError, match=r"kernel: decompresses to more than RAM \(0x100000 bytes\)"):
        decompress_kernel(bomb, limit=1024 * 1024)
    assert decompress_kernel(gzip.compress(image()), limit=1024 * 1024) == image()
    with pytest.raises(PlatformError, match="kernel: gzip data is truncated"):
        decompress_kernel(gzip.compress(image())[:-20])


def test_a_device_tree_larger_than_its_2_mib_is_refused_not_written_over_the_initramfs(tmp_path):
    from cosim.platforms.virt import VirtLinux

    kernel = tmp_path / "Image"
    kernel.write_bytes(image())
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"070701" + bytes(512))
    with pytest.raises(PlatformError, match=r"device tree of 0x3[0-9a-f]{5} bytes exceeds the 2 MiB booting.rst "
                                            r"allows \(bootargs are 3145728 bytes\)"):
        VirtLinux(kernel=str(kernel), initrd=str(initrd), console="none", bootargs="x" * (3 * 1024 * 1024))
