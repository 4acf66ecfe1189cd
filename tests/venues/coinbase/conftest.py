"""Fixtures for the Coinbase end-to-end tests: the real service against the embedded venue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from service.app import Service
from service.config import parse_settings
from service.embedded.coinbase import EmbeddedCoinbase
from service.venues import VENUE_NAMES

from .harness import EXCHANGE, Running, fast_backoff


@pytest.fixture
async def coinbase_service() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    started: list[tuple[EmbeddedCoinbase, asyncio.Event, asyncio.Task[None], aiohttp.ClientSession]]
    started = []

    async def start(
        *,
        products: tuple[str, ...] = ("BTC-USD", "ETH-USD"),
        venue_options: dict[str, object] | None = None,
        **feed: object,
    ) -> Running:
        venue = EmbeddedCoinbase(products, **(venue_options or {}))  # type: ignore[arg-type]
        await venue.start()
        settings = parse_settings(
            {
                "http": {"listen": "127.0.0.1:0"},
                "feeds": [
                    {
                        "exchange": EXCHANGE,
                        "symbols": list(products),
                        "ws_url": venue.ws_base,
                        **feed,
                    }
                ],
            },
            env={},
            supported=VENUE_NAMES,
        )
        service = Service(settings, backoff_factory=fast_backoff)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        assert service.server is not None
        deadline = time.monotonic() + 10
        while service.server.port == 0:
            assert time.monotonic() < deadline, "metrics server did not start"
            await asyncio.sleep(0.01)
        session = aiohttp.ClientSession()
        started.append((venue, stop, task, session))
        return Running(venue, service, service.server.url, session, wait_timeout_s=20.0)

    yield start
    for venue, stop, task, session in started:
        stop.set()
        await asyncio.wait_for(task, 10)
        await session.close()
        await venue.stop()
