"""Oracle: a real Bybit v5 capture (testnet spot BTCUSDT) through the production path.

``tests/fixtures/bybit/fastmm_bybit_testnet_spot_20260913.jsonl`` (provenance in
``tests/fixtures/bybit/SOURCES.md``): one verbatim frame per line — the subscribe ack, an
``orderbook.50`` snapshot and 18 deltas, ``orderbook.1`` (Bybit's own top of book, a snapshot per
change carrying the same cross sequence ``seq`` as the ``orderbook.50`` message of the same book
state), ``publicTrade``, a pong and a refused subscription.

The service subscribes one depth per symbol (``orderbook.1000``); the parser reads any
``orderbook.{depth}`` topic the same way, so the capture's ``orderbook.50`` stream goes through
the production parser, :class:`FeedPipeline`, the synchroniser and the book, while
``orderbook.1`` — a second depth of the same symbol, never subscribed by the service — is kept
aside as the oracle.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from mmradar.metrics import Metrics
from mmradar.model import Side
from mmradar.pipeline import FeedPipeline
from mmradar.venues.bybit import Bybit

CAPTURE = (
    Path(__file__).resolve().parents[2] / "fixtures" / "bybit"
    / "fastmm_bybit_testnet_spot_20260913.jsonl"
)  # fmt: skip
SYMBOL = "BTCUSDT"
DEPTH_TOPIC = f"orderbook.50.{SYMBOL}"
TOP_TOPIC = f"orderbook.1.{SYMBOL}"


def top(levels: list[list[str]]) -> tuple[float, float]:
    price, size = levels[0]
    return float(price), float(size)


def replay() -> dict[str, Any]:
    venue = Bybit(category="spot")
    registry = CollectorRegistry()
    metrics = Metrics(registry, [("bybit", [SYMBOL])])
    pipeline = FeedPipeline(venue, [SYMBOL], metrics.feed("bybit", [SYMBOL]))
    metrics.register_pipelines([pipeline])
    parser = pipeline.new_parser()
    inst = pipeline.instruments[SYMBOL]
    by_seq: dict[int, tuple[tuple[float, float] | None, tuple[float, float] | None]] = {}
    last_seq: int | None = None
    online = {"match": 0, "mismatch": 0}
    oracle: list[dict[str, Any]] = []
    chain: list[int] = []
    trades: list[dict[str, Any]] = []
    commands = []
    for line in CAPTURE.read_bytes().splitlines():
        msg = orjson.loads(line)
        topic = msg.get("topic")
        if topic == TOP_TOPIC:
            data = msg["data"]
            oracle.append(data)
            # As it arrives: compare when the book's last message has the same cross sequence.
            if data["seq"] == last_seq:
                seen = (inst.book.best_bid(), inst.book.best_ask())
                same = seen == (top(data["b"]), top(data["a"]))
                online["match" if same else "mismatch"] += 1
            continue
        commands += pipeline.on_frame(parser, line, 0)
        if topic == DEPTH_TOPIC:
            assert inst.valid
            last_seq = msg["data"]["seq"]
            chain.append(msg["data"]["u"])
            by_seq[last_seq] = (inst.book.best_bid(), inst.book.best_ask())
        elif topic == f"publicTrade.{SYMBOL}":
            trades += msg["data"]
    return {
        "registry": registry,
        "inst": inst,
        "by_seq": by_seq,
        "online": online,
        "oracle": oracle,
        "chain": chain,
        "trades": trades,
        "commands": commands,
    }


def test_u_chain_holds_through_the_production_synchroniser() -> None:
    run = replay()
    chain = run["chain"]
    assert len(chain) == 19  # 1 snapshot + 18 deltas
    assert chain == list(range(chain[0], chain[0] + 19))  # u steps by one
    inst = run["inst"]
    assert inst.valid and inst.sync.updates_applied == 18
    assert run["commands"] == []
    registry = run["registry"]
    for reason in ("gap", "checksum", "crossed", "stale", "reconnect", "venue_reset"):
        value = registry.get_sample_value(
            "mmradar_book_resyncs_total", {"exchange": "bybit", "symbol": SYMBOL, "reason": reason}
        )
        assert value == 0, reason
    # A 50-level window: the venue deletes what leaves it, so the book stays at 50 per side.
    assert inst.book.levels(Side.BID) == inst.book.levels(Side.ASK) == 50


def test_book_top_equals_orderbook_1_at_equal_seq() -> None:
    run = replay()
    # As the frames arrive (the orderbook.1 message comes after the orderbook.50 message of the
    # same seq): 8 comparisons, all equal.
    assert run["online"] == {"match": 8, "mismatch": 0}
    # By seq, whatever the arrival order: the book after the orderbook.50 message of a seq.
    compared = 0
    for data in run["oracle"]:
        state = run["by_seq"].get(data["seq"])
        if state is None:
            continue  # the last orderbook.1 message has no orderbook.50 message of its seq
        assert state == (top(data["b"]), top(data["a"])), data["seq"]
        compared += 1
    assert (compared, len(run["oracle"])) == (13, 14)


def test_trades_and_venue_errors_are_counted() -> None:
    run = replay()
    registry = run["registry"]
    trades = run["trades"]
    assert len(trades) == 8
    for side, name in (("Buy", "buy"), ("Sell", "sell")):
        want = sum((Decimal(t["v"]) for t in trades if t["S"] == side), Decimal(0))
        got = registry.get_sample_value(
            "mmradar_taker_volume_total", {"exchange": "bybit", "symbol": SYMBOL, "side": name}
        )
        assert got is not None and math.isclose(got, float(want), rel_tol=1e-12), (side, got)
    # The last frame refuses a subscription (an unknown symbol): a venue error, counted.
    errors = registry.get_sample_value(
        "mmradar_feed_bad_messages_total", {"exchange": "bybit", "reason": "venue_error"}
    )
    assert errors == 1
