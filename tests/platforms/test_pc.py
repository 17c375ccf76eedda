"""The `pc` platform: its I/O map, its wiring, and the devices working together through the io bus."""

import pytest

from cosim import MiB, Memory, Platform, PlatformError
from cosim.chardev import BufferBackend
from cosim.cli import main
from cosim.models.i8254 import edges, time_of_edge
from cosim.models.i8259 import I8259
from cosim.platforms.pc import PC_IO_MAP, SIMCTL_PORTS, Pc


def linux_pic_init(io) -> None:
    for port, base, icw3 in ((0x20, 0x30, 0x04), (0xA0, 0x38, 0x02)):
        for offset, value in ((0, 0x11), (1, base), (1, icw3), (1, 0x01)):
            io.write(port + offset, 1, value)


def test_describe_prints_the_io_map_and_wiring(capsys):
    assert main(["describe", "pc", "--console", "none", "-P", "ram_size=64M"]) == 0
    out = capsys.readouterr().out
    assert "io (16-bit)" in out and "64 MiB  ram (memory)" in out
    for line in ("0x0020  0x0021         0x2  pic.master", "0x0040  0x0043         0x4  pit (i8254)",
                 "0x0061  0x0061         0x1  pit.port_b", "0x00a0  0x00a1         0x2  pic.slave",
                 "0x03f8  0x03ff         0x8  com1 (ns16550)", "0x04d0  0x04d1         0x2  pic.elcr",
                 "0x0080  0x0080         0x1  post (post-port)"):
        assert line in out
    for wire in ("pic.cascade -> pic.irq2", "pit.irq0    -> pic.irq0", "com1.irq    -> pic.irq4"):
        assert wire in out


def test_layout_ram_at_zero_sim_control_on_its_ports_and_no_cpu_without_an_image():
    pc = Pc(console="none", ram_size="32M")
    ram = pc.buses["sysbus"].find(0)
    assert ram is not None and isinstance(ram.target, Memory) and ram.size == 32 * MiB
    io = pc.buses["io"]
    assert io.width == 16
    assert SIMCTL_PORTS == PC_IO_MAP["simctl"] == (0x500, 0x20)
    assert all(io.find(port).target is pc.simctl for port in range(0x500, 0x520))
    assert io.read(0x500, 4) == 0x4D49_5343                 # SIMCTL_ID
    assert pc.intr is pc.pic.intr and not pc.intr.required and not pc.intr.connected
    assert "cpu0" not in pc.devices
    pc.sim.close()


def test_pit_ticks_reach_the_cpu_pin_through_the_pic():
    pc = Pc(console="none")
    io = pc.buses["io"]
    linux_pic_init(io)
    io.write(0x43, 1, 0x34)                          # counter 0, mode 2: Linux's periodic tick
    io.write(0x40, 1, 11932 & 0xFF)
    io.write(0x40, 1, 11932 >> 8)
    load = edges(pc.sim.now) + 1
    serviced = []

    def cpu():                                       # what the CPU backend will do: INTA, then the handler's EOI
        while True:
            yield pc.intr.wait_level(pc.sim.env, True)
            serviced.append((pc.sim.now, pc.pic.acknowledge()))
            io.write(0x20, 1, 0x20)

    pc.sim.process(cpu())
    pc.run(until=time_of_edge(load + 5 * 11932) + 1)
    # The control word itself raises OUT (low in the power-on mode 0 state): one tick at once.
    assert serviced[0] == (0, 0x30)
    assert serviced[1:] == [(time_of_edge(load + m * 11932), 0x30) for m in range(1, 6)]


def test_com1_output_and_interrupt_on_irq4():
    backend = BufferBackend()
    pc = Pc(console=backend)
    io = pc.buses["io"]
    linux_pic_init(io)
    for char in b"hi\n":
        io.write(0x3F8, 1, char)
    assert backend.output == b"hi\n"
    io.write(0x3F9, 1, 0x02)                         # IER: THR empty interrupt
    assert not pc.intr.level                         # MCR.OUT2 clear: the PC's buffer keeps IRQ4 low
    io.write(0x3FC, 1, 0x0B)                         # MCR: DTR, RTS, OUT2 (what Linux's 8250 driver sets)
    assert pc.intr.level and pc.pic.acknowledge() == 0x34
    pc.sim.close()


def test_com1_irq_is_gated_by_mcr_out2_and_off_in_loopback():
    pc = Pc(console="none")
    io = pc.buses["io"]
    io.write(0x3F9, 1, 0x02)                         # IER: THR empty (pending at once)
    levels = []
    for mcr in (0x00, 0x08, 0x18, 0x08, 0x03):       # -, OUT2, OUT2 + LOOP, OUT2, DTR | RTS
        io.write(0x3FC, 1, mcr)
        levels.append(pc.com1.irq.level)
    assert levels == [False, True, False, True, False]
    pc.sim.close()


def test_port_0x80_takes_post_codes_and_reads_them_back():
    pc = Pc(console="none")
    io = pc.buses["io"]
    assert io.find(0x80).target is pc.post and io.read(0x80, 1) == 0
    io.write(0x80, 1, 0x42)
    assert io.read(0x80, 1) == 0x42 and pc.post.code == 0x42
    pc.sim.close()


def test_a_guest_writing_port_0x80_is_answered(tmp_path):
    import subprocess
    import sys

    from cosim.kvm import kvm_unavailable

    if kvm_unavailable():
        pytest.skip(f"needs KVM: {kvm_unavailable()}")
    image = tmp_path / "post.bin"
    # mov al, 0x42; out 0x80, al; xor al, al; in al, 0x80; mov dx, 0x508 (SIMCTL_EXIT); out dx, al
    image.write_bytes(bytes.fromhex("b042 e680 30c0 e480 66ba0805 ee") + b"\xeb\xfe")
    proc = subprocess.run([sys.executable, "-m", "cosim", "run", "pc", "--image", str(image), "--console", "none",
                           "--until", "10ms"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0x42, proc.stderr                   # the code read back is the exit status
    assert "0x80 failed" not in proc.stderr                       # no "unmapped port" warning


def test_a_pic_pair_without_its_cascade_wire_is_rejected_when_built():
    class Broken(Platform):
        def build(self) -> None:
            self.add("pic", I8259)

    with pytest.raises(PlatformError, match="output pic.cascade of 'pic' is required but not connected"):
        Broken()


def test_cosim_list_shows_the_pc_and_its_models(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("  pc ", "  i8254 ", "  i8259 ", "  ns16550 "))
