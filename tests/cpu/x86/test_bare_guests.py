"""Guests that need no device: (d) unmapped memory and ports, (e) a triple fault, entry modes, kicks."""

import logging

import pytest

from cosim import MS, SEC, US, SimulationError

from ..budget_fakes import ScriptedSource
from .bare import Bare
from .conftest import RESULTS

pytestmark = pytest.mark.usefixtures("kvm")


def results(board, count):
    return [board.ram.read(RESULTS + 8 * i, 8) for i in range(count)]


def test_unmapped_ports_and_memory_read_all_ones_warn_once_and_the_guest_goes_on(x86_guest, caplog):
    caplog.set_level(logging.WARNING, logger="cosim.cpu.x86")
    board = Bare(kernel=str(x86_guest("unmapped").elf))
    summary = board.run(until=US * 1000)
    assert results(board, 5) == [0xFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF, 0x600D]
    warnings = [r.getMessage() for r in caplog.records if "failed (" in r.getMessage()]
    assert len(warnings) == 2                   # once per address, reads and writes alike
    assert "io 0x2f0" in warnings[0] and "sysbus 0xe0000000" in warnings[1]
    assert "guest halted with interrupts disabled" in summary.stop.reason    # cli; hlt: nothing can wake it


def test_triple_fault_ends_the_run_with_a_clear_error_and_registers(x86_guest):
    board = Bare(kernel=str(x86_guest("triple_fault").elf))
    with pytest.raises(SimulationError) as error:
        board.run(until=US * 1000)
    text = str(error.value)
    assert "cpu0: triple fault" in text and "KVM_EXIT_SHUTDOWN" in text
    assert "rip=" in text and "idt=0/0" in text and "cr0=80010033" in text


@pytest.mark.parametrize("budget", ["task-clock", "posix-timer"])
def test_a_spinning_guest_is_kicked_out_at_each_budget(x86_guest, budget):
    board = Bare(kernel=str(x86_guest("spin").elf), budget=budget)
    board.cpu0.quantum = 20 * US
    summary = board.run(until=60 * US)
    backend = board.cpu0.backend
    assert summary.sim_time == 60 * US and board.cpu0.exits["budget"] == 3
    assert backend.kicks - backend.early_kicks == 3     # each quantum ended by its own kick
    assert board.ram.read(RESULTS, 8) > 0


# mov word/dword [0x5000], imm; cli; hlt — encoded per mode (64-bit needs the SIB form: no RIP-relative).
ENTRY_CODE = {
    "real": bytes.fromhex("c7060050 3412") + b"\xfa\xf4",
    "protected": bytes.fromhex("c70500500000 78563412") + b"\xfa\xf4",
    "long": bytes.fromhex("48c7042500500000 78563412") + b"\xfa\xf4",
}
EXPECTED = {"real": 0x1234, "protected": 0x1234_5678, "long": 0x1234_5678}


@pytest.mark.parametrize("mode", ["real", "protected", "long"])
def test_each_entry_mode_runs_guest_code(tmp_path, mode):
    image = tmp_path / f"{mode}.bin"
    image.write_bytes(ENTRY_CODE[mode])
    board = Bare(kernel=str(image), mode=mode, load_address=0x9000)
    backend = board.cpu0.backend
    assert backend.sregs().cs.l == (mode == "long") and bool(backend.read_register("cr0") & 1) == (mode != "real")
    summary = board.run(until=US * 1000)
    assert board.ram.read(0x5000, 8) == EXPECTED[mode]            # the mode's own encoding did its store
    hlt = 0x9000 + len(ENTRY_CODE[mode]) - 1                      # CS base 0 in real mode too
    assert summary.stop.reason == f"guest halted with interrupts disabled at {hlt:#x}"


