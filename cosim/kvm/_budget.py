"""Budget sources: what ends a vCPU's quantum when the guest does not exit by itself.

Best first, chosen at start by `choose_budget_source` (the choice and why the
better ones failed are reported):

1. `PmuBudget` — a hardware instruction counter that counts in guest mode only
   (`perf_event_open`, PERF_COUNT_HW_INSTRUCTIONS, `exclude_host`); it overflows
   after the budget's instructions and signals the vCPU thread. Exact count:
   simulated time = instructions x period.
2. `TaskClockBudget` — the software perf event `task-clock` of the vCPU thread,
   with an overflow signal after the budget's CPU time.
3. `TimerBudget` — a POSIX timer (CLOCK_MONOTONIC) signalling the vCPU thread.

For (2) and (3) the guest's progress is *estimated*: the vCPU thread's CPU time
spent inside KVM_RUN, less the measured cost of the exit itself, times an
instructions-per-second figure (configured, or measured by the calibration
guest). A kick that comes early (the thread was descheduled, or Python's own
exit handling used CPU time) is drained and the source re-armed for what is
left: a quantum ends when its budget is spent, not before.

Signals: the kick signal is *blocked* in the vCPU thread at all times, and
`KVM_SET_SIGNAL_MASK` unblocks it only while the thread is inside KVM_RUN. A
kick then interrupts KVM_RUN (EINTR) wherever it lands: one raised between
arming and entering KVM_RUN stays pending and makes KVM_RUN return at once,
and no Python handler ever runs for it. A kick that came is drained with
`sigtimedwait` (zero timeout) when the quantum ends, so a late kick can never
end the next quantum early.

The time-based sources leave their kick counting down between quanta instead
of stopping it: `arm` restarts the countdown anyway (one ioctl or
timer_settime), and stopping it would cost another syscall per quantum (a perf
ioctl costs 1-2 µs on an emulating nested host, where an idle guest's timer
tick is mostly syscalls). A kick that comes between quanta is drained by the
next `arm` before it restarts the countdown.
"""

from __future__ import annotations

import errno as _errno
import fcntl
import os
import platform
import signal
import struct
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cffi import FFI

from .._errors import PlatformError
from ._names import SOURCE_NAMES, budget_source_name
from ._system import KvmError
from ._uapi import CData

__all__ = ["BudgetSource", "PmuBudget", "TaskClockBudget", "TimerBudget", "choose_budget_source", "KICK_SIGNAL",
           "perf_attr", "BudgetChoice", "PerfAttrFlags", "SOURCE_NAMES", "budget_source_name"]

ffi = FFI()
ffi.cdef("""
struct perf_event_attr {
    uint32_t type;
    uint32_t size;
    uint64_t config;
    uint64_t sample_period;          /* union with sample_freq */
    uint64_t sample_type;
    uint64_t read_format;
    uint64_t flags;                  /* the bitfield word: disabled, exclude_*, ... */
    uint32_t wakeup_events;
    uint32_t bp_type;
    uint64_t config1;
    uint64_t config2;
    uint64_t branch_sample_type;
    uint64_t sample_regs_user;
    uint32_t sample_stack_user;
    int32_t clockid;
    uint64_t sample_regs_intr;
    uint32_t aux_watermark;
    uint16_t sample_max_stack;
    uint16_t reserved_2;
    uint32_t aux_sample_size;
    uint32_t reserved_3;
    uint64_t sig_data;
};

typedef int timer_t_int;
struct sigevent_thread {             /* struct sigevent with SIGEV_THREAD_ID (glibc layout) */
    union { int sival_int; void *sival_ptr; } sigev_value;
    int sigev_signo;
    int sigev_notify;
    int sigev_notify_thread_id;      /* _sigev_un._tid */
    int pad[11];                     /* the union is 48 bytes on 64-bit */
};
struct timespec_ { long tv_sec; long tv_nsec; };
struct itimerspec_ { struct timespec_ it_interval; struct timespec_ it_value; };

long syscall(long number, ...);
int timer_create(int clockid, struct sigevent_thread *sevp, void **timerid);
int timer_settime(void *timerid, int flags, const struct itimerspec_ *new_value, struct itimerspec_ *old_value);
int timer_delete(void *timerid);
""")
libc = ffi.dlopen(None)

# The real-time signal used for kicks (glibc reserves SIGRTMIN-2..SIGRTMIN-1 internally).
KICK_SIGNAL = signal.SIGRTMIN + 3

PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE = 0, 1
PERF_COUNT_HW_INSTRUCTIONS = 1
PERF_COUNT_SW_TASK_CLOCK = 1
PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_REFRESH, PERF_EVENT_IOC_RESET = 0x2400, 0x2401, 0x2402, 0x2403
PERF_EVENT_IOC_PERIOD = 0x40082404
SYS_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241}
F_SETSIG, F_SETOWN_EX, F_OWNER_TID = 10, 15, 0
SIGEV_THREAD_ID = 4
CLOCK_MONOTONIC = 1


class PerfAttrFlags:
    """Bit positions in perf_event_attr's flag word (include/uapi/linux/perf_event.h)."""

    DISABLED = 1 << 0
    EXCLUDE_HV = 1 << 6
    EXCLUDE_IDLE = 1 << 7
    EXCLUDE_HOST = 1 << 19
    EXCLUDE_GUEST = 1 << 20


def perf_attr(type_: int, config: int, period: int, flags: int) -> CData:
    """A new `struct perf_event_attr *` for perf_event_open."""
    attr = ffi.new("struct perf_event_attr *")
    attr.type = type_
    attr.size = ffi.sizeof("struct perf_event_attr")
    attr.config = config
    attr.sample_period = max(1, period)
    attr.flags = flags
    attr.wakeup_events = 1
    return attr


def _perf_event_open(attr, pid: int = 0, cpu: int = -1, group: int = -1, flags: int = 0) -> int:
    number = SYS_PERF_EVENT_OPEN.get(platform.machine())
    if number is None:
        raise KvmError(f"perf_event_open: unknown syscall number on {platform.machine()}", _errno.ENOSYS)
    fd = libc.syscall(number, attr, ffi.cast("int", pid), ffi.cast("int", cpu), ffi.cast("int", group),
                      ffi.cast("unsigned long", flags))
    if fd < 0:
        raise KvmError(f"perf_event_open(type {attr.type}, config {attr.config})", ffi.errno)
    return int(fd)


class _ThreadKicks(threading.local):
    """Per thread: the perf-event source whose one-shot kick is set and has not come (see `TaskClockBudget`).

    Held as a weak reference (`TaskClockBudget._ref`), so it keeps no source alive.
    """

    counting: weakref.ref | None = None


_kicks = _ThreadKicks()


def drain(signo: int) -> int:
    """Consume pending kicks without waiting; returns how many there were."""
    count = 0
    while signal.sigtimedwait([signo], 0) is not None:
        count += 1
    if count:
        # A kick came, and the signal does not say whose: no source may count on its kick being set.
        _kicks.counting = None
    return count


class BudgetSource(Protocol):
    """Ends a quantum after a budget of guest instructions and measures how many ran."""

    name: str
    exact: bool        # True: counted instructions; False: estimated from CPU time

    def arm(self, instructions: int) -> None:
        """Start a quantum of `instructions` guest instructions: counting begins, a kick is set."""

    def entered(self) -> None:
        """The vCPU is about to enter KVM_RUN."""

    def exited(self) -> None:
        """KVM_RUN returned."""

    def executed(self) -> int:
        """Guest instructions since `arm` (measured or estimated)."""

    def rearm(self) -> None:
        """An early kick (or another signal): drain it, and kick again when the rest of the budget is spent."""

    def disarm(self) -> None:
        """End of the quantum: drain a kick that came. (A kick still counting may stay set: `arm` restarts it.)"""

    def close(self) -> None: ...


class _CpuTimeBudget:
    """Shared part of (2)/(3): progress = thread CPU time inside KVM_RUN x instructions per second."""

    exact = False
    name = ""

    def __init__(self, ips: float, signo: int = KICK_SIGNAL, exit_ns: float = 0.0) -> None:
        if ips <= 0:
            raise PlatformError(f"instructions per second must be positive, not {ips}")
        self.ips = ips
        self.signo = signo
        self.exit_ns = int(exit_ns)   # CPU time each KVM_RUN return costs KVM itself: not guest progress
        self._budget_ns = 0
        self._inside_ns = 0       # CPU ns spent inside KVM_RUN since arm
        self._entered_at = 0

    def _ns_for(self, instructions: int) -> int:
        return max(1, int(instructions * 1e9 / self.ips))

    def arm(self, instructions: int) -> None:
        self._budget_ns = self._ns_for(instructions)
        self._inside_ns = 0
        # The last quantum's kick kept counting after it ended: drain one that came since, before
        # restarting the countdown (in that order, so the new kick cannot be drained by mistake).
        drain(self.signo)
        self._kick_after(self._budget_ns + self.exit_ns)    # the kicked exit costs its share too

    def entered(self) -> None:
        self._entered_at = time.thread_time_ns()

    def exited(self) -> None:
        spent = time.thread_time_ns() - self._entered_at - self.exit_ns
        if spent > 0:
            self._inside_ns += spent

    def executed(self) -> int:
        return int(self._inside_ns * self.ips / 1e9)

    def rearm(self) -> None:
        drain(self.signo)       # the early kick is still pending (blocked): it would end the next KVM_RUN at once
        self._kick_after(max(1, self._budget_ns - self._inside_ns) + self.exit_ns)

    def disarm(self) -> None:
        drain(self.signo)

    def _kick_after(self, ns: int) -> None:
        """Kick once `ns` from now, replacing the kick set before (whether it came or not)."""
        raise NotImplementedError


