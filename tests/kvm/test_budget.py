"""Budget sources: PMU set-up logic (no PMU needed), the fallback order, kicks and late-signal draining."""

import errno
import os
import signal
import time

import pytest

from cosim import PlatformError
from cosim.kvm import KvmError
from cosim.kvm._budget import (KICK_SIGNAL, PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_SW_TASK_CLOCK, PERF_TYPE_HARDWARE,
                               PERF_TYPE_SOFTWARE, PerfAttrFlags, PmuBudget, TaskClockBudget, TimerBudget,
                               choose_budget_source, ffi)


class FakePerf:
    """perf_event_open stand-in: records each attr, refuses the types in `refuse`, hands out pipe fds."""

    def __init__(self, refuse=()):
        self.refuse = set(refuse)
        self.calls = []
        self.fds = []

    def __call__(self, attr, pid=0, cpu=-1):
        self.calls.append((attr.type, attr.config, attr.flags, attr.sample_period, attr.size, pid, cpu))
        if attr.type in self.refuse:
            raise KvmError(f"perf_event_open(type {attr.type}, config {attr.config})", errno.ENOENT)
        read, write = os.pipe()   # a pipe accepts O_ASYNC, F_SETSIG and F_SETOWN_EX like a perf fd
        os.close(write)
        self.fds.append(read)
        return read


@pytest.fixture
def blocked_kick():
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {KICK_SIGNAL})
    yield KICK_SIGNAL
    while signal.sigtimedwait([KICK_SIGNAL], 0) is not None:
        pass
    signal.pthread_sigmask(signal.SIG_SETMASK, old)


def test_pmu_counts_guest_instructions_only_and_signals_this_thread():
    perf = FakePerf()
    source = PmuBudget(open_event=perf)
    try:
        kind, config, flags, _, size, pid, cpu = perf.calls[0]
        assert (kind, config) == (PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS)
        assert flags & PerfAttrFlags.EXCLUDE_HOST and not flags & PerfAttrFlags.EXCLUDE_GUEST
        assert flags & PerfAttrFlags.DISABLED          # enabled per quantum, not at creation
        assert size == ffi.sizeof("struct perf_event_attr") and (pid, cpu) == (0, -1)
        fd = perf.fds[0]
        import fcntl

        assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ASYNC
        assert fcntl.fcntl(fd, 11) == KICK_SIGNAL      # F_GETSIG
        assert source.exact
    finally:
        source.close()


def test_auto_prefers_pmu_then_task_clock_then_timer():
    perf = FakePerf()
    choice = choose_budget_source(ips=lambda: 1e6, open_event=perf)
    assert choice.source.name == "pmu" and choice.rejected == []
    choice.source.close()

    perf = FakePerf(refuse={PERF_TYPE_HARDWARE})
    choice = choose_budget_source(ips=lambda: 1e6, open_event=perf)
    assert choice.source.name == "task-clock" and choice.rejected[0].startswith("pmu:")
    assert perf.calls[1][:2] == (PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK)
    assert "ENOENT" in choice.describe()
    choice.source.close()

    perf = FakePerf(refuse={PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE})
    choice = choose_budget_source(ips=lambda: 1e6, open_event=perf)
    assert choice.source.name == "posix-timer" and len(choice.rejected) == 2
    choice.source.close()


def test_the_instruction_rate_is_asked_for_only_when_a_time_based_source_is_used():
    asked = []
    choice = choose_budget_source(ips=lambda: asked.append(1) or 1e6, open_event=FakePerf())
    assert asked == []
    choice.source.close()


def test_a_named_source_that_fails_is_an_error_not_a_fallback():
    with pytest.raises(KvmError, match="perf_event_open"):
        choose_budget_source("pmu", ips=lambda: 1e6, open_event=FakePerf(refuse={PERF_TYPE_HARDWARE}))
    with pytest.raises(PlatformError, match="unknown budget source 'fast'"):
        choose_budget_source("fast", ips=lambda: 1e6)


def test_bad_instruction_rate_is_refused():
    with pytest.raises(PlatformError, match="must be positive"):
        TimerBudget(0)


@pytest.mark.parametrize("make", [lambda: TimerBudget(1e9), lambda: TaskClockBudget(1e9)],
                         ids=["posix-timer", "task-clock"])
def test_kick_fires_on_budget_and_a_late_one_is_drained(blocked_kick, make):
    try:
        source = make()
    except KvmError as error:
        pytest.skip(f"source unavailable here: {error}")
    try:
        source.arm(100_000)                  # 100 us of CPU time at 1e9 instructions/s
        deadline = time.monotonic() + 2
        while blocked_kick not in signal.sigpending():
            assert time.monotonic() < deadline, "the kick never came"
            sum(range(1000))                  # burn CPU time (task-clock counts CPU time)
        source.disarm()                      # the kick arrived after the "quantum": drained
        assert blocked_kick not in signal.sigpending()
    finally:
        source.close()


TIME_SOURCES = [(lambda: TimerBudget(1e9), time.monotonic_ns), (lambda: TaskClockBudget(1e9), time.thread_time_ns)]


def _spin(clock, ns: int) -> None:
    """Burn `ns` on `clock` (wall time for the POSIX timer, thread CPU time for task-clock)."""
    end = clock() + ns
    while clock() < end:
        pass


