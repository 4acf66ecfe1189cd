"""Driving the production pipeline over a small synthetic run, as the scorer does."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import pytest

from mmradar.score.matching import match_episodes
from mmradar.score.runner import drive
from mmradar.signals.params import SignalSettings
from signals.synth import T0_MS, Injection, SyntheticMarket

S = 1_000_000_000


@dataclass(frozen=True)
class Frame:
    ts_ns: int
    stream: str
    payload: bytes


@dataclass(frozen=True)
class Sample:
    ts_ns: int
    mid: float
    total_inventory: float
    regime: str


@dataclass(frozen=True)
class TruthEp:
    symptom: str
    side: str
    start_ns: int
    end_ns: int
    regime: str


@dataclass
class Run:
    symbol: str
    snapshot: bytes
    frames: list[Frame] = field(default_factory=list)
    truth: list[Sample] = field(default_factory=list)
    episodes: list[TruthEp] = field(default_factory=list)


def _synthetic_run(seconds: int, injection: Injection) -> Run:
    market = SyntheticMarket(seed=2, injections=(injection,))
    run = Run("TESTUSDT", market.snapshot())
    inventory = 0.0
    for _ in range(seconds * 10):
        for ts, raw in market.step():
            run.frames.append(Frame(ts, "", raw))
        inventory = -(market.taker_buy - market.taker_sell)  # dealers absorb the taker flow
        t_s = market.n / 10
        regime = "calm" if not injection.start_s <= t_s < injection.end_s else "spread"
        run.truth.append(Sample(market.event_ns, 100.0, inventory, regime))
    t0 = T0_MS * 1_000_000
    run.episodes.append(
        TruthEp(
            "spread_widening",
            "both",
            t0 + round(injection.start_s * S),
            t0 + round(injection.end_s * S),
            "spread",
        )
    )
    run.frames.sort(key=lambda f: f.ts_ns)
    return run


def test_drive_detects_an_injected_spread_episode_and_samples_the_grid() -> None:
    run = _synthetic_run(420, Injection("spread", 330.0, 370.0, spread_ticks=12))
    params = msgspec.structs.replace(SignalSettings(), warmup_seconds=240.0)
    result = drive(run, scenario="synthetic", kind="symptom", seed=2, params=params)
    assert result.resyncs == 0
    assert result.snapshots == 1
    truth = [t.episode for t in result.truth]
    spread = [e for e in result.detected if e.symptom == "spread_widening"]
    m = match_episodes(truth, spread)
    assert len(m.pairs) == 1
    assert 0.0 <= m.latencies_s[0] <= 10.0
    s = result.series
    assert len(s) == len(s.proxy) == len(s.pressure) == len(s.armed) == len(s.q_true)
    assert all(b - a == S for a, b in zip(s.t_ns, s.t_ns[1:], strict=False))
    # armed only after the warm-up: about 240 s into the run
    first_armed = s.armed.index(True)
    assert (s.t_ns[first_armed] - result.start_ns) / S == pytest.approx(240, abs=3)
    assert result.armed_at(truth[0].start_ns)
    assert result.regime_at(truth[0].start_ns + S) == "spread"


class _PlaceholderHedgeViews:
    """Stands in for ``build_hedge_views`` (test only): records what the runner hands over
    and every tick it receives; reports one episode on the follower venue."""

    def __init__(self, fire_at_s: int, end_at_s: int) -> None:
        self.members: list[tuple[str, str, str | None, str]] = []
        self.ticks: list[tuple[str, int]] = []
        self.fire_at_s = fire_at_s
        self.end_at_s = end_at_s

    def __call__(self, members, params, on_episode):  # type: ignore[no-untyped-def]
        from mmradar.signals.episodes import EpisodeEvent

        t0: list[int] = []
        for exchange, symbol, instrument, kind, engine in members:
            self.members.append((exchange, symbol, instrument, kind))

            def hook(engine, kind=kind, exchange=exchange, symbol=symbol):  # type: ignore[no-untyped-def]
                now = engine.next_tick_ns - S  # the second just ticked
                self.ticks.append((kind, now))
                if not t0:
                    t0.append(now)
                if kind != "perp":
                    return
                for at, state in ((self.fire_at_s, "firing"), (self.end_at_s, "resolved")):
                    if now == t0[0] + at * S:
                        on_episode(
                            EpisodeEvent(
                                symptom="hedge_pressure",
                                exchange=exchange,
                                symbol=symbol,
                                side="buy",
                                state=state,
                                started_at_ns=t0[0] + self.fire_at_s * S,
                                ended_at_ns=now if state == "resolved" else None,
                                score=1.0,
                            )
                        )

            engine.on_tick = hook
        return []


def test_drive_feeds_both_venues_in_event_time_to_the_hedge_views() -> None:
    sim = pytest.importorskip("mmradar.sim")
    run = sim.simulate("hedged-buy-burst", 1, duration_s=420)
    views = _PlaceholderHedgeViews(fire_at_s=370, end_at_s=390)
    params = msgspec.structs.replace(SignalSettings(), warmup_seconds=300.0)
    result = drive(
        run,
        scenario="hedged-buy-burst",
        kind="symptom",
        seed=1,
        params=params,
        silent=(),
        hedge_views=views,
    )
    assert views.members == [
        ("binance", "BTCUSDT", "BTC-USD", "spot"),
        ("binance-usdm", "BTCUSDT", "BTC-USD", "perp"),
    ]
    assert result.perp_frames == len(run.perp.frames) and result.resyncs == 0
    # one tick per venue per second, in event-time order across the two venues
    assert [t for _, t in views.ticks] == sorted(t for _, t in views.ticks)
    assert sum(1 for k, _ in views.ticks if k == "spot") == 420
    assert sum(1 for k, _ in views.ticks if k == "perp") == 420
    hedges = [e for e in result.detected if e.symptom == "hedge_pressure"]
    assert [(e.side, (e.end_ns - e.start_ns) // S) for e in hedges] == [("buy", 20)]
    # the truth carries the labelled hedge episode, scored like the rest
    assert ("hedge_pressure", "buy") in {t.episode.key for t in result.truth}
    # the perpetual engine's own symptoms are not collected
    assert {e.symptom for e in result.detected} <= {
        "hedge_pressure",
        "quote_skew",
        "depth_asymmetry",
        "liquidity_evaporation",
        "spread_widening",
    }


def test_the_hedge_detector_on_a_hedged_burst_and_its_unhedged_control() -> None:
    """The real hedge view over two simulated venues (seed 1): the hedge of a buy burst is
    found on the perpetual 4.1 s after the first hedge order; unhedged, nothing fires."""
    from mmradar.score.scorecard import build_scorecard
    from mmradar.sim import SCENARIOS, simulate

    params = msgspec.structs.replace(SignalSettings(), warmup_seconds=300.0)
    results = []
    for name in ("hedged-buy-burst", "unhedged-burst"):
        spec = SCENARIOS[name]
        results.append(
            drive(
                simulate(name, 1),
                scenario=name,
                kind=spec.kind,
                seed=1,
                expected=spec.expected,
                params=params,
                silent=spec.silent,
            )
        )
    hedged, unhedged = results
    assert [
        (e.side, e.cause, (e.start_ns - hedged.start_ns) / S)
        for e in hedged.detected
        if e.symptom == "hedge_pressure"
    ] == [("buy", "binance-usdm", 374.9)]
    assert not [e for e in unhedged.detected if e.symptom == "hedge_pressure"]
    card = build_scorecard(results)
    buy = card.keys[("hedge_pressure", "buy")]
    assert (buy.truth, buy.tp, buy.fp, buy.latencies_s) == (1, 1, 0, [4.125])
    assert card.controls["unhedged-burst"].hedge_firings == 0
