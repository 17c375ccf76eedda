"""Simulated time: exact integer picoseconds (SystemC's default resolution).

Time values are plain `int`s so the kernel's arithmetic stays exact and cheap;
the helpers below build them and turn them back into readable text.
"""

from __future__ import annotations

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
    """A clock frequency in Hz; `period` is rounded to the nearest picosecond."""

    hz: int

    def __post_init__(self) -> None:
        if self.hz <= 0:
            raise TimeError(f"frequency must be positive, not {self.hz} Hz")

    @property
    def period(self) -> int:
        return (SEC + self.hz // 2) // self.hz

    def cycles(self, duration: int) -> int:
        """Whole clock cycles that elapse in `duration` ps (exact, not via the rounded period)."""
        return duration * self.hz // SEC

    def duration(self, cycles: int) -> int:
        """Picoseconds until `cycles` clock edges have elapsed (rounded up, so the edge is reached)."""
        return -((-cycles * SEC) // self.hz)

    def __str__(self) -> str:
        for unit, scale in (("GHz", 10**9), ("MHz", 10**6), ("kHz", 10**3)):
            if self.hz >= scale:
                return f"{self.hz / scale:g} {unit}"
        return f"{self.hz} Hz"


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
