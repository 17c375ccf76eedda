"""The KVM Arm64 backend on the virt platform, with a fake KVM layer scripted like a guest.

The fake answers the ioctls the backend makes (capabilities, VCPU_INIT,
ONE_REG, IRQ_LINE, VCPU_EVENTS) and plays a script of KVM_RUN results, so the
quantum loop, the timer levels, the idle planning and the counter moves are
checked on any host. The real thing: tests/cpu/arm64/test_kvm_guests.py.
"""

from __future__ import annotations

import errno

import pytest

from cosim import SEC, SimulationError, us
from cosim.chardev import BufferBackend
from cosim.cpu.arm64 import kvm_cpu
from cosim.kvm import Capabilities, KvmError
from cosim.kvm._arm64 import (CORE_REGS, DEFAULT_WFX_CAP, DEFAULT_WFX_EXIT, PORT_WFX_CAP, PORT_WFX_EXIT,
                              SEED_WFX_CAP, SEED_WFX_EXIT, SYSREGS, Arm64Cap, Arm64Ioctl, DeviceIrq,
                              Feature, TimerReg, ffi)
from cosim.kvm._budget import BudgetChoice
from cosim.kvm._uapi import (KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_STOPPED, KVM_RUN_EXIT_UNION_OFFSET,
                             KVM_RUN_SYNC_REGS_OFFSET, Exit, Ioctl, SystemEvent)
from cosim.platforms.virt import Virt

from ..budget_fakes import ScriptedSource

FREQ = 62_500_000             # the fake host's CNTFRQ_EL0
TICK = SEC // FREQ
UART_DR, UART_FR, UART_CR = 0x0900_0000, 0x0900_0018, 0x0900_0030
GICD, GICC = 0x0800_0000, 0x0801_0000
STOCK = {Arm64Cap.ARM_USER_IRQ: 1, Arm64Cap.ARM_PMU_V3: 1, Arm64Cap.ARM_PSCI_0_2: 1, Arm64Cap.ARM_NISV_TO_USER: 1,
         Arm64Cap.ARM_INJECT_EXT_DABT: 1}


class FakeVcpu:
    def __init__(self, kernel, index=0):
        self.kernel = kernel
        self.index = index
        self.features = 0
        self.mp_state = KVM_MP_STATE_RUNNABLE
        self.kvm_run = ffi.new("struct kvm_run *")
        self.regs = dict.fromkeys([*CORE_REGS.values(), *SYSREGS.values()], 0)
        self.regs |= {TimerReg.TIMER_CNT: 123_456, TimerReg.TIMER_CTL: 0, TimerReg.TIMER_CVAL: 0}
        self.completed = 0
        self.entries = []             # the virtual counter as the guest found it at each KVM_RUN

    def ioctl(self, request, arg=0, what=""):
        self.kernel.calls.append((what.split("(")[0], request))
        if request in (Ioctl.GET_ONE_REG, Ioctl.SET_ONE_REG):
            cell = ffi.cast("unsigned long long *", arg.addr)
            if request == Ioctl.SET_ONE_REG:
                self.regs[arg.id] = int(cell[0])
                self.kernel.writes.append((arg.id, int(cell[0])))
            elif arg.id in self.regs:
                cell[0] = self.regs[arg.id]
                if arg.id == TimerReg.TIMER_CNT:
                    self.regs[arg.id] += self.kernel.drift     # the host's clock runs on while we look away
            else:
                raise KvmError(what, errno.ENOENT)
        elif request == Arm64Ioctl.ARM_VCPU_INIT:
            self.features = self.kernel.features = arg.features[0]
            if self.features & 1 << Feature.POWER_OFF:
                self.mp_state = KVM_MP_STATE_STOPPED
        elif request == Ioctl.GET_MP_STATE:
            arg.mp_state = self.mp_state
        elif request == Arm64Ioctl.SET_VCPU_EVENTS:
            self.kernel.aborts += arg.exception.ext_dabt_pending
        return 0

    def set_signal_mask(self, blocked):
        pass

    def complete_pending(self):
        self.completed += 1

    def run(self):
        self.entries.append(self.regs[TimerReg.TIMER_CNT])
        step = self.kernel.script.pop(0)
        return step(self.kernel, self.kvm_run)


