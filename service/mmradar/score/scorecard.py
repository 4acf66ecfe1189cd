"""Aggregate driven runs into the scorecard, and write it as Markdown.

Definitions (docs/scorecard.md; matching in :mod:`mmradar.score.matching`):

Truth episodes
    The simulator's labels (``hedge_pressure``: on the perpetual; a detection reported on
    another venue is false, whatever its time); episodes of one ``(symptom, side)`` less than
    ``merge_s`` apart (10 s, the shortest alert release time) are merged into one before
    matching.

Scored period
    The detectors only run after their warm-up on a valid book (``armed``). A truth episode is
    **scored** when the detectors were armed at its start; a detection matched to (or
    redundant with) an unscored truth episode is ignored, neither true nor false.

Per ``(symptom, side)``, pooled over every run
    ``precision = TP/(TP + FP)`` (redundant re-fires excluded), ``recall = TP/scored truth``,
    ``F1`` their harmonic mean; detection latency = detected start − truth start, median and
    p90 over the matched pairs (linear interpolation between order statistics); end latency =
    detected end − truth end, median over the matched pairs; firing outside truth = the share
    of the detections' firing time not covered by any truth episode of the same key (truth as
    labelled, no tolerance).

False alerts per calm hour
    False detections (matched to no truth episode) that start in the ``calm`` regime, divided
    by the hours of ``calm`` regime during which the detectors were armed.

Negative controls
    In every run of a ``control`` scenario, the count of inventory-symptom episodes
    (:data:`INVENTORY_SYMPTOMS`), of ``hedge_pressure`` episodes and of all episodes. A silent
    control has zero of all three; a ``liquidity_evaporation`` episode marked ``cause: trade``
    (liquidity consumed by takers, not pulled by makers) is reported on its own and does not
    break the silence. The controls of the second venue (``common-shock``, ``unhedged-burst``)
    must keep ``hedge_pressure`` silent only (their scenario's ``silent``): the spot symptoms
    their flow really causes are labelled and scored like any other.

Dealer-inventory proxy and pressure (docs/scorecard.md)
    Per run, over its armed seconds on the 1-s grid, Spearman's ρ between the signal and
    ``−q_true`` (``q_true`` = the simulator's total dealer inventory, positive = long; the
    signals are positive when dealers are short, so a good signal correlates **positively**
    with ``−q_true``). Lead/lag: the lag ``L`` (seconds, |L| ≤ :data:`MAX_LAG_S`) maximising
    ``ρ(signal(t+L), −q_true(t))``; ``L > 0`` means the signal lags the true inventory.
    Reported as mean ± s.d. over runs (runs whose true inventory does not vary are skipped).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..fmt import fmt_fixed as _f
from ..fmt import fmt_pct as _pct
from ..signals.episodes import SYMPTOM_SIDES
from .matching import (
    DEFAULT_TOLERANCE,
    Episode,
    Tolerance,
    group_by_key,
    match_episodes,
    merge_close,
    time_outside,
)
from .runner import HEDGE_SYMPTOM_SIDES, RunResult
from .stats import lagged_correlations, mean, peak_lag, quantile, spearman, stdev

__all__ = [
    "HEDGE_SYMPTOM",
    "INVENTORY_SYMPTOMS",
    "MAX_LAG_S",
    "TARGETS",
    "ControlScore",
    "KeyScore",
    "ScenarioScore",
    "Scorecard",
    "SignalQuality",
    "Targets",
    "build_scorecard",
    "format_markdown",
    "scorecard_json",
    "signal_quality",
]

#: Symptoms that point at a dealer's inventory (one-sided); a negative control must not fire them.
INVENTORY_SYMPTOMS: tuple[str, ...] = ("liquidity_evaporation", "depth_asymmetry", "quote_skew")
#: The cross-venue hedging symptom (runs with a second venue); no control may fire it.
HEDGE_SYMPTOM = "hedge_pressure"
#: Largest lag searched for the proxy's lead/lag, seconds.
MAX_LAG_S = 60
_KEYS: tuple[tuple[str, str], ...] = tuple(
    (symptom, side)
    for symptom, sides in (*SYMPTOM_SIDES.items(), *HEDGE_SYMPTOM_SIDES.items())
    for side in sides
)


@dataclass(frozen=True, slots=True)
class Targets:
    """The acceptance targets the scorecard checks (not used to compute anything)."""

    recall: float = 0.9
    precision: float = 0.9
    median_latency_s: float = 5.0
    stretch_latency_s: float = 3.0
    median_end_latency_s: float = 10.0
    false_per_calm_hour: float = 0.5
    proxy_spearman: float = 0.6


TARGETS = Targets()


@dataclass(slots=True)
class KeyScore:
    """Matching counts of one ``(symptom, side)``, pooled over runs.

    Attributes:
        symptom: the symptom.
        side: its side.
        truth: scored truth episodes.
        detected: detections in the scored runs (ignored ones included).
        tp: matched pairs.
        fp: false detections.
        redundant: re-fires inside an already matched episode.
        ignored: detections matched to unscored truth episodes.
        calm_false: false detections starting in the calm regime.
        latencies_s: latency of every matched pair.
        end_latencies_s: end latency (detected end − truth end) of every matched pair.
        firing_ns: total firing time of the detections.
        outside_ns: the part of it outside every truth episode of the key.
    """

    symptom: str
    side: str
    truth: int = 0
    detected: int = 0
    tp: int = 0
    fp: int = 0
    redundant: int = 0
    ignored: int = 0
    calm_false: int = 0
    latencies_s: list[float] = field(default_factory=list)
    end_latencies_s: list[float] = field(default_factory=list)
    firing_ns: int = 0
    outside_ns: int = 0

    @property
    def fn(self) -> int:
        """Scored truth episodes never matched."""
        return self.truth - self.tp

    @property
    def precision(self) -> float:
        """TP/(TP + FP); NaN without detections."""
        n = self.tp + self.fp
        return self.tp / n if n else math.nan

    @property
    def recall(self) -> float:
        """TP/truth; NaN without truth episodes."""
        return self.tp / self.truth if self.truth else math.nan

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall (0 if both are 0; NaN if either is NaN)."""
        p, r = self.precision, self.recall
        if p != p or r != r:
            return math.nan
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    @property
    def latency_median_s(self) -> float:
        """Median latency (NaN without matches)."""
        return quantile(self.latencies_s, 0.5)

    @property
    def latency_p90_s(self) -> float:
        """90th-percentile latency (NaN without matches)."""
        return quantile(self.latencies_s, 0.9)

    @property
    def end_latency_median_s(self) -> float:
        """Median end latency (NaN without matches)."""
        return quantile(self.end_latencies_s, 0.5)

    @property
    def outside_share(self) -> float:
        """Share of the firing time outside every truth episode (NaN without firing time)."""
        return self.outside_ns / self.firing_ns if self.firing_ns else math.nan

    def add(self, other: KeyScore) -> None:
        """Pool ``other``'s counts into this one."""
        self.truth += other.truth
        self.detected += other.detected
        self.tp += other.tp
        self.fp += other.fp
        self.redundant += other.redundant
        self.ignored += other.ignored
        self.calm_false += other.calm_false
        self.latencies_s.extend(other.latencies_s)
        self.end_latencies_s.extend(other.end_latencies_s)
        self.firing_ns += other.firing_ns
        self.outside_ns += other.outside_ns


