"""The KVM x86 CPU, measured against peers run in the same process and the same minute.

    python benchmarks/bench_kvm.py

Prints:
- the calibrated guest instruction rate, and the guest's compute speed as a
  ratio to the same loop run natively (through the full cosim loop, 1 ms quanta);
- the cost of one exit (port I/O and MMIO to a Python device model, HLT) in µs,
  with the port-I/O cost as a ratio to a bare ctypes KVM_RUN loop;
- simulated/wall time for an idle guest taking 1 kHz timer interrupts (pc platform);
- the overhead per quantum for quanta of 10 µs, 100 µs and 1 ms.

Targets (issue 4): idle guest >= 100x real time; port-I/O exit <= 15 µs;
compute ratio >= 0.95 at 1 ms quanta on a hardware-virtualized host. On a host
where KVM is not hardware accelerated the compute figure is the host's
emulated rate, and the benchmark says so.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import ClassVar

from cosim import MS, SEC, US, Access, Device, Memory, MiB, Platform, Property, Reg, RegisterDevice
from cosim.cpu.x86.calibrate import LOOP_CODE, calibrate
from cosim.cpu.x86.machine import add_kvm_x86_cpu
from cosim.kvm import Kvm
from cosim.cpu.x86.state import X86State, set_cpuid
from cosim.kvm._uapi import Exit, Ioctl, ffi
from cosim.loaders.x86 import long_mode

CODE = 0x10_0000
DEVICE_PORT = 0x80
DEVICE_MMIO = 0xE000_0000
EXITS = 2000
REPEATS = 3


class Sink(RegisterDevice):
    """One read/write register: the cheapest Python device model the register DSL makes."""

    model: ClassVar[str] = "bench-sink"
    size = 4
    registers = (Reg("DATA", 0x0, access=Access.RW),)


class Line(Device):
    """An interrupt line held high whose INTA returns nothing: wakes HLT without injecting.

    Ends the run after `EXITS` acknowledge cycles (one per wake-up).
    """

    model: ClassVar[str] = "bench-line"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.out = self.output("out")
        self.cycles = 0

    def reset(self) -> None:
        self.out.set(True)

    def acknowledge(self) -> None:
        self.cycles += 1
        if self.cycles == EXITS:
            self.clock.request_stop(0, "enough HLT exits")  # type: ignore[attr-defined]
        return None


class Machine(Platform):
    """RAM, a Sink on a port and on MMIO, a KVM CPU running a raw 64-bit image."""

    image = Property("", "raw image")
    quantum = Property(MS, "quantum")
    wake = Property(False, "hold INTR high (HLT benchmark)")

    def build(self) -> None:
        self.ram = self.add("ram", Memory, size=4 * MiB)
        self.map("sysbus", 0, self.ram)
        self.port_sink = self.add("port_sink", Sink)
        self.map(self.bus("io", width=16), DEVICE_PORT, self.port_sink)
        self.mmio_sink = self.add("mmio_sink", Sink)
        self.map("sysbus", DEVICE_MMIO, self.mmio_sink)
        line = self.add("line", Line) if self.wake else None
        self.cpu0 = add_kvm_x86_cpu(self, kernel=self.image, load_address=CODE, quantum=self.quantum,
                                    intr=line.out if line else None, acknowledge=line.acknowledge if line else None)


def machine(code: bytes, **props) -> Machine:
    with tempfile.NamedTemporaryFile(suffix=".bin") as image:
        image.write(code)
        image.flush()
        return Machine(image=image.name, **props)


def timed(run) -> tuple[float, float]:
    """(wall s, this thread's CPU s) of run(): the machine is shared, so CPU time is the fair figure."""
    wall, cpu = time.perf_counter(), time.thread_time()
    run()
    return time.perf_counter() - wall, time.thread_time() - cpu


def run_code(code: bytes, **props) -> tuple[float, float, Machine]:
    board = machine(code, **props)
    wall, cpu = timed(lambda: board.run(until=100 * SEC))
    return wall, cpu, board


def counted(body: bytes, n: int) -> bytes:
    """mov ebx, DEVICE_MMIO; mov ecx, n; 1: body; dec ecx; jnz 1b; cli; hlt."""
    loop = body + b"\xff\xc9"
    jump = -(len(loop) + 2)
    return (b"\xbb" + struct.pack("<I", DEVICE_MMIO) + b"\xb9" + struct.pack("<I", n) + loop
            + b"\x75" + struct.pack("<b", jump) + b"\xfa\xf4")


OUT_PORT = b"\xe7\x80"                                      # out %eax, $0x80
MMIO_STORE = b"\x89\x03"                                    # mov %eax, (%rbx)
HLT_LOOP = b"\xfb" + b"\xf4\xeb\xfd"                         # sti; 1: hlt; jmp 1b


def bare_port_exit_cost(n: int) -> float:
    """µs per exit of a bare ctypes loop: KVM_RUN, check the exit, nothing else."""
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = mmap.mmap(-1, 4 * MiB)          # page-aligned, as memory slots must be
    ram = ctypes.c_char.from_buffer(buffer)
    with Kvm() as kvm:
        vm = kvm.create_vm()
        vm.add_memory(0, 4 * MiB, ctypes.addressof(ram))
        vcpu = vm.create_vcpu(0)
        set_cpuid(kvm, vcpu)

        def write(address: int, data: bytes) -> None:
            ctypes.memmove(ctypes.addressof(ram) + address, data, len(data))

        write(CODE, counted(OUT_PORT, n))
        X86State(vcpu).set_entry(long_mode(write, CODE))
        # Safe: the vCPU's mapping starts with struct kvm_run (see cosim.kvm._system.Vcpu).
        base = int(ffi.cast("unsigned long", vcpu.mapping))
        reason = ctypes.c_uint32.from_address(base + ffi.offsetof("struct kvm_run", "exit_reason"))
        ioctl, fd, request = libc.ioctl, vcpu.fd, Ioctl.RUN
        exits = 0

        def loop() -> None:
            nonlocal exits
            while True:
                if ioctl(fd, request, 0) != 0:
                    raise OSError(ctypes.get_errno(), "KVM_RUN")
                if reason.value != Exit.IO:
                    break
                exits += 1

        wall, cpu = timed(loop)
        return wall / exits * 1e6, cpu / exits * 1e6


def main() -> int:
    cal = calibrate()
    print("cosim KVM x86 benchmark")
    print(f"  calibrated guest rate             {cal.guest_ips / 1e6:10.3f} M instructions/s")
    print(f"  native rate (same loop)           {cal.native_ips / 1e6:10.1f} M instructions/s")
    print(f"  calibration ratio guest/native    {cal.ratio:10.4f}")

    print("  (times are this thread's CPU time; wall time in brackets: other processes share the host)")
    iterations = max(10_000, int(0.15 * cal.guest_ips))
    wall, cpu, board = run_code(LOOP_CODE(iterations), quantum=MS)
    guest_rate = (2 * iterations + 2) / cpu
    ratio = guest_rate / cal.native_ips
    print(f"  compute through cosim, 1 ms quanta {guest_rate / 1e6:9.3f} M instructions/s = {ratio:.4f} x native"
          f" [{(2 * iterations + 2) / wall / 1e6:.3f} M/s wall]   (target >= 0.95 on a hardware-virtualized host)")
    if not cal.accelerated:
        print("    NOTE: KVM is not hardware accelerated on this host: this is the host's emulated rate,"
              " not a measure of cosim")

    # Exit costs: the best of REPEATS runs each (other engineers' jobs share this host's cores).
    costs = {}
    for label, body, key in (("port I/O", OUT_PORT, "io"), ("MMIO", MMIO_STORE, "mmio")):
        runs = [run_code(counted(body, EXITS))[:2] for _ in range(REPEATS)]
        wall, cpu = min(runs, key=lambda r: r[1])
        costs[key] = cpu / EXITS * 1e6
        print(f"  {label + ' exit to a Python model':<34}{costs[key]:10.2f} µs [{wall / EXITS * 1e6:.2f} µs wall]")
    bare_wall, bare = min((bare_port_exit_cost(EXITS) for _ in range(REPEATS)), key=lambda r: r[1])
    print(f"  bare ctypes KVM_RUN port-I/O exit {bare:10.2f} µs [{bare_wall:.2f} µs wall]"
          f"   cosim/bare = {costs['io'] / bare:.2f}   (target: cosim <= 15 µs)")
    hlt = []
    for _ in range(REPEATS):
        board = machine(HLT_LOOP, wake=True)
        wall, cpu = timed(lambda: board.run(until=100 * SEC))
        exits = max(1, board.cpu0.exits["idle"])
        hlt.append((cpu / exits * 1e6, wall / exits * 1e6, exits))
    cpu_us, wall_us, exits = min(hlt)
    print(f"  HLT exit (wake, run, halt again)  {cpu_us:10.2f} µs [{wall_us:.2f} µs wall]   ({exits} exits)")

    idle_wall, idle_cpu = max((idle_guest() for _ in range(REPEATS)), key=lambda r: r[1])
    print(f"  idle guest, 1 kHz PIT ticks       {idle_cpu:10.1f} x real time [{idle_wall:.1f} x wall]"
          f"   (target >= 100x)")

    for quantum in (10 * US, 100 * US, MS):
        overhead = min(quantum_overhead(quantum, cal.guest_ips) for _ in range(REPEATS))
        print(f"  overhead per quantum of {quantum // US:>5} µs   {overhead:10.2f} µs")
    return 0


def idle_guest() -> tuple[float, float]:
    from cosim.platforms.pc import Pc
    from cosim.toolchain import assemble

    source = Path(__file__).resolve().parents[1] / "tests" / "guests" / "x86" / "timer_hlt.S"
    guest = assemble(source, "x86_64", CODE, Path(tempfile.gettempdir()) / "cosim-bench-guests")
    board = Pc(image=str(guest.elf), console="none")
    summary = None

    def run() -> None:
        nonlocal summary
        summary = board.run(until=5 * SEC)

    wall, cpu = timed(run)
    if summary is None or summary.status != 0:
        raise RuntimeError(f"timer guest failed: {summary}")
    return summary.sim_time / SEC / wall, summary.sim_time / SEC / cpu


QUANTA = {10 * US: 50, 100 * US: 10, MS: 3}     # how many of each to run


def quantum_overhead(quantum: int, ips: float) -> float:
    """µs of CPU time per quantum beyond the guest's own execution, for a guest that never exits.

    One quantum runs first, so VM start-up (first entry, memory faults) is not counted.
    """
    board = machine(b"\xeb\xfe", quantum=quantum)           # 1: jmp 1b
    board.run(until=quantum)
    before = board.cpu0.instructions
    _, cpu = timed(lambda: board.run(until=(1 + QUANTA[quantum]) * quantum))
    guest_seconds = (board.cpu0.instructions - before) / board.cpu0.backend.ips
    board.sim.close()
    return (cpu - guest_seconds) / QUANTA[quantum] * 1e6


if __name__ == "__main__":
    sys.exit(main())
