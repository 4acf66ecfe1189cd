"""Direct webhooks: every symptom episode start and end POSTed to the configured URLs.

docs/webhooks.md. Two layers, in the house style of a pure core and a thin I/O shell:

* **Formatting** (pure): :func:`format_json`, :func:`format_slack` and :func:`format_discord`
  turn an :class:`~mmradar.signals.episodes.EpisodeEvent` into the request body of each
  ``[[webhooks]]`` ``format``. The ``json`` body has exactly these keys (docs/webhooks.md)::

      {"symptom", "exchange", "symbol", "side", "state": "firing" | "resolved",
       "started_at", "ended_at", "score", "context": {...}, "recording"}

  Times are ISO-8601 UTC with milliseconds (``2024-08-08T23:54:13.123Z``; ``ended_at`` is null
  while firing), ``score`` is rounded to 6 significant digits and NaN/±inf anywhere become
  ``null``. Slack and Discord carry the same facts as a readable message.

* **Delivery** (I/O): one :class:`WebhookSender` per configured webhook, each with its own
  bounded queue and one worker task, so a dead endpoint never holds up another one and events
  of one webhook are delivered in order. :class:`Webhooks` fans one event out to every sender
  and runs them all (what the service wires in).

Delivery semantics (each counted in ``mmradar_webhook_deliveries_total{format,result}``):

* :meth:`WebhookSender.submit` is synchronous, O(1) and never blocks: it only appends the
  event to the queue (formatting happens in the worker). When the queue is full the **oldest**
  queued event is dropped (``dropped``) to make room: the newest events describe the market now.
* The worker POSTs each event (timeouts: 5 s to connect, 10 s in total). A 2xx answer is
  ``ok``. A connection error, a timeout, HTTP 408, 429 or 5xx is retried after an exponential
  back-off with jitter (:func:`mmradar.feed.backoff`: 0.5–1 s, 1–2 s, 2–4 s, ...), or after the
  ``Retry-After`` the server sent with a 429/503; each retry attempt counts
  ``retry`` (when it is made). After ``max_attempts`` (6) attempts, or when the event would be older
  than ``max_age_s`` (300 s), it is ``dropped``. Any other answer (3xx, 4xx) is ``dropped`` at
  once with a WARNING: a wrong URL or a rejected payload will not fix itself.
* On cancellation the worker spends at most ``flush_timeout_s`` (1 s) on one last attempt for
  the events still pending, then counts the rest ``dropped``: shutdown is never held up longer.

The resolved URL may hold a secret (``${NAME}`` in the config): it is only ever used to send.
Logs name a webhook by :attr:`~mmradar.config.WebhookSettings.display_url` and never print an
exception's text (aiohttp puts the URL in some of them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

import aiohttp
import orjson
from prometheus_client import Counter

from .clock import ShellClock, SystemClock
from .config import WebhookSettings
from .errors import truncate
from .feed import backoff, parse_retry_after
from .signals.episodes import EpisodeEvent

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "DISCORD_LIMITS",
    "DepthRow",
    "Facts",
    "WebhookSender",
    "Webhooks",
    "encode",
    "fmt_duration",
    "fmt_notional",
    "fmt_num",
    "fmt_price",
    "format_discord",
    "format_json",
    "format_slack",
    "iso_utc",
    "parse_retry_after",
    "render",
    "summary",
]

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE: Final = 1000
"""Events a webhook may have waiting before the oldest is dropped."""

DISCORD_LIMITS: Final[Mapping[str, int]] = {
    "content": 2000,
    "title": 256,
    "description": 4096,
    "fields": 25,
    "field_name": 256,
    "field_value": 1024,
    "footer": 2048,
    "embed_total": 6000,
}
"""Discord's documented message and embed limits (characters; ``fields`` is a count)."""

_SLACK_SECTION_TEXT: Final = 3000
_SLACK_FIELDS: Final = 10
_SLACK_FIELD_TEXT: Final = 2000

