"""End-to-end tests of the embedded Binance venue with real websocket and HTTP clients.

Every test talks to the venue over 127.0.0.1 exactly as a Binance client would. The book check
in :func:`sync_book` is written here from the published procedure, independently of both the
venue's ground truth and the service's book.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import math
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from fake_clock import FakeClock as PaceClock
from mmradar.embedded.binance import EmbeddedBinance
from mmradar.embedded.capture import (
    BookTicker,
    DepthDiff,
    Market,
    Snapshot,
    Trade,
    capture_path,
    load_capture,
)
from mmradar.embedded.plan import build_plan
from support import timed, wait_until

FIXED_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123Z, mid-minute
FIXED_MS = FIXED_NS // 1_000_000
END = "END-OF-TEST-STREAM"
SHA256 = {
    "spot": "5d263f4c5379cfc27379ef0e22779aa33804463d1b69c292e9c0714e31f2e1b4",
    "usdm": "0ad7b3a0f5cff220761ea890cfd6e3c15f6899edc7f94637ec915043d7a72251",
}


class FakeClock:
    """A settable wall clock in ns."""

    def __init__(self, now_ns: int = FIXED_NS) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


async def get_json(
    session: aiohttp.ClientSession, url: str, **params: str
) -> tuple[int, dict[str, Any], Any]:
    async with session.get(url, params=params) as resp:
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


def _whole(frame: Any) -> Any:
    return frame


async def read_until_end(ws: ClientConnection, keep: Callable[[Any], Any] = _whole) -> list[Any]:
    """Collect parsed frames (through ``keep``) until the :data:`END` marker of ``send_raw``."""
    frames: list[Any] = []
    async with asyncio.timeout(20):
        async for message in ws:
            if message == END:
                return frames
            frames.append(keep(orjson.loads(message)))
    raise AssertionError("connection closed before the end marker")


async def drain(
    venue: EmbeddedBinance, ws: ClientConnection, keep: Callable[[Any], Any] = _whole
) -> list[Any]:
    """Wait for the whole capture to be sent, then collect everything the client got."""
    reader = asyncio.create_task(read_until_end(ws, keep))
    await venue.wait_drained()
    venue.send_raw(END)
    return await reader


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


def sync_book(
    snapshot: dict[str, Any], events: list[dict[str, Any]], market: str
) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal], int, int]:
    """Binance's "manage a local order book" procedure, from the docs (docs/venues/binance.md).

    Returns:
        ``(bids, asks, last_u, applied)`` where the books are keyed by Decimal price.
    """
    last_id = snapshot["lastUpdateId"]
    bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
    asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
    applied = 0
    prev_u: int | None = None
    for event in events:
        if prev_u is None:
            if (market == "spot" and event["u"] <= last_id) or event["u"] < last_id:
                continue  # older than the snapshot
            if market == "spot":
                assert event["U"] <= last_id + 1 <= event["u"]
            else:
                assert event["U"] <= last_id <= event["u"]
        elif market == "spot":
            assert event["U"] == prev_u + 1
        else:
            assert event["pu"] == prev_u
        for side, key in ((bids, "b"), (asks, "a")):
            for p, q in event[key]:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        prev_u = event["u"]
        applied += 1
    return bids, asks, prev_u if prev_u is not None else last_id, applied


def as_decimal(side: dict[str, str]) -> dict[Decimal, Decimal]:
    return {Decimal(p): Decimal(q) for p, q in side.items()}


# -- capture loader and plan ----------------------------------------------------------------


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_packaged_captures_are_unmodified(market: Market) -> None:
    data = capture_path(market).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256[market]
    readme = Path(str(capture_path(market))).with_name("README.md").read_text()
    assert "MIT License" in readme and "Copyright (c) 2022 nkaz001@protonmail.com" in readme


def test_spot_capture_loads_typed_records() -> None:
    capture = load_capture(capture_path("spot"))
    kinds = {
        kind: sum(isinstance(r, kind) for r in capture.records)
        for kind in (DepthDiff, Trade, BookTicker, Snapshot)
    }
    assert kinds == {DepthDiff: 3451, Trade: 9757, BookTicker: 28040, Snapshot: 1}
    assert capture.symbol == "BTCUSDT"
    assert capture.snapshot.lastUpdateId == 50093239218
    assert len(capture.snapshot.bids) == len(capture.snapshot.asks) == 1000
    first = next(r for r in capture.records if isinstance(r, DepthDiff))
    assert (first.U, first.u, first.pu, first.T) == (50093239189, 50093239202, None, None)
    assert first.b[0] == ("61737.63000000", "0.00000000")
    trade = next(r for r in capture.records if isinstance(r, Trade))
    assert (trade.p, trade.q, trade.m, trade.M) == ("61837.63000000", "0.02000000", True, True)


def test_usdm_plan_follows_the_futures_snapshot_rule() -> None:
    plan = build_plan(load_capture(capture_path("usdm")), "usdm")
    assert plan.snapshot.lastUpdateId == 5123107852948
    assert plan.dropped_diffs == 4
    first = next(s for s in plan.steps if isinstance(s, DepthDiff))
    assert (first.U, first.u, first.pu) == (5123107850310, 5123107853551, 5123107850146)
    assert plan.first_event_ms == first.E
    spot = build_plan(load_capture(capture_path("spot")), "spot")
    assert spot.dropped_diffs == 2
    first = next(s for s in spot.steps if isinstance(s, DepthDiff))
    assert (first.U, first.u) == (50093239208, 50093239224)


# -- REST ---------------------------------------------------------------------------------


async def test_spot_rest_snapshot_shape_and_weights(session: aiohttp.ClientSession) -> None:
    async with EmbeddedBinance("spot", speed=math.inf, clock=FakeClock()) as venue:
        url = venue.rest_base + "/api/v3/depth"
        status, headers, body = await get_json(session, url, symbol="BTCUSDT")
        assert status == 200
        assert headers["Content-Type"].startswith("application/json")
        assert headers["X-MBX-USED-WEIGHT-1M"] == "5"
        assert list(body) == ["lastUpdateId", "bids", "asks"]
        assert body["lastUpdateId"] == 50093239218 == venue.truth_last_update_id("BTCUSDT")
        assert len(body["bids"]) == len(body["asks"]) == 100
        assert body["bids"][0] == ["61837.63000000", "3.78826000"]
        bid_prices = [Decimal(p) for p, _ in body["bids"]]
        ask_prices = [Decimal(p) for p, _ in body["asks"]]
        assert bid_prices == sorted(bid_prices, reverse=True)
        assert ask_prices == sorted(ask_prices)
        assert bid_prices[0] < ask_prices[0]

        weights = {"100": 5, "101": 25, "500": 25, "1000": 50, "5000": 250, "9999": 250}
        used = 5
        for limit, weight in weights.items():
            status, headers, body = await get_json(session, url, symbol="BTCUSDT", limit=limit)
            used += weight
            assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == str(used), limit
        assert len(body["bids"]) == 1000  # limit 9999 is truncated to 5000: all 1000 levels

        status, _, body = await get_json(session, url, symbol="ETHUSDT")
        assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
        status, _, body = await get_json(session, url)
        assert status == 400 and body["code"] == -1102
        status, _, body = await get_json(session, url, symbol="BTCUSDT", limit="ten")
        assert status == 400 and body["code"] == -1100
        status, _, body = await get_json(session, venue.rest_base + "/fapi/v1/depth")
        assert status == 404
        status, _, body = await get_json(session, venue.rest_base + "/api/v3/time")
        assert (status, body) == (200, {"serverTime": FIXED_MS})


async def test_usdm_rest_limits_weights_and_times(session: aiohttp.ClientSession) -> None:
    async with EmbeddedBinance("usdm", speed=math.inf, clock=FakeClock()) as venue:
        url = venue.rest_base + "/fapi/v1/depth"
        status, headers, body = await get_json(session, url, symbol="BTCUSDT")
        assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "10"
        assert list(body) == ["lastUpdateId", "E", "T", "bids", "asks"]
        assert body["lastUpdateId"] == 5123107852948
        assert len(body["bids"]) == len(body["asks"]) == 500
        # snapshot times are rebased like every event time: t - E0 + start_ms
        plan = venue.plan
        assert plan.snapshot.E is not None and plan.snapshot.T is not None
        assert body["E"] == plan.snapshot.E - plan.first_event_ms + FIXED_MS
        assert body["T"] == plan.snapshot.T - plan.first_event_ms + FIXED_MS
        used = 10
        for limit, weight in {"5": 2, "50": 2, "100": 5, "500": 10, "1000": 20}.items():
            status, headers, body = await get_json(session, url, symbol="BTCUSDT", limit=limit)
            used += weight
            assert status == 200 and len(body["asks"]) == int(limit)
            assert headers["X-MBX-USED-WEIGHT-1M"] == str(used)
        for limit in ("7", "5000", "abc"):
            status, _, body = await get_json(session, url, symbol="BTCUSDT", limit=limit)
            assert status == 400 and body["code"] == -1100
        status, _, body = await get_json(session, url, symbol="btcusd_perp")
        assert (status, body["code"]) == (400, -1121)


async def test_rest_weight_budget_gives_429_until_the_next_minute(
    session: aiohttp.ClientSession,
) -> None:
    clock = FakeClock()
    async with EmbeddedBinance("spot", clock=clock, rest_weight_per_minute=12) as venue:
        url = venue.rest_base + "/api/v3/depth"
        for used in ("5", "10"):
            status, headers, _ = await get_json(session, url, symbol="BTCUSDT", limit="10")
            assert (status, headers["X-MBX-USED-WEIGHT-1M"]) == (200, used)
        status, headers, body = await get_json(session, url, symbol="BTCUSDT", limit="10")
        assert status == 429 and body["code"] == -1003
        assert "current limit is 12 request weight per 1 MINUTE" in body["msg"]
        seconds_left = 60 - (FIXED_NS // 1_000_000_000) % 60
        assert headers["Retry-After"] == str(seconds_left)
        assert headers["X-MBX-USED-WEIGHT-1M"] == "10"

        clock.now_ns += seconds_left * 1_000_000_000  # next minute: budget restored
        status, headers, _ = await get_json(session, url, symbol="BTCUSDT", limit="10")
        assert (status, headers["X-MBX-USED-WEIGHT-1M"]) == (200, "5")

        venue.fail_next_rest(2, status=418, retry_after_s=120)
        venue.fail_next_rest(1)
        statuses = []
        for _ in range(4):
            status, headers, body = await get_json(session, url, symbol="BTCUSDT")
            statuses.append((status, headers.get("Retry-After")))
        assert statuses == [(418, "120"), (418, "120"), (429, "1"), (200, None)]
        assert venue.stats.rest_rejected == 4
        assert venue.stats.rest_requests == 8


# -- websocket modes and control frames -----------------------------------------------------


async def test_combined_stream_wraps_and_raw_stream_does_not() -> None:
    async with EmbeddedBinance("spot", speed=math.inf, loop=False, clock=FakeClock()) as venue:
        venue.pause()
        combined = await connect(
            venue.ws_base + "/stream?streams=btcusdt@depth@100ms/btcusdt@trade"
        )
        raw = await connect(venue.ws_base + "/ws/btcusdt@depth@100ms")
        async with combined, raw:
            venue.resume()
            wrapped = orjson.loads(await combined.recv())
            assert list(wrapped) == ["stream", "data"]
            assert wrapped["stream"] == "btcusdt@depth@100ms"
            first = wrapped["data"]
            assert list(first) == ["e", "E", "s", "U", "u", "b", "a"]
            assert (first["e"], first["s"], first["U"], first["u"]) == (
                "depthUpdate",
                "BTCUSDT",
                50093239208,
                50093239224,
            )
            assert first["E"] == FIXED_MS  # the first served event is at the venue's start
            assert orjson.loads(await raw.recv()) == first
            streams = set()
            async with asyncio.timeout(5):
                while "btcusdt@trade" not in streams:
                    streams.add(orjson.loads(await combined.recv())["stream"])
            assert streams == {"btcusdt@depth@100ms", "btcusdt@trade"}


async def test_subscribe_list_unsubscribe_and_errors() -> None:
    async with EmbeddedBinance("spot", speed=math.inf, loop=False) as venue:
        async with connect(venue.ws_base + "/ws") as ws:
            request = {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "xyzusdt@trade"], "id": 1}
            await ws.send(orjson.dumps(request).decode())
            assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
            event = orjson.loads(await ws.recv())
            assert event["e"] == "trade" and "stream" not in event
            await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":"ab12"}')
            async with asyncio.timeout(5):
                while (reply := orjson.loads(await ws.recv())).get("id") != "ab12":
                    assert reply["e"] == "trade"
            assert reply == {"result": ["btcusdt@trade", "xyzusdt@trade"], "id": "ab12"}

            await ws.send('{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":2}')
            await ws.send('{"method":"SET_PROPERTY","params":["combined",true],"id":3}')
            await ws.send('{"method":"GET_PROPERTY","params":["combined"],"id":4}')
            replies: dict[int, Any] = {}
            async with asyncio.timeout(5):
                while len(replies) < 3:
                    reply = orjson.loads(await ws.recv())
                    if "id" in reply:
                        replies[reply["id"]] = reply
            assert replies[2] == {"result": None, "id": 2}
            assert replies[3] == {"result": None, "id": 3}
            assert replies[4] == {"result": True, "id": 4}

        async with connect(venue.ws_base + "/ws") as ws:
            await ws.send("{not json")
            error = orjson.loads(await ws.recv())
            assert error["error"]["code"] == 3
            assert error["error"]["msg"].startswith("Invalid JSON: expected value at line 1")
            await ws.send('{"method":"SUBSCRIBE","params":[]}')
            assert orjson.loads(await ws.recv())["error"]["code"] == 2  # id is required
            await ws.send('{"method":"FOO","params":[],"id":7}')
            reply = orjson.loads(await ws.recv())
            assert reply["id"] == 7 and reply["error"]["code"] == 2
            assert "unknown variant `FOO`" in reply["error"]["msg"]
            await ws.send('{"method":"SET_PROPERTY","params":["combined","yes"],"id":8}')
            error = {"code": 1, "msg": "Invalid value type: expected Boolean"}
            assert orjson.loads(await ws.recv()) == {"error": error, "id": 8}


async def test_too_many_incoming_messages_close_the_connection() -> None:
    async with (
        EmbeddedBinance("spot", speed=math.inf) as venue,
        connect(venue.ws_base + "/ws") as ws,
    ):
        for i in range(6):  # Binance spot allows 5 per second
            await ws.send(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
        replies = []
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    replies.append(orjson.loads(await ws.recv()))
        assert [r["id"] for r in replies] == [0, 1, 2, 3, 4]
        assert ws.close_code == 1008


async def test_usdm_routes_public_market_and_legacy_paths() -> None:
    async with EmbeddedBinance("usdm", speed=math.inf, loop=False) as venue:
        with pytest.raises(InvalidStatus) as refused:
            await connect(venue.ws_base + "/stream?streams=btcusdt@depth@100ms")
        assert refused.value.response.status_code == 404
        with pytest.raises(InvalidStatus):
            await connect(venue.ws_base + "/ws/btcusdt@depth")

        venue.pause()
        public = await connect(venue.ws_base + "/public/ws/btcusdt@depth@0ms")
        market = await connect(
            venue.ws_base + "/market/stream?streams=btcusdt@aggTrade/btcusdt@depth@0ms"
        )
        async with public, market:
            venue.resume()
            depth = orjson.loads(await public.recv())
            assert list(depth) == ["e", "E", "T", "s", "U", "u", "pu", "b", "a"]
            assert (depth["U"], depth["u"], depth["pu"]) == (
                5123107850310,
                5123107853551,
                5123107850146,
            )
            agg = orjson.loads(await market.recv())
            assert agg["stream"] == "btcusdt@aggTrade"  # depth is not served on /market
            assert list(agg["data"]) == ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m"]


# -- replay: chains, truth, faults ----------------------------------------------------------


async def test_depth_chains_hold_on_every_stream_and_end_at_the_truth() -> None:
    async with EmbeddedBinance("spot", speed=math.inf, loop=False) as venue:
        url = venue.ws_base + "/stream?streams=btcusdt@depth@100ms/btcusdt@depth"
        async with connect(url) as ws:
            frames = await drain(venue, ws)
        streams = {"btcusdt@depth@100ms": [], "btcusdt@depth": []}  # type: dict[str, list[Any]]
        for frame in frames:
            streams[frame["stream"]].append(frame["data"])
        fast, slow = streams["btcusdt@depth@100ms"], streams["btcusdt@depth"]
        assert len(fast) == 3449 == venue.stats.depth_events
        assert 300 < len(slow) < 400  # ~346 s of capture in 1 s windows
        for events in (fast, slow):
            assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(events))
            assert all(a["E"] <= b["E"] for a, b in itertools.pairwise(events))
            assert events[-1]["u"] == venue.truth_last_update_id("BTCUSDT")
        bids, asks = venue.truth_book("BTCUSDT")
        for events in (fast, slow):
            snapshot = {
                "lastUpdateId": venue.plan.snapshot.lastUpdateId,
                "bids": venue.plan.snapshot.bids,
                "asks": venue.plan.snapshot.asks,
            }
            got_bids, got_asks, last_u, _ = sync_book(snapshot, events, "spot")
            assert (got_bids, got_asks) == (as_decimal(bids), as_decimal(asks))
            assert last_u == venue.truth_last_update_id("BTCUSDT")


async def test_usdm_pu_chain_holds_on_every_depth_stream() -> None:
    async with EmbeddedBinance("usdm", speed=math.inf, loop=False) as venue:
        names = ["btcusdt@depth@0ms", "btcusdt@depth@100ms", "btcusdt@depth", "btcusdt@depth@500ms"]

        def ids_only(frame: dict[str, Any]) -> dict[str, Any]:
            del frame["data"]["b"], frame["data"]["a"]  # 33 MB of levels: keep the test fast
            return frame

        async with connect(f"{venue.ws_base}/public/stream?streams={'/'.join(names)}") as ws:
            frames = await drain(venue, ws, ids_only)
        streams: dict[str, list[Any]] = {name: [] for name in names}
        for frame in frames:
            streams[frame["stream"]].append(frame["data"])
        assert len(streams["btcusdt@depth@0ms"]) == 6547
        sizes = [len(streams[name]) for name in names]
        assert sizes == sorted(sizes, reverse=True)  # slower streams send fewer events
        for events in streams.values():
            assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(events))
            assert all(a["T"] <= b["T"] for a, b in itertools.pairwise(events))
            assert events[-1]["u"] == venue.truth_last_update_id("BTCUSDT")


@pytest.mark.parametrize(
    ("market", "path", "rest"),
    [
        ("spot", "/ws/btcusdt@depth@100ms", "/api/v3/depth"),
        ("usdm", "/public/ws/btcusdt@depth@100ms", "/fapi/v1/depth"),
    ],
)
async def test_mid_stream_snapshot_plus_diffs_reproduces_the_truth(
    session: aiohttp.ClientSession, market: Market, path: str, rest: str
) -> None:
    async with EmbeddedBinance(market, speed=math.inf, loop=False) as venue:
        async with connect(venue.ws_base + path) as ws:
            reader = asyncio.create_task(read_until_end(ws))
            await wait_until(
                lambda: venue.stats.depth_events >= 500,
                "500 depth events sent",
                timeout_s=10,
                interval_s=0.001,
            )
            limit = "5000" if market == "spot" else "1000"
            status, _, snapshot = await get_json(
                session, venue.rest_base + rest, symbol="BTCUSDT", limit=limit
            )
            assert status == 200
            assert snapshot["lastUpdateId"] > venue.plan.snapshot.lastUpdateId
            await venue.wait_drained()
            venue.send_raw(END)
            events = await reader
        bids, asks, last_u, applied = sync_book(snapshot, events, market)
        assert 0 < applied < len(events)
        assert last_u == venue.truth_last_update_id("BTCUSDT")
        truth_bids, truth_asks = venue.truth_book("BTCUSDT")
        if market == "spot":  # 5000 levels per side cover the whole book
            assert (bids, asks) == (as_decimal(truth_bids), as_decimal(truth_asks))
        else:  # levels deeper than the 1000 of the snapshot stay unknown, as on the real venue
            for mine, truth, best_first in ((bids, truth_bids, True), (asks, truth_asks, False)):
                exact = as_decimal(truth)
                assert all(exact[p] == q for p, q in mine.items())  # nothing stale or invented
                top = sorted(exact, reverse=best_first)[:200]
                assert [mine.get(p) for p in top] == [exact[p] for p in top]


async def test_skip_next_depth_breaks_the_chain_exactly_once() -> None:
    async with EmbeddedBinance("spot", speed=math.inf, loop=False) as venue:
        async with connect(venue.ws_base + "/ws/btcusdt@depth@100ms") as ws:
            reader = asyncio.create_task(read_until_end(ws))
            await wait_until(
                lambda: venue.stats.depth_events >= 100,
                "100 depth events sent",
                timeout_s=10,
                interval_s=0.001,
            )
            venue.skip_next_depth("btcusdt")
            await venue.wait_drained()
            venue.send_raw(END)
            events = await reader
        breaks = [(a["u"], b["U"]) for a, b in itertools.pairwise(events) if b["U"] != a["u"] + 1]
        assert len(breaks) == 1 and breaks[0][1] > breaks[0][0] + 1
        assert len(events) == 3448
        assert venue.stats.depth_events_skipped == 1
        assert events[-1]["u"] == venue.truth_last_update_id("BTCUSDT")


async def test_loop_closes_with_1001_and_ids_and_times_keep_increasing(
    session: aiohttp.ClientSession,
) -> None:
    async with EmbeddedBinance("spot", speed=math.inf, loop=True) as venue:
        async with connect(venue.ws_base + "/ws/btcusdt@depth@100ms/btcusdt@trade") as ws:
            first_pass = [orjson.loads(m) async for m in ws]
            assert ws.close_code == 1001
        depth = [e for e in first_pass if e["e"] == "depthUpdate"]
        trades = [e for e in first_pass if e["e"] == "trade"]
        assert len(depth) == 3449 and len(trades) == 9756
        assert venue.pass_number == 1 and venue.stats.passes_completed == 1

        status, _, snapshot = await get_json(
            session, venue.rest_base + "/api/v3/depth", symbol="BTCUSDT", limit="5"
        )
        assert status == 200 and snapshot["lastUpdateId"] > depth[-1]["u"]
        assert snapshot["lastUpdateId"] == venue.plan.snapshot.lastUpdateId + venue.plan.id_shift

        async with connect(venue.ws_base + "/ws/btcusdt@depth@100ms/btcusdt@trade") as ws:
            second: dict[str, dict[str, Any]] = {}
            async with asyncio.timeout(5):
                while len(second) < 2:
                    event = orjson.loads(await ws.recv())
                    second.setdefault(event["e"], event)
        assert second["depthUpdate"]["U"] == depth[0]["U"] + venue.plan.id_shift
        assert second["depthUpdate"]["U"] > depth[-1]["u"]
        assert second["depthUpdate"]["E"] > max(e["E"] for e in first_pass)
        assert second["trade"]["t"] > trades[-1]["t"]
        assert second["trade"]["T"] > trades[-1]["T"]
        truth_bids, _ = venue.truth_book("BTCUSDT")
        assert truth_bids  # reset to the snapshot and moving again


async def test_trades_aggtrades_and_taker_volume_agree() -> None:
    async with EmbeddedBinance("usdm", speed=math.inf, loop=False) as venue:
        url = venue.ws_base + "/market/stream?streams=btcusdt@trade/btcusdt@aggTrade"
        async with connect(url) as ws:
            frames = await drain(venue, ws)
    trades = [f["data"] for f in frames if f["stream"] == "btcusdt@trade"]
    aggs = [f["data"] for f in frames if f["stream"] == "btcusdt@aggTrade"]
    assert len(trades) == 21309 == venue.stats.trades
    assert list(trades[0]) == ["e", "E", "T", "s", "t", "p", "q", "X", "m"]
    volume = {"buy": Decimal(0), "sell": Decimal(0)}
    for trade in trades:
        volume["sell" if trade["m"] else "buy"] += Decimal(trade["q"])
    assert venue.taker_volume("BTCUSDT") == volume
    assert sum(Decimal(a["q"]) for a in aggs) == sum(volume.values())
    assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + len(aggs)))
    assert aggs[0]["f"] == trades[0]["t"] and aggs[-1]["l"] == trades[-1]["t"]
    assert all(b["f"] == a["l"] + 1 for a, b in itertools.pairwise(aggs))


async def test_injected_frames_arrive_verbatim_and_shutdown_is_wrapped() -> None:
    async with EmbeddedBinance("spot", speed=math.inf, clock=FakeClock()) as venue:
        venue.pause()
        raw = await connect(venue.ws_base + "/ws/btcusdt@trade")
        combined = await connect(venue.ws_base + "/stream?streams=btcusdt@trade")
        async with raw, combined:
            venue.send_raw("{not json")
            venue.send_server_shutdown()
            assert await raw.recv() == "{not json"
            assert await combined.recv() == "{not json"
            shutdown = {"e": "serverShutdown", "E": FIXED_MS}
            assert orjson.loads(await raw.recv()) == shutdown
            assert orjson.loads(await combined.recv()) == {
                "stream": "!serverShutdown",
                "data": shutdown,
            }
            venue.close_connections()
            with pytest.raises(ConnectionClosed):
                await raw.recv()
            assert raw.close_code == 1001


async def test_drop_connections_aborts_without_a_close_frame() -> None:
    async with EmbeddedBinance("spot", speed=1.0) as venue:
        async with connect(venue.ws_base + "/ws/btcusdt@depth@100ms") as ws:
            await ws.recv()
            venue.drop_connections()
            with pytest.raises(ConnectionClosedError):
                async with asyncio.timeout(5):
                    while True:
                        await ws.recv()
            assert ws.close_code == 1006
        assert venue.stats.connections_open == 0


async def test_pause_holds_the_replay_and_resume_continues() -> None:
    clock = PaceClock()  # the replay's pacing: the paused windows are fake time
    async with EmbeddedBinance("spot", speed=10.0, pace_clock=clock) as venue:
        venue.pause()
        async with connect(venue.ws_base + "/ws/btcusdt@depth@100ms") as ws:

            async def recv() -> Any:
                frame = asyncio.ensure_future(ws.recv())
                await clock.run_until(frame.done)
                return orjson.loads(frame.result())

            # Negative check: 3 s of pacing time (~300 events at 10x) pass and nothing is sent.
            await clock.advance(3.0)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3):
                    await ws.recv()
            assert venue.stats.depth_events == 0
            venue.resume()
            first = await recv()
            venue.pause()
            await clock.advance(3.0)  # ~300 events at 10x if the replay were running
            held = venue.stats.depth_events
            assert held <= 2
            venue.resume()
            events = [await recv() for _ in range(held + 3)]
            assert events[0]["U"] == first["u"] + 1  # nothing lost across the pause


@timed
async def test_real_time_pacing_follows_the_capture(timed: bool) -> None:
    async with (
        EmbeddedBinance("spot", speed=1.0) as venue,
        connect(venue.ws_base + "/ws/btcusdt@depth@100ms") as ws,
    ):
        loop = asyncio.get_running_loop()
        first = orjson.loads(await ws.recv())
        began = loop.time()
        for _ in range(5):
            last = orjson.loads(await ws.recv())
        elapsed = loop.time() - began
    # @depth@100ms events come ~100 ms apart in the capture, and event times follow
    assert elapsed > 0.3
    if timed:
        assert elapsed < 1.5
    assert 300 <= last["E"] - first["E"] <= 800


async def test_a_slow_client_is_dropped_without_blocking_the_others() -> None:
    async with EmbeddedBinance(
        "usdm", speed=math.inf, loop=False, max_queue_frames=200, slow_client_timeout_s=0.1
    ) as venue:
        venue.pause()
        url = venue.ws_base + "/public/ws/btcusdt@depth@0ms"
        fast = await connect(url)
        slow = await connect(url, max_queue=1)  # never read: its TCP window fills up
        async with fast, slow:
            venue.resume()
            events = await drain(venue, fast)
            assert len(events) == 6547
            assert venue.stats.slow_clients_dropped == 1
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(5):
                    while True:
                        await slow.recv()


async def test_the_venue_pings_and_accepts_pongs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets.client")
    async with (
        EmbeddedBinance("spot", ping_interval_s=0.05) as venue,
        connect(venue.ws_base + "/ws", ping_interval=None) as ws,
    ):
        await wait_until(
            lambda: (
                sum(r.getMessage().startswith("< PING") for r in caplog.records) >= 3
                and sum(r.getMessage().startswith("> PONG") for r in caplog.records) >= 3
            ),
            "3 pings answered",
        )
        await ws.send('{"method":"LIST_SUBSCRIPTIONS","id":1}')
        assert orjson.loads(await ws.recv()) == {"result": [], "id": 1}  # still connected
    messages = [record.getMessage() for record in caplog.records]
    assert sum(m.startswith("< PING") for m in messages) >= 3
    assert sum(m.startswith("> PONG") for m in messages) >= 3
