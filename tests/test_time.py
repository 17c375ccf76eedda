import pytest
from hypothesis import given, strategies as st

from cosim import (MHz, MS, NS, SEC, US, Frequency, TimeError, format_time, ms, ns, parse_time, ps, s, us)


def test_units_are_exact_integers():
    assert (ps(1), ns(1), us(1), ms(1), s(1)) == (1, NS, US, MS, SEC)
    assert us(2.5) == 2_500_000
    assert isinstance(ms(0.5), int)


def test_float_that_is_not_whole_picoseconds_is_rejected():
    with pytest.raises(TimeError):
        ns(0.0001)


def test_frequency_period_and_exact_cycle_maths():
    f = MHz(1)
    assert f.period == US
    pit = Frequency(1_193_182)
    assert pit.period == 838_095            # rounded to the nearest ps
    assert pit.cycles(SEC) == 1_193_182     # exact, not through the rounded period
    assert pit.duration(1_193_182) == SEC
    assert pit.cycles(pit.duration(7)) == 7  # the edge is reached, not missed by rounding


def test_zero_frequency_rejected():
    with pytest.raises(TimeError):
        Frequency(0)


@pytest.mark.parametrize("t, text", [(0, "0 s"), (1500 * US, "1.5 ms"), (3 * SEC, "3 s"), (42, "42 ps"), (NS + 1, "1.001 ns")])
def test_format(t, text):
    assert format_time(t) == text


@pytest.mark.parametrize("text, t", [("10 ms", 10 * MS), ("2.5us", 2_500_000), ("3", 3 * SEC), ("7 ns", 7 * NS), (".5 s", SEC // 2)])
def test_parse(text, t):
    assert parse_time(text) == t


@pytest.mark.parametrize("text", ["10 parsecs", "ms", "", "1e3 s", "-1 s"])
def test_parse_rejects_bad_units_with_the_text(text):
    with pytest.raises(TimeError) as info:
        parse_time(text)
    assert repr(text) in str(info.value)


@given(st.integers(min_value=0, max_value=10**18))
def test_format_parse_round_trip(t):
    value, unit = format_time(t).split()
    assert parse_time(f"{value} {unit}") == t


def test_divided_frequencies_stay_exact():
    tick = MHz(1) / 256                        # an SP804 prescaled tick: 3906.25 Hz
    assert (tick.hz, tick.div) == (15625, 4) and tick.period == 256 * US
    assert tick.cycles(256 * US - 1) == 0 and tick.cycles(256 * US) == 1
    assert tick.duration(3) == 768 * US
    baud = MHz(24) * 4 / (13 * 64 + 1)         # PL011 UARTCLK / (16 * 13.015625)
    assert baud.duration(32) == -(-32 * SEC * 833 // (24_000_000 * 4))
    assert MHz(1) / 4 == Frequency(250_000) and str(baud) == "115.246 kHz"


def test_frequencies_from_text():
    assert Frequency.parse("24MHz") == MHz(24) and Frequency.parse("1.8432 MHz") == Frequency(1_843_200)
    assert Frequency.parse("62500000") == Frequency(62_500_000) and Frequency.parse("800 khz") == Frequency(800_000)
    assert Frequency.of("1GHz") == Frequency.of(Frequency(10**9))
    with pytest.raises(TimeError, match="not a whole number of Hz"):
        Frequency.parse("1.5 Hz")
    with pytest.raises(TimeError, match="cannot read 'fast' as a frequency"):
        Frequency.parse("fast")
    with pytest.raises(TimeError, match="expected a Frequency"):
        Frequency.of(24_000_000)
