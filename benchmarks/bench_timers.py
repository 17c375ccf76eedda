"""Lazy timer models: three SP804s vs bare scheduled callbacks, measured in the same run.

    python benchmarks/bench_timers.py

Simulates 10 s with three SP804 timers at 1 MHz in periodic mode, each
interrupting every 10 ms (3000 interrupts). A tiny Python ISR, run as the
interrupt is taken, clears each interrupt through the bus. The peer is the
same 3000 expiries as bare scheduled callbacks, without timer models or a
bus. Finally, what a model with one event per counter tick would cost,
extrapolated from a short measured run of a per-tick SimPy process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cosim import MS, SEC, US, Bus, Hz, Simulation
from cosim.models.sp804 import Sp804

TIMERS = 3
SIM_TIME = 10 * SEC
PERIOD = 10 * MS
CLOCK_HZ = 1_000_000
TICKS = PERIOD * CLOCK_HZ // SEC            # 10_000 ticks of 1 µs per interrupt
BASE, STRIDE = 0x1000_0000, 0x1000
LOAD, CONTROL, INTCLR = 0x00, 0x08, 0x0C
# TimerEn | TimerMode (periodic) | IntEnable | TimerSize (32-bit); DDI 0271 3.3.3
PERIODIC_32 = 0x80 | 0x40 | 0x20 | 0x02
RUNS = 5


def with_models() -> tuple[float, int]:
    sim = Simulation()
    bus = Bus("sysbus", time=sim)
    handled = [0]
    for i in range(TIMERS):
        base = BASE + i * STRIDE
        timer = Sp804(f"timer{i}", frequency=Hz(CLOCK_HZ))
        bus.map(base, timer.size, timer)
        timer.attach(sim)
        timer.reset()

        def isr(base: int = base) -> None:
            handled[0] += 1
            bus.write(base + INTCLR, 4, 1)

        # The line is taken as an interrupt at once, outside the model's update().
        timer.timint1.connect(lambda level, isr=isr: level and sim.schedule(0, isr))
        bus.write(base + LOAD, 4, TICKS - 1)  # periodic: interrupts Load + 1 ticks apart (DDI 0271 2.2.2)
        bus.write(base + CONTROL, 4, PERIODIC_32)
    start = time.perf_counter()
    sim.run(until=SIM_TIME + 1)
    return time.perf_counter() - start, handled[0]


def bare_callbacks() -> tuple[float, int]:
    sim = Simulation()
    handled = [0]

    def expire() -> None:
        handled[0] += 1
        sim.schedule(PERIOD, expire)

    for _ in range(TIMERS):
        sim.schedule(PERIOD, expire)
    start = time.perf_counter()
    sim.run(until=SIM_TIME + 1)
    return time.perf_counter() - start, handled[0]


def per_tick(sim_time: int) -> tuple[float, int]:
    """`TIMERS` counters that each take one SimPy event per 1 µs tick."""
    sim = Simulation()
    env = sim.env
    handled = [0]

    def counter():
        count = TICKS
        while True:
            yield env.timeout(US)
            count -= 1
            if count == 0:
                handled[0] += 1
                count = TICKS

    for _ in range(TIMERS):
        env.process(counter())
    start = time.perf_counter()
    sim.run(until=sim_time + 1)
    return time.perf_counter() - start, handled[0]


def best_of(runs: int, measure: Callable[[], tuple[float, int]]) -> tuple[float, int]:
    """The fastest of `runs` measurements: the machine is shared, noise only adds time."""
    results = [measure() for _ in range(runs)]
    return min(results)


def main() -> None:
    expected = TIMERS * SIM_TIME // PERIOD
    print(f"{TIMERS} timers at {CLOCK_HZ / 1e6:g} MHz, an interrupt every {PERIOD // MS} ms, "
          f"{SIM_TIME // SEC} s simulated ({expected} interrupts); best of {RUNS} runs")
    ours, n_ours = best_of(RUNS, with_models)
    peer, n_peer = best_of(RUNS, bare_callbacks)
    assert n_ours == n_peer == expected, (n_ours, n_peer, expected)
    print(f"  SP804 models + bus ISR           {ours * 1e3:8.1f} ms wall  ({ours / expected * 1e6:.1f} µs per interrupt)")
    print(f"  peer: bare scheduled callbacks   {peer * 1e3:8.1f} ms wall  ({peer / expected * 1e6:.1f} µs per interrupt)")
    print(f"  ratio models/bare: {ours / peer:.1f}x")
    short = SIM_TIME // 100
    wall, n = per_tick(short)
    assert n == TIMERS * short // PERIOD, n
    extrapolated = wall * SIM_TIME / short
    print(f"  one event per tick: {wall * 1e3:.0f} ms for {short // MS} ms simulated "
          f"({TIMERS * short // US:,} events); for {SIM_TIME // SEC} s: ~{extrapolated:.0f} s wall")
    print(f"  ratio per-tick/lazy: ~{extrapolated / ours:,.0f}x")


if __name__ == "__main__":
    main()
