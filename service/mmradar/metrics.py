"""Every Prometheus metric of mmradar, defined in one place on an injected registry.

Flows (messages, resyncs, reconnects) are counters incremented on the hot path through
pre-bound label children. Market state is *read* from the books when Prometheus scrapes, by a
collector (:class:`MarketCollector`): the books maintain their measures incrementally, and a
scrape reads them in O(bands) per instrument, so nothing on the per-message path formats or
stores gauge values that nobody reads. Every label set of a configured symbol exists from
start-up. Market-state gauges read NaN while a book is not valid (its numbers are not trusted).

Signals (read from each instrument's :class:`~mmradar.signals.engine.SignalEngine` at scrape):
``mmradar_symptom_active`` / ``_score`` / ``_episodes_total`` for every (symptom, side) of
:data:`~mmradar.signals.episodes.SYMPTOM_SIDES`, ``mmradar_dealer_pressure`` and
``mmradar_dealer_inventory_proxy`` (docs/metrics.md), plus debug gauges: ``mmradar_signals_warm``,
``mmradar_dealer_pressure_component{component}``, ``mmradar_ofi{window}`` (base currency),
``mmradar_ofi_z{window}``, ``mmradar_trade_flow_imbalance{window}``,
``mmradar_signed_taker_volume_decayed{half_life}`` (base currency, buys positive),
``mmradar_depth_baseline_notional{side,band_bps}``, ``mmradar_spread_baseline_bps``,
``mmradar_quote_skew``, ``mmradar_depth_imbalance_smoothed``, ``mmradar_volatility_ratio``,
``mmradar_depth_to_fill_bps{side}`` and ``mmradar_tick_size``. Book-derived signal values read
NaN while the book is not valid; the trade-derived inventory measures keep counting; baselines
(learned from valid books) stay readable.

Cross-venue (instruments watched on two or more venues, :mod:`mmradar.signals.crossvenue`):
``mmradar_instrument_info{instrument,exchange,symbol}``,
``mmradar_cross_venue_mid_dislocation_bps{instrument,exchange,symbol}``,
``mmradar_consolidated_depth_notional{instrument,side,band_bps}``,
``mmradar_cross_venue_venues{instrument}``, and the ``venue_withdrawal`` rows of the symptom
families on each member venue's own ``{exchange,symbol}``.

Basis and flow lead-lag (instruments watched as spot and as a perpetual,
:mod:`mmradar.signals.hedge`, read through :meth:`HedgeView.read`):
``mmradar_basis_bps`` / ``_zscore`` / ``mmradar_basis_change_bps_per_second``
``{instrument,spot_exchange,perp_exchange}``, ``mmradar_flow_lead_seconds`` / ``_correlation``
``{instrument,leader,follower}``, ``mmradar_signed_taker_notional`` and
``mmradar_hedge_leg_info``, and the ``hedge_pressure`` rows (sides ``buy``, ``sell``) of the
symptom families on each leg's own ``{exchange,symbol}``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .clock import Clock
from .histograms import LATENCY_BUCKETS, PROCESSING_BUCKETS, FastHistogram
from .model import BAND_BPS, RESYNC_REASONS, Side
from .pipeline import BAD_MESSAGE_REASONS, FeedPipeline
from .signals.crossvenue import SYMPTOM as CROSS_VENUE_SYMPTOM
from .signals.crossvenue import CrossVenueView
from .signals.engine import PRESSURE_COMPONENTS, EngineReading
from .signals.hedge import SYMPTOM as HEDGE_SYMPTOM
from .signals.hedge import HedgeReading, HedgeView

__all__ = [
    "FLIGHT_RECORDING_REASONS",
    "LOOP_LAG_BUCKETS",
    "LOOP_MONITOR_INTERVAL_S",
    "RECONNECT_REASONS",
    "SNAPSHOT_RESULTS",
    "WEBHOOK_RESULTS",
    "FeedMetrics",
    "MarketCollector",
    "Metrics",
    "ShellMetrics",
    "window_label",
]

#: ``mmradar_feed_reconnects_total{reason}`` label values.
RECONNECT_REASONS: tuple[str, ...] = (
    "error", "closed", "stale", "venue_closing", "gap", "max_age",
)  # fmt: skip

#: ``mmradar_snapshot_requests_total{result}`` label values.
SNAPSHOT_RESULTS: tuple[str, ...] = ("ok", "error", "rate_limited")

#: ``mmradar_webhook_deliveries_total{result}`` label values (see :mod:`mmradar.webhooks`).
WEBHOOK_RESULTS: tuple[str, ...] = ("ok", "retry", "dropped")

#: ``mmradar_flight_recordings_total{reason}`` label values (see :mod:`mmradar.flight`).
FLIGHT_RECORDING_REASONS: tuple[str, ...] = ("episode", "resync", "skipped")

#: Seconds between two event-loop lag samples (app.py's loop monitor).
LOOP_MONITOR_INTERVAL_S = 0.25
#: ``mmradar_event_loop_lag_seconds`` buckets.
LOOP_LAG_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


def window_label(seconds: int) -> str:
    """Prometheus-style duration label: 30 → "30s", 300 → "5m", 3600 → "1h"."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def half_life_label(seconds: float) -> str:
    """:func:`window_label` for whole seconds, else ``"2.5s"``."""
    if seconds == int(seconds):
        return window_label(int(seconds))
    return f"{seconds:g}s"


