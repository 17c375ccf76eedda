"""The KVM-backed Arm64 CPU: guest code runs under /dev/kvm on an Arm64 host, this backend owns the rest.

- **vCPU.** KVM_ARM_PREFERRED_TARGET + KVM_ARM_VCPU_INIT with PSCI 0.2 (PSCI
  calls are served by KVM; SYSTEM_OFF/RESET come back as system events) and
  PMUv3 where the host offers it. Registers go through KVM_GET/SET_ONE_REG.
  Boot state per Documentation/arch/arm64/booting.rst: EL1h, DAIF masked, MMU
  and caches off (what VCPU_INIT gives), PC at the entry, x0 = the DTB.
- **Memory.** RAM and flash are memory slots (flash read-only where the host
  has KVM_CAP_READONLY_MEM); every other access exits as MMIO to the bus. Where
  nothing is mapped, the guest takes a synchronous external abort
  (KVM_CAP_ARM_INJECT_EXT_DABT); an access a model refuses reads as zero and
  writes are dropped: both as on the unicorn backend (docs/concepts.md).
- **Interrupts.** No in-kernel vGIC: the GICv2 model drives the vCPU's IRQ/FIQ
  inputs with KVM_IRQ_LINE (type CPU). The generic timer is the kernel's; its
  output levels come back in kvm_run (KVM_CAP_ARM_USER_IRQ) and drive the
  `KvmGenericTimer` device, wired to the GIC's PPIs like the software timer.
- **Time.** A quantum is a budget of instructions (budget / CPU period),
  ended by a budget source (`cosim.kvm._budget`: the PMU counting guest
  instructions, else a CPU-time estimate). Simulated time = instructions x
  period + `access_latency` per MMIO access. The guest's virtual counter runs
  at the host's pace inside KVM_RUN only: it is read at each exit and written
  back before the guest runs again, so the time cosim spends outside (device
  models, Python) never reaches the guest's clock; at the start of each quantum
  it is brought up to simulated time (never backwards), idle jumps included.
- **Idle.** With the seed's KVM_CAP_EXIT_ON_WFX, a WFI/WFE that would block
  exits to us: the in-kernel timer's next expiry is scheduled in the
  simulation and time jumps to the next event. Without it (stock kernels) a
  blocked guest is woken by a wall-clock kick after the quantum's length:
  simulated time then follows wall time while the guest idles
  (docs/cpu-kvm-arm64.md).
"""

from __future__ import annotations

import errno as _errno
import logging
import platform
import time
from collections.abc import Callable, Iterable

from ..._bus import Bus, BusError
from ..._errors import PlatformError
from ..._time import GHz, NS, Frequency
from ...kvm import kvm_unavailable
from ...kvm._access import GuestAccesses
from ...kvm._arm64 import (CORE_REGS, DEFAULT_WFX_CAP, DEFAULT_WFX_EXIT, KVM_ARM_VCPU_PMU_V3_CTRL,
                           KVM_ARM_VCPU_PMU_V3_INIT, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW,
                           SYSREGS, Arm64Cap, Arm64Features, Arm64Ioctl, CpuIrq, Feature, IrqType, TimerReg,
                           device_irq_level, ffi, irq_line, probe_arm64)
from ...kvm._cpu import KvmCpuBase, MemoryRegion, block_kick, map_memory
from ...kvm._budget import KICK_SIGNAL, BudgetChoice, TimerBudget, choose_budget_source
from ...kvm._system import DEFAULT_DEVICE, Kvm, KvmError, Vcpu, Vm, scratch_vm
from ...kvm._uapi import KVM_MP_STATE_STOPPED, Ioctl
from .._backend import BUDGET_SPENT, DEVICE_ACCESS, Breakpoint, CpuError, CpuExit, Idle, QuantumKeeper
from .._debug import DebugSlots, DebugStop, StopKind, WatchKind
from .kvm_exits import Debug, ExternalAbort, Mmio, debug_stop, decode, handle_exit
from .kvm_timer import Comparator, KvmGenericTimer, host_counter_frequency
from .mmu import Fault, TranslationRegs, walk

__all__ = ["KvmArm64Cpu", "MemoryRegion", "kvm_arm64_unavailable", "guest_rate"]

log = logging.getLogger("cosim.cpu.arm64")

