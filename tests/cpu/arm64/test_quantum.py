"""Instruction counts of the software CPU do not depend on the quantum."""

import struct

import pytest

from cosim import us
from cosim.platforms.virt import Virt


@pytest.mark.parametrize("counting", ["block", "instruction"])
def test_a_loop_retires_the_same_instructions_whatever_the_quantum(tmp_path, counting):
    # 7 x add x0, x0, #1; b .-28: an 8-instruction block, longer than the shortest quanta.
    image = tmp_path / "spin8.bin"
    image.write_bytes(struct.pack("<8I", *[0x91000400] * 7, 0x17FFFFF9))
    counts = {}
    for quantum in ("1ns", "3ns", "1us", "7us", "1ms"):
        board = Virt(firmware=str(image), console="none", quantum=quantum, counting=counting)
        summary = board.run(until=us(200))
        counts[quantum] = board.cpu0.instructions
        assert summary.sim_time == us(200)
        board.sim.close()
    # 200 us at 1 GHz; a run may end up to one block past the end (block counting).
    assert all(200_000 <= count <= 200_008 for count in counts.values()), counts