_COLOURS: Final = {"firing": 0xD62728, "resolved": 0x2CA02C}  # red, green
_ICONS: Final = {"firing": "🔴", "resolved": "🟢"}
_USER_AGENT: Final = "mmradar-webhooks/0.1"
_RETRYABLE_STATUS: Final = frozenset({408, 429})
_MAX_BODY_EXCERPT: Final = 200
_NS: Final = 1_000_000_000

# Context keys the readable formats render in their own place, each with the spellings accepted
# (first match wins); every other context key is listed after them as ``key: value``.
_BID_KEYS: Final = ("best_bid", "best_bid_price", "bid")
_ASK_KEYS: Final = ("best_ask", "best_ask_price", "ask")
_MID_KEYS: Final = ("mid", "mid_price")
_SPREAD_KEYS: Final = ("spread_bps",)
_SPREAD_BASE_KEYS: Final = ("spread_baseline_bps", "baseline_spread_bps")
_VALID_KEYS: Final = ("book_valid", "valid")
_DEPTH_KEYS: Final = ("depth", "depth_notional")
_DEPTH_BASE_KEYS: Final = ("depth_baseline", "baseline_depth", "depth_notional_baseline")
_PEAK_KEYS: Final = ("peak_score",)


# --------------------------------------------------------------------------------------------
# Formatting (pure)
# --------------------------------------------------------------------------------------------


def iso_utc(ts_ns: int | None) -> str | None:
    """ISO-8601 UTC with milliseconds, e.g. ``2024-08-08T23:54:13.123Z``; None stays None."""
    if ts_ns is None:
        return None
    seconds, rest = divmod(ts_ns, _NS)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest // 1_000_000:03d}Z"


def _json_safe(value: Any) -> Any:
    """A copy of ``value`` that is plain JSON: NaN/±inf → None, mappings → str-keyed dicts."""
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
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
        "context": _json_safe(event.context),
        "recording": event.recording,
    }


# -- readable facts ----------------------------------------------------------------------------


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


def fmt_duration(seconds: float) -> str:
    """``2h 5m``, ``2m 13s``, ``13.4s``."""
    if seconds < 60:
        return f"{fmt_num(seconds)}s"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s"


