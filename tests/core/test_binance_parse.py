"""Binance frame parsing, connection planning and REST snapshot handling.

Messages are the doc examples in ``tests/fixtures/binance/*.json`` (sources in
``tests/fixtures/SOURCES.md``); every parse is compared to the whole expected event.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from mmradar.errors import MalformedMessage, ParseError, UnknownMessage
from mmradar.model import BookEvent, BookKind, Notice, NoticeKind, TakerSide, Trade
from mmradar.venues import VENUES, make_venue
from mmradar.venues.base import ConnectionPlan, SnapshotRequest, SnapshotSource, Venue
from mmradar.venues.binance import MAX_STREAMS_PER_CONNECTION, BinanceSpot, BinanceUsdm

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "binance"
TS = 1_700_000_000_123_456_789
MS = 1_000_000


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes().strip()


def wrap(stream: str, raw: bytes) -> bytes:
    return orjson.dumps({"stream": stream, "data": orjson.loads(raw)})


def parse(venue: Venue, raw: bytes | str) -> list[object]:
    return list(venue.new_parser().parse(raw, TS))


# Levels arrive as the floats orjson reads from the decimal text (exactly float(text)).
SPOT_DEPTH = BookEvent(
    "BNBBTC", BookKind.DELTA, [[0.0024, 10.0]], [[0.0026, 100.0]], 157, 160, None,
    1672515782136 * MS, TS,
)  # fmt: skip
USDM_DEPTH = BookEvent(
    "BTCUSDT", BookKind.DELTA, [[0.0024, 10.0]], [[0.0026, 100.0]], 157, 160, 149,
    123456789 * MS, TS,
)  # fmt: skip
SPOT_TRADE = Trade("BNBBTC", 0.001, 100.0, TakerSide.SELL, 1672515782136 * MS, TS)
USDM_AGG_TRADE = Trade("BTCUSDT", 0.001, 100.0, TakerSide.SELL, 123456785 * MS, TS)


# -- frames ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("venue_cls", [BinanceSpot, BinanceUsdm])
@pytest.mark.parametrize(
    ("name", "stream", "expected"),
    [
        ("spot_depth_update", "bnbbtc@depth@100ms", SPOT_DEPTH),
        ("usdm_depth_update", "btcusdt@depth@100ms", USDM_DEPTH),
        ("spot_trade", "bnbbtc@trade", SPOT_TRADE),
        ("usdm_agg_trade", "btcusdt@aggTrade", USDM_AGG_TRADE),
        ("server_shutdown", "!serverShutdown", Notice(NoticeKind.SHUTDOWN, "serverShutdown")),
    ],
)
@pytest.mark.parametrize("wrapped", [False, True], ids=["raw", "combined"])
def test_fixture_parses_to_exact_event(
    venue_cls: type[Venue], name: str, stream: str, expected: object, wrapped: bool
) -> None:
    raw = fixture(name)
    if wrapped:
        raw = wrap(stream, raw)
    assert parse(venue_cls(), raw) == [expected]
    assert parse(venue_cls(), raw.decode()) == [expected]  # text frames too


@pytest.mark.parametrize(
    ("name", "m", "taker"),
    [
        ("spot_trade", True, TakerSide.SELL),
        ("spot_trade", False, TakerSide.BUY),
        ("usdm_agg_trade", True, TakerSide.SELL),
        ("usdm_agg_trade", False, TakerSide.BUY),
    ],
)
def test_aggressor_normalization(name: str, m: bool, taker: TakerSide) -> None:
    """``m`` = "is the buyer the market maker": m=true means the seller hit the bid."""
    msg = orjson.loads(fixture(name))
    msg["m"] = m
    msg["p"], msg["q"] = "61837.63000000", "0.02000000"
    venue = BinanceSpot() if name.startswith("spot") else BinanceUsdm()
    (trade,) = parse(venue, orjson.dumps(msg))
    assert trade == Trade(msg["s"], 61837.63, 0.02, taker, msg["T"] * MS, TS)


def test_depth_update_levels_are_the_floats_of_their_exact_text() -> None:
    msg = orjson.loads(fixture("spot_depth_update"))
    msg["b"] = [["61837.63000000", "0.00000000"], ["61837.62000000", "3.78826000"]]
    msg["a"] = []
    (event,) = parse(BinanceSpot(), orjson.dumps(msg))
    assert isinstance(event, BookEvent)
    assert event.bids == [[61837.63, 0.0], [61837.62, 3.78826]]
    assert all(type(x) is float for level in event.bids for x in level)
    assert event.asks == []
    assert event.prev_id is None and event.checksum is None


def _decimal_texts(seed: int, n: int) -> list[str]:
    """Decimal strings of 1-15 significant digits, with Binance-style trailing zeros."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        digits = rng.randint(1, 15)
        text = str(rng.randrange(10 ** (digits - 1), 10**digits))
        point = rng.randint(0, digits)
        whole, frac = text[: digits - point] or "0", text[digits - point :]
        out.append(f"{whole}.{frac}{'0' * rng.randint(0, 8)}" if frac else whole)
    return out


