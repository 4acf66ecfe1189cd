"""The embedded Coinbase venue on its own, over raw websockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from fakes.coinbase import BookGenerator, EmbeddedCoinbase, format_rfc3339_nano
from mmradar.venues.timestamps import parse_rfc3339_ns


def sub(channel: str, products: list[str] | None = None, kind: str = "subscribe") -> str:
    body: dict[str, Any] = {"type": kind, "channel": channel}
    if products is not None:
        body["product_ids"] = products
    return orjson.dumps(body).decode()


async def recv(ws: ClientConnection, timeout_s: float = 2.0) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout_s))  # type: ignore[no-any-return]


async def recv_until(ws: ClientConnection, channel: str) -> dict[str, Any]:
    while True:
        msg = await recv(ws)
        if msg.get("channel") == channel or (channel == "error" and msg.get("type") == "error"):
            return msg


# -- the generator --------------------------------------------------------------------------


def test_generator_is_deterministic_never_crossed_and_taker_sides_hold() -> None:
    a = BookGenerator([("BTC-USD", 6_000_000), ("ETH-USD", 250_000)], seed=3)
    b = BookGenerator([("BTC-USD", 6_000_000), ("ETH-USD", 250_000)], seed=3)
    trades = 0
    for _ in range(3000):
        step = a.step()
        assert step == b.step()
        for t in step.trades:
            trades += 1
            # The wire side is the resting (maker) order's: a taker BUY lifted the best offer.
            if t.taker == "BUY":
                assert (t.side, t.price) == ("SELL", t.best_ask)
            else:
                assert (t.side, t.price) == ("BUY", t.best_bid)
        for product in ("BTC-USD", "ETH-USD"):
            book = a.books[product]
            assert book.best_bid() < book.best_ask()
            assert min(len(book.bids), len(book.asks)) >= BookGenerator.MIN_LEVELS
    assert trades > 300
    assert a.truth("BTC-USD") == b.truth("BTC-USD")
    assert a.truth("BTC-USD") != BookGenerator([("BTC-USD", 6_000_000)], seed=4).truth("BTC-USD")


@given(st.integers(0, 2**62))
def test_timestamps_round_trip(ts_ns: int) -> None:
    text = format_rfc3339_nano(ts_ns)
    assert text.endswith("Z")
    assert not text[:-1].endswith("0") or "." not in text  # Go trims trailing zeros
    assert parse_rfc3339_ns(text) == ts_ns


# -- the protocol ---------------------------------------------------------------------------


async def test_subscribe_flow_and_connection_wide_sequence() -> None:
    async with (
        EmbeddedCoinbase(rate_hz=300.0, heartbeat_interval_s=0.05) as venue,
        connect(venue.ws_base) as ws,
    ):
        await ws.send(sub("level2", ["BTC-USD", "ETH-USD"]))
        first = [await recv(ws) for _ in range(3)]
        assert [(m["channel"], m["sequence_num"]) for m in first] == [
            ("l2_data", 0),
            ("l2_data", 1),
            ("subscriptions", 2),
        ]
        assert [m["events"][0]["type"] for m in first[:2]] == ["snapshot", "snapshot"]
        assert [m["events"][0]["product_id"] for m in first[:2]] == ["BTC-USD", "ETH-USD"]
        assert first[2]["events"] == [{"subscriptions": {"level2": ["BTC-USD", "ETH-USD"]}}]
        assert all("client_id" not in m for m in first)
        await ws.send(sub("market_trades", ["BTC-USD"]))
        await ws.send(sub("heartbeats"))
        seen: dict[str, int] = {}
        expected = 3
        for _ in range(400):
            msg = await recv(ws)
            assert msg["sequence_num"] == expected
            expected += 1
            seen[msg["channel"]] = seen.get(msg["channel"], 0) + 1
            for event in msg["events"]:
                if msg["channel"] == "l2_data":
                    assert {u["side"] for u in event["updates"]} <= {"bid", "offer"}
                if msg["channel"] == "heartbeats":
                    assert isinstance(event["heartbeat_counter"], int)
        assert set(seen) == {"l2_data", "market_trades", "heartbeats", "subscriptions"}


async def test_wire_reproduces_the_truth() -> None:
    async with EmbeddedCoinbase(("BTC-USD",), rate_hz=0) as venue, connect(venue.ws_base) as ws:
        await ws.send(sub("level2", ["BTC-USD"]))
        await ws.send(sub("market_trades", ["BTC-USD"]))
        book: dict[str, dict[str, str]] = {"bid": {}, "offer": {}}
        volume = {"BUY": Decimal(0), "SELL": Decimal(0)}
        await venue.wait_steps(2000)
        venue.pause()
        # A marker: the answer to this subscribe is queued after every frame the paused venue
        # sent, so reading up to it reads them all.
        await ws.send(sub("heartbeats"))
        while True:
            msg = await recv(ws)
            if (
                msg["channel"] == "subscriptions"
                and "heartbeats" in (msg["events"][0]["subscriptions"])
            ):
                break
            for event in msg["events"]:
                if msg["channel"] == "l2_data":
                    if event["type"] == "snapshot":
                        book = {"bid": {}, "offer": {}}
                    for u in event["updates"]:
                        side = book[u["side"]]
                        if Decimal(u["new_quantity"]) == 0:
                            side.pop(u["price_level"], None)
                        else:
                            side[u["price_level"]] = u["new_quantity"]
                elif msg["channel"] == "market_trades" and event["type"] == "update":
                    ids = [int(t["trade_id"]) for t in event["trades"]]
                    assert ids == sorted(ids, reverse=True)  # newest first
                    for t in event["trades"]:
                        volume[t["side"]] += Decimal(t["size"])
        assert venue.stats.steps >= 2000
        assert (book["bid"], book["offer"]) == venue.truth_book("BTC-USD")
        # side names the maker: the aggressors' volumes are the opposite labels'.
        assert {"buy": volume["SELL"], "sell": volume["BUY"]} == venue.taker_volume("BTC-USD")
        assert volume["BUY"] != volume["SELL"]


async def test_resubscribe_needs_unsubscribe_for_a_new_snapshot() -> None:
    async with EmbeddedCoinbase(("BTC-USD",), rate_hz=50.0) as venue, connect(venue.ws_base) as ws:
        await ws.send(sub("level2", ["BTC-USD"]))
        await recv_until(ws, "subscriptions")
        await ws.send(sub("level2", ["BTC-USD"]))  # already subscribed: no snapshot
        while (msg := await recv(ws))["channel"] != "subscriptions":
            assert msg["events"][0]["type"] == "update"
        await ws.send(sub("level2", ["BTC-USD"], kind="unsubscribe"))
        msg = await recv_until(ws, "subscriptions")
        assert msg["events"] == [{"subscriptions": {}}]
        await ws.send(sub("level2", ["BTC-USD"]))
        msg = await recv_until(ws, "l2_data")
        assert msg["events"][0]["type"] == "snapshot"
        assert venue.stats.snapshots_sent == 2


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        ("{not json", "failure to parse message"),
        ('{"type":"subscribe","channel":"level3","product_ids":["BTC-USD"]}', "unknown channel"),
        ('{"type":"subscribe","channel":"user","product_ids":["BTC-USD"]}', "authentication"),
        ('{"type":"subscribe","channel":"level2","product_ids":["XYZ-USD"]}', "unknown product"),
        ('{"type":"subscribe","channel":"level2"}', "product_ids required"),
        ('{"type":"subscribe","channels":["level2"],"product_ids":["BTC-USD"]}', "channel is"),
        ('{"type":"hello"}', "unknown message type"),
    ],
)
async def test_bad_requests_get_errors_without_a_sequence_number(frame: str, text: str) -> None:
    async with EmbeddedCoinbase(("BTC-USD",)) as venue, connect(venue.ws_base) as ws:
        await ws.send(frame)
        error = await recv(ws)
        assert error["type"] == "error"
        assert text in error["message"]
        assert "sequence_num" not in error
        await ws.send(sub("heartbeats"))
        ack = await recv(ws)
        assert (ack["channel"], ack["sequence_num"]) == ("subscriptions", 0)


async def test_lost_update_and_skipped_number_show_on_the_wire() -> None:
    async def next_jump(ws: ClientConnection, expected: int) -> tuple[int, int]:
        while True:
            msg = await recv(ws)
            if msg["sequence_num"] != expected:
                return expected, msg["sequence_num"]
            expected += 1

    async with EmbeddedCoinbase(("BTC-USD",), rate_hz=200.0) as venue, connect(venue.ws_base) as ws:
        await ws.send(sub("level2", ["BTC-USD"]))
        await recv_until(ws, "subscriptions")  # 0 snapshot, 1 subscriptions
        venue.lose_next_update("BTC-USD")
        expected, got = await next_jump(ws, 2)
        assert got == expected + 1
        assert venue.stats.updates_lost == 1
        venue.skip_sequence()
        expected, got = await next_jump(ws, got + 1)
        assert got == expected + 1
        assert venue.stats.updates_lost == 1


async def test_connection_without_subscribe_is_closed() -> None:
    async with EmbeddedCoinbase(subscribe_timeout_s=0.2) as venue, connect(venue.ws_base) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_message_rate_limit_per_ip() -> None:
    async with EmbeddedCoinbase(("BTC-USD",)) as venue, connect(venue.ws_base) as ws:
        for _ in range(9):
            await ws.send(sub("heartbeats"))
        acks = [await recv(ws) for _ in range(9)]
        assert [m.get("channel") for m in acks[:8]] == ["subscriptions"] * 8
        assert acks[8] == {"type": "error", "message": "rate limit exceeded"}
        assert venue.stats.client_messages_refused == 1


async def test_connection_rate_limit_per_ip() -> None:
    async with EmbeddedCoinbase(("BTC-USD",)) as venue:
        opened = [await connect(venue.ws_base) for _ in range(8)]
        with pytest.raises(InvalidStatus) as refused:
            await connect(venue.ws_base)
        assert refused.value.response.status_code == 429
        for ws in opened:
            await ws.close()
        assert venue.stats.connections_refused == 1


async def test_trades_are_listed_newest_first_and_side_is_the_maker() -> None:
    async with (
        EmbeddedCoinbase(("BTC-USD",), rate_hz=0, steps=3000) as venue,
        connect(venue.ws_base, max_size=None) as ws,
    ):
        await ws.send(sub("level2", ["BTC-USD"]))  # the generator runs while subscribed
        await venue.wait_done()
        await ws.send(sub("market_trades", ["BTC-USD"]))
        snap = await recv_until(ws, "market_trades")
        (event,) = snap["events"]
        assert event["type"] == "snapshot"
        prints = venue.trades("BTC-USD")[-50:]  # the venue's recent history, oldest first
        assert [t["trade_id"] for t in event["trades"]] == [t.trade_id for t in reversed(prints)]
        for wire, t in zip(event["trades"], reversed(prints), strict=True):
            assert wire["side"] == ("SELL" if t.taker == "BUY" else "BUY")
            assert wire["price"] == (t.best_ask if t.taker == "BUY" else t.best_bid)


async def test_level2_products_per_connection_are_limited() -> None:
    products = tuple(f"P{i:02d}-USD" for i in range(6))
    async with (
        EmbeddedCoinbase(products, rate_hz=20.0, max_l2_products=4) as venue,
        connect(venue.ws_base) as ws,
    ):
        await ws.send(sub("level2", list(products[:3])))
        msg = await recv_until(ws, "subscriptions")
        assert msg["events"] == [{"subscriptions": {"level2": list(products[:3])}}]
        # Two more would make five at once: the whole request is refused, the socket stays.
        await ws.send(sub("level2", list(products[3:5])))
        error = await recv_until(ws, "error")
        assert error == {
            "type": "error",
            "message": "too many L2 streams requested in a single session",
        }
        assert venue.stats.l2_subscribes_refused == 1
        # Re-asking for held products does not count twice; unsubscribing frees room.
        await ws.send(sub("level2", list(products[:4])))
        msg = await recv_until(ws, "subscriptions")
        assert msg["events"][0]["subscriptions"]["level2"] == list(products[:4])
        await ws.send(sub("level2", [products[0], products[1]], kind="unsubscribe"))
        await recv_until(ws, "subscriptions")
        await ws.send(sub("level2", [products[4], products[5]]))
        msg = await recv_until(ws, "subscriptions")
        assert sorted(msg["events"][0]["subscriptions"]["level2"]) == list(products[2:])
        assert venue.stats.l2_subscribes_refused == 1
        assert venue.stats.snapshots_sent == 6
