"""The whole service against the simulated venue on 127.0.0.1: the book it ends with is the
simulator's own book, level for level."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.embedded.binance import EmbeddedBinance
from mmradar.embedded.source import SimulatedSource
from mmradar.model import Side
from mmradar.venues import VENUE_NAMES
from support import wait_until

from .test_simulator import SHORT


def fast_backoff() -> Iterator[float]:
    while True:
        yield 0.05


async def test_service_ends_with_the_simulators_book() -> None:
    source = SimulatedSource(SHORT, 4)
    async with EmbeddedBinance("spot", source=source, speed=math.inf, loop=False) as venue:
        settings = parse_settings(
            {
                "http": {"listen": "127.0.0.1:0"},
                "feeds": [
                    {
                        "exchange": "binance",
                        "symbols": ["BTCUSDT"],
                        "ws_url": venue.ws_base,
                        "rest_url": venue.rest_base,
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
            await asyncio.wait_for(venue.wait_drained(), 60)
            run = source.run
            assert run is not None
            want_bids = [(float(p), float(q)) for p, q in run.final_bids]
            want_asks = [(float(p), float(q)) for p, q in run.final_asks]

            def matched() -> bool:
                inst = next(iter(service.pipelines[0].instruments.values()))
                got_bids = sorted(inst.book.items(Side.BID), reverse=True)
                got_asks = sorted(inst.book.items(Side.ASK))
                return inst.valid and (got_bids, got_asks) == (want_bids, want_asks)

            await wait_until(
                matched, "the service's book to match the run's", timeout_s=20, interval_s=0.05
            )
            inst = next(iter(service.pipelines[0].instruments.values()))
            truth_bids, truth_asks = venue.truth_book("BTCUSDT")
            assert sorted(((float(p), float(q)) for p, q in truth_bids.items()), reverse=True) == (
                want_bids
            )
            assert len(want_asks) == len(truth_asks) > 400
            assert inst.sync.updates_applied > 0.9 * venue.stats.depth_events
            taker = venue.taker_volume("BTCUSDT")
            assert math.isclose(inst.market.taker_buy, float(taker["buy"]), rel_tol=1e-9)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
