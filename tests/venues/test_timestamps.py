"""The one RFC 3339 parser of the venue modules (Coinbase and Kraken), exact to the nanosecond.

Expected values are computed independently: whole seconds with :mod:`datetime`, the fraction
from its digits. The fixture test reads every timestamp the recorded Coinbase and Kraken
frames carry (``tests/fixtures/coinbase``, ``tests/fixtures/kraken``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmradar.venues.timestamps import parse_rfc3339_ns

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_STAMP = re.compile(rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"')


def epoch_ns(text_seconds: datetime, frac_ns: int) -> int:
    """Independent reference: whole seconds from datetime, plus the fraction."""
    return int(text_seconds.timestamp()) * 1_000_000_000 + frac_ns


def reference_ns(text: str) -> int:
    """Independent reference for a fixture stamp: datetime for the seconds and the zone."""
    head, _, rest = text.partition(".")
    digits = rest.rstrip("Z") if rest else ""
    whole = head if rest else text
    moment = datetime.fromisoformat(whole.replace("Z", "+00:00") if not rest else head + "+00:00")
    return epoch_ns(moment, int(digits.ljust(9, "0")) if digits else 0)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[misc]


def fixture_stamps(venue: str) -> list[str]:
    stamps: set[str] = set()
    for path in sorted((FIXTURES / venue).iterdir()):
        if path.suffix in (".json", ".jsonl"):
            stamps.update(m.decode() for m in _STAMP.findall(path.read_bytes()))
    return sorted(stamps)


@pytest.mark.parametrize("venue", ["coinbase", "kraken"])
def test_every_fixture_timestamp(venue: str) -> None:
    stamps = fixture_stamps(venue)
    assert stamps, venue
    cache: list[object] = ["", 0]
    for text in stamps:
        assert text.endswith("Z")  # both venues send UTC
        assert parse_rfc3339_ns(text) == reference_ns(text), text
        assert parse_rfc3339_ns(text, cache) == reference_ns(text), text


def test_fixtures_cover_the_fraction_lengths_the_venues_send() -> None:
    def lengths(venue: str) -> set[int]:
        return {len(s[20:-1]) if s[19] == "." else 0 for s in fixture_stamps(venue)}

    assert lengths("coinbase") >= {0, 1, 3, 4, 5, 6, 7, 8, 9}  # Go RFC3339Nano trims zeros
    assert lengths("kraken") == {6}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # real values from the fixtures (coinbase: l2_data_*.json, market_trades_snapshot.json,
        # the fastmm capture; kraken: book_update.json, trade_update.json), fraction digits
        # as each venue trims them
        ("2023-02-09T20:32:51Z", (utc(2023, 2, 9, 20, 32, 51), 0)),
        ("2023-02-09T20:32:50.8Z", (utc(2023, 2, 9, 20, 32, 50), 800000000)),
        ("2026-09-30T02:38:46.612Z", (utc(2026, 9, 30, 2, 38, 46), 612000000)),
        ("2026-09-30T02:39:49.1653Z", (utc(2026, 9, 30, 2, 39, 49), 165300000)),
        ("2026-09-30T02:38:53.98284Z", (utc(2026, 9, 30, 2, 38, 53), 982840000)),
        ("2024-10-03T02:46:57.050170Z", (utc(2024, 10, 3, 2, 46, 57), 50170000)),
        ("2023-09-25T07:48:37.000000Z", (utc(2023, 9, 25, 7, 48, 37), 0)),
        ("2026-09-30T02:39:59.3399403Z", (utc(2026, 9, 30, 2, 39, 59), 339940300)),
        ("2023-02-09T20:19:35.39625135Z", (utc(2023, 2, 9, 20, 19, 35), 396251350)),
        ("2023-02-09T20:32:50.714964855Z", (utc(2023, 2, 9, 20, 32, 50), 714964855)),
        # forms RFC 3339 allows that no fixture shows
        ("2023-02-09 20:32:50.000000001Z", (utc(2023, 2, 9, 20, 32, 50), 1)),
        ("2023-02-09t20:32:50.1z", (utc(2023, 2, 9, 20, 32, 50), 100000000)),
        ("2024-02-29T23:59:59.9999999999Z", (utc(2024, 2, 29, 23, 59, 59), 999999999)),
        ("1970-01-01T00:00:00Z", (utc(1970, 1, 1), 0)),
        # offsets: the same instant as the 'Z' form, to the nanosecond
        (
            "2023-02-09T21:32:50.714964855+01:00",
            (datetime(2023, 2, 9, 21, 32, 50, tzinfo=timezone(timedelta(hours=1))), 714964855),
        ),
        (
            "2023-02-09T15:02:50.5-05:30",
            (datetime(2023, 2, 9, 15, 2, 50, tzinfo=timezone(-timedelta(hours=5.5))), 500000000),
        ),
        ("2024-10-03T02:46:57.050170+00:00", (utc(2024, 10, 3, 2, 46, 57), 50170000)),
    ],
)  # fmt: skip
def test_rfc3339_exact(text: str, expected: tuple[datetime, int]) -> None:
    seconds, frac_ns = expected
    assert parse_rfc3339_ns(text) == epoch_ns(seconds, frac_ns)
    cache: list[object] = ["", 0]
    assert parse_rfc3339_ns(text, cache) == epoch_ns(seconds, frac_ns)
    assert parse_rfc3339_ns(text, cache) == epoch_ns(seconds, frac_ns)  # from the cache


@pytest.mark.parametrize("digits", range(10))
def test_every_fraction_length(digits: int) -> None:
    frac = "123456789"[:digits]
    text = "2026-09-30T02:38:38" + (f".{frac}" if frac else "") + "Z"
    whole = datetime(2026, 9, 30, 2, 38, 38, tzinfo=UTC)
    assert parse_rfc3339_ns(text) == epoch_ns(whole, int(frac.ljust(9, "0")) if frac else 0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2023-02-09",
        "2023-02-09T20:32:50",
        "2023-02-09T20:32:50.Z",
        "2023-02-09T20:32:50.5",
        "2023-02-09T20:32:50.5+0100",
        "2023-02-30T20:32:50Z",
        "2023-13-09T20:32:50Z",
        "2023-02-09T24:32:50Z",
        "2023-02-09X20:32:50Z",
        "2023-0a-09T20:32:50Z",
        "2023-02-09T20:32:50.5ZZ",
        "2023-02-09T20:32:50.5+01:0a",
    ],
)
def test_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_ns(text)


def test_rfc3339_rejects_a_non_string() -> None:
    with pytest.raises(ValueError):
        parse_rfc3339_ns(1_696_000_000)  # type: ignore[arg-type]


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(0, 999),
    st.integers(0, 9),
)
def test_rfc3339_property(moment: datetime, extra_ns: int, trim: int) -> None:
    # Reference: datetime carries microseconds; three more digits of ns are appended.
    frac = moment.microsecond * 1000 + extra_ns
    digits = f"{frac:09d}"[: 9 - trim] if trim < 9 else ""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{digits}" if digits else "") + "Z"
    whole = moment.replace(microsecond=0, tzinfo=UTC)
    expected = epoch_ns(whole, int((digits + "000000000")[:9]) if digits else 0)
    assert parse_rfc3339_ns(text) == expected