def test_numbers_read_by_the_decoder_equal_float_of_the_text() -> None:
    """The fast path hands the book orjson's floats: they must be float(text), bit for bit."""
    texts = _decimal_texts(7, 20_000)
    levels = [texts[i : i + 2] for i in range(0, len(texts) - 1, 2)]
    msg = orjson.loads(fixture("spot_depth_update"))
    msg["b"], msg["a"] = levels[: len(levels) // 2], levels[len(levels) // 2 :]
    (event,) = parse(BinanceSpot(), orjson.dumps(msg))
    assert isinstance(event, BookEvent)
    got = [x for side in (event.bids, event.asks) for level in side for x in level]
    assert got == [float(t) for level in levels for t in level]
    # bit for bit; a text without a decimal point arrives as an int, which the book converts
    assert [float(x).hex() for x in got] == [float(t).hex() for level in levels for t in level]
    assert all(type(x) is int for x, t in zip(got, texts, strict=False) if "." not in t)


@pytest.mark.parametrize(
    "raw",
    [
        # a field after the levels, an empty side, the order of b and a swapped
        b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1.5","2"]],"a":[],"x":"y"}',
        b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"a":[["1.5","2"]],"b":[["1.25","3"]]}',
        b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[["1.5","2"]]}',
    ],
)
def test_frames_of_other_shapes_are_read_unchanged(raw: bytes) -> None:
    (event,) = parse(BinanceSpot(), raw)
    assert isinstance(event, BookEvent)
    msg = orjson.loads(raw)
    assert [[float(p), float(q)] for p, q in event.bids] == [
        [float(p), float(q)] for p, q in msg["b"]
    ]
    assert [[float(p), float(q)] for p, q in event.asks] == [
        [float(p), float(q)] for p, q in msg["a"]
    ]


def test_subscription_ack() -> None:
    assert parse(BinanceSpot(), fixture("subscription_ack")) == [Notice(NoticeKind.SUBSCRIBED)]
    assert parse(BinanceUsdm(), b'{"result":null,"id":"abc"}') == [Notice(NoticeKind.SUBSCRIBED)]


@pytest.mark.parametrize(
    "raw",
    [
        fixture("error_unknown_property"),
        b'{"code": 2, "msg": "Invalid request: property name must be a string"}',
        b'{"error":{"code":2,"msg":"Invalid request: unknown variant"},"id":7}',
    ],
)
def test_error_message_is_an_error_notice(raw: bytes) -> None:
    (notice,) = parse(BinanceSpot(), raw)
    assert isinstance(notice, Notice)
    assert notice.kind is NoticeKind.ERROR
    assert "Invalid request" in notice.detail or "Unknown property" in notice.detail
    assert len(notice.detail) <= 200


@pytest.mark.parametrize(
    "raw",
    [
        fixture("spot_book_ticker"),
        wrap("bnbusdt@bookTicker", fixture("spot_book_ticker")),
        b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT",'
        b'"b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}}',
        b'{"e":"kline","E":1,"s":"BTCUSDT","k":{}}',
        b"{}",
    ],
)
def test_unhandled_kinds_are_unknown_messages(raw: bytes) -> None:
    with pytest.raises(UnknownMessage) as info:
        parse(BinanceSpot(), raw)
    assert info.value.reason == "unknown"
    assert isinstance(info.value, ParseError)
    assert info.value.venue == "binance"


def _depth_without(key: str) -> bytes:
    msg = orjson.loads(fixture("usdm_depth_update"))
    del msg[key]
    return orjson.dumps(msg)


def _depth_with(**kw: object) -> bytes:
    msg = orjson.loads(fixture("spot_depth_update"))
    msg.update(kw)
    return orjson.dumps(msg)


