"""The embedded Bybit venue speaks v5 exactly: acks, errors, pong, snapshot on subscribe, trades.

Also the spot category end to end at the pipeline level: a raw websocket client hands every frame
of the spot venue to a :class:`FeedPipeline` built on ``Bybit(category="spot")``, whose book must
end equal to the venue's truth.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from fakes.bybit import EmbeddedBybit
from mmradar.model import Side
from mmradar.pipeline import FeedPipeline
from mmradar.venues.bybit import Bybit
from support import read_to_marker

SYMBOL = "BTCUSDT"


async def recv(ws: ClientConnection) -> dict[str, Any]:
    msg = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    assert isinstance(msg, dict)
    return msg


async def test_control_protocol_spot() -> None:
    async with EmbeddedBybit("spot") as venue:
        with pytest.raises(InvalidStatus):
            async with connect(f"{venue.ws_base}/v5/public/linear"):
                pass
        venue.pause()  # no replay: only answers to our requests
        async with connect(f"{venue.ws_base}/v5/public/spot") as ws:
            await ws.send('{"req_id":"p1","op":"ping"}')
            pong = await recv(ws)
            assert pong["success"] is True and pong["ret_msg"] == "pong" and pong["op"] == "ping"

            args = [f"orderbook.1000.{SYMBOL}"] * 11
            await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
            assert (await recv(ws))["success"] is False

            await ws.send('{"op":"subscribe","args":["orderbook.7.BTCUSDT"],"req_id":"x"}')
            bad = await recv(ws)
            assert bad["success"] is False and "orderbook.7.BTCUSDT" in bad["ret_msg"]

            await ws.send('{"op":"subscribe","args":["orderbook.1000.BTCUSDT"],"req_id":"s"}')
            ack = await recv(ws)
            assert ack == {
                "success": True, "ret_msg": "subscribe", "conn_id": ack["conn_id"],
                "req_id": "s", "op": "subscribe",
            }  # fmt: skip
            snap = await recv(ws)
            assert snap["topic"] == f"orderbook.1000.{SYMBOL}" and snap["type"] == "snapshot"
            assert len(snap["data"]["b"]) == len(snap["data"]["a"]) == 1000
            assert snap["data"]["u"] == venue.last_update_id
            bids, asks = venue.truth_book(SYMBOL)
            assert dict(map(tuple, snap["data"]["b"])) == bids
            assert dict(map(tuple, snap["data"]["a"])) == asks
            assert all(len(p.split(".")[1]) == 2 for p in bids)  # spot prices re-written

            await ws.send('{"op":"subscribe","args":["orderbook.1000.BTCUSDT"]}')
            again = await recv(ws)
            assert again["success"] is False and "already subscribed" in again["ret_msg"]

            await ws.send("{not json")
            assert (await recv(ws))["success"] is False


async def test_deltas_chain_and_trades_fields_linear() -> None:
    venue = EmbeddedBybit("linear", speed=50.0)
    async with venue, connect(f"{venue.ws_base}/v5/public/linear") as ws:
        await ws.send('{"op":"subscribe","args":["orderbook.1000.BTCUSDT","publicTrade.BTCUSDT"]}')
        assert (await recv(ws))["ret_msg"] == ""
        last_u = (await recv(ws))["data"]["u"]
        deltas = trades = 0
        while deltas < 5 or trades < 5:
            msg = await recv(ws)
            if msg["topic"].startswith("orderbook"):
                assert msg["type"] == "delta" and msg["data"]["u"] == last_u + 1
                last_u = msg["data"]["u"]
                deltas += 1
            else:
                for t in msg["data"]:
                    assert set(t) == {"T", "s", "S", "v", "p", "L", "i", "BT", "RPI", "seq"}
                    assert t["S"] in ("Buy", "Sell") and t["s"] == SYMBOL
                trades += 1


async def test_spot_pipeline_ends_equal_to_truth() -> None:
    venue_module = Bybit(category="spot")
    pipeline = FeedPipeline(venue_module, [SYMBOL])
    async with EmbeddedBybit("spot") as venue:
        (plan,) = venue_module.connections([SYMBOL], trades=True)
        assert plan.url.endswith("/v5/public/spot")
        parser = pipeline.new_parser()
        async with connect(venue.ws_base + "/v5/public/spot") as ws:
            for text in plan.subscribe:
                await ws.send(text)

            async def read_until_pong() -> None:
                while True:
                    raw = await ws.recv()
                    if '"pong"' in raw and orjson.loads(raw).get("req_id") == "drained":
                        return
                    assert pipeline.on_frame(parser, raw, 0) == []

            # the ping's answer is queued after every frame of the capture
            await read_to_marker(
                read_until_pong(),
                venue.wait_drained(),
                lambda: ws.send('{"req_id":"drained","op":"ping"}'),
            )
        inst = pipeline.instruments[SYMBOL]
        assert inst.valid
        bids, asks = venue.truth_book(SYMBOL)
        assert inst.book.items(Side.BID) == sorted(
            ((float(p), float(q)) for p, q in bids.items()), reverse=True
        )
        assert inst.book.items(Side.ASK) == sorted((float(p), float(q)) for p, q in asks.items())
        volume = venue.taker_volume(SYMBOL)
        assert venue.stats.trades > 9000 and venue.stats.deltas_sent > 500
        assert volume["buy"] > 0 and volume["sell"] > 0
