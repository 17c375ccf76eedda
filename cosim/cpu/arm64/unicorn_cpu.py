"""The software CPU for Arm64 guests: unicorn executes, this backend owns the rest.

- **Local time.** A native hook counts retired instructions (`_counter.py`),
  per translation block by default (`counting="instruction"`: per instruction,
  exact mid-block); simulated time = instructions x the CPU period, plus the
  poll skips below. Devices are accessed after `keeper.sync` to that time.
- **Exceptions** are entered by `exceptions.enter_el1` (unicorn takes none):
  IRQ/FIQ between runs when the line is high and unmasked; SVC, BRK, undefined
  instructions and aborts reported by unicorn's interrupt hook; HVC/SMC go to
  PSCI. An access to an address with nothing mapped is a synchronous external
  abort taken by the guest (DFSC 0x10, FAR = the address); an access a model
  refuses reads as zero and writes are dropped (RAZ/WI), warned once. MMU faults get the
  syndrome and FAR `mmu.py` derives (unicorn reports only "data abort").
- **Idle.** WFI makes unicorn return early; that is the idle exit.
- **Debugging** (cosim.gdb): breakpoints are code hooks on one address each and
  single step a code hook on all of them, present only while set; watchpoints are
  memory hooks on the watched range (every access then takes unicorn's slow path,
  only while one is set). Each stops the run before the instruction, as gdb expects
  of Arm64 (its watchpoints are "non-steppable"): unicorn abandons a store whose
  hook stops it, but has written memory already, so the old bytes are put back.
- **The guest's own debug** (debug.py, DDI 0487 D2): its breakpoints and watchpoints
  are hooks of the same kind on the addresses and ranges it enables; software step
  runs one instruction per pass. gdb's stops come first.
- **Polling.** A guest that reads the same thing again and again (CNTPCT/CNTVCT,
  or one device register such as a UART's flag register) with nothing else in
  between is waiting for time to pass: each further read in the streak moves
  local time on by a skip that doubles (1 us, 2 us, ...) up to `max_poll_skip`,
  so `udelay` loops and console polling cost a few reads instead of millions
  of instructions. Deterministic: the same guest gives the same times.
"""

from __future__ import annotations

import ctypes
import logging
from functools import partial
from collections.abc import Callable, Iterable
from typing import Any

from unicorn import (UC_ARCH_ARM64, UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_ERR_FETCH_UNMAPPED,
                     UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_PROT, UC_ERR_WRITE_UNMAPPED, UC_HOOK_CODE, UC_HOOK_INTR,
                     UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE, UC_MEM_WRITE, UC_MODE_ARM, UC_PROT_ALL, UC_PROT_EXEC,
                     UC_PROT_READ, Uc, UcError)
from unicorn import arm64_const as A

from ..._bus import Bus, BusError
from ..._errors import PlatformError
from ..._memory import Memory, MemoryRegion
from ..._time import GHz, US, Frequency
from .._backend import (BUDGET_SPENT, DEVICE_ACCESS, Breakpoint, CpuError, CpuExit, ExitReason, Idle, IdleKind,
                        QuantumKeeper, Stop)
from .._debug import DebugStop, StopKind, WatchKind
from . import COUNTING_MODES
from .psci import Psci
from ._counter import NativeCounter, NativeSysregFilter, NativeUart
from ._regbatch import RegisterBatch
from .debug import SYSREG_NAMES as DEBUG_SYSREGS
from .debug import (MDSCR_SS, CodeAndMemoryHooks, ERET, PSTATE_SS, SelfHostedDebug, breakpoint_syndrome,
                    is_load_exclusive, step_syndrome, watchpoint_syndrome)
from .exceptions import EC, PSTATE_F, PSTATE_I, Kind, abort_syndrome, current_el, enter_el1, esr, undefined_syndrome
from .mmu import FSC_ALIGNMENT, Fault, TranslationRegs, decode_access, walk

__all__ = ["UnicornArm64Cpu", "MemoryRegion"]

log = logging.getLogger("cosim.cpu.arm64")

# QEMU's internal exception numbers as unicorn's UC_HOOK_INTR reports them (target/arm/cpu.h).
EXCP_UDEF, EXCP_SWI, EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT, EXCP_BKPT = 1, 2, 3, 4, 7
EXCP_HVC, EXCP_SMC = 11, 13

# Exceptions taken in a row at one address, with nothing else run, before the run is declared
# stuck: a handler whose first instruction faults into its own vector loops forever (and with
# block counting no time passes, so the run would never end).
_STUCK_EXCEPTIONS = 16
# An exception storm: this many exceptions in a row, each within a few instructions of the last
# (garbage code faulting at changing addresses). A real handler runs far longer than the gap
# before the next exception (Linux's entry code alone saves 30 registers), so no OS trips it.
_STORM_EXCEPTIONS, _STORM_GAP = 256, 32

# Unicorn returns early on WFI only (WFE runs as a no-op): that early return is the idle exit.
_IDLE = Idle(IdleKind.WFI)

SPSR_EL1 = (3, 0, 4, 0, 0)
SCTLR_EL1 = (3, 0, 1, 0, 0)          # (op0, op1, CRn, CRm, op2) for cpr_read/cpr_write
SCTLR_M_C_I = (1 << 0) | (1 << 2) | (1 << 12)   # MMU, data and instruction cache enables
TCR_EL1 = (3, 0, 2, 0, 2)
SCR_EL3 = (3, 6, 1, 1, 0)
ID_AA64DFR0_EL1 = (3, 0, 0, 5, 0)
# Registers a guest reads over and over while it waits for time to pass: the counters, and the
# timers' status (CTL.ISTATUS) and countdown (TVAL). Repeated reads of them let time move on.
_TIME_POLLED = frozenset({"CNTPCT_EL0", "CNTVCT_EL0", "CNTP_CTL_EL0", "CNTV_CTL_EL0", "CNTP_TVAL_EL0",
                          "CNTV_TVAL_EL0"})
HCR_EL2 = (3, 4, 1, 1, 0)
VMPIDR_EL2 = (3, 4, 0, 0, 5)
# Unicorn starts in Secure EL1 with SCR_EL3.RW = 0, which QEMU reads as "EL1 is
# AArch32": the first MMU enable then faults. Present what QEMU's virt gives a
# guest instead: Non-secure (NS), HVC enabled (HCE), lower ELs AArch64 (RW).
SCR_EL3_VALUE = (1 << 10) | (1 << 8) | 0x30 | 1
HCR_EL2_RW = 1 << 31
# What an ERET restores from SPSR_EL1 that tells it apart from an MSR to DAIF: NZCV, DAIF, M[4:0].
_ERET_BITS = 0xF000_03DF

_X_REGS = {f"x{i}": getattr(A, f"UC_ARM64_REG_X{i}") for i in range(29)}
_X_REGS |= {"x29": A.UC_ARM64_REG_FP, "x30": A.UC_ARM64_REG_LR, "sp": A.UC_ARM64_REG_SP,
            "pc": A.UC_ARM64_REG_PC, "pstate": A.UC_ARM64_REG_PSTATE, "sp_el0": A.UC_ARM64_REG_SP_EL0,
            "sp_el1": A.UC_ARM64_REG_SP_EL1, "elr_el1": A.UC_ARM64_REG_ELR_EL1, "esr_el1": A.UC_ARM64_REG_ESR_EL1,
            "far_el1": A.UC_ARM64_REG_FAR_EL1, "vbar_el1": A.UC_ARM64_REG_VBAR_EL1}