_MASK64 = (1 << 64) - 1
# Documentation/arch/arm64/booting.rst, "Call the kernel image": EL1h with D, A, I, F masked
# (what KVM_ARM_VCPU_INIT also gives), x1-x3 zero; x0 (the DTB) and the PC come from the platform.
BOOT_STATE = {"pstate": 0x3C5, "x1": 0, "x2": 0, "x3": 0}
# SMP: wall time after which a vCPU inside KVM_RUN is kicked, in case PSCI CPU_OFF put it to sleep there.
WAKE_NS = 50_000_000


def kvm_arm64_unavailable(device: str = DEFAULT_DEVICE) -> str | None:
    """Why the KVM Arm64 CPU cannot run here (one line), or None when it can."""
    machine = platform.machine()
    if machine != "aarch64" or platform.system() != "Linux":
        return (f"the KVM Arm64 CPU needs an Arm64 Linux host with /dev/kvm; this host is "
                f"{platform.system()} {machine}: use the software CPU (--cpu unicorn)")
    return kvm_unavailable(device)


def _one_reg(vcpu: Vcpu, reg_id: int, value: int | None = None, what: str = "") -> int:
    """KVM_GET_ONE_REG (value None) or KVM_SET_ONE_REG of one 64-bit register."""
    cell = ffi.new("unsigned long long *", 0 if value is None else value & _MASK64)
    # Safe: `cell` lives until the ioctl returns and holds the 8 bytes a U64 register id names.
    reg = ffi.new("struct kvm_one_reg *", {"id": reg_id, "addr": int(ffi.cast("unsigned long", cell))})
    if value is None:
        vcpu.ioctl(Ioctl.GET_ONE_REG, reg, what=f"KVM_GET_ONE_REG({what or hex(reg_id)})")
        return int(cell[0])
    vcpu.ioctl(Ioctl.SET_ONE_REG, reg, what=f"KVM_SET_ONE_REG({what or hex(reg_id)})")
    return value


def _enable_cap(vm: Vm, cap: int, what: str) -> None:
    enable = ffi.new("struct kvm_enable_cap *", {"cap": cap})
    vm.ioctl(Ioctl.ENABLE_CAP, enable, what=f"KVM_ENABLE_CAP({what})")


def _init_vcpu(vm: Vm, vcpu: Vcpu, features: Arm64Features, want_pmu: bool, logger: logging.Logger,
               power_off: bool = False) -> bool:
    """KVM_ARM_PREFERRED_TARGET + KVM_ARM_VCPU_INIT (`power_off`: the vCPU waits for PSCI CPU_ON);
    True when the guest got a PMUv3."""
    init = ffi.new("struct kvm_vcpu_init *")
    vm.ioctl(Arm64Ioctl.ARM_PREFERRED_TARGET, init, what="KVM_ARM_PREFERRED_TARGET")
    if not features.psci_0_2:
        raise KvmError("this host's KVM lacks KVM_CAP_ARM_PSCI_0_2 (the virt device tree promises PSCI 0.2); "
                       "probing", _errno.ENOTSUP)
    init.features[0] |= 1 << Feature.PSCI_0_2
    if power_off:
        init.features[0] |= 1 << Feature.POWER_OFF
    pmu = want_pmu and features.pmu_v3
    if pmu:
        init.features[0] |= 1 << Feature.PMU_V3
    vcpu.ioctl(Arm64Ioctl.ARM_VCPU_INIT, init, what=f"KVM_ARM_VCPU_INIT(target {init.target})")
    if pmu:
        # With the interrupt controller in userspace the PMU needs no IRQ number, only INIT (api.rst, devices/vcpu.rst).
        attr = ffi.new("struct kvm_device_attr *", {"group": KVM_ARM_VCPU_PMU_V3_CTRL, "attr": KVM_ARM_VCPU_PMU_V3_INIT})
        try:
            vcpu.ioctl(Ioctl.SET_DEVICE_ATTR, attr, what="KVM_SET_DEVICE_ATTR(PMUv3 INIT)")
        except KvmError as error:
            logger.warning("cosim: the guest PMU could not be initialised (%s); the guest runs without one", error)
            pmu = False
    return pmu


