"""Helpers for end-to-end tests: a running service against the embedded venue, scraped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from service.app import Service
from service.embedded.binance import EmbeddedBinance

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


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
class Running:
    venue: EmbeddedBinance
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
