"""OKX frame parsing, connection planning, REST snapshots and the checksum.

Messages are in ``tests/fixtures/okx/*.json`` (sources in ``tests/fixtures/okx/SOURCES.md``);
every parse is compared with the whole expected event.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mmradar.book.l2book import L2Book
from mmradar.errors import MalformedMessage, UnknownMessage
from mmradar.model import BookEvent, BookKind, Notice, NoticeKind, TakerSide, Trade
from mmradar.venues import VENUES, make_venue
from mmradar.venues.base import SnapshotSource
from mmradar.venues.okx import (
    MAX_BOOKS_PER_CONNECTION,
    SNAPSHOT_DEPTH,
    SNAPSHOT_WEIGHT,
    Okx,
    checksum_text,
    okx_checksum,
    signed_crc32,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "okx"
TS = 1_700_000_000_123_456_789
MS = 1_000_000


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes().strip()


def parse(raw: bytes | str) -> list[object]:
    return list(Okx().new_parser().parse(raw, TS))


SNAPSHOT = BookEvent(
    "BTC-USDT",
    BookKind.SNAPSHOT,
    [["8476.97", "256", "0", "12"], ["8475.55", "101", "0", "1"], ["8475.3", "1", "0", "1"]],
    [["8476.98", "415", "0", "13"], ["8477", "7", "0", "2"], ["8477.34", "85", "0", "1"]],
    123456, 123456, -1, 1597026383085 * MS, TS, None,
)  # fmt: skip
UPDATE = BookEvent(
    "BTC-USDT",
    BookKind.DELTA,
    [["8476.97", "250", "0", "11"]],
    [["8476.98", "0", "0", "0"], ["8477.1", "12", "0", "3"]],
    123463, 123463, 123456, 1597026383185 * MS, TS, None,
)  # fmt: skip
IDLE = BookEvent(
    "BTC-USDT", BookKind.DELTA, [], [], 123463, 123463, 123463, 1597026443185 * MS, TS, None
)
RESET = BookEvent(
    "BTC-USDT", BookKind.DELTA, [], [["8477.34", "80", "0", "1"]], 3, 3, 123463,
    1597026443285 * MS, TS, None,
)  # fmt: skip
TRADE = Trade("BTC-USDT", 42219.9, 0.12060306, TakerSide.BUY, 1630048897897 * MS, TS)


# -- frames ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("books_snapshot_ws", SNAPSHOT),
        ("books_update", UPDATE),
        ("books_update_idle", IDLE),
        ("books_update_reset", RESET),
        ("trades", TRADE),
        ("subscribe_ack", Notice(NoticeKind.SUBSCRIBED)),
        ("unsubscribe_ack", Notice(NoticeKind.SUBSCRIBED)),
        ("channel_conn_count", Notice(NoticeKind.SUBSCRIBED)),
        (
            "notice_upgrade",
            Notice(
                NoticeKind.SHUTDOWN,
                "64008: The connection will soon be closed for a service upgrade. "
                "Please reconnect.",
            ),
        ),
    ],
)
def test_fixture_parses_to_exact_event(name: str, expected: object) -> None:
    raw = fixture(name)
    assert parse(raw) == [expected]
    assert parse(raw.decode()) == [expected]  # text frames too


def test_error_event_is_a_venue_error_notice() -> None:
    [notice] = parse(fixture("error"))
    assert isinstance(notice, Notice)
    assert notice.kind is NoticeKind.ERROR
    assert notice.detail.startswith("60012: Invalid request")


@pytest.mark.parametrize("raw", ["pong", b"pong"])
def test_plain_text_pong_is_a_heartbeat(raw: str | bytes) -> None:
    assert parse(raw) == [Notice(NoticeKind.HEARTBEAT, "pong")]


@pytest.mark.parametrize(("side", "taker"), [("buy", TakerSide.BUY), ("sell", TakerSide.SELL)])
def test_trade_side_is_the_taker_side(side: str, taker: TakerSide) -> None:
    msg = orjson.loads(fixture("trades"))
    msg["data"][0]["side"] = side
    [trade] = parse(orjson.dumps(msg))
    assert isinstance(trade, Trade)
    assert trade.taker is taker


def test_several_trades_in_one_push_keep_their_order() -> None:
    msg = orjson.loads(fixture("trades"))
    second = dict(msg["data"][0], px="42220", sz="2", side="sell", tradeId="130639475")
    msg["data"].append(second)
    assert parse(orjson.dumps(msg)) == [
        TRADE,
        Trade("BTC-USDT", 42220.0, 2.0, TakerSide.SELL, 1630048897897 * MS, TS),
    ]


def test_non_zero_checksum_is_kept_and_zero_means_absent() -> None:
    msg = orjson.loads(fixture("books_update"))
    msg["data"][0]["checksum"] = -855196043
    [event] = parse(orjson.dumps(msg))
    assert isinstance(event, BookEvent)
    assert event.checksum == -855196043
    [zero] = parse(fixture("books_update"))
    assert isinstance(zero, BookEvent)
    assert zero.checksum is None
    del msg["data"][0]["checksum"]
    [absent] = parse(orjson.dumps(msg))
    assert isinstance(absent, BookEvent)
    assert absent.checksum is None


def test_unknown_channel_and_event_are_unknown() -> None:
    with pytest.raises(UnknownMessage):
        parse(fixture("tickers"))
    with pytest.raises(UnknownMessage):
        parse(b'{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}')
    with pytest.raises(UnknownMessage):  # a notice other than the upgrade warning
        parse(b'{"event":"notice","code":"64099","msg":"?","connId":"a4d3ae55"}')


def _edit(name: str, **changes: object) -> bytes:
    msg = orjson.loads(fixture(name))
    for key, value in changes.items():
        if value is ...:
            msg["data"][0].pop(key)
        else:
            msg["data"][0][key] = value
    return orjson.dumps(msg)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"ping",  # only the venue's reply is plain text
        b"[1, 2]",
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":{}}',
        b'{"arg":"books","data":[]}',
        b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"partial","data":[]}',
        b'{"arg":{"channel":"books","instId":7},"action":"update","data":[]}',
        _edit("books_update", seqId=...),
        _edit("books_update", prevSeqId="123456"),
        _edit("books_update", seqId=1.5),
        _edit("books_update", ts="soon"),
        _edit("books_update", asks="8476.98"),
        _edit("books_update", bids=...),
        _edit("books_update", checksum="0"),
        _edit("trades", side="short"),
        _edit("trades", px="x"),
        _edit("trades", sz=...),
        b'{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[["42219.9","1"]]}',
    ],
)
def test_malformed_frames_raise_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse(raw)


# -- checksum --------------------------------------------------------------------------------------


def test_checksum_doc_example_one_bid_three_asks() -> None:
    text = checksum_text([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")])
    assert text == "3366.1:7:3366.8:9:3368:8:3372:8"
    assert signed_crc32(text) == 831078360


def test_checksum_uses_25_levels_and_exact_text() -> None:
    bids = [[f"{100 - i}.50", f"{i + 1}.0", "0", "1"] for i in range(30)]
    asks = [[f"{101 + i}.5", f"{i + 2}", "0", "1"] for i in range(30)]
    book = L2Book(keep_text=True)
    book.load(bids, asks)
    expected = ":".join(
        f"{b[0]}:{b[1]}:{a[0]}:{a[1]}" for b, a in zip(bids[:25], asks[:25], strict=True)
    )
    assert checksum_text([b[:2] for b in bids], [a[:2] for a in asks]) == expected
    assert okx_checksum(book) == signed_crc32(expected)
    # "100.50" is not "100.5": the text, not the number, is checksummed.
    assert "100.50:1.0" in expected
    assert signed_crc32(expected) != signed_crc32(expected.replace("100.50", "100.5"))


def test_signed_crc32_is_negative_above_2_pow_31() -> None:
    # Every non-negative CRC32 below 2**31 is unchanged; above, OKX's value is negative.
    values = [signed_crc32(str(i)) for i in range(64)]
    assert all(-(2**31) <= v < 2**31 for v in values)
    assert any(v < 0 for v in values)


def test_verify_checksum_skips_zero_and_checks_non_zero() -> None:
    venue = Okx()
    book = L2Book(keep_text=True)
    book.load(SNAPSHOT.bids, SNAPSHOT.asks)
    good = okx_checksum(book)
    assert good != 0
    assert venue.verify_checksum(book, SNAPSHOT) is None  # checksum 0 ⇒ None
    assert venue.verify_checksum(book, SNAPSHOT._replace(checksum=0)) is None
    assert venue.verify_checksum(book, SNAPSHOT._replace(checksum=good)) is True
    assert venue.verify_checksum(book, SNAPSHOT._replace(checksum=good ^ 1)) is False


# -- venue plumbing --------------------------------------------------------------------------------


def test_registered_with_rest_bootstrap_and_text_keepalive() -> None:
    assert VENUES["okx"] is Okx
    venue = make_venue("okx")
    assert isinstance(venue, Okx)
    assert Okx.snapshot_source is SnapshotSource.REST
    assert Okx.book_keeps_text is True
    assert Okx.keepalive_text == "ping"
    assert 0 < Okx.keepalive_interval_s < 30
    assert Okx.max_depth is None
    assert Okx.max_connection_age_s is None


def test_connections_batch_books_and_trades_per_connection() -> None:
    symbols = [f"S{i}-USDT" for i in range(MAX_BOOKS_PER_CONNECTION + 3)]
    plans = Okx("ws://127.0.0.1:9").connections(symbols, trades=True)
    assert [p.depth_symbols for p in plans] == [
        tuple(symbols[:MAX_BOOKS_PER_CONNECTION]),
        tuple(symbols[MAX_BOOKS_PER_CONNECTION:]),
    ]
    assert [p.trade_symbols for p in plans] == [p.depth_symbols for p in plans]
    assert {p.url for p in plans} == {"ws://127.0.0.1:9/ws/v5/public"}
    assert len({p.name for p in plans}) == 2
    for plan in plans:
        [frame] = plan.subscribe  # one operation per connection (480 per hour allowed)
        msg = orjson.loads(frame)
        assert msg["op"] == "subscribe"
        assert msg["args"] == [{"channel": "books", "instId": s} for s in plan.depth_symbols] + [
            {"channel": "trades", "instId": s} for s in plan.depth_symbols
        ]


def test_connections_without_trades_and_default_host() -> None:
    [plan] = Okx().connections(["BTC-USDT"], trades=False)
    assert plan.url == "wss://ws.okx.com:8443/ws/v5/public"
    assert plan.trade_symbols == ()
    assert orjson.loads(plan.subscribe[0])["args"] == [{"channel": "books", "instId": "BTC-USDT"}]


def test_snapshot_request_asks_for_max_depth_within_the_rate_limit() -> None:
    request = Okx(rest_base="http://127.0.0.1:9/").snapshot_request("BTC-USDT")
    assert request.url == "http://127.0.0.1:9/api/v5/market/books?instId=BTC-USDT&sz=400"
    assert SNAPSHOT_DEPTH == 400
    assert request.weight == SNAPSHOT_WEIGHT
    default = Okx().snapshot_request("ETH-USDT").url
    assert default == "https://www.okx.com/api/v5/market/books?instId=ETH-USDT&sz=400"
    # The feed keeps to half of OKX's 40 requests per 2 s, counted over OKX's own window.
    assert Okx.rest_window_s == 2.0
    per_window = (Okx.rest_weight_per_minute // 2) // request.weight
    assert per_window == 20


def test_parse_rest_snapshot() -> None:
    event = Okx().parse_snapshot("BTC-USDT", fixture("rest_books"), TS)
    assert event == BookEvent(
        "BTC-USDT",
        BookKind.SNAPSHOT,
        [["41006.3", "0.30178218", "0", "2"], ["41005", "1", "0", "4"]],
        [["41006.8", "0.60038921", "0", "1"], ["41007", "0.5", "0", "2"]],
        3235, 3235, None, 1629966436396 * MS, TS,
    )  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        fixture("rest_error"),
        b'{"code":"0","msg":"","data":[]}',
        b'{"code":"0","msg":"","data":[{"asks":[],"bids":[],"ts":"1"}]}',
        b'{"code":"0","msg":"","data":[{"asks":[],"bids":[],"ts":"1","seqId":"5"}]}',
        b'{"code":"0","msg":"","data":[{"asks":{},"bids":[],"ts":"1","seqId":5}]}',
    ],
)
def test_bad_rest_snapshot_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        Okx().parse_snapshot("BTC-USDT", body, TS)
