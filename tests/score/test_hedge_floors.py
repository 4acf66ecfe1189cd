"""``hedge_pressure`` through the scorer on three evaluation seeds: the floors it must keep.

The full two-venue scorecard (seeds 1–10, docs/scorecard.md "Two venues") takes a minute; these
twelve runs (the four two-venue scenarios × seeds 1–3) drive both simulated venues through the
production pipelines and the real hedge view, and check what a change to the detector must not
lose: the controls stay silent, every detection matches a hedge the simulated dealers really
made, and it finds some of them.
"""

from __future__ import annotations

import msgspec
import pytest

from mmradar.score.runner import RunResult, drive
from mmradar.score.scorecard import build_scorecard
from mmradar.signals.params import SignalSettings
from mmradar.sim import SCENARIOS, simulate

SEEDS = (1, 2, 3)
SCENARIO_NAMES = ("hedged-buy-burst", "hedged-sell-burst", "common-shock", "unhedged-burst")


def _runs() -> list[RunResult]:
    params = msgspec.structs.replace(SignalSettings(), warmup_seconds=300.0)
    out = []
    for seed in SEEDS:
        for name in SCENARIO_NAMES:
            spec = SCENARIOS[name]
            out.append(
                drive(
                    simulate(name, seed),
                    scenario=name,
                    kind=spec.kind,
                    seed=seed,
                    expected=spec.expected,
                    params=params,
                    silent=spec.silent,
                )
            )
    return out


@pytest.mark.slow
def test_hedge_pressure_keeps_its_floors_on_three_seeds() -> None:
    card = build_scorecard(_runs())
    # the controls: a shock on both venues at once, and dealers who do not hedge
    assert {name: c.hedge_firings for name, c in card.controls.items()} == {
        "common-shock": 0,
        "unhedged-burst": 0,
    }
    rows = [card.keys[("hedge_pressure", side)] for side in ("buy", "sell")]
    truth = sum(r.truth for r in rows)
    tp = sum(r.tp for r in rows)
    assert truth >= 6  # the labels found the dealers' hedges
    assert sum(r.fp for r in rows) == 0  # every detection is a real hedge
    assert tp >= truth // 2  # and at least half of them are found
    # each side finds at least one, on the perpetual (where the truth is)
    assert all(r.tp >= 1 for r in rows)
