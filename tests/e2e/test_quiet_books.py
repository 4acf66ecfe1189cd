"""Quiet is not stale: a silent book on a live connection is never resynced (PRODUCT.md §4).

The embedded Binance venue holds its depth stream while its pings keep the connection alive:
the book goes stale (``mmradar_book_valid`` 0, one stale episode), no snapshot is fetched, and
when the stream resumes the next diff continues the venue's sequence and the book is valid
again — equal to the venue's truth, with the REST request count at the venue unchanged.

The service runs on a :class:`~fake_clock.FakeClock`: its watchdog (every second), the
staleness and the connection's liveness window are on fake time, which stands still while the
venue streams and moves only when the test moves it, so every age and moment is exact. The
venue's pings are sent by the test at fake-time steps (the venue's own are timed on the wall
clock).
"""

from __future__ import annotations

import logging
import math
import time

import pytest

from fake_clock import FakeClock

from .harness import Running, Samples, sample
from .test_service_e2e import assert_matches, in_sync

SYMBOL = "BTCUSDT"
EXCHANGE = "binance"
LV = {"exchange": EXCHANGE, "symbol": SYMBOL}
STALE_S = 1  # stale_after_seconds
HEARTBEAT_S = 2.0  # the connection's liveness window
PING_S = 0.5  # the venue's ping interval, on fake time


def valid(samples: Samples) -> bool:
    return sample(samples, "mmradar_book_valid", **LV) == 1


def resyncs(samples: Samples, reason: str) -> float:
    return sample(samples, "mmradar_book_resyncs_total", **LV, reason=reason)


def reconnects(samples: Samples) -> float:
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == "mmradar_feed_reconnects_total" and ("exchange", EXCHANGE) in labels
    )


async def test_a_quiet_book_goes_stale_and_resumes_without_a_snapshot(
    running_factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar.feed")
    clock = FakeClock(wall_ns=time.time_ns())
    running: Running = await running_factory(
        "spot",
        EXCHANGE,
        speed=20.0,
        stale_after_seconds=STALE_S,
        service={"heartbeat_window_s": HEARTBEAT_S, "clock": clock},
    )
    venue = running.venue
    inst = running.service.pipelines[0].instruments[SYMBOL]
    # the venue streams on the wall clock; the service's time stands still at 0 meanwhile
    await running.wait_for(valid, what="initial sync")
    rest_before = venue.stats.rest_requests
    assert rest_before == 1

    async def quiet(seconds: float) -> None:
        """Let ``seconds`` of fake time pass, the venue pinging every PING_S."""
        for _ in range(round(seconds / PING_S)):
            await clock.advance(PING_S)
            await venue.ping()
            await clock.settle()

    venue.pause()  # the depth stream goes quiet; pings continue
    await clock.settle()
    assert clock.now == 0.0 and inst.last_depth_recv_ns == clock.wall_ns()
    # The watchdog ticks every second: at 1 s the book has been quiet exactly
    # stale_after_seconds (not more), so it goes stale at the tick of 2 s.
    await quiet(1.5)
    assert inst.valid
    await quiet(0.5)
    assert not inst.valid
    samples = await running.scrape()
    assert not valid(samples) and resyncs(samples, "stale") == 1
    assert sample(samples, "mmradar_book_last_depth_age_seconds", **LV) == 2.0
    # the market state of a stale book is not exported
    assert math.isnan(sample(samples, "mmradar_best_bid_price", **LV))
    await quiet(2 * HEARTBEAT_S)  # well past the liveness window, still quiet
    samples = await running.scrape()
    assert sample(samples, "mmradar_book_last_depth_age_seconds", **LV) == 2.0 + 2 * HEARTBEAT_S
    assert not valid(samples)
    assert resyncs(samples, "stale") == 1  # one episode, counted once
    assert venue.stats.rest_requests == rest_before  # no snapshot while stale
    assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1
    assert reconnects(samples) == 0

    venue.resume()  # the next diff continues the sequence
    await running.wait_for(valid, what="valid again")
    venue.pause()
    samples = await running.wait_for(in_sync(running, EXCHANGE), what="book equal to truth")
    assert_matches(running, samples, EXCHANGE)  # every value the snapshot covers is exact
    assert venue.stats.rest_requests == rest_before  # zero additional snapshot requests
    assert sample(samples, "mmradar_snapshot_requests_total", exchange=EXCHANGE, result="ok") == 1
    for reason in ("gap", "checksum", "crossed", "reconnect", "venue_reset"):
        assert resyncs(samples, reason) == 0, reason
    assert resyncs(samples, "stale") == 1
    assert reconnects(samples) == 0

    def lines(text: str) -> list[str]:
        return [m for r in caplog.records if f" {SYMBOL}: " in (m := r.getMessage()) and text in m]

    assert not lines("valid again")
    await quiet(1.0)  # the watchdog's next tick (7 s) notices the return
    (stale,) = lines("book stale")
    assert "no resync" in stale
    (back,) = lines("valid again")
    # stale from the tick of 2 s to the tick of 7 s
    assert "valid again after 5 s stale" in back and "no snapshot" in back
