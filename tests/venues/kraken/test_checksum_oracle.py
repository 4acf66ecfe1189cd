"""The checksum engine against a real Kraken capture: every exchange checksum must verify.

``tests/fixtures/kraken/cryptofeed_KRAKEN.ws.50.0`` is a real WebSocket **v1** recording (10
pairs, ``book`` depth 1000, 10 snapshots and 4,269 updates, each update carrying the venue's
CRC32 ``"c"``; provenance and licence in ``tests/fixtures/kraken/README.md``). v1 sends prices
and volumes as fixed-decimal strings and v2 as numbers, but the checksum string rule is the
same, so the capture is an exchange-produced oracle for :func:`checksum_of`, for the book's
level text and for the synchroniser's apply → truncate → verify order.

The v1 reader below exists only for this test: the service speaks v2.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync, Resubscribe
from mmradar.model import BookEvent, BookKind, Side
from mmradar.venues.kraken import BOOK_DEPTH, CHECKSUM_LEVELS, Kraken, checksum_of, level_digits

CAPTURE = Path(__file__).resolve().parents[2] / "fixtures" / "kraken" / "cryptofeed_KRAKEN.ws.50.0"
PAIRS = {
    "XMR/USD", "SC/EUR", "WAVES/EUR", "OMG/USD", "ADA/XBT",
    "KSM/XBT", "ETH/CHF", "XBT/CHF", "OCEAN/XBT", "GRT/ETH",
}  # fmt: skip


@dataclass
class V1Message:
    """One v1 book message: a snapshot (``as``/``bs``) or an update (``a``/``b``, ``c``)."""

    pair: str
    snapshot: bool
    bids: list[list[str]] = field(default_factory=list)
    asks: list[list[str]] = field(default_factory=list)
    checksum: int | None = None


def read_v1(path: Path) -> Iterator[V1Message]:
    """Book messages of a cryptofeed raw Kraken v1 capture, in order.

    Received lines are ``<epoch seconds>: <json>``; book messages are arrays
    ``[channelID, {..}, ({..},) "book-1000", pair]`` whose dicts hold ``as``/``bs`` (snapshot) or
    ``a``/``b`` with the checksum ``c`` in the last dict. Levels are
    ``[price, volume, timestamp(, "r")]`` strings.
    """
    for line in path.read_text().splitlines():
        if not line or line.startswith("wss://"):
            continue  # blank lines, connection records and sent frames
        _, _, payload = line.partition(": ")
        msg: Any = orjson.loads(payload)
        if not isinstance(msg, list) or not str(msg[-2]).startswith("book-"):
            continue  # systemStatus, subscriptionStatus, heartbeat
        pair = msg[-1]
        dicts = [d for d in msg[1:-2] if isinstance(d, dict)]
        if "as" in dicts[0] or "bs" in dicts[0]:
            yield V1Message(pair, True, dicts[0].get("bs", []), dicts[0].get("as", []))
            continue
        out = V1Message(pair, False)
        for d in dicts:
            out.bids += d.get("b", [])
            out.asks += d.get("a", [])
        out.checksum = int(dicts[-1]["c"])
        yield out


def test_capture_is_the_documented_one() -> None:
    messages = list(read_v1(CAPTURE))
    assert {m.pair for m in messages} == PAIRS
    assert sum(m.snapshot for m in messages) == 10
    assert sum(not m.snapshot for m in messages) == 4269
    assert all(m.checksum is not None for m in messages if not m.snapshot)


def test_every_capture_checksum_verifies_with_the_text_book() -> None:
    books: dict[str, L2Book] = {}
    matches = mismatches = 0
    deepest = 0
    for m in read_v1(CAPTURE):
        if m.snapshot:
            books[m.pair] = book = L2Book(keep_text=True)
            book.load(m.bids, m.asks)
        else:
            book = books[m.pair]
            book.apply(m.bids, m.asks)
        book.truncate(BOOK_DEPTH)
        deepest = max(deepest, book.levels(Side.BID), book.levels(Side.ASK))
        if m.checksum is None:
            continue
        got = checksum_of(
            book.text_top(Side.ASK, CHECKSUM_LEVELS), book.text_top(Side.BID, CHECKSUM_LEVELS)
        )
        if got == m.checksum:
            matches += 1
        else:
            mismatches += 1
    assert (matches, mismatches) == (4269, 0)
    assert 0 < deepest <= BOOK_DEPTH


def test_every_capture_checksum_verifies_through_the_synchroniser() -> None:
    """The service's own path: BookSync applies, truncates to the venue's depth, then asks
    :meth:`Kraken.verify_checksum`; a mismatch would be counted as a ``checksum`` resync."""
    venue = Kraken()
    resyncs: list[str] = []
    verified: list[BookEvent] = []
    syncs: dict[str, BookSync] = {}
    for pair in PAIRS:
        syncs[pair] = BookSync(
            venue, pair, L2Book(keep_text=venue.book_keeps_text),
            on_resync=resyncs.append, on_applied=verified.append,
        )  # fmt: skip
    for n, m in enumerate(read_v1(CAPTURE)):
        kind = BookKind.SNAPSHOT if m.snapshot else BookKind.DELTA
        event = BookEvent(m.pair, kind, m.bids, m.asks, 0, 0, None, n, n, m.checksum)
        assert syncs[m.pair].on_event(event) is None
    assert resyncs == []
    assert len(verified) == 4269
    assert all(s.valid for s in syncs.values())


def test_a_corrupted_capture_checksum_is_a_checksum_resync() -> None:
    venue = Kraken()
    resyncs: list[str] = []
    sync = BookSync(venue, "GRT/ETH", L2Book(keep_text=True), on_resync=resyncs.append)
    actions = []
    for n, m in enumerate(x for x in read_v1(CAPTURE) if x.pair == "GRT/ETH"):
        kind = BookKind.SNAPSHOT if m.snapshot else BookKind.DELTA
        checksum = m.checksum
        if n == 5:
            assert checksum is not None
            checksum ^= 1
        actions.append(
            sync.on_event(BookEvent(m.pair, kind, m.bids, m.asks, 0, 0, None, n, n, checksum))
        )
        if n == 5:
            break
    assert resyncs == ["checksum"]
    assert [a for a in actions if a is not None] == [Resubscribe("GRT/ETH")]
    assert not sync.valid


def test_worked_example_grt_eth_first_update() -> None:
    """docs/venues/kraken.md: GRT/ETH's first update has ``c="2922705373"`` and
    its best ask ``("0.000835600", "304.30645202")`` contributes ``"83560030430645202"``."""
    messages = [m for m in read_v1(CAPTURE) if m.pair == "GRT/ETH"]
    snapshot, first = messages[0], messages[1]
    assert snapshot.snapshot and not first.snapshot
    assert first.checksum == 2922705373
    book = L2Book(keep_text=True)
    book.load(snapshot.bids, snapshot.asks)
    book.apply(first.bids, first.asks)
    best_ask = book.text_top(Side.ASK, 1)[0]
    assert best_ask == ("0.000835600", "304.30645202")
    assert level_digits(best_ask[0]) + level_digits(best_ask[1]) == "83560030430645202"
    asks = book.text_top(Side.ASK, CHECKSUM_LEVELS)
    bids = book.text_top(Side.BID, CHECKSUM_LEVELS)
    assert checksum_of(asks, bids) == 2922705373


@pytest.mark.parametrize(
    ("text", "digits"),
    [("45285.2", "452852"), ("0.00100000", "100000"), ("0.12307", "12307"),
     ("600.00000000", "60000000000"), ("0.000835600", "835600"), ("10", "10")],
)  # fmt: skip
def test_level_digits_rule(text: str, digits: str) -> None:
    assert level_digits(text) == digits
