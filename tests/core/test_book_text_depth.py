"""The book's optional venue-text keeping and the synchroniser's depth truncation.

Checksum venues need them: OKX's checksum is defined over the level text exactly as sent
(``"0.10"`` and ``"0.1"`` differ), Kraken's over the book truncated to the subscribed depth.
"""

from __future__ import annotations

from typing import ClassVar

import pytest

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync
from mmradar.model import BookEvent, BookKind, Side
from mmradar.venues.base import ConnectionPlan, FrameParser, SnapshotSource, Venue, Verdict


def test_text_top_returns_the_venue_text_not_a_float_rendering() -> None:
    book = L2Book(keep_text=True)
    book.load([["100.10", "1.500"], ["100.00", "2"]], [["100.20", "0.10"]])
    book.apply([["100.05", "3.0"], ["100.00", "0"]], [["100.30", "7"], ["100.20", "0.100"]])
    assert book.text_top(Side.BID, 5) == [("100.10", "1.500"), ("100.05", "3.0")]
    assert book.text_top(Side.ASK, 1) == [("100.20", "0.100")]
    assert book.text_top(Side.ASK, 5) == [("100.20", "0.100"), ("100.30", "7")]
    book.clear()
    assert book.text_top(Side.BID, 5) == []


def test_text_follows_truncation_and_a_book_without_text_refuses() -> None:
    book = L2Book(keep_text=True)
    book.load([[f"{p}.0", "1"] for p in range(90, 100)], [[f"{p}.0", "1"] for p in range(101, 111)])
    book.truncate(3)
    assert book.text_top(Side.BID, 10) == [("99.0", "1"), ("98.0", "1"), ("97.0", "1")]
    assert book.levels(Side.ASK) == 3
    assert not L2Book().keeps_text
    with pytest.raises(ValueError):
        L2Book().text_top(Side.BID, 1)


class _Depth3(Venue):
    """A stream-snapshot venue whose protocol keeps three levels per side."""

    name: ClassVar[str] = "depth3"
    snapshot_source: ClassVar[SnapshotSource] = SnapshotSource.STREAM
    max_depth: ClassVar[int | None] = 3

    def connections(self, symbols: object, *, trades: bool) -> list[ConnectionPlan]:
        return []

    def new_parser(self) -> FrameParser:
        raise NotImplementedError

    def resubscribe(self, symbol: str) -> tuple[str, ...]:
        return ("again",)

    def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
        return Verdict.APPLY

    def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
        return Verdict.APPLY if delta.last_id == previous.last_id + 1 else Verdict.GAP


def _event(kind: BookKind, n: int, bids: list[list[str]], asks: list[list[str]]) -> BookEvent:
    return BookEvent("X", kind, bids, asks, n, n, None, n, n)


def test_sync_truncates_to_the_venues_depth_after_snapshot_and_every_delta() -> None:
    book = L2Book()
    sync = BookSync(_Depth3(), "X", book)
    bids = [[str(p), "1"] for p in range(1, 6)]
    asks = [[str(p), "1"] for p in range(10, 15)]
    sync.on_event(_event(BookKind.SNAPSHOT, 1, bids, asks))
    assert [p for p, _ in book.items(Side.BID)] == [5.0, 4.0, 3.0]
    assert [p for p, _ in book.items(Side.ASK)] == [10.0, 11.0, 12.0]
    # Truncation happens after the whole message: a level added and one removed keep three.
    sync.on_event(_event(BookKind.DELTA, 2, [["6", "2"], ["5", "0"]], []))
    assert book.items(Side.BID) == [(6.0, 2.0), (4.0, 1.0), (3.0, 1.0)]
    # A better bid pushes the worst one out; deleting a level does not bring old ones back.
    sync.on_event(_event(BookKind.DELTA, 3, [["7", "1"]], [["10", "0"]]))
    assert book.items(Side.BID) == [(7.0, 1.0), (6.0, 2.0), (4.0, 1.0)]
    assert book.items(Side.ASK) == [(11.0, 1.0), (12.0, 1.0)]
    assert sync.valid
