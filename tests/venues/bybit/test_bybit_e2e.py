"""End to end over real websockets on 127.0.0.1: the service against the embedded Bybit venue.

The venue re-encodes the real Binance USD-M capture as Bybit v5 ``orderbook.1000`` snapshots and
deltas and ``publicTrade`` messages, and keeps its own ground truth (the top-1000 window of its
full book, plain dicts of text). ``/metrics`` must agree with measures recomputed from it.
"""

from __future__ import annotations

from fakes.bybit import EmbeddedBybit

from .harness import (
    EXCHANGE,
    SYMBOL,
    Samples,
    assert_matches,
    in_sync,
    resyncs,
    running,
    sample,
    valid,
)

REASONS = ("gap", "checksum", "crossed", "stale", "reconnect", "venue_reset")


def reconnects(samples: Samples) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "mmradar_feed_reconnects_total" and ("exchange", EXCHANGE) in labels
    )


async def test_whole_capture_ends_exact() -> None:
    async with running(EmbeddedBybit("linear")) as run:
        venue = run.venue
        await venue.wait_drained()
        samples = await run.wait_for(in_sync(venue), what="book equal to truth")

        assert_matches(venue, samples)
        for reason in REASONS:
            assert resyncs(samples, reason) == 0, reason
        stats = venue.stats
        assert stats.deltas_sent > 1000 and stats.snapshots_sent == 1
        assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1
        assert sample(samples, "mmradar_feed_messages_total", exchange=EXCHANGE) >= (
            stats.frames_sent
        )
        assert reconnects(samples) == 0
        # the trade stream covered every fill; the window book covered every level
        assert venue.taker_volume(SYMBOL)["buy"] > 0 and venue.taker_volume(SYMBOL)["sell"] > 0
        assert sample(samples, "mmradar_book_levels", exchange=EXCHANGE, symbol=SYMBOL,
                      side="bid") == 1000  # fmt: skip


async def test_gap_restart_garbage_and_drop_are_counted_and_healed() -> None:
    async with running(EmbeddedBybit("linear", speed=40.0)) as run:
        venue = run.venue
        await run.wait_for(valid, what="initial sync")

        # 1. A u gap: the venue consumes an update id and applies the delta, but never sends
        #    it. The service resubscribes and rebuilds from the fresh snapshot.
        venue.skip_next_delta(SYMBOL)
        await run.wait_for(lambda s: resyncs(s, "gap") == 1 and valid(s), what="gap resync")
        assert venue.stats.snapshots_sent == 2

        # 2. A service restart: a snapshot with u == 1, then u == 2, 3, ...
        venue.restart_service(SYMBOL)
        await run.wait_for(
            lambda s: resyncs(s, "venue_reset") == 1 and valid(s), what="venue reset"
        )
        venue.pause()
        await run.wait_for(in_sync(venue), what="caught up after the restart")
        assert venue.last_update_id < 1000  # the chain restarted from 1
        venue.resume()

        # 3. Garbage and an unknown message: counted, nothing else happens.
        venue.send_raw("{not json")
        venue.send_raw('{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{}}')
        await run.wait_for(
            lambda s: sample(s, "mmradar_feed_bad_messages_total", exchange=EXCHANGE,
                             reason="malformed") == 1
            and sample(s, "mmradar_feed_bad_messages_total", exchange=EXCHANGE,
                       reason="unknown") == 1,
            what="bad frames counted",
        )  # fmt: skip

        # 4. A dropped connection (TCP abort), with the replay held so nothing is lost in
        #    flight: reconnect, resubscribe, snapshot, exact again.
        venue.pause()
        await run.wait_for(in_sync(venue), what="caught up before the drop")
        venue.drop_connections()
        venue.resume()
        await run.wait_for(
            lambda s: resyncs(s, "reconnect") == 1 and valid(s), what="reconnect resync"
        )

        venue.pause()
        samples = await run.wait_for(in_sync(venue), what="book equal to truth")
        assert_matches(venue, samples)
        assert resyncs(samples, "gap") == 1
        assert resyncs(samples, "venue_reset") == 1
        assert resyncs(samples, "reconnect") == 1
        for reason in ("checksum", "crossed", "stale"):
            assert resyncs(samples, reason) == 0, reason
        assert reconnects(samples) == 1
        assert venue.stats.connections_accepted == 2
        assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1
