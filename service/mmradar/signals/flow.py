"""Order flow and the dealer-inventory proxy (docs/signals.md), on event time.

Sign convention (docs/signals.md): **positive = dealers short = upward pressure** everywhere.

Order-flow imbalance, OFI (Cont, Kukanov & Stoikov 2014, eq. 10)
    For consecutive L1 states ``n−1 → n`` of one book (one per applied depth message; a
    100 ms Binance batch is one message)::

        e_n = q_b,n·1{P_b,n ≥ P_b,n−1} − q_b,n−1·1{P_b,n ≤ P_b,n−1}
            − q_a,n·1{P_a,n ≤ P_a,n−1} + q_a,n−1·1{P_a,n ≥ P_a,n−1}

    in base-currency units: bids added or asks removed at the touch are positive (buying
    pressure). ``OFI_w`` is the sum of ``e_n`` over the last ``w`` seconds (1-s bins on the stat
    clock, windows ``ofi_windows_seconds``), NaN until ``w`` seconds of one book life exist.
    Normalised: ``OFI_z(w) = OFI_w / σ̂_w`` with ``σ̂_w² = EWMA(OFI_w²)`` sampled every second
    (half-life ``flow_baseline_half_life_seconds``), NaN for ``flow_warmup_seconds``.

Trade-flow imbalance, TFI
    ``TFI_w = (V_buy − V_sell)/(V_buy + V_sell)`` of taker volume over the last ``w`` seconds
    (``trade_flow_windows_seconds``) ∈ [−1, 1]; NaN without volume or before the window filled.

Signed taker notional
    Per 1-s bin of event time: ``Σ price·qty`` of buy-taker trades minus that of sell-taker
    trades (quote currency; sizes in base units, so venues compare), read at each stat tick
    for the second it closes (``Sample.signed_notional``). The hedge view
    (:mod:`mmradar.signals.hedge`) correlates it across venues.

Dealer-inventory proxy
    Signed taker volume ``v = +qty`` (taker bought) / ``−qty`` (taker sold), exponentially
    decayed per trade: ``x_h ← x_h·2^(−Δt/h) + v`` for each half-life ``h`` of
    ``inventory_half_lives_seconds`` ∪ {``inventory_half_life_seconds``}. Dealers absorb the
    flow, so their inventory is ``−x_h``: ``x_h`` *is* the estimated dealer shortness (base
    units, positive = dealers short). ``mmradar_dealer_inventory_proxy`` is the z-score of
    ``x_h`` for ``h = inventory_half_life_seconds`` against its own scale:
    ``z = x_h / √EWMA(x_h²)`` (EWMA sampled every second with half-life
    ``flow_baseline_half_life_seconds``; no mean is subtracted, so the sign stays the sign of
    the estimated inventory). NaN for ``flow_warmup_seconds``.

Per-message work is O(1): :func:`ofi_event` per depth message, :meth:`FlowState.on_trade` per
trade. Window sums and the EWMAs advance on the 1-s stat clock (:meth:`FlowState.tick`).
Trades are binned by their own event-time second, so a trade stream slightly ahead of or behind
the depth stream lands in the right bin.
"""

from __future__ import annotations

import math

from mypy_extensions import mypyc_attr

from .baselines import Ewma, RollingSum
from .params import SignalSettings

__all__ = ["FlowState", "ofi_event"]

_NS = 1_000_000_000
_LN2 = math.log(2.0)


