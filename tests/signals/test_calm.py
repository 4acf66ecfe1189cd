"""False alerts on calm but noisy books: < 0.5 episodes per symbol-hour over all detectors.

Five hours of calm synthetic market (four seeds of the one-tick regime, one of the multi-tick
regime), each fed through the real pipeline with the default ``[signals]``: realistic flicker
(big orders living 100–500 ms), one-tick spread changes (the maker widens for 0.1–0.5 s and
trades eat the touch), level churn, random small trades. Counted: every episode start after
the warm-up. Measured with the calibrated defaults (docs/scorecard.md): 0 episodes in these
5 h; over 11 one-tick seeds × 1 h, 1 episode (a ``liquidity_evaporation``, ≈ 0.1/h). This test
is what held ``evaporation_on_seconds`` at 3 s: at 1 s these 5 h raise 47 episodes.
"""

from __future__ import annotations

from collections import Counter

import pytest

from mmradar.signals.episodes import SYMPTOM_SIDES

from .helpers import start
from .synth import MarketParams

HOUR_S = 3600.0
RUNS = [(1, MarketParams()), (2, MarketParams()), (3, MarketParams()), (4, MarketParams()),
        (1, MarketParams(base_spread=4))]  # fmt: skip
BUDGET_PER_HOUR = 0.5


@pytest.fixture(scope="module")
def calm_episodes() -> tuple[Counter[tuple[str, str]], float]:
    counts: Counter[tuple[str, str]] = Counter()
    hours = 0.0
    for seed, market in RUNS:
        run = start(seed=seed, market=market)
        run.feed.run(HOUR_S)
        assert run.engine.warm
        counts.update((e.symptom, e.side) for e in run.firing())
        hours += (HOUR_S - run.engine.params.warmup_seconds) / HOUR_S
    return counts, hours


def test_false_alerts_stay_under_budget(
    calm_episodes: tuple[Counter[tuple[str, str]], float],
) -> None:
    counts, hours = calm_episodes
    rate = sum(counts.values()) / hours
    assert rate < BUDGET_PER_HOUR, f"{rate:.2f} episodes/hour on calm data: {dict(counts)}"


@pytest.mark.parametrize("symptom", list(SYMPTOM_SIDES))
def test_each_detector_stays_silent_through_calm_hours(
    symptom: str, calm_episodes: tuple[Counter[tuple[str, str]], float]
) -> None:
    counts, hours = calm_episodes
    fired = sum(n for (s, _), n in counts.items() if s == symptom)
    assert fired / hours < BUDGET_PER_HOUR
