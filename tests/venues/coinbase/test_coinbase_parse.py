"""Coinbase Advanced Trade parsing, sequencing and subscription frames (sans-I/O).

Fixtures are in ``tests/fixtures/coinbase`` (see its ``SOURCES.md``); every expected value below
is written out from the fixture text or computed independently with :mod:`datetime`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync, Resubscribe
from mmradar.errors import MalformedMessage, UnknownMessage
from mmradar.model import BookEvent, BookKind, Notice, NoticeKind, Side, TakerSide, Trade
from mmradar.pipeline import FeedPipeline, Reconnect
from mmradar.venues import VENUES, make_venue
from mmradar.venues.base import FrameParser, SnapshotSource, Verdict
from mmradar.venues.coinbase import MAX_PRODUCTS_PER_CONNECTION, Coinbase

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "coinbase"
RECV = 1_700_000_000_123_456_789


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def epoch_ns(text_seconds: datetime, frac_ns: int) -> int:
    """Independent reference: whole seconds from datetime, plus the fraction."""
    return int(text_seconds.timestamp()) * 1_000_000_000 + frac_ns


def parser() -> FrameParser:
    return Coinbase().new_parser()


# -- registration and plans -------------------------------------------------------------------


def test_registered_as_coinbase() -> None:
    assert VENUES["coinbase"] is Coinbase
    venue = make_venue("coinbase", "ws://127.0.0.1:9")
    assert isinstance(venue, Coinbase)
    assert venue.snapshot_source is SnapshotSource.STREAM
    assert venue.keepalive_text is None
    assert venue.max_depth is None


def test_one_connection_one_product_and_channel_per_message() -> None:
    plans = Coinbase().connections(["BTC-USD", "ETH-USD"], trades=True)
    assert len(plans) == 1
    plan = plans[0]
    assert plan.url == "wss://advanced-trade-ws.coinbase.com"
    assert plan.depth_symbols == ("BTC-USD", "ETH-USD")
    assert plan.trade_symbols == ("BTC-USD", "ETH-USD")
    # The venue refuses a whole message naming one unknown product: one product per message.
    assert [orjson.loads(f) for f in plan.subscribe] == [
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["BTC-USD"], "channel": "market_trades"},
        {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "market_trades"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]


def test_without_trades_and_with_base_url() -> None:
    (plan,) = Coinbase(ws_base="ws://127.0.0.1:4242/").connections(["BTC-USD"], trades=False)
    assert plan.url == "ws://127.0.0.1:4242"
    assert plan.trade_symbols == ()
    channels = [orjson.loads(f)["channel"] for f in plan.subscribe]
    assert channels == ["level2", "heartbeats"]


def test_connections_respect_the_venue_limits() -> None:
    # Coinbase refuses more than about 30 level2 products per session (16 reported accepted,
    # 32 refused): a connection carries fewer than 16.
    assert MAX_PRODUCTS_PER_CONNECTION < 16
    venue = Coinbase()
    plans = venue.connections([f"P{i}-USD" for i in range(100)], trades=True)
    assert len(plans) == -(-100 // MAX_PRODUCTS_PER_CONNECTION)
    # 8 connections/s and 8 messages/s per IP: connections open apart; the runner paces the
    # messages of each connection at its share of the per-IP rate (tests/feed).
    assert venue.connect_interval_s >= 1 / 8
    assert venue.max_messages_per_s == 8
    assert venue.reconnect_on_gap is True


def test_many_products_split_into_few_connections() -> None:
    symbols = [f"P{i}-USD" for i in range(2 * MAX_PRODUCTS_PER_CONNECTION + 1)]
    plans = Coinbase().connections(symbols, trades=True)
    assert [len(p.depth_symbols) for p in plans] == [
        MAX_PRODUCTS_PER_CONNECTION,
        MAX_PRODUCTS_PER_CONNECTION,
        1,
    ]
    assert [p.name for p in plans] == ["coinbase#0", "coinbase#1", "coinbase#2"]
    assert [s for p in plans for s in p.depth_symbols] == symbols
    # Two subscribe messages per product (level2, market_trades) and one heartbeats.
    assert [len(p.subscribe) for p in plans] == [2 * len(p.depth_symbols) + 1 for p in plans]


def test_resubscribe_is_unsubscribe_then_subscribe_level2() -> None:
    frames = Coinbase().resubscribe("ETH-USD")
    assert [orjson.loads(f) for f in frames] == [
        {"type": "unsubscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["ETH-USD"], "channel": "level2"},
    ]


def test_resubscribe_many_goes_product_by_product() -> None:
    venue = Coinbase()
    frames = venue.resubscribe_many(["BTC-USD", "ETH-USD", "SOL-USD"])
    assert [(orjson.loads(f)["type"], orjson.loads(f)["product_ids"]) for f in frames] == [
        (kind, [p])
        for p in ("BTC-USD", "ETH-USD", "SOL-USD")
        for kind in ("unsubscribe", "subscribe")
    ]
    assert venue.resubscribe_many([]) == ()
    assert venue.max_messages_per_s == 8


def test_verdicts_always_apply() -> None:
    venue = Coinbase()
    (snap,) = venue.new_parser().parse(fixture("l2_data_snapshot.json"), RECV)
    assert isinstance(snap, BookEvent)
    assert venue.first_after_snapshot(snap, snap) is Verdict.APPLY
    assert venue.next_in_sequence(snap, snap) is Verdict.APPLY


# -- fixtures -------------------------------------------------------------------------------


def test_snapshot_fixture() -> None:
    events = parser().parse(fixture("l2_data_snapshot.json"), RECV)
    ts = epoch_ns(datetime(2023, 2, 9, 20, 32, 50, tzinfo=UTC), 714_964_855)
    assert events == [
        BookEvent(
            symbol="BTC-USD",
            kind=BookKind.SNAPSHOT,
            bids=[("21921.73", "0.06317902"), ("21921.3", "0.02")],
            asks=[("21921.74", "1.2"), ("21922.5", "0.31459")],
            first_id=0,
            last_id=0,
            prev_id=None,
            ts_event_ns=ts,
            ts_recv_ns=RECV,
        )
    ]


def test_update_fixture_after_snapshot() -> None:
    p = parser()
    p.parse(fixture("l2_data_snapshot.json"), RECV)
    events = p.parse(fixture("l2_data_update.json"), RECV + 1)
    assert events == [
        BookEvent(
            "BTC-USD",
            BookKind.DELTA,
            [("21921.73", "0"), ("21920.01", "0.5")],
            [("21921.74", "0.95")],
            1,
            1,
            None,
            epoch_ns(datetime(2023, 2, 9, 20, 32, 50, tzinfo=UTC), 800_000_000),
            RECV + 1,
        )
    ]


def test_two_products_in_one_message() -> None:
    events = parser().parse(fixture("l2_data_update_two_products.json"), RECV)
    ts = epoch_ns(datetime(2023, 2, 9, 20, 32, 51, tzinfo=UTC), 0)
    assert events == [
        BookEvent("BTC-USD", BookKind.DELTA, [], [("21922.5", "0")], 5, 5, None, ts, RECV),
        BookEvent("ETH-USD", BookKind.DELTA, [("1642.11", "12.5")], [], 5, 5, None, ts, RECV),
    ]


def test_market_trades_side_is_the_maker() -> None:
    # "side" names the resting order: "BUY" = a resting buy order was hit by a seller.
    events = parser().parse(fixture("market_trades_update.json"), RECV)
    ts = epoch_ns(datetime(2023, 2, 9, 20, 19, 35, tzinfo=UTC), 396_251_350)
    assert events == [
        Trade("ETH-USD", 1260.01, 0.3, TakerSide.SELL, ts, RECV),
        Trade("ETH-USD", 1260.00, 0.125, TakerSide.BUY, ts, RECV),
    ]


def market_trades(seq: int, trades: list[tuple[str, str, str]]) -> bytes:
    """An update event with ``(trade_id, size, side)`` trades, in the order given."""
    return envelope(
        "market_trades",
        seq,
        [
            {
                "type": "update",
                "trades": [
                    {
                        "trade_id": trade_id,
                        "product_id": "BTC-USD",
                        "price": "100.5",
                        "size": size,
                        "time": "2024-08-08T23:54:13.4Z",
                        "side": side,
                    }
                    for trade_id, size, side in trades
                ],
            }
        ],
    )


def test_trades_of_an_event_come_out_in_trade_id_order() -> None:
    # The venue lists them newest first; ids compare as numbers (99 before 100).
    raw = market_trades(0, [("101", "0.4", "BUY"), ("100", "0.3", "SELL"), ("99", "0.2", "BUY")])
    events = parser().parse(raw, RECV)
    assert [(t.qty, t.taker) for t in events if isinstance(t, Trade)] == [
        (0.2, TakerSide.SELL),
        (0.3, TakerSide.BUY),
        (0.4, TakerSide.SELL),
    ]


def test_trade_without_a_trade_id_is_malformed() -> None:
    raw = orjson.loads(market_trades(0, [("2", "1", "BUY"), ("1", "1", "SELL")]))
    del raw["events"][0]["trades"][1]["trade_id"]
    with pytest.raises(MalformedMessage):
        parser().parse(orjson.dumps(raw), RECV)


def test_market_trades_snapshot_is_history_not_counted() -> None:
    assert parser().parse(fixture("market_trades_snapshot.json"), RECV) == []


def test_heartbeats_and_subscriptions_are_notices() -> None:
    p = parser()
    assert p.parse(fixture("heartbeats.json"), RECV) == (Notice(NoticeKind.HEARTBEAT),)
    assert p.parse(fixture("subscriptions.json"), RECV) == (Notice(NoticeKind.SUBSCRIBED),)


def test_error_message() -> None:
    (notice,) = parser().parse(fixture("error.json"), RECV)
    assert notice == Notice(NoticeKind.ERROR, "failure to subscribe")


def test_unknown_channel_is_unknown_but_counted_in_sequence() -> None:
    p = parser()
    p.parse(fixture("subscriptions.json"), RECV)  # sequence_num 4
    ticker = {**orjson.loads(fixture("ticker.json")), "sequence_num": 5}
    with pytest.raises(UnknownMessage):
        p.parse(orjson.dumps(ticker), RECV)
    # The unknown message advanced the counter: 6 follows without a gap.
    follow = {**orjson.loads(fixture("heartbeats.json")), "sequence_num": 6}
    assert p.parse(orjson.dumps(follow), RECV) == (Notice(NoticeKind.HEARTBEAT),)


def test_unknown_channel_after_gap_reports_the_gap() -> None:
    p = parser()
    p.parse(fixture("heartbeats.json"), RECV)  # 3
    (notice,) = p.parse(fixture("ticker.json"), RECV)  # 6
    assert notice.kind is NoticeKind.CONNECTION_GAP  # type: ignore[union-attr]


# -- sequence_num -----------------------------------------------------------------------------


def envelope(channel: str, seq: int, events: list[object]) -> bytes:
    return orjson.dumps(
        {
            "channel": channel,
            "timestamp": "2024-08-08T23:54:13.5Z",
            "sequence_num": seq,
            "events": events,
        }
    )


def l2(seq: int, price: str = "100.01", qty: str = "1") -> bytes:
    update = {"side": "bid", "event_time": "", "price_level": price, "new_quantity": qty}
    return envelope(
        "l2_data", seq, [{"type": "update", "product_id": "BTC-USD", "updates": [update]}]
    )


def heartbeat(seq: int) -> bytes:
    return envelope("heartbeats", seq, [{"current_time": "", "heartbeat_counter": seq}])


def test_sequence_spans_channels() -> None:
    p = parser()
    kinds = []
    for raw in (l2(0), heartbeat(1), l2(2), heartbeat(3), l2(4)):
        kinds += [type(e).__name__ for e in p.parse(raw, RECV)]
    assert kinds == ["BookEvent", "Notice", "BookEvent", "Notice", "BookEvent"]


def test_gap_notice_comes_before_the_events() -> None:
    p = parser()
    p.parse(l2(0), RECV)
    gap, event = p.parse(l2(2), RECV)
    assert gap == Notice(NoticeKind.CONNECTION_GAP, "sequence_num 2, expected 1")
    assert isinstance(event, BookEvent)
    assert event.last_id == 2
    assert len(p.parse(l2(3), RECV)) == 1  # back in step


def test_a_skipped_heartbeat_is_a_gap_too() -> None:
    p = parser()
    p.parse(heartbeat(7), RECV)
    events = p.parse(heartbeat(9), RECV)
    assert events[0] == Notice(NoticeKind.CONNECTION_GAP, "sequence_num 9, expected 8")


def test_repeated_or_backwards_number_is_a_gap() -> None:
    p = parser()
    p.parse(l2(5), RECV)
    assert p.parse(l2(5), RECV)[0].kind is NoticeKind.CONNECTION_GAP  # type: ignore[union-attr]


def test_malformed_l2_update_does_not_advance_so_the_next_message_gaps() -> None:
    p = parser()
    p.parse(l2(0), RECV)
    bad = envelope("l2_data", 1, [{"type": "update", "product_id": "BTC-USD", "updates": [{}]}])
    with pytest.raises(MalformedMessage):
        p.parse(bad, RECV)
    events = p.parse(heartbeat(2), RECV)
    assert events[0] == Notice(NoticeKind.CONNECTION_GAP, "sequence_num 2, expected 1")


def test_malformed_trades_keep_the_books_but_not_a_gap_they_revealed() -> None:
    p = parser()
    p.parse(l2(0), RECV)
    bad = envelope("market_trades", 1, [{"type": "update", "trades": [{"side": "BUY"}]}])
    with pytest.raises(MalformedMessage):
        p.parse(bad, RECV)
    assert len(p.parse(heartbeat(2), RECV)) == 1  # no gap: only trades were lost
    worse = envelope("market_trades", 4, [{"type": "update", "trades": [{"side": "BUY"}]}])
    with pytest.raises(MalformedMessage):
        p.parse(worse, RECV)  # 3 is missing, and this message is unreadable
    assert p.parse(heartbeat(5), RECV)[0].kind is NoticeKind.CONNECTION_GAP  # type: ignore[union-attr]


def test_first_message_sets_the_origin() -> None:
    # A parser is per connection; the first number it sees is the origin, not a gap.
    assert len(parser().parse(l2(41), RECV)) == 1


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"{not json", MalformedMessage),
        (b"[]", MalformedMessage),
        (b'{"type":"subscribe"}', MalformedMessage),
        (b'{"channel":"l2_data","timestamp":"2024-08-08T23:54:13Z","events":[]}', MalformedMessage),
        (b'{"channel":"l2_data","sequence_num":"1","events":[]}', MalformedMessage),
        (b'{"channel":"l2_data","sequence_num":1,"events":[]}', MalformedMessage),
        (
            b'{"channel":"l2_data","timestamp":"2024-08-08 23:54","sequence_num":1,"events":[]}',
            MalformedMessage,
        ),
        (
            b'{"channel":"l2_data","timestamp":"2024-08-08T23:54:13Z","sequence_num":1}',
            MalformedMessage,
        ),
        (
            b'{"channel":"l2_data","timestamp":"2024-08-08T23:54:13Z","sequence_num":1,'
            b'"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"ask",'
            b'"price_level":"1","new_quantity":"1"}]}]}',
            MalformedMessage,
        ),
        (
            b'{"channel":"l2_data","timestamp":"2024-08-08T23:54:13Z","sequence_num":1,'
            b'"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"bid",'
            b'"price_level":1.5,"new_quantity":"1"}]}]}',
            MalformedMessage,
        ),
        (
            b'{"channel":"l2_data","timestamp":"2024-08-08T23:54:13Z","sequence_num":1,'
            b'"events":[{"type":"reset","product_id":"BTC-USD","updates":[]}]}',
            MalformedMessage,
        ),
        (
            b'{"channel":"market_trades","timestamp":"2024-08-08T23:54:13Z","sequence_num":1,'
            b'"events":[{"type":"update","trades":[{"product_id":"BTC-USD","price":"1",'
            b'"size":"1","side":"buy"}]}]}',
            MalformedMessage,
        ),
        (
            b'{"channel":"market_trades","timestamp":"2024-08-08T23:54:13Z","sequence_num":1,'
            b'"events":[{"type":"update","trades":[{"product_id":"BTC-USD","price":"x",'
            b'"size":"1","side":"BUY"}]}]}',
            MalformedMessage,
        ),
        (
            b'{"channel":"status","timestamp":"2024-08-08T23:54:13Z","sequence_num":1}',
            UnknownMessage,
        ),
    ],
)
def test_bad_messages(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parser().parse(raw, RECV)


# -- sequence property ------------------------------------------------------------------------


@given(
    st.lists(st.tuples(st.sampled_from(["l2", "hb"]), st.integers(0, 3)), min_size=1, max_size=60)
)
def test_gap_reported_exactly_when_numbers_jump(messages: list[tuple[str, int]]) -> None:
    p = parser()
    seq = 0
    for i, (kind, skip) in enumerate(messages):
        seq += skip if i else 0
        raw = l2(seq) if kind == "l2" else heartbeat(seq)
        events = p.parse(raw, RECV)
        gaps = [e for e in events if isinstance(e, Notice) and e.kind is NoticeKind.CONNECTION_GAP]
        assert len(gaps) == (1 if i and skip else 0)
        seq += 1


# -- through the synchroniser and the pipeline -------------------------------------------------


def test_snapshot_resets_the_book_and_updates_apply() -> None:
    venue = Coinbase()
    p = venue.new_parser()
    book = L2Book()
    reasons: list[str] = []
    sync = BookSync(venue, "BTC-USD", book, on_resync=reasons.append)
    (snap,) = p.parse(fixture("l2_data_snapshot.json"), RECV)
    (delta,) = p.parse(fixture("l2_data_update.json"), RECV)
    assert isinstance(snap, BookEvent) and isinstance(delta, BookEvent)
    assert sync.on_event(delta) is None  # before any snapshot: ignored
    assert sync.on_event(snap) is None
    assert sync.on_event(delta) is None
    assert book.items(Side.BID) == [(21921.3, 0.02), (21920.01, 0.5)]
    assert book.items(Side.ASK) == [(21921.74, 0.95), (21922.5, 0.31459)]
    # A fresh snapshot while live replaces the whole book (counted as a venue reset).
    assert sync.on_event(snap) is None
    assert book.items(Side.BID) == [(21921.73, 0.06317902), (21921.3, 0.02)]
    assert reasons == ["venue_reset"]


def snap(seq: int, product: str, bid: str, ask: str) -> bytes:
    updates = [
        {"side": "bid", "event_time": "", "price_level": bid, "new_quantity": "1"},
        {"side": "offer", "event_time": "", "price_level": ask, "new_quantity": "1"},
    ]
    return envelope(
        "l2_data", seq, [{"type": "snapshot", "product_id": product, "updates": updates}]
    )


class _Resyncs:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def bad_message(self, reason: str) -> None:
        raise AssertionError(reason)

    def resync(self, symbol: str, reason: str) -> None:
        self.seen.append((symbol, reason))


def test_a_connection_gap_reconnects_that_connection_only() -> None:
    observer = _Resyncs()
    pipeline = FeedPipeline(Coinbase(), ["BTC-USD", "ETH-USD", "SOL-USD"], observer)
    one, two = pipeline.new_parser(), pipeline.new_parser()  # two connections
    assert pipeline.on_frame(one, snap(0, "BTC-USD", "100.00", "100.02"), RECV) == []
    assert pipeline.on_frame(one, snap(1, "ETH-USD", "10.00", "10.02"), RECV) == []
    assert pipeline.on_frame(two, snap(0, "SOL-USD", "1.00", "1.02"), RECV) == []
    assert all(inst.valid for inst in pipeline.instruments.values())

    # Connection one loses message 2; message 3 carries a trade.
    commands = pipeline.on_frame(one, market_trades(3, [("7", "0.25", "SELL")]), RECV)
    assert commands == [Reconnect("gap", "gap")]  # no unsubscribe/subscribe on that session
    assert observer.seen == [("BTC-USD", "gap"), ("ETH-USD", "gap")]
    btc, eth, sol = (pipeline.instruments[s] for s in ("BTC-USD", "ETH-USD", "SOL-USD"))
    assert not btc.valid and not eth.valid and sol.valid
    assert btc.market.taker_buy == 0.25  # the trades of the message that showed the gap count

    # A book event in the same frame as the gap is from the broken stream: not used, even a
    # snapshot (the new connection brings one).
    p = pipeline.new_parser()
    pipeline.on_frame(p, snap(0, "BTC-USD", "100.00", "100.02"), RECV)
    gap_then_snapshot = orjson.loads(snap(2, "BTC-USD", "100.00", "100.02"))
    assert pipeline.on_frame(p, orjson.dumps(gap_then_snapshot), RECV) == [Reconnect("gap", "gap")]
    assert not pipeline.instruments["BTC-USD"].valid
    # The new connection's snapshots make the books valid again.
    three = pipeline.new_parser()
    assert pipeline.on_frame(three, snap(0, "BTC-USD", "100.01", "100.03"), RECV) == []
    assert btc.valid and btc.book.best_bid_price() == 100.01


def test_a_venue_that_does_not_reconnect_resubscribes_the_connection_books() -> None:
    class Resubscribing(Coinbase):
        reconnect_on_gap = False

    pipeline = FeedPipeline(Resubscribing(), ["BTC-USD", "ETH-USD", "SOL-USD"])
    one, two = pipeline.new_parser(), pipeline.new_parser()
    assert pipeline.on_frame(one, snap(0, "BTC-USD", "100.00", "100.02"), RECV) == []
    assert pipeline.on_frame(one, snap(1, "ETH-USD", "10.00", "10.02"), RECV) == []
    assert pipeline.on_frame(two, snap(0, "SOL-USD", "1.00", "1.02"), RECV) == []
    commands = pipeline.on_frame(one, heartbeat(3), RECV)  # 2 was lost
    assert commands == [Resubscribe("BTC-USD"), Resubscribe("ETH-USD")]
    assert pipeline.instruments["SOL-USD"].valid
    # Updates before the new snapshot are ignored; the snapshot makes the book valid again.
    assert pipeline.on_frame(one, l2(4), RECV) == []
    assert not pipeline.instruments["BTC-USD"].valid
    assert pipeline.on_frame(one, snap(5, "BTC-USD", "100.01", "100.03"), RECV) == []
    assert pipeline.instruments["BTC-USD"].valid
    assert pipeline.instruments["BTC-USD"].book.best_bid_price() == 100.01
    assert not pipeline.instruments["ETH-USD"].valid


# -- products ----------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["BTC-USDC", "ETH-USDC", "btc-usdc"])
def test_usdc_products_served_as_usd_are_refused(symbol: str) -> None:
    problem = Coinbase().symbol_problem(symbol)
    assert problem is not None
    assert f"{symbol[:-5]}-USD" in problem and symbol in problem


@pytest.mark.parametrize("symbol", ["BTC-USD", "USDT-USDC", "EURC-USDC", "ETH-BTC", "USDC-EUR"])
def test_other_products_are_accepted(symbol: str) -> None:
    assert Coinbase().symbol_problem(symbol) is None
