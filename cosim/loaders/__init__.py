"""Put guest images into memory and give the CPU its entry state.

`load_raw` / `load_elf` write through a `write(address, data)` callback (a
platform's RAM, see `memory_writer`); `cosim.loaders.x86` builds the x86 entry
state for real mode, 32-bit protected mode and 64-bit long mode.
"""

from ._image import LoadedImage, load_elf, load_image, load_raw, memory_writer

__all__ = ["LoadedImage", "load_raw", "load_elf", "load_image", "memory_writer"]
