"""Every simulator parameter with its default, and the regimes that modulate them.

Units: prices in ticks of :attr:`SimParams.tick` (integers on the book), quantities in lots of
:attr:`SimParams.lot` (integers on the book), distances from the efficient price in bps,
volatility in bps/√s, rates per second. Defaults describe a BTCUSDT-like spot market at
~60 000 with Binance's tick (0.01) and lot (0.00001).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "REGIMES",
    "DealerParams",
    "HedgeParams",
    "LabelParams",
    "PerpParams",
    "Regime",
    "SimParams",
]


@dataclass(frozen=True, slots=True)
class LabelParams:
    """Thresholds of the labelling rule (:mod:`mmradar.sim.labels`).

    Attributes:
        stress_fraction: inventory stress when ``|total inventory| ≥ stress_fraction · Σ q_max``.
        evap_ratio: a side has evaporated when the dealers' resting size on it is at most this
            fraction of their full ladder.
        evap_other: ... while the other side keeps at least this fraction.
        spread_mult: spread widening when the dealers' spread exceeds this multiple of their
            calm spread.
        min_s: episodes shorter than this are dropped.
        merge_s: episodes of the same kind separated by less than this are merged.
        hedge_gap_s: ``hedge_pressure``: hedge orders of one side less than this apart belong
            to one burst of hedging.
        hedge_min_qty: ... a burst is an episode when its orders add up to at least this
            quantity (base units) ...
        hedge_min_s: ... and it lasts at least this long (first to last order).
    """

    stress_fraction: float = 0.5
    evap_ratio: float = 0.5
    evap_other: float = 0.8
    spread_mult: float = 2.0
    min_s: float = 2.0
    merge_s: float = 1.0
    hedge_gap_s: float = 3.0
    hedge_min_qty: float = 0.25
    hedge_min_s: float = 3.0


@dataclass(frozen=True, slots=True)
class DealerParams:
    """One inventory-averse market maker (GLFT stationary quotes, see :mod:`.agents`).

    Attributes:
        gamma: risk aversion γ (also GLFT's ξ), per unit of inventory.
        A: the dealer's model of the fill intensity at zero distance, fills per second.
        k: decay of the fill intensity with distance, per bp (λ(δ) = A·e^(−kδ)).
        unit: the order lot Δ in base units (inventory is measured in these units).
        ladder: size of each ladder level in units, best level first.
        level_spacing_bps: distance between ladder levels.
        q_soft: inventory (units) above which the inventory-increasing side shrinks linearly.
        q_max: hard limit (units): at or beyond it the inventory-increasing side is not quoted.
        q_resume: ... until ``|q|`` is back under ``q_resume``·``q_max``.
        sigma_half_life_s: half-life of the dealer's EWMA estimate of σ.
        pull_kappa: pull both sides when σ̂ exceeds ``pull_kappa`` × the calm σ.
        pull_s: (min, max) seconds a pull lasts (uniform).
        widen_gamma: γ multiplier after a pull (re-entry with more risk aversion).
        widen_s: seconds the widened γ lasts after a pull ends.
        skew: False quotes symmetrically around the reference price (no inventory skew and no
            size shading; limits still apply) — the AS "symmetric" benchmark.
        ref_noise_bps: s.d. of the dealer's private noise on the reference price per requote.
        requote_tolerance_bps: a resting order within this distance of its wanted price (and
            with the wanted size) is left alone, keeping its queue priority.
    """

    gamma: float = 0.1
    A: float = 1.0
    k: float = 2.0
    unit: float = 0.04
    ladder: tuple[float, ...] = (1.0, 1.0, 1.5, 2.0, 2.0)
    level_spacing_bps: float = 0.6
    q_soft: float = 2.0
    q_max: float = 8.0
    q_resume: float = 0.85
    sigma_half_life_s: float = 3.0
    pull_kappa: float = 3.0
    pull_s: tuple[float, float] = (10.0, 16.0)
    widen_gamma: float = 3.0
    widen_s: float = 60.0
    skew: bool = True
    ref_noise_bps: float = 0.05
    requote_tolerance_bps: float = 0.3


@dataclass(frozen=True, slots=True)
class HedgeParams:
    """How the spot dealers hedge their inventory on the perpetual (hedged scenarios only).

    Every ``every_s`` each dealer compares its perpetual position with its target,
    ``−fraction`` × its spot inventory as it was ``delay_s`` ago, and sends a taker order for
    the share of the gap that closes it with the half-life ``half_life_s``
    (``gap · (1 − 2^(−every_s/half_life_s))``), unless that is smaller than ``min_clip``. A gap
    that only asks to *reduce* the hedge (the inventory is reverting) closes patiently, with the
    half-life ``unwind_half_life_s``: adding cover is urgent, removing it is not. A hedging
    dealer quotes, and keeps its limits, on its net position (spot inventory + hedge).

    Attributes:
        fraction: share of the spot inventory hedged (0 = unhedged, 1 = fully).
        delay_s: the hedger's reaction delay, seconds.
        half_life_s: half-life of the unhedged gap, seconds (hedge rate ``ln 2 / half_life_s``).
        unwind_half_life_s: half-life of a gap that reduces the hedge.
        every_s: how often a dealer reconsiders its hedge.
        min_clip: smallest hedge order, base units.
        limit_bps: a hedge order walks the perpetual book up to this far beyond its fair
            price (the rest is cancelled).
    """

    fraction: float = 0.7
    delay_s: float = 1.5
    half_life_s: float = 4.0
    unwind_half_life_s: float = 30.0
    every_s: float = 0.5
    min_clip: float = 0.002
    limit_bps: float = 6.0


@dataclass(frozen=True, slots=True)
class PerpParams:
    """The second venue: a Binance USD-M–like perpetual on the same efficient price.

    Its fair price is ``S · (1 + (basis_bps + b_t + I_t)·1e-4)`` with ``b_t`` an
    Ornstein–Uhlenbeck noise (``basis_noise_bps`` stationary s.d., ``basis_half_life_s``
    half-life) and ``I_t`` the transient impact of its own taker flow: every taker order adds
    ``impact_bps`` × its signed filled quantity (base units; buys up), and ``I_t`` decays with
    the half-life ``impact_half_life_s`` — the perpetual's makers lean on its flow (spot's
    efficient price does not: its flow is uninformed). Its own makers, background book and
    price-sensitive takers are those of the spot model with these parameters, drawn from an
    RNG stream of their own (a run without the venue is unchanged).

    Attributes:
        symbol: Binance USD-M spelling.
        tick: price tick (text).
        lot: quantity step (text).
        price_decimals: decimals of the price text (USD-M BTCUSDT: 2).
        qty_decimals: decimals of the quantity text (3).
        basis_bps: mean basis of the perpetual over spot.
        basis_noise_bps: stationary s.d. of the basis noise.
        basis_half_life_s: half-life of the basis noise.
        impact_bps: transient impact of a taker's signed quantity, bps per base unit.
        impact_half_life_s: half-life of the impact.
        dealers: the perpetual's market makers.
        taker_rate: price-sensitive taker arrivals per second per side.
        taker_size_median: their median size, base units (lognormal).
        taker_size_sigma: log-s.d. of their sizes.
        taker_size_max: cap on a taker's size.
        burst_size_median: median size of a common-shock burst order.
        bg_orders: mean resting background orders per side.
        bg_size_median: median background order size, base units.
    """

    symbol: str = "BTCUSDT"
    tick: str = "0.10"
    lot: str = "0.001"
    price_decimals: int = 2
    qty_decimals: int = 3
    basis_bps: float = 3.0
    basis_noise_bps: float = 0.3
    basis_half_life_s: float = 30.0
    impact_bps: float = 25.0
    impact_half_life_s: float = 10.0
    dealers: tuple[DealerParams, ...] = (
        DealerParams(gamma=0.10, ref_noise_bps=0.05, level_spacing_bps=0.8),
        DealerParams(gamma=0.12, ref_noise_bps=0.08, level_spacing_bps=0.9),
    )
    taker_rate: float = 1.2
    taker_size_median: float = 0.012
    taker_size_sigma: float = 0.5
    taker_size_max: float = 0.5
    burst_size_median: float = 0.03
    bg_orders: int = 400
    bg_size_median: float = 0.03


@dataclass(frozen=True, slots=True)
class Regime:
    """Multipliers and add-ons a regime applies to the calm market.

    Attributes:
        sigma_mult: σ of the efficient price relative to calm.
        buy_mult: rate multiplier of price-sensitive buy takers.
        sell_mult: rate multiplier of price-sensitive sell takers.
        burst_buy_rate: extra price-insensitive buy market orders per second.
        burst_sell_rate: extra price-insensitive sell market orders per second.
        spoof: the spoofer is active (large orders far from the touch, cancelled quickly).
        refresh: dealers and near-touch background refresh both sides in lockstep.
        sweep_rate: buy orders per second that sweep the ask side up to
            ``SimParams.sweep_limit_bps`` beyond S (sizes ``sweep_size_median``).
        hedge: dealers hedge every fill at once elsewhere (their inventory does not move) and
            re-quote the side that was hit right away: they keep quoting whatever trades.
        common: the burst orders hit the perpetual venue too (scenarios with a second venue),
            at the same instants as on spot: correlated flow with no lag.
    """

    sigma_mult: float = 1.0
    buy_mult: float = 1.0
    sell_mult: float = 1.0
    burst_buy_rate: float = 0.0
    burst_sell_rate: float = 0.0
    spoof: bool = False
    refresh: bool = False
    sweep_rate: float = 0.0
    hedge: bool = False
    common: bool = False


REGIMES: dict[str, Regime] = {
    "calm": Regime(),
    # one-sided aggressive flow that loads the dealers (uninformed: S does not move)
    "buy_burst": Regime(buy_mult=2.0, burst_buy_rate=1.2),
    "sell_burst": Regime(sell_mult=2.0, burst_sell_rate=1.2),
    # sustained one-sided selling that drives the dealers to their hard long limit
    "dry_up": Regime(sell_mult=2.0, burst_sell_rate=1.8),
    # the efficient price's volatility jumps: dealers widen, and pull while σ̂ is extreme
    "vol_shock": Regime(sigma_mult=5.0),
    # negative controls
    "spoof": Regime(spoof=True),
    "refresh": Regime(refresh=True),
    # takers sweep the asks (dealers and background) while the dealers, hedged, keep quoting:
    # liquidity traded through, not pulled
    "sweep": Regime(sweep_rate=1.0, hedge=True),
    # a buy shock on spot and perpetual at the same instants (scenarios with a second venue)
    "common_shock": Regime(buy_mult=2.0, burst_buy_rate=2.0, common=True),
}
"""Regime name -> modifiers. ``calm`` is the baseline."""


@dataclass(frozen=True, slots=True)
class SimParams:
    """The whole market.

    Attributes:
        symbol: Binance spelling.
        tick: price tick (text, exact).
        lot: quantity step (text, exact).
        price_decimals: decimals of the price text on the wire (Binance BTCUSDT: 8).
        qty_decimals: decimals of the quantity text on the wire (8).
        s0: initial efficient price.
        sigma_bps: calm volatility of the efficient price, bps/√s.
        dealers: the market makers.
        taker_rate: price-sensitive taker arrivals per second per side (calm).
        taker_k: their patience: each walks the book up to ``Exp(taker_k)`` bps beyond S.
        taker_size_median: median taker size, base units (lognormal).
        taker_size_sigma: log-s.d. of taker sizes.
        taker_size_max: cap on a taker's size, base units.
        burst_size_median: median size of a burst order.
        burst_limit_bps: burst orders walk the book up to this far beyond S.
        bg_orders: mean resting background orders per side.
        bg_lifetime_s: mean lifetime of a background order (exponential).
        bg_min_bps: nearest background distance from S.
        bg_max_bps: farthest background distance from S.
        bg_near_share: share of background arrivals placed in [bg_min_bps, 10 bps].
        bg_stale_bps: background orders nearer to S than this (or beyond it) are cancelled by
            their owners at the end of each window: nobody leaves a quote to be picked off.
        bg_size_median: median background order size, base units.
        bg_size_sigma: log-s.d. of background sizes.
        spoof_size: size of a spoofing order, base units.
        spoof_bps: (min, max) distance of spoofing orders from S.
        spoof_life_s: (min, max) seconds a spoofing order rests.
        spoof_rate: spoofing orders per second while the regime is active.
        refresh_every_s: period of the symmetric refresh.
        refresh_off_s: how long both sides stay away during a refresh.
        sweep_limit_bps: sweeping orders (``sweep`` regime) walk the asks up to this far
            beyond S.
        sweep_size_median: median size of a sweeping order, base units (lognormal, capped at
            10× the median).
        labels: labelling thresholds (see :mod:`mmradar.sim.labels`).
        perp: the second venue of the scenarios that have one.
        hedge: how the spot dealers hedge on it in the hedged scenarios.
    """

    symbol: str = "BTCUSDT"
    tick: str = "0.01"
    lot: str = "0.00001"
    price_decimals: int = 8
    qty_decimals: int = 8
    s0: float = 60_000.0
    sigma_bps: float = 1.0
    dealers: tuple[DealerParams, ...] = (
        DealerParams(gamma=0.10, ref_noise_bps=0.05),
        DealerParams(gamma=0.12, ref_noise_bps=0.08, level_spacing_bps=0.7),
        DealerParams(gamma=0.09, ref_noise_bps=0.06, level_spacing_bps=0.5),
    )
    taker_rate: float = 1.5
    taker_k: float = 1.2
    taker_size_median: float = 0.015
    taker_size_sigma: float = 1.0
    taker_size_max: float = 0.5
    burst_size_median: float = 0.03
    burst_limit_bps: float = 8.0
    bg_orders: int = 500
    bg_lifetime_s: float = 60.0
    bg_min_bps: float = 3.0
    bg_max_bps: float = 250.0
    bg_near_share: float = 0.02
    bg_stale_bps: float = 1.0
    bg_size_median: float = 0.03
    bg_size_sigma: float = 0.8
    spoof_size: float = 8.0
    spoof_bps: tuple[float, float] = (20.0, 60.0)
    spoof_life_s: tuple[float, float] = (0.1, 0.5)
    spoof_rate: float = 4.0
    refresh_every_s: float = 15.0
    refresh_off_s: float = 0.3
    sweep_limit_bps: float = 25.0
    sweep_size_median: float = 0.4
    labels: LabelParams = LabelParams()
    perp: PerpParams = PerpParams()
    hedge: HedgeParams = HedgeParams()
