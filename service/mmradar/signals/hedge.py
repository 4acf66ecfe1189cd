"""Spot against perpetual: the basis, the flow lead–lag and the ``hedge_pressure`` symptom.

Dealers who sell to takers on one venue are short there; they hedge by buying on another venue
of the same instrument (often the perpetual), and the perpetual's price moves against the spot
price. This module watches every canonical instrument (:mod:`mmradar.instruments`) followed
both as spot and as a perpetual (:func:`mmradar.instruments.market_kind`; same venue or
several) and computes, once per second of event time (docs/signals.md "Basis, flow lead–lag
and hedge_pressure"):

* **basis** of every (spot, perp) pair of legs: ``1e4 · (perp mid − spot mid) / spot mid`` in
  bps, from both legs' samples *of the same event-time second* (a leg whose book is invalid,
  or which has no sample of that second — stale, lagging — suppresses it: NaN); its robust z
  against its own baseline (median/MAD of 1-minute medians, ``baseline_minutes``, scale
  floored at ``basis_z_floor_bps``) and its change rate over ``basis_change_seconds``;
* **flow lead–lag** of every pair of legs: each leg's signed taker notional per 1-s bucket
  (buy-taker minus sell-taker ``price × base qty``, ``Sample.signed_notional``), and the
  Pearson correlation of the two series over the last ``leadlag_window_seconds`` at every lag
  ``−L … +L`` (``L = leadlag_max_lag_seconds``) — :class:`LeadLag`, O(lags) per second; the
  lag of the highest correlation and that correlation;
* the symptom ``hedge_pressure`` (sides ``buy``/``sell``: the direction the hedgers trade),
  reported on the **follower** (hedge) leg. The leader: a burst of signed taker flow on
  another leg (robust z of its ``hedge_burst_seconds`` sum ≥ ``hedge_flow_z``; its onset is
  the start of the run at ``hedge_follower_z`` that led to it; a burst reversing the leg's
  sustained burst of the other sign leads nothing), put ahead by the flow lead–lag. The
  follower: a one-sided CUSUM of its standardised 1-s flow (in units of its median absolute
  size, clipped), counted from ``hedge_min_lag_seconds`` after the leader's onset, reaching
  ``hedge_follower_cusum`` — hedging is a sustained drift that starts after the leader's
  burst; flow already going the leader's way around its onset (``hedge_common_shock``) is a
  common shock. The basis: moved in the hedgers' direction (hedgers buying a perpetual push
  the basis up, buying spot push it down) by ``hedge_basis_move_z`` of its scale since the
  onset, and on their side of its baseline by ``hedge_basis_level_z``. The episode lasts
  while the basis stays on their side and the follower's CUSUM has not drained to zero.

Clock. Every leg's engine ticks once per second of its own event time and hands its sample to
the view (``SignalEngine.on_tick``, shared with the cross-venue view through
:func:`mmradar.signals.ticks.add_tick_listener`). Second ``t`` is evaluated once every live leg
has reported it, or when any leg is :data:`GRACE_NS` ahead of it; a leg without a sample of
second ``t`` counts as missing for that second. Nothing reads a wall clock: a replay or the
scorer gives the same result as live.

Units. The flows of several venues are compared only in quote notional of base-unit sizes:
the engines see base units (mmradar.contracts); :func:`require_base_units` refuses a leg whose
contract value is unknown (:class:`~mmradar.errors.UnitsError`).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ..contracts import ContractSize
from ..errors import UnitsError
from .alerts import AlertMachine, AlertState, AlertTiming, Transition
from .baselines import BucketedMedian, robust_z
from .engine import SignalEngine
from .episodes import EpisodeEvent
from .params import SignalSettings
from .reading import base_context
from .ticks import add_tick_listener

__all__ = [
    "GRACE_NS",
    "SIDES",
    "SYMPTOM",
    "BasisReading",
    "HedgeLegReading",
    "HedgeReading",
    "HedgeSymptomReading",
    "HedgeView",
    "LeadLag",
    "LeadLagReading",
    "build_hedge_views",
    "require_base_units",
]

SYMPTOM: Final = "hedge_pressure"
#: ``side`` label values: the direction the hedgers trade.
SIDES: Final = ("buy", "sell")
_SIGN: Final = {"buy": 1, "sell": -1}
_NS: Final = 1_000_000_000
#: A second is evaluated at the latest when some leg has reported a second this much later.
GRACE_NS: Final = 2 * _NS
#: Standardised seconds kept per leg (the follower's evidence counts from a leader's onset at
#: most this long ago).
HISTORY_S: Final = 180
#: Seconds of scale history needed before a leg's 1-s flow is standardised.
MIN_SCALE_S: Final = 30
_NAN: Final = math.nan


def _json(x: float) -> float | None:
    return x if math.isfinite(x) else None


def require_base_units(
    exchange: str,
    symbols: Iterable[str],
    needs_contract: Collection[str],
    sizes: Mapping[str, ContractSize],
) -> None:
    """Refuse a hedge leg whose quantities are contracts of unknown value.

    Args:
        exchange: the legs' exchange.
        symbols: the exchange's symbols that are legs of a hedge view.
        needs_contract: the exchange's symbols whose venue quantities are contracts.
        sizes: the contract sizes loaded for the exchange.

    Raises:
        UnitsError: a leg whose quantities are contracts and whose contract value is unknown.
    """
    for symbol in symbols:
        if symbol in needs_contract and symbol not in sizes:
            raise UnitsError(
                exchange,
                symbol,
                "contract value unknown: its flow cannot be compared with other venues' in "
                "base units (basis, flow lead-lag, hedge_pressure)",
            )


class LeadLag:
    """Rolling Pearson cross-correlation of two 1-s series ``a``, ``b`` at lags ``−L … +L``.

    At lag ``ℓ`` the pairs are ``(a[t − ℓ], b[t])`` with both indices among the last ``window``
    seconds and both values present (NaN = missing): a positive ``ℓ`` pairs ``a`` with the later
    ``b``, so a peak at ``ℓ > 0`` means ``a`` leads ``b`` by ``ℓ`` seconds. Running sums per
    lag are updated for the pair that enters and the pair that leaves at each push: O(lags) per
    second; they are recomputed exactly once per window to bound rounding drift.

    A lag's correlation is NaN with fewer than ``min_active`` pairs whose ``a`` is non-zero (or
    whose ``b`` is), or when either side is constant over its pairs.

    Args:
        window_s: the window, in 1-s pushes.
        max_lag_s: ``L``.
        min_active: the fewest non-zero values per side.
    """

    __slots__ = (
        "_a",
        "_b",
        "_count",
        "_n",
        "_nza",
        "_nzb",
        "_sa",
        "_saa",
        "_sab",
        "_sb",
        "_sbb",
        "lags",
        "max_lag",
        "min_active",
        "window",
    )

    def __init__(self, window_s: int, max_lag_s: int, min_active: int = 2) -> None:
        if not 0 < max_lag_s < window_s:
            raise ValueError("the lags must be shorter than the window")
        self.window = window_s
        self.max_lag = max_lag_s
        self.min_active = max(2, min_active)
        #: the lags, ``−L … +L``.
        self.lags: tuple[int, ...] = tuple(range(-max_lag_s, max_lag_s + 1))
        self._a = [_NAN] * (window_s + 1)
        self._b = [_NAN] * (window_s + 1)
        self._count = 0
        self._zero()

    def _zero(self) -> None:
        n = len(self.lags)
        self._n = [0] * n
        self._nza = [0] * n
        self._nzb = [0] * n
        self._sa = [0.0] * n
        self._sb = [0.0] * n
        self._saa = [0.0] * n
        self._sbb = [0.0] * n
        self._sab = [0.0] * n

    def clear(self) -> None:
        """Forget everything (a gap in event time longer than the window)."""
        self._a = [_NAN] * (self.window + 1)
        self._b = [_NAN] * (self.window + 1)
        self._count = 0
        self._zero()

    def _at(self, ring: list[float], i: int) -> float:
        return ring[i % (self.window + 1)] if i >= 0 else _NAN

    def _add(self, k: int, x: float, y: float, sign: int) -> None:
        if x != x or y != y:
            return
        self._n[k] += sign
        self._sa[k] += sign * x
        self._sb[k] += sign * y
        self._saa[k] += sign * x * x
        self._sbb[k] += sign * y * y
        self._sab[k] += sign * x * y
        if x != 0.0:
            self._nza[k] += sign
        if y != 0.0:
            self._nzb[k] += sign

    def push(self, a: float, b: float) -> None:
        """The next second's values (NaN: missing)."""
        t = self._count
        size = self.window + 1
        self._a[t % size] = a
        self._b[t % size] = b
        self._count = t + 1
        if t > 0 and t % self.window == 0:
            self._recompute()
            return
        expired = t - self.window
        at = self._at
        ra, rb = self._a, self._b
        for k, lag in enumerate(self.lags):
            if lag >= 0:
                self._add(k, at(ra, t - lag), b, 1)
                if expired >= 0:
                    self._add(k, at(ra, expired), at(rb, expired + lag), -1)
            else:
                self._add(k, a, at(rb, t + lag), 1)
                if expired >= 0:
                    self._add(k, at(ra, expired - lag), at(rb, expired), -1)

    def _recompute(self) -> None:
        self._zero()
        t = self._count - 1
        first = max(0, t - self.window + 1)
        ra, rb, at = self._a, self._b, self._at
        for k, lag in enumerate(self.lags):
            for j in range(max(first, first + lag), min(t, t + lag) + 1):
                self._add(k, at(ra, j - lag), at(rb, j), 1)

    def correlation(self, k: int) -> float:
        """The correlation at ``lags[k]`` (NaN per the class docstring)."""
        n = self._n[k]
        if n < 3 or self._nza[k] < self.min_active or self._nzb[k] < self.min_active:
            return _NAN
        sa, sb = self._sa[k], self._sb[k]
        va = self._saa[k] - sa * sa / n
        vb = self._sbb[k] - sb * sb / n
        if not (va > 1e-12 * self._saa[k] and vb > 1e-12 * self._sbb[k]):
            return _NAN
        r = (self._sab[k] - sa * sb / n) / math.sqrt(va * vb)
        return max(-1.0, min(1.0, r))

    def correlations(self) -> tuple[float, ...]:
        """Every lag's correlation, in :attr:`lags` order."""
        return tuple(self.correlation(k) for k in range(len(self.lags)))

    def peak(self) -> tuple[float, float]:
        """``(lag, correlation)`` of the highest correlation (ties: the smaller ``|lag|``, then
        the positive one); ``(NaN, NaN)`` when no lag has one."""
        best: tuple[float, int, int] | None = None
        for k, lag in enumerate(self.lags):
            r = self.correlation(k)
            if r != r:
                continue
            key = (r, -abs(lag), lag)
            if best is None or key > best:
                best = key
        if best is None:
            return _NAN, _NAN
        return float(best[2]), best[0]


