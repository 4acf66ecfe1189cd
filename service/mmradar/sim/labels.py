"""The labelling rule: from the 100 ms truth samples to episodes of mmradar's symptoms.

Each rule is a condition on one truth sample (the dealers' own state, never the observed book
the detectors read). An episode is a maximal run of samples where the condition holds; runs of
the same (symptom, side) separated by less than ``merge_s`` are merged, and runs shorter than
``min_s`` are dropped (``LabelParams``). ``start_ns``/``end_ns`` are the first and last sample
of the run (inclusive). With ``Q = Σ q_max·unit`` the dealers' combined hard limit (base units),
``N_side`` their combined full ladder, ``R_side`` what rests on that side now and ``net`` their
net position (``total_inventory``, plus the hedge position of dealers hedging on a perpetual:
they skew and keep their limits on it):

============================  =====================================================================
``quote_skew`` bid            dealers short: ``net ≤ −stress_fraction·Q`` (they raise
``depth_asymmetry`` bid       both quotes and shade the ask: bids heavy, microprice above mid)
``quote_skew`` ask            dealers long: ``net ≥ +stress_fraction·Q``
``depth_asymmetry`` ask
``liquidity_evaporation`` s   ``R_s ≤ evap_ratio·N_s`` and ``R_o ≥ evap_other·N_o`` (o = the other
                              side): the dealers' side s is off or reduced while o holds
``liquidity_pull`` both       no dealer has an order on either side
``spread_widening`` both      best dealer ask − best dealer bid (∞ if a side is unquoted by every
                              dealer) > ``spread_mult`` × its median over the run's calm samples
``volatility_spike`` both     the regime's σ is at least 3× the calm σ
============================  =====================================================================

``hedge_pressure`` (runs with the second venue, :mod:`mmradar.sim.perp`) is labelled from the
spot dealers' own hedge orders on the perpetual instead: the orders of one side (all dealers
together), in time order, form one *burst of hedging* while consecutive orders are less than
``hedge_gap_s`` apart; a burst whose filled quantity adds up to at least ``hedge_min_qty`` and
which lasts at least ``hedge_min_s`` is an episode from its first order to its last, with the
orders' side (``buy``: dealers short on spot buying the perpetual) on the perpetual's exchange
and symbol.

Sides follow docs/signals.md: positive = dealers short = upward pressure = side "bid" for the
heavy-side symptoms, and the evaporated side for ``liquidity_evaporation`` (a short dealer's ask
thins: "ask").
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Callable, Sequence

from .params import SimParams
from .types import TruthEpisode, TruthSample, VenueRun

__all__ = ["label_episodes", "label_hedges"]

_NS = 1_000_000_000


def _runs(
    samples: Sequence[TruthSample],
    cond: Callable[[TruthSample], bool],
    merge_ns: int,
    min_ns: int,
) -> list[tuple[int, int, str]]:
    runs: list[list[int]] = []  # [start index, end index]
    for i, s in enumerate(samples):
        if not cond(s):
            continue
        if runs and samples[i].ts_ns - samples[runs[-1][1]].ts_ns <= merge_ns:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return [
        (samples[a].ts_ns, samples[b].ts_ns, samples[a].regime)
        for a, b in runs
        if samples[b].ts_ns - samples[a].ts_ns >= min_ns
    ]


def label_episodes(samples: Sequence[TruthSample], p: SimParams) -> list[TruthEpisode]:
    """Apply the labelling rule (module docstring) to a run's truth samples.

    Returns:
        Episodes sorted by ``(start_ns, symptom, side)``.
    """
    lp = p.labels
    cap = sum(d.q_max * d.unit for d in p.dealers)
    thr = lp.stress_fraction * cap
    full = sum(d.unit * sum(d.ladder) for d in p.dealers)
    calm = [
        s.dealer_spread
        for s in samples
        if s.regime == "calm" and math.isfinite(s.dealer_spread) and s.dealer_spread > 0
    ]
    ref = statistics.median(calm) if calm else math.inf
    calm_sigma = p.sigma_bps

    def short(s: TruthSample) -> bool:
        return s.total_inventory + s.hedge_position <= -thr

    def long(s: TruthSample) -> bool:
        return s.total_inventory + s.hedge_position >= thr

    def evap(side: int) -> Callable[[TruthSample], bool]:
        def cond(s: TruthSample) -> bool:
            mine = sum(s.bid_size if side == 0 else s.ask_size)
            other = sum(s.ask_size if side == 0 else s.bid_size)
            return mine <= lp.evap_ratio * full and other >= lp.evap_other * full

        return cond

    def pulled(s: TruthSample) -> bool:
        return not any(s.bid_quoted) and not any(s.ask_quoted)

    def wide(s: TruthSample) -> bool:
        return s.dealer_spread > lp.spread_mult * ref

    def vol(s: TruthSample) -> bool:
        return s.sigma_bps >= 3.0 * calm_sigma

    rules: list[tuple[str, str, Callable[[TruthSample], bool]]] = [
        ("spread_widening", "both", wide),
        ("liquidity_evaporation", "bid", evap(0)),
        ("liquidity_evaporation", "ask", evap(1)),
        ("depth_asymmetry", "bid", short),
        ("depth_asymmetry", "ask", long),
        ("liquidity_pull", "both", pulled),
        ("quote_skew", "bid", short),
        ("quote_skew", "ask", long),
        ("volatility_spike", "both", vol),
    ]
    merge_ns = round(lp.merge_s * _NS)
    min_ns = round(lp.min_s * _NS)
    out = [
        TruthEpisode(symptom, side, a, b, regime)
        for symptom, side, cond in rules
        for a, b, regime in _runs(samples, cond, merge_ns, min_ns)
    ]
    out.sort(key=lambda e: (e.start_ns, e.symptom, e.side))
    return out


def label_hedges(
    venue: VenueRun, samples: Sequence[TruthSample], p: SimParams
) -> list[TruthEpisode]:
    """``hedge_pressure`` episodes from the hedge orders of ``venue`` (module docstring).

    Args:
        venue: the perpetual's output, with the dealers' hedge orders.
        samples: the spot truth samples (for the regime at an episode's start).
        p: the run's parameters.

    Returns:
        Episodes sorted by ``(start_ns, side)``.
    """
    lp = p.labels
    gap_ns = round(lp.hedge_gap_s * _NS)
    min_ns = round(lp.hedge_min_s * _NS)
    times = [s.ts_ns for s in samples]

    def regime_at(ts: int) -> str:
        i = bisect.bisect_right(times, ts) - 1
        return samples[max(i, 0)].regime if samples else ""

    out: list[TruthEpisode] = []
    for side in ("buy", "sell"):
        bursts: list[list[float]] = []  # [first ns, last ns, filled qty]
        for h in venue.hedges:
            if h.side != side:
                continue
            if bursts and h.ts_ns - bursts[-1][1] < gap_ns:
                bursts[-1][1] = h.ts_ns
                bursts[-1][2] += h.filled
            else:
                bursts.append([h.ts_ns, h.ts_ns, h.filled])
        for a, b, qty in bursts:
            if qty >= lp.hedge_min_qty and b - a >= min_ns:
                start, end = int(a), int(b)
                out.append(
                    TruthEpisode(
                        "hedge_pressure",
                        side,
                        start,
                        end,
                        regime_at(start),
                        exchange=venue.exchange,
                        symbol=venue.symbol,
                    )
                )
    out.sort(key=lambda e: (e.start_ns, e.side))
    return out
