"""`demo`: a device-only platform — a timer, and a small driver process that services it.

There is no CPU here: a SimPy process plays the driver, programming the
`Countdown` timer through the bus and sleeping on its interrupt line, so
simulated time jumps from one interrupt to the next. It shows the kernel,
the bus, the register DSL, a lazy timer and an interrupt line working together.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

from cosim import MHz, Platform, Property, format_time, parse_time
from cosim.models.countdown import Countdown

__all__ = ["Demo"]

TIMER_BASE = 0x1000_0000
LOAD, CTRL, INTCLR = 0x0, 0x8, 0xC


class Demo(Platform):
    """Device-only demo: a 1 MHz countdown timer serviced by a driver process."""

    name = "demo"
    summary = "device-only demo: a timer interrupt serviced by a driver process"
    period = Property(parse_time("1 s"), "time between timer interrupts", parse_time, format_time)
    ticks = Property(10, "interrupts to service before stopping", int)

    def build(self) -> None:
        self.timer = self.add("timer0", Countdown, frequency=MHz(1))
        self.map("sysbus", TIMER_BASE, self.timer)
        self.sim.process(self._driver())

    def _driver(self) -> Generator[Any, Any, None]:
        bus = self.buses["sysbus"]
        irq = self.timer.irq
        for tick in range(1, self.ticks + 1):
            bus.write(TIMER_BASE + CTRL, 4, 0b11)                        # EN | IE
            bus.write(TIMER_BASE + LOAD, 4, self.period // 1_000_000)    # ticks of 1 us
            yield irq.wait_level(self.sim.env, True)
            bus.write(TIMER_BASE + INTCLR, 4, 1)
            print(f"demo: timer interrupt {tick}/{self.ticks} at {format_time(self.sim.now)}", file=sys.stdout, flush=True)
        self.sim.request_stop(0, "demo finished")
