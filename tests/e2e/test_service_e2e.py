"""End to end over real websockets on 127.0.0.1: the service against the embedded Binance venue.

The embedded venue speaks Binance's exact protocol and keeps its own ground-truth book (plain
dicts of price text → quantity text, written independently of the service's book). The
reference below recomputes every market-state measure from that truth with the definitions of
docs/metrics.md, and the service's ``/metrics`` must agree with it.
"""

from __future__ import annotations

import math

import pytest

from mmradar.embedded.binance import EmbeddedBinance
from mmradar.model import BAND_BPS

from .harness import Running, Samples, market_observed, market_reference, sample

SYMBOL = "BTCUSDT"


def reference(running: Running[EmbeddedBinance]) -> dict[str, float]:
    """Every expected value, from the venue's ground truth."""
    return market_reference(*running.venue.truth_book(SYMBOL), running.venue.taker_volume(SYMBOL))


def observed(samples: Samples, exchange: str) -> dict[str, float]:
    return market_observed(samples, exchange, SYMBOL)


def incomplete_keys(samples: Samples, exchange: str) -> set[str]:
    """Keys that depend on levels deeper than the venue's snapshot (docs/metrics.md).

    A venue's snapshot is depth-limited (USD-M: 1000 levels), so a client cannot know a deep
    level that has not changed since its snapshot; the venue's truth does. Bands wider than
    ``mmradar_book_complete_within_bps`` (and the level counts) are then a lower bound.
    """
    lv = {"exchange": exchange, "symbol": SYMBOL}
    complete = min(
        sample(samples, "mmradar_book_complete_within_bps", **lv, side=side)
        for side in ("bid", "ask")
    )
    keys = set()
    for band in BAND_BPS:
        if band > complete:
            keys |= {f"depth_bid_{band}", f"depth_ask_{band}", f"imbalance_{band}"}
    if keys:
        keys |= {"levels_bid", "levels_ask"}
    return keys


def assert_matches(running: Running, samples: Samples, exchange: str) -> set[str]:
    """Assert every value equals the reference; returns the keys only bounded (see above)."""
    ref = reference(running)
    got = observed(samples, exchange)
    assert sample(samples, "mmradar_book_valid", exchange=exchange, symbol=SYMBOL) == 1
    bounded = incomplete_keys(samples, exchange)
    for key in ("bid", "ask", "levels_bid", "levels_ask"):
        if key not in bounded:
            assert got[key] == ref[key], key
    for key, want in ref.items():
        if key in bounded:
            if not key.startswith("imbalance"):
                assert got[key] <= want * (1 + 1e-9), (key, got[key], want)
            continue
        assert math.isclose(got[key], want, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], want)
    return bounded


def in_sync(running: Running, exchange: str) -> object:
    def check(samples: Samples) -> bool:
        if sample(samples, "mmradar_book_valid", exchange=exchange, symbol=SYMBOL) != 1:
            return False
        ref = reference(running)
        got = observed(samples, exchange)
        keys = {"bid", "ask", "levels_bid", "levels_ask"} - incomplete_keys(samples, exchange)
        return all(got[k] == ref[k] for k in keys) and all(
            math.isclose(got[k], ref[k], rel_tol=1e-12) for k in ("taker_buy", "taker_sell")
        )

    return check


def resyncs(samples: Samples, exchange: str, reason: str) -> float:
    return sample(
        samples, "mmradar_book_resyncs_total", exchange=exchange, symbol=SYMBOL, reason=reason
    )


@pytest.mark.parametrize(("market", "exchange"), [("spot", "binance"), ("usdm", "binance-usdm")])
async def test_whole_capture_ends_exact(running_factory, market: str, exchange: str) -> None:
    running = await running_factory(market, exchange)
    await running.venue.wait_drained()
    samples = await running.wait_for(in_sync(running, exchange), what="book equal to truth")

    bounded = assert_matches(running, samples, exchange)
    # Spot's 5000-level snapshot covers the whole capture's book; USD-M's 1000 levels cover
    # only a few bps of BTCUSDT, so wider bands there are checked as lower bounds.
    assert not bounded if market == "spot" else bounded
    for reason in ("gap", "checksum", "crossed", "stale", "reconnect", "venue_reset"):
        assert resyncs(samples, exchange, reason) == 0, reason
    assert sample(samples, "mmradar_feed_connected", exchange=exchange) == 1
    assert sample(samples, "mmradar_feed_messages_total", exchange=exchange) >= (
        running.venue.stats.frames_sent
    )
    assert sample(samples, "mmradar_feed_latency_seconds_count", exchange=exchange) > 0
    assert sample(samples, "mmradar_processing_seconds_count") > 0
    assert sample(samples, "mmradar_snapshot_requests_total", exchange=exchange, result="ok") == 1
    # The whole capture covers minutes of event time: both volatility windows are populated.
    for window in ("30s", "5m"):
        rv = sample(
            samples, "mmradar_realized_volatility_bps", exchange=exchange, symbol=SYMBOL,
            window=window,
        )  # fmt: skip
        assert 0 < rv < 100, (window, rv)


async def test_gap_garbage_and_drop_are_counted_and_healed(running_factory) -> None:
    exchange = "binance"
    running = await running_factory("spot", exchange, speed=20.0)
    venue = running.venue

    def valid(samples: Samples) -> bool:
        return sample(samples, "mmradar_book_valid", exchange=exchange, symbol=SYMBOL) == 1

    await running.wait_for(valid, what="initial sync")

    # 1. A sequence gap: the venue applies one diff to its truth but never sends it.
    venue.skip_next_depth(SYMBOL)
    await running.wait_for(
        lambda s: resyncs(s, exchange, "gap") == 1 and valid(s), what="gap resync"
    )

    # 2. A garbage frame: counted as malformed, nothing else happens.
    venue.send_raw("{not json")
    await running.wait_for(
        lambda s: (
            sample(s, "mmradar_feed_bad_messages_total", exchange=exchange, reason="malformed") == 1
        ),
        what="malformed frame counted",
    )

    # 3. A dropped connection (TCP abort, no close frame), with the replay held so that no
    #    frame is lost in flight: reconnect, resync, and exact again.
    venue.pause()
    await running.wait_for(in_sync(running, exchange), what="caught up before the drop")
    venue.drop_connections()
    venue.resume()
    await running.wait_for(
        lambda s: resyncs(s, exchange, "reconnect") == 1 and valid(s), what="reconnect resync"
    )

    # Quiesce and compare everything with the truth.
    venue.pause()
    samples = await running.wait_for(in_sync(running, exchange), what="book equal to truth")
    assert not assert_matches(running, samples, exchange)
    assert resyncs(samples, exchange, "gap") == 1
    assert resyncs(samples, exchange, "reconnect") == 1
    for reason in ("checksum", "crossed", "stale", "venue_reset"):
        assert resyncs(samples, exchange, reason) == 0
    reconnects = sum(
        value
        for (name, labels), value in samples.items()
        if name == "mmradar_feed_reconnects_total" and ("exchange", exchange) in labels
    )
    assert reconnects == 1
    assert sample(samples, "mmradar_feed_connected", exchange=exchange) == 1
    assert sample(samples, "mmradar_snapshot_requests_total", exchange=exchange, result="ok") == 3
