"""The CPU loop with a scripted backend: budgets, idle time jumps, mid-quantum syncs, stops."""

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim import Platform, SimulationError, Signal, ms, ns, us
from cosim.cpu import BUDGET_SPENT, Cpu, CpuError, CpuExit, Idle, IdleKind, Stop
from cosim.testing import ScriptedBackend, run_backend

PERIOD = ns(1)  # the scripted guest retires one instruction per ns
S = ScriptedBackend


def make_cpu(sim, script, quantum=us(100)):
    guest = ScriptedBackend(script, period=PERIOD, pc=0x1234)
    cpu = Cpu("cpu0", backend=guest, quantum=quantum)
    cpu.attach(sim)
    return cpu, guest


def test_budget_is_the_quantum_bounded_by_the_next_event(sim):
    cpu, guest = make_cpu(sim, [S.spin()] * 4)
    sim.schedule(us(250), lambda: None)
    sim.run(until=us(350))
    assert guest.budgets[:4] == [(0, us(100)), (us(100), us(100)), (us(200), us(50)), (us(250), us(100))]


def test_idle_guest_lets_time_jump_to_the_interrupt(sim):
    line = Signal("timer.irq")
    cpu, guest = make_cpu(sim, [S.idle(10), S.idle(10), S.stop(0)])
    line.connect(cpu.pins["irq"])
    sim.schedule(ms(500), line.raise_)
    summary = sim.run(until=ms(1000))
    assert guest.budgets[1][0] == ms(500)           # woke exactly when the line rose
    assert cpu.idle_skipped == ms(500)
    assert summary.wall_time < 1.0 and summary.status == 0


def test_idle_with_interrupt_already_pending_does_not_sleep(sim):
    cpu, guest = make_cpu(sim, [S.idle(10), S.stop(0)])
    guest.set_irq("irq", True)
    sim.run(until=ms(1))
    assert guest.budgets[1][0] == 10 * PERIOD and cpu.idle_skipped == 0


def test_access_mid_quantum_sees_local_time_and_new_events_end_the_quantum(sim):
    seen = []

    def device_access(keeper):
        seen.append(sim.now)
        sim.schedule(us(5), lambda: seen.append(("timer", sim.now)))

    cpu, guest = make_cpu(sim, [S.access(30_000, device_access), S.spin(), S.spin()])
    sim.run(until=us(100))
    assert seen[0] == us(30)                         # the device saw the guest's local time
    assert guest.budgets[1] == (us(30), us(5))      # re-planned up to the new event
    assert ("timer", us(35)) in seen
    assert cpu.exits["io"] == 1


def test_stop_exit_requests_a_stop_with_the_status_and_closes_the_backend(sim):
    cpu, guest = make_cpu(sim, [S.spin(), S.stop(7)])
    summary = sim.run(until=ms(1))
    assert summary.status == 7 and summary.stop.reason == "guest exit"
    assert summary.sim_time == us(100)
    assert guest.closed
    assert "cpu0 instructions" in summary.extra and summary.extra["cpu0 exits"] == "budget 1, stop 1"


def test_error_exit_raises_with_register_dump_and_closes(sim):
    cpu, guest = make_cpu(sim, [S.fail("guest crashed")])
    with pytest.raises(SimulationError, match="cpu0: guest crashed\npc=0x1234"):
        sim.run(until=ms(1))
    assert guest.closed


def test_error_keeps_the_backends_own_dump(sim):
    def crash(backend, keeper):
        raise CpuError("decode failed", "x0=0x5")

    make_cpu(sim, [crash])
    with pytest.raises(SimulationError, match="cpu0: decode failed\nx0=0x5$"):
        sim.run(until=ms(1))


def test_breakpoint_stops_the_run_naming_the_address(sim):
    cpu, guest = make_cpu(sim, [S.spin(), S.breakpoint(0x8000_1000, instructions=5)])
    summary = sim.run(until=ms(1))
    assert summary.stop.reason == "cpu0: breakpoint at 0x80001000" and summary.status == 0
    assert summary.sim_time == summary.stop.time == us(100) + 5 * PERIOD     # the guest's time at the breakpoint
    assert cpu.exits == {"budget": 1, "breakpoint": 1}