@dataclass(frozen=True, slots=True)
class SignalQuality:
    """How one signal tracks the true dealer shortness ``−q_true`` in one run.

    Attributes:
        n: grid seconds used.
        spearman: ρ(signal, −q_true) at lag 0.
        peak_lag_s: the lag of the highest ρ (> 0: the signal lags).
        peak_spearman: ρ at that lag.
    """

    n: int
    spearman: float
    peak_lag_s: int
    peak_spearman: float


def signal_quality(
    signal: Sequence[float],
    q_true: Sequence[float],
    armed: Sequence[bool] | None = None,
    *,
    max_lag_s: int = MAX_LAG_S,
) -> SignalQuality:
    """Spearman ρ of ``signal`` vs ``−q_true`` on a 1-s grid, and the lag of its peak.

    Args:
        signal: the signal (positive = dealers short), one value per second.
        q_true: the true dealer inventory (positive = long), same grid.
        armed: seconds to use (all if None); the series is cut to the first..last armed
            second, so lags stay in seconds.
        max_lag_s: largest lag searched.

    Returns:
        The quality figures (NaN ρ when a series is constant).
    """
    if armed is not None:
        idx = [i for i, a in enumerate(armed) if a]
        if not idx:
            return SignalQuality(0, math.nan, 0, math.nan)
        lo, hi = idx[0], idx[-1] + 1
        signal, q_true = signal[lo:hi], q_true[lo:hi]
    short = [-q for q in q_true]
    rho = spearman(signal, short)
    n = sum(1 for a, b in zip(signal, short, strict=True) if a == a and b == b)
    lag, peak = peak_lag(lagged_correlations(signal, short, max_lag_s))
    return SignalQuality(n, rho, lag, peak)


