"""SMP on `virt` with the software CPU: PSCI CPU_ON, per-CPU GIC views, SGIs, a spinlock across CPUs."""

import pytest

from cosim import MS, SEC, US, BusError, PlatformError, ns
from cosim.chardev import BufferBackend
from cosim.fdt import from_dtb
from cosim.platforms.virt import VIRT_MAP, Virt

RESULTS = 0x0020_0000
ITER = 20000                        # tests/guests/arm64/smp.S: increments per CPU
GICD, GICC = VIRT_MAP["gic_dist"][0], VIRT_MAP["gic_cpu"][0]
ALREADY_ON = -4 & (1 << 64) - 1


def slot(board, index):
    return board.ram.read(RESULTS + 8 * index, 8)


@pytest.mark.parametrize("cpus", [2, 4])
def test_cpu_on_spinlock_sgi_and_cpu_off(arm_guest, cpu, cpus):
    """On the software CPU (both countings) and, on Arm64 hosts, on KVM (its in-kernel PSCI)."""
    # Unicorn: a short quantum, not a multiple of the lock loop's 10 instructions, so that quanta end at
    # every phase of the loop, inside the critical section too. KVM: the default (a KVM host without the
    # WFx exit follows wall time, which a quantum of a few microseconds would not let the guest keep up with).
    quantum = ns(7003) if cpu["cpu"] == "unicorn" else MS
    board = Virt(firmware=str(arm_guest("smp")), console=BufferBackend(), cpus=cpus, quantum=quantum, **cpu)
    summary = board.run(until=SEC)
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason and summary.status == 0
    assert slot(board, 2) == 0xD0E                                   # every PSCI call as expected
    assert slot(board, 1) == cpus                                    # GICD_TYPER.CPUNumber + 1
    assert slot(board, 0) == cpus * ITER                             # the exact sum: the lock held
    assert slot(board, 3) == ALREADY_ON
    for c in range(cpus):
        assert slot(board, 8 + c) == 0x8000_0000 | c                 # MPIDR_EL1: Aff0 = the index
        assert slot(board, 24 + c) == 0x100 + c                      # x0 = CPU_ON's context_id
    for c in range(1, cpus):
        assert slot(board, 16 + c) == 1                              # SGI 1 from CPU 0, on its own GICC_IAR
    if cpu["cpu"] == "unicorn":
        # Secondaries spun on the lock while another CPU held it across a quantum: it was contended.
        assert max(each.instructions for each in board.cpu_list[1:]) > 10 * ITER + 1000
    board.sim.close()


def test_runs_are_deterministic(arm_guest):
    def run():
        board = Virt(firmware=str(arm_guest("smp")), console=BufferBackend(), cpus=3, quantum=7 * US,
                     counting="instruction")
        summary = board.run(until=SEC)
        counts = [cpu.instructions for cpu in board.cpu_list]
        board.sim.close()
        return summary.sim_time, counts
    assert run() == run()


def test_secondaries_cost_nothing_until_cpu_on(arm_guest):
    board = Virt(firmware=str(arm_guest("hello")), console=BufferBackend(), cpus=4)
    summary = board.run(until=SEC)
    assert summary.status == 0
    assert [cpu.instructions for cpu in board.cpu_list[1:]] == [0, 0, 0]
    assert not any(cpu.exits for cpu in board.cpu_list[1:])
    board.sim.close()


def test_each_cpu_sees_its_own_banked_gic_registers():
    board = Virt(firmware="none", console="none", cpus=3)
    views = [cpu.backend.bus for cpu in board.cpu_list]
    assert views[0] is board.buses["sysbus"]
    views[1].write(GICD + 0x100, 4, 1 << 27)                         # GICD_ISENABLER0 of CPU 1: PPI 27
    assert [v.read(GICD + 0x100, 4) >> 27 & 1 for v in views] == [0, 1, 0]
    # GICD_ITARGETSR0..7 read as the reading CPU's own bit (IHI 0048B 4.3.12).
    assert [v.read(GICD + 0x800, 1) for v in views] == [1, 2, 4]
    views[2].write(GICC + 0x04, 4, 0xF0)                            # GICC_PMR is banked too
    assert [v.read(GICC + 0x04, 4) for v in views] == [0, 0, 0xF0]
    # Shared registers are shared: GICD_CTLR, and RAM behind the views.
    views[2].write(GICD, 4, 1)
    assert views[0].read(GICD, 4) == 1
    # Debug access (gdb) goes through the same view.
    assert views[1].debug_read(GICD + 0x800, 1) == 2
    assert views[1].debug_read_bytes(VIRT_MAP["ram"][0], 4) == board.buses["sysbus"].debug_read_bytes(
        VIRT_MAP["ram"][0], 4)
    board.sim.close()


