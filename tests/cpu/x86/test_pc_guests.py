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
