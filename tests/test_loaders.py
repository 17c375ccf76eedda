"""Loaders: raw and ELF images into RAM, x86 entry states (tables checked byte by byte)."""

import struct

import pytest

from cosim import Bus, Memory, PlatformError
from cosim.loaders import load_elf, load_image, load_raw, memory_writer
from cosim.loaders.x86 import (CODE32_SELECTOR, CODE64_SELECTOR, DATA_SELECTOR, EFER_LMA, EFER_LME, GDT, PTE_PS,
                               entry_state, long_mode, protected_mode, real_mode)
from cosim.toolchain import ToolchainError, assemble


@pytest.fixture
def ram():
    bus = Bus("sysbus")
    low, high = Memory("low", 0x10_0000), Memory("high", 0x40_0000)
    bus.map(0, low.size, low)
    bus.map(0x10_0000, high.size, high)
    return bus, low, high


def test_raw_image_lands_at_its_address_across_memories(ram, tmp_path):
    bus, low, high = ram
    image = tmp_path / "image.bin"
    image.write_bytes(bytes(range(16)))
    loaded = load_raw(memory_writer(bus), image, 0x10_0000 - 8)
    assert loaded.entry == 0x10_0000 - 8 and loaded.segments == [(0x10_0000 - 8, 16)] and loaded.end == 0x10_0008
    assert low.read(0x10_0000 - 8, 8) == int.from_bytes(bytes(range(8)), "little")
    assert high.read(0, 8) == int.from_bytes(bytes(range(8, 16)), "little")


def test_loading_outside_ram_names_the_address(ram, tmp_path):
    image = tmp_path / "image.bin"
    image.write_bytes(b"\x90" * 32)
    with pytest.raises(PlatformError, match=r"at 0x500000: no RAM or ROM there on sysbus"):
        load_raw(memory_writer(ram[0]), image, 0x50_0000)


def test_missing_and_invalid_images_are_clear_errors(ram, tmp_path):
    write = memory_writer(ram[0])
    with pytest.raises(PlatformError, match="does not exist"):
        load_image(write, tmp_path / "nothing.elf", 0)
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF" + b"\0" * 10)
    with pytest.raises(PlatformError, match="not a valid ELF"):
        load_image(write, bad, 0)


def test_elf_segments_load_at_their_physical_address_with_bss_zeroed(ram, tmp_path):
    source = tmp_path / "prog.S"
    source.write_text(".global _start\n_start: hlt\n.data\nvalue: .quad 0x1122334455667788\n"
                      ".bss\nzeros: .skip 64\n")
    try:
        built = assemble(source, "x86_64", 0x10_0000, tmp_path / "out")
    except ToolchainError as error:
        pytest.skip(str(error))
    bus, _, high = ram
    high.load(b"\xAA" * 0x4000)
    loaded = load_elf(memory_writer(bus), built.elf)
    assert loaded.entry == 0x10_0000 and high.read(0, 1) == 0xF4          # hlt at the entry
    starts = {address: high.read(address - 0x10_0000, 8) for address, _ in loaded.segments}
    assert 0x1122334455667788 in starts.values()                            # .data at its address
    last, size = max(loaded.segments)
    bss = high.array[last + size - 64 - 0x10_0000:last + size - 0x10_0000]
    assert len(bss) == 64 and not bss.any()                                 # .bss zeroed over the 0xAA fill
    assert load_image(memory_writer(bus), built.elf, 0).entry == 0x10_0000  # detected as ELF by its magic


def test_real_mode_entry_uses_a_segment_and_offset():
    state = real_mode(0x1_2345)
    assert state.code.base == 0x1_0000 and state.code.selector == 0x1000 and state.rip == 0x2345
    assert state.cr0 & 1 == 0 and state.code.db == 0
    with pytest.raises(PlatformError, match="above the 1 MiB"):
        real_mode(0x10_0000)


def test_protected_mode_writes_the_gdt_and_uses_flat_32_bit_segments(ram):
    bus, low, _ = ram
    state = protected_mode(memory_writer(bus), 0x10_0000)
    assert state.gdt == (0x1000, 8 * len(GDT) - 1)
    assert struct.unpack_from(f"<{len(GDT)}Q", low.buffer, 0x1000) == tuple(GDT)
    assert state.code.selector == CODE32_SELECTOR and state.code.db == 1 and state.data.selector == DATA_SELECTOR
    assert state.cr0 & 1 and not state.cr0 & (1 << 31)


def test_long_mode_identity_maps_4_gib_with_2_mib_pages(ram):
    bus, low, _ = ram
    state = long_mode(memory_writer(bus), 0x10_0000, tables=0x1000)
    pml4 = struct.unpack_from("<Q", low.buffer, state.cr3)[0]
    pdpt = pml4 & ~0xFFF
    directories = struct.unpack_from("<4Q", low.buffer, pdpt)
    for i, entry in enumerate(directories):
        assert entry & 1 and entry & ~0xFFF == 0x4000 + 0x1000 * i
    # translate a few addresses through the tables
    for address in (0, 0x20_0000, 0xFEC0_0000, 0xFFFF_FFFF):
        directory = directories[address >> 30] & ~0xFFF
        pde = struct.unpack_from("<Q", low.buffer, directory + 8 * ((address >> 21) & 511))[0]
        assert pde & PTE_PS and (pde & ~0x1FFFFF) | (address & 0x1FFFFF) == address
    assert state.efer == EFER_LME | EFER_LMA and state.code.l == 1 and state.code.selector == CODE64_SELECTOR
    assert state.cr4 & (1 << 5) and state.cr0 & (1 << 31)


def test_entry_state_rejects_unknown_modes_and_unaligned_tables(ram):
    write = memory_writer(ram[0])
    with pytest.raises(PlatformError, match="unknown x86 entry mode 'smm'"):
        entry_state("smm", write, 0)
    with pytest.raises(PlatformError, match="4 KiB aligned"):
        long_mode(write, 0, tables=0x1008)