def _buckets(hist: FastHistogram) -> list[tuple[str, float]]:
    bounds = [*hist.bounds, math.inf]
    return [
        (floatToGoString(b), float(c))  # type: ignore[no-untyped-call]
        for b, c in zip(bounds, hist.cumulative(), strict=True)
    ]


class _HotCollector(Collector):
    """Exports the per-frame flows the pipelines and the feed runners keep themselves."""

    def __init__(self, exchanges: Iterable[str]) -> None:
        self.exchanges = list(dict.fromkeys(exchanges))
        self.pipelines: dict[str, FeedPipeline] = {}
        self.processing = FastHistogram(PROCESSING_BUCKETS)

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        messages = CounterMetricFamily(
            "mmradar_feed_messages", "Websocket frames received.", labels=["exchange"]
        )
        latency = HistogramMetricFamily(
            "mmradar_feed_latency_seconds",
            "Receive time minus venue event time of depth and trade messages.",
            labels=["exchange"],
        )
        empty = FastHistogram(LATENCY_BUCKETS)
        for exchange in self.exchanges:
            pipeline = self.pipelines.get(exchange)
            messages.add_metric([exchange], float(pipeline.frames if pipeline else 0))
            hist = pipeline.latency if pipeline else empty
            latency.add_metric([exchange], _buckets(hist), hist.sum)
        processing = HistogramMetricFamily(
            "mmradar_processing_seconds", "Per-frame processing time (parse, book, signals)."
        )
        processing.add_metric([], _buckets(self.processing), self.processing.sum)
        yield from (messages, latency, processing)


class FeedMetrics:
    """The hot-path counters of one feed, pre-bound; implements ``FeedObserver``."""

    __slots__ = ("_bad", "_resyncs")

    def __init__(self, metrics: Metrics, exchange: str, symbols: Sequence[str]) -> None:
        self._bad = {r: metrics.feed_bad_messages.labels(exchange, r) for r in BAD_MESSAGE_REASONS}
        self._resyncs = {
            (s, r): metrics.book_resyncs.labels(exchange, s, r)
            for s in symbols
            for r in RESYNC_REASONS
        }

    def bad_message(self, reason: str) -> None:
        self._bad[reason].inc()

    def resync(self, symbol: str, reason: str) -> None:
        self._resyncs[(symbol, reason)].inc()