def test_wfe_also_wakes_at_the_next_event_and_wfi_only_on_an_interrupt(sim):
    cpu, guest = make_cpu(sim, [S.idle(10, IdleKind.WFE), S.idle(10, IdleKind.WFI), S.stop(0)])
    sim.schedule(us(300), lambda: None)            # an event that raises no interrupt
    line = Signal("timer.irq")
    line.connect(cpu.pins["irq"])
    sim.schedule(ms(2), line.raise_)
    sim.run(until=ms(5))
    assert [start for start, _ in guest.budgets] == [0, us(300), ms(2)]
    assert cpu.exits == {"idle": 2, "stop": 1}


def test_a_backend_returning_an_untyped_reason_is_a_one_line_error(sim):
    make_cpu(sim, [lambda backend, keeper: CpuExit("wfi", 0, 0)])
    with pytest.raises(SimulationError, match="^cpu0: backend scripted ended a run with 'wfi', which is not one of "
                                              "cosim.cpu.ExitReason$"):
        sim.run(until=ms(1))


def test_scripted_backend_refuses_an_unknown_interrupt_input():
    with pytest.raises(ValueError, match="no interrupt input 'intr'"):
        ScriptedBackend([]).set_irq("intr", True)


def test_cpu_in_a_platform_wires_like_any_device():
    class Board(Platform):
        def build(self):
            self.cpu = self.add("cpu0", Cpu, backend=ScriptedBackend([S.idle(1)] * 3), quantum=us(10))
            self.line = Signal("timer.irq")
            self.wire(self.line, self.cpu.pins["irq"])

    board = Board()
    board.sim.schedule(ms(2), board.line.raise_)
    board.run(until=ms(3))
    assert board.cpu.backend.budgets[1][0] == ms(2)


def test_quantum_must_be_positive():
    from cosim import PlatformError

    with pytest.raises(PlatformError, match="quantum"):
        Cpu("cpu0", backend=ScriptedBackend([]), quantum=0)


