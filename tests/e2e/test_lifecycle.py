"""Lifecycle: every resync is logged once with what happens next; stopping closes with 1000."""

from __future__ import annotations

import contextlib
import logging
import re

import orjson
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from support import wait_until

from .harness import Running, Samples, ServiceStack, sample

SYMBOL = "BTCUSDT"
EXCHANGE = "binance"


def resyncs(samples: Samples, reason: str) -> float:
    return sample(
        samples, "mmradar_book_resyncs_total", exchange=EXCHANGE, symbol=SYMBOL, reason=reason
    )


def valid(samples: Samples) -> bool:
    return sample(samples, "mmradar_book_valid", exchange=EXCHANGE, symbol=SYMBOL) == 1


async def test_a_resync_is_logged_once_with_symbol_reason_and_next_step(
    running_factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar.feed")
    running: Running = await running_factory("spot", EXCHANGE, speed=20.0)
    await running.wait_for(valid, what="initial sync")
    running.venue.skip_next_depth(SYMBOL)  # a sequence gap
    await running.wait_for(lambda s: resyncs(s, "gap") == 1 and valid(s), what="gap resync")
    lines = [
        r
        for r in caplog.records
        if r.name == "mmradar.feed" and "book invalidated" in r.getMessage()
    ]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    (line,) = lines
    assert line.levelno == logging.WARNING
    # the gap comes within seconds of the initial snapshot, so the snapshot may wait a short
    # back-off (the second resync request of the symbol in a row)
    pattern = (
        rf"{EXCHANGE} {SYMBOL}: book invalidated \(gap\); fetching a REST snapshot"
        r"( in \d+\.\d s \(back-off: 2 resyncs in a row\))?"
    )
    assert re.fullmatch(pattern, line.getMessage()), line.getMessage()


class RecordingVenue:
    """A websocket endpoint on 127.0.0.1 that records how each client connection ended."""

    def __init__(self) -> None:
        self.closes: list[tuple[int | None, str | None]] = []  # (code, reason) per connection
        self.conns: list[ServerConnection] = []
        self._server: Server | None = None

    async def start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def ws_base(self) -> str:
        assert self._server is not None
        return f"ws://127.0.0.1:{next(iter(self._server.sockets)).getsockname()[1]}"

    async def _handle(self, ws: ServerConnection) -> None:
        self.conns.append(ws)
        async for _ in ws:
            pass
        self.closes.append((ws.close_code, ws.close_reason))


async def test_the_service_closes_its_websockets_normally() -> None:
    venue = RecordingVenue()
    await venue.start()
    stack = ServiceStack()
    try:
        await stack.serve(
            venue,
            {
                "exchange": EXCHANGE,
                "symbols": [SYMBOL],
                "ws_url": venue.ws_base,
                "rest_url": venue.ws_base.replace("ws://", "http://"),
            },
        )
        await wait_until(lambda: venue.conns, "a connection to the venue", timeout_s=30)
        # A reconnect the feed decides itself (the venue announces its shutdown) is a normal
        # closure too.
        await venue.conns[0].send(orjson.dumps({"e": "serverShutdown", "E": 1}).decode())
        with contextlib.suppress(AssertionError):  # what happened instead is asserted below
            await wait_until(
                lambda: len(venue.closes) == 1 and len(venue.conns) == 2,
                "the closure and a new connection",
                timeout_s=30,
            )
        assert venue.closes == [(1000, "reconnecting")]
    finally:
        await stack.close()  # what SIGTERM does: the stop event is set
    # the venue saw a normal closure, not 1011 (internal error)
    assert venue.closes == [(1000, "reconnecting"), (1000, "shutdown")]
