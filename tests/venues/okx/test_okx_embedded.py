"""The embedded OKX venue speaks OKX's protocol: checked with a plain client on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fakes.okx import EmbeddedOkx
from mmradar.book.l2book import L2Book
from mmradar.model import BookEvent, BookKind
from mmradar.venues.okx import Okx, okx_checksum

BTC = "BTC-USDT"


@pytest.fixture
async def venue_factory() -> AsyncIterator[Any]:
    venues: list[EmbeddedOkx] = []

    async def make(*symbols: str, **options: Any) -> EmbeddedOkx:
        venue = EmbeddedOkx(symbols or (BTC,), **options)
        await venue.start()
        venues.append(venue)
        return venue

    yield make
    for venue in venues:
        await venue.stop()


async def recv_json(ws: ClientConnection, timeout_s: float = 5.0) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout_s))


async def books_pushes(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    out = []
    while len(out) < n:
        msg = await recv_json(ws)
        if msg.get("arg", {}).get("channel") == "books" and "data" in msg:
            out.append(msg)
    return out


async def test_subscribe_acks_errors_and_pong(venue_factory) -> None:
    venue = await venue_factory()
    async with connect(f"{venue.ws_base}/ws/v5/public") as ws:
        await ws.send("ping")
        assert await asyncio.wait_for(ws.recv(), 5) == "pong"
        await ws.send('{"id":"7","op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},'
                      '{"channel":"books","instId":"NOPE-USDT"},'
                      '{"channel":"tickers","instId":"BTC-USDT"}]}')  # fmt: skip
        ack = await recv_json(ws)
        assert ack == {
            "id": "7", "event": "subscribe", "arg": {"channel": "books", "instId": BTC},
            "connId": ack["connId"],
        }  # fmt: skip
        for bad in ("NOPE-USDT", "BTC-USDT"):
            error = await recv_json(ws)
            assert error["event"] == "error" and error["code"] == "60018", error
            assert bad in error["msg"] and error["id"] == "7"
        await ws.send("{oops")
        error = await recv_json(ws)
        assert (error["event"], error["code"]) == ("error", "60012")
        await ws.send('{"op":"login","args":[]}')
        while (msg := await recv_json(ws)).get("event") != "error":
            pass
        assert msg["code"] == "60012"
    assert venue.stats.pongs == 1


async def test_updates_chain_and_rest_snapshot_rebuild_the_truth(venue_factory) -> None:
    venue = await venue_factory(checksums=True)
    parser = Okx().new_parser()
    async with connect(f"{venue.ws_base}/ws/v5/public") as ws:
        args = [{"channel": "books", "instId": BTC}, {"channel": "trades", "instId": BTC}]
        await ws.send(orjson.dumps({"op": "subscribe", "args": args}).decode())
        pushes = await books_pushes(ws, 3)
        async with aiohttp.ClientSession() as http:
            url = f"{venue.rest_base}/api/v5/market/books?instId={BTC}&sz=400"
            async with http.get(url) as resp:
                assert resp.status == 200
                snapshot = Okx().parse_snapshot(BTC, await resp.read(), 0)
        pushes += await books_pushes(ws, 30)
    events = [e for m in pushes for e in parser.parse(orjson.dumps(m), 0)]
    assert all(isinstance(e, BookEvent) and e.kind is BookKind.DELTA for e in events)
    for before, after in itertools.pairwise(events):
        assert isinstance(before, BookEvent) and isinstance(after, BookEvent)
        assert after.prev_id == before.last_id and after.last_id > before.last_id
    book = L2Book(keep_text=True)
    book.load(snapshot.bids, snapshot.asks)
    applied = 0
    for event in events:
        assert isinstance(event, BookEvent)
        if event.last_id <= snapshot.last_id:
            continue
        assert applied or event.prev_id == snapshot.last_id
        book.apply(event.bids, event.asks)
        applied += 1
        assert event.checksum == okx_checksum(book)  # the venue's real checksum
    assert applied >= 25
    bids, asks = venue.truth_book(BTC)
    assert len(bids) + len(asks) > 0
    assert venue.seq_id(BTC) >= events[-1].last_id  # type: ignore[union-attr]


async def test_default_checksum_is_zero_and_faults_are_visible(venue_factory) -> None:
    venue = await venue_factory()
    async with connect(f"{venue.ws_base}/ws/v5/public") as ws:
        await ws.send('{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}')
        first = (await books_pushes(ws, 2))[-1]["data"][0]
        assert first["checksum"] == 0
        venue.skip_next_update(BTC)
        skipped_after = (await books_pushes(ws, 1))[0]["data"][0]
        assert skipped_after["prevSeqId"] != first["seqId"]  # a gap
        venue.corrupt_next_checksum(BTC)
        corrupt = (await books_pushes(ws, 1))[0]["data"][0]
        assert corrupt["checksum"] != 0
        venue.send_idle_update(BTC)
        venue.reset_sequence(BTC)
        idle, reset = (m["data"][0] for m in await books_pushes(ws, 2))
        assert idle["seqId"] == idle["prevSeqId"] == corrupt["seqId"]
        assert (idle["bids"], idle["asks"]) == ([], [])
        assert reset["prevSeqId"] == idle["seqId"] > reset["seqId"]
    assert venue.stats.updates_skipped == 1


async def test_ws_snapshot_option_pushes_snapshot_first(venue_factory) -> None:
    venue = await venue_factory(ws_snapshot=True, checksums=True)
    async with connect(f"{venue.ws_base}/ws/v5/public") as ws:
        await ws.send('{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}')
        snapshot, update = await books_pushes(ws, 2)
    assert snapshot["action"] == "snapshot" and update["action"] == "update"
    item = snapshot["data"][0]
    assert item["prevSeqId"] == -1
    assert update["data"][0]["prevSeqId"] == item["seqId"]
    book = L2Book(keep_text=True)
    book.load(item["bids"], item["asks"])
    assert okx_checksum(book) == item["checksum"] != 0


async def test_unsubscribe_stops_pushes(venue_factory) -> None:
    venue = await venue_factory()
    async with connect(f"{venue.ws_base}/ws/v5/public") as ws:
        await ws.send('{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}')
        await books_pushes(ws, 1)
        assert venue.subscribed("books", BTC) == 1
        await ws.send('{"op":"unsubscribe","args":[{"channel":"books","instId":"BTC-USDT"}]}')
        while (msg := await recv_json(ws)).get("event") != "unsubscribe":
            pass
        assert msg["arg"] == {"channel": "books", "instId": BTC}
        assert venue.subscribed("books", BTC) == 0


async def test_idle_connection_is_closed(venue_factory) -> None:
    venue = await venue_factory(idle_timeout_s=0.3)
    async with connect(f"{venue.ws_base}/ws/v5/public") as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_wrong_websocket_path_is_refused(venue_factory) -> None:
    venue = await venue_factory()
    with pytest.raises(InvalidStatus) as info:
        async with connect(f"{venue.ws_base}/ws/v5/private"):
            pass
    assert info.value.response.status_code == 404


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("instId=BTC-USDT&sz=401", 400, "51000"),
        ("instId=BTC-USDT&sz=x", 400, "51000"),
        ("instId=DOGE-USDT&sz=5", 400, "51001"),
        ("sz=5", 400, "50014"),
    ],
)
async def test_rest_parameter_errors(venue_factory, query: str, status: int, code: str) -> None:
    venue = await venue_factory()
    url = f"{venue.rest_base}/api/v5/market/books?{query}"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == status
        assert (await resp.json())["code"] == code


async def test_rest_default_depth_and_rate_limit(venue_factory) -> None:
    venue = await venue_factory()
    url = f"{venue.rest_base}/api/v5/market/books?instId={BTC}"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            body = await resp.json()
        assert body["code"] == "0"
        assert len(body["data"][0]["bids"]) == len(body["data"][0]["asks"]) == 1  # sz default
        statuses = []
        for _ in range(45):
            async with http.get(url) as resp:
                statuses.append(resp.status)
                if resp.status == 429:
                    assert (await resp.json())["code"] == "50011"
    # 40 requests per 2 s: the first one plus 39 more pass, then 429.
    assert statuses.count(200) == 39 and statuses[39:] == [429] * 6
    assert venue.stats.rest_rejected == 6


async def test_seeded_books_are_deterministic(venue_factory) -> None:
    a = await venue_factory(BTC, "SOL-USDT", seed=7, warmup_updates=50)
    b = await venue_factory(BTC, "SOL-USDT", seed=7, warmup_updates=50)
    c = await venue_factory(BTC, "SOL-USDT", seed=8, warmup_updates=50)
    for symbol in (BTC, "SOL-USDT"):
        assert a.truth_book(symbol) == b.truth_book(symbol)
        assert a.seq_id(symbol) == b.seq_id(symbol)
        assert a.truth_book(symbol) != c.truth_book(symbol)
        bids, asks = a.truth_book(symbol)
        assert max(map(float, bids)) < min(map(float, asks))
        assert len(bids) < 400 and len(asks) < 400  # the REST snapshot holds the whole book


async def test_forced_rest_rejection(venue_factory) -> None:
    venue = await venue_factory()
    venue.fail_next_rest(1)
    url = f"{venue.rest_base}/api/v5/market/books?instId={BTC}&sz=400"
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as resp:
            assert resp.status == 429
        async with http.get(url) as resp:
            assert resp.status == 200
            snapshot = Okx().parse_snapshot(BTC, await resp.read(), 0)
    bids, asks = venue.truth_book(BTC)
    assert {p: q for p, q, *_ in snapshot.bids} == bids
    assert {p: q for p, q, *_ in snapshot.asks} == asks
    assert snapshot.last_id == venue.seq_id(BTC)
    assert venue.stats.rest_rejected == 1
