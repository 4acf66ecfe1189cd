"""Fixtures for the OKX end-to-end tests: the real service against :class:`EmbeddedOkx`."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.app import Service
from service.config import parse_settings
from service.embedded.okx import EmbeddedOkx
from service.model import BAND_BPS
from service.venues import VENUE_NAMES

EXCHANGE = "okx"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """``{(sample name, labels): value}`` of a Prometheus text exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def _fast_backoff() -> Iterator[float]:
    while True:
        yield 0.05


@dataclass
class Running:
    venue: EmbeddedOkx
    service: Service
    url: str
    session: aiohttp.ClientSession

    async def scrape(self) -> Samples:
        async with self.session.get(f"{self.url}/metrics") as resp:
            assert resp.status == 200
            return parse_metrics(await resp.text())

    async def wait_for(
        self, predicate: Callable[[Samples], bool], timeout_s: float = 20.0, what: str = ""
    ) -> Samples:
        deadline = time.monotonic() + timeout_s
        while True:
            samples = await self.scrape()
            if predicate(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            await asyncio.sleep(0.05)

    # -- comparisons with the venue's truth ---------------------------------------------------

    def valid(self, samples: Samples, symbol: str) -> bool:
        return sample(samples, "mmradar_book_valid", exchange=EXCHANGE, symbol=symbol) == 1

    def resyncs(self, samples: Samples, symbol: str, reason: str) -> float:
        return sample(
            samples, "mmradar_book_resyncs_total", exchange=EXCHANGE, symbol=symbol, reason=reason
        )

    def reference(self, symbol: str) -> dict[str, float]:
        """Every expected value, recomputed from the venue's ground truth (PRODUCT.md §5)."""
        bids_text, asks_text = self.venue.truth_book(symbol)
        bids = {float(p): float(q) for p, q in bids_text.items()}
        asks = {float(p): float(q) for p, q in asks_text.items()}
        bb, ba = max(bids), min(asks)
        mid = (bb + ba) / 2
        ref = {
            "bid": bb,
            "ask": ba,
            "mid": mid,
            "micro": (bb * asks[ba] + ba * bids[bb]) / (asks[ba] + bids[bb]),
            "spread": (ba - bb) / mid * 1e4,
            "levels_bid": len(bids),
            "levels_ask": len(asks),
        }
        for band in BAND_BPS:
            x = band / 1e4
            db = math.fsum(p * q for p, q in bids.items() if p >= mid * (1.0 - x))
            da = math.fsum(p * q for p, q in asks.items() if p <= mid * (1.0 + x))
            ref[f"depth_bid_{band}"] = db
            ref[f"depth_ask_{band}"] = da
            ref[f"imbalance_{band}"] = (db - da) / (db + da)
        volume = self.venue.taker_volume(symbol)
        ref["taker_buy"] = float(volume["buy"])
        ref["taker_sell"] = float(volume["sell"])
        return ref

    def observed(self, samples: Samples, symbol: str) -> dict[str, float]:
        lv = {"exchange": EXCHANGE, "symbol": symbol}
        out = {
            "bid": sample(samples, "mmradar_best_bid_price", **lv),
            "ask": sample(samples, "mmradar_best_ask_price", **lv),
            "mid": sample(samples, "mmradar_mid_price", **lv),
            "micro": sample(samples, "mmradar_microprice", **lv),
            "spread": sample(samples, "mmradar_spread_bps", **lv),
            "levels_bid": sample(samples, "mmradar_book_levels", **lv, side="bid"),
            "levels_ask": sample(samples, "mmradar_book_levels", **lv, side="ask"),
            "taker_buy": sample(samples, "mmradar_taker_volume_total", **lv, side="buy"),
            "taker_sell": sample(samples, "mmradar_taker_volume_total", **lv, side="sell"),
        }
        for band in BAND_BPS:
            b = str(band)
            for side in ("bid", "ask"):
                out[f"depth_{side}_{band}"] = sample(
                    samples, "mmradar_depth_notional", **lv, side=side, band_bps=b
                )
            out[f"imbalance_{band}"] = sample(samples, "mmradar_depth_imbalance", **lv, band_bps=b)
        return out

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
    stack: list[tuple[EmbeddedOkx, asyncio.Event, asyncio.Task[None], aiohttp.ClientSession]]
    stack = []

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
        settings = parse_settings(
            {
                "http": {"listen": "127.0.0.1:0"},
                "feeds": [
                    {
                        "exchange": EXCHANGE,
                        "symbols": list(symbols),
                        "trades": trades,
                        "ws_url": venue.ws_base,
                        "rest_url": venue.rest_base,
                    }
                ],
            },
            env={},
            supported=VENUE_NAMES,
        )
        service = Service(settings, backoff_factory=_fast_backoff)
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
