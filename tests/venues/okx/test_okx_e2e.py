"""End to end over real websockets on 127.0.0.1: the service against the embedded OKX venue.

The embedded venue speaks today's OKX protocol (REST bootstrap, ``seqId``/``prevSeqId``,
checksum 0 unless asked for real ones) and keeps its own ground truth; ``/metrics`` must end
equal to values recomputed from that truth, through gaps, checksum failures and reconnects.
"""

from __future__ import annotations

from .conftest import EXCHANGE, Running, Samples, sample

BTC, SOL = "BTC-USDT", "SOL-USDT"
REASONS = ("gap", "checksum", "crossed", "stale", "reconnect", "venue_reset")


def reconnects(samples: Samples) -> dict[str, float]:
    return {
        dict(labels)["reason"]: value
        for (name, labels), value in samples.items()
        if name == "mmradar_feed_reconnects_total" and ("exchange", EXCHANGE) in labels and value
    }


async def test_gap_and_checksum_failure_are_counted_and_healed(okx_service) -> None:
    running: Running = await okx_service(checksums=True)
    venue = running.venue
    await running.wait_for(
        lambda s: running.valid(s, BTC) and running.valid(s, SOL), what="initial sync"
    )

    # 1. A sequence gap: the venue applies one update to its truth but never sends it.
    venue.skip_next_update(BTC)
    await running.wait_for(
        lambda s: running.resyncs(s, BTC, "gap") == 1 and running.valid(s, BTC),
        what="gap resync",
    )
    # 2. A wrong (non-zero) checksum.
    venue.corrupt_next_checksum(BTC)
    await running.wait_for(
        lambda s: running.resyncs(s, BTC, "checksum") == 1 and running.valid(s, BTC),
        what="checksum resync",
    )
    # 3. Neither an idle update (seqId == prevSeqId) nor a maintenance reset
    #    (seqId < prevSeqId) is a gap.
    venue.send_idle_update(SOL)
    venue.reset_sequence(SOL)
    reset_at = venue.seq_id(SOL)
    await running.wait_for(
        lambda s: venue.seq_id(SOL) > 0 and venue.seq_id(SOL) < reset_at and running.valid(s, SOL),
        what="reset sequence",
    )
    # 4. A garbage frame is counted and changes nothing else.
    venue.send_raw("{not json")
    await running.wait_for(
        lambda s: sample(s, "mmradar_feed_bad_messages_total", exchange=EXCHANGE,
                         reason="malformed") == 1,
        what="malformed frame counted",
    )  # fmt: skip

    venue.pause()
    samples = await running.wait_for(running.in_sync(BTC, SOL), what="books equal to truth")
    for symbol in (BTC, SOL):
        running.assert_matches(samples, symbol)
    assert running.resyncs(samples, BTC, "gap") == 1
    assert running.resyncs(samples, BTC, "checksum") == 1
    for reason in REASONS:
        assert running.resyncs(samples, SOL, reason) == 0, reason
        if reason not in ("gap", "checksum"):
            assert running.resyncs(samples, BTC, reason) == 0, reason
    assert venue.stats.updates_skipped == 1
    assert reconnects(samples) == {}
    assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1
    # Two initial snapshots and one per resync, each on the first try.
    ok = sample(samples, "mmradar_snapshot_requests_total", exchange=EXCHANGE, result="ok")
    assert ok == venue.stats.rest_requests == 4


async def test_dropped_connection_reconnects_and_resyncs(okx_service) -> None:
    running: Running = await okx_service()
    venue = running.venue
    await running.wait_for(
        lambda s: (
            running.in_sync(BTC, SOL)(s)
            and all(v > 0 for sym in (BTC, SOL) for v in venue.taker_volume(sym).values())
        ),
        what="initial sync and trades both ways",
    )

    # Hold the venue so that nothing is lost in flight, drop the TCP connection, and let the
    # book stream again once the service has resubscribed.
    venue.pause()
    await running.wait_for(running.in_sync(BTC, SOL), what="caught up before the drop")
    venue.drop_connections()
    await running.wait_for(
        lambda s: (
            venue.stats.connections_accepted == 2
            and venue.subscribed("books", BTC) == venue.subscribed("books", SOL) == 1
            and venue.subscribed("trades", BTC) == venue.subscribed("trades", SOL) == 1
        ),
        what="resubscribed",
    )
    venue.resume()
    await running.wait_for(
        lambda s: all(
            running.resyncs(s, sym, "reconnect") == 1 and running.valid(s, sym)
            for sym in (BTC, SOL)
        ),
        what="reconnect resync",
    )
    venue.pause()
    samples = await running.wait_for(running.in_sync(BTC, SOL), what="books equal to truth")
    for symbol in (BTC, SOL):
        running.assert_matches(samples, symbol)
        for reason in REASONS:
            assert running.resyncs(samples, symbol, reason) == (reason == "reconnect"), reason
    assert sum(reconnects(samples).values()) == 1
    assert sample(samples, "mmradar_feed_connected", exchange=EXCHANGE) == 1


async def test_upgrade_notice_reconnects_promptly(okx_service) -> None:
    running: Running = await okx_service((BTC,))
    venue = running.venue
    await running.wait_for(running.in_sync(BTC), what="initial sync")
    venue.pause()  # nothing in flight while the service leaves (trades would be lost)
    venue.send_upgrade_notice()
    await running.wait_for(
        lambda s: (
            reconnects(s).get("venue_closing") == 1
            and venue.stats.connections_accepted == 2
            and venue.subscribed("books", BTC) == 1
        ),
        what="reconnect on 64008",
    )
    venue.resume()
    await running.wait_for(lambda s: running.valid(s, BTC), what="resync after 64008")
    venue.pause()
    samples = await running.wait_for(running.in_sync(BTC), what="book equal to truth")
    running.assert_matches(samples, BTC)
    assert running.resyncs(samples, BTC, "reconnect") == 1
    assert reconnects(samples) == {"venue_closing": 1}


async def test_stale_rest_snapshot_is_fetched_again_without_a_resync(okx_service) -> None:
    # Like OKX's cached endpoint lagging the stream, the first two REST books are older than
    # the first update the service buffered: each is simply fetched again.
    running: Running = await okx_service((SOL,), warmup_updates=5, stale_rest_answers=2)
    samples = await running.wait_for(running.in_sync(SOL), what="sync after stale snapshots")
    ok = sample(samples, "mmradar_snapshot_requests_total", exchange=EXCHANGE, result="ok")
    assert ok == running.venue.stats.rest_requests == 3
    for reason in REASONS:
        assert running.resyncs(samples, SOL, reason) == 0, reason
    running.venue.pause()
    samples = await running.wait_for(running.in_sync(SOL), what="book equal to truth")
    running.assert_matches(samples, SOL)


async def test_pushed_websocket_snapshot_needs_no_rest(okx_service) -> None:
    # Before the delisting OKX pushed the snapshot on subscribe: it is used as is.
    running: Running = await okx_service((BTC,), ws_snapshot=True, checksums=True)
    await running.wait_for(running.in_sync(BTC), what="sync from the pushed snapshot")
    running.venue.pause()
    samples = await running.wait_for(running.in_sync(BTC), what="book equal to truth")
    running.assert_matches(samples, BTC)
    assert running.venue.stats.rest_requests == 0
    for reason in REASONS:
        assert running.resyncs(samples, BTC, reason) == 0, reason
