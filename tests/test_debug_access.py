"""Debug access: the bus and every model answer a debug read as a read would, with no side effect."""

from collections.abc import Callable

import pytest

from cosim import Bus, BusError, Memory, ModelError, Reg, RegisterDevice, Response, Simulation, ms, s
from cosim.models.gicv2 import Gicv2
from cosim.models.i8254 import I8254
from cosim.models.i8259 import I8259
from cosim.models.ns16550 import Ns16550
from cosim.models.pl011 import Pl011
from cosim.models.pl031 import Pl031
from cosim.models.pl061 import Pl061
from cosim.models.simctl import SimControl
from cosim.models.sp804 import Sp804
from cosim.testing import Harness


class Fifo(RegisterDevice):
    registers = (Reg("DATA", 0x0), Reg("CTRL", 0x4, sizes=(1, 4)))

    def __init__(self, name):
        super().__init__(name)
        self.data = [1, 2, 3]

    def read_DATA(self):
        return self.data[0] if self.data else 0

    def after_read_DATA(self, value):
        self.data.pop(0)


class NoDebug:
    name = "legacy"

    def read(self, offset, size):
        return 0

    def write(self, offset, size, value):
        pass


class Broken(Fifo):
    def read_DATA(self):
        raise KeyError("oops")


@pytest.fixture
def bus():
    bus = Bus("sysbus")
    bus.map(0x0, 0x1000, Memory("rom", 0x1000, read_only=True))
    bus.map(0x1000, 0x1000, Memory("ram", 0x1000))
    bus.map(0x2000, 0x8, Fifo("fifo"))
    return bus


def test_bus_debug_read_has_no_side_effect(bus):
    assert [bus.debug_read(0x2000, 4) for _ in range(3)] == [1, 1, 1]
    assert [bus.read(0x2000, 4) for _ in range(3)] == [1, 2, 3]


def test_debug_write_reaches_rom_and_registers_without_hooks(bus):
    bus.debug_write(0x10, 4, 0xD4200000)              # a breakpoint planted in ROM (BRK #0)
    assert bus.read(0x10, 4) == 0xD4200000
    with pytest.raises(BusError):
        bus.write(0x10, 4, 0)                         # a guest write to ROM still fails
    bus.debug_write(0x2004, 4, 0x55)
    assert bus.debug_read(0x2004, 4) == 0x55


def test_byte_ranges_cross_mappings(bus):
    bus.debug_write_bytes(0xFFE, b"\x01\x02\x03\x04")  # the last ROM bytes and the first RAM bytes
    assert bus.debug_read_bytes(0xFFC, 8) == b"\x00\x00\x01\x02\x03\x04\x00\x00"
    bus.debug_write(0x2004, 4, 0x0A0B0C0D)
    # A device is read in naturally aligned words, never popped.
    assert bus.debug_read_bytes(0x2000, 8) == b"\x01\x00\x00\x00\x0D\x0C\x0B\x0A"
    assert bus.debug_read_bytes(0x2005, 2) == b"\x0C\x0B"   # byte accesses where the register allows them


def test_debug_errors_name_where(bus):
    with pytest.raises(BusError) as error:
        bus.debug_read_bytes(0x1FFE, 0x10)              # the device range ends at 0x2008; 0x2008 is unmapped
    assert error.value.status is Response.ADDRESS_ERROR and error.value.address == 0x2008
    bus.map(0x3000, 0x10, NoDebug())
    with pytest.raises(BusError, match="legacy has no debug access") as error:
        bus.debug_read(0x3000, 4)
    assert error.value.status is Response.COMMAND_ERROR and error.value.address == 0x3000
    bus.map(0x4000, 0x8, Broken("broken"))
    with pytest.raises(ModelError, match="'broken' failed in debug access of DATA"):
        bus.debug_read(0x4000, 4)


# -- every model: a debug read equals a real read and leaves no trace -----------------------------

def _reg_offsets(device: RegisterDevice) -> list[tuple[int, int]]:
    return [(reg.offset + i * reg.step, 4 if 4 in reg.access_sizes else reg.access_sizes[0])
            for reg in device.registers for i in range(reg.count)]


def _pl011(sim):
    uart = Harness(sim, Pl011("uart"))
    for offset, value in ((0x30, 0x301), (0x2C, 0x10), (0x38, 0x70)):      # UARTEN|TXE|RXE, FEN, IMSC RX|TX|RT
        uart.write(offset, value)
    uart.device.receive(b"abc")
    uart.write(0x0, ord("x"))
    return uart, _reg_offsets(uart.device), [uart.device.irq]


def _ns16550(sim):
    com = Harness(sim, Ns16550("com"))
    for offset, value in ((1, 0x0F), (2, 0x01), (4, 0x10)):               # IER all, FIFO on, loopback
        com.write(offset, value, 1)
    for byte in range(17):
        com.write(0, byte, 1)                                              # one too many: an overrun
    com.write(4, 0x13, 1)                                                  # RTS, DTR: modem deltas
    return com, [(o, 1) for o in range(8)], [com.device.irq]


def _sp804(sim):
    timer = Harness(sim, Sp804("timer"))
    timer.write(0x00, 0x10)
    timer.write(0x08, 0xE2)
    timer.run(ms(1))
    return timer, _reg_offsets(timer.device), [timer.device.timintc]


