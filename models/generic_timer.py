"""The Arm generic timer of one CPU (Armv8-A ARM, chapter D11), served as system registers.

Not a bus device: a CPU backend calls `read_sysreg` / `write_sysreg` when the
guest executes MRS/MSR on a timer register. The counter is simulated time
times CNTFRQ, computed exactly on each read; each timer schedules one call, at
the instant its condition becomes true (D11.2.4), re-planned on every write.
"""

from __future__ import annotations

from typing import ClassVar

from cosim import SEC, Device, Frequency, MHz, PlatformError, ScheduledCall, Signal

__all__ = ["GenericTimer", "SYSREG_NAMES"]

CTL_ENABLE, CTL_IMASK, CTL_ISTATUS = 1 << 0, 1 << 1, 1 << 2
_MASK64 = (1 << 64) - 1

# (op0, op1, CRn, CRm, op2) -> register name, for backends that see encodings.
SYSREG_NAMES: dict[tuple[int, int, int, int, int], str] = {
    (3, 3, 14, 0, 0): "CNTFRQ_EL0",
    (3, 3, 14, 0, 1): "CNTPCT_EL0",
    (3, 3, 14, 0, 2): "CNTVCT_EL0",
    (3, 3, 14, 2, 0): "CNTP_TVAL_EL0",
    (3, 3, 14, 2, 1): "CNTP_CTL_EL0",
    (3, 3, 14, 2, 2): "CNTP_CVAL_EL0",
    (3, 3, 14, 3, 0): "CNTV_TVAL_EL0",
    (3, 3, 14, 3, 1): "CNTV_CTL_EL0",
    (3, 3, 14, 3, 2): "CNTV_CVAL_EL0",
    (3, 0, 14, 1, 0): "CNTKCTL_EL1",
}


class _Timer:
    """One comparator (physical or virtual): CTL, CVAL and its output line."""

    def __init__(self, owner: "GenericTimer", line: Signal) -> None:
        self.owner = owner
        self.line = line
        self.ctl = 0
        self.cval = 0
        self._call: ScheduledCall | None = None

    def istatus(self, count: int) -> bool:
        return count >= self.cval          # D11.2.4: condition met when CVAL <= counter

    def read_ctl(self) -> int:
        status = CTL_ISTATUS if self.istatus(self.owner.count()) else 0
        return (self.ctl & (CTL_ENABLE | CTL_IMASK)) | status

    def tval(self) -> int:
        value = (self.cval - self.owner.count()) & 0xFFFF_FFFF
        return value                          # a 32-bit signed view, returned as its bit pattern

    def set_tval(self, value: int) -> None:
        # TVAL writes set CVAL = counter + sign-extended TVAL (D11.2.4).
        signed = value & 0xFFFF_FFFF
        if signed & 0x8000_0000:
            signed -= 1 << 32
        self.cval = (self.owner.count() + signed) & _MASK64
        self.update()

    def update(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None
        enabled = bool(self.ctl & CTL_ENABLE)
        count = self.owner.count()
        self.line.set(enabled and not self.ctl & CTL_IMASK and self.istatus(count))
        if enabled and not self.istatus(count):
            self._call = self.owner.clock.schedule(self.owner.time_of(self.cval) - self.owner.clock.now, self.update)

    def reset(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None
        self.ctl, self.cval = 0, 0
        self.line.set(False)


class GenericTimer(Device):
    """Arm generic timer of one CPU (Armv8-A ARM D11): CNTPCT/CNTVCT and the EL1 physical and virtual timers.

    Interrupts:
      cntp: physical timer output, level-sensitive; PPI 30 by convention.
      cntv: virtual timer output, level-sensitive; PPI 27 by convention.
    Properties:
      frequency: CNTFRQ_EL0, the counter frequency (default 62.5 MHz, as QEMU's virt; a Frequency or text).
    """

    model: ClassVar[str] = "generic-timer"

    def __init__(self, name: str, *, frequency: Frequency | str = MHz(62.5)) -> None:
        super().__init__(name)
        self.frequency = self.frequency_of(frequency)
        if self.frequency.div != 1:
            raise PlatformError(f"{name}: CNTFRQ_EL0 holds whole Hz, not {self.frequency}")
        self.cntp = self.output("cntp")
        self.cntv = self.output("cntv")
        self.physical = _Timer(self, self.cntp)
        self.virtual = _Timer(self, self.cntv)   # CNTVOFF_EL2 is 0: no EL2 here
        self.cntkctl = 0

    def count(self) -> int:
        return self.frequency.cycles(self.clock.now)

    def counter_ratio(self) -> tuple[int, int]:
        """`count()` as now * numerator // denominator: a CPU backend that reads the counter
        without calling the model (unicorn's native CNTVCT_EL0) computes exactly this."""
        return self.frequency.hz, SEC * self.frequency.div

    def time_of(self, count: int) -> int:
        """First simulated time at which the counter reads `count` (rounded up)."""
        return self.frequency.duration(count)

    def reset(self) -> None:
        self.physical.reset()
        self.virtual.reset()
        self.cntkctl = 0

    def el0_allowed(self, name: str, read: bool) -> bool:
        """What CNTKCTL_EL1 lets EL0 touch (D11.2, EL0PCTEN, EL0VCTEN, EL0PTEN, EL0VTEN); the rest
        traps to EL1. Linux's vDSO relies on EL0VCTEN being honoured."""
        kctl = self.cntkctl
        allowed = {"CNTPCT_EL0": kctl & 1, "CNTVCT_EL0": kctl & 2, "CNTFRQ_EL0": kctl & 3}.get(name)
        if allowed is None:
            allowed = kctl >> 9 & 1 if name.startswith("CNTP_") else kctl >> 8 & 1 if name.startswith("CNTV_") else 0
        return bool(allowed)

    def read_sysreg(self, name: str) -> int:
        timer = self.physical if name.startswith("CNTP_") else self.virtual
        match name:
            case "CNTFRQ_EL0":
                return self.frequency.hz
            case "CNTPCT_EL0" | "CNTVCT_EL0":
                return self.count()
            case "CNTP_CTL_EL0" | "CNTV_CTL_EL0":
                return timer.read_ctl()
            case "CNTP_CVAL_EL0" | "CNTV_CVAL_EL0":
                return timer.cval
            case "CNTP_TVAL_EL0" | "CNTV_TVAL_EL0":
                return timer.tval()
            case "CNTKCTL_EL1":
                return self.cntkctl
        raise KeyError(f"{self.name}: no timer register {name}")

    def write_sysreg(self, name: str, value: int) -> None:
        timer = self.physical if name.startswith("CNTP_") else self.virtual
        match name:
            case "CNTP_CTL_EL0" | "CNTV_CTL_EL0":
                timer.ctl = value & (CTL_ENABLE | CTL_IMASK)   # ISTATUS is read-only
                timer.update()
            case "CNTP_CVAL_EL0" | "CNTV_CVAL_EL0":
                timer.cval = value & _MASK64
                timer.update()
            case "CNTP_TVAL_EL0" | "CNTV_TVAL_EL0":
                timer.set_tval(value)
            case "CNTKCTL_EL1":
                self.cntkctl = value & 0x3FF
            case "CNTFRQ_EL0" | "CNTPCT_EL0" | "CNTVCT_EL0":
                pass  # CNTFRQ is writable only at the highest EL; counters are read-only
            case _:
                raise KeyError(f"{self.name}: no timer register {name}")
