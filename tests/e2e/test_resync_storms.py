"""Resync storms: a symbol that keeps failing is backed off and parked; the others keep working.

Two fake venues on 127.0.0.1 serve a persistently bad book for one symbol and a good one for
another: the Binance endpoint of :mod:`.test_several_feeds` (two embedded Binance venues
behind one router) answering BTCUSDT's REST snapshots crossed, and the fake Kraken
(``tests/fakes/kraken.py``) sending BTC/USD with a wrong checksum on every message. The
service runs its production back-off (:class:`mmradar.feed.ResyncPolicy`) with shortened
times; the requests the fake venue receives over a window must stay within the bound that
schedule allows, where the service without back-off sent thousands. Both cases run the venues
and the service on one fake clock: the requests fall at the schedule's exact steps and nothing
waits for real time.
"""

from __future__ import annotations

import itertools
import logging
import math
import time

import orjson
import pytest

from fake_clock import FakeClock
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
#: The longest wait for the next depth message of the embedded Binance venue at speed 5 (its
#: capture's depth stream is 100 ms, a few intervals a little longer).
DEPTH_S = 0.15 / 5


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
    """The venues and the service share one fake clock: the venues' streams are paced on it
    and the service's back-off and parks wait on it, so the requests are counted over an exact
    window of (fake) time and nothing sleeps."""
    caplog.set_level(logging.INFO, logger="mmradar.feed")
    clock = FakeClock(wall_ns=time.time_ns())
    exchange = "binance"
    eth_source = SimulatedSource(
        "calm", 7, duration_s=300.0, params=SimParams(symbol="ETHUSDT"), faults=False
    )
    # both venues paced on the fake clock, their event times from its wall time
    btc = EmbeddedBinance("spot", speed=5.0, loop=False, clock=clock.wall_ns, pace_clock=clock)
    eth = EmbeddedBinance(
        "spot", source=eth_source, speed=5.0, loop=False, clock=clock.wall_ns, pace_clock=clock
    )
    router = Router({"BTCUSDT": btc, "ETHUSDT": eth}, monotonic=clock.monotonic)
    router.cross.add("BTCUSDT")  # every BTCUSDT snapshot is crossed: unusable, every time
    async with btc, eth:
        await router.start()
        try:
            feeds = [{"exchange": exchange, "symbols": ["BTCUSDT", "ETHUSDT"]}]
            async with serving(router, feeds, resync_policy=POLICY, clock=clock) as running:
                insts = running.service.pipelines[0].instruments
                await clock.run_until(lambda: router.rest_requests != [], within_s=1.0)
                started = clock.now
                await clock.advance(WINDOW_S)
                in_window = [t for t, s in router.rest_requests if s == "BTCUSDT"]
                assert all(started <= t <= started + WINDOW_S for t in in_window)
                # Without back-off the book asked again at once after every crossed snapshot,
                # until the exchange's whole REST budget was gone (12 snapshots here). With it:
                # the first request, one after a back-off of 0.05-0.1 s, then one per park of
                # 1 s (the park starts at the depth message after the failure).
                assert len(in_window) == 5 <= max_attempts(POLICY, WINDOW_S), in_window
                assert in_window[0] == started
                assert 0.05 <= in_window[1] - in_window[0] <= 0.1 + DEPTH_S
                for a, b in itertools.pairwise(in_window[1:]):
                    assert POLICY.park_s <= b - a <= POLICY.park_s + DEPTH_S, in_window
                await clock.run_until(lambda: not insts["BTCUSDT"].valid, within_s=1.0)
                samples = await running.scrape()
                assert book(samples, exchange, "BTCUSDT", "mmradar_book_parked") == 1
                crossed = book(
                    samples, exchange, "BTCUSDT", "mmradar_book_resyncs_total", reason="crossed"
                )
                parks = book(samples, exchange, "BTCUSDT", "mmradar_book_parks_total")
                assert crossed == len(in_window)  # every BTCUSDT snapshot was crossed
                # from the second failure on, the next request is the park_after-th in a row
                # or later: parked, every time
                assert parks == len(in_window) - 1
                # one log line per park
                assert len(parked_lines(caplog, "BTCUSDT")) == parks
                assert book(samples, exchange, "BTCUSDT", "mmradar_book_valid") == 0
                # the other symbol on the same connection and budget is unaffected
                assert book(samples, exchange, "ETHUSDT", "mmradar_book_valid") == 1
                assert book(samples, exchange, "ETHUSDT", "mmradar_book_parked") == 0

                # The venue serves good snapshots again: the next attempt (after the park)
                # heals the book and unparks it.
                router.cross.clear()
                await clock.run_until(lambda: insts["BTCUSDT"].valid, within_s=POLICY.park_s + 0.5)
                samples = await running.scrape()
                assert book(samples, exchange, "BTCUSDT", "mmradar_book_valid") == 1
                assert book(samples, exchange, "BTCUSDT", "mmradar_book_parked") == 0
                btc.pause()
                eth.pause()
                await clock.settle()
                samples = await running.scrape()
                for symbol, venue in (("BTCUSDT", btc), ("ETHUSDT", eth)):
                    bids, asks = venue.truth_book(symbol)
                    best = (max(float(p) for p in bids), min(float(p) for p in asks))
                    assert (
                        book(samples, exchange, symbol, "mmradar_best_bid_price"),
                        book(samples, exchange, symbol, "mmradar_best_ask_price"),
                    ) == best, symbol
                assert (
                    book(samples, exchange, "ETHUSDT", "mmradar_book_resyncs_total", reason="gap")
                    == 0
                )
        finally:
            await router.stop()


