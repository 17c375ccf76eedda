"""Simulated time: exact integer picoseconds (SystemC's default resolution).

Time values are plain `int`s so the kernel's arithmetic stays exact and cheap;
the helpers below build them and turn them back into readable text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["PS", "NS", "US", "MS", "SEC", "ps", "ns", "us", "ms", "s", "Frequency", "Hz", "kHz", "MHz", "GHz",
           "format_time", "parse_time", "TimeError"]

PS = 1
NS = 1_000
US = 1_000_000
MS = 1_000_000_000
SEC = 1_000_000_000_000

_UNITS = {"ps": PS, "ns": NS, "us": US, "µs": US, "ms": MS, "s": SEC, "sec": SEC}


class TimeError(ValueError):
    """A time value that cannot be represented exactly, or an unknown unit."""


def _exact(value: int | float, unit: int, name: str) -> int:
    if isinstance(value, int):
        return value * unit
    scaled = value * unit
    rounded = round(scaled)
    # Explicit rounding: a float is accepted only when it names a whole number of ps.
    if abs(scaled - rounded) > 1e-6 * max(1.0, abs(scaled)):
        raise TimeError(f"{value} {name} is not a whole number of picoseconds")
    return int(rounded)


def ps(value: int) -> int:
    return _exact(value, PS, "ps")


def ns(value: int | float) -> int:
    return _exact(value, NS, "ns")


def us(value: int | float) -> int:
    return _exact(value, US, "us")


def ms(value: int | float) -> int:
    return _exact(value, MS, "ms")


def s(value: int | float) -> int:
    return _exact(value, SEC, "s")


@dataclass(frozen=True, slots=True)
class Frequency:
    """A clock frequency, exact: `hz` cycles per second, or hz/div for a divided clock (a reduced fraction).

    The one place cycles and simulated time are converted, so models never redo
    `SEC * n // hz`: `cycles(duration)` counts whole cycles (rounded down),
    `duration(cycles)` is the first picosecond by which they have elapsed
    (rounded up), `period` one cycle rounded to the nearest picosecond.
    `MHz(1) / 256` is a prescaled tick, `Hz(115_200) * 2` a half-bit clock.
    """

    hz: int
    div: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.hz, int) or not isinstance(self.div, int):
            raise TimeError(f"a frequency is a whole number of Hz (over a whole divisor), not {self.hz!r}/{self.div!r}")
        if self.hz <= 0 or self.div <= 0:
            raise TimeError(f"frequency must be positive, not {self.hz}/{self.div} Hz" if self.div != 1
                            else f"frequency must be positive, not {self.hz} Hz")
        common = math.gcd(self.hz, self.div)
        if common > 1:
            object.__setattr__(self, "hz", self.hz // common)
            object.__setattr__(self, "div", self.div // common)

    @classmethod
    def of(cls, value: "Frequency | str") -> "Frequency":
        """A Frequency as given, or read from text such as '24MHz' (platform properties, CLI)."""
        if isinstance(value, Frequency):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        raise TimeError(f"expected a Frequency (e.g. MHz(24)) or text such as '24MHz', not {value!r}")

    @classmethod
    def parse(cls, text: str) -> "Frequency":
        """'24MHz', '1.8432 MHz', '62500000' (Hz) -> an exact Frequency."""
        match = _FREQ_RE.match(text)
        if not match:
            raise TimeError(f"cannot read {text!r} as a frequency (expected e.g. '24MHz', '1.8432 MHz', '800 kHz')")
        number, unit = match.groups()
        whole, _, fraction = number.partition(".")
        numerator = int(whole or "0") * 10 ** len(fraction) + int(fraction or "0")
        hz, remainder = divmod(numerator * _FREQ_UNITS[(unit or "hz").lower()], 10 ** len(fraction))
        if remainder:
            raise TimeError(f"{text!r} is not a whole number of Hz")
        return cls(hz)

    @property
    def period(self) -> int:
        return (SEC * self.div + self.hz // 2) // self.hz

    def cycles(self, duration: int) -> int:
        """Whole clock cycles that elapse in `duration` ps (exact, not via the rounded period)."""
        return duration * self.hz // (SEC * self.div)

    def duration(self, cycles: int) -> int:
        """Picoseconds until `cycles` clock edges have elapsed (rounded up, so the edge is reached)."""
        return -((-cycles * SEC * self.div) // self.hz)

    def __truediv__(self, divisor: int) -> "Frequency":
        return Frequency(self.hz, self.div * divisor)

    def __mul__(self, factor: int) -> "Frequency":
        return Frequency(self.hz * factor, self.div)

    def __str__(self) -> str:
        rate = self.hz / self.div
        for unit, scale in (("GHz", 10**9), ("MHz", 10**6), ("kHz", 10**3)):
            if rate >= scale:
                return f"{rate / scale:g} {unit}"
        return f"{rate:g} Hz"


_FREQ_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([kKmMgG]?[hH][zZ])?\s*$")
_FREQ_UNITS = {"hz": 1, "khz": 10**3, "mhz": 10**6, "ghz": 10**9}


def Hz(value: int) -> Frequency:
    return Frequency(int(value))


def kHz(value: int | float) -> Frequency:
    return Frequency(round(value * 10**3))


def MHz(value: int | float) -> Frequency:
    return Frequency(round(value * 10**6))


def GHz(value: int | float) -> Frequency:
    return Frequency(round(value * 10**9))


def format_time(t: int) -> str:
    """Readable form with the largest unit that keeps the value >= 1, e.g. '1.5 ms'."""
    if t == 0:
        return "0 s"
    sign = "-" if t < 0 else ""
    t = abs(t)
    for name, unit in (("s", SEC), ("ms", MS), ("us", US), ("ns", NS)):
        if t >= unit:
            whole, frac = divmod(t, unit)
            text = f"{whole}.{frac:0{len(str(unit)) - 1}d}".rstrip("0").rstrip(".")
            return f"{sign}{text} {name}"
    return f"{sign}{t} ps"


_TIME_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zµ]*)\s*$")


def parse_time(text: str) -> int:
    """Parse '10 ms', '2.5us', '3s' into picoseconds; a bare number means seconds."""
    match = _TIME_RE.match(text)
    if not match:
        raise TimeError(f"cannot read {text!r} as a time (expected e.g. '10 ms', '2.5 us', '3 s')")
    number, unit = match.groups()
    unit = unit or "s"
    if unit not in _UNITS:
        raise TimeError(f"unknown time unit {unit!r} in {text!r} (use ps, ns, us, ms or s)")
    # Exact decimal arithmetic: "4451.995789467653 s" must not lose digits to a float.
    whole, _, fraction = number.partition(".")
    scale = _UNITS[unit]
    numerator = int(whole or "0") * 10 ** len(fraction) + int(fraction or "0")
    picoseconds, remainder = divmod(numerator * scale, 10 ** len(fraction))
    if remainder:
        raise TimeError(f"{text!r} is not a whole number of picoseconds")
    return picoseconds