def _trade_with(**kw: object) -> bytes:
    msg = orjson.loads(fixture("spot_trade"))
    msg.update(kw)
    return orjson.dumps(msg)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"e":"depthUpdate",', id="truncated-json"),
        pytest.param(b"[1, 2, 3]", id="json-list"),
        pytest.param(b'"depthUpdate"', id="json-string"),
        pytest.param(b"null", id="json-null"),
        pytest.param(_depth_without("u"), id="missing-u"),
        pytest.param(_depth_without("U"), id="missing-U"),
        pytest.param(_depth_without("s"), id="missing-s"),
        pytest.param(_depth_without("E"), id="missing-E"),
        pytest.param(_depth_without("b"), id="missing-b"),
        pytest.param(_depth_with(b="0.0024"), id="b-not-a-list"),
        pytest.param(_depth_with(a={"0.0026": "100"}), id="a-not-a-list"),
        pytest.param(_depth_with(u="abc"), id="u-not-an-int"),
        pytest.param(b'{"stream":"btcusdt@depth@100ms","data":[1]}', id="data-not-object"),
        pytest.param(b'{"stream":"btcusdt@depth@100ms","data":"x"}', id="data-string"),
        pytest.param(b'{"stream":"btcusdt@depth@100ms"}', id="data-missing"),
        pytest.param(_trade_with(p="abc"), id="trade-price-not-a-number"),
        pytest.param(_trade_with(q=None), id="trade-qty-null"),
        pytest.param(orjson.dumps({"e": "trade", "s": "X", "p": "1", "q": "1"}), id="trade-no-m"),
    ],
)
@pytest.mark.parametrize("venue_cls", [BinanceSpot, BinanceUsdm])
def test_malformed_frames(venue_cls: type[Venue], raw: bytes) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse(venue_cls(), raw)
    assert info.value.reason == "malformed"
    assert info.value.venue == venue_cls.name


def test_parsers_are_independent_instances() -> None:
    venue = BinanceSpot()
    assert venue.new_parser() is not venue.new_parser()


# -- connection plans ------------------------------------------------------------------------------


def streams_of(plan: ConnectionPlan) -> list[str]:
    _, sep, tail = plan.url.partition("/stream?streams=")
    assert sep, plan.url
    return tail.split("/")


def test_spot_single_combined_connection() -> None:
    plans = BinanceSpot().connections(["BTCUSDT", "ETHUSDT"], trades=True)
    assert plans == [
        ConnectionPlan(
            name="binance/#0",
            url="wss://stream.binance.com:9443/stream?streams="
            "btcusdt@depth@100ms/ethusdt@depth@100ms/btcusdt@trade/ethusdt@trade",
            depth_symbols=("BTCUSDT", "ETHUSDT"),
            trade_symbols=("BTCUSDT", "ETHUSDT"),
        )
    ]
    assert BinanceSpot().connections(["BTCUSDT"], trades=False) == [
        ConnectionPlan(
            name="binance/#0",
            url="wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms",
            depth_symbols=("BTCUSDT",),
            trade_symbols=(),
        )
    ]


def test_usdm_depth_on_public_trades_on_market() -> None:
    plans = BinanceUsdm().connections(["BTCUSDT", "ETHUSDT"], trades=True)
    assert plans == [
        ConnectionPlan(
            name="binance-usdm/public#0",
            url="wss://fstream.binance.com/public/stream?streams="
            "btcusdt@depth@100ms/ethusdt@depth@100ms",
            depth_symbols=("BTCUSDT", "ETHUSDT"),
            trade_symbols=(),
        ),
        ConnectionPlan(
            name="binance-usdm/market#0",
            url="wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade",
            depth_symbols=(),
            trade_symbols=("BTCUSDT", "ETHUSDT"),
        ),
    ]
    only_depth = BinanceUsdm().connections(["BTCUSDT"], trades=False)
    assert [p.url for p in only_depth] == [
        "wss://fstream.binance.com/public/stream?streams=btcusdt@depth@100ms"
    ]


@pytest.mark.parametrize(
    ("venue_cls", "ws_paths", "rest_path", "limit"),
    [
        (BinanceSpot, [""], "/api/v3/depth", 5000),
        (BinanceUsdm, ["/public", "/market"], "/fapi/v1/depth", 1000),
    ],
)
def test_base_url_overrides_keep_paths_and_queries(
    venue_cls: type[Venue], ws_paths: list[str], rest_path: str, limit: int
) -> None:
    venue = venue_cls(ws_base="ws://127.0.0.1:18080/", rest_base="http://127.0.0.1:18081/")
    plans = venue.connections(["BTCUSDT"], trades=True)
    assert [p.url.split("/stream?")[0] for p in plans] == [
        f"ws://127.0.0.1:18080{path}" for path in ws_paths
    ]
    default = venue_cls().connections(["BTCUSDT"], trades=True)
    assert [p.url.split("/stream?", 1)[1] for p in plans] == [
        p.url.split("/stream?", 1)[1] for p in default
    ]
    assert venue.snapshot_request("BTCUSDT").url == (
        f"http://127.0.0.1:18081{rest_path}?symbol=BTCUSDT&limit={limit}"
    )


