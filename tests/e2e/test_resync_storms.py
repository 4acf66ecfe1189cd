"""Resync storms: a symbol that keeps failing is backed off and parked; the others keep working.

Two fake venues on 127.0.0.1 serve a persistently bad book for one symbol and a good one for
another: the Binance endpoint of :mod:`.test_several_feeds` (two embedded Binance venues
behind one router) answering BTCUSDT's REST snapshots crossed, and the fake Kraken
(``tests/fakes/kraken.py``) sending BTC/USD with a wrong checksum on every message. The
service runs its production back-off (:class:`mmradar.feed.ResyncPolicy`) with shortened
times; the requests the fake venue receives over a window must stay within the bound that
schedule allows, where the service without back-off sent thousands.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import pytest

from fakes.kraken import EmbeddedKraken
from mmradar.embedded.binance import EmbeddedBinance
from mmradar.embedded.source import SimulatedSource
from mmradar.feed import ResyncPolicy
from mmradar.sim import SimParams

from .harness import Running, Samples, ServiceStack, sample
from .test_several_feeds import Router, serving

#: The production schedule with shortened times: 2 attempts in a row, then one per park.
POLICY = ResyncPolicy(
    backoff_initial_s=0.1, backoff_max_s=0.2, park_after=3, park_s=1.0, reset_after_s=5.0,
    log_interval_s=30.0,
)  # fmt: skip
WINDOW_S = 4.0


def max_attempts(policy: ResyncPolicy, window_s: float) -> int:
    """The most resync attempts one always-failing symbol may make within ``window_s``.

    The first ``park_after - 1`` failures in a row are retried after back-off delays (>= 0);
    from then on every failure parks the symbol for ``park_s``: one attempt per park, plus one
    for the window's edge.
    """
    return (policy.park_after - 1) + math.floor(window_s / policy.park_s) + 1


def book(samples: Samples, exchange: str, symbol: str, name: str, **labels: str) -> float:
    return sample(samples, name, exchange=exchange, symbol=symbol, **labels)


def parked_lines(caplog: pytest.LogCaptureFixture, symbol: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "mmradar.feed"
        and f" {symbol}: " in r.getMessage()
        and "parked" in r.getMessage()
    ]


async def test_a_persistently_crossed_rest_snapshot_is_backed_off_and_parked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar.feed")
    exchange = "binance"
    eth_source = SimulatedSource(
        "calm", 7, duration_s=300.0, params=SimParams(symbol="ETHUSDT"), faults=False
    )
    btc = EmbeddedBinance("spot", speed=5.0, loop=False)
    eth = EmbeddedBinance("spot", source=eth_source, speed=5.0, loop=False)
    router = Router({"BTCUSDT": btc, "ETHUSDT": eth})
    router.cross.add("BTCUSDT")  # every BTCUSDT snapshot is crossed: unusable, every time
    async with btc, eth:
        await router.start()
        try:
            feeds = [{"exchange": exchange, "symbols": ["BTCUSDT", "ETHUSDT"]}]
            async with serving(router, feeds, resync_policy=POLICY) as running:
                started = time.monotonic()
                await asyncio.sleep(WINDOW_S)
                in_window = [t for t, s in router.rest_requests if s == "BTCUSDT"]
                in_window = [t for t in in_window if t <= started + WINDOW_S]
                # Without back-off the book asked again at once after every crossed snapshot,
                # until the exchange's whole REST budget was gone (12 snapshots here).
                assert 2 <= len(in_window) <= max_attempts(POLICY, WINDOW_S), in_window
                samples = await running.wait_for(
                    lambda s: book(s, exchange, "BTCUSDT", "mmradar_book_parked") == 1,
                    what="BTCUSDT parked",
                )
                crossed = book(
                    samples, exchange, "BTCUSDT", "mmradar_book_resyncs_total", reason="crossed"
                )
                assert 2 <= crossed <= len(router.rest_requests)
                parks = book(samples, exchange, "BTCUSDT", "mmradar_book_parks_total")
                assert parks >= 1
                # one log line per park (counted between two scrapes: parks go on meanwhile)
                lines = len(parked_lines(caplog, "BTCUSDT"))
                later = await running.scrape()
                assert (
                    parks <= lines <= book(later, exchange, "BTCUSDT", "mmradar_book_parks_total")
                )
                assert book(samples, exchange, "BTCUSDT", "mmradar_book_valid") == 0
                # the other symbol on the same connection and budget is unaffected
                assert book(samples, exchange, "ETHUSDT", "mmradar_book_valid") == 1
                assert book(samples, exchange, "ETHUSDT", "mmradar_book_parked") == 0

                # The venue serves good snapshots again: the next attempt (after the park)
                # heals the book and unparks it.
                router.cross.clear()
                samples = await running.wait_for(
                    lambda s: (
                        book(s, exchange, "BTCUSDT", "mmradar_book_valid") == 1
                        and book(s, exchange, "BTCUSDT", "mmradar_book_parked") == 0
                    ),
                    timeout_s=POLICY.park_s + 10,
                    what="BTCUSDT valid again",
                )
                btc.pause()
                eth.pause()
                for symbol, venue in (("BTCUSDT", btc), ("ETHUSDT", eth)):
                    bids, asks = venue.truth_book(symbol)
                    best = (max(float(p) for p in bids), min(float(p) for p in asks))
                    await running.wait_for(
                        lambda s, sym=symbol, want=best: (
                            (
                                book(s, exchange, sym, "mmradar_best_bid_price"),
                                book(s, exchange, sym, "mmradar_best_ask_price"),
                            )
                            == want
                        ),
                        what=f"{symbol} equal to the venue's truth",
                    )
                assert (
                    book(samples, exchange, "ETHUSDT", "mmradar_book_resyncs_total", reason="gap")
                    == 0
                )
        finally:
            await router.stop()


async def test_a_persistently_wrong_checksum_is_backed_off_and_parked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar.feed")
    exchange, bad, good = "kraken", "BTC/USD", "BTC/USDT"
    # A venue that would answer a storm in full (its own rate limit far above Kraken's).
    venue = EmbeddedKraken((good, bad), speed=5.0, max_requests_per_s=10_000)
    await venue.start()
    for _ in range(100_000):  # every snapshot and update of BTC/USD: a wrong checksum
        venue.corrupt_next_checksum(bad)
    stack = ServiceStack()
    try:
        service, url, session = await stack.serve(
            venue,
            {"exchange": exchange, "symbols": [good, bad], "ws_url": venue.ws_base},
            resync_policy=POLICY,
        )
        running = Running(venue, service, url, session)
        started = time.monotonic()
        await asyncio.sleep(WINDOW_S)
        requests = venue.stats.requests
        elapsed = time.monotonic() - started
        # 3 subscribe frames (instrument, book, trade), 2 frames per resubscribe, and a
        # keep-alive ping at most; without back-off and pacing: thousands.
        bound = 3 + 2 * max_attempts(POLICY, elapsed) + 1
        assert 3 + 2 * 2 <= requests <= bound, (requests, bound)
        samples = await running.wait_for(
            lambda s: book(s, exchange, bad, "mmradar_book_parked") == 1, what=f"{bad} parked"
        )
        checksum = book(samples, exchange, bad, "mmradar_book_resyncs_total", reason="checksum")
        assert 2 <= checksum <= max_attempts(POLICY, time.monotonic() - started) + 1
        parks = book(samples, exchange, bad, "mmradar_book_parks_total")
        assert parks >= 1
        lines = len(parked_lines(caplog, bad))  # one per park (parks go on meanwhile)
        later = await running.scrape()
        assert parks <= lines <= book(later, exchange, bad, "mmradar_book_parks_total")
        assert book(samples, exchange, bad, "mmradar_book_valid") == 0
        # The other pair on the same connection stays valid and exact.
        assert book(samples, exchange, good, "mmradar_book_valid") == 1
        assert book(samples, exchange, good, "mmradar_book_parked") == 0
        venue.pause()
        bids, asks = venue.truth_book(good, 1000)
        best = (max(float(p) for p in bids), min(float(p) for p in asks))
        await running.wait_for(
            lambda s: (
                (
                    book(s, exchange, good, "mmradar_best_bid_price"),
                    book(s, exchange, good, "mmradar_best_ask_price"),
                )
                == best
            ),
            what=f"{good} equal to the venue's truth",
        )
        # The storm is logged as one line (the log limit is 30 s here), not one per resync.
        lines = [
            r.getMessage()
            for r in caplog.records
            if f" {bad}: book invalidated (checksum)" in r.getMessage()
        ]
        assert len(lines) == 1, lines
    finally:
        await stack.close()
