"""The composition root: settings → venues, pipelines, metrics, HTTP server, feed runners.

Everything runs under one ``asyncio.TaskGroup``; :meth:`Service.run` returns when ``stop`` is
set (SIGINT/SIGTERM in the command line) after cancelling every task and closing every socket.

One feed per exchange: the ``[[feeds]]`` tables of one exchange are merged
(:func:`~mmradar.config.merge_feeds`) into one pipeline and one feed runner, so its
connections, its REST weight budget and every exchange-keyed metric cover all of them.

Contract sizes (:mod:`mmradar.contracts`): a feed whose venue publishes contracts (OKX
derivatives) first fetches the venue's instrument metadata within its REST budget
(:func:`load_contracts`) and only then opens its connections, so no frame is ever read in the
wrong units. A symbol whose contract value cannot be known stops the service with
:class:`~mmradar.errors.ContractError` (a configuration error: exit code 2) — when the service
is built for kinds the venue module refuses, at start-up for what the venue's answer leaves
unknown. Transient failures (network, HTTP errors, rate limits) are retried with back-off.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from . import __version__
from .clock import ShellClock, SystemClock
from .config import FeedSettings, Settings, merge_feeds
from .errors import ContractError, MalformedMessage, RateLimited, SnapshotError
from .feed import FeedRunner, FrameRecorder, ResyncPolicy, backoff
from .flight import FlightRecorder, ResyncTap, TeeRecorder
from .fmt import iso_utc
from .http import MetricsServer
from .memory import heap_trimmer, trim_heap_forever
from .metrics import LOOP_MONITOR_INTERVAL_S, Metrics
from .pipeline import FeedPipeline
from .signals.episodes import EpisodeEvent
from .signals.hedge import require_base_units
from .signals.market import MarketParams
from .venues import SnapshotRequest, make_venue
from .views import instrument_views
from .webhooks import Webhooks

__all__ = ["Service", "load_contracts", "market_params", "watch_event_loop"]

log = logging.getLogger(__name__)


class _Stopped(Exception):
    pass


def market_params(settings: Settings) -> MarketParams:
    """The market-state parameters from ``[signals]`` (detectors read ``settings.signals``)."""
    s = settings.signals
    return MarketParams(
        sample_s=s.volatility_sample_seconds,
        volatility_windows_s=s.volatility_windows_seconds,
    )


class Service:
    """The live service.

    Args:
        settings: validated settings.
        registry: metrics registry (a fresh one by default).
        clock: wall/monotonic clocks and the shell's waits (feeds, webhooks, flight recorder,
            loop monitor): :class:`~mmradar.clock.SystemClock` by default.
        recorder: optional raw-frame recorder (``mmradar record``).
        backoff_factory: reconnect delays (tests shorten them).
        serve_http: start the ``/metrics`` server (``mmradar record`` does not need it).
        on_episode: receives every symptom episode start and end, synchronously from the feed
            task that saw it (:class:`~mmradar.signals.episodes.EpisodeEvent`); it must only
            enqueue (webhook delivery). None: episodes are only counted in the metrics.
        resync_policy: the per-symbol resync back-off of every feed (tests shorten it).
        heartbeat_window_s: connection liveness window of every feed instead of each venue's
            (tests shorten it).
        rest_timeout_s: REST snapshot request timeout of every feed (tests shorten it).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        clock: ShellClock | None = None,
        recorder: FrameRecorder | None = None,
        backoff_factory: Callable[[], Iterator[float]] = backoff,
        serve_http: bool = True,
        on_episode: Callable[[EpisodeEvent], None] | None = None,
        resync_policy: ResyncPolicy | None = None,
        heartbeat_window_s: float | None = None,
        rest_timeout_s: float = 15.0,
    ) -> None:
        self.settings = settings
        self.rest_timeout_s = rest_timeout_s
        self.resync_policy = resync_policy
        self.heartbeat_window_s = heartbeat_window_s
        self.on_episode = on_episode
        self.registry = registry or CollectorRegistry()
        self.clock: ShellClock = clock or SystemClock()
        self.recorder = recorder
        self.backoff_factory = backoff_factory
        #: the feeds run, one per exchange: its ``[[feeds]]`` tables merged
        self.feeds: tuple[FeedSettings, ...] = merge_feeds(settings.feeds)
        self.metrics = Metrics(
            self.registry,
            [(f.exchange, f.symbols) for f in self.feeds],
            webhook_formats=[w.format for w in settings.webhooks],
        )
        # [[webhooks]]: every episode is queued on each webhook (never blocks the feed task).
        self.webhooks = (
            Webhooks(settings.webhooks, self.metrics.webhook_deliveries, clock=self.clock)
            if settings.webhooks
            else None
        )
        if self.webhooks is not None:
            on_episode = _both(self.webhooks.submit, on_episode)
        # The flight recorder (mmradar.flight): every feed's recent raw frames, written around
        # every episode start and integrity resync; episodes are logged with the file's name.
        flight_counts = self.metrics.flight_recordings
        self.flight = (
            FlightRecorder(
                settings.flight_recorder,
                [(f.exchange, f.symbols, f.trades) for f in self.feeds],
                version=__version__,
                on_recording=lambda reason: flight_counts.labels(reason).inc(),
                clock=self.clock,
            )
            if settings.flight_recorder.enabled
            else None
        )
        if self.flight is not None:
            for exchange in dict.fromkeys(f.exchange for f in self.feeds):
                self.metrics.flight_ring_bytes.labels(exchange).set_function(
                    functools.partial(self.flight.ring_bytes, exchange)
                )
        on_episode = _episodes(self.flight, on_episode)
        params = market_params(settings)
        self.pipelines = [
            FeedPipeline(
                make_venue(f.exchange, f.ws_url, f.rest_url),
                f.symbols,
                self.metrics.feed(f.exchange, f.symbols),
                params,
                settings.signals,
                on_episode,
            )
            for f in self.feeds
        ]
        # The venues' instrument-metadata requests; a symbol the venue module cannot convert to
        # base units is refused here, before any I/O (ContractError: exit code 2).
        self.contract_requests: list[list[SnapshotRequest]] = [
            p.venue.contract_requests(list(p.instruments)) for p in self.pipelines
        ]
        # Instruments watched on two or more venues are compared across them (event time);
        # instruments watched as spot and as a perpetual: basis, flow lead-lag, hedge_pressure.
        self.cross_venue, self.hedge = instrument_views(
            self.pipelines, settings.signals, on_episode
        )
        # Their legs' flows are compared in base units only: a leg quoted in contracts must
        # have its contract value loaded (checked after the feed's start-up fetch).
        legs = {(leg.exchange, leg.symbol) for view in self.hedge for leg in view.legs}
        self.hedge_legs: list[tuple[str, ...]] = [
            tuple(s for s in p.instruments if (p.venue.name, s) in legs) for p in self.pipelines
        ]
        self.metrics.register_pipelines(
            self.pipelines, self.cross_venue, self.clock, hedge=self.hedge
        )
        self.server = (
            MetricsServer(self.registry, self.pipelines, settings.http.host, settings.http.port)
            if serve_http
            else None
        )

    async def run(
        self, stop: asyncio.Event, *extra: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Run until ``stop`` is set; ``extra`` coroutines run in the same task group.

        Raises:
            OSError: the HTTP port cannot be bound.
            ContractError: a derivative's contract value is unknown (the venue does not list
                it, or lists no usable value); every task is stopped first.
        """
        fatal: ContractError | None = None
        if self.server is not None:
            await self.server.start()
        try:
            async with aiohttp.ClientSession() as session:
                runners = [
                    FeedRunner(
                        feed,
                        pipeline,
                        self.metrics.shell(feed.exchange, feed.symbols),
                        session,
                        clock=self.clock,
                        backoff_factory=self.backoff_factory,
                        recorder=_recorders(self.recorder, self.flight),
                        resync_policy=self.resync_policy,
                        heartbeat_window_s=self.heartbeat_window_s,
                        rest_timeout_s=self.rest_timeout_s,
                    )
                    for feed, pipeline in zip(self.feeds, self.pipelines, strict=True)
                ]
                if self.flight is not None:
                    for runner in runners:
                        self.flight.attach(runner.pipeline, runner.parsers)
                        observer = runner.pipeline.observer
                        runner.pipeline.observer = ResyncTap(observer, self.flight, runner.pipeline)
                try:
                    async with asyncio.TaskGroup() as tg:
                        if self.flight is not None:
                            tg.create_task(self.flight.run(), name="flight-recorder")
                        for runner, requests, hedge_legs in zip(
                            runners, self.contract_requests, self.hedge_legs, strict=True
                        ):
                            tg.create_task(
                                _run_feed(runner, requests, hedge_legs),
                                name=f"feed:{runner.exchange}",
                            )
                        if self.webhooks is not None:
                            tg.create_task(self.webhooks.run(), name="webhooks")
                        for coro in extra:
                            tg.create_task(coro())
                        tg.create_task(
                            watch_event_loop(self.metrics, self.clock), name="loop-monitor"
                        )
                        trim = heap_trimmer()
                        if trim is not None:
                            tg.create_task(
                                trim_heap_forever(trim, sleep=self.clock.sleep), name="heap-trim"
                            )
                        tg.create_task(_until(stop))
                except* _Stopped:
                    log.info("stopping")
                except* ContractError as group:
                    first = group.exceptions[0]  # each feed task raises a bare ContractError
                    assert isinstance(first, ContractError)
                    fatal = first
                    log.error("%s: refusing to run: %s", first.exchange, first)
        finally:
            if self.server is not None:
                await self.server.stop()
        if fatal is not None:
            raise fatal


async def _run_feed(
    runner: FeedRunner, requests: Sequence[SnapshotRequest], hedge_legs: Sequence[str] = ()
) -> None:
    """One exchange's feed: its contract sizes first (if any), then its connections.

    Raises:
        UnitsError: a leg of a hedge view (``hedge_legs``) is quoted in contracts whose value
            is still unknown (its flow would be compared with other venues' in wrong units).
    """
    if requests:
        await load_contracts(runner, requests)
    venue = runner.venue
    needs = {s for s in hedge_legs if venue.contract_requests([s])}
    require_base_units(runner.exchange, hedge_legs, needs, venue.contract_sizes)
    await runner.run()


async def load_contracts(runner: FeedRunner, requests: Sequence[SnapshotRequest]) -> None:
    """Fetch the venue's instrument metadata and hand the contract sizes to the pipeline.

    Each request waits for room in the feed's REST budget (the same budget as its snapshots);
    a failed attempt (network, HTTP status, rate limit, malformed answer) is retried with the
    feed's reconnect back-off. Called before the feed's connections open.

    Raises:
        ContractError: the venue's answer leaves a symbol's contract value unknown.
    """
    pipeline = runner.pipeline
    symbols = list(pipeline.instruments)
    delays = runner.backoff_factory()
    while True:
        try:
            bodies = [await _rest_get(runner, request) for request in requests]
            sizes = runner.venue.parse_contracts(symbols, bodies)
            break
        except (aiohttp.ClientError, TimeoutError, SnapshotError, MalformedMessage) as exc:
            delay = next(delays)
            log.warning(
                "%s: contract sizes not loaded (%s); retrying in %.1f s",
                runner.exchange, exc, delay,
            )  # fmt: skip
            await runner.clock.sleep(delay)
    pipeline.use_contracts(sizes)
    if runner.recorder is not None:  # replays read quantities in the same units
        runner.recorder.contracts(runner.exchange, runner.clock.wall_ns(), bodies)
    for symbol, size in sizes.items():
        log.info("%s %s: quantities are contracts (%s)", runner.exchange, symbol, size.source)


async def _rest_get(runner: FeedRunner, request: SnapshotRequest) -> bytes:
    """``request`` within the runner's REST budget; the body of a 200 answer.

    Raises:
        RateLimited: HTTP 429/418 (the budget is blocked for the venue's window).
        SnapshotError: any other non-200 status.
    """
    clock, budget = runner.clock, runner.budget
    while (wait := budget.delay(request.weight, clock.monotonic())) > 0:
        await clock.sleep(wait)
    budget.spend(request.weight, clock.monotonic())
    async with runner.session.get(request.url, timeout=aiohttp.ClientTimeout(total=15)) as resp:
        body = await resp.read()
        if resp.status in (418, 429):
            pause = max(1.0, runner.venue.rest_window_s)
            budget.block(pause, clock.monotonic())
            raise RateLimited(resp.status, pause)
        if resp.status != 200:
            raise SnapshotError(f"HTTP {resp.status} for {request.url}: {body[:200]!r}")
    return body


def _both(
    first: Callable[[EpisodeEvent], None], then: Callable[[EpisodeEvent], None] | None
) -> Callable[[EpisodeEvent], None]:
    if then is None:
        return first

    def both(event: EpisodeEvent) -> None:
        first(event)
        then(event)

    return both


async def watch_event_loop(
    metrics: Metrics, clock: ShellClock, interval_s: float = LOOP_MONITOR_INTERVAL_S
) -> None:
    """Sample the event loop's lag and task count every ``interval_s`` of ``clock``, forever.

    The lag is how much later than asked the loop woke this task: the time it spent on other
    work in between (``mmradar_event_loop_lag_seconds``); ``mmradar_asyncio_tasks`` counts the
    loop's live tasks.
    """
    loop = asyncio.get_running_loop()
    observe, tasks = metrics.event_loop_lag.observe, metrics.asyncio_tasks
    while True:
        t0 = clock.monotonic()
        await clock.sleep(interval_s)
        observe(max(0.0, clock.monotonic() - t0 - interval_s))
        tasks.set(len(asyncio.all_tasks(loop)))


def _recorders(*recorders: FrameRecorder | None) -> FrameRecorder | None:
    present = [r for r in recorders if r is not None]
    if len(present) > 1:
        return TeeRecorder(*present)
    return present[0] if present else None


def _episodes(
    flight: FlightRecorder | None, then: Callable[[EpisodeEvent], None] | None
) -> Callable[[EpisodeEvent], None]:
    """Log every episode start and end (with its flight recording), then hand it on.

    A start triggers a flight recording; the end carries the same file's name.
    """
    recordings: dict[tuple[str, str, str, str], str] = {}

    def on_episode(event: EpisodeEvent) -> None:
        key = (event.exchange, event.symbol, event.symptom, event.side)
        name: str | None
        if event.state == "firing":
            name = None
            if flight is not None:
                name = flight.trigger(
                    event.exchange, "episode", symbol=event.symbol, at_ns=event.started_at_ns,
                    detail={"symptom": event.symptom, "side": event.side},
                )  # fmt: skip
            if name is not None:
                recordings[key] = name
        else:
            name = recordings.pop(key, None)
        if name is not None:
            event = replace(event, recording=name)
        if event.state == "firing":
            log.warning(
                "%s %s: %s (%s) episode started at %s, score %.3g; recording %s",
                event.exchange, event.symbol, event.symptom, event.side,
                iso_utc(event.started_at_ns), event.score, name or "none",
            )  # fmt: skip
        else:
            ended = event.ended_at_ns if event.ended_at_ns is not None else event.started_at_ns
            log.info(
                "%s %s: %s (%s) episode ended at %s after %.1f s; recording %s",
                event.exchange, event.symbol, event.symptom, event.side, iso_utc(ended),
                (ended - event.started_at_ns) / 1e9, name or "none",
            )  # fmt: skip
        if then is not None:
            then(event)

    return on_episode


async def _until(stop: asyncio.Event) -> None:
    await stop.wait()
    raise _Stopped