def _simctl(sim):
    ctl = Harness(sim, SimControl("ctl"))
    sim.run(until=s(5))                                                     # 5 s: the high half of the ns is 1
    return ctl, _reg_offsets(ctl.device), []


def _gic(sim):
    gic = Gicv2("gic", num_spis=64)
    cpu = Harness(sim, gic.cpu_interface(0))
    dist = gic.distributor
    dist.write(0x000, 4, 1)
    dist.write(0x104, 4, 1 << 8)                                            # enable SPI 40
    dist.write(0x828, 4, 1)                                                 # target CPU 0
    dist.write(0x204, 4, 1 << 8)                                            # pending
    dist.write(0x100, 4, 1 << 3)                                            # enable SGI 3
    dist.write(0xF00, 4, (2 << 24) | 3)                                     # SGI 3 to this CPU
    cpu.write(0x04, 0xF0)
    cpu.write(0x00, 1)
    return cpu, _reg_offsets(cpu.device), [gic.irq(0)]


def _i8254(sim):
    pit = Harness(sim, I8254("pit"))
    pit.write(3, 0x34, 1)                                                   # counter 0: mode 2, LSB then MSB
    pit.write(0, 0xE8, 1)
    pit.write(0, 0x03, 1)
    pit.write(3, 0xB0, 1)                                                   # counter 2: mode 0, LSB then MSB
    pit.write(2, 0x10, 1)
    pit.write(2, 0x27, 1)
    pit.run(ms(1) // 3)
    pit.write(3, 0x00, 1)                                                   # latch counter 0
    pit.write(3, 0xE8, 1)                                                   # read-back: status of counter 2
    return pit, [(o, 1) for o in range(4)], [pit.device.irq0]


def _i8259(sim):
    pic = Harness(sim, I8259("pic").master, size=2)
    for offset, value in ((0, 0x11), (1, 0x08), (1, 0x04), (1, 0x01), (1, 0x00)):
        pic.write(offset, value, 1)
    pic.device.pair.irq(1)(True)
    pic.write(0, 0x0C, 1)                                                   # OCW3: poll
    return pic, [(0, 1), (1, 1)], [pic.device.pair.intr]


def _pl031(sim):
    rtc = Harness(sim, Pl031("rtc", start=100))
    rtc.write(0x04, 103)                                                    # RTCMR: a match at 3 s
    sim.run(until=s(4))                                                     # masked: RIS catches up when read
    return rtc, _reg_offsets(rtc.device), [rtc.device.irq]


def _pl061(sim):
    gpio = Harness(sim, Pl061("gpio"))
    gpio.write(0x400, 0x0F)                                                 # pins 0-3 out, 4-7 in
    gpio.write(0x410, 0xF0)
    gpio.write(0x3FC, 0x05)                                                 # GPIODATA, every bit selected
    gpio.device.pin_in[5](True)                                             # an edge on pin 5
    return gpio, _reg_offsets(gpio.device), [gpio.device.irq]


SETUPS: dict[str, Callable] = {f.__name__[1:]: f for f in (_pl011, _ns16550, _sp804, _simctl, _gic, _i8254, _i8259,
                                                           _pl031, _pl061)}


def _real_reads(dut: Harness, offsets) -> list[int]:
    return [dut.read(offset, size) for offset, size in offsets]


@pytest.mark.parametrize("model", SETUPS)
def test_model_debug_reads_match_reads_and_leave_no_trace(model):
    twins = []
    for _ in range(2):
        sim = Simulation()
        twins.append((sim, *SETUPS[model](sim)))
    (sim_a, a, offsets, lines_a), (sim_b, b, _, lines_b) = twins
    seen = [a.device.debug_read(offset, size) for offset, size in offsets for _ in range(2)]
    assert [line.level for line in lines_a] == [line.level for line in lines_b]
    # Each debug read gave what the first real read of that register gives...
    for (offset, size), value in zip(offsets, seen[::2]):
        sim = Simulation()
        fresh, _, _ = SETUPS[model](sim)
        assert fresh.read(offset, size) == value, f"{model} {fresh.device.describe_offset(offset)}"
        sim.close()
    # ...and left the device as it was: the twins read alike from here on.
    assert _real_reads(a, offsets) == _real_reads(b, offsets)
    assert [line.level for line in lines_a] == [line.level for line in lines_b]
    sim_a.close()
    sim_b.close()


def test_byte_ranges_inside_device_words_and_byte_wide_ports(bus):
    bus.debug_write(0x2004, 4, 0x0A0B0C0D)
    assert bus.debug_read_bytes(0x2005, 1) == b"\x0C"           # a byte of a word-only register: the word, sliced
    bus.debug_write_bytes(0x2006, b"\xEE")                      # read, patch, write back the whole word
    assert bus.debug_read(0x2004, 4) == 0x0AEE0C0D
    uart = Ns16550("com")                                        # one-byte ports
    bus.map(0x3000, 8, uart)
    bus.debug_write_bytes(0x3007, b"\x5A")                      # SCR
    assert bus.debug_read_bytes(0x3007, 1) == b"\x5A" and uart.regs.SCR == 0x5A
