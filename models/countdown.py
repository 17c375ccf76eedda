"""The example model of docs/writing-models.md (kept identical by tests/test_docs.py)."""

from cosim import Access, Field, Frequency, Reg, RegisterDevice


class Countdown(RegisterDevice):
    """A down-counter at 1 MHz that raises `irq` when it reaches zero.

    Interrupts:
      irq: high from the zero crossing until software writes INTCLR.
    Properties:
      frequency_hz: the counter clock (default 1 MHz).
    """

    model = "countdown"
    size = 0x10
    registers = (
        Reg("LOAD", 0x0, doc="start value; writing it (re)starts the count"),
        Reg("VALUE", 0x4, access=Access.RO, doc="current count, computed from time"),
        Reg("CTRL", 0x8, fields=(Field("EN", 0), Field("IE", 1))),
        Reg("INTCLR", 0xC, access=Access.WO),
    )

    def __init__(self, name: str, *, frequency_hz: int = 1_000_000) -> None:
        super().__init__(name)
        self.freq = Frequency(frequency_hz)
        self.irq = self.output("irq")
        self._started = 0            # simulated time the count (re)started
        self._expiry = None          # the one scheduled call, if running
        self._fired = False

    # -- hooks: named after the registers ----------------------------------
    def read_VALUE(self) -> int:
        if not self._running():
            return 0 if self._fired else self.regs.LOAD
        elapsed = self.freq.cycles(self.clock.now - self._started)
        return max(self.regs.LOAD - elapsed, 0)

    def write_LOAD(self, value: int) -> None:
        self.regs.LOAD = value
        self._restart()

    def write_CTRL(self, value: int) -> None:
        was_running = self._running()
        self.regs.CTRL = value & 0b11
        if self._running() and not was_running:
            self._restart()
        elif not self._running() and self._expiry:
            self._expiry.cancel()

    def write_INTCLR(self, value: int) -> None:
        self._fired = False

    # -- behaviour ---------------------------------------------------------
    def _running(self) -> bool:
        return bool(self.regs.CTRL & 1)

    def _restart(self) -> None:
        if self._expiry:
            self._expiry.cancel()     # lazy: one pending call, replaced on reprogramming
        self._fired = False
        self._started = self.clock.now
        if self._running():
            self._expiry = self.clock.schedule(self.freq.duration(self.regs.LOAD), self._zero)

    def _zero(self) -> None:
        self._fired = True
        self.regs.CTRL &= ~1          # one-shot: stops at zero
        self.update()

    def update(self) -> None:
        # The one place outputs are recomputed; the register bank calls it after every write.
        self.irq.set(self._fired and bool(self.regs.CTRL & 0b10))

    def reset(self) -> None:
        if self._expiry:
            self._expiry.cancel()
        self._expiry, self._fired, self._started = None, False, 0
        super().reset()