async def test_a_persistently_wrong_checksum_is_backed_off_and_parked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The venue and the service share one fake clock, as in the Binance case: the venue's
    stream and its request log run on it, the service's back-off, parks and message pacing wait
    on it, so the resubscribes fall at exact times and nothing sleeps."""
    caplog.set_level(logging.INFO, logger="mmradar.feed")
    exchange, bad, good = "kraken", "BTC/USD", "BTC/USDT"
    clock = FakeClock(wall_ns=time.time_ns())
    # A venue that would answer a storm in full (its own rate limit far above Kraken's).
    venue = EmbeddedKraken(
        (good, bad), speed=5.0, max_requests_per_s=10_000, clock=clock.wall_ns, pace_clock=clock
    )
    await venue.start()
    for _ in range(100_000):  # every snapshot and update of BTC/USD: a wrong checksum
        venue.corrupt_next_checksum(bad)
    stack = ServiceStack()
    try:
        service, url, session = await stack.serve(
            venue,
            {"exchange": exchange, "symbols": [good, bad], "ws_url": venue.ws_base},
            resync_policy=POLICY,
            clock=clock,
        )
        running = Running(venue, service, url, session)
        insts = service.pipelines[0].instruments
        await clock.run_until(lambda: book_subscribes(venue, bad) != [], within_s=1.0)
        started = clock.now
        await clock.advance(WINDOW_S)
        in_window = [t - started for t in book_subscribes(venue, bad)]
        # The subscription, then: the first resubscribe at once; the second after the back-off
        # and the connection's message pacing (Kraken: 5 frames per 1.1-s window, a second and
        # a margin for jitter, all used at 0 s by the 3 subscribe frames and the first
        # resubscribe's 2); from the third failure in a row on, one per park of 1 s. Without
        # back-off and pacing: thousands.
        assert in_window == pytest.approx([0.0, 0.0, 1.1, 2.1, 3.1])
        assert len(in_window) - 1 <= max_attempts(POLICY, WINDOW_S)
        # 3 subscribe frames (instrument, book, trade) and 2 frames per resubscribe
        requests = [t - started for t, _ in venue.request_log]
        assert all(0.0 <= t <= WINDOW_S for t in requests)
        assert len(requests) == 3 + 2 * (len(in_window) - 1)
        await clock.run_until(lambda: not insts[bad].valid, within_s=1.0)
        samples = await running.scrape()
        assert book(samples, exchange, bad, "mmradar_book_parked") == 1
        assert book(samples, exchange, bad, "mmradar_book_valid") == 0
        checksum = book(samples, exchange, bad, "mmradar_book_resyncs_total", reason="checksum")
        parks = book(samples, exchange, bad, "mmradar_book_parks_total")
        assert checksum == len(in_window)  # every subscription of BTC/USD failed
        # from the third failure in a row on, every failure parks; one log line per park
        assert parks == checksum - (POLICY.park_after - 1)
        assert len(parked_lines(caplog, bad)) == parks
        # The other pair on the same connection stays valid and exact.
        assert book(samples, exchange, good, "mmradar_book_valid") == 1
        assert book(samples, exchange, good, "mmradar_book_parked") == 0
        venue.pause()
        await clock.settle()
        samples = await running.scrape()
        bids, asks = venue.truth_book(good, 1000)
        best = (max(float(p) for p in bids), min(float(p) for p in asks))
        assert (
            book(samples, exchange, good, "mmradar_best_bid_price"),
            book(samples, exchange, good, "mmradar_best_ask_price"),
        ) == best
        # The storm is logged as one line (the log limit is 30 s here), not one per resync.
        lines = [
            r.getMessage()
            for r in caplog.records
            if f" {bad}: book invalidated (checksum)" in r.getMessage()
        ]
        assert len(lines) == 1, lines
    finally:
        await stack.close()


def book_subscribes(venue: EmbeddedKraken, symbol: str) -> list[float]:
    """The times the venue received a ``book`` subscription naming ``symbol``."""
    out = []
    for t, frame in venue.request_log:
        request = orjson.loads(frame)
        params = request.get("params", {})
        if (
            request.get("method") == "subscribe"
            and params.get("channel") == "book"
            and symbol in params.get("symbol", ())
        ):
            out.append(t)
    return out


async def test_a_fault_soon_after_a_reconnect_does_not_count_towards_parking() -> None:
    """A book resynced after every reconnect (a venue restart) and valid in between is not a
    book failing in a row: a gap that comes a second after such a resync starts a fresh streak
    (resynced at once), however often the cycle repeats. The reconnect's snapshot does not count
    as an attempt of the symbol's streak, as its request does not."""
    clock = FakeClock(wall_ns=time.time_ns())
    venue = EmbeddedBinance("spot", speed=5.0, loop=False, clock=clock.wall_ns, pace_clock=clock)
    await venue.start()
    stack = ServiceStack()
    try:
        service, url, session = await stack.serve(
            venue,
            {
                "exchange": "binance",
                "symbols": ["BTCUSDT"],
                "ws_url": venue.ws_base,
                "rest_url": venue.rest_base,
            },
            resync_policy=POLICY,
            clock=clock,
        )
        running = Running(venue, service, url, session)
        inst = service.pipelines[0].instruments["BTCUSDT"]
        await clock.run_until(lambda: inst.valid, within_s=5.0)
        labels = {"exchange": "binance", "symbol": "BTCUSDT", "reason": "gap"}

        def gaps() -> float:
            return service.registry.get_sample_value("mmradar_book_resyncs_total", labels) or 0.0

        cycles = POLICY.park_after + 1
        for n in range(1, cycles + 1):
            accepted = venue.stats.connections_accepted
            venue.drop_connections()  # a venue restart: reconnect, a fresh snapshot
            await clock.run_until(
                lambda a=accepted: venue.stats.connections_accepted > a and inst.valid,
                within_s=5.0,
            )
            await clock.advance(1.0)  # well within reset_after_s of that snapshot
            venue.skip_next_depth("BTCUSDT")
            await clock.run_until(lambda n=n: gaps() == n, within_s=2.0)
            await clock.run_until(lambda: inst.valid, within_s=2.0)  # at once: no back-off
            await clock.advance(2 * POLICY.reset_after_s)  # valid for a long while
        samples = await running.scrape()
        assert book(samples, "binance", "BTCUSDT", "mmradar_book_resyncs_total", reason="gap") == (
            cycles
        )
        assert book(samples, "binance", "BTCUSDT", "mmradar_book_parks_total") == 0
        assert book(samples, "binance", "BTCUSDT", "mmradar_book_parked") == 0
        assert book(samples, "binance", "BTCUSDT", "mmradar_book_valid") == 1
    finally:
        await stack.close()
        await venue.stop()
