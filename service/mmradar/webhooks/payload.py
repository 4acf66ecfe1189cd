"""The ``json`` webhook body: the keys of docs/webhooks.md, in that order, plus ``context``.

Times are ISO-8601 UTC with milliseconds (``2024-08-08T23:54:13.123Z``; ``ended_at`` is null
while firing), ``score`` is rounded to 6 significant digits and NaN/±inf anywhere become
``null``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..fmt import iso_utc
from ..signals.episodes import EpisodeEvent

__all__ = ["format_json", "json_safe"]


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that is plain JSON: NaN/±inf → None, mappings → str-keyed dicts."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return str(value)


def _round_score(score: float) -> float | None:
    if not math.isfinite(score):
        return None
    return float(f"{score:.6g}")


def format_json(event: EpisodeEvent) -> dict[str, Any]:
    """The ``json`` webhook body: the keys of docs/webhooks.md, in that order, plus ``context``.

    Args:
        event: the episode transition.

    Returns:
        ``{"symptom", "exchange", "symbol", "side", "state", "started_at", "ended_at",
        "score", "context", "recording"}`` (``recording``: the flight recording's file name
        or None) with ISO-8601 UTC times (``ended_at`` None while firing), the
        score to 6 significant digits and every non-finite number (score or context) as None.
    """
    return {
        "symptom": event.symptom,
        "exchange": event.exchange,
        "symbol": event.symbol,
        "side": event.side,
        "state": event.state,
        "started_at": iso_utc(event.started_at_ns),
        "ended_at": iso_utc(event.ended_at_ns),
        "score": _round_score(event.score),
        "context": json_safe(event.context),
        "recording": event.recording,
    }