class ShellMetrics:
    """The counters and gauges of one exchange's feed shell, pre-bound; implements
    :class:`~mmradar.reporting.ShellObserver` (the feed runner's and the replayer's)."""

    __slots__ = (
        "_connected",
        "_connections",
        "_parked",
        "_parks",
        "_reconnects",
        "_snapshots",
        "_weight",
        "frame_processed",
    )

    def __init__(self, metrics: Metrics, exchange: str, symbols: Sequence[str]) -> None:
        self._reconnects = {
            r: metrics.feed_reconnects.labels(exchange, r) for r in RECONNECT_REASONS
        }
        self._snapshots = {
            r: metrics.snapshot_requests.labels(exchange, r) for r in SNAPSHOT_RESULTS
        }
        self._weight = metrics.rest_weight_used.labels(exchange)
        self._connected = metrics.feed_connected.labels(exchange)
        self._connections = metrics.feed_connections.labels(exchange)
        self._parked = {s: metrics.book_parked.labels(exchange, s) for s in symbols}
        self._parks = {s: metrics.book_parks.labels(exchange, s) for s in symbols}
        #: ``mmradar_processing_seconds`` (all feeds share it): one call per frame.
        self.frame_processed = metrics.processing.observe

    def reconnect(self, reason: str) -> None:
        self._reconnects[reason].inc()

    def snapshot_request(self, result: str) -> None:
        self._snapshots[result].inc()

    def rest_weight_used(self, weight: int) -> None:
        self._weight.set(weight)

    def connections(self, up: int, *, all_up: bool) -> None:
        self._connections.set(up)
        self._connected.set(1 if all_up else 0)

    def park(self, symbol: str) -> None:
        self._parked[symbol].set(1)
        self._parks[symbol].inc()

    def unpark(self, symbol: str) -> None:
        self._parked[symbol].set(0)


class Metrics:
    """All metric families, registered on ``registry``.

    Args:
        registry: where to register (a fresh one per test; one per process in the service).
        feeds: ``(exchange, symbols)`` of every configured feed, to create label sets upfront.
        webhook_formats: ``format`` of every configured webhook, likewise.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        feeds: Iterable[tuple[str, Sequence[str]]],
        *,
        webhook_formats: Iterable[str] = (),
    ) -> None:
        self.registry = registry
        feeds = list(feeds)
        self.book_resyncs = Counter(
            "mmradar_book_resyncs",
            "Times a book was invalidated and resynced, by reason.",
            ["exchange", "symbol", "reason"],
            registry=registry,
        )
        self.book_parked = Gauge(
            "mmradar_book_parked",
            "1 while the book's resyncs are parked: it failed to resync too many times in a row, "
            "so it is left invalid for a while instead of asking the venue again.",
            ["exchange", "symbol"],
            registry=registry,
        )
        self.book_parks = Counter(
            "mmradar_book_parks",
            "Times a book's resyncs were parked after too many failures in a row.",
            ["exchange", "symbol"],
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
        # The three per-frame flows are plain accumulators exported by a collector (below):
        # prometheus_client's metric objects take a lock per update, which costs more than
        # the rest of the per-frame path. Everything runs on the event-loop thread.
        self._hot = _HotCollector(exchange for exchange, _ in feeds)
        registry.register(self._hot)
        self.processing = self._hot.processing
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
        self.webhook_deliveries = Counter(
            "mmradar_webhook_deliveries",
            "Webhook deliveries by result: ok (delivered), retry (a failed attempt that is "
            "retried), dropped (given up: queue overflow, rejected, out of attempts or age).",
            ["format", "result"],
            registry=registry,
        )
        # The process and its event loop (docs/metrics.md "Process and event loop"): RSS,
        # open descriptors and CPU from prometheus_client's process collector (Linux /proc);
        # loop lag and task count from the service's loop monitor (app.py).
        ProcessCollector(registry=registry)
        self.event_loop_lag = Histogram(
            "mmradar_event_loop_lag_seconds",
            "How late the event loop woke a task asleep for the monitor's interval: time the "
            "loop was busy with other work (sampled every LOOP_MONITOR_INTERVAL_S).",
            buckets=LOOP_LAG_BUCKETS,
            registry=registry,
        )
        self.asyncio_tasks = Gauge(
            "mmradar_asyncio_tasks",
            "asyncio tasks alive in the service's event loop (sampled with the loop lag).",
            registry=registry,
        )
        self.flight_recordings = Counter(
            "mmradar_flight_recordings",
            "Flight-recorder files written, by what triggered them (episode, resync) or why "
            "one was not (skipped: the recorder was busy or over its bounds).",
            ["reason"],
            registry=registry,
        )
        for reason in FLIGHT_RECORDING_REASONS:
            self.flight_recordings.labels(reason)
        for fmt in webhook_formats:
            for result in WEBHOOK_RESULTS:
                self.webhook_deliveries.labels(fmt, result)
        for exchange, symbols in feeds:
            self.feed_connected.labels(exchange)
            self.feed_connections.labels(exchange)
            self.rest_weight_used.labels(exchange)
            for reason in BAD_MESSAGE_REASONS:
                self.feed_bad_messages.labels(exchange, reason)
            for reason in RECONNECT_REASONS:
                self.feed_reconnects.labels(exchange, reason)
            for result in SNAPSHOT_RESULTS:
                self.snapshot_requests.labels(exchange, result)
            for symbol in symbols:
                for reason in RESYNC_REASONS:
                    self.book_resyncs.labels(exchange, symbol, reason)
                self.book_parked.labels(exchange, symbol)
                self.book_parks.labels(exchange, symbol)

    def feed(self, exchange: str, symbols: Sequence[str]) -> FeedMetrics:
        """The pre-bound hot-path counters of one feed."""
        return FeedMetrics(self, exchange, symbols)

    def shell(self, exchange: str, symbols: Sequence[str]) -> ShellMetrics:
        """What the feed's shell (runner or replayer) reports, pre-bound."""
        return ShellMetrics(self, exchange, symbols)

    def register_pipelines(
        self,
        pipelines: Sequence[FeedPipeline],
        views: Sequence[CrossVenueView] = (),
        clock: Clock | None = None,
        *,
        hedge: Sequence[HedgeView] = (),
    ) -> MarketCollector:
        """Expose the market state of ``pipelines`` (and cross-venue ``views``) at scrape time.

        ``clock`` (the live service's) dates ``mmradar_book_last_depth_age_seconds`` at each
        scrape; without one (a replay, whose receive times are recorded ones) it reads NaN.

        Raises:
            ValueError: two pipelines of one exchange: the exchange-keyed series
                (``mmradar_feed_messages_total``, ``mmradar_feed_latency_seconds``) would show
                one of them only. Merge an exchange's ``[[feeds]]`` tables into one feed
                (:func:`mmradar.config.merge_feeds`).
        """
        hot = self._hot.pipelines
        for pipeline in pipelines:
            name = pipeline.venue.name
            if name in hot and hot[name] is not pipeline:
                raise ValueError(f"a second pipeline for exchange {name!r}: one feed per exchange")
            hot[name] = pipeline
        collector = MarketCollector(pipelines, views, clock, hedge=hedge)
        self.registry.register(collector)
        return collector


