"""RFC 3339 timestamps as the venues send them, parsed exactly to integer nanoseconds.

Coinbase sends Go ``RFC3339Nano`` text (0–9 fraction digits, trailing zeros trimmed, ``Z``);
Kraken sends six fraction digits and ``Z``. Both go through :func:`parse_rfc3339_ns`, which
also takes a ``±HH:MM`` offset. No float is involved: a nanosecond in the text is a
nanosecond in the result.
"""

from __future__ import annotations

import calendar
from typing import Any

__all__ = ["parse_rfc3339_ns"]

_NS_PER_S = 1_000_000_000
_DIGITS = frozenset("0123456789")


def parse_rfc3339_ns(text: str, cache: list[Any] | None = None) -> int:
    """Parse an RFC 3339 timestamp (``2023-02-09T20:32:50.714964855Z``) exactly to epoch ns.

    Accepts 0–9 fraction digits (more are truncated to ns), ``Z``/``z`` or a ``±HH:MM`` offset,
    and ``T``/``t``/space as the date-time separator.

    Args:
        text: the timestamp.
        cache: optional one-entry cache ``[seconds prefix, epoch seconds]`` reused across calls
            (consecutive messages nearly always share their second).

    Returns:
        Nanoseconds since the Unix epoch, exact (no float on the way).

    Raises:
        ValueError: not an RFC 3339 timestamp.
    """
    if (
        type(text) is not str
        or len(text) < 20
        or text[4] != "-"
        or text[7] != "-"
        or text[13] != ":"
        or text[16] != ":"
    ):
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    head = text[:19]
    if cache is not None and cache[0] == head:
        seconds: int = cache[1]
    else:
        if text[10] not in "Tt " or not _DIGITS.issuperset(
            head[0:4] + head[5:7] + head[8:10] + head[11:13] + head[14:16] + head[17:19]
        ):
            raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
        year, month, day = int(head[0:4]), int(head[5:7]), int(head[8:10])
        hour, minute, second = int(head[11:13]), int(head[14:16]), int(head[17:19])
        if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
            raise ValueError(f"bad date in {text!r}")
        if hour > 23 or minute > 59 or second > 60:  # 60: a leap second, as RFC 3339 allows
            raise ValueError(f"bad time in {text!r}")
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        if cache is not None:
            cache[0] = head
            cache[1] = seconds
    i = 19
    n = len(text)
    frac_ns = 0
    if text[i] == ".":
        j = i + 1
        while j < n and text[j] in _DIGITS:
            j += 1
        digits = text[i + 1 : j]
        if not digits:
            raise ValueError(f"empty fraction in {text!r}")
        frac_ns = int((digits + "00000000")[:9])
        i = j
    zone = text[i:]
    if zone == "Z" or zone == "z":
        offset_s = 0
    elif (
        len(zone) == 6
        and zone[0] in "+-"
        and zone[3] == ":"
        and _DIGITS.issuperset(zone[1:3] + zone[4:6])
    ):
        offset_s = (int(zone[1:3]) * 60 + int(zone[4:6])) * 60
        if zone[0] == "-":
            offset_s = -offset_s
    else:
        raise ValueError(f"bad zone in {text!r}")
    return (seconds - offset_s) * _NS_PER_S + frac_ns
