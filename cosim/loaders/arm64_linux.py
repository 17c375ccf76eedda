"""Loading an arm64 Linux kernel as Documentation/arch/arm64/booting.rst asks.

- The `Image` header (booting.rst section 4) gives `text_offset` and the
  image size; the image goes at a 2 MiB-aligned offset from the start of RAM
  plus `text_offset`, with `image_size` bytes free from there (bss included).
- The device tree goes on an 8-byte boundary, within 2 MiB, not overlapping
  the kernel; its address is passed in x0 (x1-x3 zero), MMU off, entered at EL1.
- The initramfs may be anywhere in RAM (after the kernel here), described by
  `/chosen/linux,initrd-start` and `linux,initrd-end`, with `bootargs` beside it.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass

from .._errors import PlatformError
from .._platform import MiB

__all__ = ["ImageHeader", "LinuxLayout", "parse_image", "is_linux_image", "plan_layout", "plan_flat_layout",
           "decompress_kernel", "boot_stub", "FLAT_LOAD_OFFSET"]

ARM64_IMAGE_MAGIC = b"ARM\x64"
_HEADER = struct.Struct("<II QQQ QQQ 4s I")   # code0, code1, text_offset, image_size, flags, res2-4, magic, res5
FLAG_BE = 1 << 0                            # flags bit 0: kernel endianness (1 = big-endian)
# Where QEMU's arm64 `-kernel` puts an image that is not a Linux `Image` (hw/arm/boot.c, KERNEL64_LOAD_ADDR).
FLAT_LOAD_OFFSET = 0x8_0000


@dataclass(frozen=True)
class ImageHeader:
    text_offset: int
    image_size: int       # bytes the kernel needs from its load address, bss included
    flags: int


def decompress_kernel(data: bytes) -> bytes:
    """An `Image` from a Debian `vmlinuz`: gzip-compressed on older releases, the plain
    (EFI-stub) `Image` on current ones."""
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise PlatformError(f"kernel: gzip data is corrupt: {error}") from error
    return data


def is_linux_image(data: bytes) -> bool:
    """Whether `data` starts with an arm64 Linux `Image` header (the `ARM\\x64` magic at 0x38)."""
    return len(data) >= _HEADER.size and data[0x38:0x3C] == ARM64_IMAGE_MAGIC


def parse_image(data: bytes) -> ImageHeader:
    if len(data) < _HEADER.size:
        raise PlatformError(f"kernel: {len(data)} bytes is too short for an arm64 Image header")
    _, _, text_offset, image_size, flags, _, _, _, magic, _ = _HEADER.unpack_from(data)
    if magic != ARM64_IMAGE_MAGIC:
        raise PlatformError(f"kernel: not an arm64 Image (magic {magic!r} at 0x38, expected {ARM64_IMAGE_MAGIC!r})")
    if flags & FLAG_BE:
        raise PlatformError("kernel: big-endian arm64 kernels are not supported")
    # booting.rst: image_size 0 means a pre-3.17 kernel; text_offset was then 0x80000.
    return ImageHeader(text_offset, image_size or len(data) + MiB, flags)


@dataclass(frozen=True)
class LinuxLayout:
    """Offsets from the start of RAM."""

    kernel: int
    dtb: int
    initrd: int
    initrd_size: int


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def plan_layout(header: ImageHeader, ram_size: int, dtb_size_max: int, initrd_size: int) -> LinuxLayout:
    """Kernel at RAM + text_offset; DTB at the next 2 MiB boundary after the kernel's
    image_size; initrd on the 2 MiB boundary after the DTB (which may be 2 MiB)."""
    kernel = header.text_offset
    dtb = _align(kernel + header.image_size, 2 * MiB)
    initrd = dtb + 2 * MiB
    end = initrd + initrd_size
    if dtb_size_max > 2 * MiB:
        raise PlatformError(f"device tree of {dtb_size_max} bytes exceeds the 2 MiB booting.rst allows")
    if end > ram_size:
        raise PlatformError(f"kernel ({header.image_size:#x} bytes) and initrd ({initrd_size:#x} bytes) need "
                            f"{-(-end // MiB)} MiB of RAM; this machine has {ram_size // MiB} MiB")
    return LinuxLayout(kernel, dtb, initrd, initrd_size)


def plan_flat_layout(image_size: int, ram_size: int, dtb_size_max: int, initrd_size: int) -> LinuxLayout:
    """A flat binary (no Linux header) at RAM + 0x80000, as QEMU loads one. Its bss size is unknown,
    so, as QEMU does, the initrd goes well away from it (half of RAM, at most 128 MiB in, or past the
    image if that is larger) and the DTB follows the initrd; the guest finds both through x0."""
    kernel = FLAT_LOAD_OFFSET
    initrd = max(_align(kernel + image_size, 2 * MiB), min(ram_size // 2, 128 * MiB))
    dtb = _align(initrd + initrd_size, 4096)
    end = dtb + dtb_size_max
    if end > ram_size:
        raise PlatformError(f"image ({image_size:#x} bytes), initrd ({initrd_size:#x} bytes) and device tree need "
                            f"{-(-end // MiB)} MiB of RAM; this machine has {ram_size // MiB} MiB")
    return LinuxLayout(kernel, dtb, initrd, initrd_size)


def _ldr_literal(rt: int, at: int, literal: int, wide: bool = True) -> int:
    """LDR Xt/Wt, <label> (C6.2.167): PC-relative, imm19 words."""
    return (0x5800_0000 if wide else 0x1800_0000) | (((literal - at) // 4) << 5) | rt


def boot_stub(entry: int, dtb: int, uart_cr: tuple[int, int] | None = None) -> bytes:
    """The few instructions firmware runs before jumping to the kernel (QEMU's -kernel stub
    does the same): optionally enable the console UART (earlycon assumes firmware did), then
    x0 = DTB, x1-x3 = 0, branch to the kernel at EL1 with the MMU off (booting.rst 4)."""
    uart_address, uart_value = uart_cr or (0, 0)
    code = [
        _ldr_literal(1, 0x00, 0x28),             # x1 = UART control register address
        _ldr_literal(2, 0x04, 0x38, wide=False),  # w2 = its enable value
        0xB900_0022 if uart_cr else 0xD503_201F,  # str w2, [x1]   (or nop)
        _ldr_literal(0, 0x0C, 0x30),             # x0 = DTB
        0xAA1F_03E1, 0xAA1F_03E2, 0xAA1F_03E3,   # mov x1/x2/x3, xzr
        _ldr_literal(4, 0x1C, 0x40),             # x4 = kernel entry
        0xD61F_0080,                             # br x4
        0xD503_201F,                             # nop (pads the literals to 8 bytes)
    ]
    return struct.pack("<10I QQ I4x Q", *code, uart_address, dtb, uart_value, entry)
