"""End to end over real websockets on 127.0.0.1: the service against the embedded Kraken venue.

The venue speaks Kraken's WebSocket v2 (instrument precisions, JSON-number levels, a checksum on
every book message, truncation at the subscribed depth) and keeps its own truth; ``/metrics``
must agree with the truth after a whole capture, after a corrupted checksum and after a dropped
connection.
"""

from __future__ import annotations

import math

from .harness import (
    EXCHANGE,
    KrakenRunning,
    Samples,
    assert_matches,
    in_sync,
    resyncs,
    sample,
    valid,
)

SYMBOL = "BTC/USDT"
REASONS = ("gap", "checksum", "crossed", "stale", "reconnect", "venue_reset")


def reconnects(samples: Samples) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "mmradar_feed_reconnects_total" and ("exchange", EXCHANGE) in labels
    )


async def test_whole_capture_ends_exact(kraken_factory) -> None:
    running: KrakenRunning = await kraken_factory()
    venue = running.venue
    await venue.wait_drained()
    samples = await running.wait_for(in_sync(venue, SYMBOL), what="book equal to truth")

    assert_matches(venue, samples, SYMBOL)
    # The venue's whole book is deeper than the subscribed 1000 levels on both sides, so the
    # service's book holds exactly 1000 per side only because it truncates after every message.
    full_bids, full_asks = venue.full_depth(SYMBOL)
    assert full_bids > 1000 and full_asks > 1000
    lv = {"exchange": EXCHANGE, "symbol": SYMBOL}
    assert sample(samples, "mmradar_book_levels", **lv, side="bid") == 1000
    assert sample(samples, "mmradar_book_levels", **lv, side="ask") == 1000
    for reason in REASONS:
        assert resyncs(samples, SYMBOL, reason) == 0, reason
    assert reconnects(samples) == 0
    assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1
    assert sample(samples, "mmradar_feed_messages_total", exchange=EXCHANGE) >= (
        venue.stats.frames_sent
    )
    for reason in ("malformed", "unknown", "unknown_symbol", "venue_error"):
        assert (
            sample(samples, "mmradar_feed_bad_messages_total", exchange=EXCHANGE, reason=reason)
            == 0
        ), reason
    assert venue.stats.trades > 0
    assert sample(samples, "mmradar_taker_volume_total", **lv, side="buy") > 0
    assert sample(samples, "mmradar_taker_volume_total", **lv, side="sell") > 0
    assert sample(samples, "mmradar_feed_latency_seconds_count", exchange=EXCHANGE) > 0


async def test_checksum_failure_garbage_and_drop_are_counted_and_healed(kraken_factory) -> None:
    running: KrakenRunning = await kraken_factory(speed=20.0)
    venue = running.venue
    await running.wait_for(lambda s: valid(s, SYMBOL), what="initial sync")

    # 1. A corrupted checksum: the book is invalidated (reason checksum), the service
    #    resubscribes and the venue's fresh snapshot makes it valid again.
    venue.corrupt_next_checksum(SYMBOL)
    await running.wait_for(
        lambda s: resyncs(s, SYMBOL, "checksum") == 1 and valid(s, SYMBOL),
        what="checksum resync",
    )
    assert venue.stats.checksums_corrupted == 1

    # 2. A garbage frame: counted as malformed, nothing else happens.
    venue.send_raw("{not json")
    await running.wait_for(
        lambda s: (
            sample(s, "mmradar_feed_bad_messages_total", exchange=EXCHANGE, reason="malformed") == 1
        ),
        what="malformed frame counted",
    )

    # 3. A dropped connection (TCP abort), with the replay held so no frame is lost in flight.
    venue.pause()
    await running.wait_for(in_sync(venue, SYMBOL), what="caught up before the drop")
    venue.drop_connections()
    venue.resume()
    await running.wait_for(
        lambda s: resyncs(s, SYMBOL, "reconnect") == 1 and valid(s, SYMBOL),
        what="reconnect resync",
    )

    venue.pause()
    samples = await running.wait_for(in_sync(venue, SYMBOL), what="book equal to truth")
    assert_matches(venue, samples, SYMBOL)
    assert resyncs(samples, SYMBOL, "checksum") == 1
    assert resyncs(samples, SYMBOL, "reconnect") == 1
    for reason in ("gap", "crossed", "stale", "venue_reset"):
        assert resyncs(samples, SYMBOL, reason) == 0, reason
    assert reconnects(samples) == 1
    assert venue.stats.connections_accepted == 2
    assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1


async def test_unsupported_pair_is_a_venue_error_and_others_sync(kraken_factory) -> None:
    # "XBT/USD" is the v1 spelling: the venue refuses it per symbol, the other pair syncs.
    running: KrakenRunning = await kraken_factory(symbols=[SYMBOL, "XBT/USD"])
    venue = running.venue
    samples = await running.wait_for(
        lambda s: (
            valid(s, SYMBOL)
            and sample(
                s, "mmradar_feed_bad_messages_total", exchange=EXCHANGE, reason="venue_error"
            )
            >= 1
        ),
        what="sync and the refusal counted",
    )
    assert not valid(samples, "XBT/USD")
    venue.pause()
    samples = await running.wait_for(in_sync(venue, SYMBOL), what="book equal to truth")
    assert_matches(venue, samples, SYMBOL)
    # Taker volume counts only trades released after the subscription: the 50-trade snapshot the
    # venue sends on subscribe is history, so the counter equals the venue's released volume
    # (zero if the pause came before the first trade), never that plus the snapshot.
    for side in ("buy", "sell"):
        got = sample(
            samples, "mmradar_taker_volume_total", exchange=EXCHANGE, symbol=SYMBOL, side=side
        )
        want = float(venue.taker_volume(SYMBOL)[side])
        assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (side, got, want)
