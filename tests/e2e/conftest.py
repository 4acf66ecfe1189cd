"""Fixtures for end-to-end tests."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from service.app import Service
from service.config import parse_settings
from service.embedded.binance import EmbeddedBinance
from service.venues import VENUE_NAMES

from .harness import Running, fast_backoff


@pytest.fixture
async def running_factory() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    stack: list[tuple[EmbeddedBinance, asyncio.Event, asyncio.Task[None], aiohttp.ClientSession]]
    stack = []

    async def start(
        market: str,
        exchange: str,
        *,
        speed: float = math.inf,
        loop: bool = False,
        setup: Callable[[EmbeddedBinance], None] | None = None,
        **feed: object,
    ) -> Running:
        venue = EmbeddedBinance(market, speed=speed, loop=loop)  # type: ignore[arg-type]
        await venue.start()
        if setup is not None:
            setup(venue)  # before the service connects
        settings = parse_settings(
            {
                "http": {"listen": "127.0.0.1:0"},
                "feeds": [
                    {
                        "exchange": exchange,
                        "symbols": ["BTCUSDT"],
                        "ws_url": venue.ws_base,
                        "rest_url": venue.rest_base,
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
        stack.append((venue, stop, task, session))
        return Running(venue, service, service.server.url, session)

    yield start
    for venue, stop, task, session in stack:
        stop.set()
        await asyncio.wait_for(task, 10)
        await session.close()
        await venue.stop()
