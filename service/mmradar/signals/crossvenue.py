"""The cross-venue view: one instrument watched on several venues, compared second by second.

Dealers quote the same asset on many venues. When one venue's dealers hit their inventory
limit, that venue's book empties while the others keep quoting — a different story from a
market-wide pull, where every venue thins at once (``liquidity_pull`` on each). This module
groups the configured (exchange, symbol) pairs by canonical instrument
(:mod:`mmradar.instruments`; ``BTCUSDT`` on Binance, ``BTC-USD`` on Coinbase, ``BTC/USD`` on
Kraken all become ``BTC-USD``) and, for every instrument on two or more venues, computes:

* ``mmradar_cross_venue_mid_dislocation_bps{instrument,exchange,symbol}`` — the venue's mid
  against the median of the valid venues' mids, ``1e4 * (mid / median − 1)``; NaN unless at
  least two venues are valid. Spot against perpetual and USDT against USD quotes carry a
  steady offset (basis, stablecoin premium): read it as a change, not a level.
* ``mmradar_consolidated_depth_notional{instrument,side,band_bps}`` — the sum over the valid
  venues of ``mmradar_depth_notional`` (quote currencies of one family taken at par).
* ``mmradar_cross_venue_venues{instrument}`` — how many venues are valid right now.
* the symptom ``venue_withdrawal`` (side ``both``), reported on the withdrawing venue's own
  ``mmradar_symptom_*{exchange,symbol}`` series and webhooks: the venue's near-touch depth
  (bid + ask within ``withdrawal_band_bps``) against its own baseline — the ratio
  ``r = depth / baseline`` — collapses to ``withdrawal_ratio_on`` or below while the median
  ratio of the other valid, warmed-up venues stays at ``withdrawal_others_ratio`` or above,
  for ``withdrawal_on_seconds``; it ends when ``r`` is back to ``withdrawal_ratio_off`` (or
  the others collapse too: no longer one venue's story) for ``withdrawal_off_seconds``. The
  score is ``1 − r / (the others' median ratio)``: the share of the venue's usual near-touch
  depth missing beyond what the others miss (0 = like the others, 1 = all gone; higher = more
  withdrawn). Each venue is compared with its own baseline, so venues of very different sizes
  compare fairly.

Clock. Every venue's signal engine ticks once per second of *its own* event time and hands its
sample to the view (``SignalEngine.on_tick``). The view evaluates a second once every valid
venue has reported it (or, if one lags, when another reports a later second), using each
venue's latest sample if it is at most :data:`MAX_SAMPLE_AGE_NS` old, so a replay at any speed
gives the same result as live. A venue whose book is invalid (or whose
detectors are still warming up) is left out; a withdrawal episode of a venue whose book goes
invalid ends at once, as every symptom does.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ..model import BAND_BPS
from .alerts import AlertMachine, AlertState, AlertTiming, Transition
from .engine import SignalEngine
from .episodes import EpisodeEvent
from .params import SignalSettings
from .ticks import add_tick_listener

__all__ = ["MAX_SAMPLE_AGE_NS", "SYMPTOM", "CrossVenueView", "Member", "build_views"]

SYMPTOM: Final = "venue_withdrawal"
SIDE: Final = "both"
_NS: Final = 1_000_000_000
#: A venue's sample older than this (event time) is not compared with the others.
MAX_SAMPLE_AGE_NS: Final = 2 * _NS
_NAN: Final = math.nan


def _json(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(slots=True)
class Member:
    """One venue's symbol in an instrument group, with its latest sample."""

    exchange: str
    symbol: str
    engine: SignalEngine
    machine: AlertMachine
    ts_ns: int = 0
    life_ns: int = 0  # the engine's book life the samples belong to
    mid: float = _NAN
    bids: tuple[float, ...] = ()
    asks: tuple[float, ...] = ()
    ratio: float = _NAN  # near-touch depth / its baseline (NaN while unknown)
    score: float = _NAN
    warm: bool = False
    dislocation_bps: float = _NAN
    context: dict[str, Any] = field(default_factory=dict)

    def fresh(self, now_ns: int) -> bool:
        return self.engine.live and now_ns - self.ts_ns <= MAX_SAMPLE_AGE_NS


