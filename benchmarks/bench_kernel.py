"""Kernel and bus throughput, with raw SimPy measured in the same run as the peer.

    python benchmarks/bench_kernel.py

Prints events per wall second for a ping-pong of two processes and for N
independent timers (cosim vs plain simpy.Environment), and the cost of one
bus access through the register DSL (vs calling a plain method).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import simpy

from cosim import Bus, Reg, RegisterDevice, Simulation


def _rate(label: str, run: Callable[[], int]) -> float:
    start = time.perf_counter()
    events = run()
    wall = time.perf_counter() - start
    rate = events / wall
    print(f"  {label:<44} {rate / 1e6:6.2f} M events/s  ({events:,} events, {wall:.2f} s)")
    return rate


def ping_pong(sim: simpy.Environment | Simulation, rounds: int) -> int:
    env = sim.env if isinstance(sim, Simulation) else sim
    box = {"ev": env.event()}

    def ping():
        for _ in range(rounds):
            yield env.timeout(1)
            ev, box["ev"] = box["ev"], env.event()
            ev.succeed()

    def pong():
        for _ in range(rounds):
            yield box["ev"]

    env.process(ping())
    env.process(pong())
    sim.run()
    return rounds * 2


def timers(sim: simpy.Environment | Simulation, count: int, ticks: int) -> int:
    env = sim.env if isinstance(sim, Simulation) else sim

    def timer(period: int):
        for _ in range(ticks):
            yield env.timeout(period)

    for i in range(count):
        env.process(timer(1000 + i))
    sim.run()
    return count * ticks


def scheduled_chains(sim: Simulation, count: int, ticks: int) -> int:
    """`count` lazy-model style expiries: each callback schedules the next one."""

    def chain(period: int, left: list[int]) -> None:
        if left[0]:
            left[0] -= 1
            sim.schedule(period, lambda: chain(period, left))

    for i in range(count):
        chain(1000 + i, [ticks])
    sim.run()
    return count * ticks


class Scratch(RegisterDevice):
    registers = (Reg("DATA", 0x0), Reg("COUNT", 0x4))

    def read_COUNT(self) -> int:
        return 1


def bus_cost(n: int) -> None:
    sim = Simulation()
    bus = Bus("sysbus", time=sim)
    dev = Scratch("scratch")
    bus.map(0x1000, 0x100, dev)
    for label, call in (
        ("bus.write -> RW register", lambda: bus.write(0x1000, 4, 5)),
        ("bus.read  -> RW register", lambda: bus.read(0x1000, 4)),
        ("bus.read  -> hooked register", lambda: bus.read(0x1004, 4)),
        ("peer: plain Python method call", lambda: dev.read_COUNT()),
    ):
        start = time.perf_counter()
        for _ in range(n):
            call()
        per = (time.perf_counter() - start) / n * 1e6
        print(f"  {label:<44} {per:6.3f} µs per access")


def main() -> None:
    rounds, count, ticks = 300_000, 100, 3_000
    print("kernel event throughput (higher is better)")
    peer = _rate("simpy ping-pong (peer)", lambda: ping_pong(simpy.Environment(), rounds))
    ours = _rate("cosim ping-pong", lambda: ping_pong(Simulation(), rounds))
    print(f"  ratio cosim/simpy: {ours / peer:.2f}")
    peer = _rate(f"simpy {count} independent timers (peer)", lambda: timers(simpy.Environment(), count, ticks))
    ours = _rate(f"cosim {count} independent timers", lambda: timers(Simulation(), count, ticks))
    print(f"  ratio cosim/simpy: {ours / peer:.2f}")
    _rate(f"cosim {count} scheduled-call chains (lazy timers)", lambda: scheduled_chains(Simulation(), count, ticks))
    print("bus access cost (lower is better)")
    bus_cost(300_000)


if __name__ == "__main__":
    main()
