"""Pulled versus traded (mmradar.signals.removal), through the real pipeline.

Hand-written, protocol-exact Binance spot frames drive a :class:`FeedPipeline`: the book counts
every change of resting size inside its bands, the engine matches prints against the decrease
at their price, and ``mmradar_depth_removed_notional_total`` splits what went into ``trade``
(at prices that printed, up to the printed size) and ``cancel`` (the rest).
"""

from __future__ import annotations

import math

import orjson
import pytest
from prometheus_client import CollectorRegistry

from mmradar.book.sync import FetchSnapshot
from mmradar.metrics import Metrics
from mmradar.pipeline import FeedPipeline
from mmradar.signals.engine import SignalEngine
from mmradar.signals.removal import cause_of
from mmradar.venues import make_venue
from mmradar.venues.base import FrameParser

SYMBOL = "TESTUSDT"
T0_MS = 1_723_161_600_000
BIDS = ["99.99", "99.98", "99.97", "99.96", "99.95"]
ASKS = ["100.01", "100.02", "100.03", "100.04", "100.05"]


class Stream:
    """A Binance spot stream written by hand: depth diffs and trades at chosen times."""

    def __init__(self) -> None:
        self.pipeline = FeedPipeline(make_venue("binance"), [SYMBOL])
        self.parser: FrameParser = self.pipeline.new_parser()
        self.update_id = 100
        snapshot = orjson.dumps(
            {
                "lastUpdateId": self.update_id,
                "bids": [[p, "1.00000000"] for p in BIDS],
                "asks": [[p, "1.00000000"] for p in ASKS],
            }
        )
        commands = self.depth(0.05, bids=[["99.90", "1.0"]])
        assert any(isinstance(c, FetchSnapshot) for c in commands)
        self.pipeline.on_snapshot(SYMBOL, snapshot, T0_MS * 1_000_000)
        self.depth(0.1, bids=[["99.91", "1.0"]])
        assert self.engine.live

    @property
    def engine(self) -> SignalEngine:
        return self.pipeline.instruments[SYMBOL].engine

    def depth(
        self,
        at_s: float,
        bids: list[list[str]] | None = None,
        asks: list[list[str]] | None = None,
        first: int | None = None,
    ) -> list[object]:
        ms = T0_MS + round(at_s * 1000)
        if first is None:
            first = self.update_id + 1
            self.update_id += 1
        data = {
            "e": "depthUpdate", "E": ms, "s": SYMBOL, "U": first, "u": self.update_id,
            "b": bids or [], "a": asks or [],
        }  # fmt: skip
        raw = orjson.dumps({"stream": "testusdt@depth@100ms", "data": data})
        return list(self.pipeline.on_frame(self.parser, raw, ms * 1_000_000))

    def trade(self, at_s: float, price: str, qty: str, buy: bool) -> None:
        ms = T0_MS + round(at_s * 1000)
        data = {
            "e": "trade", "E": ms, "s": SYMBOL, "t": 1, "p": price, "q": qty, "T": ms,
            "m": not buy, "M": True,
        }  # fmt: skip
        raw = orjson.dumps({"stream": "testusdt@trade", "data": data})
        self.pipeline.on_frame(self.parser, raw, ms * 1_000_000)


def test_decreases_split_into_traded_up_to_the_print_and_cancelled() -> None:
    s = Stream()
    s.depth(1.05)  # the stat tick of second 1 places the bands around mid 100
    s.trade(1.2, "100.01", "0.4", buy=True)  # a taker lifts 0.4 of the best ask
    # the diff of that window: the ask at 100.01 lost 0.4 (traded), 100.03 was cancelled,
    # a bid was added
    s.depth(1.3, asks=[["100.01", "0.6"], ["100.03", "0"]], bids=[["99.99", "1.5"]])
    s.trade(1.35, "100.02", "0.3", buy=True)  # printed, but the level was refilled ...
    s.depth(1.4, asks=[["100.02", "1.2"]])  # ... in the same batch: no decrease to explain
    s.depth(1.5, asks=[["100.02", "0.9"]])  # a later decrease is not that print's: cancelled
    s.depth(2.05)  # closes second 1
    engine = s.engine
    for band in range(4):  # every level is within 10 bps: the same in every band
        traded, cancelled = engine.removed_notional(False, band)
        assert traded == pytest.approx(0.4 * 100.01)
        assert cancelled == pytest.approx(1.0 * 100.03 + 0.3 * 100.02)
        assert engine.removed_notional(True, band) == (0.0, 0.0)
    t, c, a = engine.removal.window_flows(False, 0)
    assert (t, c, a) == pytest.approx((0.4 * 100.01, 1.0 * 100.03 + 0.3 * 100.02, 0.2 * 100.02))
    # (the window starts at the first stat tick: the bid added at 0.1 s is before it)
    assert engine.removal.window_flows(True, 0) == pytest.approx((0.0, 0.0, 0.5 * 99.99))
    # what went missing from the asks: 0.4 traded, 1.1 cancelled net of the 0.2 refill
    share = engine.removed_cancel_share(False, 0)
    assert share == pytest.approx(
        (1.3 * 100.0 - 0.2 * 100.0) / (1.1 * 100.0 + 0.4 * 100.0), rel=1e-3
    )
    assert cause_of(share) == "cancel"  # ≥ 2/3 of what went missing was cancelled
    assert math.isnan(engine.removed_cancel_share(True, 0))  # the bids only grew


