"""The CPU loop with a scripted backend: budgets, idle time jumps, mid-quantum syncs, stops."""

import pytest

from cosim import MHz, Platform, SimulationError, Signal, ms, ns, us
from cosim.cpu import Cpu, CpuExit, ExitReason

PERIOD = ns(1)  # the fake guest retires one instruction per ns


class ScriptedGuest:
    """A fake backend: each run() pops the next action of a script.

    Actions: ("spin",) uses the whole budget; ("wfi", n) idles after n instructions;
    ("io", n, fn) calls fn(keeper) after n instructions as a device access would;
    ("stop", status); ("crash",).
    """

    name = "scripted"

    def __init__(self, script):
        self.script = list(script)
        self.budgets = []
        self.irq = False
        self.closed = False

    def run(self, keeper):
        self.budgets.append((keeper.start, keeper.budget))
        action = self.script.pop(0) if self.script else ("stop", 0)
        kind = action[0]
        if kind == "spin":
            return CpuExit(ExitReason.BUDGET, keeper.budget, keeper.budget // PERIOD)
        if kind == "wfi":
            return CpuExit(ExitReason.IDLE, action[1] * PERIOD, action[1], "wfi")
        if kind == "io":
            keeper.sync(action[1] * PERIOD)
            action[2](keeper)
            reason = ExitReason.IO if keeper.must_yield else ExitReason.BUDGET
            elapsed = action[1] * PERIOD if keeper.must_yield else keeper.budget
            return CpuExit(reason, elapsed, elapsed // PERIOD)
        if kind == "stop":
            return CpuExit(ExitReason.STOP, 0, 0, (action[1], "guest exit"))
        return CpuExit(ExitReason.ERROR, 0, 0, "guest crashed")

    def set_irq(self, line, level):
        self.irq = level

    def interrupt_pending(self):
        return self.irq

    def read_register(self, name):
        return 0

    def write_register(self, name, value):
        pass

    @property
    def pc(self):
        return 0x1234

    def register_dump(self):
        return "pc=0x1234"

    def close(self):
        self.closed = True


def make_cpu(sim, script, quantum=us(100)):
    guest = ScriptedGuest(script)
    cpu = Cpu("cpu0", backend=guest, quantum=quantum)
    cpu.attach(sim)
    return cpu, guest


def test_budget_is_the_quantum_bounded_by_the_next_event(sim):
    cpu, guest = make_cpu(sim, [("spin",)] * 4)
    sim.schedule(us(250), lambda: None)
    sim.run(until=us(350))
    assert guest.budgets[:4] == [(0, us(100)), (us(100), us(100)), (us(200), us(50)), (us(250), us(100))]


def test_idle_guest_lets_time_jump_to_the_interrupt(sim):
    line = Signal("timer.irq")
    cpu, guest = make_cpu(sim, [("wfi", 10), ("wfi", 10), ("stop", 0)])
    line.connect(cpu.pins["irq"])
    sim.schedule(ms(500), line.raise_)
    summary = sim.run(until=ms(1000))
    assert guest.budgets[1][0] == ms(500)           # woke exactly when the line rose
    assert cpu.idle_skipped == ms(500)
    assert summary.wall_time < 1.0 and summary.status == 0


def test_idle_with_interrupt_already_pending_does_not_sleep(sim):
    cpu, guest = make_cpu(sim, [("wfi", 10), ("stop", 0)])
    guest.irq = True
    sim.run(until=ms(1))
    assert guest.budgets[1][0] == 10 * PERIOD and cpu.idle_skipped == 0


def test_access_mid_quantum_sees_local_time_and_new_events_end_the_quantum(sim):
    seen = []

    def device_access(keeper):
        seen.append(sim.now)
        sim.schedule(us(5), lambda: seen.append(("timer", sim.now)))

    cpu, guest = make_cpu(sim, [("io", 30_000, device_access), ("spin",), ("spin",)])
    sim.run(until=us(100))
    assert seen[0] == us(30)                         # the device saw the guest's local time
    assert guest.budgets[1] == (us(30), us(5))      # re-planned up to the new event
    assert ("timer", us(35)) in seen
    assert cpu.exits["io"] == 1


def test_stop_exit_requests_a_stop_with_the_status_and_closes_the_backend(sim):
    cpu, guest = make_cpu(sim, [("spin",), ("stop", 7)])
    summary = sim.run(until=ms(1))
    assert summary.status == 7 and summary.stop.reason == "guest exit"
    assert summary.sim_time == us(100)
    assert guest.closed
    assert "cpu0 instructions" in summary.extra and summary.extra["cpu0 exits"] == "budget 1, stop 1"


def test_error_exit_raises_with_register_dump_and_closes(sim):
    cpu, guest = make_cpu(sim, [("crash",)])
    with pytest.raises(SimulationError, match="guest crashed\npc=0x1234"):
        sim.run(until=ms(1))
    assert guest.closed


def test_cpu_in_a_platform_wires_like_any_device():
    class Board(Platform):
        def build(self):
            self.cpu = self.add("cpu0", Cpu, backend=ScriptedGuest([("wfi", 1)] * 3), quantum=us(10))
            self.line = Signal("timer.irq")
            self.wire(self.line, self.cpu.pins["irq"])

    board = Board()
    board.sim.schedule(ms(2), board.line.raise_)
    board.run(until=ms(3))
    assert board.cpu.backend.budgets[1][0] == ms(2)


def test_quantum_must_be_positive():
    from cosim import PlatformError

    with pytest.raises(PlatformError, match="quantum"):
        Cpu("cpu0", backend=ScriptedGuest([]), quantum=0)


def test_a_guest_idle_with_nothing_scheduled_is_a_deadlock_not_a_pass(sim):
    cpu, guest = make_cpu(sim, [("spin",), ("wfi", 10)])
    summary = sim.run(until=ms(10))
    assert summary.status == 3 and summary.stop.time == us(100)     # the instructions before WFI take no time
    assert summary.stop.reason == "cpu0: guest idle at PC 0x1234 with no pending event: deadlock"


def test_the_deadlock_is_found_once_the_last_event_has_run(sim):
    # An event still due (a console poll, a timer) may wake the guest; once it has run, nothing can.
    cpu, guest = make_cpu(sim, [("wfi", 10)])
    sim.schedule(ms(2), lambda: None)
    summary = sim.run()
    assert summary.status == 3 and summary.stop.time == ms(2) and "deadlock" in summary.stop.reason
    assert summary.extra["cpu0 idle skipped"] == "2 ms"


def test_a_backend_that_cannot_wake_is_a_deadlock_even_with_events_due(sim):
    class MaskedHalt(ScriptedGuest):
        wakeable = False             # x86 HLT with IF=0

    guest = MaskedHalt([("wfi", 1)])
    Cpu("cpu0", backend=guest, quantum=us(100)).attach(sim)
    sim.schedule(ms(1), lambda: None)
    summary = sim.run(until=ms(5))
    assert summary.status == 3 and summary.stop.reason.endswith("with interrupts disabled: deadlock")
    assert summary.stop.time == 0


def test_idle_skipped_includes_the_stretch_the_run_ends_in(sim):
    line = Signal("timer.irq")
    cpu, guest = make_cpu(sim, [("wfi", 0)])
    line.connect(cpu.pins["irq"])
    sim.schedule(ms(50), line.raise_)
    summary = sim.run(until=ms(20))
    assert summary.extra["cpu0 idle skipped"] == "20 ms"
    assert sim.run(until=ms(30)).extra["cpu0 idle skipped"] == "30 ms"   # not counted twice


def test_a_stop_is_at_the_guests_local_time_not_its_last_device_access(sim):
    cpu, guest = make_cpu(sim, [])

    def stop_late(keeper):
        keeper.sync(us(10))               # a device access at 10 us ...
        return CpuExit(ExitReason.STOP, us(40), 40_000, (0, "guest called PSCI SYSTEM_OFF"))  # ... off at 40 us

    guest.run = stop_late
    summary = sim.run(until=ms(1))
    assert summary.stop.time == us(40) and summary.sim_time == us(40)


def test_a_quantum_shorter_than_one_cpu_period_is_refused():
    from cosim import PlatformError

    class Clocked(ScriptedGuest):
        period = ns(1)

    with pytest.raises(PlatformError, match=r"cpu0: quantum 500 ps is shorter than one CPU period \(1 ns\)"):
        Cpu("cpu0", backend=Clocked([]), quantum=500)
    Cpu("cpu0", backend=Clocked([]), quantum=ns(1))
