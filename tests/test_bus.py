import pytest

from cosim import Bus, BusError, Memory, ModelError, PlatformError, Response, Simulation, ns
from cosim._bus import Transaction


class Scratch:
    """A minimal target: remembers the last write."""

    name = "scratch"

    def __init__(self):
        self.last = None

    def read(self, offset, size):
        return 0x1122334455667788 & ((1 << (size * 8)) - 1)

    def write(self, offset, size, value):
        self.last = (offset, size, value)


class Broken:
    name = "broken"

    def read(self, offset, size):
        raise KeyError("oops")

    def write(self, offset, size, value):
        raise BusError(Response.COMMAND_ERROR, detail="read-only")


def test_routing_gives_targets_offsets():
    bus = Bus("sysbus")
    target = Scratch()
    bus.map(0x1000, 0x100, target)
    bus.write(0x1010, 4, 0xABCD)
    assert target.last == (0x10, 4, 0xABCD)
    assert bus.read(0x10FC, 2) == 0x7788


@pytest.mark.parametrize("base, size", [(0x1080, 0x100), (0x0F80, 0x100), (0x1000, 1), (0x0, 0x2000)])
def test_overlaps_are_rejected_naming_both(base, size):
    bus = Bus("sysbus")
    bus.map(0x1000, 0x100, Scratch())
    other = Scratch()
    other.name = "uart1"
    with pytest.raises(PlatformError, match="uart1.*overlaps scratch"):
        bus.map(base, size, other)


def test_adjacent_ranges_are_fine_and_zero_size_is_not():
    bus = Bus("sysbus")
    bus.map(0x1000, 0x100, Scratch())
    bus.map(0x1100, 0x100, Scratch())
    bus.map(0x0F00, 0x100, Scratch())
    with pytest.raises(PlatformError, match="empty range"):
        bus.map(0x4000, 0, Scratch())
    assert [m.base for m in bus.mappings] == [0x0F00, 0x1000, 0x1100]


def test_io_space_is_the_same_machinery_with_16_bit_addresses():
    io = Bus("io", width=16)
    io.map(0x3F8, 8, Scratch())
    with pytest.raises(PlatformError, match="outside the 16-bit"):
        io.map(0xFFFF, 2, Scratch())


def test_unmapped_and_crossing_accesses_give_defined_responses():
    bus = Bus("sysbus")
    bus.map(0x1000, 0x100, Scratch())
    with pytest.raises(BusError) as info:
        bus.read(0x2000, 4)
    assert info.value.status is Response.ADDRESS_ERROR and info.value.address == 0x2000
    with pytest.raises(BusError) as info:
        bus.read(0x10FE, 4)
    assert info.value.status is Response.BURST_ERROR


def test_transport_sets_status_and_data():
    bus = Bus("sysbus")
    bus.map(0x1000, 0x100, Scratch())
    txn = Transaction.read(0x1000, 4, initiator="cpu0")
    assert bus.transport(txn) is Response.OK
    assert txn.value == 0x55667788
    bad = Transaction.write(0x9000, 4, 1)
    assert bus.transport(bad) is Response.ADDRESS_ERROR


def test_model_exceptions_become_model_errors_with_name_and_time():
    sim = Simulation()
    bus = Bus("sysbus", time=sim)
    bus.map(0x0, 0x100, Broken())
    sim.run(until=ns(5))
    with pytest.raises(ModelError, match=r"'broken' failed in read of offset 0x8 at 5 ns: KeyError"):
        bus.read(0x8, 4)
    with pytest.raises(BusError) as info:  # a BusError is a defined response, not a bug
        bus.write(0x8, 4, 0)
    assert info.value.status is Response.COMMAND_ERROR


def test_memory_buffer_numpy_view_and_host_address_agree():
    import ctypes

    ram = Memory("ram", 0x2000)
    bus = Bus("sysbus")
    bus.map(0x4000_0000, ram.size, ram)
    bus.write(0x4000_0010, 4, 0xDEADBEEF)
    assert ram.array[0x10:0x14].tolist() == [0xEF, 0xBE, 0xAD, 0xDE]
    assert ctypes.string_at(ram.address + 0x10, 4) == b"\xef\xbe\xad\xde"
    ram.array[0x20] = 7
    assert bus.read(0x4000_0020, 1) == 7


