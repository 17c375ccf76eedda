"""Fixtures of the virtio tests: a RAM model on a DMA bus, a transport in the harness, a driver for it."""

import pytest

from cosim import Bus, Memory
from cosim.virtio import VirtioMmio
from cosim.virtio.testing import Driver

RAM_BASE = 0x4000_0000
RAM_SIZE = 0x10_0000


@pytest.fixture
def ram():
    return Memory("ram", size=RAM_SIZE)


@pytest.fixture
def memory(ram):
    bus = Bus("dma")
    bus.map(RAM_BASE, RAM_SIZE, ram)
    return bus


@pytest.fixture
def attach(harness, ram, memory):
    """`attach(device)`: the device behind a transport in the harness, and a Driver for it."""
    def make(device):
        dut = harness(VirtioMmio("virtio0", device=device, memory=memory))
        return dut, Driver(dut, ram, RAM_BASE)
    return make
