"""Fixtures for end-to-end tests."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest

from mmradar.embedded.binance import EmbeddedBinance

from .harness import Running, ServiceStack


@pytest.fixture
async def running_factory() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    stack = ServiceStack()

    async def start(
        market: str,
        exchange: str,
        *,
        speed: float = math.inf,
        loop: bool = False,
        setup: Callable[[EmbeddedBinance], None] | None = None,
        service: Mapping[str, Any] | None = None,
        venue_options: Mapping[str, Any] | None = None,
        **feed: object,
    ) -> Running:
        venue = EmbeddedBinance(market, speed=speed, loop=loop, **(venue_options or {}))  # type: ignore[arg-type]
        await venue.start()
        if setup is not None:
            setup(venue)  # before the service connects
        service, url, session = await stack.serve(
            venue,
            {
                "exchange": exchange,
                "symbols": ["BTCUSDT"],
                "ws_url": venue.ws_base,
                "rest_url": venue.rest_base,
                **feed,
            },
            **(service or {}),
        )
        return Running(venue, service, url, session)

    yield start
    await stack.close()