class TaskClockBudget(_CpuTimeBudget):
    """(2) the software `task-clock` perf event of the vCPU thread, overflowing after the budget's CPU ns.

    A kick is one overflow: PERIOD then REFRESH 1 (`_perf_restart`), after which
    the event disables itself. It is not stopped when a quantum ends; while it
    is still counting (no kick drained since it was set, in this thread),
    PERF_EVENT_IOC_PERIOD alone restarts the countdown (the kernel resets
    period_left of a running event): one ioctl per quantum instead of three.
    """

    name = "task-clock"

    def __init__(self, ips: float, signo: int = KICK_SIGNAL, tid: int | None = None,
                 open_event: Callable[..., int] = _perf_event_open, exit_ns: float = 0.0) -> None:
        super().__init__(ips, signo, exit_ns)
        attr = perf_attr(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK, 1_000_000, PerfAttrFlags.DISABLED)
        self.fd = _open_signalling(open_event, attr, signo, tid, "task-clock perf event")
        self._finalizer = weakref.finalize(self, _close_quietly, self.fd)
        self.description = f"task-clock perf event, estimated at {self.ips / 1e6:.3g}M instructions/s"
        self._ref = weakref.ref(self)

    def _kick_after(self, ns: int) -> None:
        if _kicks.counting is self._ref:
            fcntl.ioctl(self.fd, PERF_EVENT_IOC_PERIOD, struct.pack("<Q", ns))
            return
        # Off (it overflowed), or unknown (some kick came): a fresh one-shot. Were it still
        # counting, REFRESH allows it one overflow more, which is drained like any late kick.
        _perf_restart(self.fd, ns)
        _kicks.counting = self._ref

    def close(self) -> None:
        self._finalizer()


class TimerBudget(_CpuTimeBudget):
    """(3) a POSIX CLOCK_MONOTONIC timer whose expiry signals the vCPU thread (SIGEV_THREAD_ID).

    Wall time runs at least as fast as the thread's CPU time, so the kick is
    never late; when it is early (the thread was descheduled) `rearm` sets it again.
    One-shot: setting it replaces the kick before, so a quantum is one timer_settime.
    """

    name = "posix-timer"

    def __init__(self, ips: float, signo: int = KICK_SIGNAL, tid: int | None = None, exit_ns: float = 0.0) -> None:
        super().__init__(ips, signo, exit_ns)
        event = ffi.new("struct sigevent_thread *")
        event.sigev_signo = signo
        event.sigev_notify = SIGEV_THREAD_ID
        event.sigev_notify_thread_id = tid or threading.get_native_id()
        handle = ffi.new("void **")
        if libc.timer_create(CLOCK_MONOTONIC, event, handle) != 0:
            raise KvmError("timer_create(CLOCK_MONOTONIC, SIGEV_THREAD_ID)", ffi.errno)
        self._timer = handle[0]
        self._finalizer = weakref.finalize(self, libc.timer_delete, self._timer)
        self._spec = ffi.new("struct itimerspec_ *")
        self.description = f"POSIX timer, estimated at {self.ips / 1e6:.3g}M instructions/s"

    def _set(self, ns: int) -> None:
        self._spec.it_value.tv_sec, self._spec.it_value.tv_nsec = divmod(ns, 1_000_000_000)
        if libc.timer_settime(self._timer, 0, self._spec, ffi.NULL) != 0:
            raise KvmError("timer_settime", ffi.errno)

    def _kick_after(self, ns: int) -> None:
        self._set(ns)

    def kick_in(self, ns: int) -> None:
        """One kick `ns` from now (0: none), apart from any budget: no pending kick is drained."""
        self._set(ns)

    def close(self) -> None:
        self._finalizer()