@dataclass(slots=True)
class ControlScore:
    """Firings in the runs of one control scenario.

    Attributes:
        scenario: the scenario.
        runs: runs of it.
        armed_hours: hours the detectors were armed.
        inventory_firings: episodes of :data:`INVENTORY_SYMPTOMS` (evaporation marked
            ``cause: trade`` excluded), in the controls that must keep them silent.
        traded_evaporations: ``liquidity_evaporation`` episodes marked ``cause: trade``.
        hedge_firings: ``hedge_pressure`` episodes.
        all_firings: every episode.
        by_key: episodes per ``symptom/side``.
        silent: the symptoms the control must not fire.
    """

    scenario: str
    runs: int = 0
    armed_hours: float = 0.0
    inventory_firings: int = 0
    traded_evaporations: int = 0
    hedge_firings: int = 0
    all_firings: int = 0
    by_key: dict[str, int] = field(default_factory=dict)
    silent: tuple[str, ...] = (*INVENTORY_SYMPTOMS, HEDGE_SYMPTOM)


@dataclass(slots=True)
class ScenarioScore:
    """Per-scenario totals.

    Attributes:
        scenario: the name.
        kind: symptom, calm or control.
        runs: runs of it.
        expected: its expected ``symptom/side`` labels.
        truth: scored truth episodes (of detector symptoms).
        unscored_truth: truth episodes before the detectors were armed.
        detected: detections.
        tp: matched.
        fp: false.
        armed_hours: hours armed.
        calm_hours: hours armed in the calm regime.
        resyncs: book resyncs.
    """

    scenario: str
    kind: str
    runs: int = 0
    expected: tuple[str, ...] = ()
    truth: int = 0
    unscored_truth: int = 0
    detected: int = 0
    tp: int = 0
    fp: int = 0
    armed_hours: float = 0.0
    calm_hours: float = 0.0
    resyncs: int = 0

    @property
    def recall(self) -> float:
        """TP/truth (NaN without truth)."""
        return self.tp / self.truth if self.truth else math.nan


@dataclass(slots=True)
class Scorecard:
    """The whole scorecard.

    Attributes:
        keys: per ``(symptom, side)``, in ``SYMPTOM_SIDES`` order.
        total: all keys pooled.
        calm_hours: armed hours in the calm regime (the false-alert denominator).
        armed_hours: armed hours.
        event_hours: simulated hours.
        runs: number of runs.
        seeds: the seeds.
        scenarios: per scenario.
        controls: per control scenario.
        proxy: per-run quality of ``mmradar_dealer_inventory_proxy``, ``(scenario, seed, q)``.
        pressure: per-run quality of ``mmradar_dealer_pressure``.
        unknown_truth: truth episodes of labels no detector reports, by ``symptom/side``.
        tolerance: the matching window.
        targets: the targets checked.
    """

    keys: dict[tuple[str, str], KeyScore]
    total: KeyScore
    calm_hours: float
    armed_hours: float
    event_hours: float
    runs: int
    seeds: tuple[int, ...]
    scenarios: dict[str, ScenarioScore]
    controls: dict[str, ControlScore]
    proxy: list[tuple[str, int, SignalQuality]]
    pressure: list[tuple[str, int, SignalQuality]]
    unknown_truth: dict[str, int]
    tolerance: Tolerance
    targets: Targets = TARGETS

    def false_per_calm_hour(self, key: KeyScore) -> float:
        """``key.calm_false`` per calm hour (NaN without calm time)."""
        return key.calm_false / self.calm_hours if self.calm_hours > 0 else math.nan

    @property
    def control_inventory_firings(self) -> int:
        """Inventory-symptom episodes over every control run that must keep them silent."""
        return sum(c.inventory_firings for c in self.controls.values())

    @property
    def control_hedge_firings(self) -> int:
        """``hedge_pressure`` episodes over every control run."""
        return sum(c.hedge_firings for c in self.controls.values())


