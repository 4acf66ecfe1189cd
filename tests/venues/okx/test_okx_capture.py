"""Oracle: OKX's own checksums in a real capture (``tests/fixtures/okx/cryptofeed_OKX.ws.1.0``).

The capture (2022-05-13, BTC-USDT / BTC-USD-220527 / UNI-USD-SWAP; provenance and licence in
``tests/fixtures/okx/README.md``) carries a non-zero signed CRC32 on each of its 3 snapshots and
287 updates. Every one of them must be reproduced from the book built from the messages, with
the level text exactly as received.

The capture predates OKX's ``seqId``/``prevSeqId`` fields, so it is read twice: once by a thin
reader of the 2022 shape straight into :class:`L2Book`, and once through the real frame parser
and book synchroniser after giving each books message the chain OKX sends today.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync
from mmradar.errors import UnknownMessage
from mmradar.model import BookEvent, Notice, NoticeKind, Side, TakerSide, Trade
from mmradar.venues.okx import Okx, checksum_text, okx_checksum, signed_crc32

CAPTURE = Path(__file__).resolve().parents[2] / "fixtures" / "okx" / "cryptofeed_OKX.ws.1.0"


def received() -> Iterator[tuple[int, bytes]]:
    """``(receive time ns, frame)`` of every frame the recorder received."""
    with CAPTURE.open("rb") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith(b"wss://"):  # connection / sent-frame records
                continue
            stamp, sep, frame = line.partition(b": ")
            assert sep, line[:80]
            yield int(float(stamp) * 1e9), frame


def books_messages() -> Iterator[tuple[int, dict[str, Any]]]:
    for ts, frame in received():
        msg = orjson.loads(frame)
        if msg.get("arg", {}).get("channel") == "books" and "data" in msg:
            yield ts, msg


def test_thin_reader_reproduces_every_checksum() -> None:
    books: dict[str, L2Book] = {}
    results: Counter[tuple[str, bool]] = Counter()
    for _, msg in books_messages():
        symbol = msg["arg"]["instId"]
        for item in msg["data"]:
            if msg["action"] == "snapshot":
                books[symbol] = L2Book(keep_text=True)
                books[symbol].load(item["bids"], item["asks"])
            else:
                books[symbol].apply(item["bids"], item["asks"])
            results[(msg["action"], okx_checksum(books[symbol]) == item["checksum"])] += 1
    assert results == {("snapshot", True): 3, ("update", True): 287}
    assert set(books) == {"BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP"}


def test_worked_example_uni_usd_swap_snapshot() -> None:
    snapshot = next(
        msg for _, msg in books_messages()
        if msg["arg"]["instId"] == "UNI-USD-SWAP" and msg["action"] == "snapshot"
    )  # fmt: skip
    item = snapshot["data"][0]
    assert item["checksum"] == 555605283
    book = L2Book(keep_text=True)
    book.load(item["bids"], item["asks"])
    text = checksum_text(book.text_top(Side.BID, 25), book.text_top(Side.ASK, 25))
    assert text.startswith("5.14:251:5.148:60:5.139:25:")
    assert signed_crc32(text) == 555605283 == okx_checksum(book)


class CountingOkx(Okx):
    """The real venue, recording every checksum verdict the synchroniser asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.verdicts: Counter[bool | None] = Counter()

    def verify_checksum(self, book: L2Book, event: BookEvent) -> bool | None:
        verdict = super().verify_checksum(book, event)
        self.verdicts[verdict] += 1
        return verdict


