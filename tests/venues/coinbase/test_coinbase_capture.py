"""The real Advanced Trade capture through the production pipeline, against an independent book.

``tests/fixtures/coinbase/fastmm_coinbase_advanced_20260930.jsonl`` is a real recording of one
Advanced Trade connection (``level2`` + ``market_trades`` + ``heartbeats`` for BTC-USD and
ETH-USD, 250 frames, 2026-09-30; provenance, licence and format in the fixtures'
``SOURCES.md``). Every frame goes through :class:`~mmradar.pipeline.FeedPipeline` with the real
:class:`~mmradar.venues.coinbase.Coinbase` parser, synchroniser, book and signal engine, exactly
as the feed runner hands frames over, and the results are checked against a plain reference
written here (``Decimal`` prices and sizes in dicts, the venue's own per-level ``event_time``
and per-trade ``time``), which shares no code with the service:

* the connection-wide ``sequence_num`` runs 0..249 without a gap, the pipeline asks for nothing
  and counts nothing bad, and both books stay valid and equal to the reference after every
  ``l2_data`` message;
* every trade's aggressor as the service derives it agrees with where the trade printed against
  the reference book as of the trade's ``time`` (an aggressive buyer prints at or above the best
  ask, a seller at or below the best bid): Coinbase's ``side`` names the maker;
* the exported ``mmradar_taker_volume_total{side}`` equals the reference's ``Decimal`` sums with
  the aggressor taken as the opposite of ``side``.

The capture's receive time is a monotonic clock, not Unix time: frames are handed over at the
first envelope ``timestamp`` plus the monotonic offset, and every time compared is the venue's.
"""

from __future__ import annotations

import bisect
import calendar
import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from mmradar.metrics import MarketCollector
from mmradar.model import Event, Side, TakerSide, Trade
from mmradar.pipeline import FeedPipeline
from mmradar.venues.base import FrameParser
from mmradar.venues.coinbase import Coinbase

CAPTURE = (
    Path(__file__).resolve().parents[2]
    / "fixtures"
    / "coinbase"
    / "fastmm_coinbase_advanced_20260930.jsonl"
)
SHA256 = "ee061abcb9c3d8a688e23662111b7efcd153a971776b5344871ab306cf9594e4"
PRODUCTS = ("BTC-USD", "ETH-USD")


def frames() -> list[tuple[int, bytes]]:
    """``(monotonic receive ns, verbatim frame)`` per line."""
    out = []
    for line in CAPTURE.read_bytes().splitlines():
        recv, _, raw = line.partition(b"\t")
        out.append((int(recv), raw))
    return out


def utc_ns(text: str) -> int:
    """RFC 3339 ``…Z`` to epoch ns, independently of the service's parser."""
    assert text.endswith("Z"), text
    head, _, frac = text[:-1].partition(".")
    seconds = calendar.timegm(
        (int(head[0:4]), int(head[5:7]), int(head[8:10]), int(head[11:13]),
         int(head[14:16]), int(head[17:19]), 0, 0, 0)
    )  # fmt: skip
    return seconds * 1_000_000_000 + int((frac + "000000000")[:9])


# -- the independent reference -------------------------------------------------------------------


@dataclass
class RefBook:
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)
    #: after each l2_data event: (greatest level event_time, best bid, best ask)
    touch: list[tuple[int, Decimal, Decimal]] = field(default_factory=list)

    def as_of(self, ts_ns: int) -> tuple[Decimal, Decimal]:
        """Best bid and ask after the last event whose levels are all older than ``ts_ns``."""
        times = [t for t, _, _ in self.touch]
        i = bisect.bisect_left(times, ts_ns)
        assert i > 0, "a trade before the book's snapshot"
        _, bid, ask = self.touch[i - 1]
        return bid, ask


@dataclass
class Reference:
    seqs: list[int]
    books: dict[str, RefBook]
    #: after each l2_data frame (by line index): {product: (levels bid, levels ask)} as floats
    after_frame: dict[int, dict[str, tuple[list[tuple[float, float]], list[tuple[float, float]]]]]
    #: the update events' trades, each event's in ascending trade_id order
    trades: list[dict[str, Any]]
    envelope_ns: list[int]


@cache
def reference() -> Reference:
    seqs: list[int] = []
    books: dict[str, RefBook] = {}
    after_frame = {}
    trades: list[dict[str, Any]] = []
    envelope_ns: list[int] = []
    for i, (_, raw) in enumerate(frames()):
        msg = orjson.loads(raw)
        seqs.append(msg["sequence_num"])
        envelope_ns.append(utc_ns(msg["timestamp"]))
        if msg["channel"] == "l2_data":
            for event in msg["events"]:
                if event["type"] == "snapshot":
                    books[event["product_id"]] = RefBook()
                book = books[event["product_id"]]
                latest = 0
                for u in event["updates"]:
                    side = book.bids if u["side"] == "bid" else book.asks
                    price, qty = Decimal(u["price_level"]), Decimal(u["new_quantity"])
                    if qty == 0:
                        side.pop(price, None)
                    else:
                        side[price] = qty
                    latest = max(latest, utc_ns(u["event_time"]))
                book.touch.append((latest, max(book.bids), min(book.asks)))
            after_frame[i] = {
                p: (
                    [(float(x), float(b.bids[x])) for x in sorted(b.bids, reverse=True)],
                    [(float(x), float(b.asks[x])) for x in sorted(b.asks)],
                )
                for p, b in books.items()
            }
        elif msg["channel"] == "market_trades":
            for event in msg["events"]:
                if event["type"] == "update":
                    trades += sorted(event["trades"], key=lambda t: int(t["trade_id"]))
    return Reference(seqs, books, after_frame, trades, envelope_ns)


# -- the production path ---------------------------------------------------------------------