def _score_run(
    result: RunResult, tolerance: Tolerance
) -> tuple[dict[tuple[str, str], KeyScore], int, dict[str, int]]:
    """Per-key scores of one run, its unscored truth count, and unknown-label truth counts."""
    truth_by_key = group_by_key(t.episode for t in result.truth)
    det_by_key = group_by_key(result.detected)
    out: dict[tuple[str, str], KeyScore] = {}
    unscored = 0
    unknown: dict[str, int] = {}
    for key, eps in truth_by_key.items():
        if key not in _KEYS:
            label = f"{key[0]}/{key[1]}"
            unknown[label] = unknown.get(label, 0) + len(eps)
    for key in _KEYS:
        truths = merge_close(truth_by_key.get(key, []), tolerance.merge_s)
        dets: list[Episode] = det_by_key.get(key, [])
        ks = KeyScore(*key)
        if key[0] == HEDGE_SYMPTOM:
            # a hedge reported on another venue than the one the hedgers trade on is false
            wrong = [d for d in dets if d.cause != result.hedge_exchange]
            dets = [d for d in dets if d.cause == result.hedge_exchange]
            ks.fp += len(wrong)
            ks.detected += len(wrong)
            ks.calm_false += sum(1 for d in wrong if result.regime_at(d.start_ns) == "calm")
        scored = [result.armed_at(t.start_ns) for t in truths]
        unscored += scored.count(False)
        m = match_episodes(truths, dets, tolerance)
        ks.truth = sum(scored)
        ks.detected += len(dets)
        # a redundant detection is attributed to the truth episodes it was eligible for; it
        # is ignored when all of those are unscored, like a match to an unscored episode
        for (i, _), lat, end in zip(m.pairs, m.latencies_s, m.end_latencies_s, strict=True):
            if scored[i]:
                ks.tp += 1
                ks.latencies_s.append(lat)
                ks.end_latencies_s.append(end)
            else:
                ks.ignored += 1
        ks.firing_ns, ks.outside_ns = time_outside(dets, truths)
        for j in m.redundant:
            if _eligible_scored(dets[j], truths, scored, tolerance):
                ks.redundant += 1
            else:
                ks.ignored += 1
        ks.fp += len(m.false)
        ks.calm_false += sum(1 for j in m.false if result.regime_at(dets[j].start_ns) == "calm")
        out[key] = ks
    return out, unscored, unknown


def _eligible_scored(
    det: Episode, truths: Sequence[Episode], scored: Sequence[bool], tolerance: Tolerance
) -> bool:
    pre = round(tolerance.pre_s * 1e9)
    post = round(tolerance.post_s * 1e9)
    return any(
        s and t.start_ns - pre <= det.start_ns <= t.end_ns + post
        for t, s in zip(truths, scored, strict=True)
    )


