"""Slack and Discord messages: the same readable facts of an episode, laid out for each.

:func:`render` reads the facts from an :class:`~mmradar.signals.episodes.EpisodeEvent` (the
context keys the signal engines build, docs/webhooks.md); :func:`summary` is the one-line
message; :func:`format_slack` and :func:`format_discord` are the request bodies, within each
service's documented limits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

import orjson

from ..fmt import fmt_duration, fmt_notional, fmt_num, fmt_price, iso_utc
from ..signals.episodes import EpisodeEvent
from .payload import json_safe

__all__ = [
    "DISCORD_LIMITS",
    "DepthRow",
    "Facts",
    "format_discord",
    "format_slack",
    "render",
    "summary",
]

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
_NS: Final = 1_000_000_000


def _band_order(band: str) -> tuple[float, str]:
    digits = "".join(ch for ch in band if ch.isdigit() or ch == ".")
    try:
        return float(digits), band
    except ValueError:
        return math.inf, band


def _by_band(depth: object) -> dict[str, dict[str, Any]]:
    """Depth as ``{band: {side: notional}}`` (the engines' ``depth``/``depth_baseline``)."""
    if not isinstance(depth, Mapping):
        return {}
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
        return orjson.dumps(json_safe(value)).decode()
    if isinstance(value, bool):
        return str(value).lower()
    if value is None or isinstance(value, int | float | Decimal):
        return fmt_num(value, 6)
    return str(value)


def render(event: EpisodeEvent) -> Facts:
    """Extract the readable facts of ``event`` (the shared core of the Slack/Discord formats).

    Context keys laid out in their own place, as the signal engines name them
    (:mod:`mmradar.signals.engine`, :mod:`mmradar.signals.crossvenue`): ``best_bid``,
    ``best_ask``, ``mid``, ``spread_bps``, ``spread_baseline_bps``, ``book_valid``,
    ``peak_score``, ``depth`` and ``depth_baseline`` (``{band_bps: {"bid": notional, "ask":
    notional}}``). Every other key is kept in :attr:`Facts.extra`.
    """
    context = event.context
    used: set[str] = set()

    def take(key: str) -> Any:
        if key not in context:
            return None
        used.add(key)
        return context[key]

    def price(key: str) -> str | None:
        return fmt_price(take(key)) if key in context else None

    bid = price("best_bid")
    ask = price("best_ask")
    mid = price("mid")
    spread = take("spread_bps")
    spread_base = take("spread_baseline_bps")
    valid = take("book_valid")
    peak = take("peak_score")
    depth_now = _by_band(take("depth"))
    depth_base = _by_band(take("depth_baseline"))
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
