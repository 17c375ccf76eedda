"""Bare-metal Arm64 guests on the virt platform: on the unicorn backend (per-block and exact per-instruction
counting) and, on Arm64 hosts, on KVM (the `cpu` fixture in conftest.py)."""

import time

import pytest

from cosim import MS, SEC, US
from cosim.chardev import BufferBackend
from cosim._memory import WRITE_LOG
from cosim.platforms.virt import Virt

RESULTS = 0x0020_0000  # offset of the guests' RESULTS area in RAM
# Per-instruction counting is exact; per-block counting (the default) must give the same guest behaviour.
COUNTINGS = ["block", "instruction"]


def boot(path, **props):
    console = BufferBackend()
    board = Virt(firmware=str(path), console=console, **props)
    return board, console


def results(board, index):
    return board.ram.read(RESULTS + 8 * index, 8)


def test_hello_on_the_pl011_and_psci_poweroff(arm_guest, cpu):
    board, console = boot(arm_guest("hello"), **cpu)
    summary = board.run(until=SEC)
    assert console.output == b"hello\n"
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason and summary.status == 0


def test_timer_interrupts_with_wfi_let_time_jump(arm_guest, cpu):
    board, _ = boot(arm_guest("timer_wfi"), **cpu)
    if cpu["cpu"] == "kvm" and not board.cpu0.backend.features.wfx_exit:
        pytest.skip(f"the host kernel has no WFx exit ({board.cpu0.backend.features.wfx_note}): "
                    "idle time follows wall time (see test_kvm_guests.py)")
    wall = time.perf_counter()
    summary = board.run(until=5 * SEC)
    wall = time.perf_counter() - wall
    assert results(board, 0) == 1000                       # every tick acknowledged and EOId
    assert results(board, 1) & 0x3FF == 27                 # through GICC_IAR: the virtual timer PPI
    if cpu["cpu"] == "kvm":
        # The handler re-arms each tick once it is delivered, and on KVM delivery (exits, each a KVM_RUN round
        # trip of host time) adds to every tick on the guest's clock — ~6% on the emulated host. Simulated time
        # follows that clock; idle jumps absorb what it gained (docs/cpu-kvm-arm64.md, "Accuracy and limits").
        clock = board.cpu0.backend.guest_clock
        assert clock >= SEC and abs(summary.sim_time - clock) <= board.quantum
        assert board.cpu0.idle_skipped > 0.9 * SEC and wall < 10
    else:
        assert SEC <= summary.sim_time < SEC + MS           # 1000 ticks of 1 ms
        assert board.cpu0.idle_skipped > 0.99 * SEC and wall < 10
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason


def test_spinning_guest_gets_its_interrupt_within_one_quantum(arm_guest, cpu):
    board, _ = boot(arm_guest("spin_irq"), quantum=100 * US, **cpu)
    summary = board.run(until=SEC)
    cval, taken = results(board, 0), results(board, 1)
    due = board.timer.time_of(cval)                 # when the guest's timer was due, on the guest's own counter
    assert summary.stop and cval <= taken and due >= 100 * US
    if cpu["cpu"] == "kvm":
        # The guest's counter runs at the host's pace inside KVM_RUN, simulated time at the instructions
        # retired; delivering the interrupt takes exits, each a KVM_RUN round trip of host time (~0.1-1 ms on
        # the emulated host). What holds (docs/cpu-kvm-arm64.md, "Accuracy and limits"): the guest took it once
        # due on its own clock, and simulated time never ran more than a quantum ahead of that clock.
        assert summary.sim_time <= board.cpu0.backend.guest_clock + board.quantum
    else:
        assert due <= summary.sim_time <= due + board.quantum


def test_unmapped_access_is_a_synchronous_external_abort(arm_guest, cpu):
    board, _ = boot(arm_guest("unmapped"), **cpu)
    if cpu["cpu"] == "kvm" and not board.cpu0.backend.features.ext_dabt:
        pytest.skip("the host's KVM lacks KVM_CAP_ARM_INJECT_EXT_DABT (Linux 5.7+)")
    summary = board.run(until=SEC)
    esr, far, elr, faulting = (results(board, i) for i in range(4))
    # The architectural 32 bits: Linux 6.1's inject_abt64 builds the ESR in an int and sign-extends it into
    # ESR_EL1 (0xffffffff96000010 on a real KVM, issue 10); bits [63:32] are RES0/ISS2, zero for this abort.
    esr &= 0xFFFF_FFFF
    assert esr >> 26 == 0x25 and esr & 0x3F == 0x10        # data abort, same EL; DFSC: sync external
    assert far == 0x2000_0000 and elr == faulting
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason


