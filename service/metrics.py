"""Every Prometheus metric of mmradar, defined in one place on an injected registry.

Flows (messages, resyncs, reconnects) are counters incremented on the hot path through
pre-bound label children. Market state is *read* from the books when Prometheus scrapes, by a
collector (:class:`MarketCollector`): the books maintain their measures incrementally, and a
scrape reads them in O(bands) per instrument, so nothing on the per-message path formats or
stores gauge values that nobody reads. Every label set of a configured symbol exists from
start-up. Market-state gauges read NaN while a book is not valid (its numbers are not trusted).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .model import BAND_BPS, RESYNC_REASONS, Side
from .pipeline import BAD_MESSAGE_REASONS, FeedPipeline

__all__ = ["RECONNECT_REASONS", "FeedMetrics", "MarketCollector", "Metrics", "window_label"]

#: ``mmradar_feed_reconnects_total{reason}`` label values.
RECONNECT_REASONS: tuple[str, ...] = (
    "error", "closed", "stale", "venue_closing", "gap", "max_age",
)  # fmt: skip

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PROCESSING_BUCKETS = (
    5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1,
)  # fmt: skip


def window_label(seconds: int) -> str:
    """Prometheus-style duration label: 30 → "30s", 300 → "5m", 3600 → "1h"."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


class FeedMetrics:
    """The hot-path counters of one feed, pre-bound; implements ``FeedObserver``."""

    __slots__ = ("_bad", "_latency", "_messages", "_resyncs")

    def __init__(self, metrics: Metrics, exchange: str, symbols: Sequence[str]) -> None:
        self._messages = metrics.feed_messages.labels(exchange)
        self._latency = metrics.feed_latency.labels(exchange)
        self._bad = {r: metrics.feed_bad_messages.labels(exchange, r) for r in BAD_MESSAGE_REASONS}
        self._resyncs = {
            (s, r): metrics.book_resyncs.labels(exchange, s, r)
            for s in symbols
            for r in RESYNC_REASONS
        }

    def message(self) -> None:
        self._messages.inc()

    def bad_message(self, reason: str) -> None:
        self._bad[reason].inc()

    def resync(self, symbol: str, reason: str) -> None:
        self._resyncs[(symbol, reason)].inc()

    def latency(self, seconds: float) -> None:
        self._latency.observe(seconds)


