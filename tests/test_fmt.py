"""The formatting helpers shared by webhooks, replay, demo, scorecard and logs (pure)."""

from __future__ import annotations

import math

import pytest

from mmradar.fmt import (
    fmt_clock_duration,
    fmt_duration,
    fmt_fixed,
    fmt_float,
    fmt_notional,
    fmt_num,
    fmt_pct,
    fmt_price,
    iso_utc,
    utc_text,
)


def test_times_are_utc_with_milliseconds() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert iso_utc(1_723_161_253_999_999_999) == "2024-08-08T23:54:13.999Z"
    assert iso_utc(None) is None
    assert utc_text(0) == "1970-01-01 00:00:00.000 UTC"
    assert utc_text(1_723_161_253_123_999_999) == "2024-08-08 23:54:13.123 UTC"


@pytest.mark.parametrize(
    ("value", "text"),
    [(5.2371893, "5.24"), (0.0016, "0.0016"), (12345.6, "12,346"), (0, "0"), (-1.5, "-1.5"),
     (None, "n/a"), (math.nan, "n/a"), (math.inf, "n/a"), (True, "True"), ("x", "x")],
)  # fmt: skip
def test_fmt_num(value: object, text: str) -> None:
    assert fmt_num(value) == text


def test_fmt_price_and_notional() -> None:
    assert fmt_price(61829.76) == "61829.76"
    assert fmt_price(0.00001234) == "0.00001234"
    assert fmt_price(62000.0) == "62000"
    assert fmt_notional(2_712_345.6) == "2.71M"
    assert fmt_notional(845_000) == "845K"
    assert fmt_notional(1.2e9) == "1.2B"
    assert fmt_notional(950) == "950"


def test_durations() -> None:
    assert fmt_duration(13.4) == "13.4s"
    assert fmt_duration(133) == "2m 13s"
    assert fmt_duration(7500) == "2h 5m"
    assert fmt_clock_duration(-1) == "0.0s"
    assert fmt_clock_duration(13.44) == "13.4s"
    assert fmt_clock_duration(125) == "2m05s"
    assert fmt_clock_duration(3725) == "1h02m05s"


def test_table_figures() -> None:
    assert fmt_fixed(1.2345) == "1.23"
    assert fmt_fixed(1.5, 0) == "2"
    assert fmt_fixed(math.nan) == "–"
    assert fmt_pct(0.424) == "42%"
    assert fmt_pct(math.nan) == "–"
    assert fmt_float(61829.5, ",.10g", "n/a") == "61,829.5"
    assert fmt_float(math.nan, ".2f", "-") == "-"