# -- readings (what the metrics collector reads) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class HedgeSymptomReading:
    """One ``hedge_pressure`` alert machine of a leg.

    Attributes:
        side: ``buy`` or ``sell``.
        firing: an episode is in progress.
        score: the hedgers'-direction basis z at the last evaluated second (NaN if unknown).
        episodes: episodes started since start-up.
    """

    side: str
    firing: bool
    score: float
    episodes: int


@dataclass(frozen=True, slots=True)
class HedgeLegReading:
    """One leg (venue symbol) of a hedge view.

    Attributes:
        exchange: config ``exchange``.
        symbol: venue spelling.
        kind: ``spot`` or ``perp``.
        venue: its label in the basis and lead–lag series (the exchange, or
            ``exchange:symbol`` when the instrument has several legs on one exchange).
        signed_notional: signed taker notional of the last evaluated second (NaN if missing).
        flow_z: robust z of the signed notional summed over ``hedge_burst_seconds``.
        symptoms: the ``buy`` and ``sell`` machines.
    """

    exchange: str
    symbol: str
    kind: str
    venue: str
    signed_notional: float
    flow_z: float
    symptoms: tuple[HedgeSymptomReading, ...]


@dataclass(frozen=True, slots=True)
class BasisReading:
    """One (spot, perp) pair of legs.

    Attributes:
        spot_venue: the spot leg's label.
        perp_venue: the perpetual leg's label.
        basis_bps: ``1e4 · (perp mid − spot mid) / spot mid`` (NaN unless both legs are valid
            and have a sample of the second).
        basis_zscore: robust z against its baseline.
        basis_change_bps_per_second: change over ``basis_change_seconds``, per second.
    """

    spot_venue: str
    perp_venue: str
    basis_bps: float
    basis_zscore: float
    basis_change_bps_per_second: float


