"""Running synthetic markets through the real pipeline and reading the episodes back."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from mmradar.pipeline import FeedPipeline
from mmradar.signals.engine import SignalEngine
from mmradar.signals.episodes import EpisodeEvent
from mmradar.signals.params import SignalSettings
from mmradar.venues import make_venue

from .synth import SYMBOL, T0_MS, Feed, Injection, MarketParams, SyntheticMarket

T0_NS = T0_MS * 1_000_000


@dataclass
class Run:
    """A pipeline fed by a synthetic market, recording every episode event."""

    feed: Feed
    events: list[EpisodeEvent] = field(default_factory=list)

    @property
    def pipeline(self) -> FeedPipeline:
        return self.feed.pipeline

    @property
    def engine(self) -> SignalEngine:
        return self.pipeline.instruments[SYMBOL].engine

    def firing(self, symptom: str | None = None) -> list[EpisodeEvent]:
        """Episode starts (of ``symptom``), in order."""
        return [
            e
            for e in self.events
            if e.state == "firing" and (symptom is None or e.symptom == symptom)
        ]

    def resolved(self, symptom: str | None = None) -> list[EpisodeEvent]:
        """Episode ends (of ``symptom``), in order."""
        return [
            e
            for e in self.events
            if e.state == "resolved" and (symptom is None or e.symptom == symptom)
        ]


def seconds(ts_ns: int | None) -> float:
    """Event time in seconds since the synthetic market's start."""
    assert ts_ns is not None
    return (ts_ns - T0_NS) / 1e9


def start(
    *,
    seed: int = 1,
    injections: tuple[Injection, ...] = (),
    market: MarketParams | None = None,
    latency_ms: int = 20,
    **signals: object,
) -> Run:
    """A fresh pipeline (``[signals]`` defaults overridden by ``signals``) and market."""
    params = msgspec.structs.replace(SignalSettings(), **signals)  # type: ignore[arg-type]
    events: list[EpisodeEvent] = []
    pipeline = FeedPipeline(
        make_venue("binance"), [SYMBOL], signal_params=params, on_episode=events.append
    )
    gen = SyntheticMarket(
        seed=seed, params=market or MarketParams(), injections=injections, latency_ms=latency_ms
    )
    return Run(Feed(pipeline, gen), events)