def test_rom_is_a_read_only_slot_whose_writes_reach_the_model(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="cosim.cpu.x86")
    # mov dword [ROM_BASE], 0x1234; mov eax, [ROM_BASE]; mov [0x5000], eax; cli; hlt
    code = (bytes.fromhex("c7042500004000") + (0x1234).to_bytes(4, "little") + bytes.fromhex("8b042500004000")
            + bytes.fromhex("89042500500000") + b"\xfa\xf4")
    image = tmp_path / "rom.bin"
    image.write_bytes(code)
    board = Bare(kernel=str(image), rom=True, load_address=0x9000)
    board.run(until=US * 1000)
    assert board.ram.read(0x5000, 4) == 0x5A5A5A5A          # the ROM kept its contents; reads need no exit
    assert any("write of 4 bytes at sysbus 0x400000" in r.getMessage() and "read-only" in r.getMessage()
               for r in caplog.records)


def test_other_signals_interrupt_kvm_run_without_ending_the_quantum(x86_guest):
    import signal

    alarms = []
    previous = signal.signal(signal.SIGALRM, lambda *_: alarms.append(1))
    try:
        # frequency "host": each 10 ms quantum is 10 ms of guest execution on any host
        board = Bare(kernel=str(x86_guest("spin").elf), budget="posix-timer", frequency="host")
        board.cpu0.quantum = 10 * MS
        signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
        summary = board.run(until=30 * MS)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert alarms, "no SIGALRM arrived during the run"
    assert summary.sim_time == 30 * MS and board.cpu0.exits["budget"] == 3
    assert board.cpu0.instructions >= 0.03 * board.cpu0.backend.ips     # every quantum ran its whole budget


@pytest.mark.parametrize("mode, load, status", [("real", 0x7C00, 0x16), ("protected", 0x10_0000, 0x32)])
def test_port_io_guests_in_real_and_protected_mode(x86_guest, tmp_path, mode, load, status):
    from cosim.toolchain import ToolchainError, assemble

    from .conftest import GUESTS

    try:
        built = assemble(GUESTS / f"hello_{mode}.S", "x86_64", load, tmp_path)   # .code16/.code32 inside
    except ToolchainError as error:
        pytest.skip(str(error))
    image = built.bin if mode == "real" else built.elf      # raw like a boot sector; ELF by its headers
    board = Bare(kernel=str(image), mode=mode, load_address=load)
    summary = board.run(until=US * 1000)
    assert board.log.output == f"{mode}\n".encode()
    assert summary.status == status and "SIMCTL_EXIT" in summary.stop.reason


