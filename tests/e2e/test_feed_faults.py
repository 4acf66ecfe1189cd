"""The feed runner's reactions to venue behaviour, over real websockets on 127.0.0.1."""

from __future__ import annotations

import time

from fake_clock import FakeClock

from .harness import Running, Samples, sample

SYMBOL = "BTCUSDT"
EXCHANGE = "binance"


def valid(samples: Samples) -> bool:
    return sample(samples, "mmradar_book_valid", exchange=EXCHANGE, symbol=SYMBOL) == 1


def counter(samples: Samples, name: str, **labels: str) -> float:
    return sample(samples, name, exchange=EXCHANGE, **labels)


async def test_rate_limited_snapshot_backs_off_then_syncs(running_factory) -> None:
    running: Running = await running_factory(
        "spot", EXCHANGE, speed=20.0, setup=lambda v: v.fail_next_rest(1, status=429)
    )
    samples = await running.wait_for(valid, what="sync after a 429")
    assert counter(samples, "mmradar_snapshot_requests_total", result="rate_limited") == 1
    assert counter(samples, "mmradar_snapshot_requests_total", result="ok") == 1
    assert running.venue.stats.rest_requests == 2


async def test_server_shutdown_reconnects_promptly(running_factory) -> None:
    running: Running = await running_factory("spot", EXCHANGE, speed=20.0)
    await running.wait_for(valid, what="initial sync")
    running.venue.send_server_shutdown()
    samples = await running.wait_for(
        lambda s: (
            counter(s, "mmradar_feed_reconnects_total", reason="venue_closing") == 1 and valid(s)
        ),
        what="reconnect on serverShutdown",
    )
    assert (
        sample(samples, "mmradar_book_resyncs_total", exchange=EXCHANGE, symbol=SYMBOL,
               reason="reconnect") == 1
    )  # fmt: skip


async def test_silent_connection_is_reconnected_after_the_heartbeat_window(running_factory) -> None:
    # The venue holds its replay (no frames; its pings are 20 s apart, so are ours): nothing at
    # all arrives, so after the venue's heartbeat window (shortened to 1 s) the connection is
    # dropped and reopened. The book went stale first (stale_after_seconds 0.5), and the
    # reconnect then resyncs it. The service runs on a fake clock (its watchdog ticks every
    # second of it), standing still while the venue streams: the moments are exact.
    clock = FakeClock(wall_ns=time.time_ns())
    running: Running = await running_factory(
        "spot", EXCHANGE, speed=20.0, stale_after_seconds=0.5,
        service={"heartbeat_window_s": 1.0, "clock": clock},
    )  # fmt: skip
    inst = running.service.pipelines[0].instruments[SYMBOL]
    await running.wait_for(valid, what="initial sync")
    running.venue.pause()
    await clock.settle()
    # the tick of 1 s: the book has been quiet 1 s > 0.5 s: stale; the connection has been
    # silent exactly its window, not more: kept
    await clock.advance(1.0)
    assert not inst.valid
    samples = await running.scrape()
    assert counter(samples, "mmradar_feed_reconnects_total", reason="stale") == 0
    # the tick of 2 s: silent for longer than the window: dropped (reopened after back-off)
    await clock.advance(1.0)
    samples = await running.scrape()
    assert counter(samples, "mmradar_feed_reconnects_total", reason="stale") == 1
    assert sample(samples, "mmradar_book_resyncs_total", exchange=EXCHANGE, symbol=SYMBOL,
                  reason="reconnect") == 1  # fmt: skip
    assert not valid(samples)
    assert sample(samples, "mmradar_book_resyncs_total", exchange=EXCHANGE, symbol=SYMBOL,
                  reason="stale") == 1  # fmt: skip
    running.venue.resume()
    await clock.advance(0.0625)  # the reconnect's back-off (the harness's 0.05 s)
    await running.wait_for(valid, what="resync after the feed resumes")
