"""The `pc` devices' cost: timer ticks through the 8254 and 8259A, and port I/O, against plain peers.

    python benchmarks/bench_pc.py

1. A 1000 Hz tick (PIT mode 2, PIC acknowledge and EOI by a process playing the CPU)
   for 20 simulated seconds, compared with a bare SimPy process that only sleeps for
   one period per tick: the floor for any tick. The ratio is what the modelled devices cost.
2. Port reads per wall second: a PIT counter latch and LSB/MSB read (Linux's
   calibration loop), the 16550 LSR (a register-DSL read), and a plain method call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cosim import SEC, Simulation
from cosim.models.i8254 import PIT_HZ
from cosim.platforms.pc import Pc

HZ = 1000
SECONDS = 20


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def pc_ticks() -> tuple[float, int, int]:
    pc = Pc(console="none")
    io = pc.buses["io"]
    for port, base, icw3 in ((0x20, 0x30, 0x04), (0xA0, 0x38, 0x02)):
        for offset, value in ((0, 0x11), (1, base), (1, icw3), (1, 0x01)):
            io.write(port + offset, 1, value)
    latch = (PIT_HZ + HZ // 2) // HZ
    io.write(0x43, 1, 0x34)
    io.write(0x40, 1, latch & 0xFF)
    io.write(0x40, 1, latch >> 8)
    ticks = [0]

    def cpu():
        while True:
            yield pc.intr.wait_level(pc.sim.env, True)
            pc.pic.acknowledge()
            io.write(0x20, 1, 0x20)
            ticks[0] += 1

    pc.sim.process(cpu())
    wall = _timed(lambda: pc.run(until=SECONDS * SEC))
    return wall, ticks[0], pc.sim.events_processed


def bare_ticks() -> tuple[float, int]:
    sim = Simulation()
    ticks = [0]

    def sleeper():
        while True:
            yield sim.timeout(SEC // HZ)
            ticks[0] += 1

    sim.process(sleeper())
    wall = _timed(lambda: sim.run(until=SECONDS * SEC))
    return wall, ticks[0]


def port_reads(n: int = 100_000) -> None:
    pc = Pc(console="none")
    io = pc.buses["io"]
    io.write(0x61, 1, 0x01)
    io.write(0x43, 1, 0xB0)
    io.write(0x42, 1, 0xFF)
    io.write(0x42, 1, 0xFF)

    def pit_latch_read() -> None:
        for _ in range(n):
            io.write(0x43, 1, 0x80)
            io.read(0x42, 1)
            io.read(0x42, 1)

    def lsr_read() -> None:
        for _ in range(n):
            io.read(0x3FD, 1)

    class Plain:
        def read(self) -> int:
            return 0x60

    plain = Plain()

    def plain_call() -> None:
        for _ in range(n):
            plain.read()

    base = _timed(plain_call)
    for label, run in (("PIT latch + LSB/MSB read (3 port accesses)", pit_latch_read),
                       ("16550 LSR read (1 port access)", lsr_read),
                       ("plain method call (peer)", plain_call)):
        wall = _timed(run) if run is not plain_call else base
        print(f"  {label:<46} {n / wall / 1e3:8.1f} k/s  ({wall / base:5.1f}x the plain call)")


def main() -> None:
    print(f"1000 Hz tick for {SECONDS} simulated seconds")
    wall, ticks, events = pc_ticks()
    bare_wall, bare = bare_ticks()
    print(f"  pc: PIT mode 2 -> PIC -> ack + EOI     {ticks:6d} ticks  {wall:6.3f} s wall  "
          f"{SECONDS / wall:8.1f}x real time  {events / ticks:4.1f} events/tick")
    print(f"  peer: bare SimPy sleeper               {bare:6d} ticks  {bare_wall:6.3f} s wall  "
          f"{SECONDS / bare_wall:8.1f}x real time")
    print(f"  device cost: {wall / bare_wall:.1f}x the bare tick")
    print("port accesses per wall second")
    port_reads()


if __name__ == "__main__":
    main()
