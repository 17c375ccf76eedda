"""Bare-metal x86 guests on the `pc` platform under KVM: (a) hello, (b) 1 kHz ticks with HLT,
(c) a spinning guest kicked out for its interrupt, polling the PIT, the guest TSC across idle time."""

import time

import pytest

from cosim import MS, SEC, US
from cosim.chardev import BufferBackend
from cosim.cli import main
from cosim.platforms.pc import Pc

from .conftest import RESULTS

pytestmark = pytest.mark.usefixtures("kvm")


def boot(guest, **props):
    console = BufferBackend()
    board = Pc(image=str(guest.elf), console=console, ram_size="8M", **props)
    return board, console


def results(board, count):
    return [board.ram.read(RESULTS + 8 * i, 8) for i in range(count)]


def test_a_hello_on_the_16550_and_exit_through_sim_control(x86_guest):
    board, console = boot(x86_guest("hello"))
    summary = board.run(until=SEC)
    assert console.output == b"hello\n"
    assert summary.stop and "SIMCTL_EXIT" in summary.stop.reason and summary.status == 0


def test_b_1000_pit_ticks_with_hlt_take_one_simulated_second_and_little_wall_time(x86_guest):
    board, _ = boot(x86_guest("timer_hlt"))
    wall = time.perf_counter()
    summary = board.run(until=5 * SEC)
    wall = time.perf_counter() - wall
    ticks, last_tick_ns = results(board, 2)
    assert summary.status == 0 and results(board, 8)[7] == 0     # only vector 0x20 arrived (UNEXPECTED)
    assert ticks == 1000                                  # every tick delivered
    # The first edge comes when mode 2 is programmed (OUT goes high), then one every
    # 1193 PIT clocks: tick 1000 is 999 periods later.
    period = 1193 * SEC // 1_193_182
    assert abs(summary.sim_time - 999 * period) < 50 * US
    assert abs(last_tick_ns * 1000 - summary.sim_time) < 10 * US
    assert board.cpu0.idle_skipped > 0.99 * summary.sim_time and wall < 5
    assert board.cpu0.exits["idle"] == 1000


def test_c_a_spinning_guest_gets_its_interrupt_within_one_quantum(x86_guest):
    board, _ = boot(x86_guest("spin_irq"), quantum=20 * US)
    summary = board.run(until=SEC)
    spins, started_ns, fired_ns = results(board, 3)
    due = started_ns * 1000 + 119 * SEC // 1_193_182
    assert summary.status == 0 and spins > 0
    assert due <= fired_ns * 1000 <= due + board.quantum
    assert board.cpu0.exits["budget"] >= 4                # the spin never exits by itself: kicks ended quanta


def test_time_moves_while_the_guest_polls_the_pit(x86_guest):
    board, _ = boot(x86_guest("poll_pit"))
    summary = board.run(until=SEC)
    polls, start_ns, end_ns, tsc_ticks = results(board, 4)
    assert summary.status == 0
    waited = (end_ns - start_ns) * 1000
    count = 1193 * SEC // 1_193_182                       # the programmed 1193 PIT clocks (~1 ms)
    assert count <= waited < count + 10 * US              # seen in simulated time
    # each read costs at least the access latency, so the loop needs at most 1 ms / latency reads
    assert 1 < polls <= MS // board.cpu0.backend.access_latency


def test_guest_tsc_follows_simulated_time_across_idle(x86_guest):
    board, _ = boot(x86_guest("timer_hlt"))
    backend = board.cpu0.backend
    if not backend.tsc_follows_idle:
        pytest.skip(backend.tsc_note)
    summary = board.run(until=5 * SEC)
    start, end = (board.ram.read(RESULTS + offset, 8) for offset in (24, 32))
    tsc_time = (end - start) * SEC // (backend.tsc_khz * 1000)
    # Idle jumps moved the TSC by the simulated time skipped; while the guest ran, its
    # TSC advanced with host time (here an emulating host: more than simulated time).
    assert tsc_time >= board.cpu0.idle_skipped
    assert summary.status == 0


def test_cosim_run_pc_runs_an_image(x86_guest, capsys):
    status = main(["run", "pc", "--image", str(x86_guest("hello").elf), "--console", "none", "--until", "1 s"])
    err = capsys.readouterr().err
    assert status == 0 and "guest wrote 0x0 to simctl SIMCTL_EXIT" in err and "KVM x86-64" in err, err


def test_c_with_the_host_rate_as_frequency_simulated_time_follows_guest_execution(x86_guest):
    # At the host's rate every µs the host spends inside KVM_RUN is a simulated µs, and
    # an emulating host spends tens of µs delivering an interrupt: a 300 µs quantum.
    board, _ = boot(x86_guest("spin_irq"), quantum=300 * US, frequency="host")
    backend = board.cpu0.backend
    assert backend.frequency.hz == round(backend.ips) and backend.period == backend.frequency.period
    summary = board.run(until=SEC)
    spins, started_ns, fired_ns = results(board, 3)
    due = started_ns * 1000 + 119 * SEC // 1_193_182
    assert summary.status == 0 and due <= fired_ns * 1000 <= due + board.quantum


