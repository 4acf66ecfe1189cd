"""Several ``[[feeds]]`` tables of one exchange, end to end on 127.0.0.1.

The tables of one exchange run as one feed (one pipeline, one set of connections, one REST
weight budget): every exchange-keyed series (``mmradar_feed_messages_total``,
``mmradar_feed_latency_seconds``, ``mmradar_feed_connected`` / ``_connections``,
``mmradar_rest_weight_used``) describes all of them, and the exchange's REST requests stay
within one budget.

An embedded Binance venue serves one symbol, so a small router on 127.0.0.1 (:class:`Router`)
stands in front of one venue per symbol: one websocket URL and one REST URL, as the real
exchange has, for several symbols. It forwards every text frame 1:1 (so the venues' own frame
counts are the frames the service was sent), counts the connections open on it, can drop or
refuse connections by path, and can fail REST snapshot requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import WSMsgType, web

from fake_clock import FakeClock
from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.embedded.binance import EmbeddedBinance
from mmradar.embedded.source import SimulatedSource
from mmradar.feed import ResyncPolicy, WeightBudget
from mmradar.pipeline import FeedPipeline
from mmradar.sim import SimParams
from mmradar.venues import VENUE_NAMES
from mmradar.venues.binance import BinanceSpot
from support import wait_until

from .harness import Running, Samples, fast_backoff, sample

SPEED = 10.0


class Router:
    """One Binance endpoint on 127.0.0.1 in front of embedded venues, routed by symbol.

    Args:
        backends: symbol (any case) → the venue serving it.
        default: the venue for any other symbol (its streams stay silent there).
        monotonic: the clock :attr:`rest_requests` are timed on (a test's fake clock).
    """

    def __init__(
        self,
        backends: Mapping[str, EmbeddedBinance],
        default: Any = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._backends = {s.upper(): v for s, v in backends.items()}
        self._default = default
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port = 0
        self._clients: dict[web.WebSocketResponse, web.Request] = {}
        #: websocket connections accepted since the start
        self.accepted = 0
        #: websocket paths whose handshakes are refused with HTTP 503
        self.refused: set[str] = set()
        #: answer every depth request with HTTP 500 (nothing forwarded)
        self.rest_fail = False
        #: symbols whose depth snapshots are served crossed (a bid above the best ask): a
        #: snapshot the service loads and must throw away, every time
        self.cross: set[str] = set()
        #: (monotonic time, symbol) of every depth request received
        self.rest_requests: list[tuple[float, str]] = []
        self.rest_failed = 0

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        for ws in list(self._clients):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self._port}"

    @property
    def rest_base(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def open(self, path: str | None = None) -> int:
        """Websocket connections open now (on ``path`` only, if given)."""
        return sum(1 for r in self._clients.values() if path is None or r.path == path)

    def drop(self, path: str | None = None) -> None:
        """Abort (TCP, no close frame) every open connection (on ``path`` only, if given)."""
        for request in list(self._clients.values()):
            if (path is None or request.path == path) and request.transport is not None:
                request.transport.abort()

    def _backend(self, symbol: str) -> Any:
        return self._backends.get(symbol.upper(), self._default)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        return await self._rest(request)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.path in self.refused:
            raise web.HTTPServiceUnavailable()
        assert self._session is not None
        groups: dict[Any, list[str]] = {}
        for stream in request.query.get("streams", "").split("/"):
            backend = self._backend(stream.split("@")[0])
            assert backend is not None, f"no venue for stream {stream!r}"
            groups.setdefault(backend, []).append(stream)
        upstreams = [
            await self._session.ws_connect(
                f"{backend.ws_base}{request.path}?streams={'/'.join(streams)}", max_msg_size=0
            )
            for backend, streams in groups.items()
        ]
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.accepted += 1
        self._clients[ws] = request

        async def pump(upstream: aiohttp.ClientWebSocketResponse) -> None:
            async for msg in upstream:
                if msg.type == WSMsgType.TEXT:
                    await ws.send_str(msg.data)

        async def drain_client() -> None:
            async for _ in ws:
                pass  # combined streams: the client sends nothing the venues need

        tasks = [asyncio.create_task(pump(u)) for u in upstreams]
        tasks.append(asyncio.create_task(drain_client()))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            del self._clients[ws]
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task
            for upstream in upstreams:
                await upstream.close()
            await ws.close()
        return ws

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        symbol = request.query.get("symbol", "")
        backend = self._backend(symbol)
        if backend is None:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        if request.path.endswith("/depth"):
            self.rest_requests.append((self._monotonic(), symbol))
            if self.rest_fail:
                self.rest_failed += 1
                return web.json_response({"code": -1000, "msg": "Internal error."}, status=500)
        async with self._session.get(f"{backend.rest_base}{request.path_qs}") as resp:
            body = await resp.read()
            if resp.status == 200 and symbol.upper() in self.cross:
                book = orjson.loads(body)
                book["bids"].insert(0, [str(Decimal(book["asks"][0][0]) + 1), "1"])
                body = orjson.dumps(book)
            headers = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() in ("content-type", "x-mbx-used-weight-1m", "retry-after")
            }
            return web.Response(body=body, status=resp.status, headers=headers)


@contextlib.asynccontextmanager
async def serving(
    router: Router, feeds: Sequence[Mapping[str, object]], **options: Any
) -> AsyncIterator[Running[Router]]:
    """The service with the ``[[feeds]]`` tables ``feeds``, each pointed at ``router``."""
    tables = [{**feed, "ws_url": router.ws_base, "rest_url": router.rest_base} for feed in feeds]
    settings = parse_settings(
        {"http": {"listen": "127.0.0.1:0"}, "feeds": tables}, env={}, supported=VENUE_NAMES
    )
    service = Service(settings, backoff_factory=fast_backoff, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        assert service.server is not None
        server = service.server
        await wait_until(lambda: server.port != 0, "the metrics server to start", timeout_s=10)
        async with aiohttp.ClientSession() as session:
            yield Running(router, service, service.server.url, session)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def valid(exchange: str, *symbols: str) -> Callable[[Samples], bool]:
    def check(samples: Samples) -> bool:
        return all(
            sample(samples, "mmradar_book_valid", exchange=exchange, symbol=s) == 1 for s in symbols
        )

    return check


def connections(samples: Samples, exchange: str) -> tuple[float, float]:
    """``(mmradar_feed_connections, mmradar_feed_connected)`` of ``exchange``."""
    return (
        sample(samples, "mmradar_feed_connections", exchange=exchange),
        sample(samples, "mmradar_feed_connected", exchange=exchange),
    )


def test_service_runs_one_feed_per_exchange() -> None:
    """The service merges an exchange's tables; the metrics refuse a second pipeline."""
    settings = parse_settings(
        {
            "feeds": [
                {"exchange": "binance", "symbols": ["BTCUSDT"]},
                {"exchange": "binance-usdm", "symbols": ["BTCUSDT"]},
                {"exchange": "binance", "symbols": ["ETHUSDT", "SOLUSDT"]},
            ]
        },
        env={},
        supported=VENUE_NAMES,
    )
    service = Service(settings, serve_http=False)
    assert [f.exchange for f in service.feeds] == ["binance", "binance-usdm"]
    assert [list(p.instruments) for p in service.pipelines] == [
        ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
        ["BTCUSDT"],
    ]
    second = FeedPipeline(BinanceSpot(), ["XRPUSDT"])
    with pytest.raises(ValueError, match="one feed per exchange"):
        service.metrics.register_pipelines([second])


async def test_two_binance_tables_are_one_feed() -> None:
    """Frames, connections and REST weight of two ``binance`` tables, counted as one exchange.

    The venues and the service run on one fake clock (the venues' streams paced on it, the
    service's back-off and REST budget waiting on it): the budget's window is exact."""
    clock = FakeClock(wall_ns=time.time_ns())
    exchange = "binance"
    eth_source = SimulatedSource(
        "calm", 7, duration_s=300.0, params=SimParams(symbol="ETHUSDT"), faults=False
    )
    btc = EmbeddedBinance("spot", speed=SPEED, loop=False, clock=clock.wall_ns, pace_clock=clock)
    eth = EmbeddedBinance(
        "spot", source=eth_source, speed=SPEED, loop=False, clock=clock.wall_ns, pace_clock=clock
    )
    router = Router({"BTCUSDT": btc, "ETHUSDT": eth}, monotonic=clock.monotonic)
    async with btc, eth:
        await router.start()
        try:
            feeds = [
                {"exchange": exchange, "symbols": ["BTCUSDT"]},
                {"exchange": exchange, "symbols": ["ETHUSDT"]},
            ]
            # Each book's resyncs are backed off but never parked here, so that failing books
            # keep asking and only the exchange's one REST budget holds them back.
            policy = ResyncPolicy(backoff_initial_s=0.05, backoff_max_s=0.05, park_after=10**6)
            async with serving(router, feeds, resync_policy=policy, clock=clock) as running:
                insts = running.service.pipelines[0].instruments

                def both() -> bool:
                    return insts["BTCUSDT"].valid and insts["ETHUSDT"].valid

                await clock.run_until(both, within_s=5.0)
                samples = await running.scrape()

                # One feed: both tables' streams on one connection (4 streams fit in one), and
                # the gauges read what the venue sees.
                assert router.accepted == 1
                assert connections(samples, exchange) == (router.open(), 1) == (1, 1)

                # Every frame the venues sent, to either table's symbols, is counted once.
                await clock.run_until(
                    lambda: min(btc.stats.frames_sent, eth.stats.frames_sent) >= 100,
                    within_s=60.0,
                )
                btc.pause()
                eth.pause()
                await clock.settle()
                samples = await running.scrape()
                sent = btc.stats.frames_sent + eth.stats.frames_sent
                assert sample(samples, "mmradar_feed_messages_total", exchange=exchange) == sent
                latency = sample(samples, "mmradar_feed_latency_seconds_count", exchange=exchange)
                assert latency > 0
                btc.resume()
                eth.resume()

                # A drop: the gauges follow the venue's side down and up again.
                router.refused.add("/stream")
                router.drop()
                await clock.advance(0.5)  # reconnects every 0.05 s, refused
                samples = await running.scrape()
                assert router.open() == 0 and connections(samples, exchange) == (0, 0)
                router.refused.clear()
                await clock.run_until(lambda: router.open() == 1 and both(), within_s=1.0)
                samples = await running.scrape()
                assert connections(samples, exchange) == (1, 1)
                assert router.accepted == 2

                # REST: one weight budget for the exchange. Every snapshot request now fails,
                # and both books keep asking; together they must stay within the one budget.
                weight = BinanceSpot().snapshot_request("BTCUSDT").weight
                cap = WeightBudget(
                    BinanceSpot.rest_weight_per_minute, window_s=BinanceSpot.rest_window_s
                ).cap
                router.rest_fail = True
                router.drop()
                spent = len(router.rest_requests)
                await clock.run_until(
                    lambda: len(router.rest_requests) * weight >= cap, within_s=20.0
                )
                await clock.advance(1.5)  # more requests now would exceed the budget
                times = [t for t, _ in router.rest_requests]
                assert max(times) - min(times) < BinanceSpot.rest_window_s
                assert len(router.rest_requests) * weight == cap, router.rest_requests
                failing = {s for _, s in router.rest_requests[spent:]}
                assert failing == {"BTCUSDT", "ETHUSDT"}
                assert router.rest_failed == len(router.rest_requests) - spent
                samples = await running.scrape()
                assert sample(samples, "mmradar_rest_weight_used", exchange=exchange) == cap
                errors = sample(
                    samples, "mmradar_snapshot_requests_total", exchange=exchange, result="error"
                )
                assert errors == router.rest_failed
        finally:
            await router.stop()


async def test_two_usdm_tables_connection_gauges() -> None:
    """Two ``binance-usdm`` tables, one feed of two connections (depth and trades paths).

    With one connection down and the other up, the gauges read one up and not every one up;
    they never read zero while a connection is still up.
    """
    exchange = "binance-usdm"
    venue = EmbeddedBinance("usdm", speed=SPEED, loop=False)
    router = Router({}, default=venue)
    async with venue:
        await router.start()
        try:
            feeds = [
                {"exchange": exchange, "symbols": ["BTCUSDT"]},
                {"exchange": exchange, "symbols": ["ETHUSDT"]},  # silent on this venue
            ]
            async with serving(router, feeds) as running:
                samples = await running.wait_for(
                    lambda s: valid(exchange, "BTCUSDT")(s) and connections(s, exchange)[0] == 2,
                    what="book valid, both connections up",
                )
                assert router.open() == 2
                assert connections(samples, exchange) == (2, 1)

                router.refused.add("/market/stream")
                router.drop("/market/stream")
                samples = await running.wait_for(
                    lambda s: (
                        router.open("/market/stream") == 0 and connections(s, exchange) == (1, 0)
                    ),
                    what="trade connection down",
                )
                assert router.open() == 1
                # A negative check, not synchronisation: for ~0.5 s while the trade connection
                # stays down, every scrape counts the depth connection alone and the book valid.
                for _ in range(10):
                    await asyncio.sleep(0.05)
                    samples = await running.scrape()
                    assert connections(samples, exchange) == (router.open(), 0) == (1, 0)
                    assert valid(exchange, "BTCUSDT")(samples)

                router.refused.clear()
                await running.wait_for(
                    lambda s: connections(s, exchange) == (2, 1) and router.open() == 2,
                    what="both connections up again",
                )
        finally:
            await router.stop()
