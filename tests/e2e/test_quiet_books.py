"""Quiet is not stale: a silent book on a live connection is never resynced (PRODUCT.md §4).

The embedded Binance venue holds its depth stream while its pings keep the connection alive:
the book goes stale (``mmradar_book_valid`` 0, one stale episode), no snapshot is fetched, and
when the stream resumes the next diff continues the venue's sequence and the book is valid
again — equal to the venue's truth, with the REST request count at the venue unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import math

import pytest

from .harness import Running, Samples, sample
from .test_service_e2e import assert_matches, in_sync

SYMBOL = "BTCUSDT"
EXCHANGE = "binance"
LV = {"exchange": EXCHANGE, "symbol": SYMBOL}


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
    running: Running = await running_factory(
        "spot",
        EXCHANGE,
        speed=20.0,
        stale_after_seconds=1,
        # the venue pings every 0.5 s; the connection's liveness window is 2 s: the pause
        # below is longer, so the connection stays up only because the pings arrive
        venue_options={"ping_interval_s": 0.5},
        service={"heartbeat_window_s": 2.0},
    )
    venue = running.venue
    await running.wait_for(valid, what="initial sync")
    rest_before = venue.stats.rest_requests
    assert rest_before == 1

    venue.pause()  # the depth stream goes quiet; pings continue
    samples = await running.wait_for(
        lambda s: not valid(s) and resyncs(s, "stale") == 1, what="stale book"
    )
    assert sample(samples, "mmradar_book_last_depth_age_seconds", **LV) >= 1.0
    # the market state of a stale book is not exported
    assert math.isnan(sample(samples, "mmradar_best_bid_price", **LV))
    await asyncio.sleep(2.5)  # well past the liveness window, still quiet
    samples = await running.scrape()
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

    for _ in range(100):  # the watchdog notices the return within a second
        if lines("valid again"):
            break
        await asyncio.sleep(0.05)
    (stale,) = lines("book stale")
    assert "no resync" in stale
    (back,) = lines("valid again")
    assert "no snapshot" in back
