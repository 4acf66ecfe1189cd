"""Numbers, times and durations as text for people: one copy of each formatting helper.

Used by the webhook messages (:mod:`mmradar.webhooks`), the replay summary
(:mod:`mmradar.replay`), the demo screen (:mod:`mmradar.demo`), the scorecard and report
(:mod:`mmradar.score`) and the service's log lines. All pure; none raises on NaN, ±inf or None.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Final

__all__ = [
    "fmt_clock_duration",
    "fmt_duration",
    "fmt_fixed",
    "fmt_float",
    "fmt_notional",
    "fmt_num",
    "fmt_pct",
    "fmt_price",
    "iso_utc",
    "utc_text",
]

_NS: Final = 1_000_000_000
_DASH: Final = "–"


# -- times -------------------------------------------------------------------------------------


def _utc_parts(ts_ns: int) -> tuple[str, str, int]:
    seconds, rest = divmod(ts_ns, _NS)
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M:%S"), rest // 1_000_000


def iso_utc(ts_ns: int | None) -> str | None:
    """ISO-8601 UTC with milliseconds, e.g. ``2024-08-08T23:54:13.123Z``; None stays None."""
    if ts_ns is None:
        return None
    date, clock, ms = _utc_parts(ts_ns)
    return f"{date}T{clock}.{ms:03d}Z"


def utc_text(ts_ns: int) -> str:
    """UTC with milliseconds for a terminal, e.g. ``2024-08-08 23:54:13.123 UTC``."""
    date, clock, ms = _utc_parts(ts_ns)
    return f"{date} {clock}.{ms:03d} UTC"


# -- durations ---------------------------------------------------------------------------------


def fmt_duration(seconds: float) -> str:
    """A duration in a message: ``2h 5m``, ``2m 13s``, ``13.4s``."""
    if seconds < 60:
        return f"{fmt_num(seconds)}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def fmt_clock_duration(seconds: float) -> str:
    """A duration in a summary, to the second: ``13.4s``, ``2m05s``, ``1h02m05s`` (>= 0)."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s"


# -- numbers -----------------------------------------------------------------------------------


def fmt_float(x: float, spec: str, missing: str = _DASH) -> str:
    """``format(x, spec)``, or ``missing`` when ``x`` is NaN (a figure that does not exist)."""
    return missing if x != x else format(x, spec)


def fmt_fixed(x: float, digits: int = 2) -> str:
    """``x`` with ``digits`` decimals, ``–`` for NaN (tables)."""
    return fmt_float(x, f".{digits}f")


def fmt_pct(x: float) -> str:
    """A share as a whole percentage (``0.42`` → ``42%``), ``–`` for NaN (tables)."""
    return _DASH if x != x else f"{100 * x:.0f}%"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def fmt_num(value: object, significant: int = 3) -> str:
    """A number for people: ``significant`` digits, no exponent (``5.2``, ``0.0016``, ``1,234``).

    Non-numbers are shown as text; None, NaN and ±inf as ``n/a``.
    """
    number = _number(value)
    if number is None:
        return "n/a" if value is None or isinstance(value, float | Decimal) else str(value)
    if number == 0.0:
        return "0"
    decimals = max(0, significant - 1 - math.floor(math.log10(abs(number))))
    text = f"{number:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_price(value: object) -> str:
    """A price as the shortest exact text (``61829.76``, ``0.00001234``)."""
    number = _number(value)
    if number is None:
        return fmt_num(value)
    text = repr(number)
    if "e" in text or "E" in text:
        text = f"{number:.12f}".rstrip("0").rstrip(".")
    return text.removesuffix(".0")


def fmt_notional(value: object) -> str:
    """Quote notional compactly: ``2.71M``, ``845K``, ``1.2B``, ``950``."""
    number = _number(value)
    if number is None:
        return fmt_num(value)
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(number) >= scale:
            return f"{fmt_num(number / scale)}{suffix}"
    return fmt_num(number)