class FakeVm:
    def __init__(self, kernel):
        self.kernel = kernel
        self.slots = []

    def check_extension(self, cap):
        if cap not in self.kernel.offered:
            raise KvmError(f"KVM_CHECK_EXTENSION({cap})", errno.EINVAL)
        return self.kernel.offered[cap]

    def ioctl(self, request, arg=0, what=""):
        self.kernel.calls.append((what.split("(")[0], request))
        if request == Ioctl.ENABLE_CAP:
            self.kernel.enabled.append(arg.cap)
        elif request == Ioctl.IRQ_LINE:
            self.kernel.irq_lines.append((arg.irq, arg.level))
        elif request == Arm64Ioctl.ARM_PREFERRED_TARGET:
            arg.target = 5
        return 0

    def add_memory(self, base, size, host, *, read_only=False):
        self.slots.append((base, size, read_only))

    def create_vcpu(self, index):
        vcpu = FakeVcpu(self.kernel, index)
        self.kernel.vcpus.append(vcpu)
        self.kernel.vcpu = self.kernel.vcpu or vcpu
        return vcpu


class FakeKernel:
    """Stands for /dev/kvm: records what the backend asked, plays `script` for KVM_RUN."""

    def __init__(self, offered, script):
        self.offered = offered
        self.script = list(script)
        self.calls, self.writes, self.enabled, self.irq_lines = [], [], [], []
        self.aborts = 0
        self.drift = 0                # counter ticks the host's clock moves on after each read
        self.features = 0
        self.vcpu = None
        self.vcpus = []
        self.vm = None
        self.source = ScriptedSource()
        self.device = "/dev/kvm"
        self.capabilities = Capabilities({"USER_MEMORY": 1, "READONLY_MEM": 1, "IMMEDIATE_EXIT": 1})

    def __call__(self, device):       # stands in for the Kvm class
        return self

    def create_vm(self):
        self.vm = FakeVm(self)
        return self.vm

    def close(self):
        self.closed = True


# -- script steps: each sets up kvm_run as KVM would and returns what KVM_RUN returned -----------
def executing(instructions, then):
    def step(kernel, run):
        kernel.source.count += instructions
        return then(kernel, run)
    return step


def mmio(address, size, write=False, value=0):
    def step(kernel, run):
        run.exit_reason = Exit.MMIO
        run.mmio.phys_addr, run.mmio.len, run.mmio.is_write = address, size, int(write)
        run.mmio.data[0:8] = list(value.to_bytes(8, "little"))
        return True
    return step


def system_event(kind):
    def step(kernel, run):
        run.exit_reason = Exit.SYSTEM_EVENT
        run.system_event.type = kind
        return True
    return step


def wfx_exit(number):
    """The WFx patch's exit (ESR EC 0x01, WFI) under the exit number `number`."""
    def step(kernel, run):
        run.exit_reason = number
        ffi.cast("unsigned long long *", ffi.cast("char *", run) + KVM_RUN_EXIT_UNION_OFFSET)[0] = 0x0400_0000
        return True
    return step


wfi = wfx_exit(DEFAULT_WFX_EXIT)


def interrupted(levels=None):
    """EINTR: a kick, or (with `levels`) the kernel's timer output changed (KVM_CAP_ARM_USER_IRQ)."""
    def step(kernel, run):
        run.exit_reason = Exit.INTR
        if levels is not None:
            ffi.cast("unsigned long long *", ffi.cast("char *", run) + KVM_RUN_SYNC_REGS_OFFSET)[0] = levels
        return False
    return step