def _lookup(context: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    for key in keys:
        if key in context:
            return key, context[key]
    return None, None


def _band_order(band: str) -> tuple[float, str]:
    digits = "".join(ch for ch in band if ch.isdigit() or ch == ".")
    try:
        return float(digits), band
    except ValueError:
        return math.inf, band


def _by_band(depth: object) -> dict[str, dict[str, Any]]:
    """Depth as ``{band: {side: notional}}``, accepting ``{side: {band: x}}`` too."""
    if not isinstance(depth, Mapping):
        return {}
    if set(depth) <= {"bid", "ask"} and all(isinstance(v, Mapping) for v in depth.values()):
        bands: dict[str, dict[str, Any]] = {}
        for side, per_band in depth.items():
            for band, value in per_band.items():
                bands.setdefault(str(band), {})[side] = value
        return bands
    return {str(b): dict(v) for b, v in depth.items() if isinstance(v, Mapping)}


@dataclass(frozen=True, slots=True)
class DepthRow:
    """Depth of one band: now and at baseline, per side (raw context values)."""

    band: str
    bid: Any
    ask: Any
    bid_baseline: Any
    ask_baseline: Any


@dataclass(frozen=True, slots=True)
class Facts:
    """What a person needs to read from an episode, rendered as text pieces.

    Built once by :func:`render`; the Slack and Discord formats lay the same facts out.
    """

    state: Literal["firing", "resolved"]
    headline: str
    score: str
    peak: str | None
    bid: str | None
    ask: str | None
    mid: str | None
    spread: str | None
    validity: str | None
    depth: tuple[DepthRow, ...]
    started_at: str | None
    ended_at: str | None
    duration: str | None
    extra: tuple[tuple[str, str], ...]

    @property
    def score_text(self) -> str:
        """``5.24``, or ``1.13 (peak 6.02)`` when the context has the episode's peak."""
        return self.score if self.peak is None else f"{self.score} (peak {self.peak})"

    def depth_line(self, row: DepthRow) -> str:
        """``±10bps bid 2.71M (baseline 3.1M) ask 1.9M (baseline 3M)``."""
        return (
            f"±{row.band}bps bid {fmt_notional(row.bid)} "
            f"(baseline {fmt_notional(row.bid_baseline)}) "
            f"ask {fmt_notional(row.ask)} (baseline {fmt_notional(row.ask_baseline)})"
        )


def _extra_text(value: Any) -> str:
    if isinstance(value, Mapping) and not any(
        isinstance(v, Mapping | list | tuple) for v in value.values()
    ):
        return ", ".join(f"{k}={_extra_text(v)}" for k, v in value.items())
    if isinstance(value, Mapping | list | tuple):
        return orjson.dumps(_json_safe(value)).decode()
    if isinstance(value, bool):
        return str(value).lower()
    if value is None or isinstance(value, int | float | Decimal):
        return fmt_num(value, 6)
    return str(value)


def render(event: EpisodeEvent) -> Facts:
    """Extract the readable facts of ``event`` (the shared core of the Slack/Discord formats).

    Context keys recognised (first spelling present wins; the engine's names first):
    ``best_bid``/``best_bid_price``, ``best_ask``/``best_ask_price``, ``mid``/``mid_price``,
    ``spread_bps``, ``spread_baseline_bps``, ``book_valid``, ``peak_score``, ``depth`` and
    ``depth_baseline`` (``{band_bps: {"bid": notional, "ask": notional}}``, or keyed by side
    first). Every other key is kept in :attr:`Facts.extra`.
    """
    context = event.context
    used: set[str] = set()

    def take(keys: tuple[str, ...]) -> Any:
        key, value = _lookup(context, keys)
        if key is not None:
            used.add(key)
        return value

    def price(keys: tuple[str, ...]) -> str | None:
        present = any(key in context for key in keys)
        return fmt_price(take(keys)) if present else None

    bid = price(_BID_KEYS)
    ask = price(_ASK_KEYS)
    mid = price(_MID_KEYS)
    spread = take(_SPREAD_KEYS)
    spread_base = take(_SPREAD_BASE_KEYS)
    valid = take(_VALID_KEYS)
    peak = take(_PEAK_KEYS)
    depth_now = _by_band(take(_DEPTH_KEYS))
    depth_base = _by_band(take(_DEPTH_BASE_KEYS))
    rows = tuple(
        DepthRow(
            band=band,
            bid=depth_now.get(band, {}).get("bid"),
            ask=depth_now.get(band, {}).get("ask"),
            bid_baseline=depth_base.get(band, {}).get("bid"),
            ask_baseline=depth_base.get(band, {}).get("ask"),
        )
        for band in sorted({*depth_now, *depth_base}, key=_band_order)
    )
    spread_text: str | None = None
    if spread is not None or spread_base is not None:
        spread_text = f"{fmt_num(spread)} bps"
        if spread_base is not None:
            spread_text += f" (baseline {fmt_num(spread_base)})"
    validity: str | None = None
    if valid is not None:
        validity = "book valid" if valid is True else "book NOT valid"
    duration: str | None = None
    if event.ended_at_ns is not None:
        duration = fmt_duration(max(0, event.ended_at_ns - event.started_at_ns) / _NS)
    headline = (
        f"{_ICONS.get(event.state, '')} {event.state.upper()} {event.symptom} "
        f"{event.exchange} {event.symbol} ({event.side})"
    ).strip()
    return Facts(
        state=event.state,
        headline=headline,
        score=fmt_num(event.score),
        peak=None if peak is None else fmt_num(peak),
        bid=bid,
        ask=ask,
        mid=mid,
        spread=spread_text,
        validity=validity,
        depth=rows,
        started_at=iso_utc(event.started_at_ns),
        ended_at=iso_utc(event.ended_at_ns),
        duration=duration,
        extra=tuple((k, _extra_text(v)) for k, v in context.items() if k not in used)
        + ((("recording", event.recording),) if event.recording else ()),
    )


def summary(event: EpisodeEvent, facts: Facts | None = None) -> str:
    """The one-line readable message (Slack ``text``, Discord ``content``), e.g.

    ``🔴 FIRING spread_widening binance BTCUSDT (both) score 5.2 — bid 61829.76 / ask
    61830.52, spread 0.12 bps (baseline 0.0016), depth ±10bps bid 2.71M (baseline 3.1M) ask
    1.9M (baseline 3M); book valid``.
    """
    f = facts or render(event)
    parts: list[str] = []
    if f.bid is not None or f.ask is not None:
        parts.append(f"bid {f.bid or 'n/a'} / ask {f.ask or 'n/a'}")
    if f.spread is not None:
        parts.append(f"spread {f.spread}")
    if f.depth:
        parts.append("depth " + f.depth_line(f.depth[0]))
    text = f"{f.headline} score {f.score_text}"
    if f.duration is not None:
        text += f" after {f.duration}"
    if parts:
        text += " — " + ", ".join(parts)
    if f.validity is not None:
        text += f"; {f.validity}"
    return text


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def format_slack(event: EpisodeEvent) -> dict[str, Any]:
    """A Slack incoming-webhook payload: ``text`` (notification fallback) and one attachment.

    The attachment is red while firing and green when resolved, with Block Kit ``blocks``: the
    headline, up to 10 fields (score, side, bid/ask, spread, book, times), the per-band depth
    now versus baseline, and any other context as ``key: value``. Slack's limits are respected
    (section text ≤ 3000 characters, ≤ 10 fields of ≤ 2000).
    """
    f = render(event)
    text = summary(event, f)
    esc = _slack_escape
    fields = [
        f"*Score*\n{f.score_text}",
        f"*Side*\n{event.side}",
    ]
    if f.bid is not None or f.ask is not None:
        fields.append(f"*Bid / ask*\n{f.bid or 'n/a'} / {f.ask or 'n/a'}")
    if f.spread is not None:
        fields.append(f"*Spread*\n{f.spread}")
    if f.mid is not None:
        fields.append(f"*Mid*\n{f.mid}")
    if f.validity is not None:
        fields.append(f"*Book*\n{'valid' if f.validity == 'book valid' else 'NOT valid'}")
    fields.append(f"*Started*\n{f.started_at}")
    if f.ended_at is not None:
        fields.append(f"*Ended*\n{f.ended_at} ({f.duration})")
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(
                    f"*{_ICONS[f.state]} {f.state.upper()}* `{esc(event.symptom)}` "
                    f"{esc(event.exchange)} *{esc(event.symbol)}* ({esc(event.side)})",
                    _SLACK_SECTION_TEXT,
                ),
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _cut(esc(x), _SLACK_FIELD_TEXT)}
                for x in fields[:_SLACK_FIELDS]
            ],
        },
    ]
    if f.depth:
        lines = "\n".join(esc(f.depth_line(row)) for row in f.depth)
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": _cut(
                        f"*Depth (quote notional), now vs baseline*\n{lines}", _SLACK_SECTION_TEXT
                    ),
                },
            }
        )
    if f.extra:
        lines = "\n".join(f"{esc(k)}: {esc(v)}" for k, v in f.extra)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _cut(lines, _SLACK_SECTION_TEXT)},
            }
        )
    return {
        "text": text,
        "attachments": [
            {
                "color": f"#{_COLOURS[f.state]:06x}",
                "fallback": text,
                "blocks": blocks,
            }
        ],
    }


