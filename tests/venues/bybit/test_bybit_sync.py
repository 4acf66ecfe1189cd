"""The Bybit rules through the venue-agnostic synchroniser, and the fake venue's depth window.

The property test drives random books through :class:`fakes.bybit.WindowBook` (the
embedded venue's truth, which turns full-book diffs into Bybit's top-N window deltas), encodes
each change as a Bybit v5 frame, parses it with the production parser and applies it through
:class:`BookSync`: the client's book must equal a brute-force top-N of the full book every time.
"""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes.bybit import WindowBook
from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync, Resubscribe
from mmradar.model import BookEvent, Side
from mmradar.venues.bybit import Bybit

SYMBOL = "BTCUSDT"


def frame(kind: str, u: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> bytes:
    return orjson.dumps(
        {
            "topic": f"orderbook.1000.{SYMBOL}",
            "type": kind,
            "ts": 1_700_000_000_000 + u,
            "data": {"s": SYMBOL, "b": bids, "a": asks, "u": u, "seq": 10 * u},
            "cts": 1_700_000_000_000 + u,
        }
    )


class Harness:
    def __init__(self, venue: Bybit | None = None) -> None:
        self.venue = venue or Bybit()
        self.parser = self.venue.new_parser()
        self.reasons: list[str] = []
        self.book = L2Book()
        self.sync = BookSync(self.venue, SYMBOL, self.book, on_resync=self.reasons.append)

    def feed(self, raw: bytes) -> object:
        (event,) = self.parser.parse(raw, 0)
        assert isinstance(event, BookEvent)
        return self.sync.on_event(event)

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return self.book.items(Side.BID), self.book.items(Side.ASK)


def test_snapshot_deltas_duplicate_gap_and_resubscribe() -> None:
    h = Harness()
    assert h.feed(frame("delta", 99, [("100.0", "1")], [])) is None  # before any snapshot
    assert not h.sync.valid
    h.feed(frame("snapshot", 100, [("100.0", "1"), ("99.5", "2")], [("101.0", "3")]))
    assert h.sync.valid
    h.feed(frame("delta", 101, [("99.5", "0"), ("100.5", "4")], [("101.0", "2.5")]))
    h.feed(frame("delta", 101, [("100.5", "9")], []))  # duplicate: dropped
    assert h.levels() == ([(100.5, 4.0), (100.0, 1.0)], [(101.0, 2.5)])
    action = h.feed(frame("delta", 103, [("100.5", "1")], []))
    assert action == Resubscribe(SYMBOL)
    assert h.reasons == ["gap"] and not h.sync.valid and h.book.levels(Side.BID) == 0
    assert h.feed(frame("delta", 104, [("100.0", "7")], [])) is None  # ignored while syncing
    h.feed(frame("snapshot", 104, [("100.0", "7")], [("101.0", "1")]))
    h.feed(frame("delta", 105, [], [("100.5", "1")]))
    assert h.sync.valid and h.levels() == ([(100.0, 7.0)], [(100.5, 1.0), (101.0, 1.0)])
    assert h.reasons == ["gap"]


def test_restart_snapshot_u_1_replaces_the_book_and_counts_a_venue_reset() -> None:
    h = Harness()
    h.feed(frame("snapshot", 5000, [("100.0", "1"), ("99.0", "1")], [("101.0", "1")]))
    h.feed(frame("delta", 5001, [("99.5", "2")], []))
    h.feed(frame("snapshot", 1, [("98.0", "5")], [("102.0", "6")]))
    assert h.reasons == ["venue_reset"] and h.sync.valid
    assert h.levels() == ([(98.0, 5.0)], [(102.0, 6.0)])
    h.feed(frame("delta", 2, [("98.5", "1")], []))  # the chain restarts from 1
    assert h.levels() == ([(98.5, 1.0), (98.0, 5.0)], [(102.0, 6.0)])
    # A delta claiming u == 1 is a restart too, whatever its type says.
    h.feed(frame("delta", 1, [("97.0", "1")], [("103.0", "1")]))
    assert h.reasons == ["venue_reset", "venue_reset"]
    assert h.levels() == ([(97.0, 1.0)], [(103.0, 1.0)])


def test_repeated_snapshot_replaces_the_book() -> None:
    # Bybit may push the book again as a snapshot (same u): levels it no longer lists go.
    h = Harness()
    h.feed(frame("snapshot", 10, [("100.0", "1"), ("99.0", "1")], [("101.0", "1")]))
    h.feed(frame("delta", 11, [("99.5", "2")], []))
    h.feed(frame("snapshot", 11, [("100.0", "1"), ("99.5", "2")], [("101.0", "1")]))
    assert h.sync.valid
    assert h.levels() == ([(100.0, 1.0), (99.5, 2.0)], [(101.0, 1.0)])
    h.feed(frame("delta", 12, [], [("101.0", "0"), ("101.5", "1")]))
    assert h.levels() == ([(100.0, 1.0), (99.5, 2.0)], [(101.5, 1.0)])
    # a re-push continuing the chain is a refresh, not a reset: nothing counted, the signals
    # keep running; a snapshot that jumps the chain is a reset
    assert h.reasons == []
    h.feed(frame("snapshot", 13, [("100.0", "1")], [("101.5", "1")]))
    assert h.reasons == [] and h.sync.valid
    h.feed(frame("snapshot", 40, [("100.0", "1")], [("101.5", "1")]))
    assert h.reasons == ["venue_reset"] and h.sync.valid


class _Shallow(Bybit):
    """A Bybit venue with a 5-level window, so small random books exercise the window edge."""

    max_depth = 5


def _top(side: dict[str, str], n: int, bids: bool) -> list[tuple[float, float]]:
    prices = sorted(side, key=Decimal, reverse=bids)[:n]
    return [(float(p), float(side[p])) for p in prices]


_price = st.integers(min_value=1, max_value=40)
_qty = st.sampled_from(["0", "0", "0.5", "1", "2.25"])
_diff = st.tuples(
    st.lists(st.tuples(_price, _qty), max_size=6), st.lists(st.tuples(_price, _qty), max_size=6)
)


@settings(max_examples=80, deadline=None)
@given(st.lists(_diff, min_size=1, max_size=40))
def test_window_deltas_keep_the_client_equal_to_the_top_n(diffs: list[object]) -> None:
    depth = 5
    full_bids = {f"{p}.0": "1" for p in range(1, 9)}  # bids 1..8, asks 41..48: never crossed
    full_asks = {f"{p + 40}.0": "1" for p in range(1, 9)}
    truth = WindowBook(full_bids.items(), full_asks.items(), depth=depth)
    h = Harness(_Shallow())
    u = 1000
    h.feed(frame("snapshot", u, *truth.window()))
    for raw_bids, raw_asks in diffs:  # type: ignore[misc]
        bids = [(f"{p}.0", q) for p, q in raw_bids]
        asks = [(f"{p + 40}.0", q) for p, q in raw_asks]
        for side, levels in ((full_bids, bids), (full_asks, asks)):
            for p, q in levels:
                if Decimal(q).is_zero():
                    side.pop(p, None)
                else:
                    side[p] = q
        change = truth.apply(bids, asks)
        if change[0] or change[1]:
            u += 1
            h.feed(frame("delta", u, *change))
        assert h.sync.valid and h.reasons == []
        assert h.levels() == (_top(full_bids, depth, True), _top(full_asks, depth, False))
        window_bids, window_asks = truth.window()
        assert h.levels() == (
            [(float(p), float(q)) for p, q in window_bids],
            [(float(p), float(q)) for p, q in window_asks],
        )
