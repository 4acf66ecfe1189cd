"""The simulation loop: agents act on the book, every 100 ms a depth window closes.

Time advances in 100 ms depth windows. Within a window the stochastic events (taker arrivals,
background arrivals and expiries, spoofing orders, one requote per dealer at a jittered offset)
are drawn, sorted by time and applied in order; the efficient price ``S`` is advanced to each
event's time (arithmetic Brownian motion in bps of ``S``, σ from the regime). At the window's end
the book's changed levels become one ``depthUpdate`` frame and a :class:`TruthSample` is taken.
Every random draw comes from one ``random.Random(seed)`` in a fixed order, so a run is a pure
function of (scenario, seed, parameters).

Takers (docs/simulator.md, "Model"):

* price-sensitive takers arrive per side at ``taker_rate`` × the regime's multiplier; each walks
  the book up to ``Exp(taker_k)`` bps beyond S (a marketable limit order, the rest cancelled),
  so the probability that a quote ``δ`` bps from S is reached is ``e^(−taker_k·δ)``: the AS fill
  intensity ``A·e^(−kδ)`` emerges from the arrival rate and the patience distribution;
* bursts add impatient orders on one side that sweep up to ``burst_limit_bps`` beyond S
  whatever the quotes (uninformed flow: S does not move);
* the ``sweep`` control adds large buy orders that walk the asks up to ``sweep_limit_bps``
  beyond S, against dealers who hedge every fill at once and re-quote the side that was hit
  (they keep quoting): the asks are traded through, not pulled;
* sizes are lognormal, capped.

Background liquidity is zero-intelligence: limit orders at a uniform distance from S in
``[bg_min_bps, bg_max_bps]`` (a small share nearer than 10 bps), lognormal sizes, exponential
lifetimes; an order that would cross is not placed. The spoofer rests large orders 20–60 bps
away for 100–500 ms.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import replace

from .agents import Dealer
from .book import ASK, BID, Book
from .labels import label_episodes, label_hedges
from .params import REGIMES, Regime, SimParams
from .types import DealerFill, ScenarioSpec, SimFrame, SimRun, TruthSample
from .wire import Decimals, depth_frame, snapshot_body, trade_frame

__all__ = ["WINDOW_NS", "run_scenario"]

WINDOW_NS = 100_000_000
_NS = 1_000_000_000
_BG = -1
_SPOOF = -2
_FIRST_UPDATE_ID = 10_000_000_001
_FIRST_TRADE_ID = 3_000_000_001

# event kinds, in tie-break order within one instant (_HEDGE: the perpetual's, mmradar.sim.perp)
_EXPIRE, _REQUOTE, _BG_ADD, _SPOOF_ADD, _TAKE, _BURST, _SWEEP, _HEDGE = range(8)


class _Market:
    def __init__(self, spec: ScenarioSpec, seed: int, p: SimParams, start_ns: int) -> None:
        self.spec = spec
        self.p = p
        self.rng = random.Random(seed)
        self.px = Decimals(p.tick, p.price_decimals)
        self.qx = Decimals(p.lot, p.qty_decimals)
        self.tick = float(p.tick)
        self.lot = float(p.lot)
        self.book = Book(_FIRST_UPDATE_ID)
        self.dealers = [Dealer(i, d, p.sigma_bps, self.lot) for i, d in enumerate(p.dealers)]
        self.t = start_ns
        self.s = p.s0 / self.tick  # efficient price, in ticks (float)
        self.expiries: list[tuple[int, int]] = []  # (time, order id) of background/spoof
        self.trade_id = _FIRST_TRADE_ID
        self.frames: list[SimFrame] = []
        self.truth: list[TruthSample] = []
        self.fills: list[DealerFill] = []
        self.regime_name = "calm"
        self.regime: Regime = REGIMES["calm"]
        self.phase_start = start_ns
        self.next_refresh = -1
        # with a second venue: S's path (time, ticks) and the common-shock bursts (time, side)
        self.trace: list[tuple[int, float]] | None = None
        self.shocks: list[tuple[int, int]] = []

    # -- helpers --------------------------------------------------------------------------

    def lognormal_lots(self, median: float, sigma: float, cap: float | None = None) -> int:
        size = median * math.exp(self.rng.gauss(0.0, sigma))
        if cap is not None:
            size = min(size, cap)
        return max(1, round(size / self.lot))

    def advance_s(self, t: int) -> None:
        if t <= self.t:
            return
        dt = (t - self.t) / _NS
        sigma = self.p.sigma_bps * self.regime.sigma_mult
        self.s *= 1.0 + sigma * math.sqrt(dt) * self.rng.gauss(0.0, 1.0) * 1e-4
        self.t = t
        if self.trace is not None:
            self.trace.append((t, self.s))

    def poisson_times(
        self, rate: float, t0: int, out: list[tuple[int, int, int]], kind: int
    ) -> None:
        if rate <= 0.0:
            return
        t = 0.0
        while True:
            t += self.rng.expovariate(rate)
            if t >= WINDOW_NS / _NS:
                return
            out.append((t0 + int(t * _NS), kind, 0))

    # -- agents ---------------------------------------------------------------------------

    def place_background(self, side: int, near: bool | None = None) -> None:
        p = self.p
        rng = self.rng
        if near is None:
            near = rng.random() < p.bg_near_share
        d = rng.uniform(p.bg_min_bps, 10.0) if near else rng.uniform(10.0, p.bg_max_bps)
        if side == BID:
            price = math.floor(self.s * (1.0 - d * 1e-4))
        else:
            price = math.ceil(self.s * (1.0 + d * 1e-4))
        lots = self.lognormal_lots(p.bg_size_median, p.bg_size_sigma)
        life = rng.expovariate(1.0 / p.bg_lifetime_s)
        opposite = self.book.best(1 - side)
        if opposite is not None and (price >= opposite if side == BID else price <= opposite):
            return
        order = self.book.add(_BG, side, price, lots)
        heapq.heappush(self.expiries, (self.t + int(life * _NS), order.oid))

    def place_spoof(self) -> None:
        p = self.p
        rng = self.rng
        side = BID if rng.random() < 0.5 else ASK
        d = rng.uniform(*p.spoof_bps)
        price = (
            math.floor(self.s * (1.0 - d * 1e-4))
            if side == BID
            else math.ceil(self.s * (1.0 + d * 1e-4))
        )
        opposite = self.book.best(1 - side)
        if opposite is not None and (price >= opposite if side == BID else price <= opposite):
            return
        order = self.book.add(_SPOOF, side, price, max(1, round(p.spoof_size / self.lot)))
        life = rng.uniform(*p.spoof_life_s)
        heapq.heappush(self.expiries, (self.t + int(life * _NS), order.oid))

    def take(self, side: int, limit: int | None, lots: int) -> int:
        """A taker order: fills, dealer bookkeeping, trade frames. Returns the lots filled."""
        fills = self.book.take(side, limit, lots)
        ms = self.t // 1_000_000
        hit: list[Dealer] = []
        for f in fills:
            if f.maker_owner >= 0:
                dealer = self.dealers[f.maker_owner]
                dealer.on_fill(f.maker_side, f.price, f.qty)
                if f.maker_oid not in self.book.orders:
                    dealer.orders.pop(f.maker_oid, None)
                signed = f.qty if f.maker_side == BID else -f.qty
                self.fills.append(DealerFill(f.maker_owner, self.t, signed, f.price))
                if self.regime.hedge:
                    dealer.inventory -= signed  # hedged elsewhere at once
                    if dealer not in hit:
                        hit.append(dealer)
            stream, payload = self.trade_frame(ms, f.price, f.qty, f.maker_side == BID)
            self.trade_id += 1
            self.frames.append(SimFrame(self.t, stream, payload))
        for dealer in hit:  # hedged dealers keep quoting: the side that was hit comes back
            self.requote(dealer)
        return sum(f.qty for f in fills)

    def trade_frame(self, ms: int, price: int, qty: int, buyer_is_maker: bool) -> tuple[str, bytes]:
        return trade_frame(
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
        return depth_frame(self.p.symbol, ms, first, final, bids, asks, self.px, self.qx)

    def cancel_stale(self) -> None:
        """Background owners re-peg what the efficient price has reached or passed.

        The order is cancelled and a fresh one placed at a new random distance on the same
        side, so a trending S neither leaves stale quotes to be picked off nor drains one side.
        """
        band = self.p.bg_stale_bps * 1e-4
        for side, price in (
            (BID, math.ceil(self.s * (1.0 - band))),
            (ASK, math.floor(self.s * (1.0 + band))),
        ):
            for order in self.book.orders_through(side, price):
                if order.owner < 0:
                    self.book.cancel(order.oid)
                    self.place_background(side)

    def price_sensitive(self, side: int) -> None:
        p = self.p
        patience = self.rng.expovariate(p.taker_k)
        lots = self.lognormal_lots(p.taker_size_median, p.taker_size_sigma, p.taker_size_max)
        if side == BID:
            limit = math.floor(self.s * (1.0 + patience * 1e-4))
        else:
            limit = math.ceil(self.s * (1.0 - patience * 1e-4))
        self.take(side, limit, lots)

    def burst(self, side: int) -> None:
        p = self.p
        lots = self.lognormal_lots(p.burst_size_median, p.taker_size_sigma, p.taker_size_max)
        band = p.burst_limit_bps * 1e-4
        if side == BID:
            limit = math.floor(self.s * (1.0 + band))
        else:
            limit = math.ceil(self.s * (1.0 - band))
        self.take(side, limit, lots)

    def sweep(self) -> None:
        p = self.p
        cap = 10 * p.sweep_size_median
        lots = self.lognormal_lots(p.sweep_size_median, p.taker_size_sigma, cap)
        limit = math.floor(self.s * (1.0 + p.sweep_limit_bps * 1e-4))
        self.take(BID, limit, lots)

    def requote(self, dealer: Dealer) -> None:
        dealer.observe(self.s, self.t)
        want = dealer.desired(self.s, self.t, self.rng)
        tol = math.floor(self.s * dealer.p.requote_tolerance_bps * 1e-4)
        dealer.requote(self.book, want, tol)

    # -- schedule -------------------------------------------------------------------------

    def set_regime(self, name: str) -> None:
        self.regime_name = name
        self.regime = REGIMES[name]
        self.phase_start = self.t
        self.next_refresh = (
            self.t + round(self.p.refresh_every_s * _NS) if self.regime.refresh else -1
        )

    def base_events(self, t0: int, buy_rate: float, sell_rate: float) -> list[tuple[int, int, int]]:
        """The events every venue has in ``(t0, t0 + 100 ms]``, drawn in this order: each
        dealer's requote, background orders (two draws), price-sensitive buys and sells at
        these rates."""
        p = self.p
        rng = self.rng
        events: list[tuple[int, int, int]] = []
        for i in range(len(self.dealers)):
            events.append((t0 + int(rng.uniform(0.005, 0.095) * _NS), _REQUOTE, i))
        per_side = p.bg_orders / p.bg_lifetime_s
        self.poisson_times(per_side, t0, events, _BG_ADD)
        self.poisson_times(per_side, t0, events, _BG_ADD)
        for side, rate in ((BID, buy_rate), (ASK, sell_rate)):
            takes: list[tuple[int, int, int]] = []
            self.poisson_times(rate, t0, takes, _TAKE)
            events.extend((t, k, side) for t, k, _ in takes)
        return events

    def play(self, events: list[tuple[int, int, int]], end: int) -> None:
        """Add the order expiries due by ``end``, run every event in time order (ties in
        kind order) and close the depth window at ``end``."""
        while self.expiries and self.expiries[0][0] <= end:
            t, oid = heapq.heappop(self.expiries)
            events.append((max(t, end - WINDOW_NS + 1), _EXPIRE, oid))
        events.sort()
        p = self.p
        if self.regime.refresh and self.next_refresh <= end:
            # a symmetric refresh: every dealer steps away from both sides at once
            for dealer in self.dealers:
                dealer.hold_until = self.next_refresh + round(p.refresh_off_s * _NS)
            self.next_refresh += round(p.refresh_every_s * _NS)
        for t, kind, arg in events:
            self.advance_s(t)
            self.on_event(t, kind, arg)
        self.advance_s(end)
        self.cancel_stale()
        closed = self.book.take_window()
        if closed is not None:
            first, final, bids, asks = closed
            stream, payload = self.depth_frame(end // 1_000_000, first, final, bids, asks)
            self.frames.append(SimFrame(end, stream, payload))

    def on_event(self, t: int, kind: int, arg: int) -> None:
        """One event of :meth:`play` at ``t`` (the clock already advanced to it)."""
        if kind == _EXPIRE:
            self.book.cancel(arg)
        elif kind == _REQUOTE:
            self.requote(self.dealers[arg])
        elif kind == _BG_ADD:
            self.place_background(BID if self.rng.random() < 0.5 else ASK)
        elif kind == _SPOOF_ADD:
            self.place_spoof()
        elif kind == _TAKE:
            self.price_sensitive(arg)
        elif kind == _SWEEP:
            self.sweep()
        elif kind == _BURST:
            if self.regime.common:
                self.shocks.append((t, arg))
            self.burst(arg)
        else:
            raise ValueError(f"unknown event kind {kind}")

    def window(self, t0: int) -> None:
        """Run the events of (t0, t0 + 100 ms] and close the depth window."""
        p = self.p
        reg = self.regime
        events = self.base_events(t0, p.taker_rate * reg.buy_mult, p.taker_rate * reg.sell_mult)
        for side, rate in ((BID, reg.burst_buy_rate), (ASK, reg.burst_sell_rate)):
            bursts: list[tuple[int, int, int]] = []
            self.poisson_times(rate, t0, bursts, _BURST)
            events.extend((t, k, side) for t, k, _ in bursts)
        if reg.spoof:
            self.poisson_times(p.spoof_rate, t0, events, _SPOOF_ADD)
        if reg.sweep_rate > 0.0:
            self.poisson_times(reg.sweep_rate, t0, events, _SWEEP)
        end = t0 + WINDOW_NS
        self.play(events, end)
        self.sample(end)

    def sample(self, ts: int) -> None:
        book = self.book
        bb, ba = book.best(BID), book.best(ASK)
        tick = self.tick
        mid = (bb + ba) * tick / 2.0 if bb is not None and ba is not None else math.nan
        spread = (ba - bb) * tick if bb is not None and ba is not None else math.nan
        quotes = []
        bsz = []
        asz = []
        best_db: int | None = None
        best_da: int | None = None
        for d in self.dealers:
            qb, qa = d.best_quotes()
            quotes.append(
                (
                    qb * tick if qb is not None else math.nan,
                    qa * tick if qa is not None else math.nan,
                )
            )
            sb, sa = d.side_sizes()
            bsz.append(sb * self.lot)
            asz.append(sa * self.lot)
            if qb is not None and (best_db is None or qb > best_db):
                best_db = qb
            if qa is not None and (best_da is None or qa < best_da):
                best_da = qa
        inv = tuple(d.inventory * self.lot for d in self.dealers)
        dealer_spread = (
            (best_da - best_db) * tick if best_db is not None and best_da is not None else math.inf
        )
        self.truth.append(
            TruthSample(
                ts_ns=ts,
                mid=mid,
                inventory=inv,
                total_inventory=sum(d.inventory for d in self.dealers) * self.lot,
                bid_quoted=tuple(s > 0 for s in bsz),
                ask_quoted=tuple(s > 0 for s in asz),
                quotes=tuple(quotes),
                regime=self.regime_name,
                efficient_price=self.s * tick,
                sigma_bps=self.p.sigma_bps * self.regime.sigma_mult,
                bid_size=tuple(bsz),
                ask_size=tuple(asz),
                spread=spread,
                dealer_spread=dealer_spread,
                hedge_position=sum(d.hedge_lots for d in self.dealers) * self.lot,
            )
        )

    def seed_book(self) -> None:
        """The book before the first window: background everywhere, dealers quoting."""
        p = self.p
        n_near = round(p.bg_orders * p.bg_near_share)
        for side in (BID, ASK):
            for i in range(p.bg_orders):
                self.place_background(side, near=i < n_near)
        for dealer in self.dealers:
            self.requote(dealer)


def run_scenario(
    spec: ScenarioSpec, seed: int, params: SimParams, start_ns: int, duration_s: float | None
) -> SimRun:
    """Simulate a scenario (see :func:`mmradar.sim.simulate`)."""
    m = _Market(spec, seed, params, start_ns)
    phases = list(spec.phases)
    if duration_s is not None:
        # stretch or cut the schedule: the last phase absorbs the difference
        total = spec.duration_s
        if duration_s < total:
            kept = []
            left = duration_s
            for ph in phases:
                if left <= 0:
                    break
                kept.append(replace(ph, duration_s=min(ph.duration_s, left)))
                left -= ph.duration_s
            phases = kept
        elif duration_s > total:
            last = phases[-1]
            phases[-1] = replace(last, duration_s=last.duration_s + duration_s - total)
    m.set_regime(phases[0].regime)
    m.seed_book()
    m.book.take_window()  # the snapshot covers everything so far
    bids = m.book.levels(BID)
    asks = m.book.levels(ASK)
    snapshot = snapshot_body(m.book.update_id, bids, asks, m.px, m.qx)
    perp = hedger = None
    perp_snapshot = b""
    if spec.perp:
        from . import perp as perp_venue

        perp, hedger = perp_venue.start(m, spec, seed, start_ns)
        perp.seed_book()
        perp.book.take_window()
        perp_snapshot = perp.snapshot(start_ns)
    t = start_ns
    for ph in phases:
        if ph.regime != m.regime_name:
            m.set_regime(ph.regime)
        n = round(ph.duration_s * _NS / WINDOW_NS)
        for _ in range(n):
            m.window(t)
            if perp is not None:
                perp.run_window(t, hedger)
            t += WINDOW_NS
    episodes = label_episodes(m.truth, params)
    venue = None
    if perp is not None:
        venue = perp.result(perp_snapshot, hedger)
        episodes = sorted(
            [*episodes, *label_hedges(venue, m.truth, params)],
            key=lambda e: (e.start_ns, e.symptom, e.side),
        )
    return SimRun(
        scenario=spec.name,
        seed=seed,
        symbol=params.symbol,
        tick=params.tick,
        start_ns=start_ns,
        end_ns=t,
        snapshot=snapshot,
        frames=m.frames,
        truth=m.truth,
        episodes=episodes,
        faults=spec.faults,
        params=params,
        fills=tuple(m.fills),
        final_bids=tuple((m.px.text(p), m.qx.text(q)) for p, q in m.book.levels(BID)),
        final_asks=tuple((m.px.text(p), m.qx.text(q)) for p, q in m.book.levels(ASK)),
        perp=venue,
    )
