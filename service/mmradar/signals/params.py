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
    # 5 (design: 10): the release CUSUM already needs seconds of evidence to end an episode
    min_firing_seconds: float = 5.0
    # 0 (design: 30): after an episode the onset CUSUM starts from zero and needs seconds of
    # evidence again, which is what the quiet time was for; a quiet time only hid the next
    # spread blow-out of a stressed book (calibration seeds, docs/scorecard.md)
    cooldown_seconds: float = 0.0
    thin_book_notional: float = 5000.0
    # the sequential decision (signals/sequential.py): every (symptom, side)'s CUSUM threshold
    # gives this average run length to a false alarm, in hours of calm
    arl0_hours: float = 8.0
    # an episode ends after this many seconds' worth of evidence that its feature is back at
    # the baseline (the release CUSUM)
    release_seconds: float = 3.0
    # near-touch depth (evaporation, asymmetry): the best this many price levels of each side
    # that lie within near_touch_bps of the mid (at least two ticks)
    near_touch_levels: int = 10
    near_touch_bps: float = 5.0
    # floor of the robust scale of log depth (evaporation, pull)
    depth_log_floor: float = 0.1

    # -- spread_widening ----------------------------------------------------------------------
    spread_shift: float = 8.0  # z of the spread the CUSUM is tuned to
    spread_z_floor: float = 0.1
    spread_wide_window_seconds: int = 10
    spread_wide_floor: float = 0.1

    # -- liquidity_evaporation ----------------------------------------------------------------
    evaporation_shift: float = 9.0  # z of the side's log near-touch depth (a drop)
    evaporation_other_ratio: float = 0.8  # the other side keeps this share of its baseline

    # -- depth_asymmetry ----------------------------------------------------------------------
    asymmetry_shift: float = 6.0  # z of the near-touch depth imbalance
    asymmetry_z_floor: float = 0.05

    # -- liquidity_pull -----------------------------------------------------------------------
    pull_band_bps: int = 10
    pull_shift: float = 4.0  # z of the log total depth (a drop)
    pull_total_ratio_on: float = 0.3
    pull_side_ratio_on: float = 0.5
    pull_spread_z_on: float = 3.0
    pull_fill_ratio_on: float = 3.0
    fill_notional: float = 50000.0

    # -- quote_skew ---------------------------------------------------------------------------
    skew_shift: float = 3.0  # z of the touch skew
    skew_z_floor: float = 0.05
    skew_window_seconds: int = 1

    # -- volatility_spike ---------------------------------------------------------------------
    volatility_ratio: float = 5.0  # the volatility jump (σ ratio) the CUSUM is tuned to
    volatility_z_floor: float = 0.1
    volatility_fast_half_life_seconds: float = 15.0  # the score's fast EWMA (display only)
    volatility_floor_bps: float = 0.1

    # -- pulled versus traded (signals/removal.py) -----------------------------------------------
    removal_window_seconds: int = 10
    removal_match_seconds: float = 1.0

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
