"""The ``Retry-After`` header (RFC 9110 §10.2.3), read the same way for venues and webhooks.

``Retry-After = HTTP-date / delay-seconds``, where ``delay-seconds = 1*DIGIT`` and an
HTTP-date is an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``) or one of the two obsolete
forms a recipient must still accept (RFC 850 ``Sunday, 06-Nov-94 08:49:37 GMT`` and asctime
``Sun Nov  6 08:49:37 1994``; §5.6.7). A date is measured against the wall time the caller
passes in, so the parse is a pure function of its arguments.
"""

from __future__ import annotations

import datetime
import email.utils

__all__ = ["parse_retry_after"]

_NS = 1_000_000_000


def parse_retry_after(value: str | None, now_ns: int) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value.

    Args:
        value: the header value, or None when the header is absent.
        now_ns: the current wall time (ns since the Unix epoch) to measure an HTTP-date against.

    Returns:
        Seconds >= 0 (a date in the past is 0), or None when the header is absent or is
        neither delay-seconds nor an HTTP-date (e.g. ``-3``, ``1.5`` or ``soon``).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" and asctime dates carry no zone: HTTP dates are UTC
        when = when.replace(tzinfo=datetime.UTC)
    delta = when - datetime.datetime.fromtimestamp(now_ns // _NS, datetime.UTC)
    seconds = delta.total_seconds() - (now_ns % _NS) / _NS
    return max(0.0, seconds)
