"""Guests that need no device: (d) unmapped memory and ports, (e) a triple fault, entry modes, kicks."""

import logging

import pytest

from cosim import US, SimulationError

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
    assert board.cpu0.exits["idle"] == 1 and summary.stop is None     # cli; hlt: nothing can wake it


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
    assert summary.sim_time == 60 * US
    assert board.cpu0.exits["budget"] == 3          # exactly one kick per quantum: no late kick leaked
    assert board.ram.read(RESULTS, 8) > 0


# mov word/dword [0x5000], imm; cli; hlt — encoded per mode (64-bit needs the SIB form: no RIP-relative).
ENTRY_CODE = {
    "real": bytes.fromhex("c7060050 3412".replace(" ", "")) + b"\xfa\xf4",
    "protected": bytes.fromhex("c70500500000 78563412".replace(" ", "")) + b"\xfa\xf4",
    "long": bytes.fromhex("48c7042500500000 78563412".replace(" ", "")) + b"\xfa\xf4",
}
EXPECTED = {"real": 0x1234, "protected": 0x1234_5678, "long": 0x1234_5678}


@pytest.mark.parametrize("mode", ["real", "protected", "long"])
def test_each_entry_mode_runs_guest_code(tmp_path, mode):
    image = tmp_path / f"{mode}.bin"
    image.write_bytes(ENTRY_CODE[mode])
    board = Bare(kernel=str(image), mode=mode, load_address=0x9000)
    board.run(until=US * 1000)
    assert board.ram.read(0x5000, 8) == EXPECTED[mode]
    backend = board.cpu0.backend
    assert backend.pc == 0x9000 + len(ENTRY_CODE[mode])            # past the hlt (CS base 0 in real mode too)
    cs_l = backend.sregs().cs.l
    assert cs_l == (mode == "long") and bool(backend.read_register("cr0") & 1) == (mode != "real")


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
        board = Bare(kernel=str(x86_guest("spin").elf), budget="posix-timer")
        board.cpu0.quantum = 20 * US
        signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
        summary = board.run(until=60 * US)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert alarms, "no SIGALRM arrived during the run"
    assert summary.sim_time == 60 * US and board.cpu0.exits["budget"] == 3
    assert board.cpu0.instructions >= 60_000                 # every quantum ran its whole budget