def build_scorecard(
    results: Sequence[RunResult],
    *,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    targets: Targets = TARGETS,
    qualities: Mapping[tuple[str, int], tuple[SignalQuality, SignalQuality]] | None = None,
) -> Scorecard:
    """Score every run and pool the figures (see the module docstring).

    Args:
        results: the driven runs, in a deterministic order.
        tolerance: the matching window.
        targets: the targets to check.
        qualities: precomputed ``(proxy, pressure)`` quality per ``(scenario, seed)``
            (computed here for runs missing from it).

    Returns:
        The scorecard.
    """
    keys = {key: KeyScore(*key) for key in _KEYS}
    scenarios: dict[str, ScenarioScore] = {}
    controls: dict[str, ControlScore] = {}
    unknown: dict[str, int] = {}
    proxy: list[tuple[str, int, SignalQuality]] = []
    pressure: list[tuple[str, int, SignalQuality]] = []
    calm_s = armed_s = 0
    event_s = 0.0
    for r in results:
        per_key, unscored, unk = _score_run(r, tolerance)
        for label, n in unk.items():
            unknown[label] = unknown.get(label, 0) + n
        sc = scenarios.get(r.scenario)
        if sc is None:
            sc = scenarios[r.scenario] = ScenarioScore(
                r.scenario, r.kind, expected=tuple(f"{s}/{d}" for s, d in r.expected)
            )
        sc.runs += 1
        sc.unscored_truth += unscored
        sc.resyncs += r.resyncs
        run_armed, run_calm = r.armed_s, r.calm_armed_s
        sc.armed_hours += run_armed / 3600
        sc.calm_hours += run_calm / 3600
        for key, ks in per_key.items():
            keys[key].add(ks)
            sc.truth += ks.truth
            sc.detected += ks.detected
            sc.tp += ks.tp
            sc.fp += ks.fp
        calm_s += run_calm
        armed_s += run_armed
        event_s += r.duration_s
        if r.kind == "control":
            cs = controls.get(r.scenario)
            if cs is None:
                cs = controls[r.scenario] = ControlScore(r.scenario)
                if r.silent:
                    cs.silent = tuple(r.silent)
            cs.runs += 1
            cs.armed_hours += run_armed / 3600
            for e in r.detected:
                cs.all_firings += 1
                if e.symptom == HEDGE_SYMPTOM:
                    cs.hedge_firings += 1
                elif e.symptom not in cs.silent:
                    pass
                elif e.symptom == "liquidity_evaporation" and e.cause == "trade":
                    cs.traded_evaporations += 1
                elif e.symptom in INVENTORY_SYMPTOMS:
                    cs.inventory_firings += 1
                label = f"{e.symptom}/{e.side}"
                cs.by_key[label] = cs.by_key.get(label, 0) + 1
        q = qualities.get((r.scenario, r.seed)) if qualities is not None else None
        if q is None:
            s = r.series
            q = (
                signal_quality(s.proxy, s.q_true, s.armed),
                signal_quality(s.pressure, s.q_true, s.armed),
            )
        proxy.append((r.scenario, r.seed, q[0]))
        pressure.append((r.scenario, r.seed, q[1]))
    total = KeyScore("all", "")
    for ks in keys.values():
        total.add(ks)
    return Scorecard(
        keys=keys,
        total=total,
        calm_hours=calm_s / 3600,
        armed_hours=armed_s / 3600,
        event_hours=event_s / 3600,
        runs=len(results),
        seeds=tuple(sorted({r.seed for r in results})),
        scenarios=scenarios,
        controls=controls,
        proxy=proxy,
        pressure=pressure,
        unknown_truth=unknown,
        tolerance=tolerance,
        targets=targets,
    )


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _seeds(seeds: Iterable[int]) -> str:
    """``1, 2, 3, 5`` → ``1–3, 5``."""
    s = sorted(set(seeds))
    parts: list[str] = []
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[j] + 1:
            j += 1
        parts.append(f"{s[i]}–{s[j]}" if j > i + 1 else ", ".join(map(str, s[i : j + 1])))
        i = j + 1
    return ", ".join(parts)


def _quality_stats(rows: Sequence[tuple[str, int, SignalQuality]]) -> dict[str, float]:
    rhos = [q.spearman for _, _, q in rows if q.spearman == q.spearman]
    lags = [float(q.peak_lag_s) for _, _, q in rows if q.peak_spearman == q.peak_spearman]
    peaks = [q.peak_spearman for _, _, q in rows if q.peak_spearman == q.peak_spearman]
    return {
        "runs": float(len(rhos)),
        "mean": mean(rhos),
        "sd": stdev(rhos),
        "min": min(rhos) if rhos else math.nan,
        "lag_median": quantile(lags, 0.5),
        "peak_mean": mean(peaks),
    }


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else ("pass" if ok else "**miss**")


