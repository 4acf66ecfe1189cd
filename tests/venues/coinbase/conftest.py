"""Fixtures for the Coinbase end-to-end tests: the real service against the embedded venue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from e2e.harness import ServiceStack
from fakes.coinbase import EmbeddedCoinbase

from .harness import EXCHANGE, Running


@pytest.fixture
async def coinbase_service() -> AsyncIterator[Callable[..., Awaitable[Running[EmbeddedCoinbase]]]]:
    stack = ServiceStack()

    async def start(
        *,
        products: tuple[str, ...] = ("BTC-USD", "ETH-USD"),
        venue_options: dict[str, object] | None = None,
        **feed: object,
    ) -> Running[EmbeddedCoinbase]:
        venue = EmbeddedCoinbase(products, **(venue_options or {}))  # type: ignore[arg-type]
        await venue.start()
        service, url, session = await stack.serve(
            venue,
            {"exchange": EXCHANGE, "symbols": list(products), "ws_url": venue.ws_base, **feed},
        )
        return Running(venue, service, url, session, wait_timeout_s=20.0)

    yield start
    await stack.close()