def test_rom_write_is_an_error_or_ignored_by_property():
    rom = Memory("rom", 0x1000, read_only=True)
    rom.load(b"\x01\x02")
    with pytest.raises(BusError):
        rom.write(0, 1, 9)
    quiet = Memory("rom", 0x1000, read_only=True, on_write="ignore")
    quiet.write(0, 1, 9)
    assert rom.read(0, 2) == 0x0201 and quiet.read(0, 1) == 0


def test_memory_remembers_where_outside_writes_went():
    """A CPU that caches translated code drops just what was written (Memory.written_since)."""
    from cosim._memory import WRITE_LOG

    ram = Memory("ram", 0x2000)
    assert ram.writes == 0 and ram.written_since(0) == []
    ram.write(0x10, 4, 1)
    ram.store(0x100, b"dma!")
    ram.debug_write(0x200, 2, 7)
    ram.load(b"\0" * 8, 0x1000)
    assert ram.writes == 4
    assert ram.written_since(0) == [(0x10, 4), (0x100, 4), (0x200, 2), (0x1000, 8)]
    assert ram.written_since(2) == [(0x200, 2), (0x1000, 8)] and ram.written_since(4) == []
    for index in range(WRITE_LOG):
        ram.write(4 * index, 4, index)
    assert ram.written_since(4) == [(4 * index, 4) for index in range(WRITE_LOG)]
    assert ram.written_since(3) is None              # forgotten: the caller drops everything


def test_memory_rejects_bad_sizes_and_oversized_images(tmp_path):
    with pytest.raises(PlatformError, match="multiple"):
        Memory("ram", 100)
    ram = Memory("ram", 0x1000)
    with pytest.raises(PlatformError, match="do not fit"):
        ram.load(b"x" * 0x1001)
    with pytest.raises(PlatformError, match="does not exist"):
        Memory("flash", 0x1000, image=tmp_path / "missing.bin")


class Banked:
    """A target answering with its own number: which copy did the access reach?"""

    def __init__(self, name, number):
        self.name, self.number, self.last = name, number, None

    def read(self, offset, size):
        return self.number

    def write(self, offset, size, value):
        self.last = (offset, size, value)

    def debug_read(self, offset, size):
        return self.number


def test_a_view_answers_with_its_own_targets_and_the_shared_bus_elsewhere():
    from cosim import BusView

    bus = Bus("sysbus")
    shared, mine = Banked("gic.cpu0", 0), Banked("gic.cpu1", 1)
    bus.map(0x1000, 0x100, shared)
    ram = Memory("ram", size=0x1000)
    bus.map(0x4000, 0x1000, ram)
    view = bus.view("sysbus.cpu1", {0x1000: mine})
    assert isinstance(view, BusView)
    assert (bus.read(0x1004, 4), view.read(0x1004, 4)) == (0, 1)
    view.write(0x1008, 4, 5)
    assert mine.last == (8, 4, 5) and shared.last is None
    view.write(0x4010, 4, 0xCAFE)                      # not overridden: the shared RAM
    assert bus.read(0x4010, 4) == 0xCAFE
    assert view.debug_read(0x1000, 4) == 1 and view.debug_read_bytes(0x4010, 2) == b"\xfe\xca"
    assert [m.target.name for m in view.mappings] == ["gic.cpu1", "ram"]
    late = Banked("late", 7)
    bus.map(0x8000, 0x10, late)                        # mapped on the bus after the view was made
    assert view.read(0x8000, 4) == 7 and view.find(0x9000) is None


def test_a_view_overrides_only_what_the_bus_maps():
    bus = Bus("sysbus")
    bus.map(0x1000, 0x100, Scratch())
    with pytest.raises(PlatformError, match=r"overrides 0x1004, where sysbus maps nothing"):
        bus.view("v", {0x1004: Scratch()})
    with pytest.raises(PlatformError, match="maps nothing"):
        bus.view("v", {0x2000: Scratch()})
