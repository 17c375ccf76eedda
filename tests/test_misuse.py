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


@pytest.mark.parametrize("platform", ["virt", "pc"])
def test_a_platform_that_is_not_closed_is_freed_with_its_memory(tmp_path, platform):
    import gc
    import weakref

    if platform == "pc":
        from cosim.kvm import kvm_unavailable

        if kvm_unavailable():
            pytest.skip(f"needs KVM: {kvm_unavailable()}")
        from cosim.platforms.pc import Pc

        image = tmp_path / "hlt.bin"
        image.write_bytes(b"\xfb\xf4\xeb\xfd")               # sti; hlt; jmp back
        board = Pc(image=str(image), console="none")
    else:
        from cosim.platforms.virt import Virt

        image = tmp_path / "poll.bin"
        image.write_bytes(bytes.fromhex("20e03bd5ffffff17"))   # mrs x0, cntpct_el0; b .-4 (a timer register: a hook)
        board = Virt(firmware=str(image), console="none")
    board.run(until=10_000_000)
    alive = [weakref.ref(board), weakref.ref(board.ram), weakref.ref(board.cpu0.backend)]
    del board
    gc.collect()
    assert [ref() for ref in alive] == [None, None, None]
