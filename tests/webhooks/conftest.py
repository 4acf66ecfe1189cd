"""Fixtures for the webhook tests: a scripted HTTP receiver, a silent server, a dead port.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from mmradar.config import WebhookSettings
from mmradar.metrics import Metrics
from mmradar.signals.episodes import EpisodeEvent

SECRET = "T000/B000/s3cr3t-token-do-not-log"
"""The secret part of every test URL: it must never appear in a log line."""

T_START_NS = 1_723_161_253_123_456_789  # 2024-08-08T23:54:13.123Z
T_END_NS = 1_723_161_386_500_000_000  # 2024-08-08T23:56:26.500Z

CONTEXT: dict[str, Any] = {  # the shape service.signals.engine builds
    "book_valid": True,
    "best_bid": 61829.76,
    "best_ask": 61841.13,
    "mid": 61835.445,
    "spread_bps": 1.8388,
    "spread_baseline_bps": 0.0016,
    "depth": {
        "10": {"bid": 2_712_345.6, "ask": 1_904_118.25},
        "50": {"bid": 14_250_000.0, "ask": 11_873_000.0},
        "100": {"bid": 27_930_500.0, "ask": 25_118_250.0},
        "200": {"bid": 52_004_000.0, "ask": 49_870_000.0},
    },
    "depth_baseline": {
        "10": {"bid": 3_104_000.0, "ask": 2_987_000.0},
        "50": {"bid": 15_010_000.0, "ask": 14_622_000.0},
        "100": {"bid": 28_400_000.0, "ask": 28_070_000.0},
        "200": {"bid": 51_800_000.0, "ask": 50_320_000.0},
    },
    "dealer_pressure": -0.1873,
    "detector": {
        "spread_bps": 1.8388,
        "baseline_spread_bps": 0.0016,
        "z_spread": 5.2371893,
        "wide_fraction": 0.93,
        "z_wide": 4.81,
        "one_tick_regime": 1.0,
    },
}


def make_event(
    state: str = "firing", *, score: float = 5.2371893, seq: int = 0, **context: Any
) -> EpisodeEvent:
    """A realistic spread_widening episode on binance BTCUSDT; ``seq`` tags it (context)."""
    ctx = {**CONTEXT, **context}
    if state == "resolved":
        ctx.setdefault("peak_score", 6.0213)
    if seq:
        ctx["seq"] = seq
    return EpisodeEvent(
        symptom="spread_widening",
        exchange="binance",
        symbol="BTCUSDT",
        side="both",
        state="resolved" if state == "resolved" else "firing",
        started_at_ns=T_START_NS,
        ended_at_ns=T_END_NS if state == "resolved" else None,
        score=score,
        context=ctx,
    )


def hook(base: str, fmt: str = "json") -> WebhookSettings:
    """Settings as the config loader makes them for ``url = "<base>/hook/${HOOK_SECRET}"``."""
    return WebhookSettings(
        url=f"{base}/hook/{SECRET}", format=fmt, url_template=f"{base}/hook/${{HOOK_SECRET}}"
    )


class Counts:
    """``mmradar_webhook_deliveries_total`` read from a fresh registry."""

    def __init__(self, formats: tuple[str, ...] = ("json", "slack", "discord")) -> None:
        self.registry = CollectorRegistry()
        self.metrics = Metrics(self.registry, [], webhook_formats=formats)
        self.family = self.metrics.webhook_deliveries

    def __call__(self, result: str, fmt: str = "json") -> float:
        value = self.registry.get_sample_value(
            "mmradar_webhook_deliveries_total", {"format": fmt, "result": result}
        )
        assert value is not None, f"no series for format={fmt} result={result}"
        return value


@pytest.fixture
def counts() -> Counts:
    return Counts()


# --------------------------------------------------------------------------------------------
# A real HTTP receiver
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """How the receiver answers one request."""

    status: int = 200
    delay_s: float = 0.0
    hang: bool = False  # read the request, never answer
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"


@dataclass(frozen=True)
class Request:
    at: float  # time.monotonic() when it arrived
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Receiver:
    """An aiohttp server on 127.0.0.1:0 recording every request and replying by script.

    ``script`` is consumed one :class:`Reply` per request; once empty, ``default`` answers.
    """

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.requests: list[Request] = []
        self.arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        port = server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Request(time.monotonic(), request.path, dict(request.headers), body))
        async with self.arrived:
            self.arrived.notify_all()
        reply = self.script.popleft() if self.script else self.default
        if reply.hang:
            await asyncio.Event().wait()
        if reply.delay_s:
            # Not synchronisation: the scripted delay is a slow endpoint, the behaviour under test.
            await asyncio.sleep(reply.delay_s)
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)

    async def wait_for(self, n: int, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` requests have arrived."""
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.requests) >= n)

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.requests]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver()
    await rx.start()
    try:
        yield rx
    finally:
        await rx.stop()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1:0, reads, and never answers a byte."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self.base = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base = f"http://127.0.0.1:{port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def silent() -> AsyncIterator[SilentServer]:
    server = SilentServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def dead_base() -> Iterator[str]:
    """A 127.0.0.1 URL base on which nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


def fast_backoff() -> Iterator[float]:
    """Retry delays for tests: 20 ms each."""
    while True:
        yield 0.02
