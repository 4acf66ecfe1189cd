"""A level whose price or quantity is not a finite number (> 0, ≥ 0) is never applied.

Before: a quantity of ``"-1"`` was applied silently (a wrong book reported valid), and ``"NaN"``
— which orjson refuses, so the Binance parser fell back to text levels — was accepted by a bare
``float()``, leaving the depth sums NaN on a valid book.
"""

from __future__ import annotations

import math

import orjson
import pytest

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync
from mmradar.model import BookEvent, BookKind, Side
from mmradar.pipeline import FeedPipeline
from mmradar.replayer import CountingObserver
from mmradar.venues import make_venue

BAD = ["-1", "NaN", "nan", "inf", "-inf", "Infinity", "abc", "", "9" * 5000, "1e400"]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("where", ["price", "qty"])
def test_the_book_refuses_the_level(bad: str, where: str) -> None:
    book = L2Book()
    book.load([["100.0", "1"]], [["101.0", "1"]])
    level = [bad, "1"] if where == "price" else ["99.5", bad]
    with pytest.raises((ValueError, TypeError)):
        book.apply([level], [])
    with pytest.raises((ValueError, TypeError)):
        L2Book().load([level], [["101.0", "1"]])
    assert all(math.isfinite(q) and q > 0 for _, q in book.items(Side.BID))


def test_zero_and_plain_numbers_still_apply() -> None:
    book = L2Book()
    book.load([["100.0", "1"], [99.0, 2.0]], [["101.0", "1"]])
    book.apply([["100.0", "0"], ["98.5", "0.25"]], [])
    assert sorted(book.items(Side.BID)) == [(98.5, 0.25), (99.0, 2.0)]


@pytest.mark.parametrize("bad", ["-1", "NaN", "inf", "abc"])
def test_binance_frame_with_a_bad_level_is_counted_and_resynced(bad: str) -> None:
    pipeline = FeedPipeline(make_venue("binance"), ["BTCUSDT"])
    observer = CountingObserver(["BTCUSDT"])
    pipeline.observer = observer
    inst = pipeline.instruments["BTCUSDT"]
    snapshot = {"lastUpdateId": 10, "bids": [["100.0", "1"]], "asks": [["101.0", "1"]]}
    parser = pipeline.new_parser()

    def diff(u: int, bids: list[list[str]]) -> bytes:
        event = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": u, "u": u, "b": bids, "a": []}
        return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": event})

    pipeline.on_frame(parser, diff(11, [["99.0", "2"]]), 1)
    pipeline.on_snapshot("BTCUSDT", orjson.dumps(snapshot), 2)
    assert inst.valid
    pipeline.on_frame(parser, diff(12, [["99.5", bad]]), 3)
    assert not inst.valid
    assert observer.bad["malformed"] == 1
    assert observer.resyncs["BTCUSDT"]["gap"] == 1
    assert inst.book.levels(Side.BID) == 0  # cleared, never repaired
    commands = pipeline.on_frame(parser, diff(13, [["99.0", "3"]]), 4)
    assert [type(c).__name__ for c in commands] == ["FetchSnapshot"]


def test_sync_invalidates_a_book_deeper_than_its_bound() -> None:
    reasons: list[str] = []
    book = L2Book()
    sync = BookSync(
        make_venue("kraken"), "BTC/USD", book, on_resync=reasons.append, max_levels_per_side=3
    )
    snap = BookEvent(
        "BTC/USD", BookKind.SNAPSHOT, [["100", "1"], ["99", "1"]], [["101", "1"]], 0, 0, None, 1, 1
    )
    sync.on_snapshot(snap)
    assert sync.valid
    deeper = BookEvent("BTC/USD", BookKind.DELTA, [["98", "1"], ["97", "1"]], [], 0, 0, None, 2, 2)
    sync.on_event(deeper)
    assert not sync.valid and reasons == ["overflow"]
