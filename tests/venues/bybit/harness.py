"""The service against the embedded Bybit venue on 127.0.0.1, scraped, compared with the truth."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp

from e2e.harness import (
    Running,
    Samples,
    fast_backoff,
    market_observed,
    market_reference,
    parse_metrics,
    sample,
)
from fakes.bybit import EmbeddedBybit
from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.venues import VENUE_NAMES
from support import wait_until

__all__ = ["EXCHANGE", "SYMBOL", "Running", "Samples", "fast_backoff", "parse_metrics", "sample"]

EXCHANGE = "bybit"
SYMBOL = "BTCUSDT"


def book(samples: Samples, name: str, **labels: str) -> float:
    return sample(samples, name, exchange=EXCHANGE, symbol=SYMBOL, **labels)


def valid(samples: Samples) -> bool:
    return book(samples, "mmradar_book_valid") == 1


def resyncs(samples: Samples, reason: str) -> float:
    return book(samples, "mmradar_book_resyncs_total", reason=reason)


def reference(venue: EmbeddedBybit) -> dict[str, float]:
    """Every expected value, recomputed from the venue's truth (docs/metrics.md definitions)."""
    return market_reference(*venue.truth_book(SYMBOL), venue.taker_volume(SYMBOL))


def observed(samples: Samples) -> dict[str, float]:
    return market_observed(samples, EXCHANGE, SYMBOL)


def in_sync(venue: EmbeddedBybit) -> Callable[[Samples], bool]:
    """The book is valid and its touch, level counts and taker volumes equal the truth."""

    def check(samples: Samples) -> bool:
        if not valid(samples):
            return False
        ref, got = reference(venue), observed(samples)
        exact = ("bid", "ask", "levels_bid", "levels_ask")
        return all(got[k] == ref[k] for k in exact) and all(
            math.isclose(got[k], ref[k], rel_tol=1e-12) for k in ("taker_buy", "taker_sell")
        )

    return check


def assert_matches(venue: EmbeddedBybit, samples: Samples) -> None:
    """Every value equals the reference: the whole top-1000 window is known to the client."""
    assert valid(samples)
    ref, got = reference(venue), observed(samples)
    for key in ("bid", "ask", "levels_bid", "levels_ask"):
        assert got[key] == ref[key], key
    for key, want in ref.items():
        assert math.isclose(got[key], want, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], want)


@asynccontextmanager
async def running(venue: EmbeddedBybit, **feed: object) -> AsyncIterator[Running[EmbeddedBybit]]:
    """Start ``venue`` and the real service configured against it; stop both afterwards."""
    async with venue:
        settings = parse_settings(
            {
                "http": {"listen": "127.0.0.1:0"},
                "feeds": [
                    {
                        "exchange": EXCHANGE,
                        "symbols": [SYMBOL],
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
        try:
            assert service.server is not None
            server = service.server
            await wait_until(lambda: server.port != 0, "the metrics server to start", timeout_s=10)
            async with aiohttp.ClientSession() as session:
                yield Running(venue, service, service.server.url, session, wait_timeout_s=20.0)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