class MarketCollector(Collector):
    """Reads book validity and market state from the pipelines at each scrape."""

    def __init__(
        self,
        pipelines: Sequence[FeedPipeline],
        views: Sequence[CrossVenueView] = (),
        clock: Clock | None = None,
        *,
        hedge: Sequence[HedgeView] = (),
    ) -> None:
        self._pipelines = list(pipelines)
        self._views = list(views)
        self._hedge = list(hedge)
        self._clock = clock

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
        age = GaugeMetricFamily(
            "mmradar_book_last_depth_age_seconds",
            "Seconds since the last depth message for the book arrived (receive time, the "
            "service's wall clock); NaN before the first. Above stale_after_seconds the book is "
            "stale.",
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
            "Realized volatility of mid log-returns over the window, in bps.",
            labels=[*es, "window"],
        )
        sig = _SignalFamilies()
        nan = math.nan
        now_ns = self._clock.wall_ns() if self._clock is not None else 0
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
                recv_ns = inst.last_depth_recv_ns
                age.add_metric(
                    lv, max(0.0, (now_ns - recv_ns) / 1e9) if recv_ns and now_ns else nan
                )
                levels.add_metric([*lv, "bid"], float(book.levels(Side.BID)))
                levels.add_metric([*lv, "ask"], float(book.levels(Side.ASK)))
                taker.add_metric([*lv, "buy"], inst.market.taker_buy)
                taker.add_metric([*lv, "sell"], inst.market.taker_sell)
                reading = inst.engine.read()
                proxy.add_metric(lv, reading.inventory_proxy_z)
                sig.add(reading, lv)
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
        for view in self._views:
            sig.add_cross_venue(view)
        hedge = [view.read() for view in self._hedge]
        for hedge_reading in hedge:
            sig.add_hedge(hedge_reading)
        yield from (valid, last, age, levels, complete, bid, ask, mid, micro, spread, depth)
        yield imbalance
        yield from (taker, proxy, vol)
        yield from sig.families()
        if self._views:
            yield from _cross_venue_families(self._views)
        if hedge:
            yield from _hedge_families(hedge)