@dataclass(frozen=True, slots=True)
class LeadLagReading:
    """One ordered pair of legs.

    Attributes:
        leader: the leader leg's label.
        follower: the follower leg's label.
        lead_seconds: lag of the correlation peak, positive when ``leader`` leads.
        correlation: the correlation at that lag.
    """

    leader: str
    follower: str
    lead_seconds: float
    correlation: float


@dataclass(frozen=True, slots=True)
class HedgeReading:
    """A hedge view as read now (:meth:`HedgeView.read`).

    Attributes:
        instrument: the canonical id.
        evaluated_ns: the last evaluated second (0 before any).
        legs: every leg.
        basis: every (spot, perp) pair.
        lead_lag: every ordered pair of legs.
    """

    instrument: str
    evaluated_ns: int
    legs: tuple[HedgeLegReading, ...]
    basis: tuple[BasisReading, ...]
    lead_lag: tuple[LeadLagReading, ...]


# -- the view ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Leg:
    exchange: str
    symbol: str
    kind: str
    engine: SignalEngine
    venue: str
    machines: dict[str, AlertMachine]
    flow_base: BucketedMedian
    burst: deque[float]
    # |1-s signed notional| outside bursts (the scale), and the standardised seconds (t, u)
    spread: deque[float]
    std_flow: deque[tuple[int, float]]
    samples: dict[int, tuple[float, float]] = field(default_factory=dict)
    latest_ns: int = 0
    life_ns: int = 0
    mid: float = _NAN
    flow: float = _NAN
    flow_z: float = _NAN
    # the current unbroken run (no dip) at |z| >= hedge_follower_z: its sign and start
    seg_sign: int = 0
    seg_start_ns: int = 0
    # the current (or last) burst: seconds of one sign with |z| >= hedge_flow_z, kept across
    # dips of at most hedge_gap_seconds; its onset is the start of the unbroken run that led
    # to its first such second
    burst_sign: int = 0
    burst_onset_ns: int = 0
    burst_last_ns: int = -(1 << 62)
    burst_peak_z: float = _NAN
    burst_reversal: bool = False
    # the last second of a sustained burst of each sign, [+, −] (reversals)
    long_last_ns: list[int] = field(default_factory=lambda: [-(1 << 62), -(1 << 62)])
    scores: dict[str, float] = field(default_factory=dict)
    leaders: dict[str, _Leg | None] = field(default_factory=dict)
    # the follower's CUSUM behind each side's leader (for the episode's context)
    evidence: dict[str, float] = field(default_factory=dict)

    @property
    def firing(self) -> bool:
        return any(m.firing for m in self.machines.values())


