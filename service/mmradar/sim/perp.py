"""The second venue: a perpetual on the same efficient price, and the spot dealers' hedging.

The perpetual is a market of its own built from the spot model's pieces (:class:`_Market`):
its own price-time book, GLFT makers, zero-intelligence background liquidity and
price-sensitive takers, with the parameters of :class:`~mmradar.sim.params.PerpParams` and an
RNG stream of its own (``random.Random(f"perp/{seed}")``), so the spot venue draws exactly what
it draws without it. Its agents anchor on the fair price ``S·(1 + (basis_bps + b_t)·1e-4)``:
``S`` is the spot run's efficient price at the same instant, ``b_t`` an Ornstein–Uhlenbeck basis
noise, plus the transient impact of its own taker flow (:class:`~mmradar.sim.params.PerpParams`).
Its regime is always calm, but for the ``common`` regimes' bursts, which hit it at the
same instants as spot (sizes from its own stream).

Hedging (:class:`_Hedger`, :class:`~mmradar.sim.params.HedgeParams`): every ``every_s`` each
spot dealer targets a perpetual position of ``−fraction`` × its spot inventory as it was
``delay_s`` earlier and sends a taker order (walking the perpetual book up to ``limit_bps``
beyond the fair price) for ``gap·(1 − 2^(−every_s/half_life_s))``, unless that is under
``min_clip`` (a gap that only reduces the hedge closes with ``unwind_half_life_s``). A hedging
dealer quotes, and keeps its inventory limits, on its net position (spot inventory + hedge):
laying the risk off, it keeps absorbing the spot flow. Every order is recorded as a
:class:`~mmradar.sim.types.HedgeOrder` — the truth the ``hedge_pressure`` labels are made from.

Within one 100 ms window the spot venue runs first, then the perpetual over the same interval
(its hedges and common bursts were decided by then); the two frame streams are merged by time
by whoever consumes them.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import replace

from .book import ASK, BID, Book
from .market import _BURST, _HEDGE, _NS, WINDOW_NS, _Market
from .params import REGIMES, SimParams
from .types import HedgeOrder, ScenarioSpec, VenueRun
from .wire import agg_trade_frame, usdm_depth_frame, usdm_snapshot_body

__all__ = ["EXCHANGE", "Perp"]

EXCHANGE = "binance-usdm"
_FIRST_UPDATE_ID = 7_000_000_000_001
_FIRST_AGG_ID = 900_000_001
_LN2 = math.log(2.0)


def _perp_params(p: SimParams) -> SimParams:
    """The spot parameters with the perpetual's market in place of the spot one's."""
    q = p.perp
    return replace(
        p,
        symbol=q.symbol,
        tick=q.tick,
        lot=q.lot,
        price_decimals=q.price_decimals,
        qty_decimals=q.qty_decimals,
        dealers=q.dealers,
        taker_rate=q.taker_rate,
        taker_size_median=q.taker_size_median,
        taker_size_sigma=q.taker_size_sigma,
        taker_size_max=q.taker_size_max,
        burst_size_median=q.burst_size_median,
        bg_orders=q.bg_orders,
        bg_size_median=q.bg_size_median,
    )


class Perp(_Market):
    """The perpetual venue, following a spot :class:`_Market` (which must keep its trace)."""

    def __init__(self, spot: _Market, seed: int, start_ns: int) -> None:
        super().__init__(spot.spec, seed, _perp_params(spot.p), start_ns)
        self.rng = random.Random(f"perp/{seed}")
        self.book = Book(_FIRST_UPDATE_ID)
        self.trade_id = _FIRST_AGG_ID
        self.spot = spot
        self.basis_noise = 0.0
        self.impact = 0.0  # transient impact of the taker flow, bps
        self.ratio = float(spot.p.tick) / self.tick
        self.mids: list[float] = []
        self._trace_ts: list[int] = []
        self._trace_at = 0
        self.s = self.fair(spot.s)
        self._hedger: _Hedger | None = None

    def fair(self, spot_s: float) -> float:
        """The perpetual's fair price (ticks) for the spot efficient price ``spot_s``."""
        basis = (self.p.perp.basis_bps + self.basis_noise + self.impact) * 1e-4
        return spot_s * self.ratio * (1.0 + basis)

    def advance_s(self, t: int) -> None:
        if t <= self.t:
            return
        q = self.p.perp
        dt = (t - self.t) / _NS
        decay = math.exp(-dt * _LN2 / q.basis_half_life_s)
        shock = q.basis_noise_bps * math.sqrt(max(0.0, 1.0 - decay * decay))
        self.basis_noise = self.basis_noise * decay + shock * self.rng.gauss(0.0, 1.0)
        self.impact *= math.exp(-dt * _LN2 / q.impact_half_life_s)
        trace = self.spot.trace
        assert trace is not None
        ts = self._trace_ts
        ts.extend(x for x, _ in trace[len(ts) :])
        i = bisect.bisect_right(ts, t) - 1
        spot_s = trace[i][1] if i >= 0 else self.spot.s
        self.s = self.fair(spot_s)
        self.t = t

    def take(self, side: int, limit: int | None, lots: int) -> int:
        filled = super().take(side, limit, lots)
        signed = filled if side == BID else -filled
        self.impact += self.p.perp.impact_bps * signed * self.lot
        return filled

    def trade_frame(self, ms: int, price: int, qty: int, buyer_is_maker: bool) -> tuple[str, bytes]:
        return agg_trade_frame(
            self.p.symbol, ms, self.trade_id, price, qty, buyer_is_maker, self.px, self.qx
        )

    def depth_frame(
        self,
        ms: int,
        first: int,
        final: int,
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
    ) -> tuple[str, bytes]:
        return usdm_depth_frame(self.p.symbol, ms, first, final, bids, asks, self.px, self.qx)

    def snapshot(self, ts_ns: int) -> bytes:
        """The REST snapshot of the book as it is (call once the seeding window is closed)."""
        return usdm_snapshot_body(
            self.book.update_id,
            ts_ns // 1_000_000,
            self.book.levels(BID),
            self.book.levels(ASK),
            self.px,
            self.qx,
        )

    def run_window(self, t0: int, hedger: _Hedger | None) -> None:
        """Run the perpetual's events of (t0, t0 + 100 ms] and close its depth window: the
        spot market's requotes, background orders and takes (:meth:`_Market.base_events`), the
        common shocks spot decided for this interval, and the hedgers' orders."""
        q = self.p
        events = self.base_events(t0, q.taker_rate, q.taker_rate)
        end = t0 + WINDOW_NS
        for t, side in self.spot.shocks:
            if t0 < t <= end:
                events.append((t, _BURST, side))
        self.spot.shocks = [x for x in self.spot.shocks if x[0] > end]
        self._hedger = hedger
        if hedger is not None:
            for t, dealer in hedger.due(end):
                events.append((t, _HEDGE, dealer))
        self.play(events, end)
        bb, ba = self.book.best(BID), self.book.best(ASK)
        self.mids.append(
            (bb + ba) * self.tick / 2.0 if bb is not None and ba is not None else math.nan
        )

    def on_event(self, t: int, kind: int, arg: int) -> None:
        if kind == _HEDGE:
            assert self._hedger is not None
            self._hedger.hedge(self, arg, t)
        else:
            super().on_event(t, kind, arg)

    def result(self, snapshot: bytes, hedger: _Hedger | None) -> VenueRun:
        """What the venue published."""
        return VenueRun(
            exchange=EXCHANGE,
            symbol=self.p.symbol,
            tick=self.p.tick,
            snapshot=snapshot,
            frames=self.frames,
            mid=tuple(self.mids),
            hedges=tuple(hedger.orders) if hedger is not None else (),
            hedge_position=tuple(hedger.position) if hedger is not None else (),
        )