def target_misses(card: Scorecard) -> list[str]:
    """Human-readable list of the targets the scorecard misses (empty: all met)."""
    t = card.targets
    misses: list[str] = []
    for ks in card.keys.values():
        if ks.truth == 0 and ks.detected == 0:
            continue
        name = f"{ks.symptom}/{ks.side}"
        if ks.truth and not ks.recall >= t.recall:
            misses.append(f"{name}: recall {_f(ks.recall)} < {t.recall}")
        if ks.tp + ks.fp and not ks.precision >= t.precision:
            misses.append(f"{name}: precision {_f(ks.precision)} < {t.precision}")
        if ks.latencies_s and not ks.latency_median_s <= t.median_latency_s:
            misses.append(
                f"{name}: median latency {_f(ks.latency_median_s, 1)} s > {t.median_latency_s} s"
            )
        if ks.end_latencies_s and not ks.end_latency_median_s <= t.median_end_latency_s:
            misses.append(
                f"{name}: median end latency {_f(ks.end_latency_median_s, 1)} s > "
                f"{t.median_end_latency_s} s"
            )
        fpch = card.false_per_calm_hour(ks)
        if fpch == fpch and not fpch <= t.false_per_calm_hour:
            misses.append(
                f"{name}: {_f(fpch)} false alerts per calm hour > {t.false_per_calm_hour}"
            )
    if card.control_inventory_firings:
        misses.append(
            f"negative controls: {card.control_inventory_firings} inventory-symptom episode(s)"
        )
    if card.control_hedge_firings:
        misses.append(f"negative controls: {card.control_hedge_firings} hedge_pressure episode(s)")
    rho = _quality_stats(card.proxy)["mean"]
    if rho == rho and not rho >= t.proxy_spearman:
        misses.append(f"inventory proxy: Spearman {_f(rho)} < {t.proxy_spearman}")
    return misses


