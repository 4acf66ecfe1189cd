"""One small class per symptom (docs/signals.md), evaluated on the 1-s event-time stat clock.

Each detector reads one :class:`Sample` per second, updates its own robust baselines (frozen
while it — or a symptom reading the same baseline — fires), reduces the sample to a
standardized feature ``z`` (pre-change model: the baseline's median and robust scale) and
decides with a sequential test (:mod:`mmradar.signals.sequential`): a CUSUM per
``(symptom, side)`` whose threshold ``h`` gives the stated average run length to a false alarm
(``arl0_hours``), and, while the episode fires, the mirror CUSUM that detects the return to the
pre-change model (the end). The :class:`~mmradar.signals.alerts.AlertMachine` of each side keeps
what the sequential statistic does not make redundant: the minimum duration and the cooldown
(persistence and release timers are the CUSUMs themselves now).

Features and gates (the ``[signals]`` keys; their defaults are declared once, in
:class:`~mmradar.signals.params.SignalSettings`, and listed in docs/configuration.md;
docs/signals.md, "Detectors"):

``spread_widening`` (side ``both``) — ``z_S = robust_z(log S)`` of the spread ``S`` (bps,
    time-averaged over each second), scale floored at ``max(log(1 + tick/median S),
    spread_z_floor)``; in the **one-tick regime** (baseline median ≤ 1.5 ticks) also
    ``z_W``, the robust z of the share of the last ``spread_wide_window_seconds`` with the
    spread wider than one tick (floor ``spread_wide_floor``); ``z = max(z_S, z_W)``
    there. CUSUM tuned to ``spread_shift``.

``liquidity_evaporation`` (side = the side that emptied) — the side's **near-touch depth**
    ``N_s`` (notional of its best ``near_touch_levels`` price levels: where makers quote,
    whatever the mid does) against its baseline: ``z_s = robust_z(log N_s)``, scale floored at
    ``depth_log_floor``; a drop is ``−z_s``, CUSUM tuned to ``evaporation_shift``.
    Gate: the other side holds (``N_o ≥ evaporation_other_ratio`` × its baseline median)
    and the book is not thin. Score: the collapsed fraction ``1 − N_s/B_s`` ∈ [0, 1]. Each
    episode carries its **cause** from the pulled-versus-traded attribution
    (:mod:`mmradar.signals.removal`): removals at the side's 10-bps band over the last
    ``removal_window_seconds`` that were ≥ ⅔ cancelled (``cancel``), ≤ ⅓ (``trade``) or in
    between (``mixed``); a drop that is trade-led — takers consuming liquidity the makers keep
    quoting — does not start an episode.

``depth_asymmetry`` (side = the heavy side) — the near-touch depth imbalance
    ``DI = (N_b − N_a)/(N_b + N_a)`` (0 on a thin book), ``z = robust_z(DI)`` (floor
    ``asymmetry_z_floor``); side ``bid`` tests ``+z``, ``ask`` tests ``−z``, tuned to
    ``asymmetry_shift``. Score: ``max(±z, 0)``. Bid-heavy = dealers short = upward.

``liquidity_pull`` (side ``both``) — at ``pull_band_bps``: ``R = (D_b + D_a)/(B_b +
    B_a)``; ``z = log R`` over its robust scale (floored at ``depth_log_floor``), a drop tested
    with ``pull_shift``. Gate (the two-sided collapse of the design): ``R ≤
    pull_total_ratio_on``, both ``ρ ≤ pull_side_ratio_on``, and (spread score ≥
    ``pull_spread_z_on`` or depth-to-fill ``(G_b + G_a)/(baseline) ≥ pull_fill_ratio_on``,
    ``G`` the bps distance from mid to ``fill_notional``). Score: ``1 − R``.
    ``G`` walks book levels, so it is sampled for its baseline every
    :data:`FILL_SAMPLE_EVERY_S` seconds and every second only while the depth conditions hold.

``quote_skew`` (side = the heavy side at the touch) — ``skew = (microprice − mid)/spread =
    QI/2`` time-weighted over every L1 state and averaged over ``skew_window_seconds``;
    ``z = robust_z(skew)`` (floor ``skew_z_floor``), side ``bid`` tests ``+z``, ``ask``
    ``−z``, tuned to ``skew_shift``. Gate: the book is not thin and the spread score is
    below ``spread_shift`` (a blown-out spread means the touch is not the makers' quotes, so
    its queue imbalance says nothing about their reservation price). Score: the skew toward
    the side.

``volatility_spike`` (side ``both``) — 1-s mid log-returns ``r``; the pre-change variance
    ``σ0²`` = median over the baseline window of the per-minute mean of ``r²`` (floored at
    ``(volatility_floor_bps·10⁻⁴)²``); increments are the Gaussian log-likelihood ratio
    of the variance having jumped to ``c²σ0²``, ``c = volatility_ratio`` (the release: of
    it being back at ``σ0²``); ``h = ln ARL0``. Score: ``VR = σ_fast/σ0`` with ``σ_fast²`` the
    EWMA of ``r²`` (``volatility_fast_half_life_seconds``; display only).

Every alert shares ``min_firing_seconds`` and ``cooldown_seconds``. Calibration
(``mmradar score --calibration``, simulator seeds 101–105) and the ARL0/delay of each detector:
docs/signals.md and docs/scorecard.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

from mypy_extensions import mypyc_attr

from ..model import BAND_BPS
from .alerts import AlertMachine, AlertTiming
from .baselines import MAD_TO_SIGMA, BucketedMedian, BucketedMedians, Ewma
from .params import SignalSettings
from .removal import RemovalAttribution, cause_of
from .sequential import VARIANCE_FACTOR, CusumPair, arl0_threshold

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
#: A second whose bounce-corrected realized variance is ≤ this share of its raw realized
#: variance counts as this share (pure bid-ask bounce, little price discovery).
RVAC_FLOOR_SHARE = 0.1


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
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
        near_bid: notional of the best ``near_touch_levels`` bid levels.
        near_ask: the same on the ask side.
        fill_bid_bps: depth-to-fill on the bid side (bps from mid to fill ``fill_notional``),
            as last computed (every ``FILL_SAMPLE_EVERY_S`` seconds, every second while the
            pull's depth conditions hold).
        fill_ask_bps: the same on the ask side.
        ret: 1-s mid log-return ending at the tick (NaN at the first tick of a book life).
        rv: realized variance of the last second: Σ of the squared log-changes of the mid over
            every L1 change (0 when the mid did not move).
        spread_score: the spread detector's score (set by it for the pull and skew detectors).
        signed_notional: signed taker notional of the second ending at the tick (buy-taker
            minus sell-taker ``price × base qty``, quote currency; 0 without trades).
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
        "near_ask",
        "near_bid",
        "ret",
        "rv",
        "rvac",
        "signed_notional",
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
        self.near_bid = _NAN
        self.near_ask = _NAN
        self.fill_bid_bps = _NAN
        self.fill_ask_bps = _NAN
        self.ret = _NAN
        self.rv = _NAN
        self.rvac = _NAN
        self.spread_score = _NAN
        self.signed_notional = 0.0


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
class DepthBaselines:
    """Baseline median depth notional per (side, band): the reference ``B_side(x)``.

    Shared by the pull detector and reported in episode context and
    ``mmradar_depth_baseline_notional``.

    Args:
        minutes: baseline window (``baseline_minutes``).
    """

    __slots__ = ("_medians", "_n", "_series", "asks", "bids", "mad_asks", "mad_bids")

    def __init__(self, minutes: int) -> None:
        n = self._n = len(BAND_BPS)
        self._series = BucketedMedians(2 * n, minutes, min_samples=MIN_BUCKET_SAMPLES)
        self._medians = self._series.medians
        #: Baseline median bid depth per band of ``BAND_BPS`` (NaN until a bucket closed).
        self.bids: tuple[float, ...] = (_NAN,) * n
        #: Baseline median ask depth per band.
        self.asks: tuple[float, ...] = (_NAN,) * n
        #: Baseline MAD of the bid depth per band.
        self.mad_bids: tuple[float, ...] = (_NAN,) * n
        #: Baseline MAD of the ask depth per band.
        self.mad_asks: tuple[float, ...] = (_NAN,) * n

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
            mads = series.mads
            self.mad_bids = mads[:n]
            self.mad_asks = mads[n:]
        s.base_bids = self.bids
        s.base_asks = self.asks

    def drop_current(self) -> None:
        """Discard the open minute buckets (resync)."""
        self._series.drop_current()


def _cancel_share(traded: float, cancelled: float, added: float) -> float:
    """:meth:`RemovalAttribution.cancel_share` from the window's flows."""
    pulled = cancelled - added if cancelled > added else 0.0
    total = traded + pulled
    return pulled / total if total > 0.0 else _NAN