def test_the_scripted_backend_example_in_docs_cpu_md_runs(sim):
    text = (Path(__file__).resolve().parents[2] / "docs" / "cpu.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    namespace: dict = {}
    exec(compile("\n\n".join(blocks), "docs/cpu.md", "exec"), namespace)
    tests = [value for key, value in namespace.items() if key.startswith("test_")]
    assert tests
    for test in tests:
        test(sim)


def test_run_backend_checks_the_contract_of_what_a_backend_returns(sim):
    assert run_backend(S([S.idle(7, IdleKind.HLT)]), sim, us(1)) == CpuExit(Idle(IdleKind.HLT), 7 * PERIOD, 7)

    def overran(backend, keeper):
        return CpuExit(BUDGET_SPENT, keeper.budget + 1, 0)

    def untyped(backend, keeper):
        return CpuExit("wfi", 0, 0)

    with pytest.raises(AssertionError, match=r"scripted: elapsed 1000001 ps outside 0..1000000 ps"):
        run_backend(S([overran]), sim, us(1))
    with pytest.raises(AssertionError, match="exit reason 'wfi' is not one of ExitReason"):
        run_backend(S([untyped]), sim, us(1))
    with pytest.raises(CpuError, match="guest crashed"):
        run_backend(S([S.fail()]), sim, us(1))


def test_a_guest_idle_with_nothing_scheduled_is_a_deadlock_not_a_pass(sim):
    cpu, guest = make_cpu(sim, [S.spin(), S.idle(10)])
    summary = sim.run(until=ms(10))
    assert summary.status == 3 and summary.stop.time == us(100)     # the instructions before WFI take no time
    assert summary.stop.reason == "cpu0: guest idle at PC 0x1234 with no pending event: deadlock"


def test_the_deadlock_is_found_once_the_last_event_has_run(sim):
    # An event still due (a console poll, a timer) may wake the guest; once it has run, nothing can.
    cpu, guest = make_cpu(sim, [S.idle(10)])
    sim.schedule(ms(2), lambda: None)
    summary = sim.run()
    assert summary.status == 3 and summary.stop.time == ms(2) and "deadlock" in summary.stop.reason
    assert summary.extra["cpu0 idle skipped"] == "2 ms"


def test_a_backend_that_cannot_wake_is_a_deadlock_even_with_events_due(sim):
    class MaskedHalt(ScriptedBackend):
        wakeable = False             # x86 HLT with IF=0

    guest = MaskedHalt([S.idle(1, IdleKind.HLT)], period=PERIOD)
    Cpu("cpu0", backend=guest, quantum=us(100)).attach(sim)
    sim.schedule(ms(1), lambda: None)
    summary = sim.run(until=ms(5))
    assert summary.status == 3 and summary.stop.reason.endswith("with interrupts disabled: deadlock")
    assert summary.stop.time == 0


def test_idle_skipped_includes_the_stretch_the_run_ends_in(sim):
    line = Signal("timer.irq")
    cpu, guest = make_cpu(sim, [S.idle(0)])
    line.connect(cpu.pins["irq"])
    sim.schedule(ms(50), line.raise_)
    summary = sim.run(until=ms(20))
    assert summary.extra["cpu0 idle skipped"] == "20 ms"
    assert sim.run(until=ms(30)).extra["cpu0 idle skipped"] == "30 ms"   # not counted twice


def test_a_stop_is_at_the_guests_local_time_not_its_last_device_access(sim):
    def stop_late(backend, keeper):
        keeper.sync(us(10))               # a device access at 10 us ...
        return CpuExit(Stop(0, "guest called PSCI SYSTEM_OFF"), us(40), 40_000)   # ... off at 40 us

    cpu, guest = make_cpu(sim, [stop_late])
    summary = sim.run(until=ms(1))
    assert summary.stop.time == us(40) and summary.sim_time == us(40)


def test_a_quantum_shorter_than_one_cpu_period_is_refused():
    from cosim import PlatformError

    with pytest.raises(PlatformError, match=r"cpu0: quantum 500 ps is shorter than one CPU period \(1 ns\)"):
        Cpu("cpu0", backend=ScriptedBackend([], period=ns(1)), quantum=500)
    Cpu("cpu0", backend=ScriptedBackend([], period=ns(1)), quantum=ns(1))


def test_two_cpus_in_one_simulation_run_decoupled_by_a_quantum(sim):
    # Two machines' CPUs: neither's resumption bounds the other's budget, so each runs whole
    # quanta (no lock step, no livelock at equal times), and a device event still bounds both.
    a = ScriptedBackend([S.spin()] * 3, period=PERIOD)
    b = ScriptedBackend([S.spin()] * 3, period=PERIOD)
    Cpu("a", backend=a, quantum=us(100)).attach(sim)
    Cpu("b", backend=b, quantum=us(100)).attach(sim)
    sim.schedule(us(150), lambda: None)
    sim.run(until=us(250))
    assert a.budgets[:3] == [(0, us(100)), (us(100), us(50)), (us(150), us(100))]
    assert b.budgets[:3] == a.budgets[:3]


def test_horizon_looks_past_resumptions_only(sim):
    from cosim._kernel import Resume

    Resume(sim.env, us(1))
    Resume(sim.env, us(2))
    assert sim.peek() == us(1) and sim.horizon() == float("inf")
    sim.schedule(us(7), lambda: None)
    Resume(sim.env, us(3))
    sim.schedule(us(5), lambda: None)
    assert sim.horizon() == us(5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 50)), max_size=40))
def test_horizon_is_the_earliest_event_that_is_not_a_resumption(events):
    from cosim import Simulation
    from cosim._kernel import Resume

    sim = Simulation()
    for resume, delay in events:
        if resume:
            Resume(sim.env, delay)
        else:
            sim.schedule(delay, lambda: None)
    others = [delay for resume, delay in events if not resume]
    assert sim.horizon() == (min(others) if others else float("inf"))


def make_cpus(sim, scripts, quantum=us(100), machine=None):
    guests = [ScriptedBackend(script, period=PERIOD) for script in scripts]
    cpus = [Cpu(f"cpu{i}", backend=guest, quantum=quantum, machine=machine) for i, guest in enumerate(guests)]
    for cpu in cpus:
        cpu.attach(sim)
    return cpus, guests


def test_two_busy_cpus_of_different_machines_each_run_every_quantum_window(sim):
    """Both due at time 0 (once a livelock: each saw the other's resumption as an event due now and
    got a zero budget); CPUs of different machines both run each window of simulated time."""
    cpus, (a, b) = make_cpus(sim, [[S.spin()] * 3, [S.spin()] * 3])
    sim.run(until=us(300))
    assert a.budgets[:3] == b.budgets[:3] == [(0, us(100)), (us(100), us(100)), (us(200), us(100))]
    assert cpus[0].instructions == cpus[1].instructions


