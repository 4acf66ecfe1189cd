"""The simulator's agents: inventory-averse dealers (GLFT), takers, background, spoofer.

Dealers quote the Guéant–Lehalle–Fernandez-Tapia stationary approximation of the
Avellaneda–Stoikov problem (Guéant 2017; docs/simulator.md), in bps of the reference price and
with inventory ``q`` in units of the order lot Δ::

    c1 = ln(1 + ξΔ/k) / (ξΔ)
    c2 = sqrt( γ/(2AΔk) · (1 + ξΔ/k)^(k/(ξΔ) + 1) )          (ξ = γ)
    half_spread = c1 + (Δ/2)·σ·c2,     skew = σ·c2
    δ_bid = half_spread + skew·q,      δ_ask = half_spread − skew·q

so a short dealer (q < 0) raises both quotes: the ask moves away, the bid moves in. σ is the
dealer's own EWMA estimate from the reference price. On top of the quotes:

* a ladder of levels behind the best one, ``level_spacing_bps`` apart;
* soft limit: beyond ``q_soft`` the side that would add inventory shrinks linearly, to nothing
  at ``q_max``; hard limit: once ``|q| ≥ q_max`` that side is not quoted at all until ``|q|``
  is back under ``q_resume``·``q_max``;
* a dealer who hedges on the perpetual (:mod:`.perp`) quotes, and keeps its limits, on its net
  position (inventory + hedge): hedged, it keeps absorbing flow;
* uncertainty pull: when σ̂ exceeds ``pull_kappa``·σ_calm the dealer cancels both sides for a
  while, then re-enters with γ × ``widen_gamma`` for ``widen_s``; the rule re-arms once σ̂ is
  back under 1.5·σ_calm.
"""

from __future__ import annotations

import math
import random

from .book import ASK, BID, Book, Order
from .params import DealerParams

__all__ = ["Dealer", "glft_quotes"]

_LN2 = math.log(2.0)


def glft_quotes(
    gamma: float, A: float, k: float, sigma: float, delta: float = 1.0
) -> tuple[float, float]:
    """GLFT half-spread and skew per unit of inventory, both in bps.

    Args:
        gamma: risk aversion (γ = ξ); γ → 0 gives the risk-neutral ``(1/k, 0)``.
        A: fill intensity at zero distance, per second.
        k: intensity decay per bp.
        sigma: volatility, bps/√s.
        delta: order lot Δ (inventory unit), 1 by convention.

    Returns:
        ``(half_spread, skew)``.
    """
    if gamma <= 1e-12:
        return 1.0 / k, 0.0
    xd = gamma * delta
    c1 = math.log1p(xd / k) / xd
    c2 = math.sqrt(gamma / (2.0 * A * delta * k) * (1.0 + xd / k) ** (k / xd + 1.0))
    return c1 + 0.5 * delta * sigma * c2, sigma * c2