def program_timer(ctl, cval_ticks_ahead):
    """The guest wrote CNTV_CTL/TVAL (no exit on KVM): the fake kernel's registers change."""
    def step(kernel, run):
        regs = kernel.vcpu.regs
        regs[TimerReg.TIMER_CTL] = ctl
        regs[TimerReg.TIMER_CVAL] = regs[TimerReg.TIMER_CNT] + cval_ticks_ahead
        return True
    return step


def chain(*steps):
    """Several effects, the last one's exit."""
    def step(kernel, run):
        result = None
        for s in steps:
            result = s(kernel, run)
        return result
    return step


@pytest.fixture
def fake(monkeypatch, tmp_path):
    """`fake(script, offered=STOCK)`: a virt board with cpu=kvm on the fake kernel, and that kernel."""

    def make(script, offered=STOCK, **props):
        kernel = FakeKernel(offered, script)
        monkeypatch.setattr(kvm_cpu, "kvm_arm64_unavailable", lambda device="/dev/kvm": None)
        monkeypatch.setattr(kvm_cpu, "host_counter_frequency", lambda: FREQ)
        monkeypatch.setattr(kvm_cpu, "Kvm", kernel)
        monkeypatch.setattr(kvm_cpu, "choose_budget_source",
                            lambda preference, ips, signo: BudgetChoice(kernel.source, []))
        firmware = tmp_path / "firmware.bin"
        firmware.write_bytes(b"\0" * 16)
        console = BufferBackend()
        board = Virt(firmware=str(firmware), console=console, cpu="kvm", **props)
        return board, kernel, console

    return make


def test_vcpu_init_boot_state_and_capabilities(fake):
    board, kernel, _ = fake([])
    assert kernel.features == (1 << Feature.PSCI_0_2) | (1 << Feature.PMU_V3)
    assert ("KVM_SET_DEVICE_ATTR", Ioctl.SET_DEVICE_ATTR) in kernel.calls          # PMUv3 INIT
    assert kernel.enabled == [Arm64Cap.ARM_NISV_TO_USER]             # stock kernel: no WFx capability
    assert (CORE_REGS["pc"], 0) in kernel.writes and (CORE_REGS["x0"], 0x4000_0000) in kernel.writes
    assert (CORE_REGS["pstate"], 0x3C5) in kernel.writes                         # EL1h, DAIF masked (booting.rst)
    assert (TimerReg.TIMER_CNT, 0) in kernel.writes                                  # counter 0 at time 0
    assert (0, 0x0800_0000, True) in kernel.vm.slots and (0x4000_0000, board.ram.size, False) in kernel.vm.slots


def test_the_device_tree_lists_the_guest_pmu_and_its_interrupt_reaches_the_gic(fake):
    from cosim.fdt import from_dtb

    board, kernel, _ = fake([mmio(GICD, 4, True, 1), mmio(GICD + 0x100, 4, True, 1 << 23),
                             mmio(GICC + 4, 4, True, 0xF0), mmio(GICC, 4, True, 1),
                             executing(5, interrupted(DeviceIrq.PMU)),   # the guest PMU overflowed
                             system_event(SystemEvent.SHUTDOWN)])
    pmu = from_dtb(board.dtb).path_offset("/pmu")
    assert board.guest_pmu and from_dtb(board.dtb).getprop(pmu, "compatible").as_str() == "arm,armv8-pmuv3"
    assert list(from_dtb(board.dtb).getprop(pmu, "interrupts").as_uint32_list()) == [1, 7, 0x104]   # PPI 23
    board.run(until=SEC)
    assert kernel.irq_lines == [(0, 1)]
    no_pmu, _, _ = fake([], offered={k: v for k, v in STOCK.items() if k != Arm64Cap.ARM_PMU_V3})
    assert not no_pmu.guest_pmu and b"armv8-pmuv3" not in no_pmu.dtb