# Base registers of loads and stores: X0-X30, and 31 = SP.
_BASE_REGS = [_X_REGS[f"x{i}"] for i in range(31)] + [A.UC_ARM64_REG_SP]

_REG_NUMBERS = {reg: n for n, reg in enumerate(_BASE_REGS[:31])}

def _sysreg_key(cp: Any) -> int:
    """A system register as a polling source, apart from device addresses (as cosim_counter_read)."""
    return 1 << 63 | (cp.op0 << 14) | (cp.op1 << 11) | (cp.crn << 7) | (cp.crm << 3) | cp.op2


SysregHandler = Callable[[tuple[int, int, int, int, int]], str | None]


def _whole_pages(ranges: Iterable[tuple[int, int]], page: int) -> list[tuple[int, int]]:
    """`ranges` widened to whole unicorn pages and merged where they then touch: unicorn maps MMIO by the
    page, and devices smaller than one (virtio-mmio's 0x200) share pages; the bus routes within them."""
    merged: list[list[int]] = []
    for base, size in sorted(ranges):
        start, end = base - base % page, -(-(base + size) // page) * page
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end - start) for start, end in merged]


class UnicornArm64Cpu:
    """Arm64 CPU on unicorn behind the CpuBackend interface.

    `memory`: regions mapped straight into the guest (DMI); `bus`: everything
    else on the system bus, reached through `mmio` ranges; `timer`: the
    generic-timer model (`read_sysreg`/`write_sysreg`, `SYSREG_NAMES`);
    `on_psci_stop(kind)`: told when the guest asks PSCI to power off or reset.
    """

    name = "unicorn-arm64"

    def __init__(self, *, bus: Bus, memory: Iterable[MemoryRegion], mmio: Iterable[tuple[int, int]],
                 timer: Any = None, sysreg_names: dict[tuple[int, int, int, int, int], str] | None = None,
                 pmu: Any = None,
                 frequency: Frequency = GHz(1), max_poll_skip: int = 100 * US, entry: int = 0,
                 registers: dict[str, int] | None = None, counting: str = "block",
                 share: "UnicornArm64Cpu | None" = None, index: int = 0, psci: Psci | None = None,
                 pl011s: Iterable[tuple[int, Any]] = ()) -> None:
        if counting not in COUNTING_MODES:
            raise PlatformError(f"counting must be {' or '.join(COUNTING_MODES)}, not {counting!r}")
        self.bus = bus
        self.timer = timer
        self.period = frequency.period
        self.max_poll_skip = max_poll_skip
        self.index = index
        # PSCI: the machine's power controller (SMP), or a one-CPU machine's.
        self.psci = psci if psci is not None else Psci([0])
        # System registers served by models (encoding -> owner, name); unicorn executes the rest.
        self._sysregs: dict[tuple[int, int, int, int, int], tuple[Any, str]] = {}
        if timer is not None:
            self._sysregs.update({key: (timer, name) for key, name in (sysreg_names or {}).items()})
        if pmu is not None:
            from cosim.models.pmu import SYSREG_NAMES as PMU_SYSREGS

            self._sysregs.update({key: (pmu, name) for key, name in PMU_SYSREGS.items()})
        self.description = (f"unicorn {__import__('unicorn').__version__} Arm64 at {frequency}, "
                            + ("instructions counted per block" if counting == "block" else "exact instruction count"))
        memory = list(memory)
        if share is None:
            self._engine = _Engine(self, memory, mmio, counting == "block", set(self._sysregs) | set(DEBUG_SYSREGS),
                                   bus, dict(pl011s), self._native_counter(timer))
        else:
            self._engine = share._engine
        self.uc = self._engine.uc
        self.counter = self._engine.counter
        self.guest_pmu = pmu is not None  # the platform lists a PMU in the device tree then
        if pmu is not None:               # the PMU counts what this CPU retires, at its exception level
            pmu.instructions = self.retired
            pmu.el = lambda: current_el(self.read_register("pstate"))
            pmu.dfr0 = self.uc.cpr_read(*ID_AA64DFR0_EL1)
        # The guest's self-hosted debug (debug.py), per CPU: its registers never reach unicorn.
        self.debug = SelfHostedDebug(self.uc.cpr_read(*ID_AA64DFR0_EL1))
        self._sysregs.update({key: (self.debug, name) for key, name in DEBUG_SYSREGS.items()})
        if share is not None and set(self._sysregs) != set(share._sysregs):
            raise PlatformError("CPUs sharing one unicorn engine must serve the same system registers")
        self.lines = {"irq": False, "fiq": False}
        self._keeper: QuantumKeeper | None = None
        self._carry = 0                   # time the last run went past its budget (see _exit)
        self._stop: ExitReason | None = None
        self._pending_sync: tuple[Kind, int, int | None, int | None] | None = None
        # Guest RAM as (base, size, host address), for reading translation tables on a fault.
        self._ram = [(base, size, host) for base, size, host, _ in memory]
        self._retired = 0                 # instructions of the runs before this one
        self._warned: set[int] = set()
        self._hooks = CodeAndMemoryHooks(self.uc)   # gdb's and the guest's breakpoints and watchpoints
        self._step_hook: int | None = None
        self._step_started = False
        self._gdb_step = False
        # Software step (D2.12). PSTATE.SS lives here: unicorn's stays 0 (QEMU clears it on ERET, its
        # MDSCR_EL1 saying step is off). `_step_from`: the instruction a pass is stepping;
        # `_stepped`: ISV/EX of the step exception now pending (None: nothing stepped, ISV = 0).
        self._ss = False
        self._step_from: int | None = None
        self._stepped: bool | None = None
        self._step_off = True
        self._step_word: int | None = None
        self._marked = False                # unicorn's PSTATE.SS holds _debug_pass's ERET marker
        self._undo: list[tuple[int, bytes]] = []                    # watched stores to take back
        # Stores near a guest watchpoint that did not match it, by the instruction that made them
        # (its PC and count): a store pair whose second half matches takes its first half back too.
        self._near: tuple[tuple[int, int], list[tuple[int, bytes]]] = ((-1, -1), [])
        # A watchpoint's hook stopped the instruction, which unicorn still completes: device accesses
        # it goes on to make are dropped (RAM is put back from `_undo`); see `_abandoned`.
        self._abandoned = False
        self._storm = 0                   # exceptions in a row, each soon after the last (see _STORM_GAP)
        self._boot: tuple[int, int] | None = None                  # PSCI CPU_ON's (entry, context_id), not yet run
        self._engine.add(self)
        # MPIDR_EL1 as EL1 reads it with EL2 present is VMPIDR_EL2 (D17.2.101), kept in the CPU's
        # context: Aff0 = the CPU's index, bit 31 RES1 (as QEMU's virt numbers up to 8 CPUs).
        self.uc.cpr_write(*VMPIDR_EL2, self.mpidr)
        self.write_register("pc", entry)
        for name, value in (registers or {}).items():
            self.write_register(name, value)

    @property
    def mpidr(self) -> int:
        """MPIDR_EL1: bit 31 RES1, Aff0 = the index (the device tree's cpu `reg` is the affinity)."""
        return (1 << 31) | self.index

    # -- registers -----------------------------------------------------------
    def read_register(self, name: str) -> int:
        self._engine.select(self)
        if name == "spsr_el1":
            return self.uc.cpr_read(*SPSR_EL1)
        if name == "pstate":
            return self._pstate()
        return self.uc.reg_read(_X_REGS[name])

    def _pstate(self) -> int:
        """PSTATE with the software step bit the backend keeps (unicorn's may hold `_debug_pass`'s marker)."""
        return self.uc.reg_read(A.UC_ARM64_REG_PSTATE) & ~PSTATE_SS | (PSTATE_SS if self._ss else 0)

    def write_register(self, name: str, value: int) -> None:
        self._engine.select(self)
        if name == "spsr_el1":
            self.uc.cpr_write(*SPSR_EL1, value)
        else:
            self.uc.reg_write(_X_REGS[name], value)

    @property
    def pc(self) -> int:
        self._engine.select(self)
        return self._engine.pc_reg.read()[0]

    def register_dump(self) -> str:
        regs = [f"x{i:<2}={self.read_register(f'x{i}'):016x}" for i in range(31)]
        rows = ["  ".join(regs[i:i + 4]) for i in range(0, 31, 4)]
        rows.append(f"sp ={self.read_register('sp'):016x}  pc ={self.pc:016x}  pstate={self.read_register('pstate'):08x}")
        rows.append(f"elr_el1={self.read_register('elr_el1'):016x}  esr_el1={self.read_register('esr_el1'):08x}  "
                    f"far_el1={self.read_register('far_el1'):016x}")
        return "\n".join(rows)

    # -- interrupts -----------------------------------------------------------
    def set_irq(self, line: str, level: bool) -> None:
        self.lines[line] = level

    def interrupt_pending(self) -> bool:
        # WFI wakes on a pending interrupt even when PSTATE masks it (D1.16.2).
        return self.lines["irq"] or self.lines["fiq"]

    def _masked_pending(self) -> int:
        return (PSTATE_I if self.lines["irq"] else 0) | (PSTATE_F if self.lines["fiq"] else 0)

    def _take_interrupt(self) -> bool:
        pstate = self._engine.pstate_reg.read()[0]
        for line, kind, mask in (("fiq", Kind.FIQ, PSTATE_F), ("irq", Kind.IRQ, PSTATE_I)):
            if self.lines[line] and not pstate & mask:
                self._enter(kind, self.pc)
                return True
        return False

    def _enter(self, kind: Kind, return_address: int, syndrome: int | None = None, far: int | None = None) -> None:
        """Exception entry to EL1: the registers it reads, then those it writes, one native call each."""
        pstate, vbar, sp, sp_el0, sp_el1, old_esr, old_far, sctlr = self._engine.entry_reads.read()
        # SPSR_EL1.SS is PSTATE.SS, which the entry clears (D2.12.3).
        pstate = pstate & ~PSTATE_SS | (PSTATE_SS if self._ss else 0)
        self._ss, self._stepped = False, None
        entry = enter_el1(pstate, vbar, kind, return_address, syndrome, far)
        sp_el0, sp_el1, sp = entry.stacks(sp, sp_el0, sp_el1)
        # ESR and FAR keep their values when the entry sets none. A PSTATE write alone leaves QEMU's
        # cached translation flags (current EL) stale; rewriting SCTLR_EL1 makes unicorn rebuild them,
        # so code at the new EL translates right.
        self._engine.entry_writes.write((sp_el0, sp_el1, entry.spsr, entry.elr,
                                         old_esr if entry.esr is None else entry.esr,
                                         old_far if entry.far is None else entry.far,
                                         entry.pstate, sctlr, sp, entry.pc))

    # -- running --------------------------------------------------------------
    def run(self, keeper: QuantumKeeper) -> CpuExit:
        if self._carry >= keeper.budget:
            # Instructions already retired past earlier budgets cover this one too.
            self._carry -= keeper.budget
            return CpuExit(BUDGET_SPENT, keeper.budget, 0)
        self._engine.select(self)
        if self._boot is not None:
            self._power_on_reset(*self._boot)
        self._keeper = keeper
        # No passes done, no polling streak (it never spans quanta); local time starts at the carry.
        self.counter.begin_run(keeper.start, keeper.budget, self.period, self._carry, self.max_poll_skip)
        self._carry = 0
        for uart in self._engine.uarts:
            uart.refresh()
        self._stop = None
        stuck, last_taken = 0, None       # see _STUCK_EXCEPTIONS
        self._engine.running = True
        try:
            while True:
                self._take_interrupt()
                # A line still high here is masked: watch PSTATE so it is taken once unmasked.
                watch = self._masked_pending()
                if self.debug.changed or self.debug.mdscr & MDSCR_SS or self._step_from is not None:
                    watch |= self._debug_pass()
                # Software step per instruction: the counter ends the run after the one instruction.
                steps = self._step_from is not None and not self.counter.per_block
                self.counter.arm(1 if steps else self._remaining(), watch)
                self._pending_sync = None
                self._abandoned = False
                taken = None                  # where an exception was taken in this pass
                self._engine.drop_stale_code()
                try:
                    self.uc.emu_start(self.pc, 0xFFFF_FFFF_FFFF_FFFF)
                except UcError as error:
                    # The faulting instruction did not retire (a fetch that failed was never counted).
                    if error.errno == UC_ERR_FETCH_UNMAPPED:
                        self.counter.rewind(self.pc)
                    else:
                        self.counter.stopped_before(self.pc)
                    self._done += self.counter.executed
                    taken = self.pc
                    if not self._deliver_fault(error):
                        raise CpuError(f"unicorn stopped at pc={self.pc:#x}: {error}", self.register_dump()) from error
                else:
                    self._done += self.counter.executed
                    if self._step_from is not None:
                        self._step_done()
                    if self._pending_sync is not None:
                        taken = self._pending_sync[1]
                        self._enter(*self._pending_sync)
                    elif self._stop is None and self.counter.executed < self.counter.budget:
                        # Unicorn returns early only on WFI/WFE. With an interrupt pending (even
                        # masked) WFI completes at once (D1.16.2): carry on within the run.
                        if not self.interrupt_pending():
                            return self._exit(_IDLE)
                # The same exception address again with nothing run in between (the faulting
                # instruction is counted with exact counting): the vector faults into itself.
                stuck = stuck + 1 if taken is not None and taken == last_taken and self.counter.executed <= 1 else 0
                last_taken = taken
                if stuck >= _STUCK_EXCEPTIONS:
                    self._stuck()
                self._storm = self._storm + 1 if taken is not None and self.counter.executed < _STORM_GAP else 0
                if self._storm >= _STORM_EXCEPTIONS:
                    self._stormed()
                if self._undo:
                    self._undo_store()
                if self._stop is not None:
                    return self._exit(self._stop)
                if self._remaining() <= 0:
                    return self._exit(BUDGET_SPENT)
                if keeper.interrupted:
                    return self._exit(DEVICE_ACCESS)      # a signal: end the run here, the loop stops
        finally:
            for uart in self._engine.uarts:
                uart.deliver()          # the bytes the guest sent, before anything else happens
            self._keeper = None
            self._engine.running = False

    def boot(self, entry: int, context_id: int) -> None:
        """PSCI CPU_ON: start at `entry` with x0 = `context_id` when this CPU next runs."""
        self._boot = (entry, context_id)
        self._carry = 0

    def _power_on_reset(self, entry: int, context_id: int) -> None:
        """The state DEN 0022D 6.4 gives a CPU entering at CPU_ON's entry point: EL1h with
        DAIF masked, MMU and caches off, x0 = context_id; the rest is UNKNOWN (kept)."""
        self._boot = None
        self.uc.reg_write(A.UC_ARM64_REG_PSTATE, 0x3C5)
        self.uc.cpr_write(*SCTLR_EL1, self.uc.cpr_read(*SCTLR_EL1) & ~SCTLR_M_C_I)   # also rebuilds EL flags
        self.uc.reg_write(A.UC_ARM64_REG_X0, context_id)
        self.uc.reg_write(A.UC_ARM64_REG_PC, entry)
        self.psci.started(self.index)

    def _stuck(self) -> None:
        """The vector itself faults (no table at VBAR_EL1, e.g. nothing in flash): each exception
        raises the next one and no time passes, so this run would never end."""
        raise CpuError(f"guest stuck in an exception loop: {_STUCK_EXCEPTIONS} exceptions in a row taken at "
                       f"the same address (pc={self.pc:#x}, VBAR_EL1={self.read_register('vbar_el1'):#x}, "
                       f"ESR_EL1={self.read_register('esr_el1'):#x}): is there code and a vector table there?",
                       self.register_dump())

    def _stormed(self) -> None:
        raise CpuError(f"guest in an exception storm: {_STORM_EXCEPTIONS} exceptions in a row, each within "
                       f"{_STORM_GAP} instructions of the last (now pc={self.pc:#x}, VBAR_EL1="
                       f"{self.read_register('vbar_el1'):#x}, ESR_EL1={self.read_register('esr_el1'):#x}): "
                       f"is there code and a vector table there?", self.register_dump())

    def _remaining(self) -> int:
        """Instructions left in the budget once poll skips are taken off."""
        return self.counter.limit - self._done - self._extra // self.period

    def _elapsed(self) -> int:
        return (self._done + self.counter.executed) * self.period + self._extra

    def _elapsed_at_pc(self) -> int:
        """Local time at the instruction being executed: exact even with per-block counting, so
        two counter reads in one block see time pass (PMCCNTR, CNTVCT)."""
        return (self._done + self.counter.executed_before(self.pc)) * self.period + self._extra

    def _exit(self, reason: ExitReason) -> CpuExit:
        assert self._keeper is not None
        self._retired += self._done
        # A run retires whole instructions (whole blocks when counting per block), so it may end
        # past its budget: what it overran is carried into the next run rather than dropped, so
        # the time an instruction takes never depends on the quantum. The instructions before an
        # idle take no time of their own (the wake-up comes later anyway): nothing to carry.
        elapsed = self._done * self.period + self._extra
        budget = self._keeper.budget
        if elapsed > budget and type(reason) is not Idle:
            self._carry = elapsed - budget
        return CpuExit(reason, min(elapsed, budget), self._done)

    def _end_run(self, reason: ExitReason) -> None:
        """End the run after the current instruction. The counter stops it at the next
        boundary: stopping inside a device access could make unicorn repeat the access."""
        self._stop = reason
        self.counter.budget = self.counter.executed
        self.counter.ending()

    def _after_access(self) -> None:
        keeper = self._keeper
        if keeper is not None and keeper.must_yield and self._stop is None:
            self._end_run(DEVICE_ACCESS)

    # -- device accesses --------------------------------------------------------
    def _mmio_read(self, uc: Uc, offset: int, size: int, base: int) -> int:
        if self._abandoned:
            return 0                      # a watchpoint stopped the instruction: the device never sees it
        self.counter.poll_step(base + offset)
        self._sync(self._elapsed())
        address = base + offset
        try:
            value = self.bus.read(address, size)
        except BusError as error:
            self._warn_once(address, f"read of {size} bytes failed ({error.status.value}); reads as zero")
            value = 0
        self._after_access()
        return value

    def _mmio_write(self, uc: Uc, offset: int, size: int, value: int, base: int) -> None:
        if self._abandoned:
            return
        self.counter.poll_reset()
        self._sync(self._elapsed())
        address = base + offset
        try:
            self.bus.write(address, size, value)
        except BusError as error:
            self._warn_once(address, f"write of {size} bytes failed ({error.status.value}); ignored")
        self._after_access()

    def static_code(self, begin: int, end: int) -> None:
        """Code at virtual addresses [begin, end] (an OS kernel's image) is patched only through
        other mappings: spare unicorn's TLB scan after each of its translations (NativeCounter.static_code)."""
        self.counter.static_code(begin, end)

    def _warn_once(self, address: int, message: str) -> None:
        if address not in self._warned:
            self._warned.add(address)
            log.warning("guest access at %#x: %s", address, message)

    def _el0_denied(self, device: Any, name: str, cp: Any, reg: int, read: bool) -> bool:
        """An EL0 access the register's owner does not allow (the timer's CNTKCTL_EL1, the PMU's
        PMUSERENR_EL0) traps to EL1 with EC 0x18, as hardware does."""
        if current_el(self._engine.pstate_reg.read()[0]) != 0 or device.el0_allowed(name, read):
            return False
        # ISS for a trapped MSR/MRS (D17.2.37, EC 0x18): Op0, Op2, Op1, CRn, Rt, CRm, direction.
        iss = (cp.op0 << 20) | (cp.op2 << 17) | (cp.op1 << 14) | (cp.crn << 10) | (_REG_NUMBERS.get(reg, 31) << 5) \
            | (cp.crm << 1) | int(read)
        syndrome = esr(EC.UNKNOWN) if name.endswith("_EL1") else esr(EC.SYSREG, iss)   # EL1 registers: UNDEFINED
        self._pending_sync = (Kind.SYNC, self.pc, syndrome, None)
        self.counter.stopped_before(self.pc)        # a trapped instruction does not retire
        # Unicorn runs on to the next instruction's hooks after a stop requested from a system-register
        # hook: the budget keeps the counter from counting it.
        self.counter.budget = self.counter.executed
        self.uc.emu_stop()
        return True

    def _on_mrs(self, reg: int, cp: Any) -> int:
        owner = self._sysregs.get((cp.op0, cp.op1, cp.crn, cp.crm, cp.op2))
        if owner is None:
            return 0                                   # not ours: unicorn executes it
        device, name = owner
        if self._el0_denied(device, name, cp, reg, True):
            return 1
        if name in _TIME_POLLED:
            self.counter.poll_step(_sysreg_key(cp))
        self._sync(self._elapsed_at_pc())
        self._engine.register(reg).write((device.read_sysreg(name),))
        return 1

    def _on_msr(self, reg: int, cp: Any) -> int:
        owner = self._sysregs.get((cp.op0, cp.op1, cp.crn, cp.crm, cp.op2))
        if owner is None:
            return 0
        device, name = owner
        if self._el0_denied(device, name, cp, reg, False):
            return 1
        self.counter.poll_reset()
        self._sync(self._elapsed())
        device.write_sysreg(name, cp.val)
        if device is self.debug:
            self.counter.budget = self.counter.executed     # the next pass follows the new debug state
        self._after_access()
        return 1

    def retired(self) -> int:
        """Instructions retired since the CPU was made, exact at the instruction being executed
        (the PMU's INST_RETIRED)."""
        if self._keeper is None or self._engine.current is not self:
            return self._retired          # between runs (this CPU's or another's): all counted there
        return self._retired + self._done + self.counter.executed_before(self.pc)

    # Local time of this run lives in the native counter, which reads the counters without Python.
    _done = property(lambda self: self.counter.done, lambda self, value: setattr(self.counter, "done", value),
                     doc="Instructions of the earlier passes (emu_start calls) of this run.")
    _extra = property(lambda self: self.counter.extra, lambda self, value: setattr(self.counter, "extra", value),
                      doc="Time added to local time in this run: poll skips, carried overrun.")
    # Seen by the native UART callbacks too.
    _abandoned = property(lambda self: bool(self.counter.abandoned),
                          lambda self, value: setattr(self.counter, "abandoned", int(value)),
                          doc="A watchpoint's hook stopped the instruction: device accesses it makes are dropped.")

    def _sync(self, elapsed: int) -> None:
        """Bring the kernel's clock to local time `elapsed` before a device access; the native
        counter reads go on from there."""
        assert self._keeper is not None
        self._keeper.sync(elapsed)
        self.counter.synced(self._keeper.start + elapsed)

    def _native_counter(self, timer: Any) -> tuple[tuple[int, int] | None, list[tuple[int, int, int, int, int]]]:
        """The timer's counter as a ratio of simulated time (`counter_ratio`) and the encodings of the
        counter registers read natively with it (CNTPCT_EL0, CNTVCT_EL0 at EL1); (None, []) when the
        model gives no ratio. Linux reads CNTVCT_EL0 ~20,000 times per boot (sched_clock), each a Python
        call of ~12 us otherwise. The polling streak (see the module's docstring) is the native
        counter's, shared by both. Every CPU of an engine has a timer of the same frequency."""
        ratio = getattr(timer, "counter_ratio", None)
        if ratio is None:
            return None, []
        return ratio(), [key for key, (owner, name) in self._sysregs.items()
                         if owner is timer and name in ("CNTPCT_EL0", "CNTVCT_EL0")]

    # -- exceptions reported by unicorn -------------------------------------------
    def _on_exception(self, uc: Uc, intno: int, _: Any) -> None:
        pc = self.pc
        # Instructions after the exception in its block never ran. SVC, HVC and SMC retire (the PC
        # is past them); an instruction that traps or faults does not, in either counting mode. A fetch
        # that faults (prefetch abort) is raised while translating, before any hook counts it.
        if intno in (EXCP_SWI, EXCP_HVC, EXCP_SMC, EXCP_PREFETCH_ABORT):
            self.counter.rewind(pc)
        else:
            self.counter.stopped_before(pc)
        if self._step_from is not None and intno in (EXCP_SWI, EXCP_HVC, EXCP_SMC):
            self._ss, self._stepped = False, False   # a stepped SVC/HVC/SMC completes (D2.12.7)
        if intno in (EXCP_HVC, EXCP_SMC):
            x = [self.uc.reg_read(_BASE_REGS[n]) for n in range(4)]
            result = self.psci.call(self.index, *x)
            self.uc.reg_write(_BASE_REGS[0], result.x0)
            if result.stop:
                self._end_run(Stop(0, f"guest called PSCI SYSTEM_{result.stop.upper()}"))
            elif result.off:
                self._end_run(DEVICE_ACCESS)          # the loop sees the CPU offline and parks it
            elif result.suspend and not self.interrupt_pending():
                self._end_run(_IDLE)
            return
        if intno == EXCP_SWI:
            # SVC: the preferred return address is the next instruction, where unicorn's PC already is.
            word = self._instruction(pc - 4)
            imm16 = (word >> 5) & 0xFFFF if word is not None and word & 0xFFE0001F == 0xD4000001 else 0
            self._pending_sync = (Kind.SYNC, pc, esr(EC.SVC64, imm16), None)
        elif intno == EXCP_UDEF:
            # Unicorn reports every trap to EL1 as "undefined": the instruction says which it was.
            self._pending_sync = (Kind.SYNC, pc, undefined_syndrome(self._instruction(pc)), None)
        elif intno == EXCP_BKPT:
            # BRK #imm16: ELR is the BRK itself (Linux's BUG()/WARN() decode the immediate).
            word = self._instruction(pc) or 0
            self._pending_sync = (Kind.SYNC, pc, esr(EC.BRK64, (word >> 5) & 0xFFFF), None)
        elif intno in (EXCP_DATA_ABORT, EXCP_PREFETCH_ABORT):
            # A CpuError raised in a hook stops unicorn, which raises it again from emu_start.
            self._pending_sync = self._mmu_abort(pc, intno == EXCP_PREFETCH_ABORT)
        else:
            raise CpuError(f"unexpected exception {intno} at pc={pc:#x}")
        uc.emu_stop()

    # -- MMU faults ------------------------------------------------------------------
    def _read_phys64(self, address: int) -> int:
        for base, size, host in self._ram:
            if base <= address and address + 8 <= base + size:
                # The region's buffer is pinned for the platform's lifetime; the range is checked above.
                return int.from_bytes(ctypes.string_at(host + address - base, 8), "little")
        return 0                          # a table outside RAM reads as invalid descriptors

    def _translation_state(self) -> tuple[int, TranslationRegs]:
        """PSTATE and the EL1&0 translation registers, in one native call."""
        pstate, *regs = self._engine.translation.read()
        return pstate, TranslationRegs(*regs)

    def _instruction(self, va: int, state: tuple[int, TranslationRegs] | None = None) -> int | None:
        """The instruction word at `va`, translated as the current EL fetches it (`state`: what
        `_translation_state` gives, when the caller has it already)."""
        pstate, regs = state or self._translation_state()
        result = walk(va, regs, self._read_phys64, el0=current_el(pstate) == 0, fetch=True)
        if isinstance(result, Fault):
            return None
        low = self._read_phys64(result.address & ~7)
        return (low >> (8 * (result.address & 4))) & 0xFFFF_FFFF

    def _xreg(self, n: int) -> int:
        return self._engine.register(_BASE_REGS[n]).read()[0]

    def _mmu_abort(self, pc: int, fetch: bool) -> tuple[Kind, int, int, int]:
        """Syndrome and FAR of the abort QEMU's walk raised: decode the access, walk again (mmu.py)."""
        state = self._translation_state()
        pstate, regs = state
        el0 = current_el(pstate) == 0
        if fetch:
            result = walk(pc, regs, self._read_phys64, el0=el0, fetch=True)
            if isinstance(result, Fault):
                return Kind.SYNC, pc, abort_syndrome(pstate, True, False, result.status), pc
            raise CpuError(f"prefetch abort at pc={pc:#x}, but the translation tables map it to {result.address:#x}")
        word = self._instruction(pc, state)
        access = None if word is None else decode_access(word, pc, self._xreg)
        if access is None:
            raise CpuError(f"data abort at pc={pc:#x} from an instruction that is not a load or store "
                           f"({'unreadable' if word is None else f'{word:#010x}'})")
        last = access.address + access.size - 1
        pages = [access.address] + ([last & ~0xFFF] if last >> 12 != access.address >> 12 else [])
        for address in pages:               # an access crossing into a second page may fault there
            result = walk(address, regs, self._read_phys64, el0=el0 or access.unprivileged,
                          write=access.write and not access.cache_maintenance)
            if isinstance(result, Fault):
                status = result.status
                break
        else:
            # Mapped and allowed: what faulted is alignment (exclusives, atomics, Device memory).
            if access.address % min(access.size, 16) == 0:
                raise CpuError(f"data abort at pc={pc:#x} on {access.address:#x}, which the translation tables map")
            address, status = access.address, FSC_ALIGNMENT
        syndrome = abort_syndrome(pstate, False, access.write, status, access.cache_maintenance)
        return Kind.SYNC, pc, syndrome, address

    def _deliver_fault(self, error: UcError) -> bool:
        """Nothing mapped (or ROM written): a synchronous external abort the guest takes (D1.10).
        Unicorn leaves the PC at the faulting instruction; its access gives FAR and WnR."""
        if error.errno not in (UC_ERR_READ_UNMAPPED, UC_ERR_WRITE_UNMAPPED, UC_ERR_FETCH_UNMAPPED, UC_ERR_WRITE_PROT):
            return False
        pc = self.pc
        if error.errno == UC_ERR_FETCH_UNMAPPED:
            address, fetch, write = pc, True, False
        else:
            word = self._instruction(pc)
            access = None if word is None else decode_access(word, pc, self._xreg)
            if access is None:
                return False
            address, fetch, write = access.address, False, access.write
        self._warn_once(address, "nothing mapped: synchronous external abort taken by the guest")
        pstate = self.uc.reg_read(A.UC_ARM64_REG_PSTATE)
        self._enter(Kind.SYNC, pc, abort_syndrome(pstate, fetch, write), address)
        return True

    # -- debugging (cosim.gdb) ----------------------------------------------------------
    def translate(self, va: int) -> int | None:
        """The physical address the guest's EL1&0 translation gives `va` (None: unmapped)."""
        result = walk(va, self._translation_state()[1], self._read_phys64, el0=False)
        return None if isinstance(result, Fault) else result.address

    def insert_breakpoint(self, address: int) -> None:
        self._hooks.add_code(("gdb", address), address, self._on_breakpoint)

    def remove_breakpoint(self, address: int) -> None:
        self._hooks.remove(("gdb", address))

    # gdb's hardware breakpoints (hbreak) are the same hooks: unicorn has no limit to mimic.
    insert_hw_breakpoint = insert_breakpoint
    remove_hw_breakpoint = remove_breakpoint

    def insert_watchpoint(self, kind: WatchKind, address: int, length: int) -> None:
        types = {WatchKind.WRITE: UC_HOOK_MEM_WRITE, WatchKind.READ: UC_HOOK_MEM_READ,
                 WatchKind.ACCESS: UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE}
        self._hooks.add_memory(("gdb", kind, address, length), types[kind], address, address + length - 1,
                               self._on_watch, kind)

    def remove_watchpoint(self, kind: WatchKind, address: int, length: int) -> None:
        self._hooks.remove(("gdb", kind, address, length))

    def single_step(self, on: bool) -> None:
        """While on, every run stops after one instruction (or at an exception vector's first)."""
        self._step_started = False
        self._gdb_step = on
        self._step_hook_needed(on)

    def _step_hook_needed(self, on: bool) -> None:
        """A code hook on every address, shared by gdb's stepi and the guest's software step
        (per-block counting: the counter cannot end a run after one instruction)."""
        on = on or self._gdb_step
        if on and self._step_hook is None:
            self._step_hook = self.uc.hook_add(UC_HOOK_CODE, self._on_step)
            self.uc.ctl_flush_tb()
        elif not on and self._step_hook is not None:
            self.uc.hook_del(self._step_hook)
            self._step_hook = None
            self.uc.ctl_flush_tb()

    def _debug_stop(self, pc: int, stop: DebugStop) -> None:
        if self._stop is None:
            if self._pending_sync is not None:
                self._pending_sync = None       # gdb's stop comes first: the guest's debug event recurs on resume
            else:
                self.counter.stopped_before(pc)
            self._stop = Breakpoint(pc, stop)
            self.uc.emu_stop()

    # Hooks live on the shared engine: a breakpoint or watchpoint set through any CPU stops whichever
    # CPU reaches it (gdb's are global); single step concerns only the CPU it was asked of.
    def _on_breakpoint(self, uc: Uc, address: int, size: int, _: Any) -> None:
        self._engine.current._debug_stop(address, DebugStop(StopKind.BREAKPOINT))

    def _on_step(self, uc: Uc, address: int, size: int, _: Any) -> None:
        if self._engine.current is not self:
            return
        if not self._step_started:
            self._step_started = True       # the instruction to step: let it run
            return
        if self._gdb_step:
            self._debug_stop(address, DebugStop(StopKind.STEP))
        elif self._step_from is not None:   # the guest's software step: one instruction ran
            self.counter.rewind(address)
            self.counter.budget = self.counter.executed     # a stop, not an idle (WFI) return
            uc.emu_stop()

    def _on_watch(self, uc: Uc, access: int, address: int, size: int, value: int, kind: WatchKind) -> None:
        if self._engine.current is not self:
            self._engine.current._on_watch(uc, access, address, size, value, kind)
            return
        if self._stop is not None:
            return
        if access == UC_MEM_WRITE:
            self._keep_old_bytes(address, size)
        self._abandoned = True
        self._debug_stop(self.pc, DebugStop(StopKind.WATCH, address, kind))

    def _keep_old_bytes(self, address: int, size: int) -> None:
        """A store stopped by a watchpoint's hook has already written memory: remember what to put back."""
        self._undo.extend(self._old_bytes(address, size))

    def _old_bytes(self, address: int, size: int) -> list[tuple[int, bytes]]:
        """The RAM bytes a store to `address` is about to overwrite (none for a device)."""
        physical = self.translate(address)
        if physical is not None and any(b <= physical and physical + size <= b + n for b, n, _ in self._ram):
            return [(physical, bytes(self.uc.mem_read(physical, size)))]
        return []

    # -- the guest's self-hosted debug (debug.py) ----------------------------------------
    def _debug_pass(self) -> int:
        """Before a pass, while the guest uses its debug registers: hooks follow the breakpoints and
        watchpoints it enabled, and software step (D2.12) shapes the pass: the Software Step exception
        is taken now (active-pending), or the pass runs one instruction (active-not-pending). Returns
        the PSTATE bits to watch: those whose clearing may enable software step."""
        if self.debug.changed:
            self._sync_debug_hooks()
        self._step_from = None
        pstate = self.uc.reg_read(A.UC_ARM64_REG_PSTATE)
        marked, self._marked = self._marked, False
        marked_now = bool(pstate & PSTATE_SS)
        if marked_now:              # drop the marker: unicorn's PSTATE.SS is 0 otherwise
            pstate &= ~PSTATE_SS
            self.uc.reg_write(A.UC_ARM64_REG_PSTATE, pstate)
        if not self.debug.step_enabled(pstate):
            self._ss, self._step_off, self._stepped = False, True, None
            self._step_hook_needed(False)
            watch = self.debug.step_watch(pstate)
            if watch:
                # A marker in unicorn's PSTATE.SS (which QEMU ignores, its own step being off): an ERET
                # clears it, an MSR to DAIF does not. That tells them apart once step becomes enabled.
                self.uc.reg_write(A.UC_ARM64_REG_PSTATE, pstate | PSTATE_SS)
                self._marked = True
            return watch
        pc = self.pc
        if self._step_off:
            # Enabled since the last pass. By an ERET (the marker gone, PC = ELR_EL1, PSTATE = SPSR_EL1),
            # which sets PSTATE.SS from SPSR_EL1.SS; else by unmasking PSTATE.D or a register write, which
            # leave it 0 (D2.12.4).
            self._step_off = False
            spsr = self.uc.cpr_read(*SPSR_EL1)
            if (marked and not marked_now and pc == self.uc.reg_read(A.UC_ARM64_REG_ELR_EL1)
                    and not (pstate ^ spsr) & _ERET_BITS):
                self._ss = bool(spsr & PSTATE_SS)
        if not self._ss:                    # active-pending: the exception comes before any instruction
            self._enter(Kind.SYNC, pc, step_syndrome(pstate, self._stepped))
            self._step_started = self._gdb_step     # gdb's stepi stops at the vector, as for any exception
            return self._debug_pass()
        self._step_from, self._step_word = pc, self._instruction(pc)
        self._step_started = False
        self._step_hook_needed(self.counter.per_block)
        return 0

    def _step_done(self) -> None:
        """After a pass that stepped an instruction: once it retired (no exception instead), PSTATE.SS
        is 0 (active-pending), or for an ERET, SPSR_EL1.SS where step stays enabled (D2.12.3)."""
        self._step_from = None
        if self._pending_sync is not None or self.counter.executed == 0 or not self._ss:
            return
        word = self._step_word
        pstate = self.uc.reg_read(A.UC_ARM64_REG_PSTATE)
        self._ss = (word == ERET and bool(self.uc.cpr_read(*SPSR_EL1) & PSTATE_SS)
                    and self.debug.step_enabled(pstate))
        self._stepped = is_load_exclusive(word)

    def _sync_debug_hooks(self) -> None:
        """Code hooks on the enabled breakpoints' addresses, memory hooks on the watched ranges (from
        15 bytes below: a hook sees an access by its first byte); none when none is enabled."""
        self.debug.changed = False
        wanted = {("bp", address) for address in self.debug.breakpoint_addresses()}
        wanted |= {("wp", first, last) for first, last in self.debug.watched_ranges()}
        for key in self._hooks.keys():
            if key[0] in ("bp", "wp") and key not in wanted:
                self._hooks.remove(key)
        for key in wanted:
            if key[0] == "bp":
                self._hooks.add_code(key, key[1], self._on_guest_breakpoint)
            else:
                self._hooks.add_memory(key, UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, max(0, key[1] - 15), key[2],
                                       self._on_guest_watch)

    # The guest's breakpoints and watchpoints are its CPU's (its debug registers): their hooks, on the
    # shared engine, act only while that CPU runs.
    def _on_guest_breakpoint(self, uc: Uc, address: int, size: int, _: Any) -> None:
        if self._engine.current is not self or self._stop is not None or self._pending_sync is not None:
            return
        if self._step_from is not None and self._step_started:
            return                          # past the stepped instruction: the step exception comes first
        pstate = self.uc.reg_read(A.UC_ARM64_REG_PSTATE)
        if self.debug.breakpoint_hit(address, pstate):
            # Taken before the instruction: ELR_EL1 is its address (D2.8.6).
            self._pending_sync = (Kind.SYNC, address, breakpoint_syndrome(pstate), None)
            self.counter.stopped_before(address)
            uc.emu_stop()

    def _on_guest_watch(self, uc: Uc, access: int, address: int, size: int, value: int, _: Any) -> None:
        if self._engine.current is not self or self._stop is not None or self._pending_sync is not None:
            return
        pstate = self.uc.reg_read(A.UC_ARM64_REG_PSTATE)
        write = access == UC_MEM_WRITE
        unprivileged = False
        if current_el(pstate) == 1:         # LDTR/STTR match as EL0 accesses (decoded only when watched)
            word = self._instruction(self.pc)
            decoded = None if word is None else decode_access(word, self.pc, self._xreg)
            unprivileged = decoded is not None and decoded.unprivileged
        far = self.debug.watchpoint_hit(address, size, write, pstate, unprivileged)
        pc = self.pc
        instruction = (pc, self._done + self.counter.executed)
        if far is None:
            if write:                       # kept until the instruction's next access, in case that one hits
                near = self._near[1] if self._near[0] == instruction else []
                self._near = (instruction, near + self._old_bytes(address, size))
            return
        # Synchronous: the instruction's accesses do not happen and ELR_EL1 is the instruction (D2.9.6).
        if self._near[0] == instruction:
            self._undo.extend(self._near[1])
        if write:
            self._keep_old_bytes(address, size)
        self._abandoned = True
        self._pending_sync = (Kind.SYNC, pc, watchpoint_syndrome(pstate, write), far)
        self.counter.stopped_before(pc)
        uc.emu_stop()

    def _undo_store(self) -> None:
        for physical, old in reversed(self._undo):      # the earliest old bytes last
            self.uc.mem_write(physical, old)
        self._undo = []

    def close(self) -> None:
        self._keeper = None
        self._engine.close()


