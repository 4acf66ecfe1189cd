"""Every detector parameter: the ``[signals]`` configuration table, declared once.

Each key is one annotated field of :class:`SignalSettings`: its type, default, bounds, unit and
one-line description. Everything else is generated from it: the validation of a config file
(:mod:`mmradar.config`), the environment override ``MMRADAR_SIGNALS_<KEY>``, the commented
reference in ``mmradar/defaults/default.toml``, the key table of docs/configuration.md and the
effective configuration ``mmradar check-config`` prints (``python -m mmradar.config --write``
regenerates the committed files; a test fails when they drift).

Units: ``*_seconds`` are seconds of **venue event time**; ``*_bps`` are basis points of mid;
``*_notional`` is quote currency (USDT for the Binance pairs). Ratios and fractions are
dimensionless; ``*_shift`` and ``*_z_*`` are robust z-scores. Where a default departs from the
design value of docs/signals.md, a comment says why.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from ..model import BAND_BPS
from ..table import FieldError, Table

__all__ = ["SignalSettings"]

_S = {"unit": "s"}
_BPS = {"unit": "bps"}
_QUOTE = {"unit": "quote currency"}
_Z = {"unit": "z"}
_SECONDS_LIST = {"unit": "s", "increasing": True}
_BAND = {"unit": "bps", "choices": BAND_BPS, "choices_name": "the depth bands"}
_Windows = tuple[Annotated[int, Meta(gt=0)], ...]


class SignalSettings(Table, frozen=True):
    """The ``[signals]`` table: every detector parameter.

    The first three fields keep their historical order (positional construction in tests).
    """

    # -- market state (taker flow, realized volatility) ------------------------------------
    inventory_half_life_seconds: Annotated[
        float,
        Meta(
            gt=0,
            description="half-life of the decayed signed taker volume behind "
            "mmradar_dealer_inventory_proxy",
            extra=_S,
        ),
    ] = 60.0
    volatility_windows_seconds: Annotated[
        _Windows,
        Meta(
            min_length=1,
            description="windows of mmradar_realized_volatility_bps (labels such as 30s, 5m); "
            "whole seconds, each at least two samples long",
            extra=_SECONDS_LIST,
        ),
    ] = (30, 300)
    volatility_sample_seconds: Annotated[
        float, Meta(gt=0, description="mid-price sampling interval for volatility", extra=_S)
    ] = 1.0

    # -- shared by every detector ------------------------------------------------------------
    warmup_seconds: Annotated[
        float,
        Meta(
            ge=0,
            description="no episode starts until this long after start-up and after every "
            "resync (baselines fill meanwhile)",
            extra=_S,
        ),
    ] = 600.0
    baseline_minutes: Annotated[
        int,
        Meta(
            gt=0,
            description="robust baselines: median/MAD of this many 1-minute medians of the "
            "per-second samples",
            extra={"unit": "min"},
        ),
    ] = 30
    # below the design value (10): the release CUSUM already needs seconds of evidence to end
    # an episode
    min_firing_seconds: Annotated[float, Meta(ge=0, description="shortest episode", extra=_S)] = 5.0
    # below the design value (30): after an episode the onset CUSUM starts from zero and needs
    # seconds of evidence again, which is what the quiet time was for; a quiet time only hid
    # the next spread blow-out of a stressed book (calibration seeds, docs/scorecard.md)
    cooldown_seconds: Annotated[
        float, Meta(ge=0, description="quiet time after an episode ends", extra=_S)
    ] = 0.0
    thin_book_notional: Annotated[
        float,
        Meta(
            gt=0,
            description="quote notional within 10 bps (both sides) under which a book is thin: "
            "no imbalance, skew or evaporation alert",
            extra=_QUOTE,
        ),
    ] = 5000.0
    arl0_hours: Annotated[
        float,
        Meta(
            gt=0,
            description="every (symptom, side)'s CUSUM threshold gives this average run length "
            "to a false alarm, in hours of calm (signals/sequential.py)",
            extra={"unit": "h"},
        ),
    ] = 8.0
    release_seconds: Annotated[
        float,
        Meta(
            gt=0,
            description="an episode ends after this many seconds' worth of evidence that its "
            "feature is back at the baseline (the release CUSUM)",
            extra=_S,
        ),
    ] = 3.0
    near_touch_levels: Annotated[
        int,
        Meta(
            gt=0,
            description="near-touch depth (evaporation, asymmetry): the best this many price "
            "levels of each side ...",
            extra={"unit": "levels"},
        ),
    ] = 10
    near_touch_bps: Annotated[
        float,
        Meta(
            gt=0,
            description="... that lie within this many bps of mid (at least two ticks)",
            extra=_BPS,
        ),
    ] = 5.0
    depth_log_floor: Annotated[
        float,
        Meta(gt=0, description="floor of the robust scale of log depth (evaporation, pull)"),
    ] = 0.1

    # -- spread_widening ----------------------------------------------------------------------
    spread_shift: Annotated[
        float,
        Meta(
            gt=0,
            description="spread_widening: the z shift of the log spread the CUSUM is tuned to",
            extra=_Z,
        ),
    ] = 8.0
    spread_z_floor: Annotated[
        float,
        Meta(
            gt=0,
            description="spread_widening: floor of the log-spread scale (also at least "
            "log(1 + tick/median))",
        ),
    ] = 0.1
    spread_wide_window_seconds: Annotated[
        int,
        Meta(
            gt=0,
            description="spread_widening, one-tick regime: window of the share of time the "
            "spread is wider than one tick",
            extra=_S,
        ),
    ] = 10
    spread_wide_floor: Annotated[
        float,
        Meta(gt=0, description="spread_widening: floor of that wide-spread share's scale"),
    ] = 0.1

    # -- liquidity_evaporation ----------------------------------------------------------------
    evaporation_shift: Annotated[
        float,
        Meta(
            gt=0,
            description="liquidity_evaporation: the z drop of the side's log near-touch depth "
            "the CUSUM is tuned to",
            extra=_Z,
        ),
    ] = 9.0
    evaporation_other_ratio: Annotated[
        float,
        Meta(
            gt=0,
            description="liquidity_evaporation gate: the other side keeps this share of its "
            "baseline",
        ),
    ] = 0.8

    # -- depth_asymmetry ----------------------------------------------------------------------
    asymmetry_shift: Annotated[
        float,
        Meta(
            gt=0,
            description="depth_asymmetry: the z shift of the near-touch imbalance "
            "(bid-ask)/(bid+ask) the CUSUM is tuned to",
            extra=_Z,
        ),
    ] = 6.0
    asymmetry_z_floor: Annotated[
        float, Meta(gt=0, description="depth_asymmetry: floor of the imbalance's scale")
    ] = 0.05

    # -- liquidity_pull -----------------------------------------------------------------------
    pull_band_bps: Annotated[
        int, Meta(gt=0, description="liquidity_pull: band of the depth ratio R", extra=_BAND)
    ] = 10
    pull_shift: Annotated[
        float,
        Meta(
            gt=0,
            description="liquidity_pull: the z drop of log R (total depth / total baseline) "
            "the CUSUM is tuned to, while ...",
            extra=_Z,
        ),
    ] = 4.0
    pull_total_ratio_on: Annotated[
        float, Meta(gt=0, le=1, description="... R is at most this ...")
    ] = 0.3
    pull_side_ratio_on: Annotated[
        float, Meta(gt=0, le=1, description="... each side's depth ratio is at most this ...")
    ] = 0.5
    pull_spread_z_on: Annotated[
        float, Meta(gt=0, description="... and the spread score reaches this ...", extra=_Z)
    ] = 3.0
    pull_fill_ratio_on: Annotated[
        float,
        Meta(gt=0, description="... or depth-to-fill reaches this many times its baseline"),
    ] = 3.0
    fill_notional: Annotated[
        float,
        Meta(gt=0, description="quote notional of the depth-to-fill measure", extra=_QUOTE),
    ] = 50000.0

    # -- quote_skew ---------------------------------------------------------------------------
    skew_shift: Annotated[
        float,
        Meta(
            gt=0,
            description="quote_skew: the z shift of the touch skew (microprice - mid)/spread "
            "the CUSUM is tuned to (not while the spread score reaches spread_shift)",
            extra=_Z,
        ),
    ] = 3.0
    skew_z_floor: Annotated[
        float, Meta(gt=0, description="quote_skew: floor of the skew's scale")
    ] = 0.05
    skew_window_seconds: Annotated[
        int, Meta(gt=0, description="quote_skew: time-average window of the skew", extra=_S)
    ] = 1

    # -- volatility_spike ---------------------------------------------------------------------
    volatility_ratio: Annotated[
        float,
        Meta(
            gt=1,
            description="volatility_spike: the volatility jump (sigma ratio) the CUSUM is tuned to",
        ),
    ] = 5.0
    volatility_z_floor: Annotated[
        float,
        Meta(gt=0, description="volatility_spike: floor of the log realized variance's scale"),
    ] = 0.1
    volatility_fast_half_life_seconds: Annotated[
        float,
        Meta(gt=0, description="volatility_spike: the score's fast EWMA (display only)", extra=_S),
    ] = 15.0
    volatility_floor_bps: Annotated[
        float,
        Meta(
            gt=0,
            description="floor of the realized volatility, bps per square-root second",
            extra=_BPS,
        ),
    ] = 0.1

    # -- pulled versus traded (signals/removal.py) -----------------------------------------------
    removal_window_seconds: Annotated[
        int,
        Meta(
            gt=0,
            description="window of the cancel share (mmradar_depth_removed_notional_total) and "
            "of evaporation's loss gate",
            extra=_S,
        ),
    ] = 10
    removal_match_seconds: Annotated[
        float,
        Meta(
            gt=0,
            description="a print waits this long for the depth update showing it",
            extra=_S,
        ),
    ] = 1.0

    # -- flow measures and the composite -------------------------------------------------------
    ofi_windows_seconds: Annotated[
        _Windows,
        Meta(min_length=1, description="order-flow imbalance windows", extra=_SECONDS_LIST),
    ] = (1, 10, 60)
    trade_flow_windows_seconds: Annotated[
        _Windows,
        Meta(min_length=1, description="trade-flow imbalance windows", extra=_SECONDS_LIST),
    ] = (10, 60)
    inventory_half_lives_seconds: Annotated[
        _Windows,
        Meta(
            min_length=1,
            description="half-lives of mmradar_signed_taker_volume_decayed{half_life}",
            extra=_SECONDS_LIST,
        ),
    ] = (10, 60, 600)
    flow_baseline_half_life_seconds: Annotated[
        float,
        Meta(gt=0, description="EWMA scale of the OFI and inventory-proxy z-scores", extra=_S),
    ] = 1800.0
    flow_warmup_seconds: Annotated[
        float, Meta(ge=0, description="those z-scores read NaN until this long", extra=_S)
    ] = 120.0
    pressure_clip: Annotated[
        float,
        Meta(gt=0, description="each component of mmradar_dealer_pressure is clipped to +-this"),
    ] = 5.0
    pressure_scale: Annotated[
        float,
        Meta(gt=0, description="mmradar_dealer_pressure is tanh(mean of the components / this)"),
    ] = 2.5

    # -- venue_withdrawal (cross-venue: one venue's near-touch depth collapses, others hold) --
    withdrawal_band_bps: Annotated[
        int,
        Meta(
            gt=0,
            description="venue_withdrawal: band of the near-touch depth (bid + ask) compared "
            "with its baseline",
            extra=_BAND,
        ),
    ] = 10
    withdrawal_ratio_on: Annotated[
        float,
        Meta(
            gt=0,
            le=1,
            description="venue_withdrawal: fire when one venue's depth/baseline falls to this ...",
        ),
    ] = 0.3
    withdrawal_ratio_off: Annotated[
        float,
        Meta(
            gt=0,
            description="venue_withdrawal: end when the venue's depth/baseline is back to this "
            "(above withdrawal_ratio_on)",
        ),
    ] = 0.6
    withdrawal_others_ratio: Annotated[
        float,
        Meta(
            gt=0,
            description="venue_withdrawal: ... while the other venues' median keeps this",
        ),
    ] = 0.7
    withdrawal_on_seconds: Annotated[
        float,
        Meta(ge=0, description="venue_withdrawal: how long the fire condition holds", extra=_S),
    ] = 3.0
    withdrawal_off_seconds: Annotated[
        float,
        Meta(ge=0, description="venue_withdrawal: how long the end condition holds", extra=_S),
    ] = 10.0

    # -- basis, flow lead-lag and hedge_pressure (spot and perpetual legs of one instrument) --
    basis_change_seconds: Annotated[
        int,
        Meta(
            gt=0,
            description="mmradar_basis_change_bps_per_second: basis change over this many "
            "seconds, per second",
            extra=_S,
        ),
    ] = 10
    basis_z_floor_bps: Annotated[
        float,
        Meta(
            gt=0,
            description="smallest scale of mmradar_basis_zscore (its baseline MAD is floored)",
            extra=_BPS,
        ),
    ] = 0.5
    leadlag_window_seconds: Annotated[
        int,
        Meta(
            gt=0,
            description="flow lead-lag: rolling window of the cross-correlation of two venues' "
            "1-s signed taker notional",
            extra=_S,
        ),
    ] = 300
    leadlag_max_lag_seconds: Annotated[
        int,
        Meta(
            gt=0,
            description="flow lead-lag: lags -this ... +this seconds are compared; also the "
            "window within which hedge_pressure's follower flow must follow the leader's burst",
            extra=_S,
        ),
    ] = 10
    leadlag_min_active_seconds: Annotated[
        int,
        Meta(
            gt=1,
            description="flow lead-lag: a lag's correlation is NaN unless each venue has at "
            "least this many seconds with trades among its pairs",
            extra=_S,
        ),
    ] = 20
    hedge_burst_seconds: Annotated[
        int,
        Meta(
            gt=0,
            description="hedge_pressure: a venue's signed taker notional is summed over this "
            "many seconds before its robust z is taken",
            extra=_S,
        ),
    ] = 5
    hedge_flow_z: Annotated[
        float,
        Meta(
            gt=0,
            description="hedge_pressure: the leader's burst: |robust z| of its summed signed "
            "taker notional at least this",
            extra=_Z,
        ),
    ] = 3.0
    hedge_follower_z: Annotated[
        float,
        Meta(
            gt=0,
            description="hedge_pressure: a venue's run of one-signed flow: |robust z| of its "
            "summed signed taker notional at least this (a burst's onset is the start of the run "
            "that led to it)",
            extra=_Z,
        ),
    ] = 1.5
    hedge_gap_seconds: Annotated[
        int,
        Meta(
            ge=0,
            description="hedge_pressure: a venue's burst of one-signed flow survives dips below "
            "its threshold of at most this long",
            extra=_S,
        ),
    ] = 5
    hedge_min_lag_seconds: Annotated[
        int,
        Meta(
            gt=0,
            description="hedge_pressure: the follower's flow counts from this long after the "
            "leader's burst onset (near-simultaneous flow is a common shock, not a hedge)",
            extra=_S,
        ),
    ] = 3
    hedge_reversal_seconds: Annotated[
        int,
        Meta(
            ge=0,
            description="hedge_pressure: a burst starting within this long after the end of the "
            "same venue's sustained burst of the other sign is a reversal and leads nothing",
            extra=_S,
        ),
    ] = 60
    hedge_flow_floor_notional: Annotated[
        float,
        Meta(
            gt=0,
            description="hedge_pressure: smallest scale of the summed flow's z (its baseline MAD "
            "is floored); per second (this / hedge_burst_seconds), of the follower's 1-s flow",
            extra=_QUOTE,
        ),
    ] = 1000.0
    hedge_scale_seconds: Annotated[
        int,
        Meta(
            ge=30,
            description="hedge_pressure: a venue's 1-s signed taker notional is standardised by "
            "the median of its absolute value over this many seconds outside its bursts",
            extra=_S,
        ),
    ] = 300
    hedge_flow_clip: Annotated[
        float,
        Meta(
            gt=0,
            description="hedge_pressure: each standardised 1-s flow is clipped to ± this (one "
            "large order is not a run of hedging)",
            extra=_Z,
        ),
    ] = 4.0
    hedge_cusum_drift: Annotated[
        float,
        Meta(
            ge=0,
            description="hedge_pressure: the follower's CUSUM subtracts this from each "
            "standardised second (flow below it is no evidence)",
            extra=_Z,
        ),
    ] = 0.5
    hedge_follower_cusum: Annotated[
        float,
        Meta(
            gt=0,
            description="hedge_pressure: the follower's same-sign evidence, a one-sided CUSUM of "
            "its standardised 1-s flow from hedge_min_lag_seconds after the leader's onset, at "
            "least this",
            extra=_Z,
        ),
    ] = 10.0
    hedge_common_shock: Annotated[
        float,
        Meta(
            gt=0,
            description="hedge_pressure: the follower's standardised same-sign flow summed from "
            "the second before the leader's onset to hedge_min_lag_seconds after it at least this: "
            "a common shock, which leads nothing",
            extra=_Z,
        ),
    ] = 7.0
    hedge_basis_move_z: Annotated[
        float,
        Meta(
            ge=0,
            description="hedge_pressure: fire when the basis moved at least this many of its "
            "baseline scales in the hedgers' direction since the leader's burst onset ...",
            extra=_Z,
        ),
    ] = 1.0
    hedge_basis_level_z: Annotated[
        float,
        Meta(
            ge=0,
            description="hedge_pressure: ... and its z is on the hedgers' side of its baseline by "
            "at least this; end when it is back below this or the follower's evidence is gone",
            extra=_Z,
        ),
    ] = 1.5
    hedge_on_seconds: Annotated[
        float,
        Meta(ge=0, description="hedge_pressure: how long the fire condition holds", extra=_S),
    ] = 1.0
    hedge_off_seconds: Annotated[
        float,
        Meta(ge=0, description="hedge_pressure: how long the end condition holds", extra=_S),
    ] = 10.0

    def check(self) -> None:
        """The checks between keys: hysteresis order, volatility windows against sampling."""
        if not self.leadlag_max_lag_seconds < self.leadlag_window_seconds:
            raise FieldError(
                ("leadlag_max_lag_seconds", "leadlag_window_seconds"),
                f"leadlag_max_lag_seconds ({self.leadlag_max_lag_seconds}) must be less than "
                f"leadlag_window_seconds ({self.leadlag_window_seconds})",
                cross=True,
            )
        if not self.hedge_min_lag_seconds <= self.leadlag_max_lag_seconds:
            raise FieldError(
                ("hedge_min_lag_seconds", "leadlag_max_lag_seconds"),
                f"hedge_min_lag_seconds ({self.hedge_min_lag_seconds}) must not exceed "
                f"leadlag_max_lag_seconds ({self.leadlag_max_lag_seconds})",
                cross=True,
            )
        if not self.withdrawal_ratio_on < self.withdrawal_ratio_off:
            raise FieldError(
                ("withdrawal_ratio_off", "withdrawal_ratio_on"),
                f"withdrawal_ratio_on ({self.withdrawal_ratio_on:g}) must be less than "
                f"withdrawal_ratio_off ({self.withdrawal_ratio_off:g}) (hysteresis)",
                cross=True,
            )
        shortest = 2 * self.volatility_sample_seconds
        if self.volatility_windows_seconds[0] < shortest:
            raise FieldError(
                "volatility_windows_seconds",
                f"each window must span at least two samples of volatility_sample_seconds "
                f"(at least {shortest:g} s), got {self.volatility_windows_seconds[0]}",
                cross=True,
            )