class CrossVenueView:
    """One canonical instrument on two or more venues.

    Args:
        instrument: the canonical id (``BTC-USD``).
        engines: ``(exchange, symbol, engine)`` of every venue watching it.
        params: the ``[signals]`` settings (``withdrawal_*``, ``min_firing_seconds``,
            ``cooldown_seconds``).
        on_episode: receives ``venue_withdrawal`` episode starts and ends.
    """

    def __init__(
        self,
        instrument: str,
        engines: Sequence[tuple[str, str, SignalEngine]],
        params: SignalSettings,
        on_episode: Callable[[EpisodeEvent], None] | None = None,
    ) -> None:
        if len(engines) < 2:
            raise ValueError("a cross-venue view needs at least two venues")
        self.instrument = instrument
        self.params = params
        self.on_episode = on_episode
        self._band = BAND_BPS.index(params.withdrawal_band_bps)
        timing = AlertTiming(
            params.withdrawal_on_seconds,
            params.withdrawal_off_seconds,
            params.min_firing_seconds,
            params.cooldown_seconds,
        )
        self.members = [Member(x, s, e, AlertMachine(timing)) for x, s, e in engines]
        self._by_engine = {id(m.engine): m for m in self.members}
        self.now_ns = 0
        self._pending = False
        #: consolidated depth per band of ``BAND_BPS`` (NaN while no venue is valid).
        self.bids: tuple[float, ...] = (_NAN,) * len(BAND_BPS)
        self.asks: tuple[float, ...] = (_NAN,) * len(BAND_BPS)
        self.valid_venues = 0
        for member in self.members:
            add_tick_listener(member.engine, self.on_tick)

    # -- input ------------------------------------------------------------------------------

    def on_tick(self, engine: SignalEngine) -> None:
        """A venue's engine finished a stat tick: take its sample; evaluate a completed second.

        Second ``t`` is evaluated once every valid venue has reported it, or, if one lags,
        when the first venue reports a later second (the laggard then counts with its
        previous sample, or not at all once :data:`MAX_SAMPLE_AGE_NS` old).
        """
        member = self._by_engine[id(engine)]
        s = engine.sample
        t = s.ts_ns
        if t > self.now_ns:
            if self._pending:
                self.evaluate(self.now_ns)
            self.now_ns = t
            self._pending = True
        if engine.life_start_ns != member.life_ns:
            # The book was resynced since the venue's last sample: an episode of the old book
            # life ends where that life's samples ended, like every symptom's.
            if member.machine.force_resolve(member.ts_ns or t):
                member.score = _NAN
                self._emit(member, "resolved", valid=False, others={})
            member.life_ns = engine.life_start_ns
        member.ts_ns = t
        member.mid = s.mid
        member.bids = s.bids
        member.asks = s.asks
        member.warm = engine.warm
        b = self._band
        base = engine.depth_baselines.bids[b] + engine.depth_baselines.asks[b]
        depth = s.bids[b] + s.asks[b]
        member.ratio = depth / base if base > 0.0 and math.isfinite(depth) else _NAN
        if self._pending and all(m.ts_ns >= self.now_ns for m in self.members if m.engine.live):
            self._pending = False
            self.evaluate(self.now_ns)

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(self, now_ns: int) -> None:
        """Recompute the cross-venue measures and step every venue's withdrawal machine."""
        p = self.params
        live = [m for m in self.members if m.fresh(now_ns) and m.mid > 0.0]
        self.valid_venues = len(live)
        median_mid = statistics.median(m.mid for m in live) if len(live) >= 2 else _NAN
        for m in self.members:
            m.dislocation_bps = 1e4 * (m.mid / median_mid - 1.0) if m in live else _NAN
        n = len(BAND_BPS)
        if live:
            self.bids = tuple(math.fsum(m.bids[i] for m in live) for i in range(n))
            self.asks = tuple(math.fsum(m.asks[i] for m in live) for i in range(n))
        else:
            self.bids = self.asks = (_NAN,) * n
        for m in self.members:
            if not m.engine.live:
                if m.machine.force_resolve(m.ts_ns or now_ns):
                    m.score = _NAN
                    self._emit(m, "resolved", valid=False, others={})
                continue
            if m not in live or not m.warm:
                m.score = _NAN
                continue
            others = {
                f"{o.exchange}:{o.symbol}": o.ratio
                for o in live
                if o is not m and o.warm and math.isfinite(o.ratio)
            }
            held = statistics.median(others.values()) if others else _NAN
            r = m.ratio
            m.score = 1.0 - r / held if held > 0.0 and math.isfinite(r) else _NAN
            others_hold = held >= p.withdrawal_others_ratio
            on = math.isfinite(r) and r <= p.withdrawal_ratio_on and others_hold
            off = not others_hold or not (r < p.withdrawal_ratio_off)
            if m.machine.state is AlertState.IDLE and not on:
                continue
            transition = m.machine.step(now_ns, on, off, m.score)
            if transition is not None:
                self._emit(m, transition, valid=True, others=others)

    def _emit(
        self, m: Member, transition: Transition, *, valid: bool, others: dict[str, float]
    ) -> None:
        if self.on_episode is None:
            return
        machine = m.machine
        engine = m.engine
        base = engine.depth_baselines
        sample = engine.sample
        ok = valid and bool(m.bids)
        # The shape every symptom's context has (docs/webhooks.md), then the cross-venue facts.
        context: dict[str, Any] = {
            "book_valid": valid,
            "best_bid": _json(sample.best_bid) if ok else None,
            "best_ask": _json(sample.best_ask) if ok else None,
            "mid": _json(m.mid) if ok else None,
            "spread_bps": (
                _json(1e4 * (sample.best_ask - sample.best_bid) / sample.mid) if ok else None
            ),
            "spread_baseline_bps": _json(math.exp(engine.spread.log_spread.median)),
            "depth": {
                str(band): {"bid": _json(m.bids[i]), "ask": _json(m.asks[i])}
                if ok
                else {"bid": None, "ask": None}
                for i, band in enumerate(BAND_BPS)
            },
            "depth_baseline": {
                str(band): {"bid": _json(base.bids[i]), "ask": _json(base.asks[i])}
                for i, band in enumerate(BAND_BPS)
            },
            "dealer_pressure": _json(engine.pressure),
            "instrument": self.instrument,
            "withdrawal_band_bps": BAND_BPS[self._band],
            "depth_ratio": _json(m.ratio) if ok else None,
            "other_venues_depth_ratio": {k: _json(v) for k, v in sorted(others.items())},
            "mid_dislocation_bps": _json(m.dislocation_bps) if ok else None,
        }
        if transition == "resolved":
            context["peak_score"] = _json(machine.peak)
        self.on_episode(
            EpisodeEvent(
                symptom=SYMPTOM,
                exchange=m.exchange,
                symbol=m.symbol,
                side=SIDE,
                state=transition,
                started_at_ns=machine.started_ns,
                ended_at_ns=machine.ended_ns if transition == "resolved" else None,
                score=machine.score,
                context=context,
            )
        )


def build_views(
    members: Iterable[tuple[str, str, str | None, SignalEngine]],
    params: SignalSettings,
    on_episode: Callable[[EpisodeEvent], None] | None = None,
) -> list[CrossVenueView]:
    """Group ``(exchange, symbol, instrument id, engine)`` by instrument; one view per group of
    two or more venues (in first-seen order). Symbols without an instrument id are left out."""
    groups: dict[str, list[tuple[str, str, SignalEngine]]] = {}
    for exchange, symbol, instrument, engine in members:
        if instrument is not None:
            groups.setdefault(instrument, []).append((exchange, symbol, engine))
    return [
        CrossVenueView(instrument, engines, params, on_episode)
        for instrument, engines in groups.items()
        if len({x for x, _, _ in engines}) >= 2
    ]
