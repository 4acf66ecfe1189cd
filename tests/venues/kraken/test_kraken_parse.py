"""Kraken v2 frame parsing, exact level text, checksum, connection planning and verdicts.

Messages are ``tests/fixtures/kraken/*.json`` (sources in ``tests/fixtures/kraken/SOURCES.md``);
every parse is compared with the whole expected event.
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync, Resubscribe
from mmradar.errors import MalformedMessage, UnknownMessage
from mmradar.model import BookEvent, BookKind, Notice, NoticeKind, Side, TakerSide, Trade
from mmradar.venues import VENUES, make_venue
from mmradar.venues.base import SnapshotSource, Verdict
from mmradar.venues.kraken import (
    BOOK_DEPTH,
    MAX_SYMBOLS_PER_CONNECTION,
    SYMBOLS_PER_REQUEST,
    Kraken,
    KrakenParser,
    checksum_of,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "kraken"
TS = 1_700_000_000_123_456_789


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes().strip()


def parser_with_instruments() -> KrakenParser:
    parser = KrakenParser()
    assert parser.parse(fixture("instrument_snapshot"), TS) == ()
    return parser


def instrument(symbol: str, price_precision: int, qty_precision: int) -> bytes:
    pair = {"symbol": symbol, "price_precision": price_precision, "qty_precision": qty_precision}
    return orjson.dumps(
        {"channel": "instrument", "type": "snapshot", "data": {"assets": [], "pairs": [pair]}}
    )


ALGO_BIDS = [
    ["0.12291", "27039.62776299"], ["0.12290", "8136.33288180"], ["0.12287", "10984.20817349"],
    ["0.12283", "28027.05025639"], ["0.12280", "9705.60000000"], ["0.12279", "15215.53522714"],
    ["0.12275", "4067.00000000"], ["0.12274", "30639.39949109"], ["0.12268", "2531.96119986"],
    ["0.12267", "16299.00000000"],
]  # fmt: skip
ALGO_ASKS = [
    ["0.12307", "600.00000000"], ["0.12308", "4042.11919517"], ["0.12312", "10284.53891000"],
    ["0.12314", "16155.08885299"], ["0.12315", "5186.05778473"], ["0.12316", "32828.24000000"],
    ["0.12317", "7751.65718582"], ["0.12318", "32298.82000000"], ["0.12319", "1864.66899600"],
    ["0.12322", "4718.99755630"],
]  # fmt: skip
ALGO_SNAPSHOT = BookEvent(
    "ALGO/USD", BookKind.SNAPSHOT, ALGO_BIDS, ALGO_ASKS, 0, 0, None, TS, TS, 2375857985
)
UPDATE_NS = 1727923617_050170000  # 2024-10-03T02:46:57.050170Z
ALGO_UPDATE = BookEvent(
    "ALGO/USD", BookKind.DELTA, [["0.12275", "6597.51731160"]], [], 0, 0, None, UPDATE_NS, TS,
    1100635717,
)  # fmt: skip


# -- book frames and the worked example ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"), [("book_snapshot", ALGO_SNAPSHOT), ("book_update", ALGO_UPDATE)]
)
def test_book_frames_parse_to_exact_events(name: str, expected: BookEvent) -> None:
    parser = parser_with_instruments()
    assert list(parser.parse(fixture(name), TS)) == [expected]
    assert list(parser.parse(fixture(name).decode(), TS)) == [expected]  # text frames too


def test_without_precision_the_venues_own_digits_are_kept() -> None:
    # A book frame that overtakes the instrument snapshot: numbers are read exactly (Decimal),
    # trailing zeros as printed, never through a binary float.
    assert list(KrakenParser().parse(fixture("book_snapshot"), TS)) == [ALGO_SNAPSHOT]


def test_worked_example_algo_usd_checksums_through_the_synchroniser() -> None:
    """docs/venues/kraken.md: price precision 5, qty precision 8, depth 10; snapshot 2375857985,
    then the update (bid 0.12275 → 6597.51731160) 1100635717."""

    class Depth10(Kraken):
        max_depth = 10

    venue = Depth10()
    parser = venue.new_parser()
    assert parser.parse(fixture("instrument_snapshot"), TS) == ()
    book = L2Book(keep_text=venue.book_keeps_text)
    resyncs: list[str] = []
    applied: list[BookEvent] = []
    sync = BookSync(venue, "ALGO/USD", book, on_resync=resyncs.append, on_applied=applied.append)
    (snapshot,) = parser.parse(fixture("book_snapshot"), TS)
    assert isinstance(snapshot, BookEvent)
    assert sync.on_event(snapshot) is None
    assert venue.verify_checksum(book, snapshot) is True
    text = "".join(
        a.replace(".", "").lstrip("0") + b.replace(".", "").lstrip("0")
        for a, b in book.text_top(Side.ASK, 10) + book.text_top(Side.BID, 10)
    )
    assert text.startswith("123076000000000012308404211919517123121028453891000")
    assert zlib.crc32(text.encode()) == 2375857985
    (update,) = parser.parse(fixture("book_update"), TS)
    assert isinstance(update, BookEvent)
    assert sync.on_event(update) is None
    assert applied == [update] and resyncs == [] and sync.valid
    assert book.text_top(Side.BID, 10)[6] == ("0.12275", "6597.51731160")


def test_checksum_mismatch_resyncs_by_resubscribing() -> None:
    venue = Kraken()
    parser = parser_with_instruments()
    resyncs: list[str] = []
    sync = BookSync(venue, "ALGO/USD", L2Book(keep_text=True), on_resync=resyncs.append)
    (snapshot,) = parser.parse(fixture("book_snapshot"), TS)
    assert isinstance(snapshot, BookEvent)
    sync.on_event(snapshot)
    (update,) = parser.parse(fixture("book_update"), TS)
    assert isinstance(update, BookEvent)
    action = sync.on_event(update._replace(checksum=1100635718))
    assert action == Resubscribe("ALGO/USD")
    assert resyncs == ["checksum"] and not sync.valid
    # Updates are ignored until the venue's fresh snapshot arrives; then the book is valid.
    assert sync.on_event(update) is None and not sync.valid
    assert sync.on_event(snapshot) is None and sync.valid
    assert resyncs == ["checksum"]


def test_book_is_truncated_to_the_subscribed_depth_before_the_checksum() -> None:
    # An insert at the touch pushes the 10th bid out of a depth-10 book; the venue sends no
    # removal for it. The checksum of the truncated book is what the venue sends.
    class Depth10(Kraken):
        max_depth = 10

    venue = Depth10()
    parser = parser_with_instruments()
    book = L2Book(keep_text=True)
    resyncs: list[str] = []
    sync = BookSync(venue, "ALGO/USD", book, on_resync=resyncs.append)
    (snapshot,) = parser.parse(fixture("book_snapshot"), TS)
    assert isinstance(snapshot, BookEvent)
    sync.on_event(snapshot)
    bids = [("0.12295", "1.00000000"), *ALGO_BIDS[:9]]
    expected = checksum_of([tuple(a) for a in ALGO_ASKS], bids)
    frame = orjson.dumps(
        {"channel": "book", "type": "update", "data": [{"symbol": "ALGO/USD",
         "bids": [{"price": 0.12295, "qty": 1.0}], "asks": [], "checksum": expected,
         "timestamp": "2024-10-03T02:46:58Z"}]}
    )  # fmt: skip
    (update,) = parser.parse(frame, TS)
    assert isinstance(update, BookEvent)
    assert update.bids == [["0.12295", "1.00000000"]]
    assert update.ts_event_ns == 1727923618_000000000
    assert sync.on_event(update) is None
    assert resyncs == [] and book.levels(Side.BID) == 10
    assert book.text_top(Side.BID, 10) == [tuple(b) for b in bids]


# -- exact text --------------------------------------------------------------------------------


def test_integers_and_zero_quantities_get_the_pairs_precision() -> None:
    parser = KrakenParser()
    parser.parse(instrument("BTC/USD", 1, 8), TS)
    frame = (
        b'{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":'
        b'[{"price":60000,"qty":0},{"price":59999.9,"qty":2}],"asks":[],"checksum":1,'
        b'"timestamp":"2024-10-03T02:46:57.5Z"}]}'
    )
    (event,) = parser.parse(frame, TS)
    assert isinstance(event, BookEvent)
    assert event.bids == [["60000.0", "0.00000000"], ["59999.9", "2.00000000"]]
    assert event.ts_event_ns == 1727923617_500000000


def test_numbers_beyond_a_doubles_digits_are_read_exactly() -> None:
    # 17 significant digits: a float would print 123456789.12345679.
    parser = KrakenParser()
    parser.parse(instrument("SHIB/USD", 8, 8), TS)
    frame = (
        b'{"channel":"book","type":"update","data":[{"symbol":"SHIB/USD","bids":'
        b'[{"price":0.00001234,"qty":123456789.12345678}],"asks":[],"checksum":1,'
        b'"timestamp":"2024-10-03T02:46:57.050170Z"}]}'
    )
    (event,) = parser.parse(frame, TS)
    assert isinstance(event, BookEvent)
    assert event.bids == [["0.00001234", "123456789.12345678"]]


@settings(max_examples=150, deadline=None)
@given(
    price_precision=st.integers(0, 10),
    qty_precision=st.integers(0, 10),
    levels=st.lists(st.tuples(st.integers(1, 10**18), st.integers(0, 10**18)), max_size=12),
)
def test_wire_numbers_come_back_as_the_exact_text(
    price_precision: int, qty_precision: int, levels: list[tuple[int, int]]
) -> None:
    """Whatever the magnitude, the text handed to the book is the number printed with the
    pair's precision, and its checksum digits are the integer units (Kraken's rule)."""

    def text(units: int, precision: int) -> str:
        return format(Decimal(units).scaleb(-precision), f".{precision}f")

    wire = [(text(p, price_precision), text(q, qty_precision)) for p, q in levels]
    body = ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in wire)
    frame = (
        '{"channel":"book","type":"snapshot","data":[{"symbol":"X/Y","bids":[' + body + "],"
        '"asks":[],"checksum":0}]}'
    )
    parser = KrakenParser()
    parser.parse(instrument("X/Y", price_precision, qty_precision), TS)
    (event,) = parser.parse(frame, TS)
    assert isinstance(event, BookEvent)
    assert [tuple(level) for level in event.bids] == wire
    nonzero = [(p, q) for p, q in levels if q]
    got = checksum_of((), [(text(p, price_precision), text(q, qty_precision)) for p, q in nonzero])
    assert got == zlib.crc32("".join(f"{p}{q}" for p, q in nonzero).encode())


# -- other frames ------------------------------------------------------------------------------


def test_trades_keep_the_takers_side() -> None:
    events = list(KrakenParser().parse(fixture("trade_update"), TS))
    assert events == [
        Trade("MATIC/USD", 0.5147, 6423.46326, TakerSide.BUY, 1695628116_925533000, TS),
        Trade("MATIC/USD", 0.5146, 100.0, TakerSide.SELL, 1695628117_000000000, TS),
    ]


def test_trade_snapshot_is_history_not_new_trades() -> None:
    assert KrakenParser().parse(fixture("trade_snapshot"), TS) == ()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("subscribe_ack", Notice(NoticeKind.SUBSCRIBED)),
        ("unsubscribe_ack", Notice(NoticeKind.SUBSCRIBED)),
        ("heartbeat", Notice(NoticeKind.HEARTBEAT)),
        ("pong", Notice(NoticeKind.HEARTBEAT)),
        ("status", Notice(NoticeKind.HEARTBEAT)),
        ("subscribe_error",
         Notice(NoticeKind.ERROR, "subscribe XBT/USD: Currency pair not supported")),
    ],
)  # fmt: skip
def test_control_frames(name: str, expected: Notice) -> None:
    assert list(KrakenParser().parse(fixture(name), TS)) == [expected]


def test_instrument_snapshot_sets_precisions() -> None:
    parser = parser_with_instruments()
    assert parser.precision("BTC/USD") == ("%.1f", "%.8f")
    assert parser.precision("ALGO/USD") == ("%.5f", "%.8f")
    assert parser.precision("ETH/USD") is None


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'{"channel":"book","type":"snapshot"}',
        b'{"channel":"book","type":"partial","data":[]}',
        b'{"channel":"book","type":"update","data":[{"symbol":"ALGO/USD","bids":[{"price":"0.1","qty":1}],"asks":[],"checksum":1}]}',
        b'{"channel":"book","type":"update","data":[{"symbol":"ALGO/USD","bids":{"price":0.1},"asks":[]}]}',
        b'{"channel":"book","type":"update","data":[{"symbol":"ALGO/USD","bids":[],"asks":[],"timestamp":"yesterday"}]}',
        b'{"channel":"trade","type":"update","data":[{"symbol":"A/B","side":"hold","price":1,"qty":1,"timestamp":"2023-09-25T07:48:36Z"}]}',
        b'{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"A/B","price_precision":"5","qty_precision":8}]}}',
    ],
)  # fmt: skip
def test_malformed_frames(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parser_with_instruments().parse(raw, TS)


@pytest.mark.parametrize(
    "raw", [b'{"channel":"ticker","type":"update","data":[]}', b'{"method":"add_order"}', b"{}"]
)
def test_unknown_frames(raw: bytes) -> None:
    with pytest.raises(UnknownMessage):
        KrakenParser().parse(raw, TS)


# -- venue ----------------------------------------------------------------------------------------


def test_registered_with_its_properties() -> None:
    assert VENUES["kraken"] is Kraken
    venue = make_venue("kraken")
    assert venue.snapshot_source is SnapshotSource.STREAM
    assert venue.max_depth == BOOK_DEPTH == 1000
    assert venue.book_keeps_text is True
    assert venue.keepalive_text is not None
    assert orjson.loads(venue.keepalive_text) == {"method": "ping"}
    assert venue.max_connection_age_s is None


def test_connection_plan_subscribes_instrument_then_book_then_trades() -> None:
    (plan,) = Kraken().connections(["BTC/USD", "ETH/USD"], trades=True)
    assert plan.url == "wss://ws.kraken.com/v2"
    assert plan.depth_symbols == plan.trade_symbols == ("BTC/USD", "ETH/USD")
    frames = [orjson.loads(f) for f in plan.subscribe]
    assert frames == [
        {"method": "subscribe", "params": {"channel": "instrument"}, "req_id": 1},
        {"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC/USD", "ETH/USD"],
         "depth": 1000, "snapshot": True}, "req_id": 2},
        {"method": "subscribe", "params": {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"],
         "snapshot": False}, "req_id": 3},
    ]  # fmt: skip
    (plan,) = Kraken("ws://127.0.0.1:9").connections(["BTC/USD"], trades=False)
    assert plan.url == "ws://127.0.0.1:9/v2" and plan.trade_symbols == ()
    assert [orjson.loads(f)["params"]["channel"] for f in plan.subscribe] == ["instrument", "book"]


def test_connection_plan_batches_requests_and_connections() -> None:
    symbols = [f"C{i}/USD" for i in range(MAX_SYMBOLS_PER_CONNECTION + 30)]
    plans = Kraken().connections(symbols, trades=True)
    assert [len(p.depth_symbols) for p in plans] == [MAX_SYMBOLS_PER_CONNECTION, 30]
    assert sum((p.depth_symbols for p in plans), ()) == tuple(symbols)
    assert len({p.name for p in plans}) == 2
    for plan in plans:
        frames = [orjson.loads(f) for f in plan.subscribe]
        books = [f["params"]["symbol"] for f in frames if f["params"]["channel"] == "book"]
        assert all(len(b) <= SYMBOLS_PER_REQUEST for b in books)
        assert [s for batch in books for s in batch] == list(plan.depth_symbols)


def test_resubscribe_is_unsubscribe_then_subscribe_at_the_same_depth() -> None:
    frames = [orjson.loads(f) for f in Kraken().resubscribe("BTC/USD")]
    assert [f["method"] for f in frames] == ["unsubscribe", "subscribe"]
    for f in frames:
        assert f["params"]["channel"] == "book"
        assert f["params"]["symbol"] == ["BTC/USD"]
        assert f["params"]["depth"] == 1000
    assert frames[1]["params"]["snapshot"] is True


def test_every_delta_applies_and_no_checksum_means_no_verdict() -> None:
    venue = Kraken()
    assert venue.first_after_snapshot(ALGO_SNAPSHOT, ALGO_UPDATE) is Verdict.APPLY
    assert venue.next_in_sequence(ALGO_UPDATE, ALGO_UPDATE) is Verdict.APPLY
    assert (
        venue.verify_checksum(L2Book(keep_text=True), ALGO_UPDATE._replace(checksum=None)) is None
    )
