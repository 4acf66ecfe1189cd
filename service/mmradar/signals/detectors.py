"""One small class per symptom (docs/signals.md), evaluated on the 1-s event-time stat clock.

Each detector reads one :class:`Sample` per second, updates its own robust baselines (frozen
while it — or a symptom reading the same baseline — fires), and sets, per side label of
:data:`~mmradar.signals.episodes.SYMPTOM_SIDES`, a ``score`` (higher = more anomalous), an ``on``
condition (the symptom is present) and an ``off`` condition (it is clearly gone). The
:class:`~mmradar.signals.alerts.AlertMachine` of each side turns those into episodes with
persistence, hysteresis, a minimum duration and a cooldown (:mod:`mmradar.signals.alerts`).

Definitions (defaults of ``[signals]`` in brackets; docs/signals.md, "Detectors"):

``spread_widening`` (side ``both``) — the quoted spread, time-averaged over each second
    ``S`` (bps of mid). ``z_S = robust_z(log S)`` against the 30-min bucketed median/MAD of
    ``log S``, scale floored at ``max(log(1 + tick/median S), spread_z_floor [0.1])``.
    **One-tick regime** (baseline median spread ≤ 1.5 ticks, e.g. BTCUSDT where the spread is
    one tick almost always and ``z_S`` is degenerate): also ``z_W`` = robust z of the share of
    the last ``spread_wide_window_seconds`` [10] with the spread wider than one tick, scale
    floored at ``spread_wide_floor`` [0.1]; score = ``max(z_S, z_W)``, else ``z_S``. On at
    score ≥ ``spread_z_on`` [4] for ``spread_on_seconds`` [2]; off at ≤ ``spread_z_off`` [2]
    for ``spread_off_seconds`` [4] (design: 10 s; calibrated shorter so that blow-outs
    10–30 s apart, e.g. successive sweeps of a one-sided book, are separate episodes).
    Cost-to-trade is deliberately not used: size-aware cost belongs to the depth symptoms.

``liquidity_evaporation`` (side = the evaporated side) — for each band ``x`` of
    ``evaporation_bands_bps`` [10, 50]: ``ρ_s = D_s(x)/B_s(x)`` (depth over its 30-min
    baseline median), ``drop_s = 1 − D_s/max_{10 s} D̃_s`` with ``D̃`` the persistent depth
    ``min(D_k, D_{k−1})`` (liquidity that rested through two ticks, so sub-second flicker does
    not set the reference). On (at any band) when ``(ρ_s ≤ evaporation_ratio_on [0.5] or
    (drop_s ≥ evaporation_drop_on [0.5] and ρ_s < evaporation_ratio_off))`` **and** the other
    side holds, ``ρ_o ≥ evaporation_other_ratio [0.8]``, for ``evaporation_on_seconds`` [3];
    off when ``ρ_s ≥ evaporation_ratio_off [0.7]`` at every band for
    ``evaporation_off_seconds`` [10]. Score: the collapsed fraction ``max(1 − ρ_s, drop_s)``
    ∈ [0, 1] over the bands (``drop_s`` counted only while ``ρ_s < evaporation_ratio_off``:
    depth falling back to normal after a surge is not evaporation). Bands whose baseline (both
    sides) is under ``thin_book_notional`` are ignored.

``depth_asymmetry`` (side = the heavy side) — ``DI = (D_b − D_a)/(D_b + D_a)`` at
    ``asymmetry_band_bps`` [10] (0 on a thin book, ``D_b + D_a < thin_book_notional``);
    ``DI_fast`` = EWMA with ``asymmetry_fast_half_life_seconds`` [1], ``DI_slow`` with
    ``asymmetry_slow_half_life_seconds`` [900]; ``z_DI = robust_z(DI_fast − DI_slow)``
    (floor ``asymmetry_z_floor`` [0.05]). Side ``bid`` on when ``DI_fast ≥ asymmetry_on [0.5]``
    and ``z_DI ≥ asymmetry_z_on [3]`` for ``asymmetry_on_seconds`` [2]; off at
    ``DI_fast ≤ asymmetry_off [0.3]`` for ``asymmetry_off_seconds`` [15]; ``ask`` mirrored.
    Score: ``z_DI`` toward the side (``max(±z_DI, 0)``). Bid-heavy = dealers short = upward.

``liquidity_pull`` (side ``both``) — at ``pull_band_bps`` [10]: ``R = (D_b + D_a)/(B_b + B_a)``
    and each side's ``ρ``. On when ``R ≤ pull_total_ratio_on [0.3]``, both ``ρ ≤
    pull_side_ratio_on [0.5]`` and (spread score ≥ ``pull_spread_z_on`` [3] or the
    depth-to-fill ratio ``(G_b + G_a)/(baseline G_b + G_a) ≥ pull_fill_ratio_on [3]``, where
    ``G_side`` is the bps distance from mid to the level at which cumulative notional reaches
    ``fill_notional`` [50 000]), for ``pull_on_seconds`` [2]; off at ``R ≥ pull_total_ratio_off
    [0.6]`` for ``pull_off_seconds`` [15]. Score: ``1 − R``. ``G`` walks book levels, so it is
    sampled for its baseline every :data:`FILL_SAMPLE_EVERY_S` seconds and computed every
    second only while the depth conditions hold.

``quote_skew`` (side = the heavy side at the touch) — ``skew = (microprice − mid)/spread =
    QI/2 ∈ [−½, ½]`` with ``QI = (q_b − q_a)/(q_b + q_a)`` at the touch, time-weighted exactly
    over every L1 state and averaged over the last ``skew_window_seconds`` [3]. Side ``bid``
    (bids strong, asks thin, microprice above mid) on when ``skew ≥ skew_on [0.25]`` **and**
    ``robust_z(skew) ≥ skew_z_on`` [2] against its 30-min baseline (floor ``skew_z_floor``
    [0.05]) for ``skew_on_seconds`` [2], not on a thin book and not while the spread score is
    ≥ ``spread_z_on`` (a blown-out spread means the touch is not the makers' quotes, so its
    queue imbalance says nothing about their reservation price; the design likewise
    requires a normal touch); off at ``skew ≤ skew_off [0.15]`` for ``skew_off_seconds`` [10];
    ``ask`` mirrored. Score: the skew toward the side. The z condition is an addition to
    the design (docs/signals.md): on real BTCUSDT spot the touch queues are so lopsided that
    ``|skew| ≥ 0.3`` holds ~18 % of the time (its robust scale is ≈ 0.22), so only an unusual
    skew is a symptom; at z ≥ 2 that needs ``|skew| ≳ 0.41`` there, while a book with steadier
    touch queues keeps the 0.25 threshold.

``volatility_spike`` (side ``both``) — 1-s mid log-returns ``r_k``; ``σ²_fast`` = EWMA of
    ``r²`` with ``volatility_fast_half_life_seconds`` [15]; ``σ²_slow`` = median over the
    baseline window of the per-minute mean of ``r²``, floored at
    ``(volatility_floor_bps [0.1]·10⁻⁴)²``; score ``VR = σ_fast/σ_slow``. On at
    ``VR ≥ volatility_ratio_on [3]`` for ``volatility_on_seconds`` [2]; off at
    ``VR ≤ volatility_ratio_off [1.5]`` for ``volatility_off_seconds`` [30].

Every alert shares ``min_firing_seconds`` [10] and ``cooldown_seconds`` [10].

Calibration (``mmradar score --calibration``, simulator seeds 101–105; docs/scorecard.md): the
defaults above that differ from the design values (docs/signals.md) — shorter persistence (skew,
asymmetry, volatility ``T_on`` 2 s instead of 5 s), faster smoothers (skew 3-s average, ``DI_fast``
half-life 1 s, ``σ_fast`` half-life 15 s instead of 30 s), ``skew_on`` 0.25, ``T_off`` 4 s for the
spread and a 10-s cooldown — were set there, each checked against the calm false-alert budget on
the noisy synthetic books of ``tests/signals/test_calm.py`` and on the real Binance captures
(``tests/signals/test_replay_episodes.py``). Evaporation keeps ``T_on`` 3 s: at 1–2 s the flicker
of a noisy one-tick book breaks that budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

from ..model import BAND_BPS
from .alerts import AlertMachine, AlertTiming
from .baselines import BucketedMedian, BucketedMedians, Ewma, RollingMax
from .params import SignalSettings

__all__ = [
    "DepthAsymmetry",
    "DepthBaselines",
    "Detector",
    "LiquidityEvaporation",
    "LiquidityPull",
    "QuoteSkew",
    "Sample",
    "SpreadWidening",
    "VolatilitySpike",
]

_NAN = math.nan
#: Samples a 1-minute bucket needs to enter a baseline (half of the 60 the clock produces).
MIN_BUCKET_SAMPLES = 30
#: Spread regime: baseline median spread at most this many ticks = the one-tick regime.
ONE_TICK_MAX_TICKS = 1.5
#: Depth-to-fill is sampled for its baseline every this many seconds (and every second while
#: the pull's depth conditions hold): it walks book levels, the rest of a tick does not.
FILL_SAMPLE_EVERY_S = 10


class Sample:
    """The features of one second of the stat clock, read by every detector.

    Book features are those of the book *in force* at the tick (the state before the first
    depth message at or after it); L1 averages are time-weighted over the L1 states the book
    went through.

    Attributes:
        ts_ns: the tick's event time (a whole second).
        mid: mid in force at the tick.
        best_bid: best bid price.
        best_ask: best ask price.
        tick: estimated price tick (the smallest positive touch price step or spread seen).
        tick_bps: the tick in bps of mid.
        spread_bps: spread time-averaged over the last second, bps of mid.
        wide_fraction: share of the last ``spread_wide_window_seconds`` with spread > 1 tick.
        skew: ``(microprice − mid)/spread`` time-averaged over ``skew_window_seconds``.
        bids: bid depth notional per band of ``BAND_BPS``.
        asks: ask depth notional per band.
        base_bids: baseline median bid depth per band.
        base_asks: baseline median ask depth per band.
        fill_bid_bps: depth-to-fill on the bid side (bps from mid to fill ``fill_notional``),
            as last computed (every ``FILL_SAMPLE_EVERY_S`` seconds, every second while the
            pull's depth conditions hold).
        fill_ask_bps: the same on the ask side.
        ret: 1-s mid log-return ending at the tick (NaN at the first tick of a book life).
        spread_score: the spread detector's score (set by it for the pull detector).
    """

    __slots__ = (
        "asks",
        "base_asks",
        "base_bids",
        "best_ask",
        "best_bid",
        "bids",
        "fill_ask_bps",
        "fill_bid_bps",
        "mid",
        "ret",
        "skew",
        "spread_bps",
        "spread_score",
        "tick",
        "tick_bps",
        "ts_ns",
        "wide_fraction",
    )

    def __init__(self) -> None:
        n = len(BAND_BPS)
        self.ts_ns = 0
        self.mid = _NAN
        self.best_bid = _NAN
        self.best_ask = _NAN
        self.tick = _NAN
        self.tick_bps = _NAN
        self.spread_bps = _NAN
        self.wide_fraction = _NAN
        self.skew = _NAN
        self.bids: tuple[float, ...] = (_NAN,) * n
        self.asks: tuple[float, ...] = (_NAN,) * n
        self.base_bids: tuple[float, ...] = (_NAN,) * n
        self.base_asks: tuple[float, ...] = (_NAN,) * n
        self.fill_bid_bps = _NAN
        self.fill_ask_bps = _NAN
        self.ret = _NAN
        self.spread_score = _NAN


class DepthBaselines:
    """Baseline median depth notional per (side, band): the reference ``B_side(x)``.

    Shared by the evaporation and pull detectors and reported in episode context and
    ``mmradar_depth_baseline_notional``.

    Args:
        minutes: baseline window (``baseline_minutes``).
    """

    __slots__ = ("_medians", "_n", "_series", "asks", "bids")

    def __init__(self, minutes: int) -> None:
        n = self._n = len(BAND_BPS)
        self._series = BucketedMedians(2 * n, minutes, min_samples=MIN_BUCKET_SAMPLES)
        self._medians = self._series.medians
        #: Baseline median bid depth per band of ``BAND_BPS`` (NaN until a bucket closed).
        self.bids: tuple[float, ...] = (_NAN,) * n
        #: Baseline median ask depth per band.
        self.asks: tuple[float, ...] = (_NAN,) * n

    def add(self, s: Sample, frozen: bool) -> None:
        """Add the sample's band depths (skipped while frozen) and set its baselines."""
        series = self._series
        series.add(s.bids + s.asks, s.ts_ns, frozen=frozen)
        medians = series.medians
        if medians is not self._medians:  # a minute closed
            n = self._n
            self._medians = medians
            self.bids = medians[:n]
            self.asks = medians[n:]
        s.base_bids = self.bids
        s.base_asks = self.asks

    def drop_current(self) -> None:
        """Discard the open minute buckets (resync)."""
        self._series.drop_current()


def _timing(p: SignalSettings, on_s: float, off_s: float) -> AlertTiming:
    return AlertTiming(on_s, off_s, p.min_firing_seconds, p.cooldown_seconds)


class Detector:
    """Base of the symptom detectors: per-side machines, scores and conditions.

    Attributes:
        symptom: the ``symptom`` label.
        sides: its ``side`` labels.
        machines: side → alert machine.
        scores: side → current score (higher = more anomalous; NaN when undefined).
        on: side → start condition at the last sample.
        off: side → end condition at the last sample.
    """

    symptom: ClassVar[str]
    sides: ClassVar[tuple[str, ...]]

    def __init__(self, timing: AlertTiming) -> None:
        self.machines = {side: AlertMachine(timing) for side in self.sides}
        self.scores: dict[str, float] = dict.fromkeys(self.sides, _NAN)
        self.on: dict[str, bool] = dict.fromkeys(self.sides, False)
        self.off: dict[str, bool] = dict.fromkeys(self.sides, False)
        #: True while any side fires (its baselines are frozen); kept by :meth:`sync_firing`.
        self.firing = False

    def sync_firing(self) -> None:
        """Recompute :attr:`firing` (after a machine changed state)."""
        self.firing = any(m.firing for m in self.machines.values())

    def _undefined(self) -> None:
        for side in self.sides:
            self.scores[side] = _NAN
            self.on[side] = False
            self.off[side] = False

    def reset_short(self) -> None:
        """Forget short windows and smoothers (resync); baselines are kept, except the minute
        being filled (no bucket spans an invalid period)."""

    def details(self) -> dict[str, float]:
        """Detector-specific statistics of the last sample (episode context, debugging)."""
        return {}


class SpreadWidening(Detector):
    """``spread_widening``: the quoted spread against its baseline (module docstring)."""

    symptom = "spread_widening"
    sides = ("both",)

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(_timing(p, p.spread_on_seconds, p.spread_off_seconds))
        self.p = p
        self.log_spread = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.wide = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.z_spread = _NAN
        self.z_wide = _NAN
        self.one_tick = False
        self._spread_bps = _NAN
        self._wide_fraction = _NAN

    def observe(self, s: Sample, frozen: bool) -> None:
        """Update baselines (unless ``frozen``) and the score from one sample."""
        p = self.p
        sp = s.spread_bps
        self._spread_bps = sp
        self._wide_fraction = s.wide_fraction
        x = math.log(sp) if sp > 0.0 else _NAN
        ts = s.ts_ns
        base = self.log_spread
        base.add(x, ts, frozen=frozen)
        self.wide.add(s.wide_fraction, ts, frozen=frozen)
        med = base.median
        if med != med or x != x:
            self.z_spread = self.z_wide = _NAN
            s.spread_score = _NAN
            self._undefined()
            return
        median_bps = math.exp(med)
        tick_bps = s.tick_bps
        floor = p.spread_z_floor
        if tick_bps > 0.0:
            floor = max(floor, math.log1p(tick_bps / median_bps))
            self.one_tick = median_bps <= ONE_TICK_MAX_TICKS * tick_bps
        else:
            self.one_tick = False
        z = self.z_spread = base.z(x, floor)
        score = z
        if self.one_tick:
            zw = self.z_wide = self.wide.z(s.wide_fraction, p.spread_wide_floor)
            if zw > score:
                score = zw
        else:
            self.z_wide = _NAN
        s.spread_score = score
        self.scores["both"] = score
        self.on["both"] = score >= p.spread_z_on
        self.off["both"] = score <= p.spread_z_off

    def reset_short(self) -> None:
        self.log_spread.drop_current()
        self.wide.drop_current()

    def details(self) -> dict[str, float]:
        return {
            "spread_bps": self._spread_bps,
            "baseline_spread_bps": math.exp(self.log_spread.median),
            "z_spread": self.z_spread,
            "wide_fraction": self._wide_fraction,
            "z_wide": self.z_wide,
            "one_tick_regime": 1.0 if self.one_tick else 0.0,
        }


class LiquidityEvaporation(Detector):
    """``liquidity_evaporation``: one side's near-touch depth collapses (module docstring)."""

    symptom = "liquidity_evaporation"
    sides = ("bid", "ask")

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(_timing(p, p.evaporation_on_seconds, p.evaporation_off_seconds))
        self.p = p
        self.bands = tuple(BAND_BPS.index(b) for b in p.evaporation_bands_bps)
        w = p.evaporation_drop_window_seconds
        self._max_bid = [RollingMax(w) for _ in self.bands]
        self._max_ask = [RollingMax(w) for _ in self.bands]
        self._prev_bid: list[float] = [_NAN] * len(self.bands)
        self._prev_ask: list[float] = [_NAN] * len(self.bands)
        self.ratios: dict[str, float] = {"bid": _NAN, "ask": _NAN}
        self.drops: dict[str, float] = {"bid": _NAN, "ask": _NAN}

    def observe(self, s: Sample) -> None:
        """Compute ratios, drops and conditions from one sample (depth baselines are shared)."""
        p = self.p
        on_b = on_a = False
        off_b = off_a = True
        score_b = score_a = _NAN
        min_rho_b = min_rho_a = _NAN
        max_drop_b = max_drop_a = _NAN
        seen = False
        for j, i in enumerate(self.bands):
            db, da = s.bids[i], s.asks[i]
            bb, ba = s.base_bids[i], s.base_asks[i]
            # persistent depth: what rested through this tick and the previous one
            pb = min(db, self._prev_bid[j]) if self._prev_bid[j] == self._prev_bid[j] else db
            pa = min(da, self._prev_ask[j]) if self._prev_ask[j] == self._prev_ask[j] else da
            self._prev_bid[j], self._prev_ask[j] = db, da
            mb = self._max_bid[j].push(pb)
            ma = self._max_ask[j].push(pa)
            if not (bb + ba >= p.thin_book_notional) or not (bb > 0.0 and ba > 0.0):
                continue
            seen = True
            rb, ra = db / bb, da / ba
            drop_b = 1.0 - db / mb if mb > 0.0 else 0.0
            drop_a = 1.0 - da / ma if ma > 0.0 else 0.0
            if rb <= p.evaporation_ratio_on or (
                drop_b >= p.evaporation_drop_on and rb < p.evaporation_ratio_off
            ):
                on_b = on_b or ra >= p.evaporation_other_ratio
            if ra <= p.evaporation_ratio_on or (
                drop_a >= p.evaporation_drop_on and ra < p.evaporation_ratio_off
            ):
                on_a = on_a or rb >= p.evaporation_other_ratio
            off_b = off_b and rb >= p.evaporation_ratio_off
            off_a = off_a and ra >= p.evaporation_ratio_off
            cb = max(0.0, 1.0 - rb, drop_b if rb < p.evaporation_ratio_off else 0.0)
            ca = max(0.0, 1.0 - ra, drop_a if ra < p.evaporation_ratio_off else 0.0)
            score_b = cb if not score_b >= cb else score_b
            score_a = ca if not score_a >= ca else score_a
            min_rho_b = rb if not min_rho_b <= rb else min_rho_b
            min_rho_a = ra if not min_rho_a <= ra else min_rho_a
            max_drop_b = drop_b if not max_drop_b >= drop_b else max_drop_b
            max_drop_a = drop_a if not max_drop_a >= drop_a else max_drop_a
        if not seen:
            self._undefined()
            self.ratios["bid"] = self.ratios["ask"] = _NAN
            return
        self.scores["bid"], self.scores["ask"] = min(score_b, 1.0), min(score_a, 1.0)
        self.on["bid"], self.on["ask"] = on_b, on_a
        self.off["bid"], self.off["ask"] = off_b, off_a
        self.ratios["bid"], self.ratios["ask"] = min_rho_b, min_rho_a
        self.drops["bid"], self.drops["ask"] = max_drop_b, max_drop_a

    def reset_short(self) -> None:
        for m in (*self._max_bid, *self._max_ask):
            m.clear()
        self._prev_bid = [_NAN] * len(self.bands)
        self._prev_ask = [_NAN] * len(self.bands)

    def details(self) -> dict[str, float]:
        return {
            "depth_ratio_bid": self.ratios["bid"],
            "depth_ratio_ask": self.ratios["ask"],
            "drop_bid": self.drops["bid"],
            "drop_ask": self.drops["ask"],
        }


class DepthAsymmetry(Detector):
    """``depth_asymmetry``: depth shifts toward one side (module docstring)."""

    symptom = "depth_asymmetry"
    sides = ("bid", "ask")

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(_timing(p, p.asymmetry_on_seconds, p.asymmetry_off_seconds))
        self.p = p
        self.band = BAND_BPS.index(p.asymmetry_band_bps)
        self.fast = Ewma(p.asymmetry_fast_half_life_seconds)
        self.slow = Ewma(p.asymmetry_slow_half_life_seconds)
        self.shift = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.di = _NAN
        self.z = _NAN
        self.thin = False

    def observe(self, s: Sample, frozen: bool) -> None:
        """Smooth the imbalance, update its shift baseline (unless frozen), set conditions."""
        p = self.p
        db, da = s.bids[self.band], s.asks[self.band]
        total = db + da
        if total != total:
            self._undefined()
            return
        self.thin = total < p.thin_book_notional
        di = self.di = 0.0 if self.thin else (db - da) / total
        ts = s.ts_ns
        fast = self.fast.update(di, ts)
        slow = self.slow.update(di, ts, frozen=frozen)
        shift = fast - slow
        self.shift.add(shift, ts, frozen=frozen)
        z = self.z = self.shift.z(shift, p.asymmetry_z_floor)
        self.scores["bid"] = max(z, 0.0) if z == z else _NAN
        self.scores["ask"] = max(-z, 0.0) if z == z else _NAN
        self.on["bid"] = fast >= p.asymmetry_on and z >= p.asymmetry_z_on
        self.on["ask"] = fast <= -p.asymmetry_on and z <= -p.asymmetry_z_on
        self.off["bid"] = fast <= p.asymmetry_off
        self.off["ask"] = fast >= -p.asymmetry_off

    def reset_short(self) -> None:
        self.fast.reset()
        self.shift.drop_current()

    def details(self) -> dict[str, float]:
        return {
            "depth_imbalance": self.di,
            "depth_imbalance_fast": self.fast.value,
            "depth_imbalance_slow": self.slow.value,
            "z_shift": self.z,
            "thin_book": 1.0 if self.thin else 0.0,
        }


class LiquidityPull(Detector):
    """``liquidity_pull``: near-touch depth collapses on both sides (module docstring)."""

    symptom = "liquidity_pull"
    sides = ("both",)

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(_timing(p, p.pull_on_seconds, p.pull_off_seconds))
        self.p = p
        self.band = BAND_BPS.index(p.pull_band_bps)
        per_bucket = max(1, MIN_BUCKET_SAMPLES // FILL_SAMPLE_EVERY_S)
        self.fill_bid = BucketedMedian(p.baseline_minutes, min_samples=per_bucket)
        self.fill_ask = BucketedMedian(p.baseline_minutes, min_samples=per_bucket)
        self.total_ratio = _NAN
        self.fill_ratio = _NAN

    def observe(self, s: Sample, frozen: bool, fills: Callable[[], tuple[float, float]]) -> None:
        """Update the conditions (and the depth-to-fill baselines, unless frozen).

        Args:
            s: the sample.
            frozen: the baselines must not learn from this sample.
            fills: computes ``(G_bid, G_ask)`` in bps; called only when needed.
        """
        p = self.p
        ts = s.ts_ns
        i = self.band
        db, da = s.bids[i], s.asks[i]
        bb, ba = s.base_bids[i], s.base_asks[i]
        depth_ok = bb + ba >= p.thin_book_notional and bb > 0.0 and ba > 0.0
        r = (db + da) / (bb + ba) if depth_ok else _NAN
        collapsed = (
            r <= p.pull_total_ratio_on
            and db / bb <= p.pull_side_ratio_on
            and da / ba <= p.pull_side_ratio_on
        )
        if collapsed or (ts // 1_000_000_000) % FILL_SAMPLE_EVERY_S == 0:
            s.fill_bid_bps, s.fill_ask_bps = fills()
            if not collapsed:
                self.fill_bid.add(s.fill_bid_bps, ts, frozen=frozen)
                self.fill_ask.add(s.fill_ask_bps, ts, frozen=frozen)
            gb, ga = self.fill_bid.median, self.fill_ask.median
            g = s.fill_bid_bps + s.fill_ask_bps
            self.fill_ratio = g / (gb + ga) if gb + ga > 0.0 else _NAN
        if not depth_ok:
            self.total_ratio = _NAN
            self._undefined()
            return
        self.total_ratio = r
        self.scores["both"] = max(0.0, 1.0 - r)
        self.on["both"] = collapsed and (
            s.spread_score >= p.pull_spread_z_on or self.fill_ratio >= p.pull_fill_ratio_on
        )
        self.off["both"] = r >= p.pull_total_ratio_off

    def reset_short(self) -> None:
        self.fill_bid.drop_current()
        self.fill_ask.drop_current()

    def details(self) -> dict[str, float]:
        return {"total_depth_ratio": self.total_ratio, "fill_ratio": self.fill_ratio}


class QuoteSkew(Detector):
    """``quote_skew``: the touch is heavy on one side (module docstring)."""

    symptom = "quote_skew"
    sides = ("bid", "ask")

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(_timing(p, p.skew_on_seconds, p.skew_off_seconds))
        self.p = p
        self.base = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.skew = _NAN
        self.z = _NAN

    def observe(self, s: Sample, frozen: bool) -> None:
        """Update the skew baseline (unless frozen) and the conditions."""
        p = self.p
        sk = self.skew = s.skew
        self.base.add(sk, s.ts_ns, frozen=frozen)
        z = self.z = self.base.z(sk, p.skew_z_floor)
        if sk != sk:
            self._undefined()
            return
        i = 0  # the narrowest band guards against thin books
        thin = not (s.bids[i] + s.asks[i] >= p.thin_book_notional)
        # a blown-out spread: the touch is not the makers' quotes, its imbalance no skew
        thin = thin or s.spread_score >= p.spread_z_on
        self.scores["bid"] = max(sk, 0.0)
        self.scores["ask"] = max(-sk, 0.0)
        self.on["bid"] = not thin and sk >= p.skew_on and z >= p.skew_z_on
        self.on["ask"] = not thin and sk <= -p.skew_on and z <= -p.skew_z_on
        self.off["bid"] = sk <= p.skew_off
        self.off["ask"] = sk >= -p.skew_off

    def reset_short(self) -> None:
        self.base.drop_current()

    def details(self) -> dict[str, float]:
        return {"skew": self.skew, "z_skew": self.z}


class VolatilitySpike(Detector):
    """``volatility_spike``: short-horizon realized volatility against its baseline."""

    symptom = "volatility_spike"
    sides = ("both",)

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(_timing(p, p.volatility_on_seconds, p.volatility_off_seconds))
        self.p = p
        self.fast = Ewma(p.volatility_fast_half_life_seconds)
        self.slow = BucketedMedian(
            p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES, reducer="mean"
        )
        self._floor_var = (p.volatility_floor_bps * 1e-4) ** 2
        self.ratio = _NAN

    def observe(self, s: Sample, frozen: bool) -> None:
        """Fold the 1-s return into σ_fast and (unless frozen) the σ_slow baseline."""
        r = s.ret
        ts = s.ts_ns
        r2 = r * r
        self.fast.update(r2, ts)
        self.slow.add(r2, ts, frozen=frozen)
        slow = self.slow.median
        fast = self.fast.value
        if slow != slow or fast != fast:
            self.ratio = _NAN
            self._undefined()
            return
        vr = self.ratio = math.sqrt(fast / max(slow, self._floor_var))
        self.scores["both"] = vr
        self.on["both"] = vr >= self.p.volatility_ratio_on
        self.off["both"] = vr <= self.p.volatility_ratio_off

    def reset_short(self) -> None:
        self.fast.reset()
        self.slow.drop_current()

    def details(self) -> dict[str, float]:
        slow = self.slow.median
        return {
            "volatility_ratio": self.ratio,
            "sigma_fast_bps": 1e4 * math.sqrt(self.fast.value) if self.fast.value >= 0 else _NAN,
            "sigma_slow_bps": 1e4 * math.sqrt(slow) if slow >= 0 else _NAN,
        }
