"""An agent-based L2 market simulator with ground truth, speaking Binance's wire formats.

``simulate(scenario, seed)`` runs a deterministic, synchronous simulation of one symbol on a
price-time-priority book (:mod:`.book`): inventory-averse dealers quoting GLFT/Avellaneda–Stoikov
ladders with soft and hard inventory limits (:mod:`.agents`), price-sensitive and burst takers,
zero-intelligence background liquidity and a spoofer (:mod:`.market`), under a scheduled regime
process (:mod:`.scenarios`, :data:`.params.REGIMES`). It returns a :class:`SimRun`: the REST
snapshot and the combined-stream frames a Binance spot venue would publish (``@depth@100ms``
diffs aggregated per 100 ms window, ``@trade``), the ground truth every 100 ms, and the episode
table labelled from it (:mod:`.labels` documents the rule). Scenarios with a second venue
(:mod:`.perp`) add a perpetual on the same efficient price, published on Binance USD-M's wire
(:attr:`SimRun.perp`), on which the spot dealers may hedge their inventory.
``mmradar.embedded`` serves a run's spot venue over loopback with Binance's exact protocol;
``docs/simulator.md`` describes the model.
"""

from __future__ import annotations

from .agents import glft_quotes
from .labels import label_episodes
from .params import REGIMES, DealerParams, HedgeParams, LabelParams, PerpParams, Regime, SimParams
from .scenarios import CYCLE, SCENARIOS
from .types import (
    DealerFill,
    FeedFault,
    HedgeOrder,
    Phase,
    ScenarioSpec,
    SimFrame,
    SimRun,
    TruthEpisode,
    TruthSample,
    VenueRun,
)
from .wire import write_capture

__all__ = [
    "CYCLE",
    "DEFAULT_START_NS",
    "REGIMES",
    "SCENARIOS",
    "DealerFill",
    "DealerParams",
    "FeedFault",
    "HedgeOrder",
    "HedgeParams",
    "LabelParams",
    "PerpParams",
    "Phase",
    "Regime",
    "ScenarioSpec",
    "SimFrame",
    "SimParams",
    "SimRun",
    "TruthEpisode",
    "TruthSample",
    "VenueRun",
    "glft_quotes",
    "label_episodes",
    "simulate",
    "write_capture",
]

DEFAULT_START_NS = 1_700_000_000_000_000_000


def simulate(
    scenario: str | ScenarioSpec,
    seed: int,
    *,
    duration_s: float | None = None,
    start_ns: int = DEFAULT_START_NS,
    params: SimParams | None = None,
) -> SimRun:
    """Run a scenario.

    Args:
        scenario: a key of :data:`SCENARIOS`, or a custom :class:`ScenarioSpec`.
        seed: the seed of the run's one ``random.Random``; same seed, same bytes.
        duration_s: override the scenario's length: a shorter run cuts the schedule, a longer
            one extends its last phase.
        start_ns: event time of the snapshot (the first depth window ends 100 ms later).
        params: the market's parameters (default :class:`SimParams`).

    Returns:
        The run (eager: frames, truth and episodes are lists).

    Raises:
        KeyError: unknown scenario.
        ValueError: ``duration_s`` is not positive.
    """
    from .market import run_scenario

    spec = scenario if isinstance(scenario, ScenarioSpec) else SCENARIOS[scenario]
    if duration_s is not None and not duration_s > 0:
        raise ValueError("duration_s must be > 0")
    return run_scenario(spec, seed, params or SimParams(), start_ns, duration_s)
