import pytest

from cosim import (Access, Device, Memory, MiB, Platform, PlatformError, Property, Reg, RegisterDevice, parse_size)


class Lamp(RegisterDevice):
    """A register that drives an output line."""

    model = "lamp"
    size = 0x10
    registers = (Reg("ON", 0x0),)

    def __init__(self, name, *, colour="red"):
        super().__init__(name)
        self.colour = colour
        self.irq = self.output("irq", required=True)

    def update(self):
        self.irq.set(bool(self.regs.ON))


class Sink(Device):
    model = "sink"

    def __init__(self, name):
        super().__init__(name)
        self.levels = []
        self.pin = self.input("in", self.levels.append)


class Board(Platform):
    name = "test-board"
    ram_size = Property(1 * MiB, "RAM size", parse_size)

    def build(self):
        self.ram = self.add("ram", Memory, size=self.ram_size)
        self.map("sysbus", 0x4000_0000, self.ram)
        self.lamp = self.add("lamp", Lamp, colour="green")
        self.map("sysbus", 0x0900_0000, self.lamp)
        self.sink = self.add("sink", Sink)
        self.wire(self.lamp.irq, self.sink.pin)


def test_build_maps_wires_and_resets():
    board = Board(ram_size="2M")
    assert board.ram.size == 2 * MiB and board.lamp.colour == "green"
    board.buses["sysbus"].write(0x0900_0000, 4, 1)
    assert board.sink.levels == [True]
    table = board.describe()
    assert "0x0000000009000000" in table and "lamp (lamp)" in table and "2 MiB" in table
    assert "lamp.irq -> sink.in" in table


def test_unknown_platform_property_names_the_known_ones():
    with pytest.raises(PlatformError, match="no property 'ram'.*ram_size"):
        Board(ram="1M")


def test_unknown_device_property_names_device_and_property():
    class Bad(Board):
        def build(self):
            self.add("lamp0", Lamp, color="blue")

    with pytest.raises(PlatformError, match="'lamp0' \\(Lamp\\) has no property 'color'; known: colour"):
        Bad()


def test_overlap_names_both_devices():
    class Clash(Board):
        def build(self):
            super().build()
            other = self.add("uart", Lamp)
            self.wire(other.irq, self.add("sink2", Sink).pin)
            self.map("sysbus", 0x0900_0008, other)

    with pytest.raises(PlatformError, match="uart.*overlaps lamp"):
        Clash()


def test_unconnected_required_output_is_a_build_error():
    class Loose(Platform):
        def build(self):
            self.add("lamp", Lamp)

    with pytest.raises(PlatformError, match="output lamp.irq of 'lamp' is required but not connected"):
        Loose()


def test_input_wired_twice_is_a_build_error():
    class Twice(Board):
        def build(self):
            super().build()
            second = self.add("lamp2", Lamp)
            self.wire(second.irq, self.sink.pin)

    with pytest.raises(PlatformError, match="sink.in is wired twice"):
        Twice()


def test_duplicate_device_name_and_missing_size():
    class Dup(Platform):
        def build(self):
            self.add("x", Sink)
            self.add("x", Sink)

    with pytest.raises(PlatformError, match="two devices are named 'x'"):
        Dup()

    class NoSize(Platform):
        def build(self):
            self.map("sysbus", 0, self.add("s", Sink))

    with pytest.raises(PlatformError, match="no size given"):
        NoSize()


@pytest.mark.parametrize("text, size", [("128M", 128 * MiB), ("64 MiB", 64 * MiB), ("0x1000", 0x1000), ("4096", 4096), ("1G", 1 << 30)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_registered_platforms_are_listed():
    from cosim import registered_platforms

    assert registered_platforms()["test-board"] is Board
