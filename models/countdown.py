"""The example model of docs/writing-models.md (kept identical by tests/test_docs.py)."""

from cosim import Access, Field, Frequency, MHz, OneShot, Reg, RegisterDevice


class Countdown(RegisterDevice):
    """A down-counter that raises `irq` when it reaches zero.

    Interrupts:
      irq: high from the zero crossing until software writes INTCLR.
    Properties:
      frequency: the counter clock (default 1 MHz; a Frequency or text such as '24MHz').
    """

    model = "countdown"
    size = 0x10
    registers = (
        Reg("LOAD", 0x0, doc="start value; writing it (re)starts the count"),
        Reg("VALUE", 0x4, access=Access.RO, doc="current count, computed from time"),
        Reg("CTRL", 0x8, fields=(Field("EN", 0), Field("IE", 1))),    # bits 31:2 reserved (kept 0 by the bank)
        Reg("INTCLR", 0xC, access=Access.WO),
    )

    def __init__(self, name: str, *, frequency: Frequency | str = MHz(1)) -> None:
        super().__init__(name)
        self.frequency = self.frequency_of(frequency)
        self.irq = self.output("irq")
        self._expiry = OneShot(self._zero)   # lazy: the one pending call, the next zero
        self._started = 0                    # simulated time the count (re)started
        self._fired = False

    # -- hooks: named after the registers ----------------------------------
    def read_VALUE(self) -> int:
        if not self._running():
            return 0 if self._fired else self.regs.LOAD
        elapsed = self.frequency.cycles(self.clock.now - self._started)
        return max(self.regs.LOAD - elapsed, 0)

    def write_LOAD(self, value: int) -> None:
        self.regs.LOAD = value
        self._restart()

    def write_CTRL(self, value: int) -> None:
        was_running = self._running()
        self.regs.CTRL = value               # reserved bits already cleared
        if self._running() and not was_running:
            self._restart()
        elif not self._running():
            self._expiry.cancel()

    def write_INTCLR(self, value: int) -> None:
        self._fired = False

    # -- behaviour ---------------------------------------------------------
    def _running(self) -> bool:
        return bool(self.regs.CTRL & EN)

    def _restart(self) -> None:
        self._fired = False
        self._started = self.clock.now
        if self._running():
            self._expiry.start(self.clock, self.frequency.duration(self.regs.LOAD))   # replaces a pending one
        else:
            self._expiry.cancel()

    def _zero(self) -> None:
        self._fired = True
        self.regs.CTRL &= ~EN                # one-shot: stops at zero
        self.update()

    def update(self) -> None:
        # The one place outputs are recomputed; the register bank calls it after every write.
        self.irq.set(self._fired and bool(self.regs.CTRL & IE))

    def reset(self) -> None:
        self._expiry.cancel()
        self._fired, self._started = False, 0
        super().reset()


# CTRL's bits, taken from the declaration rather than retyped.
EN, IE = Countdown.register("CTRL").bits.EN.mask, Countdown.register("CTRL").bits.IE.mask
