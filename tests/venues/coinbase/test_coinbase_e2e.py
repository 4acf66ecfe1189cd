"""End to end over real websockets on 127.0.0.1: the service against the embedded Coinbase venue.

The embedded venue speaks Advanced Trade's protocol (per-connection ``sequence_num`` across
channels, stream snapshots, ``bid``/``offer``, trades whose ``side`` names the maker, the
per-session level2 product limit) and keeps its own ground truth; every market-state value the
service exports for each product must equal the value recomputed from that truth
(:func:`.harness.wait_in_sync`), through a lost message and a skipped sequence number (the
connection is replaced: its books resync, reason ``gap``), a dropped connection, and with more
products than one connection may carry.

Every comparison is made with the venue paused *and* the service caught up: the harness waits
for the whole comparison to hold (see :func:`.harness.in_sync` for why a partial check is not
enough), and resumes the venue after a reconnect only once the new connection has subscribed
every channel (trades released between its ``level2`` and ``market_trades`` subscriptions would
never reach the service, while the venue's truth counts them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from fakes.coinbase import EmbeddedCoinbase
from mmradar.venues.coinbase import MAX_PRODUCTS_PER_CONNECTION

from .harness import (
    EXCHANGE,
    Running,
    Samples,
    resyncs,
    sample,
    valid,
    wait_in_sync,
)

PRODUCTS = ("BTC-USD", "ETH-USD")
Starter = Callable[..., Awaitable[Running[EmbeddedCoinbase]]]
REASONS = ("gap", "checksum", "crossed", "stale", "reconnect", "venue_reset")
#: level2 and market_trades per product (one product per message), then heartbeats
SUBSCRIBES_PER_CONNECTION = 2 * len(PRODUCTS) + 1


def all_valid(products: tuple[str, ...]) -> Callable[[Samples], bool]:
    return lambda samples: all(valid(samples, p) for p in products)


def reconnects(samples: Samples, reason: str | None = None) -> float:
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "mmradar_feed_reconnects_total"
        and ("exchange", EXCHANGE) in labels
        and (reason is None or ("reason", reason) in labels)
    )


def assert_aggressors_consistent(running: Running[EmbeddedCoinbase]) -> None:
    """The venue's prints obey the real venue's rule — the wire ``side`` is the maker's: a
    taker BUY lifted the offer and reads ``SELL`` — and the truth is the aggressors' volume."""
    for product in running.venue.products:
        prints = running.venue.trades(product)
        assert {t.taker for t in prints} == {"BUY", "SELL"}, product
        for t in prints:
            if t.taker == "BUY":
                assert t.side == "SELL" and Decimal(t.price) >= Decimal(t.best_ask), t
            else:
                assert t.side == "BUY" and Decimal(t.price) <= Decimal(t.best_bid), t
        buys = sum((Decimal(t.size) for t in prints if t.side == "SELL"), Decimal(0))
        sells = sum((Decimal(t.size) for t in prints if t.side == "BUY"), Decimal(0))
        assert running.venue.taker_volume(product) == {"buy": buys, "sell": sells}
        assert buys != sells  # a side swap would be visible


async def reconnected(
    running: Running[EmbeddedCoinbase], accepted: int, what: str, messages: int | None = None
) -> Samples:
    """Wait until the venue has accepted ``accepted`` connections, they have sent their subscribe
    messages (``messages`` in all; by default :data:`SUBSCRIBES_PER_CONNECTION` each), and every
    book is valid again."""
    venue = running.venue
    if messages is None:
        messages = SUBSCRIBES_PER_CONNECTION * accepted

    def ready(samples: Samples) -> bool:
        stats = venue.stats
        return (
            stats.connections_accepted == accepted
            and stats.client_messages == messages
            and all_valid(venue.products)(samples)
        )

    return await running.wait_for(ready, what=what)


async def test_books_and_taker_volumes_equal_the_truth(coinbase_service: Starter) -> None:
    running = await coinbase_service(venue_options={"rate_hz": 1000.0, "steps": 2500})
    await running.venue.wait_done()
    samples = await wait_in_sync(running, "books equal to truth")

    assert_aggressors_consistent(running)
    for product in PRODUCTS:
        for reason in REASONS:
            assert resyncs(samples, product, reason) == 0, (product, reason)
    assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1
    assert reconnects(samples) == 0
    stats = running.venue.stats
    assert stats.connections_accepted == 1
    assert stats.client_messages == SUBSCRIBES_PER_CONNECTION
    assert stats.snapshots_sent == len(PRODUCTS)
    assert sample(samples, "mmradar_feed_messages_total", exchange=EXCHANGE) >= stats.frames_sent
    for reason in ("malformed", "unknown", "unknown_symbol", "venue_error"):
        assert (
            sample(samples, "mmradar_feed_bad_messages_total", exchange=EXCHANGE, reason=reason)
            == 0
        ), reason
    assert sample(samples, "mmradar_feed_latency_seconds_count", exchange=EXCHANGE) > 0


