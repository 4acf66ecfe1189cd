"""Every detector parameter, with its default: the ``[signals]`` configuration table.

This dataclass is the one place where signal defaults live. :mod:`mmradar.config` validates the
``[signals]`` table into it (and documents each key), ``mmradar/defaults/default.toml`` shows
the same defaults, and the pure event-time core (:mod:`mmradar.signals.engine`) reads it.

Units: ``*_seconds`` are seconds of **venue event time**; ``*_bps`` are basis points of mid;
``*_notional`` is quote currency (USDT for the Binance pairs). Ratios and fractions are
dimensionless; ``*_z_*`` are robust z-scores. Defaults follow the design values listed in
docs/signals.md ("Defaults"), except where a comment ("design: …") says why they differ.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SignalSettings"]


@dataclass(frozen=True, slots=True)
class SignalSettings:
    """The ``[signals]`` table: every detector parameter (see :mod:`mmradar.config` for docs).

    The first three fields keep their historical order (positional construction in tests).
    """

    # -- market state (taker flow, realized volatility) ------------------------------------
    inventory_half_life_seconds: float = 60.0
    volatility_windows_seconds: tuple[int, ...] = (30, 300)
    volatility_sample_seconds: float = 1.0

    # -- shared by every detector ------------------------------------------------------------
    warmup_seconds: float = 600.0
    baseline_minutes: int = 30
    min_firing_seconds: float = 10.0
    # 10 (design: 30): a 30-s quiet time hid the next spread blow-out of a stressed book;
    # calibrated with the changes below on the simulator's calibration seeds (docs/scorecard.md)
    cooldown_seconds: float = 10.0
    thin_book_notional: float = 5000.0

    # -- spread_widening ----------------------------------------------------------------------
    spread_z_on: float = 4.0
    spread_z_off: float = 2.0
    spread_on_seconds: float = 2.0
    spread_off_seconds: float = 4.0  # design: 10; separates blow-outs 10–30 s apart
    spread_z_floor: float = 0.1
    spread_wide_window_seconds: int = 10
    spread_wide_floor: float = 0.1

    # -- liquidity_evaporation ----------------------------------------------------------------
    evaporation_bands_bps: tuple[int, ...] = (10, 50)
    evaporation_ratio_on: float = 0.5
    evaporation_drop_on: float = 0.5
    evaporation_other_ratio: float = 0.8
    evaporation_ratio_off: float = 0.7
    evaporation_drop_window_seconds: int = 10
    evaporation_on_seconds: float = 3.0
    evaporation_off_seconds: float = 10.0

    # -- depth_asymmetry ----------------------------------------------------------------------
    asymmetry_band_bps: int = 10
    asymmetry_on: float = 0.5
    asymmetry_off: float = 0.3
    asymmetry_z_on: float = 3.0
    asymmetry_z_floor: float = 0.05
    asymmetry_fast_half_life_seconds: float = 1.0  # design: 2 (latency)
    asymmetry_slow_half_life_seconds: float = 900.0
    asymmetry_on_seconds: float = 2.0  # design: 5 (latency)
    asymmetry_off_seconds: float = 15.0

    # -- liquidity_pull -----------------------------------------------------------------------
    pull_band_bps: int = 10
    pull_total_ratio_on: float = 0.3
    pull_side_ratio_on: float = 0.5
    pull_total_ratio_off: float = 0.6
    pull_spread_z_on: float = 3.0
    pull_fill_ratio_on: float = 3.0
    fill_notional: float = 50000.0
    pull_on_seconds: float = 2.0
    pull_off_seconds: float = 15.0

    # -- quote_skew ---------------------------------------------------------------------------
    skew_on: float = 0.25  # design: 0.3; the z gate keeps real books quiet
    skew_off: float = 0.15
    skew_z_on: float = 2.0
    skew_z_floor: float = 0.05
    skew_window_seconds: int = 3  # design: 5 (latency)
    skew_on_seconds: float = 2.0  # design: 5 (latency)
    skew_off_seconds: float = 10.0

    # -- volatility_spike ---------------------------------------------------------------------
    volatility_ratio_on: float = 3.0
    volatility_ratio_off: float = 1.5
    volatility_fast_half_life_seconds: float = 15.0  # design: 30 (latency)
    volatility_floor_bps: float = 0.1
    volatility_on_seconds: float = 2.0  # design: 5 (latency)
    volatility_off_seconds: float = 30.0

    # -- flow measures and the composite -------------------------------------------------------
    ofi_windows_seconds: tuple[int, ...] = (1, 10, 60)
    trade_flow_windows_seconds: tuple[int, ...] = (10, 60)
    inventory_half_lives_seconds: tuple[int, ...] = (10, 60, 600)
    flow_baseline_half_life_seconds: float = 1800.0
    flow_warmup_seconds: float = 120.0
    pressure_clip: float = 5.0
    pressure_scale: float = 2.5

    # -- venue_withdrawal (cross-venue: one venue's near-touch depth collapses, others hold) --
    withdrawal_band_bps: int = 10
    withdrawal_ratio_on: float = 0.3
    withdrawal_ratio_off: float = 0.6
    withdrawal_others_ratio: float = 0.7
    withdrawal_on_seconds: float = 3.0
    withdrawal_off_seconds: float = 10.0
