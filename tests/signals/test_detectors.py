"""Each detector on synthetic books fed through the real pipeline (default ``[signals]``).

Timeline of every case: the book syncs at t ≈ 0, the 10-minute warm-up ends at t = 600 s, the
baselines keep learning calm data until the symptom is injected at ``ON`` = 900 s; it lasts
60 s; the run continues until the episode must have cleared. The stated latencies are in event
time from the injection's start to the episode's ``started_at`` and from its end to
``ended_at``; they follow from each detector's smoothing and persistence (module docstring of
:mod:`mmradar.signals.detectors`).
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
    # one-tick regime: z of the share of time wider than one tick (10 s window) + T_on 2 s
    Case("spread-one-tick", Injection("spread", ON, OFF, spread_ticks=10), "spread_widening",
         "both", 10, 30),
    # multi-tick regime: z of the log spread, 1-s averages + T_on 2 s
    Case("spread-multi-tick", Injection("spread", ON, OFF, spread_ticks=12), "spread_widening",
         "both", 4, 15, MULTI_TICK),
    Case("evaporation-bid", Injection("evaporation", ON, OFF, side="bid"),
         "liquidity_evaporation", "bid", 6, 60),
    Case("evaporation-ask", Injection("evaporation", ON, OFF, side="ask"),
         "liquidity_evaporation", "ask", 6, 60),
    # DI_fast (1 s half-life) must reach 0.5 and stay 2 s
    Case("asymmetry-bid", Injection("asymmetry", ON, OFF, side="bid"), "depth_asymmetry",
         "bid", 10, 30),
    Case("asymmetry-ask", Injection("asymmetry", ON, OFF, side="ask"), "depth_asymmetry",
         "ask", 10, 30),
    Case("pull", Injection("pull", ON, OFF), "liquidity_pull", "both", 6, 30),
    # the 3-s skew average must reach 0.25, then T_on 2 s
    Case("skew-bid", Injection("skew", ON, OFF, side="bid"), "quote_skew", "bid", 7, 30),
    Case("skew-ask", Injection("skew", ON, OFF, side="ask"), "quote_skew", "ask", 7, 30),
    # σ_fast (15 s half-life EWMA of r²) must reach 3 σ_slow, then T_on 2 s: 6–13 s at 5×
    Case("volatility", Injection("volatility", ON, OFF), "volatility_spike", "both", 25, 200),
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
def test_a_dip_shorter_than_t_off_does_not_end_the_episode(case: Case) -> None:
    """The symptom pauses for 4 s (T_off ≥ 4 s here: off must hold on 5 samples): one episode."""
    inj = case.injection
    first = Injection(inj.kind, ON, ON + 30, side=inj.side, spread_ticks=inj.spread_ticks)
    second = Injection(inj.kind, ON + 34, OFF, side=inj.side, spread_ticks=inj.spread_ticks)
    run = start(injections=(first, second), market=case.market)
    run.feed.run(ON + 33)
    assert run.engine.detectors[case.symptom].machines[case.side].firing  # during the dip
    run.feed.run(OFF + case.clear_within_s + 5 - (ON + 33))
    assert len(run.firing(case.symptom)) == 1
    (resolved,) = run.resolved(case.symptom)
    assert seconds(resolved.ended_at_ns) >= OFF


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
