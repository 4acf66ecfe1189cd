"""End to end over real websockets on 127.0.0.1: the service against the embedded Coinbase venue.

The embedded venue speaks Advanced Trade's protocol (per-connection ``sequence_num`` across
channels, stream snapshots, ``bid``/``offer``, taker-side trades) and keeps its own ground
truth; every market-state value the service exports for each product must equal the value
recomputed from that truth (:func:`.harness.assert_matches`), through a lost message (a
sequence gap: every book of the connection resyncs) and a dropped connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from .harness import (
    EXCHANGE,
    Running,
    Samples,
    assert_matches,
    in_sync,
    resyncs,
    sample,
    valid,
)

PRODUCTS = ("BTC-USD", "ETH-USD")
Starter = Callable[..., Awaitable[Running]]
REASONS = ("gap", "checksum", "crossed", "stale", "reconnect", "venue_reset")


def all_valid(samples: Samples) -> bool:
    return all(valid(samples, p) for p in PRODUCTS)


def reconnects(samples: Samples) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "mmradar_feed_reconnects_total" and ("exchange", EXCHANGE) in labels
    )


def assert_aggressors_consistent(running: Running) -> None:
    """A taker BUY lifted the offer (printed at or above it), a taker SELL hit the bid; the
    service's per-side volumes are exactly the venue's BUY and SELL prints."""
    for product in PRODUCTS:
        prints = running.venue.trades(product)
        assert {t.side for t in prints} == {"BUY", "SELL"}, product
        for t in prints:
            if t.side == "BUY":
                assert Decimal(t.price) >= Decimal(t.best_ask), t
            else:
                assert Decimal(t.price) <= Decimal(t.best_bid), t
        buys = sum((Decimal(t.size) for t in prints if t.side == "BUY"), Decimal(0))
        sells = sum((Decimal(t.size) for t in prints if t.side == "SELL"), Decimal(0))
        assert running.venue.taker_volume(product) == {"buy": buys, "sell": sells}


async def test_books_and_taker_volumes_equal_the_truth(coinbase_service: Starter) -> None:
    running: Running = await coinbase_service(venue_options={"rate_hz": 1000.0, "steps": 2500})
    await running.venue.wait_done()
    samples = await running.wait_for(in_sync(running.venue), what="books equal to truth")

    assert_matches(samples, running.venue)
    assert_aggressors_consistent(running)
    for product in PRODUCTS:
        for reason in REASONS:
            assert resyncs(samples, product, reason) == 0, (product, reason)
    assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1
    assert reconnects(samples) == 0
    stats = running.venue.stats
    assert stats.connections_accepted == 1
    assert stats.client_messages == 3  # level2, market_trades, heartbeats: batched products
    assert stats.snapshots_sent == len(PRODUCTS)
    assert sample(samples, "mmradar_feed_messages_total", exchange=EXCHANGE) >= stats.frames_sent
    for reason in ("malformed", "unknown", "unknown_symbol", "venue_error"):
        assert (
            sample(samples, "mmradar_feed_bad_messages_total", exchange=EXCHANGE, reason=reason)
            == 0
        ), reason
    assert sample(samples, "mmradar_feed_latency_seconds_count", exchange=EXCHANGE) > 0


async def test_lost_message_resyncs_every_book_then_exact(coinbase_service: Starter) -> None:
    running: Running = await coinbase_service(venue_options={"rate_hz": 500.0})
    venue = running.venue
    await running.wait_for(all_valid, what="initial sync")
    await venue.wait_steps(200)

    # 1. One BTC-USD update is lost in transit: the connection's sequence_num jumps, so every
    #    book of the feed (ETH-USD included) resyncs by unsubscribe + subscribe.
    venue.lose_next_update("BTC-USD")
    await running.wait_for(
        lambda s: all(resyncs(s, p, "gap") == 1 for p in PRODUCTS) and all_valid(s),
        what="gap resync of both books",
    )
    assert venue.stats.updates_lost == 1
    assert venue.stats.snapshots_sent == 2 * len(PRODUCTS)
    # One unsubscribe and one subscribe carrying both products (resubscribe_many).
    assert venue.stats.client_messages == 3 + 2

    # 2. A garbage frame is counted as malformed; nothing else happens.
    venue.send_raw("{not json")
    await running.wait_for(
        lambda s: (
            sample(s, "mmradar_feed_bad_messages_total", exchange=EXCHANGE, reason="malformed") == 1
        ),
        what="malformed frame counted",
    )

    # 3. A skipped number with nothing lost is still a gap (the client cannot know). The feed
    #    keeps its frames within the venue's 8 messages/s itself.
    venue.skip_sequence()
    await running.wait_for(
        lambda s: all(resyncs(s, p, "gap") == 2 for p in PRODUCTS) and all_valid(s),
        what="second gap resync",
    )

    venue.pause()
    samples = await running.wait_for(in_sync(venue), what="books equal to truth")
    assert_matches(samples, venue)
    assert_aggressors_consistent(running)
    for product in PRODUCTS:
        assert resyncs(samples, product, "gap") == 2
        for reason in ("checksum", "crossed", "stale", "reconnect", "venue_reset"):
            assert resyncs(samples, product, reason) == 0, (product, reason)
    assert reconnects(samples) == 0
    assert venue.stats.connections_accepted == 1
    assert venue.stats.client_messages_refused == 0
    venue_errors = sample(
        samples, "mmradar_feed_bad_messages_total", exchange=EXCHANGE, reason="venue_error"
    )
    assert venue_errors == 0


async def test_dropped_connection_reconnects_and_resyncs(coinbase_service: Starter) -> None:
    running: Running = await coinbase_service(venue_options={"rate_hz": 500.0})
    venue = running.venue
    await running.wait_for(all_valid, what="initial sync")
    await venue.wait_steps(300)

    # Hold the generator so nothing is lost while the connection is down, then abort the TCP
    # connection (no close frame).
    venue.pause()
    await running.wait_for(in_sync(venue), what="caught up before the drop")
    venue.drop_connections()
    venue.resume()
    await running.wait_for(
        lambda s: all(resyncs(s, p, "reconnect") == 1 for p in PRODUCTS) and all_valid(s),
        what="reconnect resync",
    )
    await venue.wait_steps(venue.stats.steps + 300)

    venue.pause()
    samples = await running.wait_for(in_sync(venue), what="books equal to truth")
    assert_matches(samples, venue)
    # The market_trades snapshot re-sent on the new connection repeats old trades: the taker
    # volumes still equal the venue's prints exactly (checked by in_sync and here).
    assert_aggressors_consistent(running)
    assert reconnects(samples) == 1
    for product in PRODUCTS:
        assert resyncs(samples, product, "reconnect") == 1
        for reason in ("gap", "checksum", "crossed", "stale", "venue_reset"):
            assert resyncs(samples, product, reason) == 0, (product, reason)
    assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1
    assert venue.stats.connections_accepted == 2
