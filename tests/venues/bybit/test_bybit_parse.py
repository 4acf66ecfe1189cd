"""Bybit v5 frame parsing, sequence verdicts and connection planning.

Messages are the documented shapes in ``tests/fixtures/bybit/*.json`` (sources in
``tests/fixtures/bybit/SOURCES.md``); every parse is compared with the whole expected event.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mmradar.errors import MalformedMessage, UnknownMessage
from mmradar.model import BookEvent, BookKind, Notice, NoticeKind, TakerSide, Trade
from mmradar.venues import VENUES, make_venue
from mmradar.venues.base import SnapshotSource, Verdict
from mmradar.venues.bybit import (
    MAX_ARGS_CHARS_PER_CONNECTION,
    MAX_TOPICS_PER_CONNECTION,
    Bybit,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bybit"
TS = 1_700_000_000_123_456_789
MS = 1_000_000


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes().strip()


def parse(raw: bytes | str, venue: Bybit | None = None) -> list[object]:
    return list((venue or Bybit()).new_parser().parse(raw, TS))


SNAPSHOT = BookEvent(
    "BTCUSDT", BookKind.SNAPSHOT,
    [["16493.50", "0.006"], ["16493.00", "0.100"]], [["16611.00", "0.029"], ["16612.00", "0.213"]],
    18521288, 18521288, None, 1672304484978 * MS, TS,
)  # fmt: skip
DELTA = BookEvent(
    "BTCUSDT", BookKind.DELTA,
    [["30247.20", "30.028"], ["30240.00", "0"]], [["30248.70", "0"]],
    177400507, 177400507, None, 1687940967466 * MS, TS,
)  # fmt: skip
SPOT_SNAPSHOT = BookEvent(
    "ETHUSDT", BookKind.SNAPSHOT, [["1203.51", "1.0135"]], [["1203.52", "0.2312"]],
    601, 601, None, 1672304484978 * MS, TS,
)  # fmt: skip
RESTART = BookEvent(
    "BTCUSDT", BookKind.SNAPSHOT, [["30247.10", "1.000"]], [["30248.80", "2.000"]],
    1, 1, None, 1687940969000 * MS, TS,
)  # fmt: skip
TRADES = [
    Trade("BTCUSDT", 16578.5, 0.001, TakerSide.BUY, 1672304486865 * MS, TS),
    Trade("BTCUSDT", 16578.0, 0.25, TakerSide.SELL, 1672304486866 * MS, TS),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orderbook_snapshot", [SNAPSHOT]),
        ("orderbook_delta", [DELTA]),
        ("orderbook_snapshot_spot", [SPOT_SNAPSHOT]),
        ("orderbook_restart", [RESTART]),
        ("public_trade", TRADES),
        ("pong_linear", [Notice(NoticeKind.HEARTBEAT)]),
        ("pong_spot", [Notice(NoticeKind.HEARTBEAT)]),
        ("pong_option", [Notice(NoticeKind.HEARTBEAT)]),
        ("subscribe_ack_linear", [Notice(NoticeKind.SUBSCRIBED)]),
        ("subscribe_ack_spot", [Notice(NoticeKind.SUBSCRIBED)]),
        ("unsubscribe_ack", [Notice(NoticeKind.SUBSCRIBED)]),
        (
            "subscribe_error",
            [
                Notice(
                    NoticeKind.ERROR,
                    "subscribe: error:already subscribed,topic:orderbook.1000.BTCUSDT",
                )
            ],
        ),
    ],
)
@pytest.mark.parametrize("category", ["linear", "spot"])
def test_fixture_parses_to_expected_events(
    name: str, expected: list[object], category: str
) -> None:
    assert parse(fixture(name), Bybit(category=category)) == expected


def test_delta_with_u_1_is_a_restart_snapshot() -> None:
    msg = orjson.loads(fixture("orderbook_delta"))
    msg["data"]["u"] = 1
    (event,) = parse(orjson.dumps(msg))
    assert isinstance(event, BookEvent)
    assert event.kind is BookKind.SNAPSHOT and event.last_id == 1


def test_missing_side_means_no_change_on_that_side() -> None:
    msg = orjson.loads(fixture("orderbook_delta"))
    del msg["data"]["a"]
    (event,) = parse(orjson.dumps(msg))
    assert isinstance(event, BookEvent)
    assert event.asks == [] and event.bids == DELTA.bids


def _mutated(name: str, path: tuple[str, ...], value: object) -> bytes:
    msg = orjson.loads(fixture(name))
    target = msg
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return orjson.dumps(msg)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'{"topic": 5}',
        _mutated("orderbook_delta", ("data",), [1]),
        _mutated("orderbook_delta", ("data", "u"), "177400507"),
        _mutated("orderbook_delta", ("data", "u"), KeyError),
        _mutated("orderbook_delta", ("data", "b"), "30247.20"),
        _mutated("orderbook_delta", ("data", "s"), KeyError),
        _mutated("orderbook_delta", ("ts",), "soon"),
        _mutated("orderbook_delta", ("type",), KeyError),
        _mutated("public_trade", ("data",), {"T": 1}),
        _mutated("public_trade", ("data", 0, "S"), "buy"),
        _mutated("public_trade", ("data", 1, "p"), "abc"),
        _mutated("public_trade", ("data", 0, "T"), KeyError),
    ],
)
def test_malformed_messages_raise(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse(raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{}}',
        _mutated("orderbook_delta", ("type",), "partial"),
        b'{"op":"auth","success":true,"ret_msg":""}',
        b'{"hello":"world"}',
    ],
)
def test_unknown_messages_raise(raw: bytes) -> None:
    with pytest.raises(UnknownMessage):
        parse(raw)


# -- sequence ------------------------------------------------------------------------------------


def _event(u: int, kind: BookKind = BookKind.DELTA) -> BookEvent:
    return BookEvent("BTCUSDT", kind, [], [], u, u, None, 0, 0)


@pytest.mark.parametrize(
    ("last_u", "u", "verdict"),
    [
        (18521288, 18521289, Verdict.APPLY),
        (18521288, 18521288, Verdict.DROP),
        (18521288, 18521000, Verdict.DROP),
        (18521288, 18521290, Verdict.GAP),
        (1, 2, Verdict.APPLY),  # after a restart snapshot
        (1, 3, Verdict.GAP),
    ],
)
def test_u_chain(last_u: int, u: int, verdict: Verdict) -> None:
    venue = Bybit()
    assert venue.first_after_snapshot(_event(last_u, BookKind.SNAPSHOT), _event(u)) is verdict
    assert venue.next_in_sequence(_event(last_u), _event(u)) is verdict


@pytest.mark.parametrize(
    ("previous", "u", "reset"),
    [
        (None, 500, True),
        (500, 500, False),  # the same state pushed again
        (500, 501, False),  # the chain continues
        (500, 1, True),  # service restart
        (500, 503, True),
        (500, 499, True),
    ],
)
def test_snapshot_reset_or_refresh(previous: int | None, u: int, reset: bool) -> None:
    prev = None if previous is None else _event(previous)
    assert Bybit().is_reset(prev, _event(u, BookKind.SNAPSHOT)) is reset


# -- venue wiring --------------------------------------------------------------------------------


def test_registered_as_linear_stream_snapshot_venue() -> None:
    assert VENUES["bybit"] is Bybit
    venue = make_venue("bybit", "ws://127.0.0.1:9")
    assert isinstance(venue, Bybit)
    assert venue.category.name == "linear"
    assert venue.snapshot_source is SnapshotSource.STREAM
    assert venue.max_depth == 1000
    assert orjson.loads(venue.keepalive_text or "") == {"req_id": "ping", "op": "ping"}
    assert venue.keepalive_interval_s == 20.0
    (plan,) = venue.connections(["BTCUSDT"], trades=True)
    assert plan.url == "ws://127.0.0.1:9/v5/public/linear"


def test_default_host_and_spot_category() -> None:
    (linear,) = Bybit().connections(["BTCUSDT"], trades=False)
    (spot,) = Bybit(category="spot").connections(["BTCUSDT"], trades=False)
    assert linear.url == "wss://stream.bybit.com/v5/public/linear"
    assert spot.url == "wss://stream.bybit.com/v5/public/spot"
    assert orjson.loads(linear.subscribe[0])["args"] == ["orderbook.1000.BTCUSDT"]
    assert linear.trade_symbols == () and linear.depth_symbols == ("BTCUSDT",)
    with pytest.raises(ValueError, match="category"):
        Bybit(category="option")


def test_one_subscribe_request_per_symbol() -> None:
    # Bybit refuses a whole request that names one unknown topic: each symbol's depth and trade
    # topics go in a request of their own (2 args, within spot's 10 per request).
    symbols = [f"S{i}USDT" for i in range(12)]
    (plan,) = Bybit(category="spot").connections(symbols, trades=True)
    requests = [orjson.loads(text) for text in plan.subscribe]
    assert [r["args"] for r in requests] == [
        [f"orderbook.1000.{s}", f"publicTrade.{s}"] for s in symbols
    ]
    assert all(r["op"] == "subscribe" for r in requests)
    assert len({r["req_id"] for r in requests}) == len(symbols)
    assert plan.depth_symbols == plan.trade_symbols == tuple(symbols)


def test_connections_respect_topic_and_args_limits() -> None:
    many = [f"S{i}USDT" for i in range(120)]
    plans = Bybit().connections(many, trades=True)
    assert [len(p.depth_symbols) for p in plans] == [50, 50, 20]
    assert len({p.name for p in plans}) == 3
    long = [f"{i:02d}" + "X" * 900 for i in range(40)]  # 1,836 args characters per symbol
    plans = Bybit().connections(long, trades=True)
    for plan in plans:
        args = [a for text in plan.subscribe for a in orjson.loads(text)["args"]]
        assert len(args) <= MAX_TOPICS_PER_CONNECTION
        assert sum(len(a) + 3 for a in args) <= MAX_ARGS_CHARS_PER_CONNECTION
    assert [len(p.depth_symbols) for p in plans] == [10, 10, 10, 10]  # 11 would pass 20,000
    with pytest.raises(ValueError, match="connections"):
        Bybit().connections([f"S{i}" for i in range(5100)], trades=True)


def test_resubscribe_unsubscribes_then_subscribes_the_depth_topic() -> None:
    unsub, sub = (orjson.loads(t) for t in Bybit().resubscribe("ETHUSDT"))
    assert unsub["op"] == "unsubscribe" and sub["op"] == "subscribe"
    assert unsub["args"] == sub["args"] == ["orderbook.1000.ETHUSDT"]
