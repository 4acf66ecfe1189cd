"""The service against the embedded Bybit venue on 127.0.0.1, scraped, compared with the truth."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from service.app import Service
from service.config import parse_settings
from service.embedded.bybit import EmbeddedBybit
from service.model import BAND_BPS
from service.venues import VENUE_NAMES

EXCHANGE = "bybit"
SYMBOL = "BTCUSDT"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def book(samples: Samples, name: str, **labels: str) -> float:
    return sample(samples, name, exchange=EXCHANGE, symbol=SYMBOL, **labels)


def valid(samples: Samples) -> bool:
    return book(samples, "mmradar_book_valid") == 1


def resyncs(samples: Samples, reason: str) -> float:
    return book(samples, "mmradar_book_resyncs_total", reason=reason)


def reference(venue: EmbeddedBybit) -> dict[str, float]:
    """Every expected value, recomputed from the venue's truth (PRODUCT.md §5 definitions)."""
    bids_text, asks_text = venue.truth_book(SYMBOL)
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
    volume = venue.taker_volume(SYMBOL)
    ref["taker_buy"] = float(volume["buy"])
    ref["taker_sell"] = float(volume["sell"])
    return ref


def observed(samples: Samples) -> dict[str, float]:
    out = {
        "bid": book(samples, "mmradar_best_bid_price"),
        "ask": book(samples, "mmradar_best_ask_price"),
        "mid": book(samples, "mmradar_mid_price"),
        "micro": book(samples, "mmradar_microprice"),
        "spread": book(samples, "mmradar_spread_bps"),
        "levels_bid": book(samples, "mmradar_book_levels", side="bid"),
        "levels_ask": book(samples, "mmradar_book_levels", side="ask"),
        "taker_buy": book(samples, "mmradar_taker_volume_total", side="buy"),
        "taker_sell": book(samples, "mmradar_taker_volume_total", side="sell"),
    }
    for band in BAND_BPS:
        b = str(band)
        out[f"depth_bid_{band}"] = book(samples, "mmradar_depth_notional", side="bid", band_bps=b)
        out[f"depth_ask_{band}"] = book(samples, "mmradar_depth_notional", side="ask", band_bps=b)
        out[f"imbalance_{band}"] = book(samples, "mmradar_depth_imbalance", band_bps=b)
    return out


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


def fast_backoff() -> Iterator[float]:
    while True:
        yield 0.05


@dataclass
class Running:
    venue: EmbeddedBybit
    service: Service
    url: str
    session: aiohttp.ClientSession

    async def scrape(self) -> Samples:
        async with self.session.get(f"{self.url}/metrics") as resp:
            assert resp.status == 200
            return parse_metrics(await resp.text())

    async def wait_for(
        self, predicate: Callable[[Samples], bool], what: str, timeout_s: float = 20.0
    ) -> Samples:
        deadline = time.monotonic() + timeout_s
        while True:
            samples = await self.scrape()
            if predicate(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running(venue: EmbeddedBybit, **feed: object) -> AsyncIterator[Running]:
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
            deadline = time.monotonic() + 10
            while service.server.port == 0:
                assert time.monotonic() < deadline, "metrics server did not start"
                await asyncio.sleep(0.01)
            async with aiohttp.ClientSession() as session:
                yield Running(venue, service, service.server.url, session)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
