"""Quiet is not stale: a stale book is kept and revalidated by the venue's own integrity rules.

The synchroniser and the pipeline, driven with real frames (Binance spot depth events as the
venue documents them; Kraken's real v2 ALGO/USD snapshot and update, sources in
``tests/fixtures/kraken/SOURCES.md``) and an injected clock, so every time is exact.
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync, Resubscribe
from mmradar.metrics import Metrics
from mmradar.model import BookEvent
from mmradar.pipeline import FeedObserver, FeedPipeline
from mmradar.venues.binance import BinanceSpot
from mmradar.venues.kraken import Kraken

KRAKEN_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kraken"
SYM = "BTCUSDT"
T0 = 1_700_000_000_000_000_000  # wall clock, ns


class ManualClock:
    """The service's clock, moved by hand."""

    def __init__(self, wall_ns: int) -> None:
        self.now_ns = wall_ns

    def wall_ns(self) -> int:
        return self.now_ns

    def monotonic(self) -> float:
        return self.now_ns / 1e9


def kraken_fixture(name: str) -> bytes:
    return (KRAKEN_FIXTURES / f"{name}.json").read_bytes().strip()


class Depth10(Kraken):
    max_depth = 10  # the captured subscription's depth


def kraken_live() -> tuple[BookSync, list[str], BookEvent]:
    venue = Depth10()
    parser = venue.new_parser()
    assert parser.parse(kraken_fixture("instrument_snapshot"), T0) == ()
    resyncs: list[str] = []
    sync = BookSync(venue, "ALGO/USD", L2Book(keep_text=True), on_resync=resyncs.append)
    (snapshot,) = parser.parse(kraken_fixture("book_snapshot"), T0)
    (update,) = parser.parse(kraken_fixture("book_update"), T0)
    assert isinstance(snapshot, BookEvent) and isinstance(update, BookEvent)
    assert sync.on_event(snapshot) is None and sync.valid
    return sync, resyncs, update


def test_stale_kraken_book_is_revalidated_by_the_next_checksum() -> None:
    sync, resyncs, update = kraken_live()
    assert sync.mark_stale() and not sync.valid
    # the real update's checksum (1100635717) verifies on the kept book: valid, no resubscribe
    assert sync.on_event(update) is None
    assert sync.valid and resyncs == ["stale"]


def test_stale_kraken_book_whose_next_checksum_fails_resubscribes() -> None:
    sync, resyncs, update = kraken_live()
    sync.mark_stale()
    assert sync.on_event(update._replace(checksum=1100635718)) == Resubscribe("ALGO/USD")
    assert not sync.valid and not sync.stale and resyncs == ["stale", "checksum"]


# -- the pipeline: staleness by receive time, signals suppressed, age exported ----------------


def depth(first: int, last: int, bids: list[list[str]], ts_ms: int) -> bytes:
    return orjson.dumps(
        {"e": "depthUpdate", "E": ts_ms, "s": SYM, "U": first, "u": last, "b": bids, "a": []}
    )


class Seen:
    """Notes resyncs and passes them on (as the feed runner's wrapper does)."""

    def __init__(self, inner: FeedObserver) -> None:
        self.inner = inner
        self.resyncs: list[tuple[str, str]] = []

    def bad_message(self, reason: str) -> None:
        raise AssertionError(reason)

    def resync(self, symbol: str, reason: str) -> None:
        self.resyncs.append((symbol, reason))
        self.inner.resync(symbol, reason)


def test_pipeline_marks_quiet_books_stale_and_the_sequence_brings_them_back() -> None:
    clock = ManualClock(T0)
    registry = CollectorRegistry()
    metrics = Metrics(registry, [("binance", [SYM])])
    pipeline = FeedPipeline(BinanceSpot(), [SYM], metrics.feed("binance", [SYM]))
    metrics.register_pipelines([pipeline], clock=clock)
    # An observer set after construction sees every event (the feed runner wraps the one it
    # was built with to log resyncs).
    seen = Seen(pipeline.observer)
    pipeline.observer = seen
    parser = pipeline.new_parser()
    inst = pipeline.instruments[SYM]
    labels = {"exchange": "binance", "symbol": SYM}

    def value(name: str, **extra: str) -> float:
        got = registry.get_sample_value(name, {**labels, **extra})
        assert got is not None, name
        return got

    ms = T0 // 1_000_000
    assert math.isnan(value("mmradar_book_last_depth_age_seconds"))
    commands = pipeline.on_frame(parser, depth(101, 102, [["99.5", "1"]], ms), clock.now_ns)
    assert [type(c).__name__ for c in commands] == ["FetchSnapshot"]
    body = orjson.dumps({"lastUpdateId": 100, "bids": [["99", "1"]], "asks": [["101", "1"]]})
    assert pipeline.on_snapshot(SYM, body, clock.now_ns) == []
    assert inst.valid and inst.engine.live

    # 30 s of silence: not stale yet with 60 s; the age is read from the injected clock
    clock.now_ns += 30 * 10**9
    assert pipeline.mark_stale(clock.now_ns, 60 * 10**9) == []
    assert value("mmradar_book_last_depth_age_seconds") == 30.0
    # 61 s: stale; counted once as a stale episode; signals stop; the book is kept
    clock.now_ns += 31 * 10**9
    assert pipeline.mark_stale(clock.now_ns, 60 * 10**9) == [SYM]
    assert pipeline.mark_stale(clock.now_ns, 60 * 10**9) == []
    assert value("mmradar_book_valid") == 0.0
    assert value("mmradar_book_resyncs_total", reason="stale") == 1.0
    assert value("mmradar_book_last_depth_age_seconds") == 61.0
    assert not inst.engine.live and math.isnan(value("mmradar_best_bid_price"))
    assert inst.book.best_bid_price() == 99.5  # kept
    assert seen.resyncs == [(SYM, "stale")]

    # the next message continues the sequence: valid again, no command (no snapshot)
    frame = depth(103, 103, [["99.6", "2"]], ms + 61_000)
    commands = pipeline.on_frame(parser, frame, clock.now_ns)
    assert commands == []
    assert inst.valid and inst.engine.live
    assert value("mmradar_book_valid") == 1.0
    assert value("mmradar_best_bid_price") == 99.6
    assert value("mmradar_book_last_depth_age_seconds") == 0.0
    assert value("mmradar_book_resyncs_total", reason="gap") == 0.0
    assert seen.resyncs == [(SYM, "stale")]
