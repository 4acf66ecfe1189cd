"""The composition root: settings → venues, pipelines, metrics, HTTP server, feed runners.

Everything runs under one ``asyncio.TaskGroup``; :meth:`Service.run` returns when ``stop`` is
set (SIGINT/SIGTERM in the command line) after cancelling every task and closing every socket.

One feed per exchange: the ``[[feeds]]`` tables of one exchange are merged
(:func:`~mmradar.config.merge_feeds`) into one pipeline and one feed runner, so its
connections, its REST weight budget and every exchange-keyed metric cover all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from .clock import Clock, SystemClock
from .config import FeedSettings, Settings, merge_feeds
from .feed import FeedRunner, FrameRecorder, backoff
from .http import MetricsServer
from .metrics import Metrics
from .pipeline import FeedPipeline
from .signals.crossvenue import build_views
from .signals.episodes import EpisodeEvent
from .signals.market import MarketParams
from .venues import make_venue
from .webhooks import Webhooks

__all__ = ["Service", "market_params"]

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
        clock: wall/monotonic clocks.
        recorder: optional raw-frame recorder (``mmradar record``).
        backoff_factory: reconnect delays (tests shorten them).
        serve_http: start the ``/metrics`` server (``mmradar record`` does not need it).
        on_episode: receives every symptom episode start and end, synchronously from the feed
            task that saw it (:class:`~mmradar.signals.episodes.EpisodeEvent`); it must only
            enqueue (webhook delivery). None: episodes are only counted in the metrics.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        clock: Clock | None = None,
        recorder: FrameRecorder | None = None,
        backoff_factory: Callable[[], Iterator[float]] = backoff,
        serve_http: bool = True,
        on_episode: Callable[[EpisodeEvent], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_episode = on_episode
        self.registry = registry or CollectorRegistry()
        self.clock = clock or SystemClock()
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
            Webhooks(settings.webhooks, self.metrics.webhook_deliveries)
            if settings.webhooks
            else None
        )
        if self.webhooks is not None:
            on_episode = _both(self.webhooks.submit, on_episode)
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
        # Instruments watched on two or more venues are compared across them (event time).
        self.cross_venue = build_views(
            [
                (p.venue.name, symbol, p.venue.instrument(symbol), inst.signals)
                for p in self.pipelines
                for symbol, inst in p.instruments.items()
            ],
            settings.signals,
            on_episode,
        )
        self.metrics.register_pipelines(self.pipelines, self.cross_venue)
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
        """
        if self.server is not None:
            await self.server.start()
        try:
            async with aiohttp.ClientSession() as session:
                runners = [
                    FeedRunner(
                        feed,
                        pipeline,
                        self.metrics,
                        session,
                        clock=self.clock,
                        backoff_factory=self.backoff_factory,
                        recorder=self.recorder,
                    )
                    for feed, pipeline in zip(self.feeds, self.pipelines, strict=True)
                ]
                try:
                    async with asyncio.TaskGroup() as tg:
                        for runner in runners:
                            tg.create_task(runner.run(), name=f"feed:{runner.exchange}")
                        if self.webhooks is not None:
                            tg.create_task(self.webhooks.run(), name="webhooks")
                        for coro in extra:
                            tg.create_task(coro())
                        tg.create_task(_until(stop))
                except* _Stopped:
                    log.info("stopping")
        finally:
            if self.server is not None:
                await self.server.stop()


def _both(
    first: Callable[[EpisodeEvent], None], then: Callable[[EpisodeEvent], None] | None
) -> Callable[[EpisodeEvent], None]:
    if then is None:
        return first

    def both(event: EpisodeEvent) -> None:
        first(event)
        then(event)

    return both


async def _until(stop: asyncio.Event) -> None:
    await stop.wait()
    raise _Stopped