def test_mmio_to_the_uart_and_psci_off(fake):
    script = [mmio(UART_CR, 4, True, 0x301),            # UARTEN | TXE | RXE
              executing(1000, mmio(UART_DR, 4, True, ord("h"))), executing(10, mmio(UART_DR, 4, True, ord("i"))),
              executing(5, mmio(UART_FR, 4)), executing(5, system_event(SystemEvent.SHUTDOWN))]
    board, kernel, console = fake(script)
    summary = board.run(until=SEC)
    assert console.output == b"hi"
    assert bytes(kernel.vcpu.kvm_run.mmio.data[0:4]) == board.uart.read(0x18, 4).to_bytes(4, "little")
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason and summary.status == 0
    assert board.cpu0.instructions == 1020
    # the run stops at the guest's time (Cpu._finish): all 1020 instructions and the 4 accesses
    assert summary.sim_time == summary.stop.time == 1020 * board.cpu0.backend.period + 4 * board.cpu0.backend.access_latency


def test_unanswered_mmio_injects_an_external_abort(fake):
    def retired(kernel, run):        # the unmapped load at 0x1000 exits; KVM_RUN would retire it (pc + 4)
        kernel.vcpu.regs[CORE_REGS["pc"]] = 0x1004
        return mmio(0x2000_0000, 4)(kernel, run)

    script = [executing(1, retired), executing(1, system_event(SystemEvent.SHUTDOWN))]
    board, kernel, _ = fake(script)
    board.run(until=SEC)
    assert kernel.vcpu.completed == 1                  # the access was retired before the abort was pended
    assert (CORE_REGS["pc"], 0x1000) in kernel.writes  # and the PC put back on it: ELR = the faulting load
    assert kernel.aborts == 1


def test_timer_level_reaches_the_gic_and_the_vcpu_irq_line(fake):
    script = [
        # enable the GIC, PPI 27, priority mask, CPU interface (what timer_wfi.S does)
        executing(10, mmio(GICD, 4, True, 1)), mmio(GICD + 0x100, 4, True, 1 << 27),
        mmio(GICC + 4, 4, True, 0xF0), mmio(GICC, 4, True, 1),
        executing(100, interrupted(DeviceIrq.EL1_VTIMER)),   # the kernel's virtual timer fired
        executing(10, mmio(GICC + 0xC, 4)),                   # GICC_IAR
        interrupted(0),                                       # the guest wrote TVAL: the level drops
        mmio(GICC + 0x10, 4, True, 27),                       # GICC_EOIR
        system_event(SystemEvent.SHUTDOWN),
    ]
    board, kernel, _ = fake(script)
    board.run(until=SEC)
    assert kernel.vcpu.kvm_run.mmio.data[0] == 27             # IAR answered the virtual timer's PPI
    assert kernel.irq_lines == [(0, 1), (0, 0)]               # KVM_IRQ_LINE: type CPU, vCPU 0, IRQ; up then down


def test_idle_exit_plans_the_timer_and_the_counter_follows_the_jump(fake):
    script = [
        executing(10, mmio(GICD, 4, True, 1)), mmio(GICD + 0x100, 4, True, 1 << 27),
        mmio(GICC + 4, 4, True, 0xF0), mmio(GICC, 4, True, 1),
        chain(program_timer(1, 62_500), wfi),                  # 1 ms ahead, then WFI: the idle exit
        executing(1, interrupted(DeviceIrq.EL1_VTIMER)),     # on resuming, the kernel agrees: level high
        system_event(SystemEvent.SHUTDOWN),
    ]
    board, kernel, _ = fake(script)
    summary = board.run(until=SEC)
    # 0 at time 0; the WFI came after 10 instructions and 4 accesses (410 ns) with the counter still at 0
    # (this fake's counter runs only when the script says) and CVAL 1 ms of ticks: due when the
    # simulation's count reaches CVAL
    wake = us(1000)
    entries = kernel.vcpu.entries
    assert entries == sorted(entries) and set(entries) == {0, board.timer.count_at(wake)}
    assert board.timer.count_at(wake) >= 62_500
    assert board.cpu0.idle_skipped >= us(999)
    assert us(1000) <= summary.sim_time < us(1001)
    assert kernel.irq_lines[0] == (0, 1)
    assert board.cpu0.exits["idle"] == 1