class Metrics:
    """All metric families, registered on ``registry``.

    Args:
        registry: where to register (a fresh one per test; one per process in the service).
        feeds: ``(exchange, symbols)`` of every configured feed, to create label sets upfront.
    """

    def __init__(
        self, registry: CollectorRegistry, feeds: Iterable[tuple[str, Sequence[str]]]
    ) -> None:
        self.registry = registry
        feeds = list(feeds)
        self.book_resyncs = Counter(
            "mmradar_book_resyncs",
            "Times a book was invalidated and resynced, by reason.",
            ["exchange", "symbol", "reason"],
            registry=registry,
        )
        self.feed_connected = Gauge(
            "mmradar_feed_connected",
            "1 while every websocket connection of the feed is up.",
            ["exchange"],
            registry=registry,
        )
        self.feed_connections = Gauge(
            "mmradar_feed_connections",
            "Websocket connections of the feed currently up.",
            ["exchange"],
            registry=registry,
        )
        self.feed_messages = Counter(
            "mmradar_feed_messages",
            "Websocket frames received.",
            ["exchange"],
            registry=registry,
        )
        self.feed_bad_messages = Counter(
            "mmradar_feed_bad_messages",
            "Frames dropped because they could not be used, by reason.",
            ["exchange", "reason"],
            registry=registry,
        )
        self.feed_reconnects = Counter(
            "mmradar_feed_reconnects",
            "Websocket reconnects, by reason.",
            ["exchange", "reason"],
            registry=registry,
        )
        self.feed_latency = Histogram(
            "mmradar_feed_latency_seconds",
            "Receive time minus venue event time of depth and trade messages.",
            ["exchange"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.processing = Histogram(
            "mmradar_processing_seconds",
            "Per-frame processing time (parse, book, signals).",
            buckets=PROCESSING_BUCKETS,
            registry=registry,
        )
        self.snapshot_requests = Counter(
            "mmradar_snapshot_requests",
            "REST depth snapshot requests, by result (ok, error, rate_limited).",
            ["exchange", "result"],
            registry=registry,
        )
        self.rest_weight_used = Gauge(
            "mmradar_rest_weight_used",
            "REST request weight spent in the current rolling minute.",
            ["exchange"],
            registry=registry,
        )
        for exchange, symbols in feeds:
            self.feed_connected.labels(exchange)
            self.feed_connections.labels(exchange)
            self.feed_messages.labels(exchange)
            self.feed_latency.labels(exchange)
            self.rest_weight_used.labels(exchange)
            for reason in BAD_MESSAGE_REASONS:
                self.feed_bad_messages.labels(exchange, reason)
            for reason in RECONNECT_REASONS:
                self.feed_reconnects.labels(exchange, reason)
            for result in ("ok", "error", "rate_limited"):
                self.snapshot_requests.labels(exchange, result)
            for symbol in symbols:
                for reason in RESYNC_REASONS:
                    self.book_resyncs.labels(exchange, symbol, reason)

    def feed(self, exchange: str, symbols: Sequence[str]) -> FeedMetrics:
        """The pre-bound hot-path counters of one feed."""
        return FeedMetrics(self, exchange, symbols)

    def register_pipelines(self, pipelines: Sequence[FeedPipeline]) -> MarketCollector:
        """Expose the market state of ``pipelines`` at scrape time."""
        collector = MarketCollector(pipelines)
        self.registry.register(collector)
        return collector


class MarketCollector(Collector):
    """Reads book validity and market state from the pipelines at each scrape."""

    def __init__(self, pipelines: Sequence[FeedPipeline]) -> None:
        self._pipelines = list(pipelines)

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # families are label-dependent; registered without auto-describe

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        es = ["exchange", "symbol"]
        valid = GaugeMetricFamily(
            "mmradar_book_valid", "1 while the local book is in sync with the venue.", labels=es
        )
        last = GaugeMetricFamily(
            "mmradar_book_last_update_timestamp_seconds",
            "Venue event time of the last update applied to the book.",
            labels=es,
        )
        levels = GaugeMetricFamily(
            "mmradar_book_levels", "Price levels in the book.", labels=[*es, "side"]
        )
        bid = GaugeMetricFamily("mmradar_best_bid_price", "Best bid price.", labels=es)
        ask = GaugeMetricFamily("mmradar_best_ask_price", "Best ask price.", labels=es)
        mid = GaugeMetricFamily(
            "mmradar_mid_price", "Mid price (best bid + best ask)/2.", labels=es
        )
        micro = GaugeMetricFamily(
            "mmradar_microprice",
            "Size-weighted mid (b*qa + a*qb)/(qa + qb): above mid when bids are heavier.",
            labels=es,
        )
        spread = GaugeMetricFamily(
            "mmradar_spread_bps", "Quoted spread (ask - bid)/mid in basis points.", labels=es
        )
        depth = GaugeMetricFamily(
            "mmradar_depth_notional",
            "Quote-currency notional of one side's levels within band_bps of mid.",
            labels=[*es, "side", "band_bps"],
        )
        imbalance = GaugeMetricFamily(
            "mmradar_depth_imbalance",
            "(bid - ask)/(bid + ask) depth notional within band_bps of mid; positive = bids heavy.",
            labels=[*es, "band_bps"],
        )
        complete = GaugeMetricFamily(
            "mmradar_book_complete_within_bps",
            "Distance from mid to the deepest level of the last snapshot: depth bands wider "
            "than this count only levels that changed since the snapshot.",
            labels=[*es, "side"],
        )
        taker = CounterMetricFamily(
            "mmradar_taker_volume",
            "Traded base-currency volume by aggressor side.",
            labels=[*es, "side"],
        )
        proxy = GaugeMetricFamily(
            "mmradar_dealer_inventory_proxy",
            "Estimated dealer shortness: decayed signed taker volume as a z-score "
            "(positive = dealers short = upward pressure).",
            labels=es,
        )
        vol = GaugeMetricFamily(
            "mmradar_realized_volatility_bps",
            "Realized volatility of 1 s mid log-returns over the window, in bps.",
            labels=[*es, "window"],
        )
        nan = math.nan
        for pipeline in self._pipelines:
            windows = [window_label(w) for w in _windows(pipeline)]
            for inst in pipeline.instruments.values():
                lv = [inst.exchange, inst.symbol]
                book = inst.book
                ok = inst.valid
                valid.add_metric(lv, 1.0 if ok else 0.0)
                last.add_metric(
                    lv, inst.sync.last_event_ns / 1e9 if inst.sync.last_event_ns else nan
                )
                levels.add_metric([*lv, "bid"], float(book.levels(Side.BID)))
                levels.add_metric([*lv, "ask"], float(book.levels(Side.ASK)))
                taker.add_metric([*lv, "buy"], inst.market.taker_buy)
                taker.add_metric([*lv, "sell"], inst.market.taker_sell)
                proxy.add_metric(lv, inst.market.inventory_z(inst.sync.last_event_ns or None))
                rv = inst.market.realized_volatility_bps() if ok else [nan] * len(windows)
                for w, value in zip(windows, rv, strict=True):
                    vol.add_metric([*lv, w], value)
                if ok:
                    bids, asks = book.depth_notional()
                    bid.add_metric(lv, book.best_bid_price())
                    ask.add_metric(lv, book.best_ask_price())
                    mid.add_metric(lv, book.mid())
                    micro.add_metric(lv, book.microprice())
                    spread.add_metric(lv, book.spread_bps())
                    complete_bid, complete_ask = book.complete_within_bps()
                    complete.add_metric([*lv, "bid"], complete_bid)
                    complete.add_metric([*lv, "ask"], complete_ask)
                else:
                    bids = asks = tuple(nan for _ in BAND_BPS)
                    for family in (bid, ask, mid, micro, spread):
                        family.add_metric(lv, nan)
                    complete.add_metric([*lv, "bid"], nan)
                    complete.add_metric([*lv, "ask"], nan)
                for band, b, a in zip(BAND_BPS, bids, asks, strict=True):
                    label = str(band)
                    depth.add_metric([*lv, "bid", label], b)
                    depth.add_metric([*lv, "ask", label], a)
                    total = b + a
                    imbalance.add_metric(
                        [*lv, label], (b - a) / total if total > 0.0 else (0.0 if ok else nan)
                    )
        yield from (valid, last, levels, complete, bid, ask, mid, micro, spread, depth, imbalance)
        yield from (taker, proxy, vol)


def _windows(pipeline: FeedPipeline) -> tuple[int, ...]:
    for inst in pipeline.instruments.values():
        return inst.market.params.volatility_windows_s
    return ()
