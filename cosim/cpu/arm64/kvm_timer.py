"""The generic timer when KVM runs it in the host kernel, as the simulation sees it.

Under KVM the guest reads CNTVCT and programs CNTV_* without trapping: the
comparators live in the kernel. Two things still belong to the simulation:

- **Output levels.** With no in-kernel GIC, KVM reports the timers' output
  levels in `kvm_run.s.regs.device_irq_level` (KVM_CAP_ARM_USER_IRQ) and exits
  whenever one changes; `levels()` drives `cntv`/`cntp` (and the guest PMU's
  `pmu`) from that word, so the GIC model's PPIs follow the kernel's devices.
- **Expiry while idle.** When the guest idles (the WFx exit), simulated time
  jumps to the next event: the kernel's timer must be one. `plan()` takes the
  comparators read from KVM and schedules, for each enabled and unmasked one,
  a call at the simulated instant its condition CVAL <= count becomes true
  (Arm ARM D11.2.4), which raises its output; the backend moves the guest's
  virtual counter on by the time skipped, so on resuming the kernel agrees.
  A comparator whose condition already holds while its output still reads low
  fires at once: KVM updates `device_irq_level` only on its way out of
  `KVM_RUN`, so a timer that expired during the exit itself is not in it yet.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import platform
import struct
from dataclasses import dataclass
from typing import ClassVar

from ..._device import Device
from ..._kernel import ScheduledCall
from ..._signal import Signal
from ..._time import SEC
from ...kvm._arm64 import DeviceIrq

__all__ = ["KvmGenericTimer", "Comparator", "host_counter_frequency", "CTL_ENABLE", "CTL_IMASK", "CTL_ISTATUS"]

CTL_ENABLE, CTL_IMASK, CTL_ISTATUS = 1 << 0, 1 << 1, 1 << 2
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Comparator:
    """One timer's registers as KVM reported them: CNTx_CTL_EL0, CNTx_CVAL_EL0 and its counter."""

    line: str         # "cntv" or "cntp"
    ctl: int
    cval: int
    count: int
    # True: the counter resumes at the simulation's count (`count_at`) unless it is ahead of it, so it reaches
    # CVAL at `time_of(cval)`; False (the physical counter, host time): it runs on from `count`.
    aligned: bool = False

    @property
    def armed(self) -> bool:
        """Enabled and unmasked: its output is high once the counter reaches CVAL (now, or later)."""
        return self.ctl & (CTL_ENABLE | CTL_IMASK) == CTL_ENABLE

    def ticks_left(self) -> int:
        """Counter ticks until CVAL <= count holds (an unsigned 64-bit compare, D11.2.4); 0 when it already does."""
        return max(0, (self.cval & _MASK64) - (self.count & _MASK64))


class KvmGenericTimer(Device):
    """The Arm generic timer of a KVM vCPU (Armv8-A ARM D11): outputs driven from the host kernel's state.

    Interrupts:
      cntv: virtual timer output, level-sensitive; PPI 27 by convention.
      cntp: physical timer output, level-sensitive; PPI 30 by convention.
      pmu: the guest PMU's overflow interrupt, also reported by KVM beside the timers; PPI 23 on virt.
    Properties:
      frequency_hz: the host's CNTFRQ_EL0, which KVM guests read (set by the backend).
    """

    model: ClassVar[str] = "kvm-generic-timer"

    def __init__(self, name: str, *, frequency_hz: int = 0) -> None:
        super().__init__(name)
        self.frequency_hz = frequency_hz
        self.cntv = self.output("cntv")
        self.cntp = self.output("cntp")
        self.pmu = self.output("pmu")
        self._calls: list[ScheduledCall] = []
        self._fired = False

    def count_at(self, time: int) -> int:
        """The counter value at simulated time `time` (counter 0 at time 0, as the software model)."""
        return time * self.frequency_hz // SEC

    def time_of(self, count: int) -> int:
        """First simulated time at which the counter reads `count` (rounded up)."""
        return -((-count * SEC) // self.frequency_hz)

    def levels(self, device_irq_level: int) -> None:
        """Drive the outputs from kvm_run.s.regs.device_irq_level."""
        self.cntv.set(bool(device_irq_level & DeviceIrq.EL1_VTIMER))
        self.cntp.set(bool(device_irq_level & DeviceIrq.EL1_PTIMER))
        self.pmu.set(bool(device_irq_level & DeviceIrq.PMU))

    def plan(self, comparators: list[Comparator], at: int) -> None:
        """The guest idles from simulated time `at`, when KVM reported `comparators`: schedule each armed one's expiry."""
        self.cancel()
        if self.frequency_hz <= 0:
            raise ValueError(f"{self.name}: counter frequency unknown (frequency_hz={self.frequency_hz})")
        clock = self.clock
        for comparator in comparators:
            line = self.cntv if comparator.line == "cntv" else self.cntp
            # Already due with the output high: the interrupt is the GIC's business now, nothing to plan
            # (planning it again would wake the guest at once, for ever, while it keeps the PPI disabled).
            if comparator.armed and not (comparator.ticks_left() == 0 and line.level):
                if comparator.aligned and comparator.ticks_left():
                    due = max(self.time_of(comparator.cval), at, clock.now)
                else:
                    due = max(at + self.time_of(comparator.ticks_left()), clock.now)
                self._calls.append(clock.schedule(due - clock.now, functools.partial(self._expire, line)))

    def _expire(self, line: Signal) -> None:
        self._fired = True
        line.set(True)

    def cancel(self) -> bool:
        """The guest runs again: the kernel's own timer takes over. True when a planned expiry fired."""
        for call in self._calls:
            call.cancel()
        self._calls.clear()
        fired, self._fired = self._fired, False
        return fired

    def reset(self) -> None:
        self.cancel()
        for line in (self.cntv, self.cntp, self.pmu):
            line.set(False)


# MRS X0, CNTFRQ_EL0; RET — EL0 may read CNTFRQ_EL0 (Linux sets CNTKCTL_EL1 so, D11.2.2).
_CNTFRQ_CODE = struct.pack("<II", 0xD53BE000, 0xD65F03C0)


@functools.cache
def host_counter_frequency() -> int:
    """CNTFRQ_EL0 of this Arm64 host: the frequency of the counter KVM guests read."""
    if platform.machine() != "aarch64":
        raise OSError(f"the Arm generic timer frequency is only readable on an Arm64 host, not {platform.machine()}")
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(_CNTFRQ_CODE)
    pin = ctypes.c_char.from_buffer(page)
    start = ctypes.addressof(pin)
    # Arm64 instruction caches need not see data writes: clean them to the point of unification.
    ctypes.CDLL("libgcc_s.so.1").__clear_cache(ctypes.c_void_p(start), ctypes.c_void_p(start + len(_CNTFRQ_CODE)))
    # Safe: the page holds exactly _CNTFRQ_CODE, a leaf function returning a 64-bit value in x0 (AAPCS64).
    read = ctypes.CFUNCTYPE(ctypes.c_uint64)(start)
    try:
        return int(read())
    finally:
        del read, pin
        page.close()
