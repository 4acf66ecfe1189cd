"""Each detector on synthetic books fed through the real pipeline (default ``[signals]``).

Timeline of every case: the book syncs at t ≈ 0, the 10-minute warm-up ends at t = 600 s, the
baselines keep learning calm data until the symptom is injected at ``ON`` = 900 s; it lasts
60 s; the run continues until the episode must have cleared. The stated latencies are in event
time from the injection's start to the episode's ``started_at`` and from its end to
``ended_at``; they follow from each detector's feature and its sequential test (module
docstring of :mod:`mmradar.signals.detectors`): the onset CUSUM needs at least three seconds of
evidence, the release CUSUM ``release_seconds`` (3) worth of the feature back at its baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mmradar.signals.episodes import SYMPTOM_SIDES

from .helpers import Run, seconds, start
from .synth import Injection, MarketParams

ON = 900.0
OFF = 960.0
ONE_TICK = MarketParams()
MULTI_TICK = MarketParams(base_spread=4)


@dataclass(frozen=True)
class Case:
    """One symptom injection and what must come out of it."""

    name: str
    injection: Injection
    symptom: str
    side: str
    fire_within_s: float  # injection start → episode start
    clear_within_s: float  # injection end → episode end
    market: MarketParams = ONE_TICK


CASES = [
    # one-tick regime: z of the share of time wider than one tick (a 10-s window fills first)
    Case("spread-one-tick", Injection("spread", ON, OFF, spread_ticks=10), "spread_widening",
         "both", 10, 15),
    # multi-tick regime: z of the log spread, 1-s averages: the CUSUM needs three seconds
    Case("spread-multi-tick", Injection("spread", ON, OFF, spread_ticks=12), "spread_widening",
         "both", 4, 8, MULTI_TICK),
    # near-touch depth collapses while removals outrun additions (the 10-s flow window)
    Case("evaporation-bid", Injection("evaporation", ON, OFF, side="bid"),
         "liquidity_evaporation", "bid", 8, 8),
    Case("evaporation-ask", Injection("evaporation", ON, OFF, side="ask"),
         "liquidity_evaporation", "ask", 8, 8),
    # z of the near-touch imbalance against its baseline. This book's calm imbalance is noisy
    # (MAD 0.125, so the bounded imbalance can move at most ~5 sigma): a x20 heavy side is a
    # z of ~4.5, 1.5 above the allowance k = 3, and the CUSUM (h = 17.3) needs ~12 s. A x6
    # side (z ~3.5) would need 35-50 s: this design is for shifts of 6 sigma.
    Case("asymmetry-bid", Injection("asymmetry", ON, OFF, side="bid", depth_factor=20),
         "depth_asymmetry", "bid", 15, 8),
    Case("asymmetry-ask", Injection("asymmetry", ON, OFF, side="ask", depth_factor=20),
         "depth_asymmetry", "ask", 15, 8),
    Case("pull", Injection("pull", ON, OFF), "liquidity_pull", "both", 8, 8),
    # z of the 1-s skew against its baseline
    Case("skew-bid", Injection("skew", ON, OFF, side="bid"), "quote_skew", "bid", 5, 8),
    Case("skew-ask", Injection("skew", ON, OFF, side="ask"), "quote_skew", "ask", 5, 8),
    # z of the log realized variance of each second, tuned to a 5x volatility jump
    Case("volatility", Injection("volatility", ON, OFF), "volatility_spike", "both", 20, 15),
]  # fmt: skip


def run_case(case: Case, seed: int = 1) -> Run:
    run = start(seed=seed, injections=(case.injection,), market=case.market)
    run.feed.run(OFF + case.clear_within_s + 5)
    return run


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_detector_fires_on_its_symptom_points_the_right_side_and_clears(case: Case) -> None:
    run = run_case(case)
    fired = run.firing(case.symptom)
    assert fired, f"{case.symptom} never fired; events: {run.events}"
    first = fired[0]
    assert first.side == case.side
    assert first.side in SYMPTOM_SIDES[case.symptom]
    latency = seconds(first.started_at_ns) - ON
    assert 0 <= latency <= case.fire_within_s, f"fired {latency} s after the injection"
    # one episode for one symptom: no flapping while it lasts
    assert [seconds(e.started_at_ns) for e in fired] == [seconds(first.started_at_ns)]
    (resolved,) = run.resolved(case.symptom)
    cleared = seconds(resolved.ended_at_ns) - OFF
    assert 0 <= cleared <= case.clear_within_s, f"cleared {cleared} s after the injection ended"
    assert resolved.started_at_ns == first.started_at_ns
    assert resolved.context["book_valid"] is True
    assert resolved.context["peak_score"] >= first.score
    # before the injection the market was calm: nothing at all fired
    assert all(seconds(e.started_at_ns) >= ON for e in run.firing())


DIP_CASES = [c for c in CASES if c.name in ("spread-multi-tick", "evaporation-ask", "pull")]


@pytest.mark.parametrize("case", DIP_CASES, ids=[c.name for c in DIP_CASES])
def test_a_short_dip_does_not_end_the_episode_a_long_one_does(case: Case) -> None:
    """The release test needs ``release_seconds`` (3) worth of evidence that the feature is
    back at its baseline: a 2-s pause of the symptom keeps one episode, a 20-s pause ends it
    (and the symptom's return starts a second one)."""
    inj = case.injection
    for pause, episodes in ((2, 1), (20, 2)):
        first = Injection(inj.kind, ON, ON + 30, side=inj.side, spread_ticks=inj.spread_ticks)
        second = Injection(
            inj.kind, ON + 30 + pause, OFF + pause, side=inj.side, spread_ticks=inj.spread_ticks
        )
        run = start(injections=(first, second), market=case.market)
        run.feed.run(ON + 30 + pause)
        assert run.engine.detectors[case.symptom].machines[case.side].firing == (episodes == 1)
        run.feed.run(OFF + case.clear_within_s + 5)
        assert len(run.firing(case.symptom)) == episodes, (pause, run.events)
        resolved = run.resolved(case.symptom)
        assert len(resolved) == episodes
        assert seconds(resolved[-1].ended_at_ns) >= OFF + pause


def test_evaporation_of_one_side_never_blames_the_other() -> None:
    for side, other in (("bid", "ask"), ("ask", "bid")):
        run = run_case(next(c for c in CASES if c.name == f"evaporation-{side}"))
        assert not [e for e in run.firing("liquidity_evaporation") if e.side == other]


def test_detection_is_independent_of_receive_latency() -> None:
    """Event time only: the same market delivered 900 ms later gives the same episodes."""
    case = next(c for c in CASES if c.name == "pull")
    fast = start(injections=(case.injection,), latency_ms=5)
    slow = start(injections=(case.injection,), latency_ms=900)
    for run in (fast, slow):
        run.feed.run(OFF + 20)
    key = [(e.symptom, e.side, e.state, e.started_at_ns, e.ended_at_ns) for e in fast.events]
    assert key == [
        (e.symptom, e.side, e.state, e.started_at_ns, e.ended_at_ns) for e in slow.events
    ]
    assert key