def test_sgi_target_list_and_filters_between_cpus():
    board = Virt(firmware="none", console="none", cpus=4)
    views = [cpu.backend.bus for cpu in board.cpu_list]
    views[0].write(GICD, 4, 1)
    for v in views:
        v.write(GICC + 0x04, 4, 0xF0)
        v.write(GICC, 4, 1)
    irq = [cpu.backend.lines for cpu in board.cpu_list]

    def taken(c):
        value = views[c].read(GICC + 0x0C, 4)                        # GICC_IAR
        if value != 1023:
            views[c].write(GICC + 0x10, 4, value)                   # GICC_EOIR
        return value

    views[1].write(GICD + 0xF00, 4, 0b1100 << 16 | 5)                # list: CPUs 2 and 3, SGI 5
    assert [line["irq"] for line in irq] == [False, False, True, True]
    assert [taken(c) for c in range(4)] == [1023, 1023, 5 | 1 << 10, 5 | 1 << 10]   # source CPU 1 in [12:10]
    views[2].write(GICD + 0xF00, 4, 1 << 24 | 3)                     # all but me (CPU 2)
    assert [taken(c) for c in range(4)] == [3 | 2 << 10, 3 | 2 << 10, 1023, 3 | 2 << 10]
    views[3].write(GICD + 0xF00, 4, 2 << 24 | 0xF << 16 | 7)          # only me: the list is ignored
    assert [taken(c) for c in range(4)] == [1023, 1023, 1023, 7 | 3 << 10]
    board.sim.close()


def test_device_tree_lists_every_cpu_and_ppi_masks():
    board = Virt(firmware="none", console="none", cpus=4)
    fdt = from_dtb(board.dtb)
    regs = []
    for c in range(4):
        node = fdt.path_offset(f"/cpus/cpu@{c}")
        regs.append(fdt.getprop(node, "reg").as_uint32())
        assert bytes(fdt.getprop(node, "enable-method")) == b"psci\0"
    assert regs == [0, 1, 2, 3]
    timer = list(fdt.getprop(fdt.path_offset("/timer"), "interrupts").as_uint32_list())
    assert timer[2] == 0xF << 8 | 4 and timer[5] == 0xF << 8 | 4    # PPI CPU mask: 4 CPUs, level-high
    board.sim.close()


@pytest.mark.parametrize("cpus", [0, 9, "two"])
def test_cpus_out_of_range_are_refused(cpus):
    with pytest.raises(PlatformError, match="cpus"):
        Virt(firmware="none", console="none", cpus=cpus)
    with pytest.raises(PlatformError, match="cpus"):
        Virt(firmware="none", console="none", cpus=str(cpus))


def test_bus_view_refuses_an_override_where_nothing_is_mapped():
    board = Virt(firmware="none", console="none", cpus=2)
    with pytest.raises(PlatformError, match="maps nothing"):
        board.buses["sysbus"].view("x", {0x0A00_0000: board.gic.distributors[1]})
    with pytest.raises(BusError):
        board.cpu_list[1].backend.bus.read(0x0A00_0000, 4)
    board.sim.close()


def test_a_breakpoint_set_through_cpu0_stops_the_cpu_that_reaches_it(tmp_path):
    """Breakpoints are the shared engine's: gdb sets them once for every thread (CPU)."""
    import subprocess
    from pathlib import Path

    from cosim.toolchain import ToolchainError, assemble, binutils

    try:
        guest = assemble(Path(__file__).parents[2] / "guests" / "arm64" / "smp.S", "aarch64", 0, tmp_path)
        nm = subprocess.run([binutils("aarch64", "nm"), str(guest.elf)], capture_output=True, text=True, check=True)
    except ToolchainError as error:
        pytest.skip(str(error))
    symbols = {name: int(value, 16) for value, _, name in (line.split() for line in nm.stdout.splitlines())}
    board = Virt(firmware=str(guest.bin), console=BufferBackend(), cpus=2, quantum=7 * US)
    board.cpu_list[0].backend.insert_breakpoint(symbols["secondary"])
    summary = board.run(until=SEC)
    assert summary.stop.reason == f"cpu1: breakpoint at {symbols['secondary']:#x}"
    assert board.cpu_list[1].backend.pc == symbols["secondary"]
    assert board.cpu_list[1].backend.read_register("x0") == 0x101      # stopped before its first instruction
    board.sim.close()


@pytest.mark.parametrize("counting", ["block", "instruction"])
def test_cpus_with_their_own_tables_see_their_own_memory(arm_guest, counting):
    """One unicorn engine for both CPUs: what one CPU's translations left in the shared TLB must not
    reach the other when their tables differ (the TLB is kept across a switch only when they are the
    same), however often they take turns."""
    board = Virt(firmware=str(arm_guest("smp_tables")), console=BufferBackend(), cpus=2, quantum=3 * US,
                 counting=counting)
    summary = board.run(until=SEC)
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    read = [board.ram.read(RESULTS + 8 * slot, 8) for slot in range(5)]
    assert read == [0, 0, 1, 2, 1]                  # no mismatch; each CPU's last read was its marker
    assert min(cpu.instructions for cpu in board.cpu_list) > 150_000     # the loops ran, in many turns


def test_two_machines_in_one_simulation_run_side_by_side(arm_guest):
    """Their CPUs share the windows of the one timeline (they once livelocked at time 0)."""
    from cosim import Simulation

    sim = Simulation()
    boards = [Virt(sim=sim, firmware=str(arm_guest("timer_wfi")), console=BufferBackend()) for _ in range(2)]
    summary = sim.run(until=3 * SEC)
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason             # the first to finish ends the run
    assert SEC <= sim.now < SEC + US                                        # 1000 ticks of 1 ms, each
    # One machine's last tick ends the run at 1 s; the other's, due at the same instant, is not taken.
    assert sorted(slot(board, 0) for board in boards) == [999, 1000]
    sim.close()