class Recording:
    """The real Coinbase parser, keeping what it returned (to compare trades one by one)."""

    def __init__(self, inner: FrameParser) -> None:
        self.inner = inner
        self.events: list[Event] = []

    def parse(self, raw: bytes | str, ts_recv_ns: int) -> Sequence[Event]:
        events = self.inner.parse(raw, ts_recv_ns)
        self.events.extend(events)
        return events


class Counts:
    def __init__(self) -> None:
        self.bad: Counter[str] = Counter()
        self.resyncs: Counter[tuple[str, str]] = Counter()

    def bad_message(self, reason: str) -> None:
        self.bad[reason] += 1

    def resync(self, symbol: str, reason: str) -> None:
        self.resyncs[(symbol, reason)] += 1


@dataclass
class Replayed:
    pipeline: FeedPipeline
    parser: Recording
    counts: Counts
    commands: list[object]
    #: line index → {product: (valid, bids, asks)} read from the service's books
    books_after: dict[int, dict[str, tuple[bool, list[tuple[float, float]], list[Any]]]]


@cache
def replay() -> Replayed:
    counts = Counts()
    pipeline = FeedPipeline(Coinbase(), PRODUCTS, counts)
    parser = Recording(pipeline.new_parser())
    lines = frames()
    origin = reference().envelope_ns[0] - lines[0][0]  # monotonic → the venue's clock
    commands: list[object] = []
    books_after = {}
    for i, (recv_mono_ns, raw) in enumerate(lines):
        commands += pipeline.on_frame(parser, raw, origin + recv_mono_ns)
        if i in reference().after_frame:
            books_after[i] = {
                p: (
                    inst.valid,
                    inst.book.items(Side.BID),
                    inst.book.items(Side.ASK),
                )
                for p, inst in pipeline.instruments.items()
            }
    return Replayed(pipeline, parser, counts, commands, books_after)


# -- tests -------------------------------------------------------------------------------------


def test_capture_is_the_vendored_one() -> None:
    assert hashlib.sha256(CAPTURE.read_bytes()).hexdigest() == SHA256
    channels = Counter(orjson.loads(raw)["channel"] for _, raw in frames())
    assert channels == {"l2_data": 213, "market_trades": 28, "heartbeats": 6, "subscriptions": 3}


def test_sequence_holds_and_books_stay_valid_and_exact() -> None:
    ref, run = reference(), replay()
    assert ref.seqs == list(range(len(ref.seqs)))  # the capture itself: no gap
    assert run.commands == []  # no gap seen, nothing to resync
    assert run.counts.bad == Counter() and run.counts.resyncs == Counter()
    compared = 0
    for i, want in ref.after_frame.items():
        got = run.books_after[i]
        for product, (bids, asks) in want.items():
            valid, got_bids, got_asks = got[product]
            assert valid, (i, product)
            assert (got_bids, got_asks) == (bids, asks), (i, product)
            compared += 1
    assert compared > 2 * 200  # both books, after (nearly) every one of the 213 messages
    for product in PRODUCTS:
        assert run.pipeline.instruments[product].sync.updates_applied > 90


def test_every_trade_aggressor_agrees_with_where_it_printed() -> None:
    ref, run = reference(), replay()
    trades = [e for e in run.parser.events if isinstance(e, Trade)]
    assert len(trades) == len(ref.trades) == 107  # the update events' trades (no snapshots)
    where: Counter[str] = Counter()
    for got, raw in zip(trades, ref.trades, strict=True):
        # The same trade, in trade_id order (the venue lists each event's newest first).
        assert (got.symbol, got.price, got.qty) == (
            raw["product_id"], float(raw["price"]), float(raw["size"]),
        )  # fmt: skip
        bid, ask = ref.books[raw["product_id"]].as_of(utc_ns(raw["time"]))
        price = Decimal(raw["price"])
        if bid < price < ask:
            where["inside the spread"] += 1
        elif (got.taker is TakerSide.BUY) == (price >= ask):
            where["agrees"] += 1  # a buyer lifted the ask, a seller hit the bid
        else:
            where["wrong side"] += 1
    assert where["wrong side"] == 0, where
    assert where["agrees"] >= 100, where
    assert where["agrees"] + where["inside the spread"] == 107, where
    # Both aggressor sides occur, so a rule that ignored ``side`` could not pass either.
    assert {t.taker for t in trades} == {TakerSide.BUY, TakerSide.SELL}


def test_exported_taker_volumes_equal_the_decimal_sums() -> None:
    ref, run = reference(), replay()
    want = {(p, s): Decimal(0) for p in PRODUCTS for s in ("buy", "sell")}
    for raw in ref.trades:
        aggressor = "buy" if raw["side"] == "SELL" else "sell"  # side names the maker
        want[(raw["product_id"], aggressor)] += Decimal(raw["size"])
    registry = CollectorRegistry()
    registry.register(MarketCollector([run.pipeline]))
    for (product, side), total in want.items():
        got = registry.get_sample_value(
            "mmradar_taker_volume_total", {"exchange": "coinbase", "symbol": product, "side": side}
        )
        assert got is not None and math.isclose(got, float(total), rel_tol=1e-12), (
            product, side, got, total,
        )  # fmt: skip
    for product in PRODUCTS:  # a side swap would be visible
        assert want[(product, "buy")] != want[(product, "sell")]


def test_trade_event_time_is_the_envelope_timestamp() -> None:
    ref, run = reference(), replay()
    stamps = {
        ref.envelope_ns[i]
        for i, (_, raw) in enumerate(frames())
        if orjson.loads(raw)["channel"] == "market_trades"
    }
    trades = [e for e in run.parser.events if isinstance(e, Trade)]
    assert {t.ts_event_ns for t in trades} <= stamps
