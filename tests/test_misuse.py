"""Mistakes made from Python are refused where they are made, not stored or shadowed silently."""

import pytest

from cosim import Bus, BusError, Memory, PlatformError, Response, Simulation
from cosim.models.pl011 import Pl011


def test_a_value_wider_than_the_access_is_refused_by_the_bus():
    bus = Bus("sysbus")
    ram = Memory("ram", 0x1000)
    bus.map(0, ram.size, ram)
    bus.write(0x10, 2, 0xFFFF)
    for value in (0x1_0000, -1):
        with pytest.raises(BusError, match=r"does not fit in a 2-byte write") as info:
            bus.write(0x10, 2, value)
        assert info.value.status is Response.COMMAND_ERROR and info.value.address == 0x10
    assert bus.read(0x10, 4) == 0xFFFF                  # nothing stored


def test_one_device_cannot_join_two_simulations():
    uart = Pl011("uart0")
    first = Simulation()
    uart.attach(first)
    uart.attach(first)                                   # again in the same one: harmless
    with pytest.raises(PlatformError, match="device 'uart0' is already attached to another simulation"):
        uart.attach(Simulation())


def test_two_model_classes_with_one_name_are_refused(monkeypatch):
    from cosim import Device
    from cosim._registry import registered_models

    registered_models()                                  # the real ones import cleanly
    shadow = type("Shadow", (Device,), {"model": "pl011", "__module__": "cosim.models.shadow"})
    with pytest.raises(PlatformError, match=r"two models are named 'pl011': .*Pl011 and cosim.models.shadow.Shadow"):
        registered_models()
    del shadow
    import gc

    gc.collect()                                         # __subclasses__ holds weak references
    registered_models()