def test_an_access_the_model_refuses_reads_as_zero_without_an_abort(arm_guest, cpu):
    board, _ = boot(arm_guest("refused"), **cpu)
    summary = board.run(until=SEC)
    assert [results(board, i) for i in range(3)] == [0, 1, 0]   # read zero, went on, no ESR stored by a vector
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason


def test_svc_from_el0_and_eret_back_then_undefined_instruction(arm_guest, cpu):
    board, _ = boot(arm_guest("svc_el0"), **cpu)
    board.run(until=SEC)
    svc_esr, svc_elr, spsr, udf_esr, udf_elr, udf_addr, x5, sp_el0, handler_sp = (results(board, i) for i in range(9))
    assert svc_esr == (0x15 << 26) | (1 << 25) | 0x42      # SVC64, IL, imm16 (D17.2.37)
    assert spsr & 0xF == 0                                  # taken from EL0t
    assert x5 == 8 and sp_el0 == 0x4018_0000               # ERET came back to EL0 with its SP
    assert handler_sp == 0x4010_0000                        # the handler ran on SP_EL1
    assert udf_esr == 1 << 25 and udf_elr == udf_addr      # EC 0 (unknown reason), ELR at the UDF
    assert svc_elr == udf_addr - 12                         # preferred return: the instruction after SVC


@pytest.mark.parametrize("counting", COUNTINGS)
def test_same_guest_same_trace(arm_guest, counting):
    def trace():
        board, _ = boot(arm_guest("timer_wfi"), counting=counting)
        summary = board.run(until=5 * SEC)
        return summary.sim_time, board.cpu0.instructions, dict(board.cpu0.exits)

    assert trace() == trace()


def test_guest_reports_results_and_exits_through_sim_control(arm_guest, capsys, cpu):
    board, _ = boot(arm_guest("simctl"), **cpu)
    summary = board.run(until=SEC)
    assert summary.stop and summary.status == 3 and "SIMCTL_EXIT" in summary.stop.reason
    assert board.simctl.results == [0, 0, 5]               # ID matched, time moved on, deliberate fail 5
    assert summary.extra["simctl test results"] == "2 passed, 1 failed (#3: code 0x5)"
    assert "simctl test results" in str(summary)
    first, second = results(board, 0), results(board, 1)
    assert 0 <= first < second <= summary.sim_time // 1000  # ns readings, in order, before the exit
    assert capsys.readouterr().out == "[simctl] hello from the guest\n"


def test_console_property_selects_a_tcp_backend(arm_guest):
    import socket

    from cosim.chardev import TcpBackend

    board = Virt(firmware=str(arm_guest("hello")), console="tcp:127.0.0.1:0")
    assert isinstance(board.uart.backend, TcpBackend)
    with socket.create_connection(board.uart.backend.address, timeout=3) as client:
        summary = board.run(until=SEC)                     # powers off at once; close() delivers the output
        assert summary.stop and client.recv(100) == b"hello\n"


def test_cosim_run_exits_with_the_guest_status_and_prints_its_results(arm_guest, capsys):
    from cosim.cli import main

    assert main(["run", "virt", "-P", f"firmware={arm_guest('simctl')}", "--console", "none", "--until", "1s"]) == 3
    assert "simctl test results  2 passed, 1 failed (#3: code 0x5)" in capsys.readouterr().err
    # 256 would read as 0 (success) in a shell: it becomes 1.
    assert main(["run", "virt", "-P", f"firmware={arm_guest('exit256')}", "--console", "none"]) == 1


@pytest.mark.parametrize("counting", COUNTINGS)
def test_wfi_with_the_interrupt_masked_then_taken_right_after_unmasking(arm_guest, counting):
    board, _ = boot(arm_guest("masked_wfi"), counting=counting)
    wall = time.perf_counter()
    summary = board.run(until=150 * MS)            # short: a livelock must fail, not stall
    taken, elr, unmasked, wfis = (results(board, i) for i in range(4))
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    assert taken == 100 and wfis == 100                    # one WFI per tick: each wake-up took its interrupt
    assert elr == unmasked                                 # at the instruction after MSR DAIFClr
    assert 100 * MS <= summary.sim_time < 101 * MS and time.perf_counter() - wall < 10


