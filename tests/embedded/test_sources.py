"""The embedded Binance venue's protocol conformance, over both frame sources.

The same checks run against a real capture (``CaptureSource``) and a simulated market
(``SimulatedSource``): the venue's protocol layer does not depend on where frames come from.
Helpers (the independent book procedure, the end marker) are those of
``test_embedded_binance.py``. Source-specific vectors stay in that module (capture) and at the
end of this one (simulation: the venue serves exactly the simulator's events).
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from mmradar.embedded.binance import EmbeddedBinance
from mmradar.embedded.capture import DepthDiff, Trade
from mmradar.embedded.source import (
    CaptureSource,
    FrameSource,
    SimulatedPerpSource,
    SimulatedSource,
)
from mmradar.sim import FeedFault, Phase, ScenarioSpec
from support import wait_until

from .test_embedded_binance import (
    END,
    FIXED_MS,
    FakeClock,
    as_decimal,
    drain,
    get_json,
    read_until_end,
    sync_book,
)

SIM_SECONDS = 40.0
SOURCES = ("capture", "sim")


def make_source(kind: str, **sim: Any) -> FrameSource:
    if kind == "capture":
        return CaptureSource("spot")
    return SimulatedSource(sim.pop("scenario", "calm"), 7, duration_s=SIM_SECONDS, **sim)


def depth_count(venue: EmbeddedBinance) -> int:
    return sum(isinstance(s, DepthDiff) for s in venue.plan.steps)


def trade_count(venue: EmbeddedBinance) -> int:
    return sum(isinstance(s, Trade) for s in venue.plan.steps)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.mark.parametrize("kind", SOURCES)
async def test_rest_snapshot_shape_weights_and_errors(
    session: aiohttp.ClientSession, kind: str
) -> None:
    source = make_source(kind)
    async with EmbeddedBinance("spot", source=source, speed=math.inf, clock=FakeClock()) as venue:
        url = venue.rest_base + "/api/v3/depth"
        status, headers, body = await get_json(session, url, symbol="BTCUSDT")
        assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == "5"
        assert headers["Content-Type"].startswith("application/json")
        assert list(body) == ["lastUpdateId", "bids", "asks"]
        assert body["lastUpdateId"] == venue.truth_last_update_id("BTCUSDT")
        assert body["lastUpdateId"] == venue.plan.snapshot.lastUpdateId
        assert len(body["bids"]) == len(body["asks"]) == 100
        bids = [Decimal(p) for p, _ in body["bids"]]
        asks = [Decimal(p) for p, _ in body["asks"]]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
        used = 5
        for limit, weight in {"101": 25, "1000": 50, "5000": 250}.items():
            status, headers, body = await get_json(session, url, symbol="BTCUSDT", limit=limit)
            used += weight
            assert status == 200 and headers["X-MBX-USED-WEIGHT-1M"] == str(used)
        truth_bids, truth_asks = venue.truth_book("BTCUSDT")
        assert len(body["bids"]) == min(5000, len(truth_bids))
        assert as_decimal(dict(body["asks"])) == as_decimal(truth_asks)  # whole book ≤ 5000
        status, _, body = await get_json(session, url, symbol="ETHUSDT")
        assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
        status, _, body = await get_json(session, url, symbol="BTCUSDT", limit="ten")
        assert status == 400 and body["code"] == -1100
        status, _, body = await get_json(session, venue.rest_base + "/api/v3/time")
        assert (status, body) == (200, {"serverTime": FIXED_MS})


@pytest.mark.parametrize("kind", SOURCES)
async def test_combined_and_raw_streams_carry_the_same_first_event(kind: str) -> None:
    source = make_source(kind)
    async with EmbeddedBinance(
        "spot", source=source, speed=math.inf, loop=False, clock=FakeClock()
    ) as venue:
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
            assert first["E"] == FIXED_MS  # rebased onto the venue's clock
            assert first["U"] <= venue.plan.snapshot.lastUpdateId + 1 <= first["u"]
            assert orjson.loads(await raw.recv()) == first
            streams = set()
            async with asyncio.timeout(10):
                while "btcusdt@trade" not in streams:
                    streams.add(orjson.loads(await combined.recv())["stream"])
            assert streams == {"btcusdt@depth@100ms", "btcusdt@trade"}


@pytest.mark.parametrize("kind", SOURCES)
async def test_every_depth_stream_chains_and_ends_at_the_truth(kind: str) -> None:
    source = make_source(kind)
    async with EmbeddedBinance("spot", source=source, speed=math.inf, loop=False) as venue:
        url = venue.ws_base + "/stream?streams=btcusdt@depth@100ms/btcusdt@depth/btcusdt@trade"
        async with connect(url) as ws:
            frames = await drain(venue, ws)
        streams: dict[str, list[Any]] = {"btcusdt@depth@100ms": [], "btcusdt@depth": []}
        trades = []
        for frame in frames:
            if frame["stream"] == "btcusdt@trade":
                trades.append(frame["data"])
            else:
                streams[frame["stream"]].append(frame["data"])
        fast, slow = streams["btcusdt@depth@100ms"], streams["btcusdt@depth"]
        assert len(fast) == depth_count(venue) == venue.stats.depth_events
        assert len(trades) == trade_count(venue) == venue.stats.trades
        assert 0 < len(slow) < len(fast)
        snapshot = {
            "lastUpdateId": venue.plan.snapshot.lastUpdateId,
            "bids": venue.plan.snapshot.bids,
            "asks": venue.plan.snapshot.asks,
        }
        bids, asks = venue.truth_book("BTCUSDT")
        for events in (fast, slow):
            assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(events))
            assert all(a["E"] <= b["E"] for a, b in itertools.pairwise(events))
            got_bids, got_asks, last_u, _ = sync_book(snapshot, events, "spot")
            assert (got_bids, got_asks) == (as_decimal(bids), as_decimal(asks))
            assert last_u == venue.truth_last_update_id("BTCUSDT")
        volume = {"buy": Decimal(0), "sell": Decimal(0)}
        for trade in trades:
            volume["sell" if trade["m"] else "buy"] += Decimal(trade["q"])
        assert venue.taker_volume("BTCUSDT") == volume


@pytest.mark.parametrize("kind", SOURCES)
async def test_mid_stream_snapshot_plus_diffs_reproduces_the_truth(
    session: aiohttp.ClientSession, kind: str
) -> None:
    source = make_source(kind)
    async with EmbeddedBinance("spot", source=source, speed=math.inf, loop=False) as venue:
        async with connect(venue.ws_base + "/ws/btcusdt@depth@100ms") as ws:
            reader = asyncio.create_task(read_until_end(ws))
            await wait_until(
                lambda: venue.stats.depth_events >= 150,
                "150 depth events sent",
                timeout_s=10,
                interval_s=0.001,
            )
            status, _, snapshot = await get_json(
                session, venue.rest_base + "/api/v3/depth", symbol="BTCUSDT", limit="5000"
            )
            assert status == 200
            assert snapshot["lastUpdateId"] > venue.plan.snapshot.lastUpdateId
            await venue.wait_drained()
            venue.send_raw(END)
            events = await reader
        bids, asks, last_u, applied = sync_book(snapshot, events, "spot")
        assert 0 < applied < len(events)
        assert last_u == venue.truth_last_update_id("BTCUSDT")
        truth_bids, truth_asks = venue.truth_book("BTCUSDT")
        assert (bids, asks) == (as_decimal(truth_bids), as_decimal(truth_asks))


@pytest.mark.parametrize("kind", SOURCES)
async def test_skip_next_depth_breaks_the_chain_exactly_once(kind: str) -> None:
    source = make_source(kind)
    async with EmbeddedBinance("spot", source=source, speed=math.inf, loop=False) as venue:
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
        assert len(events) == depth_count(venue) - 1
        assert events[-1]["u"] == venue.truth_last_update_id("BTCUSDT")


@pytest.mark.parametrize("kind", SOURCES)
async def test_loop_closes_with_1001_and_ids_and_times_keep_increasing(
    session: aiohttp.ClientSession, kind: str
) -> None:
    source = make_source(kind)
    async with EmbeddedBinance("spot", source=source, speed=math.inf, loop=True) as venue:
        async with connect(venue.ws_base + "/ws/btcusdt@depth@100ms/btcusdt@trade") as ws:
            first_pass = [orjson.loads(m) async for m in ws]
            assert ws.close_code == 1001
        depth = [e for e in first_pass if e["e"] == "depthUpdate"]
        trades = [e for e in first_pass if e["e"] == "trade"]
        assert len(depth) == depth_count(venue) and len(trades) == trade_count(venue)
        assert venue.pass_number == 1
        status, _, snapshot = await get_json(
            session, venue.rest_base + "/api/v3/depth", symbol="BTCUSDT", limit="5"
        )
        assert status == 200
        assert snapshot["lastUpdateId"] == venue.plan.snapshot.lastUpdateId + venue.plan.id_shift
        async with connect(venue.ws_base + "/ws/btcusdt@depth@100ms/btcusdt@trade") as ws:
            second: dict[str, dict[str, Any]] = {}
            async with asyncio.timeout(10):
                while len(second) < 2:
                    event = orjson.loads(await ws.recv())
                    second.setdefault(event["e"], event)
        assert second["depthUpdate"]["U"] == depth[0]["U"] + venue.plan.id_shift > depth[-1]["u"]
        assert second["depthUpdate"]["E"] > max(e["E"] for e in first_pass)
        assert second["trade"]["t"] > trades[-1]["t"]


@pytest.mark.parametrize("kind", SOURCES)
async def test_control_frames_and_drop_connections(kind: str) -> None:
    source = make_source(kind)
    async with (
        EmbeddedBinance("spot", source=source, speed=1.0) as venue,
        connect(venue.ws_base + "/ws") as ws,
    ):
        await ws.send('{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms"],"id":1}')
        assert orjson.loads(await ws.recv()) == {"result": None, "id": 1}
        assert orjson.loads(await ws.recv())["e"] == "depthUpdate"
        await ws.send('{"method":"GET_PROPERTY","params":["combined"],"id":"x1"}')
        async with asyncio.timeout(5):
            while (reply := orjson.loads(await ws.recv())).get("id") != "x1":
                assert reply["e"] == "depthUpdate"
        assert reply == {"result": False, "id": "x1"}
        venue.drop_connections()
        with pytest.raises(ConnectionClosedError):
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        assert ws.close_code == 1006


# -- the simulated source ------------------------------------------------------------------


async def test_the_venue_serves_exactly_the_simulators_events() -> None:
    source = SimulatedSource("calm", 3, duration_s=20.0)
    async with (
        EmbeddedBinance(
            "spot", source=source, speed=math.inf, loop=False, clock=FakeClock()
        ) as venue,
        connect(venue.ws_base + "/stream?streams=btcusdt@depth@100ms/btcusdt@trade") as ws,
    ):
        frames = await drain(venue, ws)
    run = source.run
    assert run is not None
    sent = [orjson.loads(f.payload) for f in run.frames]
    first_depth = next(i for i, f in enumerate(sent) if f["stream"] == "btcusdt@depth@100ms")
    e0 = sent[first_depth]["data"]["E"]
    expected = []
    for frame in sent[first_depth:]:  # nothing before the first diff is served
        data = dict(frame["data"])
        data["E"] += FIXED_MS - e0
        if "T" in data:
            data["T"] += FIXED_MS - e0
        expected.append({"stream": frame["stream"], "data": data})
    assert frames == expected
    assert venue.position_ns == run.end_ns


async def test_scheduled_faults_gap_then_drop() -> None:
    spec = ScenarioSpec(
        "faults", "control", "gap at 3 s, drop at 6 s", (Phase("calm", 10.0),),
        faults=(FeedFault(3.0, "gap"), FeedFault(6.0, "drop")),
    )  # fmt: skip
    source = SimulatedSource(spec, 2)
    async with EmbeddedBinance("spot", source=source, speed=math.inf, loop=False) as venue:
        async with connect(venue.ws_base + "/ws/btcusdt@depth@100ms") as ws:
            events = []
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        events.append(orjson.loads(await ws.recv()))
            assert ws.close_code == 1006
        breaks = [b["E"] - events[0]["E"] for a, b in itertools.pairwise(events)
                  if b["U"] != a["u"] + 1]  # fmt: skip
        # events[0] is the window ending at 0.1 s; the one ending at 3.0 s was skipped
        assert breaks == [3000]
        assert 5800 <= events[-1]["E"] - events[0]["E"] <= 6000
        assert venue.stats.depth_events_skipped == 1


async def test_a_perpetual_venue_in_lockstep_serves_the_simulators_perp_events() -> None:
    """The perpetual of a two-venue run, on a USD-M venue in lockstep with the spot one: it
    releases nothing the spot venue has not reached, serves the simulator's depth frames and
    fills (as ``@trade``) with the spot venue's event-time shift, and ends with it."""
    source = SimulatedSource("hedged-buy-burst", 3, duration_s=20.0)
    clock = FakeClock()
    async with (
        EmbeddedBinance("spot", source=source, speed=math.inf, loop=False, clock=clock) as spot,
        EmbeddedBinance(
            "usdm",
            source=SimulatedPerpSource(source),
            loop=False,
            clock=clock,
            lockstep=spot,
        ) as perp,
        connect(perp.ws_base + "/public/stream?streams=btcusdt@depth@0ms/btcusdt@trade") as pws,
    ):
        # nobody on the spot venue: it holds, and so does the perpetual
        await asyncio.sleep(0.2)
        assert perp.stats.depth_events == 0
        reader = asyncio.create_task(read_until_end(pws))
        ahead: list[tuple[int, int]] = []

        async def watch() -> None:
            while not spot.stats.passes_completed:
                if perp.position_ns > spot.position_ns:
                    ahead.append((perp.position_ns, spot.position_ns))
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        async with connect(spot.ws_base + "/ws/btcusdt@depth@100ms") as sws:
            spot_frames = await drain(spot, sws)
            await perp.wait_drained()
            perp.send_raw(END)
            frames = await reader
        await watcher
    assert not ahead
    run = source.run
    assert run is not None and run.perp is not None
    spot_sent = [orjson.loads(f.payload) for f in run.frames]
    e0 = next(f["data"]["E"] for f in spot_sent if f["stream"] == "btcusdt@depth@100ms")
    assert spot_frames[0]["E"] == FIXED_MS
    shift = FIXED_MS - e0
    sent = [orjson.loads(f.payload) for f in run.perp.frames]
    first_depth = next(i for i, f in enumerate(sent) if f["stream"] == "btcusdt@depth@100ms")
    expected = []
    for frame in sent[first_depth:]:
        data = frame["data"]
        if data["e"] == "depthUpdate":
            shifted = {**data, "E": data["E"] + shift, "T": data["T"] + shift}
            expected.append({"stream": "btcusdt@depth@0ms", "data": shifted})
        else:
            assert data["f"] == data["l"] == data["a"]
            fill = {"e": "trade", "E": data["E"] + shift, "T": data["T"] + shift, "s": data["s"],
                    "t": data["a"], "p": data["p"], "q": data["q"], "m": data["m"]}  # fmt: skip
            expected.append({"stream": "btcusdt@trade", "data": fill})
    assert any(f["stream"] == "btcusdt@trade" for f in expected)
    assert frames == expected
    assert perp.position_ns == run.perp.frames[-1].ts_ns