class PmuBudget:
    """(1) a hardware instruction counter that counts guest mode only, overflowing after the budget."""

    name = "pmu"
    exact = True

    def __init__(self, signo: int = KICK_SIGNAL, tid: int | None = None,
                 open_event: Callable[..., int] = _perf_event_open) -> None:
        self.signo = signo
        # exclude_host: count only while the CPU is in guest mode (VMX non-root / EL1 of the guest).
        attr = perf_attr(PERF_TYPE_HARDWARE, PERF_COUNT_HW_INSTRUCTIONS, 1_000_000,
                         PerfAttrFlags.DISABLED | PerfAttrFlags.EXCLUDE_HOST)
        self.fd = _open_signalling(open_event, attr, signo, tid, "PMU perf event")
        self._finalizer = weakref.finalize(self, _close_quietly, self.fd)
        self._budget = 0
        self._count = 0
        self.description = "hardware PMU, guest instructions counted (exclude_host)"

    def arm(self, instructions: int) -> None:
        self._budget = max(1, instructions)
        fcntl.ioctl(self.fd, PERF_EVENT_IOC_RESET, 0)
        self._count = 0
        _perf_restart(self.fd, self._budget)

    def entered(self) -> None:
        pass

    def exited(self) -> None:
        self._count = struct.unpack("<Q", os.read(self.fd, 8))[0]

    def executed(self) -> int:
        return self._count

    def rearm(self) -> None:
        drain(self.signo)
        _perf_restart(self.fd, max(1, self._budget - self._count))

    def disarm(self) -> None:
        fcntl.ioctl(self.fd, PERF_EVENT_IOC_DISABLE, 0)
        drain(self.signo)

    def close(self) -> None:
        self._finalizer()


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _open_signalling(open_event: Callable[..., int], attr, signo: int, tid: int | None, what: str) -> int:
    """A perf event on this thread whose overflow sends `signo` to thread `tid` (default: this one).

    fcntl F_SETOWN_EX (F_OWNER_TID), F_SETSIG and O_ASYNC route the overflow
    notification as a signal to one thread (perf_event_open(2), "Overflow handling").
    """
    fd = open_event(attr, 0, -1)
    try:
        fcntl.fcntl(fd, F_SETOWN_EX, struct.pack("ii", F_OWNER_TID, tid or threading.get_native_id()))
        fcntl.fcntl(fd, F_SETSIG, signo)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
    except OSError as error:
        os.close(fd)
        raise KvmError(f"{what}: routing its overflow signal", error.errno or _errno.EINVAL) from error
    return fd


def _perf_restart(fd: int, period: int) -> None:
    """Overflow once after `period` more units: set the period, then enable for one overflow (REFRESH 1).

    On a disabled event (the PMU source's `disarm`, or the overflow itself) the
    new period counts from the REFRESH. After another signal's EINTR it is still
    counting and the REFRESH allows one more overflow, which is drained like a late kick.
    """
    fcntl.ioctl(fd, PERF_EVENT_IOC_PERIOD, struct.pack("<Q", max(1, period)))
    fcntl.ioctl(fd, PERF_EVENT_IOC_REFRESH, 1)


@dataclass
class BudgetChoice:
    source: BudgetSource
    rejected: list[str]           # "pmu: perf_event_open(...) failed: ENOENT ..." for each better source

    def describe(self) -> str:
        text = getattr(self.source, "description", self.source.name)
        return text + (f" ({'; '.join(self.rejected)})" if self.rejected else "")


def choose_budget_source(preference: str = "auto", *, ips: Callable[[], float], signo: int = KICK_SIGNAL,
                         open_event: Callable[..., int] = _perf_event_open, exit_ns: float = 0.0) -> BudgetChoice:
    """The best source that works here, trying pmu, task-clock, posix-timer in turn.

    `preference` names one source to use (errors are then reported, not skipped)
    or "auto". `ips()` gives the instructions-per-second figure the time-based
    sources need; it is called only when one of them is chosen (it may run the
    calibration guest). `exit_ns`: the CPU time one exit costs KVM, which those
    sources take off each KVM_RUN's CPU time.
    """
    try:
        budget_source_name(preference)
    except ValueError as error:
        raise PlatformError(str(error)) from None
    rejected: list[str] = []
    for name in SOURCE_NAMES if preference == "auto" else (preference,):
        try:
            if name == "pmu":
                source: BudgetSource = PmuBudget(signo, open_event=open_event)
            elif name == "task-clock":
                source = TaskClockBudget(ips(), signo, open_event=open_event, exit_ns=exit_ns)
            else:
                source = TimerBudget(ips(), signo, exit_ns=exit_ns)
        except KvmError as error:
            if preference != "auto":
                raise
            rejected.append(f"{name}: {error}")
            continue
        return BudgetChoice(source, rejected)
    raise KvmError("no budget source works on this host: " + "; ".join(rejected), _errno.ENOTSUP)