class _Hedger:
    """The spot dealers' hedging on the perpetual (module docstring)."""

    def __init__(self, spot: _Market, start_ns: int) -> None:
        h = spot.p.hedge
        self.spot = spot
        self.h = h
        n = len(spot.dealers)
        self.every_ns = round(h.every_s * _NS)
        self.delay_ns = round(h.delay_s * _NS)
        self.step = 1.0 - 2.0 ** (-h.every_s / h.half_life_s)
        self.unwind_step = 1.0 - 2.0 ** (-h.every_s / h.unwind_half_life_s)
        # dealer i reconsiders at start + (i + 1)/(n + 1)·every + k·every
        self.next = [start_ns + (i + 1) * self.every_ns // (n + 1) for i in range(n)]
        self.position = [0.0] * n  # perpetual position, base units
        self.orders: list[HedgeOrder] = []

    def due(self, end_ns: int) -> list[tuple[int, int]]:
        """The ``(time, dealer)`` decisions in the window ending at ``end_ns``."""
        out = []
        for i, t in enumerate(self.next):
            while t <= end_ns:
                out.append((t, i))
                t += self.every_ns
            self.next[i] = t
        return out

    def inventory(self, dealer: int, ts_ns: int) -> float:
        """The dealer's spot inventory (base units) at the last truth sample at or before."""
        truth = self.spot.truth
        i = len(truth) - 1
        while i >= 0 and truth[i].ts_ns > ts_ns:
            i -= 1
        return truth[i].inventory[dealer] if i >= 0 else 0.0

    def hedge(self, perp: Perp, dealer: int, ts_ns: int) -> None:
        h = self.h
        target = -h.fraction * self.inventory(dealer, ts_ns - self.delay_ns)
        position = self.position[dealer]
        gap = target - position
        reducing = position != 0.0 and (gap > 0) != (position > 0) and abs(target) < abs(position)
        qty = gap * (self.unwind_step if reducing else self.step)
        if abs(qty) < h.min_clip:
            return
        side = BID if qty > 0 else ASK
        lots = max(1, round(abs(qty) / perp.lot))
        band = h.limit_bps * 1e-4
        limit = (
            math.floor(perp.s * (1.0 + band)) if side == BID else math.ceil(perp.s * (1.0 - band))
        )
        filled = perp.take(side, limit, lots) * perp.lot
        self.position[dealer] += filled if side == BID else -filled
        spot = self.spot.dealers[dealer]
        spot.hedge_lots = round(self.position[dealer] / self.spot.lot)
        self.orders.append(
            HedgeOrder(dealer, ts_ns, "buy" if side == BID else "sell", lots * perp.lot, filled)
        )


def start(
    spot: _Market, spec: ScenarioSpec, seed: int, start_ns: int
) -> tuple[Perp, _Hedger | None]:
    """Attach the perpetual (and the hedger, if ``spec.hedged``) to a spot market not yet run."""
    spot.trace = [(start_ns, spot.s)]
    perp = Perp(spot, seed, start_ns)
    perp.regime = REGIMES["calm"]
    hedger = _Hedger(spot, start_ns) if spec.hedged else None
    return perp, hedger