def test_el0_counter_read_traps_until_cntkctl_allows_it(arm_guest):
    board, _ = boot(arm_guest("el0_counter"))
    summary = board.run(until=SEC)
    esr, elr, mrs, counter, traps = (results(board, i) for i in range(5))
    # EC 0x18, IL; ISS: Op0 3, Op2 2, Op1 3, CRn 14, Rt 9, CRm 0, read (D17.2.37).
    iss = (3 << 20) | (2 << 17) | (3 << 14) | (14 << 10) | (9 << 5) | 1
    assert esr == (0x18 << 26) | (1 << 25) | iss and elr == mrs and traps == 1
    assert counter > 0                                      # the retried MRS read the counter
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason


@pytest.mark.parametrize("counting", COUNTINGS)
def test_native_counter_reads_match_the_timer_model(arm_guest, counting, monkeypatch):
    """CNTVCT/CNTPCT at EL1 are answered by the native filter (_counter.py) without calling the model;
    a timer without `counter_ratio` makes the backend call the model for every read. Both must give
    the same values: polling skips, a device access's sync and EL0 reads (always the model's) included."""
    from models.generic_timer import GenericTimer

    def counter_values():
        board, console = boot(arm_guest("counter_reads"), counting=counting)
        summary = board.run(until=SEC)
        assert summary.stop and "SYSTEM_OFF" in summary.stop.reason and console.output == b"a"
        return [results(board, i) for i in range(15)], board.cpu0.instructions

    native = counter_values()
    monkeypatch.delattr(GenericTimer, "counter_ratio")
    assert counter_values() == native
    values = native[0]
    assert values == sorted(values) and values[-1] > values[7]
    steps = [b - a for a, b in zip(values[:8], values[1:8])]
    # A streak: skips of 1, 2, 4, ... 64 us (62.5 counter ticks a microsecond) on top of 4 instructions each.
    assert all(abs(step - 62.5 * 2 ** i) <= 1 for i, step in enumerate(steps)), steps


@pytest.mark.parametrize("counting", COUNTINGS)
def test_pl011_fast_path_behaves_as_the_model(arm_guest, counting):
    """UARTFR reads and UARTDR writes the unicorn backend serves natively (NativeUart) give the guest
    what the model alone gives it: a tracer between the bus and the UART turns the native path off."""
    from cosim.cpu.arm64.unicorn_cpu import UnicornArm64Cpu

    class Forward:                              # what a tracer interposes: every access to the model
        def __init__(self, target):
            self.name, self.accesses = target.name, 0
            self._read, self._write = target.read, target.write

        def read(self, offset, size):
            self.accesses += 1
            return self._read(offset, size)

        def write(self, offset, size, value):
            self.accesses += 1
            self._write(offset, size, value)

    def run(observed):
        board, console = boot(arm_guest("uart_poll"), counting=counting)
        assert isinstance(board.cpu0.backend, UnicornArm64Cpu)
        bus = board.bus("sysbus")
        forward = Forward(board.uart)
        if observed:
            bus.interpose(bus.find(0x0900_0000), forward)
        else:
            board.uart.read = forward.read      # counts the reads that reach the model
        summary = board.run(until=SEC)
        assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
        return console.output, [results(board, i) for i in range(5)], board.cpu0.instructions, forward.accesses

    output, values, instructions, model_reads = run(observed=False)
    assert output == b"polled\n!"
    assert values[0] & 0x90 == 0x90 and values[1] & (1 << 5) and values[2] == 33   # TXFE|RXFE, TXRIS, INTID 33
    assert model_reads == 1                                     # UARTRIS only: the 8 UARTFR reads stayed native
    *observed, accesses = run(observed=True)
    assert observed == [output, values, instructions] and accesses > 2 * len(output)   # the tracer saw them all


@pytest.mark.parametrize("counting", COUNTINGS)
def test_code_patched_in_place_runs_patched_with_static_code(arm_guest, counting):
    """UnicornArm64Cpu.static_code (spares unicorn's TLB scan after translations, used for Linux's image)
    keeps code patching exact: a routine rewritten in place at the same address runs its new version,
    with and without the range covered, with the same instruction count."""
    def run(covered):
        board, _ = boot(arm_guest("code_patch"), counting=counting)
        if covered:
            board.cpu0.backend.static_code(0x4000_0000, 0x43FF_FFFF)    # RAM, where the routine is
        summary = board.run(until=SEC)
        assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
        return results(board, 0), results(board, 1), board.cpu0.instructions

    total, first, instructions = run(covered=True)
    assert (total, first) == (1 + 2 + 3 + 4 + 5, 1)
    assert run(covered=False) == (total, first, instructions)