class Dealer:
    """One market maker: its inventory, cash, resting orders and quoting state.

    Attributes:
        index: the dealer's number (its owner id on the book).
        inventory: position in lots (positive = long).
        cash: quote-currency cash in (tick × lot) units.
        orders: its resting orders by id.
    """

    def __init__(self, index: int, p: DealerParams, sigma0: float, lot: float) -> None:
        self.index = index
        self.p = p
        self.sigma0 = sigma0
        self.unit_lots = round(p.unit / lot)
        self.full_ladder_lots = sum(round(x * p.unit / lot) for x in p.ladder)
        self.inventory = 0
        self.hedge_lots = 0  # a hedging dealer's position on the perpetual, in these lots
        self.cash = 0
        self.orders: dict[int, Order] = {}
        self.var = sigma0 * sigma0  # σ̂², bps²/s
        self._last_ref: float | None = None
        self._last_ns = 0
        self.pulled_until = -1
        self.widen_until = -1
        self.hold_until = -1  # a refresh: away from the book until then
        self.blocked = 0  # +1: not bidding (long at the limit), -1: not offering (short)
        self.armed = True  # the pull rule fires once per episode of high σ̂

    @property
    def sigma_hat(self) -> float:
        """The dealer's current volatility estimate, bps/√s."""
        return math.sqrt(self.var)

    def q_units(self) -> float:
        """Inventory at risk in units of the order lot Δ: the inventory plus the hedge (a
        hedging dealer quotes, and keeps its limits, on its net position)."""
        return (self.inventory + self.hedge_lots) / self.unit_lots

    def on_fill(self, maker_side: int, price: int, qty: int) -> None:
        """Book a passive fill of one of its orders."""
        if maker_side == BID:
            self.inventory += qty
            self.cash -= price * qty
        else:
            self.inventory -= qty
            self.cash += price * qty

    def observe(self, ref: float, ts_ns: int) -> None:
        """Update σ̂ from the reference price (called at every requote)."""
        last = self._last_ref
        if last is not None and ts_ns > self._last_ns:
            dt = (ts_ns - self._last_ns) / 1e9
            r = 1e4 * math.log(ref / last)
            alpha = 1.0 - math.exp(-dt * _LN2 / self.p.sigma_half_life_s)
            self.var += alpha * (r * r / dt - self.var)
        self._last_ref = ref
        self._last_ns = ts_ns

    def side_sizes(self) -> tuple[int, int]:
        """Resting bid and ask quantity, lots."""
        bid = ask = 0
        for order in self.orders.values():
            if order.side == BID:
                bid += order.qty
            else:
                ask += order.qty
        return bid, ask

    def best_quotes(self) -> tuple[int | None, int | None]:
        """Its best bid and ask price (ticks), None for an unquoted side."""
        bid: int | None = None
        ask: int | None = None
        for order in self.orders.values():
            if order.side == BID:
                bid = order.price if bid is None or order.price > bid else bid
            else:
                ask = order.price if ask is None or order.price < ask else ask
        return bid, ask

    def desired(
        self, ref_ticks: float, ts_ns: int, rng: random.Random
    ) -> list[tuple[int, int, int]]:
        """The ladder it wants now: ``(side, price ticks, qty lots)``, best level first.

        Also runs the pull rule (which may return an empty ladder).
        """
        p = self.p
        if ts_ns < self.hold_until:
            return []
        sigma = self.sigma_hat
        if self.armed and sigma > p.pull_kappa * self.sigma0:
            # uncertainty: step away, come back more risk-averse
            self.armed = False
            self.pulled_until = ts_ns + round(rng.uniform(*p.pull_s) * 1e9)
            self.widen_until = self.pulled_until + round(p.widen_s * 1e9)
        elif not self.armed and sigma < 1.5 * self.sigma0 and ts_ns >= self.widen_until:
            self.armed = True
        if ts_ns < self.pulled_until:
            return []
        gamma = p.gamma * (p.widen_gamma if ts_ns < self.widen_until else 1.0)
        half, skew = glft_quotes(gamma, p.A, p.k, sigma)
        q = self.q_units()
        if not p.skew:
            skew = 0.0
        ref = ref_ticks * (1.0 + rng.gauss(0.0, p.ref_noise_bps) * 1e-4)
        d_bid = half + skew * q
        d_ask = half - skew * q
        # the side that would add inventory: bids when long, asks when short
        shade_bid = shade_ask = 1.0
        aq = abs(q)
        # the hard limit with hysteresis: quoting resumes below q_resume
        if aq >= p.q_max:
            self.blocked = 1 if q > 0 else -1
        elif aq <= p.q_resume * p.q_max or (q > 0) != (self.blocked > 0):
            self.blocked = 0
        if self.blocked:
            shade = 0.0
        elif aq > p.q_soft and p.skew:
            shade = (p.q_max - aq) / (p.q_max - p.q_soft)
        else:
            shade = 1.0
        if q > 0:
            shade_bid = shade
        elif q < 0:
            shade_ask = shade
        out: list[tuple[int, int, int]] = []
        for i, size in enumerate(p.ladder):
            lots = round(size * self.unit_lots)
            off = i * p.level_spacing_bps
            b_lots = math.floor(lots * shade_bid)
            a_lots = math.floor(lots * shade_ask)
            if b_lots > 0:
                out.append((BID, math.floor(ref * (1.0 - (d_bid + off) * 1e-4)), b_lots))
            if a_lots > 0:
                out.append((ASK, math.ceil(ref * (1.0 + (d_ask + off) * 1e-4)), a_lots))
        return out

    def requote(self, book: Book, want: list[tuple[int, int, int]], tol_ticks: int = 0) -> None:
        """Move its resting orders to ``want``: keep near matches, cancel the rest, add new.

        An order is kept (with its queue priority) when it has the wanted side and quantity and
        its price is within ``tol_ticks`` of the wanted one. New orders are post-only: a price
        that would cross is moved one tick behind the opposite best.
        """
        free = list(self.orders.values())
        missing: list[tuple[int, int, int]] = []
        for side, price, qty in want:
            for j, order in enumerate(free):
                if (
                    order.side == side
                    and order.qty == qty
                    and abs(order.price - price) <= tol_ticks
                ):
                    del free[j]
                    break
            else:
                missing.append((side, price, qty))
        for order in free:
            book.cancel(order.oid)
            del self.orders[order.oid]
        for side, price, qty in missing:
            opposite = book.best(1 - side)
            if opposite is not None:
                if side == BID and price >= opposite:
                    price = opposite - 1
                elif side == ASK and price <= opposite:
                    price = opposite + 1
            order = book.add(self.index, side, price, qty)
            self.orders[order.oid] = order

    def cancel_all(self, book: Book) -> None:
        """Take every order off the book."""
        for oid in list(self.orders):
            book.cancel(oid)
        self.orders.clear()
