"""Fixtures for the Kraken end-to-end tests: the real service against the embedded venue."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import aiohttp
import pytest

from service.app import Service
from service.config import parse_settings
from service.embedded.kraken import DEFAULT_PAIRS, EmbeddedKraken
from service.venues import VENUE_NAMES

from .harness import KrakenRunning, fast_backoff


@pytest.fixture
async def kraken_factory() -> AsyncIterator[Callable[..., Awaitable[KrakenRunning]]]:
    stack: list[tuple[EmbeddedKraken, asyncio.Event, asyncio.Task[None], aiohttp.ClientSession]]
    stack = []

    async def start(
        *,
        symbols: Sequence[str] = DEFAULT_PAIRS,
        served: Sequence[str] = DEFAULT_PAIRS,
        speed: float = math.inf,
        **feed: object,
    ) -> KrakenRunning:
        venue = EmbeddedKraken(served, speed=speed)
        await venue.start()
        settings = parse_settings(
            {
                "http": {"listen": "127.0.0.1:0"},
                "feeds": [
                    {
                        "exchange": "kraken",
                        "symbols": list(symbols),
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
        stack.append((venue, stop, task, session))
        return KrakenRunning(venue, service, service.server.url, session)

    yield start
    for venue, stop, task, session in stack:
        stop.set()
        await asyncio.wait_for(task, 10)
        await session.close()
        await venue.stop()