def test_time_moves_between_polls_by_guest_progress_plus_access_latency(x86_guest):
    from cosim import MiB, Memory, Platform
    from cosim.cpu.x86.machine import add_kvm_x86_cpu
    from cosim.models.simctl import SimControl

    source = ScriptedSource(step=1000)

    class Polling(Platform):
        def build(self):
            self.ram = self.add("ram", Memory, size=4 * MiB)
            self.map("sysbus", 0, self.ram)
            self.map(self.bus("io", width=16), 0x500, self.add("simctl", SimControl), size=0x20)
            self.cpu0 = add_kvm_x86_cpu(self, kernel=str(x86_guest("poll_time").elf), budget=source, ips=1e6)

    board = Polling()
    board.run(until=SEC)
    times = [board.ram.read(RESULTS + 8 * i, 8) for i in range(8)]
    latency = board.cpu0.backend.access_latency
    # each read: the guest's 1000 instructions at 1 GHz, plus the latency of the read itself
    assert times[0] == (1000 * 1000 + latency) // 1000
    assert all(b - a == (1000 * 1000 + latency) // 1000 for a, b in zip(times, times[1:]))
    assert source.armed[0] == board.cpu0.quantum // 1000    # the budget in instructions (quantum / period)


def test_a_quantum_ends_when_exits_have_used_up_its_budget(tmp_path):
    image = tmp_path / "out_loop.bin"
    image.write_bytes(b"\xe6\x80\xeb\xfc")                  # 1: out %al, $0x80; jmp 1b
    source = ScriptedSource(step=30_000)
    board = Bare(kernel=str(image), load_address=0x9000, budget=source)
    summary = board.run(until=300 * US)
    # 100 us quanta = 100,000 instructions: the 4th exit passes the budget, and the
    # quantum is charged exactly its budget (the overshoot is not simulated time).
    assert board.cpu0.exits["budget"] == 3 and summary.sim_time == 300 * US
    assert board.cpu0.instructions == 3 * 4 * 30_000


@pytest.mark.parametrize("budget", ["task-clock", "posix-timer"])
def test_an_early_kick_is_drained_and_the_quantum_goes_on(x86_guest, budget):
    # frequency "host": a 2 ms quantum is 2 ms of guest execution, well above timer floors on any host
    board = Bare(kernel=str(x86_guest("spin").elf), budget=budget, frequency="host")
    board.cpu0.quantum = 2 * MS
    backend = board.cpu0.backend
    source, vcpu = backend.source, backend.vcpu
    arms, runs = [], []
    kick_after, run = source._kick_after, vcpu.run

    def first_kick_early(ns):              # every quantum's first kick comes at half its time
        arms.append(ns)
        kick_after(ns // 2 if len(arms) % 2 else ns)

    source._kick_after = first_kick_early
    vcpu.run = lambda: runs.append(1) or run()
    board.run(until=6 * MS)
    # per quantum: the early kick, a re-arm, the real kick — two KVM_RUNs (a wall-clock timer
    # may kick early a few more times on a busy host), not a storm of EINTRs from a kick left pending
    assert board.cpu0.exits["budget"] == 3 and 6 <= len(runs) <= 30 and len(arms) == len(runs)


def test_registers_read_after_an_in_exit_see_the_completed_instruction(tmp_path):
    # mov $0x500, %dx; in %dx, %eax (SIMCTL_ID); then spin
    code = bytes.fromhex("66ba0005") + b"\xed" + b"\xeb\xfe"
    image = tmp_path / "in.bin"
    image.write_bytes(code)
    board = Bare(kernel=str(image), load_address=0x9000, budget=ScriptedSource(step=10))
    backend = board.cpu0.backend
    from cosim.cpu import DEVICE_ACCESS
    from cosim.cpu._loop import Keeper

    # Run the backend by hand, before the simulation starts: the CPU process's own start
    # event is due at 0, inside the budget, so the run ends right after serving the IN.
    result = backend.run(Keeper(board.sim, 0, 1000 * US))
    assert result.reason is DEVICE_ACCESS and backend.state.pending_completion
    assert backend.read_register("rax") == 0x4D49_5343 and backend.pc == 0x9000 + 5
    assert not backend.state.pending_completion


def test_a_stray_kick_pending_before_a_quantum_does_not_cut_it_short(x86_guest):
    import signal
    import threading

    board = Bare(kernel=str(x86_guest("spin").elf), budget="posix-timer")
    board.cpu0.quantum = 20 * US
    backend = board.cpu0.backend
    signal.pthread_kill(threading.get_ident(), backend.kick_signal)   # blocked here: stays pending
    assert backend.kick_signal in signal.sigpending()
    summary = board.run(until=20 * US)
    assert summary.sim_time == 20 * US and board.cpu0.exits["budget"] == 1
    assert board.cpu0.instructions >= 20_000                      # the whole budget ran
    assert backend.kick_signal not in signal.sigpending()


def test_a_hardware_breakpoint_stops_the_run_at_its_address(tmp_path):
    image = tmp_path / "nops.bin"
    image.write_bytes(b"\x90\x90\x90\xe6\x80\xfa\xf4")          # nop x3; out %al, $0x80; cli; hlt
    board = Bare(kernel=str(image), load_address=0x9000)
    board.cpu0.backend.set_breakpoints([0x9002])
    summary = board.run(until=US * 1000)
    assert summary.stop and "breakpoint at 0x9002" in summary.stop.reason
    assert board.cpu0.exits["breakpoint"] == 1            # (the run closed the vCPU; the reason names the pc)
