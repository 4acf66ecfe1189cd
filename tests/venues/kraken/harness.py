"""The Kraken end-to-end reference: every exported measure recomputed from the venue's truth.

The embedded venue's truth is the book a depth-1000 subscriber holds (its own integer-unit book,
written independently of the service's), printed as the wire's text. The reference below
recomputes every market-state measure from it with the definitions of PRODUCT.md §5.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from service.app import Service
from service.embedded.kraken import EmbeddedKraken
from service.model import BAND_BPS

EXCHANGE = "kraken"
DEPTH = 1000

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


def fast_backoff() -> Iterator[float]:
    while True:
        yield 0.05


@dataclass
class KrakenRunning:
    venue: EmbeddedKraken
    service: Service
    url: str
    session: aiohttp.ClientSession

    async def scrape(self) -> Samples:
        async with self.session.get(f"{self.url}/metrics") as resp:
            assert resp.status == 200
            return parse_metrics(await resp.text())

    async def wait_for(
        self, predicate: Callable[[Samples], bool], timeout_s: float = 30.0, what: str = ""
    ) -> Samples:
        deadline = time.monotonic() + timeout_s
        while True:
            samples = await self.scrape()
            if predicate(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            await asyncio.sleep(0.05)


def reference(venue: EmbeddedKraken, symbol: str) -> dict[str, float]:
    bids_text, asks_text = venue.truth_book(symbol, DEPTH)
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
    volume = venue.taker_volume(symbol)
    ref["taker_buy"] = float(volume["buy"])
    ref["taker_sell"] = float(volume["sell"])
    return ref


def observed(samples: Samples, symbol: str) -> dict[str, float]:
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
        out[f"depth_bid_{band}"] = sample(
            samples, "mmradar_depth_notional", **lv, side="bid", band_bps=b
        )
        out[f"depth_ask_{band}"] = sample(
            samples, "mmradar_depth_notional", **lv, side="ask", band_bps=b
        )
        out[f"imbalance_{band}"] = sample(samples, "mmradar_depth_imbalance", **lv, band_bps=b)
    return out


def valid(samples: Samples, symbol: str) -> bool:
    return sample(samples, "mmradar_book_valid", exchange=EXCHANGE, symbol=symbol) == 1


def resyncs(samples: Samples, symbol: str, reason: str) -> float:
    return sample(
        samples, "mmradar_book_resyncs_total", exchange=EXCHANGE, symbol=symbol, reason=reason
    )


def in_sync(venue: EmbeddedKraken, symbol: str) -> Callable[[Samples], bool]:
    """The book (touch and level counts) and the taker volumes equal the venue's truth."""

    def check(samples: Samples) -> bool:
        if not valid(samples, symbol):
            return False
        ref = reference(venue, symbol)
        got = observed(samples, symbol)
        return all(got[k] == ref[k] for k in ("bid", "ask", "levels_bid", "levels_ask")) and all(
            math.isclose(got[k], ref[k], rel_tol=1e-12) for k in ("taker_buy", "taker_sell")
        )

    return check


def assert_matches(venue: EmbeddedKraken, samples: Samples, symbol: str) -> None:
    """Every exported measure equals the reference (exactly where it is not a float sum)."""
    ref = reference(venue, symbol)
    got = observed(samples, symbol)
    assert valid(samples, symbol)
    for key in ("bid", "ask", "levels_bid", "levels_ask"):
        assert got[key] == ref[key], key
    for key, want in ref.items():
        assert math.isclose(got[key], want, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], want)
