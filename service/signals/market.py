"""Per-symbol market-state measures that need memory: taker flow, volatility, inventory proxy.

Everything here runs on venue event time (``ts_event_ns`` arguments) and never reads a clock,
so a replay at any speed gives the same values as live.

* **Taker volume** — base-currency volume by aggressor side, counted for every trade, including
  trades that arrive before the book has synced (PRODUCT.md §4).
* **Realized volatility** — mid log-returns on a fixed event-time grid (1 s default; finer
  sampling is dominated by bid–ask noise), ``rv_bps(w) = 10⁴·√(Σ r_k²)`` over the returns of the
  last ``w`` seconds: the realized volatility *over* the window, not annualized. Returns are
  taken only between consecutive valid mids of one book life: a resync empties the windows, so
  no window spans an invalid period. NaN until the first return exists.
* **Dealer-inventory proxy** — signed taker volume (aggressive buys positive) decayed with a
  half-life ``h`` (``x ← x·2^(−Δt/h) + v``): dealers absorb the flow, so they are short by
  roughly ``x``. Exported as a z-score against its own baseline: EWMA mean and variance of ``x``
  sampled on the same grid with a 30 min half-life; NaN until ``warmup_s`` of samples exist.
  Positive = dealers short = upward pressure (PRODUCT.md §1).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from ..model import TakerSide

__all__ = ["MarketParams", "MarketState"]

_NS = 1_000_000_000
_LN2 = math.log(2.0)


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Parameters of :class:`MarketState` (from ``[signals]`` config)."""

    sample_s: float = 1.0
    volatility_windows_s: tuple[int, ...] = (30, 300)
    inventory_half_life_s: float = 60.0
    inventory_baseline_half_life_s: float = 1800.0
    inventory_warmup_s: float = 120.0


class MarketState:
    """Taker flow, realized volatility and the inventory proxy of one instrument."""

    __slots__ = (
        "_current_mid",
        "_grid_k",
        "_grid_mid",
        "_inv_last_ns",
        "_inv_mean",
        "_inv_samples",
        "_inv_var",
        "_inv_x",
        "_inv_zk",
        "_returns",
        "_step_ns",
        "_windows_steps",
        "params",
        "taker_buy",
        "taker_sell",
    )

    def __init__(self, params: MarketParams | None = None) -> None:
        self.params = params = params or MarketParams()
        self._step_ns = round(params.sample_s * _NS)
        self._windows_steps = [
            max(1, round(w / params.sample_s)) for w in params.volatility_windows_s
        ]
        self.taker_buy = 0.0
        self.taker_sell = 0.0
        # realized volatility: mid at the last grid point, its index, and (k, r²) per step
        self._grid_k = -1
        self._grid_mid = math.nan
        self._current_mid = math.nan
        self._returns: deque[tuple[int, float]] = deque()
        # inventory proxy
        self._inv_x = 0.0
        self._inv_last_ns = 0
        self._inv_zk = -1
        self._inv_mean = 0.0
        self._inv_var = 0.0
        self._inv_samples = 0

    # -- trades ----------------------------------------------------------------------------

    def on_trade(self, qty: float, taker: TakerSide, ts_event_ns: int) -> None:
        """Count a trade and fold it into the decayed signed flow."""
        if taker is TakerSide.BUY:
            self.taker_buy += qty
            signed = qty
        else:
            self.taker_sell += qty
            signed = -qty
        self._decay_to(ts_event_ns)
        self._inv_x += signed

    def _decay_to(self, ts_ns: int) -> None:
        if ts_ns <= self._inv_last_ns:
            return  # streams are not exactly interleaved: never decay backwards
        if self._inv_last_ns:
            dt_s = (ts_ns - self._inv_last_ns) / _NS
            self._inv_x *= math.exp(-dt_s * _LN2 / self.params.inventory_half_life_s)
        self._sample_inventory(ts_ns)
        self._inv_last_ns = ts_ns

    def _sample_inventory(self, ts_ns: int) -> None:
        k = ts_ns // self._step_ns
        if k <= self._inv_zk:
            return
        steps = 1 if self._inv_zk < 0 else k - self._inv_zk
        self._inv_zk = k
        alpha = 1.0 - math.exp(
            -steps * self.params.sample_s * _LN2 / self.params.inventory_baseline_half_life_s
        )
        x = self._inv_x
        if self._inv_samples == 0:
            self._inv_mean = x
        delta = x - self._inv_mean
        self._inv_mean += alpha * delta
        self._inv_var = (1.0 - alpha) * (self._inv_var + alpha * delta * delta)
        self._inv_samples += steps

    def inventory_signed_flow(self, ts_event_ns: int | None = None) -> float:
        """The decayed signed taker volume, decayed to ``ts_event_ns`` if given."""
        if ts_event_ns is not None:
            self._decay_to(ts_event_ns)
        return self._inv_x

    def inventory_z(self, ts_event_ns: int | None = None) -> float:
        """The proxy as a z-score; NaN during warm-up or while the baseline has no spread."""
        x = self.inventory_signed_flow(ts_event_ns)
        warm = self._inv_samples * self.params.sample_s >= self.params.inventory_warmup_s
        if not warm or self._inv_var <= 0.0:
            return math.nan
        return (x - self._inv_mean) / math.sqrt(self._inv_var)

    # -- mid / volatility ------------------------------------------------------------------

    def on_mid(self, mid: float, ts_event_ns: int) -> None:
        """Observe the mid after an applied book update (NaN mids are ignored)."""
        if mid != mid:
            return
        k = ts_event_ns // self._step_ns
        if self._grid_k < 0:
            self._grid_k = k
            self._grid_mid = mid
            self._current_mid = mid
            return
        if k > self._grid_k:
            # The mid in force at grid point grid_k+1 .. k is the last one seen before this event.
            prev = self._current_mid
            r = math.log(prev / self._grid_mid)
            self._returns.append((k, r * r))
            self._grid_k = k
            self._grid_mid = prev
            horizon = k - self._windows_steps[-1]
            while self._returns and self._returns[0][0] <= horizon:
                self._returns.popleft()
        self._current_mid = mid

    def reset_book(self) -> None:
        """The book was invalidated: drop volatility windows (no window spans a resync)."""
        self._grid_k = -1
        self._grid_mid = math.nan
        self._current_mid = math.nan
        self._returns.clear()

    def realized_volatility_bps(self) -> list[float]:
        """Realized volatility over each configured window, in bps (NaN before any return)."""
        if not self._returns:
            return [math.nan] * len(self._windows_steps)
        last_k = self._grid_k
        out = []
        for steps in self._windows_steps:
            horizon = last_k - steps
            total = math.fsum(r2 for k, r2 in self._returns if k > horizon)
            out.append(1e4 * math.sqrt(total))
        return out