def test_a_timer_that_expired_during_the_idle_exit_wakes_the_guest_at_once(fake):
    # Found on a real KVM (issue 10): the WFI exit reports device_irq_level 0 while the virtual timer has
    # already expired (ISTATUS set, count past CVAL). It must fire at once, not leave the guest asleep.
    def expired_then_wfi(kernel, run):
        regs = kernel.vcpu.regs
        regs |= {TimerReg.TIMER_CTL: 0b101, TimerReg.TIMER_CNT: 1_000, TimerReg.TIMER_CVAL: 990}   # ENABLE|ISTATUS
        return wfi(kernel, run)

    script = [mmio(GICD, 4, True, 1), mmio(GICD + 0x100, 4, True, 1 << 27), mmio(GICC + 4, 4, True, 0xF0),
              mmio(GICC, 4, True, 1), expired_then_wfi,
              executing(1, interrupted(DeviceIrq.EL1_VTIMER)),    # resuming, the kernel agrees
              system_event(SystemEvent.SHUTDOWN)]
    board, kernel, _ = fake(script, offered=STOCK | {DEFAULT_WFX_CAP: 1})
    rises = []
    board.timer.cntv.connect(lambda level: rises.append((board.sim.now, level)))
    summary = board.run(until=SEC)
    idle_from = 4 * board.cpu0.backend.access_latency
    assert rises == [(idle_from, True)]                         # at once, not at --until
    assert kernel.irq_lines == [(0, 1)] and summary.sim_time < us(1)
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason


def test_the_physical_timer_is_planned_where_the_kernel_exposes_it(fake):
    def ptimer_then_wfi(kernel, run):
        regs = kernel.vcpu.regs
        regs |= {TimerReg.PTIMER_CTL: 1, TimerReg.PTIMER_CNT: 1_000, TimerReg.PTIMER_CVAL: 1_000 + 6_250}   # 100 us
        return wfi(kernel, run)

    script = [mmio(GICD, 4, True, 1), mmio(GICD + 0x100, 4, True, 1 << 30), mmio(GICC + 4, 4, True, 0xF0),
              mmio(GICC, 4, True, 1), ptimer_then_wfi,
              executing(1, interrupted(DeviceIrq.EL1_PTIMER)),          # resuming, the kernel agrees
              system_event(SystemEvent.SHUTDOWN)]
    board, kernel, _ = fake(script)
    rises = []
    board.timer.cntp.connect(lambda level: rises.append((board.sim.now, level)))
    board.run(until=SEC)
    idle_from = 4 * board.cpu0.backend.access_latency
    assert rises == [(idle_from + board.timer.time_of(6_250), True)]
    assert kernel.irq_lines == [(0, 1)]                      # PPI 30 reached the vCPU through the GIC model


def test_counter_catches_up_with_simulated_time_but_never_goes_back(fake):
    board, kernel, _ = fake([])
    cpu, regs = board.cpu0.backend, kernel.vcpu.regs
    cpu._count = 100                                      # behind: the host ran faster than the model
    cpu._resume_at = us(10)
    assert cpu._sync_counter(us(10)) == 0
    assert regs[TimerReg.TIMER_CNT] == board.timer.count_at(us(10)) == 625
    cpu._count = 10_000                                   # ahead: left where it stopped, whatever time passed
    lead = cpu._sync_counter(us(12))
    assert regs[TimerReg.TIMER_CNT] == 10_000
    assert lead == 10_000 - board.timer.count_at(us(12))