def test_a_device_access_never_moves_time_past_another_cpus_pending_run(sim):
    # CPU 0 runs first in the window while CPU 1's run at 0 is pending: its access at local 40 us
    # sees time 0 (never ahead of an event still due), CPU 1's access at 40 us then sees 40 us.
    seen = []
    script = [S.access(us(40) // PERIOD, lambda keeper: seen.append(sim.now)), S.spin()]
    cpus, (a, b) = make_cpus(sim, [list(script), list(script)])
    sim.run(until=us(100))
    assert seen == [0, us(40)]


def test_an_idle_cpu_of_another_machine_costs_nothing_and_an_interrupt_wakes_it_in_the_window(sim):
    cpus, (a, b) = make_cpus(sim, [[S.idle(10), S.spin(), S.spin()], [S.spin()] * 4])
    line = Signal("irq")
    line.connect(cpus[0].pins["irq"])
    sim.schedule(us(250), line.raise_)
    sim.run(until=us(400))
    assert b.budgets[:4] == [(0, us(100)), (us(100), us(100)), (us(200), us(50)), (us(250), us(100))]
    assert a.budgets[1:3] == [(us(250), us(100)), (us(350), us(50))]
    assert cpus[0].idle_skipped == us(250)


MACHINE = object()      # what the CPUs of one SMP machine share: their turns


def test_two_cpus_of_one_machine_take_turns_of_one_quantum_on_one_timeline(sim):
    """Their clock is one: what one CPU saw as time t, the other never sees earlier afterwards."""
    cpus, (a, b) = make_cpus(sim, [[S.spin()] * 3, [S.spin()] * 3], machine=MACHINE)
    sim.run(until=us(600))
    assert a.budgets[:3] == [(0, us(100)), (us(200), us(100)), (us(400), us(100))]
    assert b.budgets[:3] == [(us(100), us(100)), (us(300), us(100)), (us(500), us(100))]


def test_a_turn_lasts_a_quantum_across_early_exits_and_an_idle_cpu_gives_it_up(sim):
    cpus, (a, b) = make_cpus(sim, [[S.spin(), S.spin(), S.idle(10), S.spin()], [S.spin()] * 3], machine=MACHINE)
    sim.schedule(us(40), lambda: None)              # ends CPU 0's first run early: its turn goes on
    line = Signal("irq")
    line.connect(cpus[0].pins["irq"])
    sim.schedule(us(250), line.raise_)
    sim.run(until=us(400))
    idled = us(200)                 # CPU 0 idled 10 instructions into its second turn (they take no time)
    assert a.budgets[:3] == [(0, us(40)), (us(40), us(60)), (us(200), us(50))]   # the IRQ at 250 us cuts
    # CPU 1 ran at once; the IRQ at 250 us woke CPU 0, which then waited for CPU 1's turn to end.
    assert b.budgets[:3] == [(us(100), us(100)), (idled, us(50)), (us(250), us(50))]
    assert a.budgets[3] == (us(300), us(100))
    assert cpus[0].idle_skipped == us(50)


def test_an_offline_cpu_runs_nothing_until_powered_on(sim):
    cpus, (a, b) = make_cpus(sim, [[S.spin()] * 5, [S.spin(), S.stop(0)]], machine=MACHINE)
    cpus[1].power_off()
    sim.schedule(us(250), cpus[1].power_on)
    sim.run(until=us(1000))
    # Its turn when CPU 0's (begun at 200 us, with no one waiting) ends; then they alternate.
    assert b.budgets[:2] == [(us(300), us(100)), (us(500), us(100))]
    assert [start for start, _ in a.budgets[:5]] == [0, us(100), us(200), us(250), us(400)]


def test_machines_run_side_by_side_while_the_cpus_of_each_take_turns(sim):
    one, (a, b) = make_cpus(sim, [[S.spin()] * 2, [S.spin()] * 2], machine=MACHINE)
    other = Cpu("other", backend=(c := ScriptedBackend([S.spin()] * 4, period=PERIOD)), quantum=us(100))
    other.attach(sim)
    sim.run(until=us(400))
    assert a.budgets[:2] == [(0, us(100)), (us(200), us(100))]
    assert b.budgets[:2] == [(us(100), us(100)), (us(300), us(100))]
    assert c.budgets[:4] == [(0, us(100)), (us(100), us(100)), (us(200), us(100)), (us(300), us(100))]