class _SignalFamilies:
    """The signal families of one scrape, filled instrument by instrument."""

    def __init__(self) -> None:
        es = ["exchange", "symbol"]
        ss = [*es, "symptom", "side"]
        self.active = GaugeMetricFamily(
            "mmradar_symptom_active", "1 while a symptom episode is firing.", labels=ss
        )
        self.score = GaugeMetricFamily(
            "mmradar_symptom_score",
            "The symptom detector's current score (z or ratio; higher = more anomalous).",
            labels=ss,
        )
        self.episodes = CounterMetricFamily(
            "mmradar_symptom_episodes", "Symptom episodes started.", labels=ss
        )
        self.pressure = GaugeMetricFamily(
            "mmradar_dealer_pressure",
            "Composite dealer-inventory pressure in [-1, 1]: positive = dealers short = upward.",
            labels=es,
        )
        self.component = GaugeMetricFamily(
            "mmradar_dealer_pressure_component",
            "Components of mmradar_dealer_pressure as z-scores (positive = upward pressure).",
            labels=[*es, "component"],
        )
        self.warm = GaugeMetricFamily(
            "mmradar_signals_warm",
            "1 once the detectors' warm-up after start-up or the last resync is over.",
            labels=es,
        )
        self.ofi = GaugeMetricFamily(
            "mmradar_ofi",
            "Order-flow imbalance (Cont-Kukanov-Stoikov) at the touch over the window, "
            "base currency; positive = buying pressure.",
            labels=[*es, "window"],
        )
        self.ofi_z = GaugeMetricFamily(
            "mmradar_ofi_z",
            "Order-flow imbalance over the window divided by its EWMA RMS.",
            labels=[*es, "window"],
        )
        self.tfi = GaugeMetricFamily(
            "mmradar_trade_flow_imbalance",
            "(taker buy - taker sell)/(buy + sell) volume over the window, in [-1, 1].",
            labels=[*es, "window"],
        )
        self.decayed = GaugeMetricFamily(
            "mmradar_signed_taker_volume_decayed",
            "Taker volume, buys positive, exponentially decayed with the half-life: the "
            "estimated dealer shortness in base currency.",
            labels=[*es, "half_life"],
        )
        self.baseline = GaugeMetricFamily(
            "mmradar_depth_baseline_notional",
            "Baseline (median of 1-minute medians) of mmradar_depth_notional.",
            labels=[*es, "side", "band_bps"],
        )
        self.spread_base = GaugeMetricFamily(
            "mmradar_spread_baseline_bps", "Baseline (median) quoted spread in bps.", labels=es
        )
        self.skew = GaugeMetricFamily(
            "mmradar_quote_skew",
            "(microprice - mid)/spread at the touch, time-averaged over the skew window; "
            "in [-0.5, 0.5], positive = bids strong.",
            labels=es,
        )
        self.di_fast = GaugeMetricFamily(
            "mmradar_depth_imbalance_smoothed",
            "Depth imbalance at the asymmetry band, EWMA-smoothed (DI_fast).",
            labels=es,
        )
        self.vr = GaugeMetricFamily(
            "mmradar_volatility_ratio",
            "Fast over slow realized volatility of mid returns.",
            labels=es,
        )
        self.fill = GaugeMetricFamily(
            "mmradar_depth_to_fill_bps",
            "Distance from mid to the level where cumulative notional reaches fill_notional.",
            labels=[*es, "side"],
        )
        self.tick = GaugeMetricFamily(
            "mmradar_tick_size",
            "Estimated price tick (smallest touch price step or spread seen).",
            labels=es,
        )
        self.removed = CounterMetricFamily(
            "mmradar_depth_removed_notional",
            "Quote notional of resting size removed from the side within the band: traded "
            "(at prices that printed, up to the printed size) or cancelled (the rest).",
            labels=[*es, "side", "band_bps", "cause"],
        )
        self.cancel_share = GaugeMetricFamily(
            "mmradar_depth_removed_cancel_share",
            "Of the side's resting size that went missing within the band over the removal "
            "window, the share cancelled rather than traded (NaN if none went missing).",
            labels=[*es, "side", "band_bps"],
        )

    def add(self, r: EngineReading, lv: list[str]) -> None:
        for m in r.symptoms:
            labels = [*lv, m.symptom, m.side]
            self.active.add_metric(labels, 1.0 if m.firing else 0.0)
            self.score.add_metric(labels, m.score)
            self.episodes.add_metric(labels, float(m.episodes))
        self.pressure.add_metric(lv, r.dealer_pressure)
        for name, z in zip(PRESSURE_COMPONENTS, r.pressure_components_z, strict=True):
            self.component.add_metric([*lv, name], z)
        self.warm.add_metric(lv, 1.0 if r.warm else 0.0)
        for w, ofi, ofi_z in zip(r.ofi_windows_s, r.ofi_base, r.ofi_z, strict=True):
            label = window_label(w)
            self.ofi.add_metric([*lv, label], ofi)
            self.ofi_z.add_metric([*lv, label], ofi_z)
        for w, tfi in zip(r.tfi_windows_s, r.trade_flow_imbalance, strict=True):
            self.tfi.add_metric([*lv, window_label(w)], tfi)
        for h, x in zip(r.half_lives_s, r.signed_taker_volume_decayed_base, strict=True):
            self.decayed.add_metric([*lv, half_life_label(h)], x)
        for band, b, a in zip(
            BAND_BPS, r.depth_baseline_bid_notional, r.depth_baseline_ask_notional, strict=True
        ):
            self.baseline.add_metric([*lv, "bid", str(band)], b)
            self.baseline.add_metric([*lv, "ask", str(band)], a)
        self.spread_base.add_metric(lv, r.spread_baseline_bps)
        self.skew.add_metric(lv, r.quote_skew)
        self.di_fast.add_metric(lv, r.depth_imbalance_smoothed)
        self.vr.add_metric(lv, r.volatility_ratio)
        self.fill.add_metric([*lv, "bid"], r.depth_to_fill_bid_bps)
        self.fill.add_metric([*lv, "ask"], r.depth_to_fill_ask_bps)
        self.tick.add_metric(lv, r.tick_size_price)
        sides = (
            ("bid", r.removed_traded_bid_notional, r.removed_cancelled_bid_notional,
             r.removed_cancel_share_bid),
            ("ask", r.removed_traded_ask_notional, r.removed_cancelled_ask_notional,
             r.removed_cancel_share_ask),
        )  # fmt: skip
        for side, traded, cancelled, share in sides:
            for band, t, c, sh in zip(BAND_BPS, traded, cancelled, share, strict=True):
                self.removed.add_metric([*lv, side, str(band), "trade"], t)
                self.removed.add_metric([*lv, side, str(band), "cancel"], c)
                self.cancel_share.add_metric([*lv, side, str(band)], sh)

    def add_cross_venue(self, view: CrossVenueView) -> None:
        for m in view.members:
            labels = [m.exchange, m.symbol, CROSS_VENUE_SYMPTOM, "both"]
            self.active.add_metric(labels, 1.0 if m.machine.firing else 0.0)
            self.score.add_metric(labels, m.score)
            self.episodes.add_metric(labels, float(m.machine.episodes))

    def add_hedge(self, reading: HedgeReading) -> None:
        for leg in reading.legs:
            for m in leg.symptoms:
                labels = [leg.exchange, leg.symbol, HEDGE_SYMPTOM, m.side]
                self.active.add_metric(labels, 1.0 if m.firing else 0.0)
                self.score.add_metric(labels, m.score)
                self.episodes.add_metric(labels, float(m.episodes))

    def families(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from (self.active, self.score, self.episodes, self.pressure, self.component)
        yield from (self.warm, self.ofi, self.ofi_z, self.tfi, self.decayed, self.baseline)
        yield from (self.spread_base, self.skew, self.di_fast, self.vr, self.fill, self.tick)
        yield from (self.removed, self.cancel_share)


def _cross_venue_families(views: Sequence[CrossVenueView]) -> Iterator[GaugeMetricFamily]:
    info = GaugeMetricFamily(
        "mmradar_instrument_info",
        "1 for every venue symbol compared across venues, naming its canonical instrument.",
        labels=["instrument", "exchange", "symbol"],
    )
    dislocation = GaugeMetricFamily(
        "mmradar_cross_venue_mid_dislocation_bps",
        "The venue's mid against the median mid of the valid venues of the instrument, in bps "
        "(NaN with fewer than two valid venues).",
        labels=["instrument", "exchange", "symbol"],
    )
    consolidated = GaugeMetricFamily(
        "mmradar_consolidated_depth_notional",
        "Depth notional within band_bps of each venue's mid, summed over the valid venues.",
        labels=["instrument", "side", "band_bps"],
    )
    venues = GaugeMetricFamily(
        "mmradar_cross_venue_venues",
        "Venues of the instrument whose book is valid right now.",
        labels=["instrument"],
    )
    for view in views:
        for m in view.members:
            lv = [view.instrument, m.exchange, m.symbol]
            info.add_metric(lv, 1.0)
            dislocation.add_metric(lv, m.dislocation_bps)
        for band, b, a in zip(BAND_BPS, view.bids, view.asks, strict=True):
            consolidated.add_metric([view.instrument, "bid", str(band)], b)
            consolidated.add_metric([view.instrument, "ask", str(band)], a)
        venues.add_metric([view.instrument], float(view.valid_venues))
    yield from (info, dislocation, consolidated, venues)


def _hedge_families(readings: Sequence[HedgeReading]) -> Iterator[GaugeMetricFamily]:
    pair = ["instrument", "spot_exchange", "perp_exchange"]
    basis = GaugeMetricFamily(
        "mmradar_basis_bps",
        "Perpetual mid minus spot mid over spot mid, in bps, both legs of one event-time second "
        "(NaN unless both books are valid and current).",
        labels=pair,
    )
    zscore = GaugeMetricFamily(
        "mmradar_basis_zscore",
        "Robust z of mmradar_basis_bps against its own baseline (median/MAD).",
        labels=pair,
    )
    change = GaugeMetricFamily(
        "mmradar_basis_change_bps_per_second",
        "Change of mmradar_basis_bps over basis_change_seconds, per second.",
        labels=pair,
    )
    leads = ["instrument", "leader", "follower"]
    lead = GaugeMetricFamily(
        "mmradar_flow_lead_seconds",
        "Lag of the peak cross-correlation of the two venues' 1-s signed taker notional, "
        "positive when the leader leads (NaN with too few active seconds).",
        labels=leads,
    )
    corr = GaugeMetricFamily(
        "mmradar_flow_lead_correlation",
        "The cross-correlation at that lag, over leadlag_window_seconds.",
        labels=leads,
    )
    legs = ["instrument", "exchange", "symbol", "kind"]
    info = GaugeMetricFamily(
        "mmradar_hedge_leg_info",
        "1 for every venue symbol that is a spot or perpetual leg of a hedge view; venue is "
        "its label in the basis and lead-lag series.",
        labels=[*legs, "venue"],
    )
    notional = GaugeMetricFamily(
        "mmradar_signed_taker_notional",
        "Buy-taker minus sell-taker notional of the last evaluated second (quote currency, "
        "base-unit sizes).",
        labels=legs,
    )
    for r in readings:
        for b in r.basis:
            lv = [r.instrument, b.spot_venue, b.perp_venue]
            basis.add_metric(lv, b.basis_bps)
            zscore.add_metric(lv, b.basis_zscore)
            change.add_metric(lv, b.basis_change_bps_per_second)
        for ll in r.lead_lag:
            lv = [r.instrument, ll.leader, ll.follower]
            lead.add_metric(lv, ll.lead_seconds)
            corr.add_metric(lv, ll.correlation)
        for leg in r.legs:
            lv = [r.instrument, leg.exchange, leg.symbol, leg.kind]
            info.add_metric([*lv, leg.venue], 1.0)
            notional.add_metric(lv, leg.signed_notional)
    yield from (basis, zscore, change, lead, corr, info, notional)


def _windows(pipeline: FeedPipeline) -> tuple[int, ...]:
    for inst in pipeline.instruments.values():
        return inst.market.params.volatility_windows_s
    return ()