def ofi_event(
    pbp: float, pbq: float, pap: float, paq: float, bp: float, bq: float, ap: float, aq: float
) -> float:
    """CKS order-flow contribution ``e_n`` of one L1 change (see the module docstring).

    Args:
        pbp: previous best bid price.
        pbq: previous best bid quantity.
        pap: previous best ask price.
        paq: previous best ask quantity.
        bp: best bid price now.
        bq: best bid quantity now.
        ap: best ask price now.
        aq: best ask quantity now.

    Returns:
        ``e_n`` in base units; positive = buying pressure.
    """
    e = 0.0
    if bp >= pbp:
        e += bq
    if bp <= pbp:
        e -= pbq
    if ap <= pap:
        e -= aq
    if ap >= pap:
        e += paq
    return e


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (flight.py)
class FlowState:
    """OFI/TFI windows and decayed signed taker volume of one instrument.

    Args:
        params: the ``[signals]`` settings.
    """

    __slots__ = (
        "_bins",
        "_flow_warm_samples",
        "_ofi_ms",
        "_proxy_i",
        "_proxy_ms",
        "_rates",
        "_samples",
        "_trade_ns",
        "_x",
        "buy",
        "half_lives_s",
        "ofi",
        "ofi_acc",
        "ofi_windows_s",
        "proxy_z_at_tick",
        "sell",
        "signed_notional_at_tick",
        "tfi_windows_s",
    )

    def __init__(self, params: SignalSettings) -> None:
        half_lives = sorted(
            {float(h) for h in params.inventory_half_lives_seconds}
            | {float(params.inventory_half_life_seconds)}
        )
        self.half_lives_s: tuple[float, ...] = tuple(half_lives)
        self._rates = [_LN2 / (h * _NS) for h in half_lives]
        self._x = [0.0] * len(half_lives)
        self._proxy_i = half_lives.index(float(params.inventory_half_life_seconds))
        self._trade_ns = 0
        #: event-time second → [buy volume, sell volume, signed quote notional] not yet pushed
        #: into the windows.
        self._bins: dict[int, list[float]] = {}
        self.ofi_windows_s = tuple(params.ofi_windows_seconds)
        self.tfi_windows_s = tuple(params.trade_flow_windows_seconds)
        #: OFI accumulated since the last stat tick.
        self.ofi_acc = 0.0
        self.ofi = RollingSum(self.ofi_windows_s)
        self.buy = RollingSum(self.tfi_windows_s)
        self.sell = RollingSum(self.tfi_windows_s)
        hl = params.flow_baseline_half_life_seconds
        self._ofi_ms = [Ewma(hl) for _ in self.ofi_windows_s]
        self._proxy_ms = Ewma(hl)
        self._samples = 0
        self._flow_warm_samples = params.flow_warmup_seconds
        #: :meth:`proxy_z` as of the last stat tick.
        self.proxy_z_at_tick = math.nan
        #: Signed taker notional of the second the last stat tick closed (buy-taker minus
        #: sell-taker ``price × base qty``, quote currency; 0 without trades).
        self.signed_notional_at_tick = 0.0

    # -- per message ---------------------------------------------------------------------------

    def on_trade(
        self, qty: float, buy: bool, ts_ns: int, binned: bool, notional: float = 0.0
    ) -> None:
        """Fold one trade into the decayed sums (and, if ``binned``, the TFI bins).

        Args:
            qty: base-currency quantity.
            buy: the taker bought (lifted an ask).
            ts_ns: the trade's event time.
            binned: add it to the per-second TFI bins (only while the book is valid: no
                window spans an invalid period).
            notional: its quote notional, ``price × qty`` (unsigned; 0 if the price is
                unknown), binned with the volume for the signed taker notional.
        """
        last = self._trade_ns
        signed = qty if buy else -qty
        if ts_ns > last and last:
            dt = ts_ns - last
            exp = math.exp
            self._x = [
                x * exp(-dt * rate) + signed for x, rate in zip(self._x, self._rates, strict=True)
            ]
        else:
            self._x = [x + signed for x in self._x]
        if ts_ns > last:
            self._trade_ns = ts_ns
        if binned:
            k = ts_ns // _NS
            b = self._bins.get(k)
            if b is None:
                b = self._bins[k] = [0.0, 0.0, 0.0]
            if buy:
                b[0] += qty
                b[2] += notional
            else:
                b[1] += qty
                b[2] -= notional

    # -- stat clock ----------------------------------------------------------------------------

    def tick(self, k: int, ts_ns: int) -> None:
        """Close second ``k`` (ending at ``ts_ns``): push its bins, update the scales."""
        self.ofi.push(self.ofi_acc)
        self.ofi_acc = 0.0
        buy = sell = signed = 0.0
        bins = self._bins
        if bins:
            for key in [key for key in bins if key < k]:
                b = bins.pop(key)
                buy += b[0]
                sell += b[1]
                signed += b[2]
        self.signed_notional_at_tick = signed
        self.buy.push(buy)
        self.sell.push(sell)
        filled = self.ofi.filled
        for i, w in enumerate(self.ofi_windows_s):
            if filled >= w:
                s = self.ofi.sums[i]
                self._ofi_ms[i].update(s * s, ts_ns)
        xp = self._x[self._proxy_i]
        last = self._trade_ns
        if ts_ns > last and last:
            xp *= math.exp(-(ts_ns - last) * self._rates[self._proxy_i])
        ms = self._proxy_ms.update(xp * xp, ts_ns)
        self._samples += 1
        self.proxy_z_at_tick = xp / math.sqrt(ms) if self.warm and ms > 0.0 else math.nan

    def reset_windows(self) -> None:
        """Drop the short windows (the book became invalid); decayed sums and scales stay."""
        self.ofi.clear()
        self.buy.clear()
        self.sell.clear()
        self._bins.clear()
        self.ofi_acc = 0.0
        self.signed_notional_at_tick = 0.0

    # -- reads ---------------------------------------------------------------------------------

    @property
    def warm(self) -> bool:
        """True once ``flow_warmup_seconds`` of stat samples exist (z-scores defined)."""
        return self._samples >= self._flow_warm_samples

    def decayed(self, ts_ns: int) -> list[float]:
        """Decayed signed taker volume per half-life (:attr:`half_lives_s`), decayed to ``ts_ns``.

        Positive = net taker buying = dealers estimated short.
        """
        last = self._trade_ns
        if ts_ns <= last or not last:
            return list(self._x)
        dt = ts_ns - last
        return [x * math.exp(-dt * rate) for x, rate in zip(self._x, self._rates, strict=True)]

    def proxy_z(self, ts_ns: int) -> float:
        """``mmradar_dealer_inventory_proxy``: the decayed flow as a z-score (NaN while cold)."""
        ms = self._proxy_ms.value
        if not self.warm or not ms > 0.0:
            return math.nan
        return self.decayed(ts_ns)[self._proxy_i] / math.sqrt(ms)

    def ofi_sum(self, i: int) -> float:
        """OFI over window ``i`` of :attr:`ofi_windows_s` (NaN until the window filled)."""
        if self.ofi.filled < self.ofi_windows_s[i]:
            return math.nan
        return self.ofi.sums[i]

    def ofi_z(self, i: int) -> float:
        """OFI over window ``i`` over its EWMA RMS (NaN while cold or unfilled)."""
        ms = self._ofi_ms[i].value
        s = self.ofi_sum(i)
        if not self.warm or not ms > 0.0 or s != s:
            return math.nan
        return s / math.sqrt(ms)

    def tfi(self, i: int) -> float:
        """Trade-flow imbalance over window ``i`` of :attr:`tfi_windows_s` (NaN if undefined)."""
        if self.buy.filled < self.tfi_windows_s[i]:
            return math.nan
        b = self.buy.sums[i]
        s = self.sell.sums[i]
        total = b + s
        if not total > 1e-12:
            return math.nan
        return max(-1.0, min(1.0, (b - s) / total))
