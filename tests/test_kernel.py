import math

import pytest

from cosim import MS, SimulationError, Simulation, format_time, ms, us


def test_processes_advance_integer_time(sim):
    seen = []

    def ticker():
        while True:
            yield sim.timeout(ms(1))
            seen.append(sim.now)

    sim.process(ticker())
    summary = sim.run(until="3.5 ms")
    assert seen == [MS, 2 * MS, 3 * MS]
    assert summary.sim_time == 3_500_000_000 and isinstance(sim.now, int)
    assert summary.events >= 3


def test_events_exactly_at_until_do_not_run_and_a_later_run_continues(sim):
    seen = []
    sim.schedule(ms(2), lambda: seen.append("at 2 ms"))
    sim.run(until=ms(2))
    assert seen == [] and sim.now == ms(2)
    sim.run(until=ms(3))
    assert seen == ["at 2 ms"]


def test_cancelled_call_does_not_fire(sim):
    seen = []
    call = sim.schedule(us(5), lambda: seen.append(1))
    assert call.active and call.when == us(5)
    call.cancel()
    sim.run(until=us(10))
    assert seen == [] and not call.active


def test_stop_request_ends_run_with_status_and_runs_finalizers(sim):
    closed = []
    sim.add_finalizer(lambda: closed.append("flushed"))
    sim.schedule(ms(7), lambda: sim.request_stop(3, "guest exit"))
    sim.schedule(ms(8), lambda: pytest.fail("ran past the stop"))
    summary = sim.run(until=ms(100))
    assert summary.status == 3 and summary.stop.reason == "guest exit"
    assert summary.sim_time == ms(7)
    assert closed == ["flushed"]
    assert "guest exit (status 3)" in str(summary)


def test_first_stop_request_wins(sim):
    sim.schedule(1, lambda: (sim.request_stop(1, "first"), sim.request_stop(2, "second")))
    assert sim.run().stop.reason == "first"


def test_a_stop_requested_now_ends_the_run_before_other_work_due_now(sim):
    seen = []
    sim.schedule(ms(1), lambda: sim.request_stop(0, "now"))
    sim.schedule(ms(1), lambda: seen.append("same instant, scheduled later"))
    assert sim.run(until=ms(5)).sim_time == ms(1) and seen == []


def test_simpy_is_extended_by_subclassing():
    """No private SimPy field is written from outside a SimPy subclass (issue 17, point 5)."""
    import simpy

    from cosim._kernel import Environment, UrgentEvent

    with Simulation() as sim:
        assert isinstance(sim.env, Environment) and isinstance(sim.env, simpy.Environment)
        # SimPy's per-instance binding of timeout/event/process survives the subclass (a speed matter)
        assert {"timeout", "event", "process", "any_of", "all_of"} <= vars(sim.env).keys()
        assert isinstance(sim.schedule(1, lambda: None), simpy.Event)
        event = UrgentEvent(sim.env)
        event.succeed_urgently("done", delay=us(3))
        with pytest.raises(SimulationError, match="already been triggered"):
            event.succeed_urgently()
        sim.run()
        assert event.processed and event.value == "done" and sim.now == us(3)


def test_quiet_platform_ends_the_run(sim):
    sim.schedule(10, lambda: None)
    summary = sim.run()
    assert summary.sim_time == 10 and summary.stop is None


def test_error_in_a_callback_propagates_after_finalizers(sim):
    closed = []
    sim.add_finalizer(lambda: closed.append(True))

    def boom():
        raise ValueError("model bug")

    sim.schedule(5, boom)
    with pytest.raises(ValueError):
        sim.run()
    assert closed == [True]


def test_advance_to_moves_time_only_up_to_the_next_event(sim):
    sim.schedule(ms(1), lambda: None)
    sim.advance_to(us(500))
    assert sim.now == us(500)
    with pytest.raises(SimulationError, match="skip an event"):
        sim.advance_to(ms(2))
    with pytest.raises(SimulationError, match="backwards"):
        sim.advance_to(0)
    assert sim.peek() == ms(1)


def test_peek_is_infinite_when_nothing_is_scheduled(sim):
    assert sim.peek() == math.inf


def test_negative_delays_are_errors(sim):
    with pytest.raises(SimulationError):
        sim.timeout(-1)
    with pytest.raises(SimulationError):
        sim.schedule(-1, lambda: None)


def test_until_in_the_past_is_an_error(sim):
    sim.run(until=ms(1))
    with pytest.raises(SimulationError, match=format_time(0)):
        sim.run(until=0)


def test_summary_extra_rows(sim):
    sim.add_summary(lambda: {"instructions": "42"})
    assert "instructions" in str(sim.run(until=1))


def test_one_shot_keeps_at_most_one_pending_call(sim):
    from cosim import OneShot

    fired = []
    timer = OneShot(lambda: fired.append(sim.now))
    timer.start(sim, us(5))
    timer.start(sim, us(3))                  # replaces the first
    assert timer.pending and timer.when == us(3)
    sim.run(until=us(10))
    assert fired == [us(3)] and not timer.pending and timer.when is None
    timer.start(sim, us(1))
    timer.cancel()
    assert timer.when is None
    sim.run(until=us(20))
    assert fired == [us(3)]


def test_realtime_simulation_never_runs_ahead_of_wall_time():
    import time

    from cosim import RealtimeSimulation

    seen = []
    for factor in (1.0, 10.0):
        sim = RealtimeSimulation(factor)
        sim.schedule(ms(40), lambda: seen.append(time.perf_counter()))
        start = time.perf_counter()
        sim.run(until=ms(50))
        # The event at 40 ms simulated fires no earlier than 40 ms / factor of wall time.
        assert seen[-1] - start >= 0.040 / factor and sim.now == ms(50)
    with pytest.raises(SimulationError, match="real-time factor must be positive"):
        RealtimeSimulation(0)


def test_a_plain_simulation_skips_idle_time_at_once():
    import time

    sim = Simulation()
    sim.schedule(ms(10_000), lambda: None)        # 10 s of simulated time, nothing in between
    start = time.perf_counter()
    sim.run(until=ms(20_000))
    assert sim.now == ms(20_000) and time.perf_counter() - start < 5.0