def _wait_for_kick(signo: int) -> None:
    deadline = time.monotonic() + 2
    while signo not in signal.sigpending():
        assert time.monotonic() < deadline, "the kick never came"
        sum(range(1000))


@pytest.mark.parametrize("make, clock", TIME_SOURCES, ids=["posix-timer", "task-clock"])
def test_a_kick_left_set_after_a_quantum_restarts_at_the_next_arm(blocked_kick, make, clock):
    try:
        source = make()
    except KvmError as error:
        pytest.skip(f"source unavailable here: {error}")
    try:
        source.arm(40_000_000)               # 40 ms at 1e9 instructions/s
        source.disarm()                      # the quantum ended before its kick: the kick stays set
        _spin(clock, 25_000_000)
        source.arm(40_000_000)               # counts 40 ms from here, not from the first arm
        _spin(clock, 25_000_000)
        assert blocked_kick not in signal.sigpending()
        _wait_for_kick(blocked_kick)
        source.disarm()
        assert blocked_kick not in signal.sigpending()
    finally:
        source.close()


@pytest.mark.parametrize("make, clock", TIME_SOURCES, ids=["posix-timer", "task-clock"])
def test_a_kick_that_came_between_quanta_is_drained_and_the_next_one_still_comes(blocked_kick, make, clock):
    try:
        source = make()
    except KvmError as error:
        pytest.skip(f"source unavailable here: {error}")
    try:
        source.arm(100_000)                  # 100 us
        source.disarm()
        _wait_for_kick(blocked_kick)         # comes while no quantum runs
        source.arm(1_000_000)                # drains it (it would end this quantum's first KVM_RUN) ...
        assert blocked_kick not in signal.sigpending()
        _wait_for_kick(blocked_kick)         # ... and sets a fresh kick: a spent perf event is re-enabled
        source.disarm()
    finally:
        source.close()


def test_estimate_counts_cpu_time_inside_the_run_only():
    source = TimerBudget(2e9)
    try:
        source.arm(10**9)
        source.entered()
        end = time.thread_time_ns() + 2_000_000
        while time.thread_time_ns() < end:
            pass
        source.exited()
        inside = source.executed()
        sum(range(100_000))                  # outside KVM_RUN: not guest time
        assert source.executed() == inside and 4_000_000 <= inside < 6_000_000
        source.disarm()
    finally:
        source.close()


PERF_FIELDS = ["type", "size", "config", "sample_period", "sample_type", "read_format", "wakeup_events", "bp_type",
               "config1", "config2", "branch_sample_type", "sample_regs_user", "sample_stack_user", "clockid",
               "sample_regs_intr", "aux_watermark", "sample_max_stack", "aux_sample_size", "sig_data"]
PERF_BITS = {"disabled": PerfAttrFlags.DISABLED, "exclude_hv": PerfAttrFlags.EXCLUDE_HV,
             "exclude_idle": PerfAttrFlags.EXCLUDE_IDLE, "exclude_host": PerfAttrFlags.EXCLUDE_HOST,
             "exclude_guest": PerfAttrFlags.EXCLUDE_GUEST}


def test_perf_event_attr_matches_linux_perf_event_h(c_values):
    from cosim.kvm import _budget

    expressions = {f: f"offsetof(struct perf_event_attr, {f})" for f in PERF_FIELDS}
    # The flag word follows read_format; set one bitfield and read the word back.
    for name in PERF_BITS:
        expressions[f"bit {name}"] = (f"({{ struct perf_event_attr a; memset(&a, 0, sizeof a); a.{name} = 1; "
                                      f"*(unsigned long long *)((char *)&a + offsetof(struct perf_event_attr, "
                                      f"read_format) + 8); }})")
    constants = ["PERF_TYPE_HARDWARE", "PERF_TYPE_SOFTWARE", "PERF_COUNT_HW_INSTRUCTIONS", "PERF_COUNT_SW_TASK_CLOCK",
                 "PERF_EVENT_IOC_ENABLE", "PERF_EVENT_IOC_DISABLE", "PERF_EVENT_IOC_REFRESH", "PERF_EVENT_IOC_RESET",
                 "PERF_EVENT_IOC_PERIOD"]
    expressions |= {c: c for c in constants}
    values = c_values(["linux/perf_event.h"], expressions)
    for field in PERF_FIELDS:
        assert ffi.offsetof("struct perf_event_attr", field) == values[field], field
    assert ffi.offsetof("struct perf_event_attr", "flags") == values["read_format"] + 8
    for name, bit in PERF_BITS.items():
        assert values[f"bit {name}"] == bit, name
    for name in constants:
        assert getattr(_budget, name) == values[name], name


def test_the_cost_of_the_exit_itself_is_not_guest_progress():
    source = TimerBudget(1e9, exit_ns=1_000_000)          # pretend each exit costs KVM 1 ms of CPU
    try:
        source.arm(10**9)
        for spin_ns in (500_000, 3_000_000):
            source.entered()
            end = time.thread_time_ns() + spin_ns
            while time.thread_time_ns() < end:
                pass
            source.exited()
        # 0.5 ms inside is all exit cost (nothing counted); of 3 ms, ~2 ms are guest progress
        assert 1_900_000 <= source.executed() < 2_600_000
        source.disarm()
    finally:
        source.close()