def test_frequency_property_parsing():
    from cosim import GHz, MHz, PlatformError
    from cosim.cpu.x86.machine import parse_frequency

    assert parse_frequency("host") == "host" and parse_frequency("2.5 GHz") == GHz(2.5)
    assert parse_frequency("800MHz") == MHz(800) and parse_frequency(GHz(1)) == GHz(1)
    with pytest.raises(PlatformError, match="cannot read 'fast' as a CPU frequency"):
        parse_frequency("fast")


def test_the_tsc_offset_policy_moves_the_tsc_by_exactly_the_time_the_guest_did_not_run(x86_guest, monkeypatch):
    """The policy's plumbing and arithmetic, checked whether or not this host honours the offset."""
    from cosim.kvm._uapi import Ioctl
    from cosim.kvm._x86 import ffi

    board, _ = boot(x86_guest("timer_hlt"))
    backend = board.cpu0.backend
    attr = ffi.new("struct kvm_device_attr *")
    backend._tsc_attr, backend._tsc_value, backend._tsc_khz = attr, ffi.new("unsigned long long *", 7), 2_000_000
    written, moved = [], []
    real_ioctl, advance = backend.vcpu.ioctl, backend._advance_tsc

    def ioctl(request, arg=0, what=""):
        if request == Ioctl.SET_DEVICE_ATTR and arg is attr:
            written.append(backend._tsc_value[0])
            return 0
        return real_ioctl(request, arg, what)

    monkeypatch.setattr(backend.vcpu, "ioctl", ioctl)
    monkeypatch.setattr(backend, "_advance_tsc", lambda ps: moved.append(ps) or advance(ps))
    summary = board.run(until=5 * SEC)
    assert summary.status == 0 and len(moved) >= 999               # each wake-up from HLT (tick 1 came running)
    skipped = sum(moved)
    # the idle jumps, less what the guest itself ran before each HLT (its TSC ran then)
    assert 0.99 * board.cpu0.idle_skipped <= skipped <= board.cpu0.idle_skipped
    # 2 GHz TSC: 2 ticks per ns of simulated time the guest did not run (each step rounded down)
    assert written[-1] - 7 == pytest.approx(skipped * 2 // 1000, abs=len(moved))


def test_an_interrupt_due_while_if_is_clear_waits_for_sti_and_its_shadow(x86_guest):
    board, _ = boot(x86_guest("irq_window"), quantum=20 * US)
    summary = board.run(until=SEC)
    marker_at_delivery = results(board, 3)[2]
    assert summary.status == 0 and marker_at_delivery in (1, 2)  # never while IF=0
    assert board.cpu0.exits["budget"] >= 2                      # the IF=0 spin ran through several quanta
    if board.cpu0.backend.calibration.irq_window:
        assert marker_at_delivery == 1      # KVM_EXIT_IRQ_WINDOW_OPEN right after sti + its shadow
    # else (this development host): at the guest's next exit, its HLT, still within the quantum


def test_the_summary_counts_kvm_exits_and_kicks(x86_guest):
    board, _ = boot(x86_guest("spin_irq"), quantum=20 * US)
    summary = board.run(until=SEC)
    rows = summary.extra
    assert "port I/O" in rows["cpu0 KVM exits"]
    kicks = int(rows["cpu0 budget kicks"].split()[0])
    assert kicks >= board.cpu0.exits["budget"] >= 4           # each spinning quantum ended by a kick


def _ticks_with_injection_counted(x86_guest, monkeypatch, synced: bool):
    from cosim.kvm._uapi import Ioctl

    board, _ = boot(x86_guest("timer_hlt"))
    backend = board.cpu0.backend
    if synced and backend._events is None:
        pytest.skip("this host's KVM does not sync vCPU events (KVM_CAP_SYNC_REGS)")
    if not synced:
        backend._events = None                    # as on a host without synced events
    ioctls, real_ioctl = [], backend.vcpu.ioctl

    def ioctl(request, arg=0, what=""):
        if request == Ioctl.INTERRUPT:
            ioctls.append(arg.irq)
        return real_ioctl(request, arg, what)

    monkeypatch.setattr(backend.vcpu, "ioctl", ioctl)
    summary = board.run(until=5 * SEC)
    ticks = results(board, 1)[0]
    assert summary.status == 0 and results(board, 8)[7] == 0 and ticks == 1000    # vector 0x20 each time
    return ioctls


def test_interrupts_are_injected_through_the_synced_vcpu_events_without_an_ioctl(x86_guest, monkeypatch):
    assert _ticks_with_injection_counted(x86_guest, monkeypatch, synced=True) == []


def test_without_synced_events_interrupts_are_injected_with_kvm_interrupt(x86_guest, monkeypatch):
    assert _ticks_with_injection_counted(x86_guest, monkeypatch, synced=False) == [0x20] * 1000
