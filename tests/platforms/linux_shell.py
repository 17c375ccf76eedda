"""Driving the busybox shell of the end-to-end Linux boots over a `BufferBackend` console.

Every wait is bounded in simulated time and in wall time (`wall_limit`
seconds): a hang fails the test, it does not stall CI.
"""

import time

import pytest

from cosim import MS, SEC
from cosim.images.fetch import ImageError, busybox_initramfs_image, linux_kernel
from cosim.images.initramfs import BANNER

PROMPT = "/root # "                 # PS1 from the initramfs's /etc/profile
WALL_LIMIT = 300.0                  # seconds of wall time for any one wait


@pytest.fixture(scope="module")
def images():
    """Debian's kernel and the busybox initramfs (fetched and built once); the test skips without them."""
    try:
        return linux_kernel(), busybox_initramfs_image()
    except ImageError as error:
        pytest.skip(f"Linux images not available: {error}")


def wait_for(board, console, marker, timeout, start=0, *, wall_limit=WALL_LIMIT):
    """Run until `marker` is in the output after `start`; returns that output."""
    deadline, wall = board.sim.now + timeout, time.perf_counter() + wall_limit
    while marker not in console.output[start:].decode(errors="replace"):
        if board.sim.now >= deadline or time.perf_counter() > wall or board.sim.stop_request is not None:
            raise AssertionError(f"no {marker!r} after {board.sim.now / SEC:.3f} s simulated; output ends:\n"
                                 f"{console.output[-600:].decode(errors='replace')}")
        board.run(until=min(deadline, board.sim.now + 20 * MS))
    return console.output[start:].decode(errors="replace")


def boot_to_shell(board, console, banner_timeout, prompt_timeout, *, wall_limit=WALL_LIMIT):
    """Run until the initramfs's banner, then the first prompt after it."""
    wait_for(board, console, BANNER, banner_timeout, wall_limit=wall_limit)
    wait_for(board, console, PROMPT, prompt_timeout, console.output.find(BANNER.encode()), wall_limit=wall_limit)


def command(board, console, text, timeout=10 * SEC, *, wall_limit=WALL_LIMIT):
    """Type `text` and wait for the next prompt; returns the output without the echoed command line."""
    start = len(console.output)
    console.feed(text + "\n")
    return wait_for(board, console, "\n" + PROMPT, timeout, start, wall_limit=wall_limit).split("\n", 1)[-1]