def format_discord(event: EpisodeEvent) -> dict[str, Any]:
    """A Discord webhook payload: ``content`` (the one-line message) and one embed with fields.

    The embed is red while firing and green when resolved; its fields give score, side,
    bid/ask, spread, book validity, times, one field per depth band (now versus baseline) and
    any other context. Discord's limits are respected (:data:`DISCORD_LIMITS`: content ≤ 2000,
    title ≤ 256, description ≤ 4096, ≤ 25 fields, names ≤ 256, values ≤ 1024, 6000 in all).
    Mentions are disabled (``allowed_mentions``), so no text in an event can ping anyone.
    """
    lim = DISCORD_LIMITS
    f = render(event)
    fields: list[tuple[str, str, bool]] = [
        ("Score", f.score_text, True),
        ("Side", event.side, True),
    ]
    if f.bid is not None or f.ask is not None:
        fields.append(("Bid / ask", f"{f.bid or 'n/a'} / {f.ask or 'n/a'}", True))
    if f.spread is not None:
        fields.append(("Spread", f.spread, True))
    if f.mid is not None:
        fields.append(("Mid", f.mid, True))
    if f.validity is not None:
        fields.append(("Book", "valid" if f.validity == "book valid" else "NOT valid", True))
    for row in f.depth:
        fields.append(
            (
                f"Depth ±{row.band} bps (now vs baseline)",
                f"bid {fmt_notional(row.bid)} vs {fmt_notional(row.bid_baseline)}\n"
                f"ask {fmt_notional(row.ask)} vs {fmt_notional(row.ask_baseline)}",
                True,
            )
        )
    fields.append(("Started", f.started_at or "n/a", True))
    if f.ended_at is not None:
        fields.append(("Ended", f"{f.ended_at} ({f.duration})", True))
    fields.extend((k, v, len(v) <= 40) for k, v in f.extra)  # long values get a whole row

    title = _cut(f.headline, lim["title"])
    footer = "mmradar"
    budget = lim["embed_total"] - len(title) - len(footer)
    embed_fields: list[dict[str, Any]] = []
    for name, value, inline in fields[: lim["fields"]]:
        name = _cut(name, lim["field_name"]) or "-"
        value = _cut(value, lim["field_value"]) or "-"
        if len(name) + len(value) > budget:
            break
        budget -= len(name) + len(value)
        embed_fields.append({"name": name, "value": value, "inline": inline})
    embed: dict[str, Any] = {
        "title": title,
        "color": _COLOURS[f.state],
        "fields": embed_fields,
        "footer": {"text": footer},
        "timestamp": f.ended_at or f.started_at,
    }
    return {
        "content": _cut(summary(event, f), lim["content"]),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }


_FORMATTERS: Final[Mapping[str, Callable[[EpisodeEvent], dict[str, Any]]]] = {
    "json": format_json,
    "slack": format_slack,
    "discord": format_discord,
}


def encode(event: EpisodeEvent, fmt: str) -> bytes:
    """The request body of ``event`` in webhook format ``fmt`` (``json``, ``slack``, ``discord``).

    Raises:
        KeyError: unknown format.
        TypeError: the payload cannot be serialised (never for JSON-safe context values).
    """
    return orjson.dumps(_FORMATTERS[fmt](event), default=str)


# --------------------------------------------------------------------------------------------
# Delivery (I/O)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one POST attempt came to."""

    kind: Literal["ok", "retry", "fatal"]
    reason: str
    retry_after_s: float | None = None


_OK: Final = _Outcome("ok", "ok")


def _describe(exc: BaseException) -> str:
    """A log-safe description of a transport failure: never the exception's text (URLs)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__} ({exc.strerror})"
    return type(exc).__name__


class _Pending:
    """A queued event, when it was submitted (monotonic s) and, once built, its body."""

    __slots__ = ("body", "event", "submitted_s")

    def __init__(self, event: EpisodeEvent, submitted_s: float) -> None:
        self.event = event
        self.submitted_s = submitted_s
        self.body: bytes | None = None


def _default_backoff() -> Iterator[float]:
    return backoff(initial_s=1.0, maximum_s=30.0)


class WebhookSender:
    """Delivers episodes to one configured webhook: a bounded queue and one worker.

    Call :meth:`submit` from the event loop (it is not thread-safe) and run :meth:`run` as a
    task; see the module docstring for the delivery semantics.

    Args:
        settings: the ``[[webhooks]]`` entry (URL, format, display URL).
        deliveries: the ``mmradar_webhook_deliveries_total`` family (``format``, ``result``
            labels), e.g. :attr:`mmradar.metrics.Metrics.webhook_deliveries`.
        queue_size: events that may wait; when full, the oldest is dropped.
        max_attempts: POST attempts per event before it is dropped.
        max_age_s: an event not delivered this long after :meth:`submit` is dropped (also
            when it would get that old while waiting for a retry).
        connect_timeout_s: time to get a connection.
        total_timeout_s: time for a whole attempt, connection and answer included.
        flush_timeout_s: at cancellation, time for one last attempt at the pending events.
        backoff_factory: a fresh iterator of retry delays per event (default: exponential
            from 0.5–1 s up to 15–30 s with jitter).
        session: an aiohttp session to use (not closed here); by default one is created.
        clock: monotonic time for ages, wall time for ``Retry-After`` dates.
    """

    def __init__(
        self,
        settings: WebhookSettings,
        deliveries: Counter,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_attempts: int = 6,
        max_age_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        total_timeout_s: float = 10.0,
        flush_timeout_s: float = 1.0,
        backoff_factory: Callable[[], Iterator[float]] = _default_backoff,
        session: aiohttp.ClientSession | None = None,
        clock: ShellClock | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if settings.format not in _FORMATTERS:
            raise ValueError(f"unknown webhook format {settings.format!r}")
        self.settings = settings
        self.format = settings.format
        self.display_url = settings.display_url
        self.max_attempts = max_attempts
        self.max_age_s = max_age_s
        self.flush_timeout_s = flush_timeout_s
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_size)
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout_s, connect=connect_timeout_s, sock_connect=connect_timeout_s
        )
        self._backoff_factory = backoff_factory
        self._session = session
        self._clock: ShellClock = clock or SystemClock()
        self._ok = deliveries.labels(settings.format, "ok")
        self._retry = deliveries.labels(settings.format, "retry")
        self._dropped = deliveries.labels(settings.format, "dropped")
        self._current: _Pending | None = None
        self._failing = False  # a failed attempt since the last success (log once per streak)
        self._overflowed = 0  # events dropped on overflow, not yet logged (the worker logs)

    @property
    def pending(self) -> int:
        """Events waiting in the queue (the one being sent not included)."""
        return self._queue.qsize()

    def submit(self, event: EpisodeEvent) -> None:
        """Queue ``event`` for delivery; never blocks, never raises.

        When the queue is full the oldest queued event is dropped and counted ``dropped``.
        """
        item = _Pending(event, self._clock.monotonic())
        queue = self._queue
        if queue.full():
            queue.get_nowait()
            self._dropped.inc()
            self._overflowed += 1  # logged by the worker: no I/O on the caller's path
        queue.put_nowait(item)

    async def run(self) -> None:
        """Deliver queued events until cancelled, then flush for at most ``flush_timeout_s``."""
        session = self._session or aiohttp.ClientSession(headers={"User-Agent": _USER_AGENT})
        log.info("webhook %s (%s): started", self.display_url, self.format)
        try:
            while True:
                self._current = await self._queue.get()
                if self._overflowed:
                    log.warning(
                        "webhook %s: queue full (%d events); dropped the %d oldest",
                        self.display_url,
                        self._queue.maxsize,
                        self._overflowed,
                    )
                    self._overflowed = 0
                await self._deliver(session, self._current)
                self._current = None
        except asyncio.CancelledError:
            await self._flush(session)
            raise
        finally:
            if self._session is None:
                await session.close()
            log.info("webhook %s (%s): stopped", self.display_url, self.format)

    # -- internals -----------------------------------------------------------------------------

    def _body(self, item: _Pending) -> bytes | None:
        if item.body is None:
            try:
                item.body = encode(item.event, self.format)
            except (TypeError, ValueError) as exc:  # a context value orjson cannot take
                log.warning(
                    "webhook %s: cannot encode %s episode of %s %s (%s); dropped",
                    self.display_url,
                    item.event.symptom,
                    item.event.exchange,
                    item.event.symbol,
                    type(exc).__name__,
                )
                return None
        return item.body

    async def _deliver(self, session: aiohttp.ClientSession, item: _Pending) -> None:
        body = self._body(item)
        if body is None:
            self._dropped.inc()
            return
        delays = self._backoff_factory()
        attempt = 0
        while True:
            age = self._clock.monotonic() - item.submitted_s
            if age > self.max_age_s:
                self._drop(item, f"older than {fmt_num(self.max_age_s)} s")
                return
            if attempt:
                # Counted when the retry is made, not when it is planned: a back-off sleep that
                # overruns max_age (a loaded loop) drops the event above, uncounted as a retry.
                self._retry.inc()
            attempt += 1
            outcome = await self._attempt(session, body)
            if outcome.kind == "ok":
                self._ok.inc()
                if self._failing:
                    self._failing = False
                    log.info("webhook %s: delivering again", self.display_url)
                return
            if outcome.kind == "fatal":
                self._drop(item, outcome.reason)
                return
            if attempt >= self.max_attempts:
                self._drop(item, f"{outcome.reason}; gave up after {attempt} attempts")
                return
            delay = outcome.retry_after_s
            if delay is None:
                delay = next(delays)
            age = self._clock.monotonic() - item.submitted_s
            if age + delay > self.max_age_s:
                self._drop(item, f"{outcome.reason}; retry would exceed max age")
                return
            if not self._failing:
                self._failing = True
                log.warning(
                    "webhook %s: delivery failed (%s); retrying in %.3g s",
                    self.display_url,
                    outcome.reason,
                    delay,
                )
            elif log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "webhook %s: attempt %d failed (%s); retrying in %.3g s",
                    self.display_url,
                    attempt,
                    outcome.reason,
                    delay,
                )
            await self._clock.sleep(delay)

    async def _attempt(self, session: aiohttp.ClientSession, body: bytes) -> _Outcome:
        try:
            async with session.post(
                self.settings.url,
                data=body,
                headers={"Content-Type": "application/json"},
                allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                status = resp.status
                excerpt = await resp.content.read(_MAX_BODY_EXCERPT)
                if 200 <= status < 300:
                    return _OK
                reason = f"HTTP {status}"
                if status in _RETRYABLE_STATUS or status >= 500:
                    retry_after = None
                    if status in (429, 503):
                        retry_after = parse_retry_after(
                            resp.headers.get("Retry-After"), self._clock.wall_ns()
                        )
                    return _Outcome("retry", reason, retry_after)
                if excerpt:
                    reason += f": {truncate(excerpt, _MAX_BODY_EXCERPT)}"
                return _Outcome("fatal", reason)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return _Outcome("retry", _describe(exc))

    def _drop(self, item: _Pending, reason: str) -> None:
        self._dropped.inc()
        log.warning(
            "webhook %s: dropped %s %s episode of %s %s (%s)",
            self.display_url,
            item.event.state,
            item.event.symptom,
            item.event.exchange,
            item.event.symbol,
            reason,
        )

    async def _flush(self, session: aiohttp.ClientSession) -> None:
        """One last attempt per pending event, within ``flush_timeout_s``; drop the rest."""
        pending: list[_Pending] = [] if self._current is None else [self._current]
        self._current = None
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        if not pending:
            return
        delivered = 0
        try:
            if self.flush_timeout_s > 0:
                async with asyncio.timeout(self.flush_timeout_s):
                    for item in pending:
                        body = self._body(item)
                        if body is None:
                            continue
                        if (await self._attempt(session, body)).kind != "ok":
                            break  # the endpoint is failing: no time for the others either
                        self._ok.inc()
                        delivered += 1
        except TimeoutError:
            pass
        finally:
            lost = len(pending) - delivered
            if lost:
                self._dropped.inc(lost)
                log.warning(
                    "webhook %s: stopping with %d undelivered event(s); dropped",
                    self.display_url,
                    lost,
                )


class Webhooks:
    """Every configured webhook: one :class:`WebhookSender` each, fed the same events.

    Args:
        settings: the ``[[webhooks]]`` entries.
        deliveries: the ``mmradar_webhook_deliveries_total`` family.
        **options: passed to every :class:`WebhookSender` (queue size, timeouts, ...).
    """

    def __init__(
        self, settings: Iterable[WebhookSettings], deliveries: Counter, **options: Any
    ) -> None:
        self.senders: Sequence[WebhookSender] = tuple(
            WebhookSender(hook, deliveries, **options) for hook in settings
        )

    def submit(self, event: EpisodeEvent) -> None:
        """Queue ``event`` on every webhook (synchronous, never blocks)."""
        for sender in self.senders:
            sender.submit(event)

    async def run(self) -> None:
        """Run every sender until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for sender in self.senders:
                tg.create_task(sender.run(), name=f"webhook:{sender.display_url}")