@pytest.mark.parametrize("counting", COUNTINGS)
def test_el0_traps_have_their_architectural_syndromes(arm_guest, counting):
    """SCTLR_EL1.nTWI and UMA traps (D17.2.37): unicorn reports them as undefined instructions;
    the backend gives each the syndrome hardware would, precisely at the trapping instruction."""
    board, _ = boot(arm_guest("el0_traps"), counting=counting)
    summary = board.run(until=SEC)
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    traps = [(results(board, 2 * i), results(board, 2 * i + 1)) for i in range(3)]
    wfi, daifset, mrs_daif = (results(board, 8 + i) for i in range(3))
    il = 1 << 25
    assert traps == [
        ((0x01 << 26) | il | (1 << 24) | (0xE << 20), wfi),                                  # WFI: CV, COND=AL, TI=0
        ((0x18 << 26) | il | (6 << 17) | (3 << 14) | (4 << 10) | (31 << 5) | (2 << 1), daifset),  # Op0 0, Op2 6, CRm 2
        ((0x18 << 26) | il | (3 << 20) | (1 << 17) | (3 << 14) | (4 << 10) | (7 << 5) | (2 << 1) | 1, mrs_daif),
    ]


@pytest.mark.parametrize("counting", COUNTINGS)
def test_a_vector_that_faults_into_itself_is_an_error_not_a_hang(counting):
    from cosim import SimulationError

    # Empty flash is all UDF: the guest faults at 0 and then at its vector (VBAR_EL1 = 0) forever,
    # with (block counting) no time passing, so the run would never reach `until`.
    board = Virt(firmware="none", console="none", counting=counting)
    with pytest.raises(SimulationError, match=r"exception loop: \d+ exceptions in a row .*pc=0x200, VBAR_EL1=0x0"):
        board.run(until=SEC)
    board.sim.close()


def test_an_error_raised_while_unicorn_runs_ends_the_run_as_a_cpu_error(arm_guest, monkeypatch):
    """Errors found inside unicorn's hooks take the one error channel: CpuError out of run(), with registers."""
    from cosim import SimulationError
    from cosim.cpu import CpuError
    from cosim.cpu.arm64 import psci

    def broken(*args):
        raise CpuError("PSCI firmware model failed")

    monkeypatch.setattr(psci.Psci, "call", broken)
    board, console = boot(arm_guest("hello"))
    with pytest.raises(SimulationError, match=r"cpu0: PSCI firmware model failed\nx0 ="):
        board.run(until=SEC)
    assert console.output == b"hello\n"                   # the guest ran up to its PSCI call
    board.sim.close()


def test_the_unicorn_backend_keeps_the_backend_contract_quantum_by_quantum(arm_guest):
    from cosim.cpu import Stop
    from cosim.testing import run_backend

    board, console = boot(arm_guest("hello"))
    results = [run_backend(board.cpu0.backend, board.sim, 10 * US)]
    while type(results[-1].reason) is not Stop and len(results) < 100:
        results.append(run_backend(board.cpu0.backend, board.sim, 10 * US))
    assert results[-1].reason == Stop(0, "guest called PSCI SYSTEM_OFF") and console.output == b"hello\n"
    board.sim.close()


@pytest.mark.parametrize("counting", COUNTINGS)
@pytest.mark.parametrize("others", [0, WRITE_LOG + 1], ids=["the-write-alone", "more-than-the-log"])
def test_code_written_behind_the_cpu_runs_its_new_version(arm_guest, counting, others):
    """RAM written from outside the CPU (a device's DMA, a debugger, here the test) escapes unicorn's
    store detection: the backend drops the written code's translations before the next pass (all of
    them on the released unicorn, or after more writes than Memory remembers), so the guest runs the
    new code after its IC IVAU / IC IALLU (without that, the routine's first version ran all three times)."""
    board, _ = boot(arm_guest("code_dma"), counting=counting)
    code, flag, movz_x0 = 0x30_0000, RESULTS + 0x100, 0xD280_0000
    board.run(until=MS)
    assert results(board, 0) == 1
    for version in (2, 3):
        for index in range(others):                           # elsewhere: no code there
            board.ram.write(0x38_0000 + 4 * index, 4, index)
        board.ram.write(code, 4, movz_x0 | (version << 5))
        board.ram.write(flag, 4, version - 1)
        board.run(until=version * MS)
    summary = board.run(until=SEC)
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    assert [results(board, i) for i in range(3)] == [1, 2, 3]
