"""Helpers for end-to-end tests: a running service against an embedded venue, scraped.

Shared by every venue's end-to-end tests (``tests/venues/*``): the scrape parser, the running
service handle, and the market-state values recomputed from a venue's ground-truth book (the
docs/metrics.md definitions) next to the same values read from ``/metrics``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.model import BAND_BPS
from mmradar.venues import VENUE_NAMES
from support import wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
V = TypeVar("V")


def parse_metrics(text: str) -> Samples:
    """``{(sample name, labels): value}`` of a Prometheus text exposition."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def fast_backoff() -> Iterator[float]:
    while True:
        yield 0.05


@dataclass
class Running(Generic[V]):
    """The service and the embedded venue it is configured against.

    Attributes:
        wait_timeout_s: how long :meth:`wait_for` waits unless told otherwise.
    """

    venue: V
    service: Service
    url: str
    session: aiohttp.ClientSession
    wait_timeout_s: float = 30.0

    async def scrape(self) -> Samples:
        async with self.session.get(f"{self.url}/metrics") as resp:
            assert resp.status == 200
            return parse_metrics(await resp.text())

    async def wait_for(
        self, predicate: Callable[[Samples], bool], timeout_s: float | None = None, what: str = ""
    ) -> Samples:
        """Scrape until ``predicate`` holds for the samples; those samples."""

        async def matching() -> Samples | None:
            samples = await self.scrape()
            return samples if predicate(samples) else None

        return await wait_until(
            matching,
            what or repr(predicate),
            timeout_s=self.wait_timeout_s if timeout_s is None else timeout_s,
            interval_s=0.05,
        )


def market_reference(
    bids_text: Mapping[str, str], asks_text: Mapping[str, str], taker: Mapping[str, Decimal]
) -> dict[str, float]:
    """Every expected market-state value, recomputed from a ground-truth book and taker volume."""
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
        ref[f"imbalance_{band}"] = (db - da) / (db + da) if db + da > 0 else 0.0
    ref["taker_buy"] = float(taker["buy"])
    ref["taker_sell"] = float(taker["sell"])
    return ref


def market_observed(samples: Samples, exchange: str, symbol: str) -> dict[str, float]:
    """The values of :func:`market_reference`, as the service exports them."""
    lv = {"exchange": exchange, "symbol": symbol}
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


class ServiceStack:
    """The services a test starts against embedded venues; :meth:`close` stops them and the venues.

    Each service serves ``/metrics`` on a free loopback port and reconnects fast.
    """

    def __init__(self) -> None:
        self._started: list[tuple[Any, asyncio.Event, asyncio.Task[None], aiohttp.ClientSession]]
        self._started = []

    async def serve(
        self, venue: Any, feed: Mapping[str, object], **options: Any
    ) -> tuple[Service, str, aiohttp.ClientSession]:
        """Start the service with the one ``[[feeds]]`` table ``feed`` against ``venue`` (started).

        ``options`` are passed to :class:`Service` (``resync_policy``, ``heartbeat_window_s``).

        Returns:
            The service, its ``/metrics`` base URL and an HTTP session for scraping it.
        """
        settings = parse_settings(
            {"http": {"listen": "127.0.0.1:0"}, "feeds": [dict(feed)]},
            env={},
            supported=VENUE_NAMES,
        )
        service = Service(settings, backoff_factory=fast_backoff, **options)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        assert service.server is not None
        server = service.server
        await wait_until(lambda: server.port != 0, "the metrics server to start", timeout_s=10)
        session = aiohttp.ClientSession()
        self._started.append((venue, stop, task, session))
        return service, service.server.url, session

    async def close(self) -> None:
        started, self._started = self._started, []
        for venue, stop, task, session in started:
            stop.set()
            await asyncio.wait_for(task, 10)
            await session.close()
            await venue.stop()
