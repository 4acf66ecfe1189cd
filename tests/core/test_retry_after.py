"""The one ``Retry-After`` parser (RFC 9110 §10.2.3), used for venue REST and webhooks."""

from __future__ import annotations

import calendar

import pytest

from mmradar.retry_after import parse_retry_after

#: Wed, 21 Oct 2015 07:28:00 GMT
NOW_NS = calendar.timegm((2015, 10, 21, 7, 28, 0)) * 1_000_000_000


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("2", 2.0), ("120", 120.0), (" 7 ", 7.0), ("0030", 30.0)],
)
def test_delay_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, NOW_NS) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2015 07:28:30 GMT",  # IMF-fixdate
        "Wednesday, 21-Oct-15 07:28:30 GMT",  # obsolete RFC 850 form
        "Wed Oct 21 07:28:30 2015",  # obsolete asctime form
    ],
)
def test_http_date_is_measured_from_the_time_passed_in(value: str) -> None:
    assert parse_retry_after(value, NOW_NS) == 30.0
    assert parse_retry_after(value, NOW_NS + 250_000_000) == 29.75
    assert parse_retry_after(value, NOW_NS - 60 * 1_000_000_000) == 90.0


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2015 07:27:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
    ],
)
def test_a_past_date_means_no_wait(value: str) -> None:
    assert parse_retry_after(value, NOW_NS) == 0.0


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "-3", "1.5", "0.25", "+5", "1e3", "soon", "inf", "nan", "٣",
     "Wed, 32 Oct 2015 07:28:30 GMT", "Wed, 21 Oct 2015 25:28:30 GMT", "21 Oct"],
)  # fmt: skip
def test_bad_values_are_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW_NS) is None
