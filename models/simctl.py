"""The sim-control device: how a guest talks to the simulation itself.

A cosim-specific device (no hardware manual): a test guest prints to a log,
reports test results, reads simulated time and ends the run with a status,
with plain 32-bit stores. The register map is fixed by docs/sim-control.md and
is the same on an MMIO bus (virt: 0x090f_0000) and on the x86 I/O-port bus
(pc: ports 0x0500-0x051F).
"""

from __future__ import annotations

from typing import ClassVar

from cosim import NS, Access, PlatformError, Reg, RegisterDevice, Simulation
from cosim.chardev import CharBackend, LineBackend

__all__ = ["SimControl", "SIMCTL_ID"]

SIMCTL_ID = 0x4D49_5343          # 'CSIM' read as a little-endian word
_NARROW = (1, 2, 4)              # PUTC and EXIT accept x86 `outb`/`outw`


class SimControl(RegisterDevice):
    """Sim-control: guest log, test results, simulated time and exit, in six 32-bit registers.

    | offset | register | meaning |
    |---|---|---|
    | 0x00 | SIMCTL_ID | reads 0x4D495343 ('CSIM') |
    | 0x04 | SIMCTL_PUTC | low byte appended to the sim-control log (1, 2 or 4-byte writes) |
    | 0x08 | SIMCTL_EXIT | ends the simulation with exit status = value (1, 2 or 4-byte writes) |
    | 0x0C | SIMCTL_RESULT | reports a test result: 0 = pass, else a fail code; listed in the run summary |
    | 0x10 | SIMCTL_TIME_LO | simulated time in ns, low 32 bits; reading it latches the high half |
    | 0x14 | SIMCTL_TIME_HI | high 32 bits of the time latched by the last SIMCTL_TIME_LO read |

    Guest snippets for Arm64 and x86: docs/sim-control.md.
    Properties:
      log: a CharBackend for SIMCTL_PUTC output (default: line-buffered to stdout, prefixed by the device name).
    """

    model: ClassVar[str] = "sim-control"
    size: ClassVar[int] = 0x1000
    registers = (
        Reg("SIMCTL_ID", 0x00, access=Access.RO, reset=SIMCTL_ID),
        Reg("SIMCTL_PUTC", 0x04, access=Access.WO, sizes=_NARROW, doc="log one byte"),
        Reg("SIMCTL_EXIT", 0x08, access=Access.WO, sizes=_NARROW, doc="end the run with this status"),
        Reg("SIMCTL_RESULT", 0x0C, access=Access.WO, doc="0 = pass, else fail code"),
        Reg("SIMCTL_TIME_LO", 0x10, access=Access.RO, doc="simulated ns, low half; latches the high half"),
        Reg("SIMCTL_TIME_HI", 0x14, access=Access.RO, doc="high half latched by SIMCTL_TIME_LO"),
    )

    def __init__(self, name: str, *, log: CharBackend | None = None) -> None:
        super().__init__(name)
        self.log: CharBackend = log or LineBackend(prefix=f"[{name}] ")
        self.results: list[int] = []       # in the order reported
        self._sim: Simulation | None = None

    def attach(self, clock) -> None:  # type: ignore[no-untyped-def]
        if not isinstance(clock, Simulation):
            raise PlatformError(f"{self.name}: sim-control needs the full Simulation (it ends runs), not just a clock")
        super().attach(clock)
        if self._sim is not clock:
            self._sim = clock
            self.log.attach(clock)
            clock.add_summary(self.summary)

    def reset(self) -> None:
        self.results.clear()
        super().reset()

    # -- registers ---------------------------------------------------------
    def write_SIMCTL_PUTC(self, value: int) -> None:
        self.log.write(bytes((value & 0xFF,)))

    def write_SIMCTL_EXIT(self, value: int) -> None:
        assert self._sim is not None
        self._sim.request_stop(value, f"guest wrote {value:#x} to {self.name} SIMCTL_EXIT")

    def write_SIMCTL_RESULT(self, value: int) -> None:
        self.results.append(value)

    def read_SIMCTL_TIME_LO(self) -> int:
        nanoseconds = self.clock.now // NS
        self.regs.SIMCTL_TIME_HI = (nanoseconds >> 32) & 0xFFFF_FFFF
        return nanoseconds & 0xFFFF_FFFF

    # -- reporting ---------------------------------------------------------
    @property
    def passed(self) -> bool:
        """True when at least one result was reported and every one passed."""
        return bool(self.results) and not any(self.results)

    def summary(self) -> dict[str, str]:
        if not self.results:
            return {}
        failed = [(i, code) for i, code in enumerate(self.results, 1) if code]
        text = f"{len(self.results) - len(failed)} passed, {len(failed)} failed"
        if failed:
            text += " (" + ", ".join(f"#{i}: code {code:#x}" for i, code in failed) + ")"
        return {f"{self.name} test results": text}

