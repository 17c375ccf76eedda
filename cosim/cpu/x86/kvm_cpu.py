"""The KVM-backed x86-64 CPU: guest code runs under /dev/kvm, this backend owns the rest.

- **Memory.** RAM models are memory slots (DMI: no exit for RAM); ROM is a
  read-only slot where the host offers KVM_CAP_READONLY_MEM, so a write exits
  as MMIO and reaches the ROM model. Everything else exits: MMIO to the
  platform bus, port I/O to the I/O-port bus (`exits.handle_exit`).
- **Interrupts.** No in-kernel irqchip (no KVM_CREATE_IRQCHIP): the 8259 model
  drives `intr`; when the guest can take it (`ready_for_interrupt_injection`)
  the vector from `acknowledge()` is injected through kvm_run's synced vCPU
  events (KVM_CAP_SYNC_REGS; KVM_INTERRUPT where the host lacks them), otherwise
  `request_interrupt_window` makes KVM exit as soon as it can. With the irqchip
  in userspace, HLT exits to us: that is the idle exit.
- **Time.** A quantum is a budget of instructions (budget / CPU period; the
  period is 1/frequency, 1 GHz by default or the guest's measured rate with
  frequency "host"). The budget source (`cosim.kvm._budget`) kicks the vCPU out
  of KVM_RUN when it is spent and says how many instructions ran; simulated
  time = instructions x period, plus `access_latency` per device access, so a
  guest polling a status port sees time move between its reads.
- **TSC.** The guest TSC runs at the host TSC rate while the guest runs, and is
  moved forward by exactly the simulated time that passed while the guest was
  not running (idle jumps), through KVM_VCPU_TSC_OFFSET: guest-visible TSC
  deltas across HLT match simulated time. Hosts that ignore the offset (probed
  at start) leave it free-running, and the description says so.
- **Debug.** Up to four hardware breakpoints (KVM_SET_GUEST_DEBUG) end the run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, get_args

from ..._bus import Bus
from ..._errors import PlatformError
from ..._time import GHz, NS, Frequency
from ...kvm._access import GuestAccesses
from ...kvm._cpu import KvmCpuBase, MemoryRegion, block_kick, map_memory
from ...kvm._budget import KICK_SIGNAL, BudgetChoice, BudgetSource, choose_budget_source
from ...kvm._system import DEFAULT_DEVICE, Kvm, KvmError
from ...kvm._uapi import KVM_RUN_SYNC_REGS_OFFSET, CData, Ioctl
from ...kvm._x86 import (KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_USE_HW_BP, KVM_SYNC_X86_EVENTS, KVM_VCPU_TSC_CTRL,
                         KVM_VCPU_TSC_OFFSET, X86Ioctl, ffi)
from ...loaders.x86 import EntryState
from .._backend import BUDGET_SPENT, DEVICE_ACCESS, CpuError, CpuExit, Idle, IdleKind, QuantumKeeper, Stop
from .calibrate import Calibration, calibrate
from .exits import Debug, Halt, IrqWindow, KvmExit, Mmio, PortIo, RunView, decode, handle_exit
from .state import DEFAULT_HIDDEN, MSR_IA32_TSC, CpuidMask, X86State, set_cpuid

__all__ = ["KvmX86Cpu", "MemoryRegion", "TSS_ADDRESS", "IDENTITY_MAP_ADDRESS"]

log = logging.getLogger("cosim.cpu.x86")

# Three pages Intel VMX needs for real-mode emulation without unrestricted guest,
# and one for the identity map; placed below 4 GiB where QEMU puts them.
TSS_ADDRESS = 0xFFFB_D000
IDENTITY_MAP_ADDRESS = 0xFFFB_C000


_HALTED = Idle(IdleKind.HLT)

_warned: set[str] = set()


def _warn_once(logger: logging.Logger, message: str) -> None:
    """A host fact (KVM not accelerated) is worth one warning per process, not one per CPU built."""
    if message not in _warned:
        _warned.add(message)
        logger.warning("%s", message)


class KvmX86Cpu(KvmCpuBase):
    """x86-64 CPU on KVM behind the CpuBackend interface.

    `memory`: the system bus (MMIO exits); `ports`: the I/O-port bus; `ram`:
    regions mapped as memory slots; `acknowledge()`: the interrupt controller's
    INTA cycle, returning the vector to inject (None: spurious, nothing to do).
    `frequency`: instructions per simulated second (period of one instruction),
    or "host" for the guest's measured rate on this host (simulated time then
    follows the guest's execution time);
    `ips`: instructions per host CPU second for time-based budget sources
    (default: measured by the calibration guest); `budget`: "auto", "pmu",
    "task-clock", "posix-timer", or a BudgetSource object; `access_latency`: simulated time each device
    access adds; `cpuid_hidden`: CPUID bits the platform does not model.
    """

    name = "kvm-x86"
    pc_name = "rip"

    def __init__(self, *, memory: Bus, ports: Bus, ram: Iterable[MemoryRegion],
                 acknowledge: Callable[[], int | None] | None = None,
                 frequency: Frequency | Literal["host"] = GHz(1),
                 ips: float | None = None, budget: str | BudgetSource = "auto", access_latency: int = 100 * NS,
                 cpuid_hidden: Iterable[CpuidMask] = DEFAULT_HIDDEN, entry: EntryState | None = None,
                 device: str = DEFAULT_DEVICE, kick_signal: int = KICK_SIGNAL,
                 logger: logging.Logger = log) -> None:
        if access_latency < 0:
            raise PlatformError(f"access latency must not be negative, not {access_latency} ps")
        self.memory = memory
        self.ports = ports
        self.acknowledge = acknowledge
        self.access_latency = access_latency
        self.kick_signal = kick_signal
        self.accesses = GuestAccesses(logger)
        self.log = logger
        self.intr = False
        self._halted = False
        self._resume_at: int | None = None   # simulated time the guest stopped at, if it ran before
        self._tsc_khz: int | None = None
        # KVM exits by kind, for the summary: a plain dict with every kind, the cheapest to count into
        self._exit_types: dict[type, int] = dict.fromkeys(get_args(KvmExit), 0)
        self.kicks = 0                             # KVM_RUNs a signal ended
        self.early_kicks = 0                       # ... before the budget was spent
        self.calibration: Calibration | None = None if ips else calibrate(device)
        self.ips = ips or self.calibration.guest_ips
        # "host": one simulated second per second of guest execution on this host (gem5's
        # KVM CPU default); a fixed frequency keeps simulated time independent of the host.
        self.frequency = Frequency(max(1, round(self.ips))) if frequency == "host" else frequency
        self.period = self.frequency.period
        if self.calibration is not None and not self.calibration.accelerated:
            _warn_once(logger, self.calibration.describe())
        self.kvm = Kvm(device)
        self.source = None
        try:
            self._setup(ram, cpuid_hidden)
            if isinstance(budget, str):
                exit_ns = self.calibration.exit_ns if self.calibration else 0.0
                self.budget_choice = choose_budget_source(budget, ips=lambda: self.ips, signo=kick_signal,
                                                          exit_ns=exit_ns)
            else:
                self.budget_choice = BudgetChoice(budget, [])
            self.source = self.budget_choice.source
            if entry is not None:
                self.set_entry(entry)
        except BaseException:
            self.close()
            raise
        self.description = self._describe()

    def _setup(self, ram: Iterable[MemoryRegion], cpuid_hidden: Iterable[CpuidMask]) -> None:
        kvm = self.kvm
        self.vm = vm = kvm.create_vm()
        # Intel VMX without unrestricted guest emulates real mode with these pages (api.rst KVM_SET_TSS_ADDR).
        if kvm.capabilities.has("SET_TSS_ADDR"):
            vm.ioctl(X86Ioctl.SET_TSS_ADDR, TSS_ADDRESS, what="KVM_SET_TSS_ADDR")
        if kvm.capabilities.has("SET_IDENTITY_MAP_ADDR"):
            identity = ffi.new("unsigned long long *", IDENTITY_MAP_ADDRESS)
            vm.ioctl(X86Ioctl.SET_IDENTITY_MAP_ADDR, identity, what="KVM_SET_IDENTITY_MAP_ADDR")
        map_memory(kvm, vm, ram, self.log)
        self.vcpu = vcpu = vm.create_vcpu(0)
        self.cpuid = set_cpuid(kvm, vcpu, cpuid_hidden)
        self.state = X86State(vcpu)
        self.kvm_run = vcpu.kvm_run
        self._view = RunView(vcpu.kvm_run, kvm.vcpu_mmap_size)
        self._irq = ffi.new("struct kvm_interrupt *")
        self._events = self._synced_events()
        self._tsc_attr = self._tsc_offset_attr()
        block_kick(vcpu, self.kick_signal)

    def _synced_events(self) -> CData | None:
        """kvm_run's copy of the vCPU events (s.regs.events), if the host syncs them (KVM_CAP_SYNC_REGS).

        KVM then stores the events there at every exit and, when they are marked
        dirty, loads them at the next entry (api.rst, "kvm_valid_regs"): injecting
        an interrupt costs no ioctl of its own, where KVM_INTERRUPT costs as much as
        an exit on an emulating host.
        """
        if not self.kvm.capabilities["SYNC_REGS"] & KVM_SYNC_X86_EVENTS:
            return None
        self.kvm_run.kvm_valid_regs = KVM_SYNC_X86_EVENTS
        # Safe: kvm_run's sync area (KVM_RUN_SYNC_REGS_OFFSET, 2 KiB) holds x86's struct kvm_sync_regs.
        offset = KVM_RUN_SYNC_REGS_OFFSET + ffi.offsetof("struct kvm_sync_regs", "events")
        return ffi.cast("struct kvm_vcpu_events *", ffi.cast("char *", self.kvm_run) + offset)

    def _tsc_offset_attr(self) -> CData | None:
        """The vCPU's TSC-offset attribute, if the host has it *and* honours it.

        Probed by moving the offset one second on and reading the guest TSC back:
        an emulating nested KVM may accept the write and ignore it.
        """
        self.tsc_note = "TSC free-running (KVM_VCPU_TSC_OFFSET unavailable)"
        if not self.kvm.capabilities.has("VCPU_ATTRIBUTES"):
            return None
        attr = ffi.new("struct kvm_device_attr *")
        attr.group, attr.attr = KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET
        self._tsc_value = value = ffi.new("unsigned long long *")
        attr.addr = int(ffi.cast("unsigned long", value))
        try:
            self.vcpu.ioctl(Ioctl.HAS_DEVICE_ATTR, attr, what="KVM_HAS_DEVICE_ATTR(TSC offset)")
            self.vcpu.ioctl(Ioctl.GET_DEVICE_ATTR, attr, what="KVM_GET_DEVICE_ATTR(TSC offset)")
            offset, second = value[0], self.tsc_khz * 1000
            before = self.state.read_msr(MSR_IA32_TSC)
            value[0] = (offset + second) & (1 << 64) - 1
            self.vcpu.ioctl(Ioctl.SET_DEVICE_ATTR, attr, what="KVM_SET_DEVICE_ATTR(TSC offset)")
            moved = self.state.read_msr(MSR_IA32_TSC) - before
            value[0] = offset
            self.vcpu.ioctl(Ioctl.SET_DEVICE_ATTR, attr, what="KVM_SET_DEVICE_ATTR(TSC offset)")
        except KvmError as error:
            self.tsc_note = f"TSC free-running ({error})"
            return None
        if not second <= moved < 2 * second:
            self.tsc_note = "TSC free-running (this host's KVM ignores KVM_VCPU_TSC_OFFSET writes)"
            return None
        self.tsc_note = "TSC offset follows idle time"
        return attr

    def _describe(self) -> str:
        rate = (self.calibration.describe() if self.calibration
                else f"{self.ips / 1e6:.3g}M instructions/s (configured)")
        return f"KVM x86-64 at {self.frequency}, budget: {self.budget_choice.describe()}; {rate}; {self.tsc_note}"

    # -- registers -------------------------------------------------------------
    def read_register(self, name: str) -> int:
        return self.state.read(name)

    def write_register(self, name: str, value: int) -> None:
        self.state.write(name, value)

    @property
    def pc(self) -> int:
        return self.state.read("rip")

    def regs(self) -> CData:
        """`struct kvm_regs *`, fresh."""
        return self.state.regs()

    def sregs(self) -> CData:
        """`struct kvm_sregs *`, fresh."""
        return self.state.sregs()

    def set_entry(self, entry: EntryState) -> None:
        self.state.set_entry(entry)
        self._halted = False

    def set_breakpoints(self, addresses: Sequence[int]) -> None:
        """Stop the run when the guest is about to execute one of these (up to 4) linear addresses.

        Hardware breakpoints through KVM_SET_GUEST_DEBUG: DR0-DR3 hold the
        addresses, DR7 enables them as instruction breakpoints (R/W = 00,
        LEN = 00; SDM Vol. 3B 18.2.4). The run ends with a `Breakpoint` exit.
        """
        if len(addresses) > 4:
            raise PlatformError(f"x86 has 4 hardware breakpoints, not {len(addresses)}")
        debug = ffi.new("struct kvm_guest_debug *")
        if addresses:
            debug.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP
            for index, address in enumerate(addresses):
                debug.arch.debugreg[index] = address
                debug.arch.debugreg[7] |= 1 << (2 * index)      # Ln: local enable
        self.vcpu.ioctl(X86Ioctl.SET_GUEST_DEBUG, debug, what="KVM_SET_GUEST_DEBUG")

    def register_dump(self) -> str:
        try:
            return self.state.dump()
        except KvmError as error:
            return f"(registers unavailable: {error})"

    # -- interrupts -------------------------------------------------------------
    def set_irq(self, line: str, level: bool) -> None:
        if line != "intr":
            raise ValueError(f"x86 CPU has one interrupt input, 'intr', not {line!r}")
        self.intr = level

    def interrupt_pending(self) -> bool:
        # HLT resumes on INTR only when RFLAGS.IF is set (SDM Vol. 2A, HLT); if_flag is from the last exit.
        return self.intr and bool(self.kvm_run.if_flag)

    def _inject(self) -> None:
        run = self.kvm_run
        if not self.intr:
            run.request_interrupt_window = 0
            return
        if run.ready_for_interrupt_injection:
            vector = self.acknowledge() if self.acknowledge is not None else None
            if vector is not None:
                events = self._events
                if events is None:
                    self._irq.irq = vector
                    self.vcpu.ioctl(Ioctl.INTERRUPT, self._irq, what=f"KVM_INTERRUPT({vector:#x})")
                else:
                    # What KVM_INTERRUPT does: queue `vector` as an external interrupt. The rest of the
                    # events are KVM's own from the last exit, so loading them back changes nothing else
                    # (with ready_for_interrupt_injection set, no exception or interrupt is in flight).
                    interrupt = events.interrupt
                    interrupt.injected, interrupt.nr, interrupt.soft = 1, vector, 0
                    run.kvm_dirty_regs |= KVM_SYNC_X86_EVENTS
            run.request_interrupt_window = 0
        else:
            run.request_interrupt_window = 1   # exit with KVM_EXIT_IRQ_WINDOW_OPEN once IF=1 and no shadow

    # -- TSC ---------------------------------------------------------------------
    def _advance_tsc(self, picoseconds: int) -> None:
        """Move the guest TSC on by `picoseconds` of simulated time the guest did not run for.

        The offset read at set-up is kept here: nothing else writes it.
        """
        attr = self._tsc_attr
        if attr is None or picoseconds <= 0:
            return
        self._tsc_value[0] = (self._tsc_value[0] + picoseconds * self.tsc_khz // 1_000_000_000) & (1 << 64) - 1
        self.vcpu.ioctl(Ioctl.SET_DEVICE_ATTR, attr, what="KVM_SET_DEVICE_ATTR(TSC offset)")

    @property
    def tsc_follows_idle(self) -> bool:
        """True when the guest TSC is moved on across idle time (see `tsc_note` otherwise)."""
        return self._tsc_attr is not None

    @property
    def tsc_khz(self) -> int:
        """The guest TSC's frequency (KVM_GET_TSC_KHZ)."""
        if self._tsc_khz is None:
            self._tsc_khz = self.vcpu.ioctl(X86Ioctl.GET_TSC_KHZ, what="KVM_GET_TSC_KHZ")
        return self._tsc_khz

    # -- running -----------------------------------------------------------------
    def run(self, keeper: QuantumKeeper) -> CpuExit:
        if self._halted:
            if not self.interrupt_pending():
                return CpuExit(_HALTED, 0, 0)
            self._halted = False
        if self._resume_at is not None and keeper.start > self._resume_at:
            self._advance_tsc(keeper.start - self._resume_at)
        budget = keeper.budget
        period = self.period
        limit = max(1, budget // period)
        source, vcpu, state, view = self.source, self.vcpu, self.state, self._view
        ports, memory, accesses, latency = self.ports, self.memory, self.accesses, self.access_latency
        run = self.kvm_run
        entered, exited, executed, run_vcpu = source.entered, source.exited, source.executed, vcpu.run
        kvm_exits = self._exit_types
        extra = 0           # access latencies in this run
        source.arm(limit)
        try:
            while True:
                if self.intr:
                    self._inject()
                elif run.request_interrupt_window:
                    run.request_interrupt_window = 0
                entered()
                ran = run_vcpu()
                exited()
                done = executed()
                elapsed = done * period + extra
                if not ran:
                    state.pending_completion = False   # KVM finished any half-done access first
                    self.kicks += 1
                    if elapsed >= budget:
                        return self._exit(keeper, BUDGET_SPENT, elapsed, done)
                    self.early_kicks += 1
                    source.rearm()     # an early kick, or another signal: the budget is not spent
                    continue
                exit = decode(view)
                kind = type(exit)
                kvm_exits[kind] += 1
                device = kind is PortIo or kind is Mmio
                # An I/O or MMIO instruction finishes on the next KVM_RUN; others are complete.
                state.pending_completion = device
                if device:
                    extra += latency
                    elapsed += latency
                    keeper.sync(elapsed)          # the device sees the guest's local time
                try:
                    outcome = handle_exit(exit, ports, memory, accesses)
                except CpuError as error:
                    raise self._located(error) from error
                if outcome.reply is not None:
                    self._reply(exit, outcome.reply)
                reason = outcome.reason
                if reason is not None:
                    if type(reason) is Idle:
                        if not run.if_flag:
                            # HLT with IF=0 waits for NMI, SMI or INIT (SDM Vol. 2A, HLT), none of
                            # which is modelled: the guest has stopped for good (`cli; hlt`).
                            reason = Stop(0, f"guest halted with interrupts disabled at {self.pc - 1:#x}")
                        else:
                            self._halted = True
                    return self._exit(keeper, reason, elapsed, done)
                if device and keeper.must_yield:
                    return self._exit(keeper, DEVICE_ACCESS, elapsed, done)
                if elapsed >= budget:
                    return self._exit(keeper, BUDGET_SPENT, elapsed, done)
        finally:
            source.disarm()

    def _reply(self, exit: PortIo | Mmio, data: bytes) -> None:
        if isinstance(exit, PortIo):
            # KVM reserved count * size bytes at data_offset inside the kvm_run mapping for this IN.
            offset = self._view.io.data_offset
            self._view.raw[offset:offset + len(data)] = data
        else:
            ffi.memmove(self._view.mmio.data, data, len(data))

    def summary(self) -> dict[str, str]:
        """Rows for the run summary: KVM exits by kind, kicks, accesses that failed."""
        names = {PortIo: "port I/O", Mmio: "MMIO", Halt: "HLT", IrqWindow: "interrupt window", Debug: "debug"}
        exits = ", ".join(f"{names.get(kind, kind.__name__)} {count}"
                          for kind, count in sorted(self._exit_types.items(), key=lambda item: -item[1]) if count)
        rows = {"KVM exits": exits or "none", "budget kicks": f"{self.kicks} ({self.early_kicks} early, re-armed)"}
        if self.accesses.failed:
            rows["failed accesses"] = f"{len(self.accesses.failed)} addresses (reads all ones, writes dropped)"
        return rows
