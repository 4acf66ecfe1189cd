"""Fixtures for the Kraken end-to-end tests: the real service against the embedded venue."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from e2e.harness import ServiceStack
from fakes.kraken import DEFAULT_PAIRS, EmbeddedKraken

from .harness import KrakenRunning


@pytest.fixture
async def kraken_factory() -> AsyncIterator[Callable[..., Awaitable[KrakenRunning]]]:
    stack = ServiceStack()

    async def start(
        *,
        symbols: Sequence[str] = DEFAULT_PAIRS,
        served: Sequence[str] = DEFAULT_PAIRS,
        speed: float = math.inf,
        **feed: object,
    ) -> KrakenRunning:
        venue = EmbeddedKraken(served, speed=speed)
        await venue.start()
        service, url, session = await stack.serve(
            venue,
            {"exchange": "kraken", "symbols": list(symbols), "ws_url": venue.ws_base, **feed},
        )
        return KrakenRunning(venue, service, url, session)

    yield start
    await stack.close()