@pytest.mark.parametrize(
    ("venue_cls", "n_symbols", "expected_names"),
    [
        (BinanceSpot, 150, ["binance/#0", "binance/#1"]),  # 300 streams on one path
        (BinanceSpot, 401, ["binance/#0", "binance/#1", "binance/#2", "binance/#3", "binance/#4"]),
        (
            BinanceUsdm,
            250,
            [
                "binance-usdm/public#0",
                "binance-usdm/public#1",
                "binance-usdm/market#0",
                "binance-usdm/market#1",
            ],
        ),
    ],
)
def test_many_streams_split_across_connections(
    venue_cls: type[Venue], n_symbols: int, expected_names: list[str]
) -> None:
    symbols = [f"SYM{i:03d}USDT" for i in range(n_symbols)]
    venue = venue_cls()
    plans = venue.connections(symbols, trades=True)
    assert [p.name for p in plans] == expected_names
    assert MAX_STREAMS_PER_CONNECTION == 200
    trade_stream = "trade" if venue_cls is BinanceSpot else "aggTrade"
    all_streams: list[str] = []
    for plan in plans:
        streams = streams_of(plan)
        assert 0 < len(streams) <= MAX_STREAMS_PER_CONNECTION
        # the symbol lists describe exactly the streams in the URL, in order
        assert list(plan.depth_symbols) == [
            s.split("@")[0].upper() for s in streams if s.endswith("@depth@100ms")
        ]
        assert list(plan.trade_symbols) == [
            s.split("@")[0].upper() for s in streams if s.endswith(f"@{trade_stream}")
        ]
        all_streams += streams
    expected = [f"{s.lower()}@depth@100ms" for s in symbols]
    expected += [f"{s.lower()}@{trade_stream}" for s in symbols]
    assert sorted(all_streams) == sorted(expected)  # every stream exactly once
    # a connection never mixes USD-M's /public and /market paths
    if venue_cls is BinanceUsdm:
        for plan in plans:
            assert ("/public/" in plan.url) == bool(plan.depth_symbols)
            assert ("/market/" in plan.url) == bool(plan.trade_symbols)


# -- REST snapshots --------------------------------------------------------------------------------


def test_snapshot_requests_and_weights() -> None:
    assert BinanceSpot().snapshot_request("BTCUSDT") == SnapshotRequest(
        url="https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000", weight=250
    )
    assert BinanceUsdm().snapshot_request("BTCUSDT") == SnapshotRequest(
        url="https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000", weight=20
    )
    assert BinanceSpot.rest_weight_per_minute == 6000
    assert BinanceUsdm.rest_weight_per_minute == 2400
    assert BinanceSpot.snapshot_source is BinanceUsdm.snapshot_source is SnapshotSource.REST


def test_parse_spot_rest_snapshot() -> None:
    snap = BinanceSpot().parse_snapshot("BNBBTC", fixture("spot_rest_snapshot"), TS)
    assert snap == BookEvent(
        "BNBBTC", BookKind.SNAPSHOT, [[4.0, 431.0]], [[4.000002, 12.0]], 1027024, 1027024, None,
        TS, TS,
    )  # fmt: skip


def test_parse_usdm_rest_snapshot_uses_event_time() -> None:
    snap = BinanceUsdm().parse_snapshot("BTCUSDT", fixture("usdm_rest_snapshot"), TS)
    assert snap == BookEvent(
        "BTCUSDT", BookKind.SNAPSHOT, [[4.0, 431.0]], [[4.000002, 12.0]], 1027024, 1027024, None,
        1589436922972 * MS, TS,
    )  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        b"<html>502 Bad Gateway</html>",
        b"[]",
        b'{"code":-1121,"msg":"Invalid symbol."}',
        b'{"bids":[],"asks":[]}',
        b'{"lastUpdateId":"x","bids":[],"asks":[]}',
        b'{"lastUpdateId":1,"bids":"x","asks":[]}',
        b'{"lastUpdateId":1,"bids":[]}',
    ],
)
@pytest.mark.parametrize("venue_cls", [BinanceSpot, BinanceUsdm])
def test_parse_snapshot_rejects_bad_bodies(venue_cls: type[Venue], body: bytes) -> None:
    with pytest.raises(MalformedMessage) as info:
        venue_cls().parse_snapshot("BTCUSDT", body, TS)
    assert info.value.reason == "malformed"


def test_registry() -> None:
    assert {"binance": BinanceSpot, "binance-usdm": BinanceUsdm}.items() <= dict(VENUES).items()
    assert set(VENUES) == {"binance", "binance-usdm", "coinbase", "kraken", "okx", "bybit"}
    venue = make_venue("binance-usdm", ws_base="ws://h:1", rest_base="http://h:2")
    assert isinstance(venue, BinanceUsdm)
    assert venue.snapshot_request("X").url == "http://h:2/fapi/v1/depth?symbol=X&limit=1000"