@dataclass(slots=True)
class _Basis:
    spot: _Leg
    perp: _Leg
    baseline: BucketedMedian
    history: deque[float]
    recent: deque[tuple[int, float]]
    bps: float = _NAN
    z: float = _NAN
    change: float = _NAN


@dataclass(slots=True)
class _Pair:
    a: _Leg
    b: _Leg
    lead_lag: LeadLag
    lag: float = _NAN
    corr: float = _NAN


class HedgeView:
    """One canonical instrument with at least one spot and one perpetual leg.

    Args:
        instrument: the canonical id (``BTC-USD``).
        legs: ``(exchange, symbol, kind, engine)`` of every leg, ``kind`` ``spot`` or ``perp``.
        params: the ``[signals]`` settings (``basis_*``, ``leadlag_*``, ``hedge_*``,
            ``baseline_minutes``, ``min_firing_seconds``, ``cooldown_seconds``).
        on_episode: receives ``hedge_pressure`` episode starts and ends.
    """

    def __init__(
        self,
        instrument: str,
        legs: Sequence[tuple[str, str, str, SignalEngine]],
        params: SignalSettings,
        on_episode: Callable[[EpisodeEvent], None] | None = None,
    ) -> None:
        kinds = {kind for _, _, kind, _ in legs}
        if not {"spot", "perp"} <= kinds or not kinds <= {"spot", "perp"}:
            raise ValueError("a hedge view needs spot and perp legs (and no others)")
        self.instrument = instrument
        self.params = p = params
        self.on_episode = on_episode
        timing = AlertTiming(
            p.hedge_on_seconds, p.hedge_off_seconds, p.min_firing_seconds, p.cooldown_seconds
        )
        exchanges = [x for x, _, _, _ in legs]
        self.legs = [
            _Leg(
                exchange=x,
                symbol=s,
                kind=kind,
                engine=engine,
                venue=x if exchanges.count(x) == 1 else f"{x}:{s}",
                machines={side: AlertMachine(timing) for side in SIDES},
                flow_base=BucketedMedian(p.baseline_minutes),
                burst=deque(maxlen=p.hedge_burst_seconds),
                spread=deque(maxlen=p.hedge_scale_seconds),
                std_flow=deque(maxlen=HISTORY_S),
                scores=dict.fromkeys(SIDES, _NAN),
                evidence=dict.fromkeys(SIDES, _NAN),
                leaders=dict.fromkeys(SIDES, None),
            )
            for x, s, kind, engine in legs
        ]
        self._by_engine = {id(leg.engine): leg for leg in self.legs}
        change_window = p.basis_change_seconds + 1
        # the basis seconds a leader's onset may look back on: its run, then the seconds before
        recent = p.leadlag_window_seconds
        self.basis = [
            _Basis(
                s,
                q,
                BucketedMedian(p.baseline_minutes),
                deque(maxlen=change_window),
                deque(maxlen=recent),
            )
            for s in self.legs
            if s.kind == "spot"
            for q in self.legs
            if q.kind == "perp"
        ]
        self.pairs = [
            _Pair(a, b, LeadLag(p.leadlag_window_seconds, p.leadlag_max_lag_seconds,
                                p.leadlag_min_active_seconds))
            for i, a in enumerate(self.legs)
            for b in self.legs[i + 1 :]
        ]  # fmt: skip
        #: the next second to evaluate (0: none seen yet).
        self.next_ns = 0
        #: the last evaluated second (0 before any).
        self.evaluated_ns = 0
        for leg in self.legs:
            add_tick_listener(leg.engine, self.on_tick)

    # -- input ------------------------------------------------------------------------------

    def on_tick(self, engine: SignalEngine) -> None:
        """A leg's engine finished a stat tick: keep its sample; evaluate completed seconds."""
        leg = self._by_engine[id(engine)]
        s = engine.sample
        t = s.ts_ns
        if engine.life_start_ns != leg.life_ns:
            # the book was resynced since this leg's last sample: its episodes end there
            self._end_leg(leg, leg.latest_ns or t)
            leg.life_ns = engine.life_start_ns
        if self.next_ns == 0:
            self.next_ns = t
        if t >= self.next_ns:
            leg.samples[t] = (s.mid, s.signed_notional)
        if t > leg.latest_ns:
            leg.latest_ns = t
        self._advance()

    def _advance(self) -> None:
        legs = self.legs
        frontier = max(leg.latest_ns for leg in legs)
        live = [leg.latest_ns for leg in legs if leg.engine.live]
        upto = max(min(live) if live else frontier, frontier - GRACE_NS)
        horizon = (self.params.leadlag_window_seconds + self.params.leadlag_max_lag_seconds) * _NS
        if upto - self.next_ns > horizon:
            # a gap longer than any window: nothing before it would be kept anyway
            self.next_ns = upto - horizon
            for pair in self.pairs:
                pair.lead_lag.clear()
        while self.next_ns <= upto:
            self.evaluate(self.next_ns)
            self.next_ns += _NS

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(self, t: int) -> None:
        """Second ``t``: basis, lead–lag and every leg's ``hedge_pressure`` machines."""
        p = self.params
        self.evaluated_ns = t
        view_firing = any(leg.firing for leg in self.legs)
        for leg in self.legs:
            sample = leg.samples.pop(t, None)
            if leg.samples:
                for k in [k for k in leg.samples if k < t]:
                    del leg.samples[k]
            if sample is None or not leg.engine.live:
                leg.mid = leg.flow = _NAN
            else:
                leg.mid = sample[0] if sample[0] > 0.0 else _NAN
                leg.flow = sample[1]
            self._flow(leg, t)
            self._standardise(leg, t)
        for b in self.basis:
            s, q = b.spot.mid, b.perp.mid
            b.bps = 1e4 * (q - s) / s if s > 0.0 and q > 0.0 else _NAN
            b.baseline.add(b.bps, t, frozen=view_firing)
            b.z = b.baseline.z(b.bps, p.basis_z_floor_bps) if b.bps == b.bps else _NAN
            b.history.append(b.bps)
            b.recent.append((t, b.bps))
            old = b.history[0]
            full = len(b.history) == b.history.maxlen
            b.change = (b.bps - old) / p.basis_change_seconds if full else _NAN
        for pair in self.pairs:
            pair.lead_lag.push(pair.a.flow, pair.b.flow)
            pair.lag, pair.corr = pair.lead_lag.peak()
        for leg in self.legs:
            if not leg.engine.live:
                self._end_leg(leg, leg.latest_ns or t)
                continue
            self._step(leg, t)

    def _flow(self, leg: _Leg, t: int) -> None:
        """The leg's burst sum, its robust z and its runs."""
        p = self.params
        leg.burst.append(leg.flow)
        total = math.fsum(leg.burst) if len(leg.burst) == leg.burst.maxlen else _NAN
        leg.flow_base.add(total, t, frozen=leg.firing)
        z = leg.flow_base.z(total, p.hedge_flow_floor_notional) if total == total else _NAN
        leg.flow_z = z
        sign = (1 if z > 0 else -1) if z == z and z != 0.0 else 0
        strength = abs(z) if z == z else 0.0
        gap_ns = p.hedge_gap_seconds * _NS
        if strength >= p.hedge_follower_z:
            if leg.seg_sign != sign:
                leg.seg_sign = sign
                leg.seg_start_ns = t
        else:
            leg.seg_sign = 0
        if strength >= p.hedge_flow_z:
            if leg.burst_sign != sign or t - leg.burst_last_ns > gap_ns + _NS:
                last = leg.long_last_ns[0 if sign < 0 else 1]
                leg.burst_reversal = leg.seg_start_ns - last <= p.hedge_reversal_seconds * _NS
                leg.burst_sign = sign
                leg.burst_onset_ns = leg.seg_start_ns
                leg.burst_peak_z = strength
            leg.burst_last_ns = t
            leg.burst_peak_z = max(leg.burst_peak_z, strength)
            if t - leg.burst_onset_ns >= 2 * p.hedge_burst_seconds * _NS:
                # a sustained burst (longer than one isolated order's spike of the sum)
                leg.long_last_ns[1 if sign < 0 else 0] = t

    def _standardise(self, leg: _Leg, t: int) -> None:
        """The leg's 1-s signed notional in units of its typical size (median absolute value
        over ``hedge_scale_seconds`` outside its bursts, floored), clipped to
        ``± hedge_flow_clip``; a missing second, or a leg without enough history, counts 0."""
        p = self.params
        x = leg.flow
        u = 0.0
        if x == x:
            if len(leg.spread) >= MIN_SCALE_S:
                floor = p.hedge_flow_floor_notional / p.hedge_burst_seconds
                scale = max(floor, statistics.median(leg.spread))
                u = max(-p.hedge_flow_clip, min(p.hedge_flow_clip, x / scale))
            if not abs(leg.flow_z) >= p.hedge_flow_z and not leg.firing:
                leg.spread.append(abs(x))
        leg.std_flow.append((t, u))

    def _directional_basis_z(self, leg: _Leg) -> float:
        """The median basis z of the leg's pairs, signed so that positive is what hedgers
        *buying* on this leg do (perp: basis up; spot: basis down)."""
        zs = [
            b.z if leg.kind == "perp" else -b.z
            for b in self.basis
            if (b.spot is leg or b.perp is leg) and b.z == b.z
        ]
        return statistics.median(zs) if zs else _NAN

    def _directional_basis_move(self, leg: _Leg, onset_ns: int) -> float:
        """The median over the leg's pairs of the basis change since ``onset_ns`` — now minus
        the median of the ``hedge_burst_seconds`` before the onset — in units of the basis
        baseline's scale, signed like :meth:`_directional_basis_z`."""
        first = onset_ns - self.params.hedge_burst_seconds * _NS
        moves = []
        for b in self.basis:
            if not (b.spot is leg or b.perp is leg) or b.bps != b.bps:
                continue
            before = [x for ts, x in b.recent if first <= ts < onset_ns and x == x]
            if not before:
                continue
            move = robust_z(
                b.bps, statistics.median(before), b.baseline.mad, self.params.basis_z_floor_bps
            )
            if move != move:
                continue
            moves.append(move if leg.kind == "perp" else -move)
        return statistics.median(moves) if moves else _NAN

    def _leader(self, leg: _Leg, sign: int, t: int) -> tuple[_Leg | None, float]:
        """The leg whose burst of sign ``sign`` this leg's flow follows, and the follower's
        evidence behind it (the strongest burst among those that qualify): a burst of that
        sign, going on or ended at most ``leadlag_max_lag_seconds`` ago, not a reversal, put
        ahead by the lead–lag, not a common shock, and followed on this leg by a CUSUM of at
        least ``hedge_follower_cusum`` (:meth:`_evidence`) in a run that began within
        ``leadlag_max_lag_seconds`` of the onset."""
        p = self.params
        lag_ns = p.leadlag_max_lag_seconds * _NS
        best: _Leg | None = None
        evidence = _NAN
        for other in self.legs:
            if other is leg or not other.engine.warm or other.burst_sign != sign:
                continue
            if other.burst_reversal or t - other.burst_last_ns > lag_ns:
                continue
            if not self._leads(other, leg):
                continue
            onset = other.burst_onset_ns
            if self._common_shock(leg, sign, onset):
                continue
            cusum, since = self._evidence(leg, sign, onset)
            if cusum < p.hedge_follower_cusum or since > onset + lag_ns:
                continue
            if best is None or other.burst_peak_z > best.burst_peak_z:
                best, evidence = other, cusum
        return best, evidence

    def _evidence(self, leg: _Leg, sign: int, onset_ns: int) -> tuple[float, int]:
        """The one-sided CUSUM of the leg's standardised flow of sign ``sign`` over the
        seconds from ``hedge_min_lag_seconds`` after ``onset_ns`` to now, ``S ← max(0, S +
        sign·u − hedge_cusum_drift)``, and the second its current run above zero started.
        Hedging is a sustained drift of the hedge venue's flow starting after the leader's;
        it adds about ``|u| − drift`` per second."""
        first = onset_ns + self.params.hedge_min_lag_seconds * _NS
        drift = self.params.hedge_cusum_drift
        s = 0.0
        since = first
        for ts, u in leg.std_flow:
            if ts >= first:
                if s == 0.0:
                    since = ts
                s = max(0.0, s + sign * u - drift)
        return s, since

    def _common_shock(self, leg: _Leg, sign: int, onset_ns: int) -> bool:
        """The leg's standardised flow of sign ``sign`` in the second before ``onset_ns`` to
        ``hedge_min_lag_seconds`` after it adds up to ``hedge_common_shock``: the leg was
        already trading the leader's way when the leader's burst began (one shock on both)."""
        p = self.params
        lo = onset_ns - _NS
        hi = onset_ns + p.hedge_min_lag_seconds * _NS
        total = math.fsum(sign * u for ts, u in leg.std_flow if lo <= ts < hi)
        return total >= p.hedge_common_shock

    def _leads(self, leader: _Leg, follower: _Leg) -> bool:
        """The flow lead–lag puts ``leader`` ahead: its correlation at some lag where the leader
        is ahead by ``hedge_min_lag_seconds`` or more exceeds the same-second correlation (a
        common shock trades both venues in the same seconds). Unknown correlations: no."""
        for pair in self.pairs:
            if pair.a is leader and pair.b is follower:
                ahead = 1
            elif pair.a is follower and pair.b is leader:
                ahead = -1
            else:
                continue
            ll = pair.lead_lag
            same = ll.correlation(ll.lags.index(0))
            best = max(
                (
                    ll.correlation(k)
                    for k, lag in enumerate(ll.lags)
                    if lag * ahead >= self.params.hedge_min_lag_seconds
                ),
                key=lambda r: r if r == r else -2.0,
            )
            return same == same and best == best and best > same
        return False

    def _step(self, leg: _Leg, t: int) -> None:
        p = self.params
        d = self._directional_basis_z(leg)
        warm = leg.engine.warm and leg.mid == leg.mid
        for side in SIDES:
            sign = _SIGN[side]
            score = sign * d
            leg.scores[side] = score
            machine = leg.machines[side]
            other = leg.machines[SIDES[1] if side == SIDES[0] else SIDES[0]]
            level = score >= p.hedge_basis_level_z
            on = False
            if machine.firing:
                # the episode lasts while the basis stays on the hedgers' side and the
                # follower's evidence since its leader's onset has not drained away
                leader = leg.leaders[side]
                alive = leader is not None and leader.engine.live
                if alive:
                    assert leader is not None
                    cusum = self._evidence(leg, sign, leader.burst_onset_ns)[0]
                    leg.evidence[side] = cusum
                    alive = cusum > 0.0
                off = not level or not alive
            else:
                leader, cusum = (None, _NAN)
                if warm and level and not other.firing:
                    leader, cusum = self._leader(leg, sign, t)
                if leader is not None:
                    move = sign * self._directional_basis_move(leg, leader.burst_onset_ns)
                    on = move >= p.hedge_basis_move_z
                leg.leaders[side] = leader if on else None
                leg.evidence[side] = cusum if on else _NAN
                off = True
            if machine.state is AlertState.IDLE and not on:
                continue
            transition = machine.step(t, on, off, score)
            if transition is not None:
                self._emit(leg, side, transition, valid=True)

    def _end_leg(self, leg: _Leg, end_ns: int) -> None:
        """The leg's book life ended: its episodes end at once, its runs are forgotten."""
        for side, machine in leg.machines.items():
            if machine.force_resolve(end_ns):
                leg.scores[side] = _NAN
                self._emit(leg, side, "resolved", valid=False)
        leg.seg_sign = leg.burst_sign = 0
        leg.long_last_ns = [-(1 << 62), -(1 << 62)]
        leg.burst_last_ns = -(1 << 62)
        leg.std_flow.clear()
        leg.burst.clear()
        leg.flow_base.drop_current()

    # -- output -----------------------------------------------------------------------------

    def _pair_of(self, leader: _Leg, follower: _Leg) -> tuple[float, float]:
        for pair in self.pairs:
            if pair.a is leader and pair.b is follower:
                return pair.lag, pair.corr
            if pair.a is follower and pair.b is leader:
                return -pair.lag, pair.corr
        return _NAN, _NAN

    def _emit(self, leg: _Leg, side: str, transition: Transition, *, valid: bool) -> None:
        if self.on_episode is None:
            return
        machine = leg.machines[side]
        context = _base_context(leg.engine, valid)
        leader = leg.leaders.get(side)
        lead, corr = self._pair_of(leader, leg) if leader is not None else (_NAN, _NAN)
        mine = [b for b in self.basis if b.spot is leg or b.perp is leg]
        bps = [b.bps for b in mine if b.bps == b.bps]
        zs = [b.z for b in mine if b.z == b.z]
        context.update(
            {
                "instrument": self.instrument,
                "leader_exchange": leader.exchange if leader is not None else None,
                "leader_symbol": leader.symbol if leader is not None else None,
                "lead_seconds": _json(lead),
                "lead_correlation": _json(corr),
                "basis_bps": _json(statistics.median(bps)) if bps else None,
                "basis_zscore": _json(statistics.median(zs)) if zs else None,
                "leader_flow_z": _json(leader.flow_z) if leader is not None else None,
                "follower_flow_z": _json(leg.flow_z),
                "follower_cusum": _json(leg.evidence[side]),
                "kind": leg.kind,
            }
        )
        if transition == "resolved":
            context["peak_score"] = _json(machine.peak)
        self.on_episode(
            EpisodeEvent(
                symptom=SYMPTOM,
                exchange=leg.exchange,
                symbol=leg.symbol,
                side=side,
                state=transition,
                started_at_ns=machine.started_ns,
                ended_at_ns=machine.ended_ns if transition == "resolved" else None,
                score=machine.score,
                context=context,
            )
        )

    def read(self) -> HedgeReading:
        """The view's measures now (for scrapes)."""
        legs = tuple(
            HedgeLegReading(
                exchange=leg.exchange,
                symbol=leg.symbol,
                kind=leg.kind,
                venue=leg.venue,
                signed_notional=leg.flow,
                flow_z=leg.flow_z,
                symptoms=tuple(
                    HedgeSymptomReading(
                        side,
                        leg.machines[side].firing,
                        leg.scores[side] if leg.engine.live else _NAN,
                        leg.machines[side].episodes,
                    )
                    for side in SIDES
                ),
            )
            for leg in self.legs
        )
        basis = tuple(
            BasisReading(b.spot.venue, b.perp.venue, b.bps, b.z, b.change) for b in self.basis
        )
        lead_lag: list[LeadLagReading] = []
        for pair in self.pairs:
            lead_lag.append(LeadLagReading(pair.a.venue, pair.b.venue, pair.lag, pair.corr))
            lead_lag.append(LeadLagReading(pair.b.venue, pair.a.venue, -pair.lag, pair.corr))
        return HedgeReading(self.instrument, self.evaluated_ns, legs, basis, tuple(lead_lag))