def test_an_idle_jump_absorbs_the_lead_of_the_guests_clock(fake):
    # Found on the seed-wfx kernel in the emulated host: exits cost the guest's clock far more than their
    # access latency, so it led simulated time by 59 ms after 1000 ticks. While it waits in WFI it cannot tell.
    lead = FREQ // 100                                    # 10 ms of ticks ahead
    def ahead_then_wfi(kernel, run):
        regs = kernel.vcpu.regs
        regs |= {TimerReg.TIMER_CNT: lead, TimerReg.TIMER_CTL: 1, TimerReg.TIMER_CVAL: lead + FREQ // 1000}
        return wfi(kernel, run)

    script = [mmio(GICD, 4, True, 1), mmio(GICD + 0x100, 4, True, 1 << 27), mmio(GICC + 4, 4, True, 0xF0),
              mmio(GICC, 4, True, 1), ahead_then_wfi, executing(1, interrupted(DeviceIrq.EL1_VTIMER)),
              system_event(SystemEvent.SHUTDOWN)]
    board, kernel, _ = fake(script, offered=STOCK | {DEFAULT_WFX_CAP: 1})
    summary = board.run(until=SEC)
    assert us(11_000) <= summary.sim_time < us(11_001)    # the timer's 1 ms, after catching up the 10 ms
    assert kernel.vcpu.entries[-2:] == [lead + FREQ // 1000] * 2     # woke exactly at CVAL: the clocks agree
    assert board.cpu0.backend.guest_clock == us(11_000)


def test_the_counter_stands_still_while_cosim_works_outside_kvm_run(fake):
    # Issue 10 finding 2: on a real host the guest's counter ran on while the device models worked, so
    # Linux's `sleep 2` took 1.6 s of simulated time. Inside KVM_RUN it runs; outside it must not.
    script = [running(100, mmio(UART_FR, 4)), running(100, mmio(UART_FR, 4)), running(100, mmio(UART_FR, 4)),
              system_event(SystemEvent.SHUTDOWN)]
    board, kernel, _ = fake(script)
    kernel.drift = 5_000                                  # each look outside finds the host's clock moved on
    board.run(until=SEC)
    assert kernel.vcpu.entries == [0, 100, 200, 300]      # what the guest saw: only its own running time


def test_in_the_fallback_the_quantum_is_shortened_by_the_counters_lead(fake, monkeypatch):
    monkeypatch.setattr(kvm_cpu, "TimerBudget", Guard)
    board, kernel, _ = fake([executing(3, interrupted()), system_event(SystemEvent.SHUTDOWN)], quantum="1 ms")
    board.cpu0.backend._count = board.timer.count_at(us(300))      # the guest's clock ran 300 us ahead
    board.run(until=SEC)
    assert Guard.armed[0] == 700_000                      # ns of wall time: the quantum less the lead


def test_in_the_fallback_a_guest_a_quantum_ahead_waits_for_simulated_time(fake, monkeypatch):
    monkeypatch.setattr(kvm_cpu, "TimerBudget", Guard)
    board, kernel, _ = fake([system_event(SystemEvent.SHUTDOWN)], quantum="1 ms")
    board.cpu0.backend._count = board.timer.count_at(us(2500))     # 2.5 quanta ahead
    summary = board.run(until=SEC)
    assert board.cpu0.exits["budget"] == 2 and summary.sim_time == us(2000)   # then it ran, and stopped
    assert kernel.vcpu.entries == [board.timer.count_at(us(2500))]             # never moved back


def test_early_kick_rearms_and_a_spent_budget_ends_the_quantum(fake):
    board, kernel, _ = fake([executing(10, interrupted()), executing(2_000_000, interrupted()),
                             system_event(SystemEvent.SHUTDOWN)], quantum="1 ms")
    board.run(until=SEC)
    assert kernel.source.rearms == 1
    assert kernel.source.armed[0] == 1_000_000               # 1 ms at 1 GHz
    assert board.cpu0.exits["budget"] == 1


class Guard:
    """Stands for the fallback's wall-clock POSIX timer: records each arming (ns)."""

    armed: list[int] = []

    def __init__(self, ips, signo):
        Guard.armed = self.armed = []

    def arm(self, ns):
        self.armed.append(ns)

    def disarm(self):
        pass

    def close(self):
        pass


def running(ticks, then):
    """The guest ran `ticks` of its counter inside KVM_RUN (idling in a WFI KVM keeps, in the fallback)."""
    def step(kernel, run):
        kernel.vcpu.regs[TimerReg.TIMER_CNT] += ticks
        return then(kernel, run)
    return step


def test_without_the_wfx_exit_the_guests_clock_ends_idle_quanta(fake, monkeypatch):
    monkeypatch.setattr(kvm_cpu, "TimerBudget", Guard)
    ms = FREQ // 1000
    # kicked early (400 us of the guest's clock), an MMIO exit, then kicked when the quantum's 1 ms is run out
    board, kernel, _ = fake([executing(3, running(ms * 4 // 10, interrupted())), running(ms // 10, mmio(UART_FR, 4)),
                             running(ms // 2, interrupted()), system_event(SystemEvent.SHUTDOWN)], quantum="1 ms")
    kernel.drift = 10 * ms                                 # cosim's own time outside KVM_RUN: not the guest's
    assert not board.cpu0.backend.features.wfx_exit and DEFAULT_WFX_CAP not in kernel.enabled
    summary = board.run(until=SEC)
    # armed for the quantum, then for what is left of it on the guest's clock before each entry
    assert Guard.armed[:3] == [1_000_000, 600_000, 500_000]
    assert board.cpu0.exits["budget"] == 1 and summary.sim_time == us(1000)   # idle time counted as the guest's


def test_patched_kernel_enables_the_wfx_exit(fake):
    board, kernel, _ = fake([], offered=STOCK | {DEFAULT_WFX_CAP: 1})
    assert board.cpu0.backend.inject_abort
    assert DEFAULT_WFX_CAP in kernel.enabled and board.cpu0.backend.guard is None
    assert "idle exit on WFI/WFE" in board.cpu0.backend.description


@pytest.mark.parametrize("numbers", [(PORT_WFX_CAP, PORT_WFX_EXIT), (SEED_WFX_CAP, SEED_WFX_EXIT)],
                         ids=["port-224:38", "seed-222:35"])
def test_both_numberings_give_the_idle_exit(fake, numbers):
    cap, exit = numbers
    board, kernel, _ = fake([executing(5, wfx_exit(exit)), system_event(SystemEvent.SHUTDOWN)],
                            offered=STOCK | {cap: 1}, kvm_wfx=f"{cap}:{exit}")
    assert cap in kernel.enabled and board.cpu0.backend.wfx_exit == exit
    board.run(until=SEC)
    assert board.cpu0.exits["idle"] == 1


def test_kvm_wfx_off_and_renumbered(fake):
    board, kernel, _ = fake([], offered=STOCK | {DEFAULT_WFX_CAP: 1}, kvm_wfx="off")
    assert DEFAULT_WFX_CAP not in kernel.enabled and not board.cpu0.backend.features.wfx_exit
    board, kernel, _ = fake([], offered=STOCK | {230: 1}, kvm_wfx="230:50")
    assert 230 in kernel.enabled and board.cpu0.backend.wfx_exit == 50


def test_fatal_exit_reports_registers(fake):
    def fail(kernel, run):
        run.exit_reason = Exit.FAIL_ENTRY
        run.fail_entry.hardware_entry_failure_reason = 0x3
        return True

    board, kernel, _ = fake([fail])
    with pytest.raises(SimulationError, match=r"VM entry failed.*\n(.|\n)*elr_el1="):
        board.run(until=SEC)


def test_registers_by_name(fake):
    board, kernel, _ = fake([])
    cpu = board.cpu0.backend
    cpu.write_register("x5", 0x1234)
    assert kernel.vcpu.regs[CORE_REGS["x5"]] == 0x1234 and cpu.read_register("x5") == 0x1234
    kernel.vcpu.regs[CORE_REGS["pstate"]] = 0x3C5              # EL1h: SP is SP_EL1
    cpu.write_register("sp", 0x4010_0000)
    assert kernel.vcpu.regs[CORE_REGS["sp_el1"]] == 0x4010_0000
    with pytest.raises(KeyError, match="no register 'x31'"):
        cpu.read_register("x31")


def test_irq_line_is_issued_only_on_changes(fake):
    board, kernel, _ = fake([])
    cpu = board.cpu0.backend
    cpu.set_irq("irq", True)
    cpu.set_irq("irq", True)
    cpu.set_irq("fiq", True)
    assert kernel.irq_lines == [(0, 1), (1, 1)] and cpu.interrupt_pending()
    with pytest.raises(ValueError, match="'irq' and 'fiq'"):
        cpu.set_irq("nmi", True)


def test_missing_user_irq_is_a_clear_error(fake):
    with pytest.raises(KvmError, match="KVM_CAP_ARM_USER_IRQ"):
        fake([], offered={k: v for k, v in STOCK.items() if k != Arm64Cap.ARM_USER_IRQ})


def test_an_access_that_raises_an_interrupt_ends_the_run_early(fake):
    # the guest sets SPI 1 pending in the GIC: the IRQ reaches the vCPU, and the loop re-plans at once
    board, kernel, _ = fake([mmio(GICD, 4, True, 1), mmio(GICD + 0x104, 4, True, 1 << 1),
                             mmio(GICD + 0x820, 4, True, 0x0100),                      # ITARGETSR: INTID 33 -> CPU 0
                             mmio(GICC + 4, 4, True, 0xF0), mmio(GICC, 4, True, 1),
                             executing(7, mmio(GICD + 0x204, 4, True, 1 << 1)),       # GICD_ISPENDR1
                             executing(1, system_event(SystemEvent.SHUTDOWN))])
    board.run(until=SEC)
    assert dict(board.cpu0.exits) == {"io": 1, "stop": 1}
    assert kernel.irq_lines == [(0, 1)]
    assert board.cpu0.instructions == 8


def power(index, state):
    """KVM's in-kernel PSCI changed vCPU `index`'s power state (CPU_ON or CPU_OFF, no exit of its own)."""
    def step(kernel, run):
        kernel.vcpus[index].mp_state = state
        return False
    return step


def test_smp_vcpus_of_one_vm_follow_kvms_psci(fake):
    """cpus=2: one VM, vCPU 1 created powered off; KVM's CPU_ON and CPU_OFF are seen in MP_STATE."""
    script = [chain(power(1, KVM_MP_STATE_RUNNABLE), executing(2_000_000, interrupted())),   # CPU 0: CPU_ON 1
              chain(power(1, KVM_MP_STATE_STOPPED), executing(50, interrupted())),          # CPU 1: CPU_OFF
              system_event(SystemEvent.SHUTDOWN)]                                          # CPU 0 again
    board, kernel, _ = fake(script, cpus=2)
    assert [v.index for v in kernel.vcpus] == [0, 1] and len(kernel.vm.slots) == 2    # memory mapped once
    assert not kernel.vcpus[0].features & 1 << Feature.POWER_OFF
    assert kernel.vcpus[1].features & 1 << Feature.POWER_OFF
    assert not board.cpu_list[1].online
    summary = board.run(until=SEC)
    assert summary.stop and "SYSTEM_OFF" in summary.stop.reason
    assert sum(board.cpu_list[1].exits.values()) == 1 and not board.cpu_list[1].online     # ran once, then off
    assert board.cpu_list[1].backend.stopped and not board.cpu_list[0].backend.stopped