async def test_lost_message_reconnects_the_connection_then_exact(
    coinbase_service: Starter,
) -> None:
    running = await coinbase_service(venue_options={"rate_hz": 500.0})
    venue = running.venue
    await running.wait_for(all_valid(PRODUCTS), what="initial sync")
    await venue.wait_steps(200)

    # 1. One BTC-USD update is lost in transit and the venue holds right after it: the next
    #    message (a heartbeat) shows the connection's sequence_num jump. Every book of the
    #    connection (ETH-USD included) is invalidated and the connection is replaced; its
    #    subscribe messages bring fresh snapshots. Nothing is unsubscribed.
    venue.lose_next_update("BTC-USD", pause=True)
    samples = await reconnected(running, 2, "gap: reconnect and resubscribe")
    assert all(resyncs(samples, p, "gap") == 1 for p in PRODUCTS)
    assert reconnects(samples, "gap") == 1
    assert venue.stats.updates_lost == 1
    assert venue.stats.snapshots_sent == 2 * len(PRODUCTS)
    venue.resume()
    await venue.wait_steps(venue.stats.steps + 200)

    # 2. A garbage frame is counted as malformed; nothing else happens.
    venue.send_raw("{not json")
    await running.wait_for(
        lambda s: (
            sample(s, "mmradar_feed_bad_messages_total", exchange=EXCHANGE, reason="malformed") == 1
        ),
        what="malformed frame counted",
    )

    # 3. A skipped number with nothing lost is still a gap (the client cannot know).
    venue.pause()
    venue.skip_sequence()
    await reconnected(running, 3, "second gap reconnect")
    venue.resume()
    await venue.wait_steps(venue.stats.steps + 200)

    venue.pause()
    samples = await wait_in_sync(running, "books equal to truth")
    assert_aggressors_consistent(running)
    for product in PRODUCTS:
        assert resyncs(samples, product, "gap") == 2
        for reason in ("checksum", "crossed", "stale", "reconnect", "venue_reset"):
            assert resyncs(samples, product, reason) == 0, (product, reason)
    assert reconnects(samples) == reconnects(samples, "gap") == 2
    assert venue.stats.connections_accepted == 3
    # No unsubscribe ever: the subscribe messages of three connections, none refused.
    assert venue.stats.client_messages == 3 * SUBSCRIBES_PER_CONNECTION
    assert venue.stats.client_messages_refused == 0
    venue_errors = sample(
        samples, "mmradar_feed_bad_messages_total", exchange=EXCHANGE, reason="venue_error"
    )
    assert venue_errors == 0


async def test_dropped_connection_reconnects_and_resyncs(coinbase_service: Starter) -> None:
    running = await coinbase_service(venue_options={"rate_hz": 500.0})
    venue = running.venue
    await running.wait_for(all_valid(PRODUCTS), what="initial sync")
    await venue.wait_steps(300)

    # Hold the generator so nothing is lost while the connection is down, then abort the TCP
    # connection (no close frame).
    venue.pause()
    await wait_in_sync(running, "caught up before the drop")
    venue.drop_connections()
    samples = await reconnected(running, 2, "reconnect resync")
    assert all(resyncs(samples, p, "reconnect") == 1 for p in PRODUCTS)
    venue.resume()
    await venue.wait_steps(venue.stats.steps + 300)

    venue.pause()
    samples = await wait_in_sync(running, "books equal to truth")
    # The market_trades snapshot re-sent on the new connection repeats old trades: the taker
    # volumes still equal the venue's prints exactly (checked by wait_in_sync and here).
    assert_aggressors_consistent(running)
    assert reconnects(samples) == 1
    for product in PRODUCTS:
        assert resyncs(samples, product, "reconnect") == 1
        for reason in ("gap", "checksum", "crossed", "stale", "venue_reset"):
            assert resyncs(samples, product, reason) == 0, (product, reason)
    assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1
    assert venue.stats.connections_accepted == 2


async def test_products_beyond_one_connection_spread_and_gap_reconnects_only_its_own(
    coinbase_service: Starter,
) -> None:
    # One more product than a connection carries; the venue refuses more than 16 level2
    # products on one connection, as Coinbase was reported to (max_l2_products).
    products = tuple(f"P{i:02d}-USD" for i in range(MAX_PRODUCTS_PER_CONNECTION + 2))
    running = await coinbase_service(
        products=products, venue_options={"rate_hz": 500.0, "paused": True}
    )
    venue = running.venue
    first, second = products[:MAX_PRODUCTS_PER_CONNECTION], products[MAX_PRODUCTS_PER_CONNECTION:]
    # one product per subscribe message: level2 and market_trades each, then heartbeats
    subscribes_first, subscribes_second = 2 * len(first) + 1, 2 * len(second) + 1
    await reconnected(
        running, 2, "every book valid on two connections", subscribes_first + subscribes_second
    )
    venue.resume()  # once both connections carry their trades too
    await venue.wait_steps(500)
    venue.pause()
    await wait_in_sync(running, "books equal to truth")
    assert venue.stats.l2_subscribes_refused == 0
    assert venue.stats.connections_refused == 0

    # A gap on the second connection replaces that connection only.
    venue.resume()
    venue.lose_next_update(second[-1], pause=True)
    samples = await reconnected(
        running, 3, "the second connection replaced", subscribes_first + 2 * subscribes_second
    )
    assert all(resyncs(samples, p, "gap") == 1 for p in second)
    assert all(resyncs(samples, p, "gap") == 0 for p in first)
    assert reconnects(samples, "gap") == 1
    venue.resume()
    await venue.wait_steps(venue.stats.steps + 300)

    venue.pause()
    samples = await wait_in_sync(running, "books equal to truth after the gap")
    for product in products:
        for reason in ("checksum", "crossed", "stale", "reconnect", "venue_reset"):
            assert resyncs(samples, product, reason) == 0, (product, reason)
    assert sample(samples, "mmradar_feed_connections", exchange=EXCHANGE) == 2
    assert venue.stats.l2_subscribes_refused == 0
    assert venue.stats.client_messages_refused == 0