def test_liquidity_taken_by_takers_is_trade_led() -> None:
    s = Stream()
    s.depth(1.05)
    s.trade(1.2, "100.01", "1.0", buy=True)  # a taker takes the whole best ask
    s.trade(1.2, "100.02", "0.5", buy=True)  # and half of the next
    s.depth(1.3, asks=[["100.01", "0"], ["100.02", "0.5"]])
    s.depth(2.05)
    assert s.engine.removed_notional(False, 0) == pytest.approx((100.01 + 0.5 * 100.02, 0.0))
    share = s.engine.removed_cancel_share(False, 0)
    assert share == 0.0 and cause_of(share) == "trade"


def test_a_print_matches_only_the_first_depth_message_after_it() -> None:
    s = Stream()
    s.depth(1.05)
    s.trade(1.2, "99.99", "0.5", buy=False)  # a taker hits the best bid
    s.depth(1.3, asks=[["100.05", "2.0"]])  # the bid is untouched in this batch
    s.depth(1.4, bids=[["99.99", "0.5"]])  # this decrease is a cancellation
    s.depth(2.05)
    assert s.engine.removed_notional(True, 0) == pytest.approx((0.0, 0.5 * 99.99))


def test_a_print_that_arrives_after_its_depth_update_counts_as_cancelled() -> None:
    """The documented limit: the attribution needs the print no later than the diff."""
    s = Stream()
    s.depth(1.05)
    s.depth(1.3, asks=[["100.01", "0.6"]])
    s.trade(1.25, "100.01", "0.4", buy=True)  # published after the diff that showed it
    s.depth(2.05)
    assert s.engine.removed_notional(False, 0) == pytest.approx((0.0, 0.4 * 100.01))


def test_a_dropped_duplicate_and_a_resync_do_not_count() -> None:
    s = Stream()
    s.depth(1.05)
    s.trade(1.2, "100.01", "0.4", buy=True)
    before = s.update_id
    # a duplicate of an older message (u below the last applied): dropped by the synchroniser,
    # so its "decrease" is neither counted nor matched
    s.depth(1.3, asks=[["100.01", "0.6"], ["100.02", "0"]], first=before - 1)
    s.update_id = before
    # the print still waits for the first applied diff after it: this one shows it
    s.depth(1.35, asks=[["100.01", "0.6"]])
    s.depth(2.05)
    assert s.engine.removed_notional(False, 0) == pytest.approx((0.4 * 100.01, 0.0))
    totals = s.engine.removed_notional(False, 0)
    s.pipeline.invalidate([SYMBOL], "reconnect")  # totals survive a resync, never go down
    assert s.engine.removed_notional(False, 0) == totals


def test_metrics_export_every_side_band_and_cause_from_start_up() -> None:
    s = Stream()
    registry = CollectorRegistry()
    metrics = Metrics(registry, [("binance", [SYMBOL])])
    metrics.register_pipelines([s.pipeline])
    labels = {"exchange": "binance", "symbol": SYMBOL}
    for side in ("bid", "ask"):
        for band in ("10", "50", "100", "200"):
            for cause in ("trade", "cancel"):
                value = registry.get_sample_value(
                    "mmradar_depth_removed_notional_total",
                    {**labels, "side": side, "band_bps": band, "cause": cause},
                )
                assert value == 0.0
            share = registry.get_sample_value(
                "mmradar_depth_removed_cancel_share", {**labels, "side": side, "band_bps": band}
            )
            assert share is not None and math.isnan(share)
    s.depth(1.05)
    s.depth(1.3, asks=[["100.03", "0"]])
    s.depth(2.05)
    cancelled = registry.get_sample_value(
        "mmradar_depth_removed_notional_total",
        {**labels, "side": "ask", "band_bps": "10", "cause": "cancel"},
    )
    assert cancelled == pytest.approx(100.03)
    share = registry.get_sample_value(
        "mmradar_depth_removed_cancel_share", {**labels, "side": "ask", "band_bps": "10"}
    )
    assert share == 1.0
