"""Fixtures for the OKX end-to-end tests: the real service against :class:`EmbeddedOkx`."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from e2e.harness import Running as _Running
from e2e.harness import Samples, ServiceStack, market_observed, market_reference, sample
from fakes.okx import EmbeddedOkx

__all__ = ["EXCHANGE", "Running", "Samples", "sample"]

EXCHANGE = "okx"


@dataclass
class Running(_Running[EmbeddedOkx]):
    """The service against :class:`EmbeddedOkx`, with comparisons against its truth."""

    wait_timeout_s: float = 20.0

    # -- comparisons with the venue's truth ---------------------------------------------------

    def valid(self, samples: Samples, symbol: str) -> bool:
        return sample(samples, "mmradar_book_valid", exchange=EXCHANGE, symbol=symbol) == 1

    def resyncs(self, samples: Samples, symbol: str, reason: str) -> float:
        return sample(
            samples, "mmradar_book_resyncs_total", exchange=EXCHANGE, symbol=symbol, reason=reason
        )

    def reference(self, symbol: str) -> dict[str, float]:
        """Every expected value, recomputed from the venue's ground truth (docs/metrics.md)."""
        return market_reference(*self.venue.truth_book(symbol), self.venue.taker_volume(symbol))

    def observed(self, samples: Samples, symbol: str) -> dict[str, float]:
        return market_observed(samples, EXCHANGE, symbol)

    def in_sync(self, *symbols: str) -> Callable[[Samples], bool]:
        """The books are valid and at the venue's truth (touch, levels, taker volumes)."""

        def check(samples: Samples) -> bool:
            for symbol in symbols:
                if not self.valid(samples, symbol):
                    return False
                ref, got = self.reference(symbol), self.observed(samples, symbol)
                if any(got[k] != ref[k] for k in ("bid", "ask", "levels_bid", "levels_ask")):
                    return False
                if any(
                    not math.isclose(got[k], ref[k], rel_tol=1e-12)
                    for k in ("taker_buy", "taker_sell")
                ):
                    return False
            return True

        return check

    def assert_matches(self, samples: Samples, symbol: str) -> None:
        """Every market-state value equals the reference computed from the truth."""
        ref, got = self.reference(symbol), self.observed(samples, symbol)
        assert self.valid(samples, symbol)
        for key in ("bid", "ask", "levels_bid", "levels_ask"):
            assert got[key] == ref[key], (symbol, key)
        for key, want in ref.items():
            assert math.isclose(got[key], want, rel_tol=1e-9, abs_tol=1e-9), (symbol, key)


@pytest.fixture
async def okx_service() -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    stack = ServiceStack()

    async def start(
        symbols: tuple[str, ...] = ("BTC-USDT", "SOL-USDT"),
        *,
        trades: bool = True,
        setup: Callable[[EmbeddedOkx], None] | None = None,
        **venue_options: Any,
    ) -> Running:
        venue = EmbeddedOkx(symbols, **venue_options)
        await venue.start()
        if setup is not None:
            setup(venue)
        service, url, session = await stack.serve(
            venue,
            {
                "exchange": EXCHANGE,
                "symbols": list(symbols),
                "trades": trades,
                "ws_url": venue.ws_base,
                "rest_url": venue.rest_base,
            },
        )
        return Running(venue, service, url, session)

    yield start
    await stack.close()