class KvmArm64Cpu(KvmCpuBase):
    """Arm64 CPU on KVM behind the CpuBackend interface.

    `bus`: the system bus (MMIO exits); `memory`: regions mapped as memory
    slots; `timer`: the `KvmGenericTimer` whose outputs follow the kernel's
    timer. `frequency`: instructions per simulated second; `ips`: instructions
    per host CPU second for time-based budget sources (default: measured);
    `budget`: "auto", "pmu", "task-clock" or "posix-timer"; `wfx_cap` /
    `wfx_exit`: the numbers of the seed patch's capability and exit (not
    upstream); `use_wfx`: False ignores that capability; `guest_pmu`: give the
    guest a PMUv3 where the host can; `entry`, `registers`: the boot state.
    """

    name = "kvm-arm64"

    def __init__(self, *, bus: Bus, memory: Iterable[MemoryRegion], timer: KvmGenericTimer,
                 frequency: Frequency = GHz(1), ips: float | None = None, budget: str = "auto",
                 access_latency: int = 100 * NS, wfx_cap: int = DEFAULT_WFX_CAP, wfx_exit: int = DEFAULT_WFX_EXIT,
                 use_wfx: bool = True, guest_pmu: bool = True, entry: int = 0, registers: dict[str, int] | None = None,
                 device: str = DEFAULT_DEVICE, kick_signal: int = KICK_SIGNAL, logger: logging.Logger = log,
                 share: "KvmArm64Cpu | None" = None, index: int = 0,
                 power: Callable[[int, bool], None] | None = None) -> None:
        reason = kvm_arm64_unavailable(device)
        if reason:
            raise PlatformError(reason)
        if access_latency < 0:
            raise PlatformError(f"access latency must not be negative, not {access_latency} ps")
        self.bus = bus
        self.timer = timer
        self.period = frequency.period
        self._stepping = False
        self._breakpoints = self._watchpoints = DebugSlots(0, "")     # sized from the host's KVM in _setup
        self.frequency = frequency
        self.access_latency = access_latency
        self.wfx_exit = wfx_exit
        self.kick_signal = kick_signal
        self.accesses = GuestAccesses(logger, all_ones=False)     # Arm: failed reads are RAZ
        self.log = logger
        self.lines = {"irq": False, "fiq": False}
        self._levels: int | None = None     # device_irq_level last applied; None: reconcile on the next exit
        self._resume_at = 0                 # simulated time the guest stopped at (the counter is 0 at time 0)
        # The guest's virtual counter when it last stopped. One per VM: writing KVM_REG_ARM_TIMER_CNT
        # sets the offset of every vCPU of the VM (arch_timer.c, update_vtimer_cntvoff), so the vCPUs
        # of an SMP machine share it and the guest's clock never goes back from one vCPU to the next.
        self._counter_cell: list[int] = share._counter_cell if share is not None else [0]
        self._pending = False               # an MMIO read completes on the next KVM_RUN
        self._aborted: set[int] = set()
        self._ips_measured = False
        self._ptimer = True                 # the kernel exposes the physical timer's registers (until it says no)
        self.guard: TimerBudget | None = None
        # SMP (several vCPUs of one VM, `share` = the first): KVM serves PSCI, so CPU_ON and CPU_OFF are
        # seen in the vCPUs' MP_STATE; `power(index, on)` tells the platform. A vCPU that calls CPU_OFF
        # sleeps inside KVM_RUN until a signal: `_wake` kicks every SMP run after WAKE_NS of wall time.
        self.index = index
        self._power = power
        self._group: list[KvmArm64Cpu] = share._group if share is not None else []
        self._group.append(self)
        self.stopped = share is not None            # secondaries start powered off (KVM_ARM_VCPU_POWER_OFF)
        self._wake: TimerBudget | None = None
        timer.frequency_hz = host_counter_frequency()
        self.kvm = share.kvm if share is not None else Kvm(device)
        try:
            self._setup(memory, wfx_cap, use_wfx, guest_pmu, share)
            if power is not None:
                self._wake = TimerBudget(1e9, kick_signal)
            self._ips = ips if ips is not None or share is None else share._ips
            self.budget_choice: BudgetChoice = choose_budget_source(budget, ips=self._guest_ips, signo=kick_signal)
            self.source = self.budget_choice.source
            if not self.features.wfx_exit:
                # Fallback of the seed thread: a blocked WFI retires no instructions, so only wall time
                # (the guest's counter inside KVM_RUN) can end the quantum. One "instruction" of this timer
                # is one nanosecond.
                self.guard = TimerBudget(1e9, kick_signal)
            for name, value in (BOOT_STATE | {"pc": entry} | (registers or {})).items():
                self.write_register(name, value)
            _one_reg(self.vcpu, TimerReg.TIMER_CNT, 0, "virtual counter")   # counter 0 at simulated time 0
        except BaseException:
            self.close()
            raise
        self.description = self._describe()

    def _setup(self, memory: Iterable[MemoryRegion], wfx_cap: int, use_wfx: bool, guest_pmu: bool,
               share: "KvmArm64Cpu | None") -> None:
        kvm = self.kvm
        if share is not None:                       # another vCPU of the first one's VM: memory is mapped
            self.vm = vm = share.vm
            self.features = share.features
        else:
            self.vm = vm = kvm.create_vm()
            self.features = probe_arm64(vm.check_extension, lambda cap: _enable_cap(vm, cap, f"{cap}: WFx exit"),
                                        wfx_cap=wfx_cap, use_wfx=use_wfx)
            if self.features.nisv_to_user:
                _enable_cap(vm, Arm64Cap.ARM_NISV_TO_USER, "ARM_NISV_TO_USER")
            map_memory(kvm, vm, memory, self.log)
        self.vcpu = vcpu = vm.create_vcpu(self.index)
        self.guest_pmu = _init_vcpu(vm, vcpu, self.features, guest_pmu, self.log, power_off=share is not None)
        # Aborting an access needs it retired first, with immediate_exit (see _inject_abort).
        self.inject_abort = self.features.ext_dabt and kvm.capabilities.has("IMMEDIATE_EXIT")
        self.kvm_run = vcpu.kvm_run
        self._irq = ffi.new("struct kvm_irq_level *")
        self._events = ffi.new("struct kvm_vcpu_events *")
        block_kick(vcpu, self.kick_signal)
        # How many hardware breakpoints and watchpoints KVM_SET_GUEST_DEBUG may use (0: no guest debug).
        self._breakpoints = DebugSlots(_extension(vm, Arm64Cap.GUEST_DEBUG_HW_BPS), "hardware breakpoints")
        self._watchpoints = DebugSlots(_extension(vm, Arm64Cap.GUEST_DEBUG_HW_WPS), "hardware watchpoints")

    def _guest_ips(self) -> float:
        if self._ips is None:
            self._ips = guest_rate(self.kvm.device)
            self._ips_measured = True
        return self._ips

    def _describe(self) -> str:
        rate = ""
        if not self.budget_choice.source.exact and self._ips is not None:
            how = "measured" if self._ips_measured else "configured"
            rate = f"; {self._ips / 1e6:.3g}M instructions/s ({how})"
        pmu = "guest PMUv3" if self.guest_pmu else "no guest PMU"
        return (f"KVM Arm64 at {self.frequency}, budget: {self.budget_choice.describe()}{rate}; "
                f"{self.features.describe()}; {pmu}; counter {self.timer.frequency_hz / 1e6:.4g} MHz")

    # -- registers -------------------------------------------------------------
    def _reg_id(self, name: str) -> int:
        reg = CORE_REGS.get(name) or SYSREGS.get(name)
        if reg is None:
            known = ", ".join([*CORE_REGS, "sp", *SYSREGS])
            raise KeyError(f"{self.name}: no register {name!r} (known: {known})")
        return reg

    def _complete(self) -> None:
        """Registers are current only once a pending MMIO read has been completed (api.rst, KVM_RUN)."""
        if self._pending:
            self.vcpu.complete_pending()
            self._pending = False

    def _sp_name(self) -> str:
        pstate = _one_reg(self.vcpu, CORE_REGS["pstate"], what="pstate")
        # SP is SP_EL0 at EL0 or with PSTATE.SP (bit 0) clear, else SP_EL1 (Arm ARM D1.6.2).
        return "sp_el1" if pstate & 1 and (pstate >> 2) & 3 else "sp_el0"

    def read_register(self, name: str) -> int:
        self._complete()
        if name == "sp":
            name = self._sp_name()
        return _one_reg(self.vcpu, self._reg_id(name), what=name)

    def write_register(self, name: str, value: int) -> None:
        self._complete()
        if name == "sp":
            name = self._sp_name()
        _one_reg(self.vcpu, self._reg_id(name), value, name)

    @property
    def pc(self) -> int:
        return self.read_register("pc")

    def register_dump(self) -> str:
        try:
            regs = [f"x{i:<2}={self.read_register(f'x{i}'):016x}" for i in range(31)]
            rows = ["  ".join(regs[i:i + 4]) for i in range(0, 31, 4)]
            rows.append(f"sp_el0={self.read_register('sp_el0'):016x}  sp_el1={self.read_register('sp_el1'):016x}  "
                        f"pc={self.pc:016x}  pstate={self.read_register('pstate'):08x}")
            rows.append(f"elr_el1={self.read_register('elr_el1'):016x}  esr_el1={self.read_register('esr_el1'):08x}  "
                        f"far_el1={self.read_register('far_el1'):016x}  vbar_el1={self.read_register('vbar_el1'):016x}")
            return "\n".join(rows)
        except KvmError as error:
            return f"(registers unavailable: {error})"

    # -- debugging (cosim.gdb) ---------------------------------------------------
    def translate(self, va: int) -> int | None:
        """The physical address of `va` by the guest's stage-1 tables (the walk of mmu.py, on RAM via the bus)."""
        regs = TranslationRegs(*(self.read_register(name) for name in ("sctlr_el1", "tcr_el1", "ttbr0_el1",
                                                                       "ttbr1_el1")))
        result = walk(va, regs, self._read_phys64, el0=False)
        return None if isinstance(result, Fault) else result.address

    def _read_phys64(self, address: int) -> int:
        try:
            return self.bus.read(address, 8)
        except BusError:
            return 0                      # a table outside RAM reads as invalid descriptors

    def insert_hw_breakpoint(self, address: int) -> None:
        if self._breakpoints.add(address):
            self._set_guest_debug()

    def remove_hw_breakpoint(self, address: int) -> None:
        if self._breakpoints.remove(address):
            self._set_guest_debug()

    # Software breakpoints take a hardware one: patching BRK would need the page's physical address,
    # and KVM's hardware breakpoints are enough for gdb's few.
    insert_breakpoint = insert_hw_breakpoint
    remove_breakpoint = remove_hw_breakpoint

    def insert_watchpoint(self, kind: WatchKind, address: int, length: int) -> None:
        if not 0 < length <= 8 - (address & 7):
            raise PlatformError(f"an Arm64 watchpoint covers bytes of one aligned doubleword, not {length} at "
                                f"{address:#x}")
        if self._watchpoints.add((kind, address, length)):
            self._set_guest_debug()

    def remove_watchpoint(self, kind: WatchKind, address: int, length: int) -> None:
        if self._watchpoints.remove((kind, address, length)):
            self._set_guest_debug()

    def single_step(self, on: bool) -> None:
        if on != self._stepping:
            self._stepping = on
            self._set_guest_debug()

    def _set_guest_debug(self) -> None:
        """DBGBVR/DBGBCR and DBGWVR/DBGWCR pairs (Arm ARM D2.8, D2.9) for KVM_SET_GUEST_DEBUG."""
        debug = ffi.new("struct kvm_guest_debug *")
        hardware = self._breakpoints.items or self._watchpoints.items
        control = (KVM_GUESTDBG_USE_HW if hardware else 0) | (KVM_GUESTDBG_SINGLESTEP if self._stepping else 0)
        if control:
            debug.control = KVM_GUESTDBG_ENABLE | control
        for index, address in enumerate(self._breakpoints.items):
            # E, PMC = EL1 and EL0, BAS = the whole A64 instruction
            debug.arch.dbg_bvr[index], debug.arch.dbg_bcr[index] = address & ~3, 1 | 3 << 1 | 0xF << 5
        for index, (kind, address, length) in enumerate(self._watchpoints.items):
            # E, PAC = EL1 and EL0, LSC = load/store/both, BAS = the watched bytes of the doubleword
            lsc = {WatchKind.READ: 1, WatchKind.WRITE: 2, WatchKind.ACCESS: 3}[kind]
            bas = ((1 << length) - 1) << (address & 7)
            debug.arch.dbg_wvr[index], debug.arch.dbg_wcr[index] = address & ~7, 1 | 3 << 1 | lsc << 3 | bas << 5
        self.vcpu.ioctl(Arm64Ioctl.SET_GUEST_DEBUG, debug, what="KVM_SET_GUEST_DEBUG")

    def _debug_breakpoint(self, exit: Debug) -> Breakpoint:
        """The Breakpoint exit of a debug exit, at the PC; a watchpoint names its kind (the exit gives
        only the data address)."""
        stop = debug_stop(exit)
        if stop.kind is StopKind.WATCH:
            kinds = [kind for kind, address, _ in self._watchpoints.items
                     if stop.address is not None and address & ~7 <= stop.address < (address & ~7) + 8]
            stop = DebugStop(StopKind.WATCH, stop.address, kinds[0] if kinds else WatchKind.ACCESS)
        return Breakpoint(self.pc, stop)

    # -- interrupts -------------------------------------------------------------
    def set_irq(self, line: str, level: bool) -> None:
        if line not in self.lines:
            raise ValueError(f"Arm CPU interrupt inputs are 'irq' and 'fiq', not {line!r}")
        if self.lines[line] == level:
            return
        self.lines[line] = level
        self._irq.irq = irq_line(IrqType.CPU, self.vcpu.index, CpuIrq.IRQ if line == "irq" else CpuIrq.FIQ)
        self._irq.level = int(level)
        self.vm.ioctl(Ioctl.IRQ_LINE, self._irq, what=f"KVM_IRQ_LINE({line}={int(level)})")

    def interrupt_pending(self) -> bool:
        # WFI wakes on a pending interrupt even when PSTATE masks it (Arm ARM D1.16.2).
        return self.lines["irq"] or self.lines["fiq"]

    def _inject_abort(self, abort: ExternalAbort) -> None:
        """The access that exited hit nothing: the guest takes a synchronous external abort at its address.

        The access is retired first (KVM_RUN with immediate_exit) and the PC put
        back on it: kernels before the fix "Don't retire aborted MMIO
        instruction" (Linux 6.12) would otherwise retire it after the abort was
        pended and skip the handler's first instruction. The ESR and FAR KVM
        builds come from the exit (api.rst, KVM_SET_VCPU_EVENTS, arm64).
        """
        if abort.address not in self._aborted:
            self._aborted.add(abort.address)
            self.log.warning("guest %s at %#x failed (%s): synchronous external abort taken by the guest "
                             "(reported once per address)", "write" if abort.write else "read", abort.address,
                             abort.error)
        self._pending = True
        self._complete()
        self.write_register("pc", self.read_register("pc") - 4)     # A64 instructions are 4 bytes
        ffi.memmove(self._events, bytes(ffi.sizeof("struct kvm_vcpu_events")), ffi.sizeof("struct kvm_vcpu_events"))
        self._events.exception.ext_dabt_pending = 1
        self.vcpu.ioctl(Arm64Ioctl.SET_VCPU_EVENTS, self._events, what="KVM_SET_VCPU_EVENTS(external data abort)")

    # -- the counter and the in-kernel timer --------------------------------------
    def _sync_counter(self, start: int) -> int:
        """Before a quantum starting at simulated time `start`: set the guest's virtual counter; returns its
        lead over simulated time, in counter ticks.

        The counter stood still since the guest stopped (`_stop_counter`). Inside
        KVM_RUN it runs at the host's pace while simulated time follows the
        instructions retired, so the two drift apart. The guest only ever sees it
        go forward: behind simulated time, it is brought up to it; ahead, it is
        left where it stopped. An idle jump so absorbs a lead (the guest cannot
        tell while it waits in WFI): it wakes with its clock and the simulation's
        agreeing again, which `KvmGenericTimer.plan` counts on (`aligned`).
        """
        timer = self.timer
        target = max(timer.count_at(start), self._count)
        self._restart_counter(target)
        return target - timer.count_at(start)

    @property
    def _count(self) -> int:
        return self._counter_cell[0]

    @_count.setter
    def _count(self, value: int) -> None:
        self._counter_cell[0] = value

    @property
    def guest_clock(self) -> int:
        """The simulated time the guest's virtual counter read when it last stopped (counter 0 at time 0)."""
        return self.timer.time_of(self._count)

    def _stop_counter(self) -> None:
        """The guest left KVM_RUN: note its counter, which must not run on while cosim works outside."""
        self._count = _one_reg(self.vcpu, TimerReg.TIMER_CNT, what="virtual counter")

    def _restart_counter(self, count: int) -> None:
        self._count = count
        _one_reg(self.vcpu, TimerReg.TIMER_CNT, count, "virtual counter")

    def comparators(self) -> list[Comparator]:
        """The kernel's timers as ONE_REG reports them (the physical one where the kernel exposes it)."""
        vcpu = self.vcpu
        found = [Comparator("cntv", _one_reg(vcpu, TimerReg.TIMER_CTL), _one_reg(vcpu, TimerReg.TIMER_CVAL),
                            self._count, aligned=True)]   # where it stopped; it resumes as _sync_counter says
        if self._ptimer:
            try:
                found.append(Comparator("cntp", _one_reg(vcpu, TimerReg.PTIMER_CTL),
                                        _one_reg(vcpu, TimerReg.PTIMER_CVAL), _one_reg(vcpu, TimerReg.PTIMER_CNT)))
            except KvmError:
                self._ptimer = False      # kernels before the physical timer's ONE_REG ids
        return found

    def _apply_levels(self, keeper: QuantumKeeper, elapsed: int) -> bool:
        """Drive the timer outputs from kvm_run; True when they changed (the GIC may have moved an IRQ)."""
        levels = device_irq_level(self.kvm_run)
        if levels == self._levels:
            return False
        keeper.sync(elapsed)
        self._levels = levels
        self.timer.levels(levels)
        return True

    # -- running -----------------------------------------------------------------
    def run(self, keeper: QuantumKeeper) -> CpuExit:
        if self.timer.cancel():
            self._levels = None     # a planned expiry raised an output: reconcile with the kernel's level
        lead = self._sync_counter(keeper.start)
        budget = keeper.budget
        period = self.period
        source, vcpu, run = self.source, self.vcpu, self.kvm_run
        guard = self.guard
        extra = 0           # access latencies in this run
        done = 0
        # The fallback ends a quantum once the guest's own clock has run its length, less the lead it
        # had: the counter runs in wall time inside KVM_RUN only, so simulated time then follows the time
        # the guest spent there, and late kicks do not add up (docs/cpu-kvm-arm64.md, "Idle").
        allowance = budget - self.timer.time_of(lead) if guard is not None else 0
        started = self._count
        if guard is not None and allowance <= 0:
            return self._exit(keeper, BUDGET_SPENT, budget, 0)     # a quantum ahead: let time catch up
        source.arm(max(1, budget // period))
        entered = False
        try:
            while True:
                if entered:
                    self._restart_counter(self._count)       # it stood still while we were outside
                entered = True
                if guard is not None:
                    guard.arm(max(1_000, (allowance - self.timer.time_of(self._count - started)) // 1000))
                if self._wake is not None:
                    self._wake.kick_in(WAKE_NS)
                source.entered()
                ran = vcpu.run()
                source.exited()
                if self._wake is not None:
                    self._wake.kick_in(0)
                    if not ran and self._mp_state() == KVM_MP_STATE_STOPPED:
                        self._stop_counter()
                        self.stopped = True               # PSCI CPU_OFF: KVM put it to sleep
                        assert self._power is not None
                        self._power(self.index, False)
                        return self._exit(keeper, DEVICE_ACCESS, source.executed() * period + extra,
                                          source.executed())
                self._stop_counter()
                self._pending = False
                done = source.executed()
                elapsed = done * period + extra
                changed = self._apply_levels(keeper, elapsed)
                exit = decode(run, ran=ran, wfx_exit=self.wfx_exit)
                if type(exit) is Debug:       # a debugger's stop (KVM_SET_GUEST_DEBUG): the PC is ours to read
                    return self._exit(keeper, self._debug_breakpoint(exit), elapsed, done)
                device = isinstance(exit, Mmio)
                if device:
                    extra += self.access_latency
                    elapsed += self.access_latency
                    keeper.sync(elapsed)          # the device sees the guest's local time
                try:
                    outcome = handle_exit(exit, bus=self.bus, accesses=self.accesses, inject_abort=self.inject_abort)
                except CpuError as error:
                    raise self._located(error) from error
                if outcome.reply is not None:
                    ffi.memmove(run.mmio.data, outcome.reply, len(outcome.reply))
                    self._pending = True
                if outcome.abort is not None:
                    self._inject_abort(outcome.abort)
                reason = outcome.reason
                if reason is BUDGET_SPENT:   # a kick, another signal, or a level change
                    if guard is not None and self.timer.time_of(self._count - started) >= allowance:
                        # The guest's clock ran the quantum out: it idled in a WFI KVM kept to itself (no WFx
                        # exit), or the host ran slower than the model.
                        return self._exit(keeper, BUDGET_SPENT, max(elapsed, budget), done)
                    if elapsed >= budget:
                        return self._exit(keeper, BUDGET_SPENT, elapsed, done)
                    if changed and keeper.must_yield:
                        return self._exit(keeper, DEVICE_ACCESS, elapsed, done)
                    source.rearm()
                    continue
                if type(reason) is Idle:
                    result = self._exit(keeper, reason, elapsed, done)
                    self.timer.plan(self.comparators(), at=keeper.start + result.elapsed)
                    return result
                if reason is not None:
                    return self._exit(keeper, reason, elapsed, done)
                if (device or changed) and keeper.must_yield:
                    return self._exit(keeper, DEVICE_ACCESS, elapsed, done)
                if elapsed >= budget:
                    return self._exit(keeper, BUDGET_SPENT, elapsed, done)
        finally:
            source.disarm()
            if guard is not None:
                guard.disarm()
            if self._power is not None:
                self._started_siblings()

    def _mp_state(self) -> int:
        state = ffi.new("struct kvm_mp_state *")
        self.vcpu.ioctl(Ioctl.GET_MP_STATE, state, what="KVM_GET_MP_STATE")
        return int(state.mp_state)

    def _started_siblings(self) -> None:
        """KVM served a PSCI CPU_ON in the run that just ended: the target is RUNNABLE now."""
        assert self._power is not None
        for other in self._group:
            if other.stopped and other is not self and other._mp_state() != KVM_MP_STATE_STOPPED:
                other.stopped = False
                self._power(other.index, True)

    def _closeables(self) -> list:
        return [part for part in (getattr(self, "source", None), self.guard, self._wake) if part is not None]


def _extension(vm: Vm, cap: int) -> int:
    """KVM_CHECK_EXTENSION's answer, 0 where the host does not know the capability."""
    try:
        return vm.check_extension(cap)
    except KvmError:
        return 0


# -- the guest's instruction rate, for time-based budget sources ----------------------------
_CALIBRATION_RAM = 0x1_0000
_CALIBRATION_EXIT = 0x10_0000          # outside the slot: the store exits as MMIO
# loop: SUBS X0, X0, #1; B.NE loop; STR XZR, [X1] — 2N + 1 instructions for x0 = N
_CALIBRATION_CODE = b"".join(word.to_bytes(4, "little") for word in (0xF1000400, 0x54FFFFE1, 0xF900003F))


def guest_rate(device: str = DEFAULT_DEVICE, min_seconds: float = 0.02, start: int = 10_000,
               clock: Callable[[], int] = time.thread_time_ns) -> float:
    """Guest instructions per second of vCPU thread CPU time: a counted loop, doubled until it takes `min_seconds`."""
    with scratch_vm(device, _CALIBRATION_RAM) as (_kvm, vm, vcpu, ram):
        ram[0:len(_CALIBRATION_CODE)] = _CALIBRATION_CODE
        init = ffi.new("struct kvm_vcpu_init *")
        vm.ioctl(Arm64Ioctl.ARM_PREFERRED_TARGET, init, what="KVM_ARM_PREFERRED_TARGET")
        vcpu.ioctl(Arm64Ioctl.ARM_VCPU_INIT, init, what="KVM_ARM_VCPU_INIT")
        iterations = start
        while True:
            for name, value in (("pc", 0), ("x0", iterations), ("x1", _CALIBRATION_EXIT), ("pstate", 0x3C5)):
                _one_reg(vcpu, CORE_REGS[name], value, name)
            began = clock()
            vcpu.run()
            spent = clock() - began
            if spent >= min_seconds * 1e9 or iterations >= 1 << 40:
                return (2 * iterations + 1) / max(spent, 1) * 1e9
            iterations *= 2