def _pulled(s: Sample, p: SignalSettings) -> bool:
    """Both sides' 10-bps depth collapsed (``liquidity_pull``'s depth condition): near-touch
    features then describe whatever rests further out, not the makers' quotes."""
    bb, ba = s.base_bids[0], s.base_asks[0]
    if not bb + ba > 0.0:
        return False
    return (s.bids[0] + s.asks[0]) / (bb + ba) <= p.pull_total_ratio_on


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
class Detector:
    """Base of the symptom detectors: per-side machines, sequential tests, scores.

    Attributes:
        symptom: the ``symptom`` label.
        sides: its ``side`` labels.
        machines: side → alert machine (minimum duration and cooldown; no persistence timers).
        tests: side → the CUSUM pair deciding onset and release.
        scores: side → current score (higher = more anomalous; NaN when undefined).
        on: side → the onset test has alarmed (and its gate holds) at the last sample.
        off: side → the release test has alarmed at the last sample.
    """

    symptom: ClassVar[str]
    sides: ClassVar[tuple[str, ...]]
    #: Long-run variance factor of the feature in calm (``sequential.VARIANCE_FACTOR`` unless a
    #: detector's feature is known to be more persistent; docs/signals.md).
    variance_factor: ClassVar[float] = VARIANCE_FACTOR

    def __init__(self, p: SignalSettings, shift: float) -> None:
        timing = AlertTiming(0.0, 0.0, p.min_firing_seconds, p.cooldown_seconds)
        self.machines = {side: AlertMachine(timing) for side in self.sides}
        #: The stated average run length to a false alarm, in 1-s samples.
        self.arl0_samples = max(2.0, p.arl0_hours * 3600.0)
        self.shift = shift
        h = arl0_threshold(self.arl0_samples, 0.5 * shift, self.variance_factor)
        self.tests = {side: CusumPair(shift, h, p.release_seconds) for side in self.sides}
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

    def _decide(self, side: str, x: float, gate: bool, informative: bool) -> None:
        """One sample of the side's oriented standardized feature ``x`` (symptom positive).

        ``gate``: the symptom's context holds (else the onset statistic empties);
        ``informative``: the sample says anything about the symptom (else both statistics
        hold it over).
        """
        test = self.tests[side]
        test.update(x, gate, self.machines[side].firing, informative)
        self.on[side] = gate and test.onset_stat >= test.h
        self.off[side] = test.release_stat >= test.h_release

    def reset_short(self) -> None:
        """Forget short windows and the sequential statistics (resync); baselines are kept,
        except the minute being filled (no bucket spans an invalid period)."""
        for test in self.tests.values():
            test.reset()

    def sequential(self) -> dict[str, float]:
        """The sequential statistics of every side (episode context, debugging)."""
        out: dict[str, float] = {}
        for side, test in self.tests.items():
            prefix = "" if len(self.sides) == 1 else f"{side}_"
            out[f"{prefix}cusum"] = test.onset_stat
            out[f"{prefix}release"] = test.release_stat
            out[f"{prefix}threshold"] = test.h
            out[f"{prefix}release_threshold"] = test.h_release
        return out

    def details(self) -> dict[str, float]:
        """Detector-specific statistics of the last sample (episode context, debugging)."""
        return {}


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
class SpreadWidening(Detector):
    """``spread_widening``: the quoted spread against its baseline (module docstring)."""

    symptom = "spread_widening"
    sides = ("both",)

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(p, p.spread_shift)
        self.p = p
        self.log_spread = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.wide = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.z_spread = _NAN
        self.z_wide = _NAN
        self.one_tick = False
        self._spread_bps = _NAN
        self._wide_fraction = _NAN

    def observe(self, s: Sample, frozen: bool) -> None:
        """Update baselines (unless ``frozen``) and the decision from one sample."""
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
        self._decide("both", score, True, True)

    def reset_short(self) -> None:
        super().reset_short()
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


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
class LiquidityEvaporation(Detector):
    """``liquidity_evaporation``: one side's near-touch depth collapses (module docstring)."""

    symptom = "liquidity_evaporation"
    sides = ("bid", "ask")

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(p, p.evaporation_shift)
        self.p = p
        self.base_bid = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.base_ask = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.ratios: dict[str, float] = {"bid": _NAN, "ask": _NAN}
        self.z: dict[str, float] = {"bid": _NAN, "ask": _NAN}
        #: cancelled share of the side's recent 10-bps removals (NaN without removals).
        self.cancel_share: dict[str, float] = {"bid": _NAN, "ask": _NAN}

    def cause(self, side: str) -> str:
        """``cancel``, ``trade`` or ``mixed``: what removed the side's missing depth lately."""
        return cause_of(self.cancel_share[side])

    def observe(self, s: Sample, frozen: bool, removal: RemovalAttribution) -> None:
        """Update the near-touch baselines (unless ``frozen``) and decide."""
        p = self.p
        nb, na = s.near_bid, s.near_ask
        lb = math.log(nb) if nb > 0.0 else (-50.0 if nb == 0.0 else _NAN)
        la = math.log(na) if na > 0.0 else (-50.0 if na == 0.0 else _NAN)
        ts = s.ts_ns
        bb, ba = self.base_bid, self.base_ask
        bb.add(lb, ts, frozen=frozen)
        ba.add(la, ts, frozen=frozen)
        floor = p.depth_log_floor
        zb = bb.z(lb, floor)
        za = ba.z(la, floor)
        thin = not (s.base_bids[0] + s.base_asks[0] >= p.thin_book_notional)
        if zb != zb or za != za or thin:
            self.ratios["bid"] = self.ratios["ask"] = _NAN
            self.z["bid"] = self.z["ask"] = _NAN
            self._undefined()
            return
        rb = math.exp(lb - bb.median)
        ra = math.exp(la - ba.median)
        self.ratios["bid"], self.ratios["ask"] = rb, ra
        self.z["bid"], self.z["ask"] = zb, za
        tb, cb, ab = removal.window_flows(True, 0)
        ta, ca, aa = removal.window_flows(False, 0)
        self.cancel_share["bid"] = _cancel_share(tb, cb, ab)
        self.cancel_share["ask"] = _cancel_share(ta, ca, aa)
        self.scores["bid"] = min(1.0, max(0.0, 1.0 - rb))
        self.scores["ask"] = min(1.0, max(0.0, 1.0 - ra))
        other = p.evaporation_other_ratio
        # liquidity went missing: what was traded or cancelled near the touch lately was not
        # replaced by new resting size (takers sweeping a side the makers keep quoting, or a
        # band sliding with the mid, is not evaporation)
        lost_b = tb + cb > ab
        lost_a = ta + ca > aa
        # both sides gone is a pull, not this symptom: the test holds meanwhile
        held = not _pulled(s, p)
        self._decide("bid", -zb, held and ra >= other and lost_b, held and ra >= other)
        self._decide("ask", -za, held and rb >= other and lost_a, held and rb >= other)

    def reset_short(self) -> None:
        super().reset_short()
        self.base_bid.drop_current()
        self.base_ask.drop_current()

    def details(self) -> dict[str, float]:
        return {
            "near_depth_ratio_bid": self.ratios["bid"],
            "near_depth_ratio_ask": self.ratios["ask"],
            "z_bid": self.z["bid"],
            "z_ask": self.z["ask"],
            "cancel_share_bid": self.cancel_share["bid"],
            "cancel_share_ask": self.cancel_share["ask"],
        }


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
class DepthAsymmetry(Detector):
    """``depth_asymmetry``: near-touch depth shifts toward one side (module docstring)."""

    symptom = "depth_asymmetry"
    sides = ("bid", "ask")
    #: The near-touch imbalance wanders for tens of seconds in calm (lag-1 autocorrelation
    #: ≈ 0.93 on the simulator's calm book): with the default factor its calm false-alarm rate
    #: on the calibration seeds' calm hours was 0.5–0.85 per hour, with 12 it is 0.07, the
    #: stated ARL0 (docs/signals.md).
    variance_factor = 12.0

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(p, p.asymmetry_shift)
        self.p = p
        #: ``mmradar_depth_imbalance_smoothed``: the near-touch imbalance, 1-s half-life EWMA.
        self.fast = Ewma(1.0)
        self.base = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.di = _NAN
        self.z = _NAN
        self.thin = False

    def observe(self, s: Sample, frozen: bool) -> None:
        """Update the imbalance baseline (unless frozen) and decide."""
        p = self.p
        nb, na = s.near_bid, s.near_ask
        total = nb + na
        if total != total:
            self.z = _NAN
            self._undefined()
            return
        self.thin = not (s.bids[0] + s.asks[0] >= p.thin_book_notional) or not total > 0.0
        di = self.di = 0.0 if self.thin else (nb - na) / total
        ts = s.ts_ns
        self.fast.update(di, ts)
        self.base.add(di, ts, frozen=frozen)
        z = self.z = self.base.z(di, p.asymmetry_z_floor)
        if z != z:
            self._undefined()
            return
        self.scores["bid"] = max(z, 0.0)
        self.scores["ask"] = max(-z, 0.0)
        gate = not self.thin and not _pulled(s, p)
        self._decide("bid", z, gate, gate)
        self._decide("ask", -z, gate, gate)

    def reset_short(self) -> None:
        super().reset_short()
        self.fast.reset()
        self.base.drop_current()

    def details(self) -> dict[str, float]:
        return {
            "near_depth_imbalance": self.di,
            "baseline_imbalance": self.base.median,
            "z_imbalance": self.z,
            "thin_book": 1.0 if self.thin else 0.0,
        }


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
class LiquidityPull(Detector):
    """``liquidity_pull``: near-touch depth collapses on both sides (module docstring)."""

    symptom = "liquidity_pull"
    sides = ("both",)

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(p, p.pull_shift)
        self.p = p
        self.band = BAND_BPS.index(p.pull_band_bps)
        per_bucket = max(1, MIN_BUCKET_SAMPLES // FILL_SAMPLE_EVERY_S)
        self.fill_bid = BucketedMedian(p.baseline_minutes, min_samples=per_bucket)
        self.fill_ask = BucketedMedian(p.baseline_minutes, min_samples=per_bucket)
        self.total_ratio = _NAN
        self.fill_ratio = _NAN

    def observe(
        self,
        s: Sample,
        frozen: bool,
        fills: Callable[[], tuple[float, float]],
        base: DepthBaselines,
    ) -> None:
        """Update the depth-to-fill baselines (unless frozen) and decide.

        Args:
            s: the sample.
            frozen: the baselines must not learn from this sample.
            fills: computes ``(G_bid, G_ask)`` in bps; called only when needed.
            base: the band-depth baselines (their MAD gives the scale of ``log R``).
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
        mad = base.mad_bids[i] + base.mad_asks[i]
        scale = MAD_TO_SIGMA * mad / (bb + ba) if mad == mad else 0.0
        scale = max(scale, p.depth_log_floor)
        x = -math.log(r) / scale if r > 0.0 else 50.0
        gate = collapsed and (
            s.spread_score >= p.pull_spread_z_on or self.fill_ratio >= p.pull_fill_ratio_on
        )
        self._decide("both", x, gate, True)

    def reset_short(self) -> None:
        super().reset_short()
        self.fill_bid.drop_current()
        self.fill_ask.drop_current()

    def details(self) -> dict[str, float]:
        return {"total_depth_ratio": self.total_ratio, "fill_ratio": self.fill_ratio}


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
class QuoteSkew(Detector):
    """``quote_skew``: the touch is heavy on one side (module docstring)."""

    symptom = "quote_skew"
    sides = ("bid", "ask")

    def __init__(self, p: SignalSettings) -> None:
        super().__init__(p, p.skew_shift)
        self.p = p
        self.base = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self.skew = _NAN
        self.z = _NAN

    def observe(self, s: Sample, frozen: bool) -> None:
        """Update the skew baseline (unless frozen) and decide."""
        p = self.p
        sk = self.skew = s.skew
        self.base.add(sk, s.ts_ns, frozen=frozen)
        z = self.z = self.base.z(sk, p.skew_z_floor)
        if sk != sk or z != z:
            self._undefined()
            return
        thin = not (s.bids[0] + s.asks[0] >= p.thin_book_notional)
        # a blown-out spread: the touch is not the makers' quotes, its imbalance no skew
        gate = not thin and not s.spread_score >= p.spread_shift
        self.scores["bid"] = max(sk, 0.0)
        self.scores["ask"] = max(-sk, 0.0)
        self._decide("bid", z, gate, gate)
        self._decide("ask", -z, gate, gate)

    def reset_short(self) -> None:
        super().reset_short()
        self.base.drop_current()

    def details(self) -> dict[str, float]:
        return {"skew": self.skew, "z_skew": self.z}


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
class VolatilitySpike(Detector):
    """``volatility_spike``: the mid's realized variance against its baseline (module doc)."""

    symptom = "volatility_spike"
    sides = ("both",)

    def __init__(self, p: SignalSettings) -> None:
        self._log_c2 = 2.0 * math.log(p.volatility_ratio)
        super().__init__(p, self._log_c2 / p.volatility_z_floor)
        self.p = p
        self.fast = Ewma(p.volatility_fast_half_life_seconds)
        self.base = BucketedMedian(p.baseline_minutes, min_samples=MIN_BUCKET_SAMPLES)
        self._floor_var = (p.volatility_floor_bps * 1e-4) ** 2
        self._scale = _NAN
        self.ratio = _NAN
        self.z = _NAN

    def observe(self, s: Sample, frozen: bool) -> None:
        """Fold the second's realized variance into the baseline (unless frozen) and decide."""
        p = self.p
        rv = s.rvac
        if rv != rv:
            self.ratio = self.z = _NAN
            self._undefined()
            return
        ts = s.ts_ns
        if not s.rv > 0.0:
            # the mid did not move at all this second: no evidence either way (a one-tick
            # book can sit still for seconds; a pulled one is frozen on what rests further out)
            self.fast.update(0.0, ts)
            self.base.add(_NAN, ts, frozen=frozen)
            self.z = _NAN
            self.on["both"] = False
            self.off["both"] = False
            return
        # bounce-corrected; a second of pure bounce (≤ 0) counts as a tenth of its raw variance
        rv = max(rv, RVAC_FLOOR_SHARE * s.rv, self._floor_var)
        x = math.log(rv)
        self.fast.update(rv, ts)
        base = self.base
        base.add(x, ts, frozen=frozen)
        scale = max(MAD_TO_SIGMA * base.mad, p.volatility_z_floor)
        if scale != self._scale and scale == scale:
            # the test is tuned to a variance ratio (volatility_ratio²), so its shift in z units
            # follows the baseline's scale of log variance
            self._scale = scale
            shift = self._log_c2 / scale
            h = arl0_threshold(self.arl0_samples, 0.5 * shift, self.variance_factor)
            self.tests["both"].set_shift(shift, h)
        z = self.z = base.z(x, p.volatility_z_floor)
        if z != z:
            self.ratio = _NAN
            self._undefined()
            return
        self.ratio = math.sqrt(self.fast.value / math.exp(base.median))
        self.scores["both"] = self.ratio
        # with the spread blown out the mid is not the makers' (frozen on whatever rests
        # further out): it says nothing about volatility either way, the test holds
        normal_touch = not s.spread_score >= p.spread_shift
        self._decide("both", z, True, normal_touch)

    def reset_short(self) -> None:
        super().reset_short()
        self.fast.reset()
        self.base.drop_current()

    def details(self) -> dict[str, float]:
        med = self.base.median
        return {
            "volatility_ratio": self.ratio,
            "z_log_realized_variance": self.z,
            "sigma_fast_bps": 1e4 * math.sqrt(self.fast.value) if self.fast.value >= 0 else _NAN,
            "sigma_base_bps": 1e4 * math.sqrt(math.exp(med)) if med == med else _NAN,
        }