def _base_context(engine: SignalEngine, valid: bool) -> dict[str, Any]:
    """The fields every symptom's context has (docs/webhooks.md), from the leg's engine, and its
    last second's signed taker notional."""
    ok = valid and engine.live
    r = engine.read(settle=False)
    context = base_context(r, ok)
    context["signed_taker_notional"] = _json(r.tick_signed_taker_notional) if ok else None
    return context


def build_hedge_views(
    members: Iterable[tuple[str, str, str | None, str, SignalEngine]],
    params: SignalSettings,
    on_episode: Callable[[EpisodeEvent], None] | None = None,
) -> list[HedgeView]:
    """Group ``(exchange, symbol, instrument id, kind, engine)`` by instrument; one view per
    instrument with at least one ``spot`` and one ``perp`` member (in first-seen order).
    Members without an instrument id, or of another kind (a dated future), are left out."""
    groups: dict[str, list[tuple[str, str, str, SignalEngine]]] = {}
    for exchange, symbol, instrument, kind, engine in members:
        if instrument is not None and kind in ("spot", "perp"):
            groups.setdefault(instrument, []).append((exchange, symbol, kind, engine))
    return [
        HedgeView(instrument, legs, params, on_episode)
        for instrument, legs in groups.items()
        if {kind for _, _, kind, _ in legs} == {"spot", "perp"}
    ]
