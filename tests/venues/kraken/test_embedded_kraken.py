"""The embedded Kraken venue speaks Kraken v2, checked with a bare websocket client.

The client side is the service's own parser and synchroniser, so these tests also pin the
venue and :mod:`mmradar.venues.kraken` to each other: every checksum the venue sends must verify
against a book that applies its messages and truncates to the subscribed depth.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from fakes.kraken import EmbeddedKraken
from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync
from mmradar.model import BookEvent, Notice, NoticeKind, Side, Trade
from mmradar.venues.kraken import Kraken
from support import read_to_marker

SYMBOL = "BTC/USDT"


def request(method: str, req_id: int | None = None, **params: Any) -> str:
    body: dict[str, Any] = {"method": method}
    if params:
        body["params"] = params
    if req_id is not None:
        body["req_id"] = req_id
    return orjson.dumps(body).decode()


async def recv(ws: ClientConnection, timeout_s: float = 5.0) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout_s))


async def recv_until(ws: ClientConnection, predicate: Any, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        msg = await recv(ws, max(0.01, deadline - time.monotonic()))
        if predicate(msg):
            return msg


@pytest.fixture
async def venue() -> AsyncIterator[EmbeddedKraken]:
    async with EmbeddedKraken(speed=math.inf, duration_s=60.0) as v:
        yield v


@pytest.mark.parametrize("depth", [10, 1000])
async def test_every_checksum_verifies_at_the_subscribed_depth(
    venue: EmbeddedKraken, depth: int
) -> None:
    class AtDepth(Kraken):
        max_depth = depth

    kraken = AtDepth(venue.ws_base)
    parser = kraken.new_parser()
    book = L2Book(keep_text=True)
    resyncs: list[str] = []
    applied: list[BookEvent] = []
    sync = BookSync(kraken, SYMBOL, book, on_resync=resyncs.append, on_applied=applied.append)
    trades: list[Trade] = []
    async with connect(f"{venue.ws_base}/v2", max_size=2**24) as ws:
        await ws.send(request("subscribe", 1, channel="instrument"))
        await ws.send(request("subscribe", 2, channel="book", symbol=[SYMBOL], depth=depth))
        await ws.send(request("subscribe", 3, channel="trade", symbol=[SYMBOL], snapshot=False))

        async def read_until_pong() -> None:
            while True:
                raw = await ws.recv()
                if '"pong"' in raw and orjson.loads(raw).get("req_id") == 4:
                    return
                for event in parser.parse(raw, time.time_ns()):
                    if isinstance(event, BookEvent):
                        assert event.checksum is not None  # on every message, snapshot included
                        assert sync.on_event(event) is None
                    elif isinstance(event, Trade):
                        trades.append(event)

        # the ping's answer is queued after every frame of the capture
        await read_to_marker(
            read_until_pong(), venue.wait_drained(), lambda: ws.send(request("ping", 4))
        )
    assert resyncs == []
    assert len(applied) > 100
    # Truncation mattered: the venue's book is deeper than the subscription.
    assert min(venue.full_depth(SYMBOL)) > depth
    bids, asks = venue.truth_book(SYMBOL, depth)
    assert dict(book.text_top(Side.BID, depth)) == bids
    assert dict(book.text_top(Side.ASK, depth)) == asks
    assert len(bids) == len(asks) == depth
    volume = venue.taker_volume(SYMBOL)
    assert math.isclose(sum(t.qty for t in trades), float(volume["buy"] + volume["sell"]))
    assert math.isclose(
        sum(t.qty for t in trades if t.taker.value == "buy"), float(volume["buy"]), rel_tol=1e-12
    )


async def test_requests_acks_and_errors(venue: EmbeddedKraken) -> None:
    async with connect(f"{venue.ws_base}/v2") as ws:
        status = await recv(ws)
        assert status["channel"] == "status" and status["data"][0]["system"] == "online"

        await ws.send(request("ping", 101))
        pong = await recv(ws)
        assert pong["method"] == "pong" and pong["req_id"] == 101
        assert pong["time_in"].endswith("Z") and pong["time_out"].endswith("Z")

        await ws.send(request("subscribe", 7, channel="instrument"))
        ack = await recv(ws)
        assert ack["success"] is True and ack["result"]["channel"] == "instrument"
        snapshot = await recv(ws)
        assert snapshot["channel"] == "instrument" and snapshot["type"] == "snapshot"
        (pair,) = snapshot["data"]["pairs"]
        assert (pair["symbol"], pair["price_precision"], pair["qty_precision"]) == (SYMBOL, 2, 8)

        venue.pause()
        await ws.send(request("subscribe", 8, channel="book", symbol=[SYMBOL, "XBT/USD"]))
        ack = await recv(ws)
        assert ack == {
            "method": "subscribe",
            "result": {"channel": "book", "depth": 10, "snapshot": True, "symbol": SYMBOL},
            "success": True, "req_id": 8, "time_in": ack["time_in"], "time_out": ack["time_out"],
        }  # fmt: skip
        book = await recv(ws)
        assert book["type"] == "snapshot" and len(book["data"][0]["bids"]) == 10
        assert isinstance(book["data"][0]["checksum"], int)
        assert book["data"][0]["checksum"] == venue.truth_checksum(SYMBOL)
        refused = await recv(ws)
        assert refused["success"] is False and refused["symbol"] == "XBT/USD"
        assert refused["error"] == "Currency pair not supported" and refused["req_id"] == 8

        await ws.send(request("subscribe", 9, channel="book", symbol=[SYMBOL]))
        assert (await recv(ws))["error"] == "Already subscribed"
        await ws.send(request("unsubscribe", 10, channel="book", symbol=[SYMBOL], depth=1000))
        assert (await recv(ws))["error"] == "Subscription Not Found"  # subscribed at depth 10
        await ws.send(request("unsubscribe", 11, channel="book", symbol=[SYMBOL]))
        gone = await recv(ws)
        assert gone["success"] is True and gone["result"]["depth"] == 10
        await ws.send(request("subscribe", 12, channel="book", symbol=[SYMBOL], depth=11))
        assert (await recv(ws))["success"] is False
        await ws.send(request("subscribe", 13, channel="level9", symbol=[SYMBOL]))
        assert (await recv(ws))["error"] == "Channel not supported"
        await ws.send(request("cancel_everything", 14))
        assert (await recv(ws))["error"] == "Method not supported"
        await ws.send("{not json")
        assert (await recv(ws))["error"] == "Malformed request"

        # Trade snapshot on request (default true); heartbeats while nothing else flows.
        await ws.send(request("subscribe", 15, channel="trade", symbol=[SYMBOL]))
        assert (await recv(ws))["success"] is True
        trades = await recv(ws)
        assert trades["channel"] == "trade" and trades["type"] == "snapshot"
        heartbeat = await recv(ws, 2.0)
        assert heartbeat == {"channel": "heartbeat"}


async def test_message_rate_limit(venue: EmbeddedKraken) -> None:
    async with connect(f"{venue.ws_base}/v2") as ws:
        await recv(ws)  # status
        for n in range(60):
            await ws.send(request("ping", n))
        replies = [await recv(ws) for _ in range(60)]
    assert sum(r.get("error") == "Exceeded msg rate" for r in replies) == 10
    assert sum(r.get("method") == "pong" for r in replies) == 50


async def test_corrupted_checksum_is_detected(venue: EmbeddedKraken) -> None:
    kraken = Kraken(venue.ws_base)
    parser = kraken.new_parser()
    book = L2Book(keep_text=True)
    resyncs: list[str] = []
    sync = BookSync(kraken, SYMBOL, book, on_resync=resyncs.append)
    # close_timeout: the replay keeps queueing frames this test no longer reads.
    async with connect(f"{venue.ws_base}/v2", max_size=2**24, close_timeout=0.2) as ws:
        for frame in kraken.connections([SYMBOL], trades=False)[0].subscribe:
            await ws.send(frame)
        updates = 0
        while not resyncs:
            for event in parser.parse(await asyncio.wait_for(ws.recv(), 5), time.time_ns()):
                if isinstance(event, BookEvent):
                    action = sync.on_event(event)
                    updates += 1
                    if updates == 20:  # well into the stream
                        venue.corrupt_next_checksum(SYMBOL)
                    if action is not None:
                        for text in kraken.resubscribe(action.symbol):
                            await ws.send(text)
        assert resyncs == ["checksum"] and venue.stats.checksums_corrupted == 1
        # The resubscribe is acknowledged twice and a fresh snapshot makes the book valid.
        notices: list[Notice] = []
        while not sync.valid:
            for event in parser.parse(await asyncio.wait_for(ws.recv(), 5), time.time_ns()):
                if isinstance(event, Notice):
                    notices.append(event)
                elif isinstance(event, BookEvent):
                    sync.on_event(event)
        assert notices.count(Notice(NoticeKind.SUBSCRIBED)) == 2
        assert resyncs == ["checksum"]
        venue.pause()


async def test_only_v2_path_is_served(venue: EmbeddedKraken) -> None:
    with pytest.raises(InvalidStatus):
        async with connect(f"{venue.ws_base}/"):
            pass