def with_todays_chain(frames: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    """Give books messages the ``seqId``/``prevSeqId`` chain OKX sends today (steps of 3)."""
    last: dict[str, int] = {}
    for ts, frame in frames:
        msg = orjson.loads(frame)
        if msg.get("arg", {}).get("channel") == "books" and "data" in msg:
            symbol = msg["arg"]["instId"]
            for item in msg["data"]:
                seq = last.get(symbol, 1000) + 3
                item["prevSeqId"] = -1 if msg["action"] == "snapshot" else last[symbol]
                item["seqId"] = last[symbol] = seq
            frame = orjson.dumps(msg)
        yield ts, frame


def test_parser_and_synchroniser_reproduce_every_checksum() -> None:
    venue = CountingOkx()
    parser = venue.new_parser()
    resyncs: list[str] = []
    syncs: dict[str, BookSync] = {}
    snapshot_checks: Counter[bool] = Counter()
    trades: list[Trade] = []
    notices: Counter[NoticeKind] = Counter()
    unknown = 0
    for ts, frame in with_todays_chain(received()):
        try:
            events = parser.parse(frame, ts)
        except UnknownMessage:
            unknown += 1  # tickers: not subscribed by this service
            continue
        for event in events:
            if isinstance(event, BookEvent):
                sync = syncs.get(event.symbol)
                if sync is None:
                    book = L2Book(keep_text=venue.book_keeps_text)
                    sync = syncs[event.symbol] = BookSync(
                        venue, event.symbol, book, on_resync=resyncs.append
                    )
                assert event.checksum is not None  # non-zero in 2022
                sync.on_event(event)
                if event.kind.value == "snapshot":
                    snapshot_checks[okx_checksum(sync.book) == event.checksum] += 1
            elif isinstance(event, Trade):
                trades.append(event)
            else:
                assert isinstance(event, Notice)
                notices[event.kind] += 1
    assert resyncs == []
    assert all(sync.valid for sync in syncs.values())
    assert snapshot_checks == {True: 3}
    # The synchroniser verifies every checksum it is given: 3 snapshots and 287 updates.
    assert venue.verdicts == {True: 290}
    assert sum(sync.updates_applied for sync in syncs.values()) == 287

    # Trades: one per data item, taker side as sent; acks are subscription notices.
    expected_trades = []
    acks = tickers = 0
    for _, frame in received():
        msg = orjson.loads(frame)
        channel = msg.get("arg", {}).get("channel")
        if msg.get("event") == "subscribe":
            acks += 1
        elif channel == "tickers":
            tickers += 1
        elif channel == "trades":
            expected_trades += [
                (d["instId"], float(d["px"]), float(d["sz"]), d["side"]) for d in msg["data"]
            ]
    assert [(t.symbol, t.price, t.qty, t.taker.value) for t in trades] == expected_trades
    assert len(trades) >= 74
    assert {t.taker for t in trades} == {TakerSide.BUY, TakerSide.SELL}
    assert notices == {NoticeKind.SUBSCRIBED: acks}
    assert unknown == tickers > 0


@pytest.mark.parametrize("corrupt_from", [0, 100, 250])
def test_a_respelled_level_breaks_the_checksum(corrupt_from: int) -> None:
    # The checksum is over the text: re-spelling one quantity within the top 25 ("0.5" as
    # "0.50", "7" as "7.0") changes nothing numerically but must fail the check.
    venue = CountingOkx()
    parser = venue.new_parser()
    syncs: dict[str, BookSync] = {}
    shadows: dict[str, L2Book] = {}
    resyncs: list[str] = []
    n = 0
    corrupted = False
    for ts, frame in with_todays_chain(received()):
        msg = orjson.loads(frame)
        if msg.get("arg", {}).get("channel") != "books" or "data" not in msg:
            continue
        symbol = msg["arg"]["instId"]
        item = msg["data"][0]
        if msg["action"] == "snapshot":
            shadows[symbol] = L2Book(keep_text=True)
            shadows[symbol].load(item["bids"], item["asks"])
        else:
            shadow = shadows[symbol]
            shadow.apply(item["bids"], item["asks"])
            if n >= corrupt_from and not corrupted:
                top = {p for side in (Side.BID, Side.ASK) for p, _ in shadow.text_top(side, 25)}
                level = next(
                    (lv for lv in item["bids"] + item["asks"] if lv[1] != "0" and lv[0] in top),
                    None,
                )
                if level is not None:
                    level[1] = level[1] + "0" if "." in level[1] else level[1] + ".0"
                    frame = orjson.dumps(msg)
                    corrupted = True
            n += 1
        for event in parser.parse(frame, ts):
            assert isinstance(event, BookEvent)
            sync = syncs.setdefault(
                event.symbol,
                BookSync(venue, event.symbol, L2Book(keep_text=True), on_resync=resyncs.append),
            )
            sync.on_event(event)
    assert corrupted
    assert venue.verdicts[False] == 1
    assert resyncs == ["checksum"]
