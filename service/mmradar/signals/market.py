"""Per-symbol market-state measures that need memory: taker volume and realized volatility.

Everything here runs on venue event time (``ts_event_ns`` arguments) and never reads a clock,
so a replay at any speed gives the same values as live.

* **Taker volume** — base-currency volume by aggressor side, counted for every trade, including
  trades that arrive before the book has synced (docs/metrics.md).
* **Realized volatility** — mid log-returns on a fixed event-time grid (1 s default; finer
  sampling is dominated by bid–ask noise), ``rv_bps(w) = 10⁴·√(Σ r_k²)`` over the returns of the
  last ``w`` seconds: the realized volatility *over* the window, not annualized. Returns are
  taken only between consecutive valid mids of one book life: a resync empties the windows, so
  no window spans an invalid period. NaN until the first return exists.

The dealer-inventory proxy, order-flow imbalance and the symptom detectors live in
:mod:`mmradar.signals.flow` and :mod:`mmradar.signals.engine`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

from mypy_extensions import mypyc_attr

from ..model import TakerSide

__all__ = ["MarketParams", "MarketState"]

_NS = 1_000_000_000
_BUY: Final = TakerSide.BUY  # a native constant: enum lookups are slow when compiled


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Parameters of :class:`MarketState` (from ``[signals]`` config)."""

    sample_s: float = 1.0
    volatility_windows_s: tuple[int, ...] = (30, 300)


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class MarketState:
    """Taker volume and realized volatility of one instrument."""

    __slots__ = (
        "_current_mid",
        "_grid_k",
        "_grid_mid",
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

    # -- trades ----------------------------------------------------------------------------

    def on_trade(self, qty: float, taker: TakerSide, ts_event_ns: int = 0) -> None:
        """Count a trade's base-currency volume by aggressor side (``ts_event_ns`` unused)."""
        if taker is _BUY:
            self.taker_buy += qty
        else:
            self.taker_sell += qty

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