def format_markdown(card: Scorecard, *, title: str = "mmradar detector scorecard") -> str:
    """The scorecard as Markdown (deterministic: no wall-clock figures).

    Args:
        card: the scorecard.
        title: the level-1 heading.

    Returns:
        Markdown text ending with a newline.
    """
    t = card.targets
    tol = card.tolerance
    lines = [f"# {title}", ""]
    kinds: dict[str, list[str]] = {}
    for sc in card.scenarios.values():
        kinds.setdefault(sc.kind, []).append(sc.scenario)
    lines.append(
        f"{card.runs} runs: seeds {_seeds(card.seeds)} × "
        + "; ".join(f"{k} scenarios {', '.join(v)}" for k, v in kinds.items())
        + f". {card.event_hours:.2f} h of simulated event time, {card.armed_hours:.2f} h with "
        f"the detectors armed, {card.calm_hours:.2f} h of it in the calm regime."
    )
    lines.append("")
    lines.append(
        f"Matching: a detection matches a truth episode of the same symptom and side when it "
        f"starts within [start − {tol.pre_s:g} s, end + {tol.post_s:g} s], one-to-one; re-fires "
        f"inside a matched episode are *redundant* (neither TP nor FP). Latency = detection "
        f"start − truth start (event time); end latency = detection end − truth end (matched "
        f"pairs); outside = share of the firing time not covered by a truth episode of the same "
        f"symptom and side. False alerts per calm hour = unmatched detections starting in the "
        f"calm regime / armed calm hours."
    )
    lines.append("")
    lines.append("## Symptoms")
    lines.append("")
    lines.append(
        "| symptom | side | truth | detected | TP | FP | redundant | precision | recall | F1 "
        "| median latency s | p90 latency s | median end latency s | outside | false / calm h "
        "| targets |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for ks in [*card.keys.values(), card.total]:
        fpch = card.false_per_calm_hour(ks)
        if ks is card.total:
            verdict = ""
        elif ks.truth == 0 and ks.detected == 0:
            verdict = "no episodes"
        else:
            checks = [
                ks.recall >= t.recall if ks.truth else None,
                ks.precision >= t.precision if ks.tp + ks.fp else None,
                ks.latency_median_s <= t.median_latency_s if ks.latencies_s else None,
                ks.end_latency_median_s <= t.median_end_latency_s if ks.end_latencies_s else None,
                fpch <= t.false_per_calm_hour if fpch == fpch else None,
            ]
            known = [c for c in checks if c is not None]
            verdict = _mark(all(known)) if known else "–"
        name = "**all**" if ks is card.total else f"`{ks.symptom}`"
        lines.append(
            f"| {name} | {ks.side} | {ks.truth} | {ks.detected} | {ks.tp} | {ks.fp} "
            f"| {ks.redundant} | {_f(ks.precision)} | {_f(ks.recall)} | {_f(ks.f1)} "
            f"| {_f(ks.latency_median_s, 1)} | {_f(ks.latency_p90_s, 1)} "
            f"| {_f(ks.end_latency_median_s, 1)} | {_pct(ks.outside_share)} | {_f(fpch)} "
            f"| {verdict} |"
        )
    lines.append("")
    lines.append(
        f"Targets: recall ≥ {t.recall}, precision ≥ {t.precision}, median latency ≤ "
        f"{t.median_latency_s:g} s (stretch {t.stretch_latency_s:g} s), median end latency ≤ "
        f"{t.median_end_latency_s:g} s, ≤ {t.false_per_calm_hour} false alerts per calm hour "
        f"per symptom, negative controls silent, proxy Spearman ≥ {t.proxy_spearman}."
    )
    if card.unknown_truth:
        lines.append("")
        lines.append(
            "Truth labels no detector reports (not scored): "
            + ", ".join(f"{k} ×{n}" for k, n in sorted(card.unknown_truth.items()))
        )
    lines.append("")
    lines.append("## Negative controls")
    lines.append("")
    if card.controls:
        lines.append(
            "| scenario | runs | armed h | must stay silent | inventory-symptom episodes "
            "| evaporation marked cause: trade | hedge_pressure episodes | all episodes | which |"
        )
        lines.append("|---|---:|---:|---|---:|---:|---:|---:|---|")
        for cs in card.controls.values():
            which = ", ".join(f"{k} ×{n}" for k, n in sorted(cs.by_key.items())) or "none"
            silent = (
                "inventory symptoms, hedge_pressure"
                if set(INVENTORY_SYMPTOMS) <= set(cs.silent)
                else ", ".join(cs.silent)
            )
            inventory = cs.inventory_firings if set(INVENTORY_SYMPTOMS) <= set(cs.silent) else "–"
            lines.append(
                f"| {cs.scenario} | {cs.runs} | {cs.armed_hours:.2f} | {silent} | {inventory} "
                f"| {cs.traded_evaporations} | {cs.hedge_firings} | {cs.all_firings} | {which} |"
            )
        lines.append("")
        lines.append(
            f"Inventory symptoms: {', '.join(INVENTORY_SYMPTOMS)}; a liquidity_evaporation "
            "episode marked cause: trade (takers consumed the liquidity, makers kept quoting) "
            "is counted on its own, not as an inventory symptom. The controls of the second "
            "venue must keep hedge_pressure silent; the spot symptoms their flow causes are "
            "labelled and scored in the symptom table."
        )
    else:
        lines.append("No control scenario was run.")
    lines.append("")
    lines.append("## Dealer-inventory proxy and pressure vs true dealer inventory")
    lines.append("")
    lines.append(
        "Per run, over the armed seconds of the 1-s grid: Spearman ρ between the signal and "
        "**−q_true** (q_true = total dealer inventory, positive = long; both signals are "
        "positive when dealers are short, so ρ > 0 is the right sign). Peak lag: the lag L "
        f"(|L| ≤ {MAX_LAG_S} s) maximising ρ(signal(t + L), −q_true(t)); L > 0 = the signal lags."
    )
    lines.append("")
    lines.append(
        "| signal | runs | ρ(signal, −q_true) mean ± sd | min | median peak lag s "
        "| ρ at peak lag (mean) | target |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---|")
    for name, rows, target in (
        ("`mmradar_dealer_inventory_proxy`", card.proxy, t.proxy_spearman),
        ("`mmradar_dealer_pressure`", card.pressure, None),
    ):
        st = _quality_stats(rows)
        verdict = "–" if target is None or st["mean"] != st["mean"] else _mark(st["mean"] >= target)
        lines.append(
            f"| {name} | {int(st['runs'])} | {_f(st['mean'])} ± {_f(st['sd'])} | {_f(st['min'])} "
            f"| {_f(st['lag_median'], 0)} | {_f(st['peak_mean'])} | {verdict} |"
        )
    lines.append("")
    lines.append("Per scenario (mean ρ over seeds): " + _per_scenario_rho(card) + ".")
    lines.append("")
    lines.append("## Per scenario")
    lines.append("")
    lines.append(
        "| scenario | kind | runs | expected | truth (scored) | before warm-up | detected | TP "
        "| FP | recall | armed h | calm h | resyncs |"
    )
    lines.append("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sc in card.scenarios.values():
        lines.append(
            f"| {sc.scenario} | {sc.kind} | {sc.runs} | {', '.join(sc.expected) or '–'} "
            f"| {sc.truth} | {sc.unscored_truth} | {sc.detected} | {sc.tp} | {sc.fp} "
            f"| {_f(sc.recall)} | {sc.armed_hours:.2f} | {sc.calm_hours:.2f} | {sc.resyncs} |"
        )
    lines.append("")
    misses = target_misses(card)
    lines.append("## Targets missed")
    lines.append("")
    if misses:
        lines.extend(f"- {m}" for m in misses)
    else:
        lines.append("None: every target is met.")
    lines.append("")
    return "\n".join(lines)


def _per_scenario_rho(card: Scorecard) -> str:
    by: dict[str, list[float]] = {}
    for scenario, _, q in card.proxy:
        by.setdefault(scenario, []).append(q.spearman)
    parts = [f"{s} {_f(mean(v))}" for s, v in by.items()]
    return "; ".join(parts) if parts else "none"


def _num(x: float) -> float | None:
    return x if x == x and math.isfinite(x) else None


def scorecard_json(card: Scorecard) -> dict[str, object]:
    """The scorecard's figures as a JSON-serialisable dict (``scorecard.json``)."""

    def key_dict(ks: KeyScore) -> dict[str, object]:
        return {
            "symptom": ks.symptom,
            "side": ks.side,
            "truth": ks.truth,
            "detected": ks.detected,
            "tp": ks.tp,
            "fp": ks.fp,
            "redundant": ks.redundant,
            "ignored": ks.ignored,
            "precision": _num(ks.precision),
            "recall": _num(ks.recall),
            "f1": _num(ks.f1),
            "latency_median_s": _num(ks.latency_median_s),
            "latency_p90_s": _num(ks.latency_p90_s),
            "end_latency_median_s": _num(ks.end_latency_median_s),
            "firing_outside_truth_share": _num(ks.outside_share),
            "false_per_calm_hour": _num(card.false_per_calm_hour(ks)),
        }

    proxy = _quality_stats(card.proxy)
    pressure = _quality_stats(card.pressure)
    return {
        "runs": card.runs,
        "seeds": list(card.seeds),
        "event_hours": card.event_hours,
        "armed_hours": card.armed_hours,
        "calm_hours": card.calm_hours,
        "tolerance": {
            "pre_s": card.tolerance.pre_s,
            "post_s": card.tolerance.post_s,
            "merge_s": card.tolerance.merge_s,
        },
        "symptoms": [key_dict(ks) for ks in card.keys.values()],
        "all": key_dict(card.total),
        "controls": {
            c.scenario: {
                "runs": c.runs,
                "inventory_firings": c.inventory_firings,
                "traded_evaporations": c.traded_evaporations,
                "hedge_firings": c.hedge_firings,
                "all_firings": c.all_firings,
                "silent": list(c.silent),
            }
            for c in card.controls.values()
        },
        "proxy_spearman_mean": _num(proxy["mean"]),
        "proxy_peak_lag_median_s": _num(proxy["lag_median"]),
        "pressure_spearman_mean": _num(pressure["mean"]),
        "pressure_peak_lag_median_s": _num(pressure["lag_median"]),
        "targets_missed": target_misses(card),
    }
