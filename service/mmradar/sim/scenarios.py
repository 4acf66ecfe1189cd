"""The named scenarios: regime schedules with what each is built to show.

Every scenario opens with a calm stretch long enough for mmradar's baselines (and, in the demo,
its shortened warm-up) and closes with calm so the dealers' inventory reverts inside the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .types import FeedFault, Phase, ScenarioSpec

__all__ = ["CYCLE", "SCENARIOS"]

_LEAD_S = 360.0  # calm before the first event: ≥ 5 one-minute baseline buckets

_INVENTORY_SHORT = (
    ("quote_skew", "bid"),
    ("depth_asymmetry", "bid"),
    ("liquidity_evaporation", "ask"),
)
_INVENTORY_LONG = (
    ("quote_skew", "ask"),
    ("depth_asymmetry", "ask"),
    ("liquidity_evaporation", "bid"),
)
_SHOCK = (
    ("spread_widening", "both"),
    ("volatility_spike", "both"),
    ("liquidity_pull", "both"),
)
_HEDGE = ("hedge_pressure",)


def _spec(
    name: str,
    kind: str,
    description: str,
    phases: list[tuple[str, float]],
    expected: tuple[tuple[str, str], ...] = (),
    faults: tuple[FeedFault, ...] = (),
    *,
    perp: bool = False,
    hedged: bool = False,
    silent: tuple[str, ...] = (),
) -> ScenarioSpec:
    return ScenarioSpec(
        name=name,
        kind=kind,  # type: ignore[arg-type]
        description=description,
        phases=tuple(Phase(r, d) for r, d in phases),
        expected=expected,
        faults=faults,
        perp=perp,
        hedged=hedged,
        silent=silent,
    )


_ALL = [
    _spec("calm", "calm", "a calm market: dealers quote both sides, nothing should fire",
          [("calm", 900.0)]),
    _spec("buy-burst", "symptom",
          "aggressive buying leaves the dealers short: asks thin, bids heavy, quotes skew up",
          [("calm", _LEAD_S), ("buy_burst", 75.0), ("calm", 165.0)], _INVENTORY_SHORT),
    _spec("sell-burst", "symptom",
          "aggressive selling leaves the dealers long: bids thin, asks heavy, quotes skew down",
          [("calm", _LEAD_S), ("sell_burst", 75.0), ("calm", 165.0)], _INVENTORY_LONG),
    _spec("vol-shock", "symptom",
          "volatility jumps 5x: dealers pull both sides, then quote wider",
          [("calm", _LEAD_S), ("vol_shock", 90.0), ("calm", 150.0)], _SHOCK),
    _spec("dry-up", "symptom",
          "relentless selling drives the dealers to their hard long limit: bids dry up",
          [("calm", _LEAD_S), ("dry_up", 90.0), ("calm", 150.0)],
          (*_INVENTORY_LONG, ("spread_widening", "both"))),
    _spec("spoof", "control",
          "negative control: large orders flicker 20-60 bps away, cancelled within 0.5 s",
          [("calm", _LEAD_S), ("spoof", 120.0), ("calm", 120.0)]),
    _spec("refresh", "control",
          "negative control: dealers refresh both sides in lockstep every 15 s (0.3 s away)",
          [("calm", _LEAD_S), ("refresh", 120.0), ("calm", 120.0)]),
    _spec("sweep", "control",
          "negative control: takers sweep the asks while hedged dealers keep quoting (traded "
          "through, not pulled)",
          [("calm", _LEAD_S), ("sweep", 120.0), ("calm", 120.0)]),
    _spec("feed-gap", "control",
          "negative control: the venue drops a diff (gap) and later the connection; resyncs",
          [("calm", 600.0)],
          faults=(FeedFault(420.0, "gap"), FeedFault(500.0, "drop"))),
    _spec("cycle", "symptom",
          "calm, buy burst, vol shock, sell burst, dry-up, then the controls (the demo default)",
          [("calm", 240.0), ("buy_burst", 75.0), ("calm", 135.0), ("vol_shock", 90.0),
           ("calm", 150.0), ("sell_burst", 75.0), ("calm", 135.0), ("dry_up", 90.0),
           ("calm", 150.0), ("spoof", 60.0), ("calm", 30.0), ("refresh", 60.0),
           ("calm", 60.0)],
          (*_INVENTORY_SHORT, *_SHOCK, *_INVENTORY_LONG),
          faults=(FeedFault(1365.0, "gap"),)),
    # the second venue: a perpetual the spot dealers hedge on (mmradar.sim.perp)
    _spec("hedged-buy-burst", "symptom",
          "aggressive buying on spot; the short dealers hedge by buying the perpetual",
          [("calm", _LEAD_S), ("buy_burst", 75.0), ("calm", 165.0)],
          (*_INVENTORY_SHORT, ("hedge_pressure", "buy")), perp=True, hedged=True),
    _spec("hedged-sell-burst", "symptom",
          "aggressive selling on spot; the long dealers hedge by selling the perpetual",
          [("calm", _LEAD_S), ("sell_burst", 75.0), ("calm", 165.0)],
          (*_INVENTORY_LONG, ("hedge_pressure", "sell")), perp=True, hedged=True),
    _spec("common-shock", "control",
          "negative control: buy shocks hit spot and perpetual at the same instants (no lag), "
          "dealers unhedged",
          [("calm", _LEAD_S), ("common_shock", 8.0), ("calm", 52.0), ("common_shock", 8.0),
           ("calm", 52.0), ("common_shock", 8.0), ("calm", 112.0)],
          perp=True, silent=_HEDGE),
    _spec("unhedged-burst", "control",
          "negative control: aggressive buying on spot, a perpetual alongside, dealers unhedged",
          [("calm", _LEAD_S), ("buy_burst", 75.0), ("calm", 165.0)],
          perp=True, silent=_HEDGE),
]  # fmt: skip

SCENARIOS: Mapping[str, ScenarioSpec] = MappingProxyType({s.name: s for s in _ALL})
"""Scenario name -> spec."""

CYCLE = "cycle"
"""The scenario ``mmradar demo`` plays by default."""
