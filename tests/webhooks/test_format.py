"""The webhook bodies (pure): exact JSON, the same facts in Slack and Discord, limits, NaN."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmradar.signals.episodes import EpisodeEvent
from mmradar.webhooks import (
    DISCORD_LIMITS,
    encode,
    format_discord,
    format_json,
    format_slack,
    summary,
)

from .conftest import CONTEXT, make_event


def strict_loads(body: bytes) -> Any:
    """json.loads that refuses NaN/Infinity (which Python's json accepts by default)."""

    def reject(name: str) -> None:
        raise ValueError(f"invalid JSON constant {name}")

    return json.loads(body, parse_constant=reject)


def strings(payload: Any) -> Iterator[str]:
    if isinstance(payload, str):
        yield payload
    elif isinstance(payload, dict):
        for value in payload.values():
            yield from strings(value)
    elif isinstance(payload, list):
        for value in payload:
            yield from strings(value)


def all_text(payload: Any) -> str:
    return "\n".join(strings(payload))


# --------------------------------------------------------------------------------------------
# json
# --------------------------------------------------------------------------------------------


def test_json_firing_exact() -> None:
    body = strict_loads(encode(make_event("firing"), "json"))
    assert body == {
        "symptom": "spread_widening",
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "side": "both",
        "state": "firing",
        "started_at": "2024-08-08T23:54:13.123Z",
        "ended_at": None,
        "score": 5.23719,
        "context": CONTEXT,
        "recording": None,
    }
    assert list(body) == [
        "symptom", "exchange", "symbol", "side", "state",
        "started_at", "ended_at", "score", "context", "recording",
    ]  # fmt: skip


def test_json_names_the_flight_recording() -> None:
    name = "flight-20240808T235413.130Z-binance-episode.jsonl.gz"
    event = dataclasses.replace(make_event("firing"), recording=name)
    assert strict_loads(encode(event, "json"))["recording"] == name
    for fmt in ("slack", "discord"):
        assert name in encode(event, fmt).decode()


def test_json_resolved_exact() -> None:
    body = strict_loads(encode(make_event("resolved", score=1.13), "json"))
    assert body == {
        "symptom": "spread_widening",
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "side": "both",
        "state": "resolved",
        "started_at": "2024-08-08T23:54:13.123Z",
        "ended_at": "2024-08-08T23:56:26.500Z",
        "score": 1.13,
        "context": {**CONTEXT, "peak_score": 6.0213},
        "recording": None,
    }


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_become_null(bad: float) -> None:
    event = make_event(
        score=bad,
        spread_bps=bad,
        depth={"10": {"bid": bad, "ask": 1.0}},
        series=[1.0, bad],
    )
    body = format_json(event)
    assert body["score"] is None
    assert body["context"]["spread_bps"] is None
    assert body["context"]["depth"] == {"10": {"bid": None, "ask": 1.0}}
    assert body["context"]["series"] == [1.0, None]
    for fmt in ("json", "slack", "discord"):
        strict_loads(encode(event, fmt))  # valid JSON, no NaN/Infinity tokens
    assert "score n/a" in summary(event)


# --------------------------------------------------------------------------------------------
# slack and discord: the same facts, readable
# --------------------------------------------------------------------------------------------

FACTS_FIRING = [
    "FIRING", "spread_widening", "binance", "BTCUSDT", "both",
    "5.24",                                  # score
    "61829.76", "61841.13",                  # bid / ask
    "1.84 bps", "0.0016",                    # spread now, baseline
    "2.71M", "3.1M", "1.9M", "2.99M",        # ±10 bps depth now vs baseline, bid and ask
    "14.2M", "15M", "11.9M", "14.6M",        # ±50 bps
    "27.9M", "28.4M", "25.1M", "28.1M",      # ±100 bps
    "52M", "51.8M", "49.9M", "50.3M",        # ±200 bps
    "dealer_pressure", "-0.1873",            # other context keys, as key: value
    "z_spread=5.23719", "wide_fraction=0.93",
    "valid",
    "2024-08-08T23:54:13.123Z",
]  # fmt: skip


@pytest.mark.parametrize("fmt", ["slack", "discord"])
def test_readable_formats_carry_the_facts(fmt: str) -> None:
    firing = strict_loads(encode(make_event("firing"), fmt))
    text = all_text(firing)
    for fact in FACTS_FIRING:
        assert fact in text, (fact, text)
    assert "NOT valid" not in text
    resolved = all_text(strict_loads(encode(make_event("resolved", score=1.13), fmt)))
    for fact in ("RESOLVED", "1.13", "peak 6.02", "2024-08-08T23:56:26.500Z", "2m 13s"):
        assert fact in resolved, (fact, resolved)
    invalid = all_text(strict_loads(encode(make_event(book_valid=False), fmt)))
    assert "NOT valid" in invalid


def test_summary_line() -> None:
    assert summary(make_event()) == (
        "🔴 FIRING spread_widening binance BTCUSDT (both) score 5.24 — "
        "bid 61829.76 / ask 61841.13, spread 1.84 bps (baseline 0.0016), "
        "depth ±10bps bid 2.71M (baseline 3.1M) ask 1.9M (baseline 2.99M); book valid"
    )
    assert summary(make_event("resolved", score=1.13)).startswith(
        "🟢 RESOLVED spread_widening binance BTCUSDT (both) score 1.13 (peak 6.02) after 2m 13s — "
    )


def test_slack_shape_and_colour() -> None:
    firing = format_slack(make_event("firing"))
    resolved = format_slack(make_event("resolved"))
    assert firing["text"] == summary(make_event("firing"))
    (att,) = firing["attachments"]
    assert att["color"] == "#d62728"
    assert resolved["attachments"][0]["color"] == "#2ca02c"
    assert att["fallback"] == firing["text"]
    assert all(b["type"] in ("section", "context") for b in att["blocks"])


def test_discord_shape_and_colour() -> None:
    firing = format_discord(make_event("firing"))
    resolved = format_discord(make_event("resolved"))
    (embed,) = firing["embeds"]
    assert embed["color"] == 0xD62728
    assert resolved["embeds"][0]["color"] == 0x2CA02C
    assert embed["title"] == "🔴 FIRING spread_widening binance BTCUSDT (both)"
    assert embed["timestamp"] == "2024-08-08T23:54:13.123Z"
    assert resolved["embeds"][0]["timestamp"] == "2024-08-08T23:56:26.500Z"
    assert firing["allowed_mentions"] == {"parse": []}
    names = [f["name"] for f in embed["fields"]]
    assert "Depth ±10 bps (now vs baseline)" in names
    assert "Depth ±50 bps (now vs baseline)" in names


def test_depth_and_unknown_keys() -> None:
    event = make_event(
        depth={"10": {"bid": 2_000_000.0, "ask": 1_000_000.0}},
        depth_baseline={"10": {"bid": 4_000_000.0, "ask": 1_100_000.0}},
        imbalance_10bps=0.3333333,
        note="venue maintenance <soon> & more",
    )
    line = summary(event)
    assert "depth ±10bps bid 2M (baseline 4M) ask 1M (baseline 1.1M)" in line
    discord = all_text(format_discord(event))
    assert "imbalance_10bps" in discord and "0.333333" in discord
    slack = all_text(format_slack(event))
    assert "note: venue maintenance &lt;soon&gt; &amp; more" in slack


def test_missing_context_still_readable() -> None:
    bare = EpisodeEvent(
        symptom="liquidity_pull", exchange="binance-usdm", symbol="ETHUSDT", side="both",
        state="firing", started_at_ns=0, ended_at_ns=None, score=3.0, context={},
    )  # fmt: skip
    assert summary(bare) == "🔴 FIRING liquidity_pull binance-usdm ETHUSDT (both) score 3"
    for fmt in ("json", "slack", "discord"):
        strict_loads(encode(bare, fmt))


def test_limits_respected() -> None:
    long = "X" * 5000
    extra = {f"key_{i:02d}_{'k' * 300}": long for i in range(40)}
    event = EpisodeEvent(
        symptom="spread_widening" * 30, exchange="binance", symbol="S" * 400, side="both",
        state="firing", started_at_ns=0, ended_at_ns=None, score=1.0,
        context={**CONTEXT, **extra},
    )  # fmt: skip
    lim = DISCORD_LIMITS
    discord = format_discord(event)
    assert len(discord["content"]) <= lim["content"]
    (embed,) = discord["embeds"]
    assert len(embed["title"]) <= lim["title"]
    assert len(embed.get("description", "")) <= lim["description"]
    assert 0 < len(embed["fields"]) <= lim["fields"]
    for f in embed["fields"]:
        assert 0 < len(f["name"]) <= lim["field_name"]
        assert 0 < len(f["value"]) <= lim["field_value"]
    total = len(embed["title"]) + len(embed["footer"]["text"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= lim["embed_total"]

    slack = format_slack(event)
    for block in slack["attachments"][0]["blocks"]:
        if "text" in block:
            assert len(block["text"]["text"]) <= 3000
        if "fields" in block:
            assert len(block["fields"]) <= 10
            assert all(len(f["text"]) <= 2000 for f in block["fields"])


def test_docs_examples_are_real_output() -> None:
    """docs/webhooks.md shows what the formatters produce for the fixture episode."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "webhooks.md").read_text("utf-8")
    blocks = [
        json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", doc, re.S) if "..." not in b
    ]
    recorded = dataclasses.replace(
        make_event("firing"), recording="flight-20240808T235413.130Z-binance-episode.jsonl.gz"
    )
    assert format_json(recorded) in blocks
    assert format_slack(make_event("firing")) in blocks
    assert format_discord(make_event("resolved", score=1.13)) in blocks