def _physical_invalidation() -> Any:
    """uc_cosim_invalidate_physical of cosim's patched unicorn (cosim.patched_unicorn), or None."""
    from unicorn.unicorn_py3.unicorn import uclib

    invalidate = getattr(uclib, "uc_cosim_invalidate_physical", None)
    if invalidate is not None:
        invalidate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]
        invalidate.restype = ctypes.c_int
    return invalidate


class _Engine:
    """One unicorn engine shared by the CPUs of a machine, holding one CPU's state at a time.

    Each CPU keeps its registers (system registers and the exclusive monitor included) in a
    saved context; `select` switches the engine to another CPU between runs: its context is
    restored and the TLB flushed (the CPUs' translation tables differ). Memory, translated
    code and the native hooks are shared, so a CPU sees code another one wrote, and a store
    between another CPU's LDXR and STXR makes its STXR fail (QEMU compares the value). The
    hooks call whichever CPU is current.
    """

    def __init__(self, first: UnicornArm64Cpu, memory: list[MemoryRegion], mmio: Iterable[tuple[int, int]],
                 per_block: bool, sysregs: set[tuple[int, int, int, int, int]], bus: Any, pl011s: dict[int, Any],
                 native_counter: tuple[tuple[int, int] | None, list[tuple[int, int, int, int, int]]]) -> None:
        self.current = first
        self.running = False
        self.cpus: list[UnicornArm64Cpu] = []
        self._contexts: dict[UnicornArm64Cpu, Any] = {}
        self.uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        # QEMU's 4 KiB target pages, not unicorn 2's 1 KiB default: a quarter of the TLB fills,
        # longer translation blocks (a block never crosses a page), fewer TB lookups.
        self.uc.ctl_set_page_size(4096)
        self.uc.cpr_write(*SCR_EL3, SCR_EL3_VALUE)
        self.uc.cpr_write(*HCR_EL2, HCR_EL2_RW)
        for base, size, host, read_only in memory:
            self.uc.mem_map_ptr(base, size, UC_PROT_READ | UC_PROT_EXEC if read_only else UC_PROT_ALL, host)
        self.counter = NativeCounter(self.uc, per_block=per_block)
        mmio = list(mmio)
        # The PL011s' UARTFR reads and UARTDR writes are served without Python (Linux's console:
        # ~20,000 of each per boot, ~4-5 us each through Python); the UART is one shared device.
        self.uarts = [NativeUart(self.uc, self.counter, base, size, pl011s[base], bus,
                                 partial(self._mmio_read, self.uc, base=base),
                                 partial(self._mmio_write, self.uc, base=base))
                      for base, size in mmio if base in pl011s]
        for base, size in _whole_pages([m for m in mmio if m[0] not in pl011s], self.uc.ctl_get_page_size()):
            self.uc.mmio_map(base, size, self._mmio_read, base, self._mmio_write, base)
        self.uc.hook_add(UC_HOOK_INTR, self._on_exception)
        # Registers the backend's Python paths read or write together: one native call per batch.
        self.pc_reg = RegisterBatch(self.uc, [A.UC_ARM64_REG_PC])
        self.pstate_reg = RegisterBatch(self.uc, [A.UC_ARM64_REG_PSTATE])
        self.translation = RegisterBatch(self.uc, [A.UC_ARM64_REG_PSTATE, SCTLR_EL1, TCR_EL1,
                                                   A.UC_ARM64_REG_TTBR0_EL1, A.UC_ARM64_REG_TTBR1_EL1])
        self.entry_reads = RegisterBatch(self.uc, [A.UC_ARM64_REG_PSTATE, A.UC_ARM64_REG_VBAR_EL1, A.UC_ARM64_REG_SP,
                                                   A.UC_ARM64_REG_SP_EL0, A.UC_ARM64_REG_SP_EL1, A.UC_ARM64_REG_ESR_EL1,
                                                   A.UC_ARM64_REG_FAR_EL1, SCTLR_EL1])
        # In the order single writes took before: the old SP selection's bank, the EL1 registers,
        # PSTATE then SCTLR_EL1 (rebuilding the EL flags), the new SP, the vector.
        self.entry_writes = RegisterBatch(self.uc, [A.UC_ARM64_REG_SP_EL0, A.UC_ARM64_REG_SP_EL1, SPSR_EL1,
                                                    A.UC_ARM64_REG_ELR_EL1, A.UC_ARM64_REG_ESR_EL1,
                                                    A.UC_ARM64_REG_FAR_EL1, A.UC_ARM64_REG_PSTATE, SCTLR_EL1,
                                                    A.UC_ARM64_REG_SP, A.UC_ARM64_REG_PC])
        self._single: dict[int, RegisterBatch] = {}
        # Memory that something other than the CPUs writes (device DMA, a debugger, a test): unicorn
        # notices the CPUs' own stores to translated code, not these (see drop_stale_code).
        self._rams = [(m.base, m.target) for m in bus.mappings if isinstance(m.target, Memory)]
        self._ram_seen: list[int] | None = None
        self._invalidate = _physical_invalidation()
        ratio, counters = native_counter
        if ratio is not None:
            self.counter.serve_counter(*ratio)
        # No UC_HOOK_MEM_* hook: any memory hook puts every guest access on unicorn's slow
        # path (Linux boots ~40% slower); a bad access is decoded from the instruction instead.
        # Only the models' registers leave unicorn; the filter runs natively for all others.
        self._filters = [NativeSysregFilter(self.uc, A.UC_ARM64_INS_MRS, sysregs, self._on_mrs, self.counter, counters),
                         NativeSysregFilter(self.uc, A.UC_ARM64_INS_MSR, sysregs, self._on_msr)]

    def add(self, cpu: UnicornArm64Cpu) -> None:
        """A new CPU; it becomes current, so its constructor sets its registers. CPUs are added
        before any runs: a second one starts as a copy of the first one's (reset) state."""
        if self.cpus:
            # Contexts exist only from the second CPU on: a one-CPU engine is left as it was.
            self._contexts[self.current] = self.uc.context_save()
        self.cpus.append(cpu)
        self.current = cpu

    def drop_stale_code(self) -> None:
        """Before a pass: drop the translations of code that something other than the CPUs wrote
        since the last one (unicorn only sees its own stores). Such code runs the new version, as
        it would after the guest's IC IVAU/IALLU on hardware (which unicorn executes as a no-op).
        On cosim's patched unicorn only the written ranges go (uc_cosim_invalidate_physical); on
        the released one, or after more writes than a Memory remembers, every translation does,
        and the guest's hot code is translated again: docs/cpu-arm64.md gives what each costs
        virtio-blk. A few integer reads per pass when nothing was written."""
        seen = self._ram_seen
        if seen is None:                        # the first pass: nothing is translated yet
            self._ram_seen = [ram.writes for _, ram in self._rams]
            return
        for index, (base, ram) in enumerate(self._rams):
            writes = ram.writes
            if writes == seen[index]:
                continue
            ranges = ram.written_since(seen[index]) if self._invalidate is not None else None
            if ranges is None:
                self.uc.ctl_flush_tb()
                self._ram_seen = [ram.writes for _, ram in self._rams]
                return
            for offset, length in ranges:
                if self._invalidate(self.uc._uch, base + offset, length) != 0:
                    raise CpuError(f"unicorn refused to drop the code at {base + offset:#x} (+{length:#x})")
            seen[index] = writes

    def register(self, reg: int) -> RegisterBatch:
        """A batch of the one register `reg` (an X register an MRS writes, ...), made on first use."""
        batch = self._single.get(reg)
        if batch is None:
            batch = self._single[reg] = RegisterBatch(self.uc, [reg])
        return batch

    def select(self, cpu: UnicornArm64Cpu) -> None:
        if self.current is cpu:
            return
        if self.running:
            raise CpuError(f"CPU {cpu.index}'s state was asked for while CPU {self.current.index} runs")
        tables = self.translation.read()[1:]
        saved = self._contexts.get(self.current)
        if saved is None:
            self._contexts[self.current] = self.uc.context_save()
        else:
            self.uc.context_update(saved)
        self.uc.context_restore(self._contexts[cpu])
        # The TLB and the jump cache (by virtual address) hold the outgoing CPU's translations: they
        # go unless the incoming CPU translates through the same tables the same way (SCTLR_EL1,
        # TCR_EL1, TTBR0_EL1 with its ASID, TTBR1_EL1), as Linux's CPUs do in the kernel. Page table
        # changes are no reason: Linux broadcasts its TLBIs, which flush this one shared TLB.
        if self.translation.read()[1:] != tables:
            self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)
        self.current = cpu

    # The hooks: the CPU being run is the one they concern.
    def _mmio_read(self, uc: Uc, offset: int, size: int, base: int) -> int:
        return self.current._mmio_read(uc, offset, size, base)

    def _mmio_write(self, uc: Uc, offset: int, size: int, value: int, base: int) -> None:
        self.current._mmio_write(uc, offset, size, value, base)

    def _on_exception(self, uc: Uc, intno: int, data: Any) -> None:
        self.current._on_exception(uc, intno, data)

    def _on_mrs(self, reg: int, cp: Any) -> int:
        return self.current._on_mrs(reg, cp)

    def _on_msr(self, reg: int, cp: Any) -> int:
        return self.current._on_msr(reg, cp)

    def close(self) -> None:
        for hook in self._filters:
            hook.close()
