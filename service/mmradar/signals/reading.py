"""What a signal engine shows: its flat reading and its episodes as summary rows.

:class:`EngineReading` is what :meth:`SignalEngine.read <mmradar.signals.engine.SignalEngine.read>`
returns (a scrape's or an episode context's view of one instrument, built on demand, never per
message), with one :class:`SymptomReading` per alert machine; :class:`EpisodeRecord` is one
episode as :meth:`~mmradar.signals.engine.SignalEngine.all_episodes` lists it (the replay
summary's rows). Plain values only: no behaviour, no reference to the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..model import BAND_BPS

__all__ = [
    "PRESSURE_COMPONENTS",
    "EngineReading",
    "EpisodeRecord",
    "SymptomReading",
    "base_context",
]

#: ``mmradar_dealer_pressure_component{component}`` label values.
PRESSURE_COMPONENTS: tuple[str, ...] = ("inventory", "depth_imbalance", "skew", "ofi")


@dataclass(slots=True)
class EpisodeRecord:
    """One episode as a summary row.

    Attributes:
        symptom: the symptom.
        side: its side label.
        started_ns: event time it started.
        ended_ns: event time it ended (None while firing).
        peak: the highest score during the episode.
        book_invalidated: it ended because the book became invalid.
    """

    symptom: str
    side: str
    started_ns: int
    ended_ns: int | None
    peak: float
    book_invalidated: bool = False


@dataclass(frozen=True, slots=True)
class SymptomReading:
    """One (symptom, side) alert machine as read now.

    Attributes:
        symptom: the symptom.
        side: its side label.
        firing: an episode is in progress.
        score: the detector's current score (NaN while the engine is not live).
        episodes: episodes started since start-up.
    """

    symptom: str
    side: str
    firing: bool
    score: float
    episodes: int


@dataclass(frozen=True, slots=True)
class EngineReading:
    """What one instrument's signal engine shows right now, flat (:meth:`SignalEngine.read`).

    Built on demand (a scrape, an episode event), never per message. Book-derived values read
    NaN while the engine is not live (the book is not valid); the trade-derived inventory
    measures keep counting; baselines stay readable. Per-window, per-half-life and per-band
    tuples are in the order of the matching ``*_s`` tuple or of ``BAND_BPS``; notionals are in
    the quote currency, volumes and OFI in the base currency.

    Attributes:
        live: the engine follows a valid book.
        warm: the warm-up of the current book life is over (``mmradar_signals_warm``).
        last_event_ns: the latest venue event time seen (0 before any).
        symptoms: every alert machine, in ``SYMPTOM_SIDES`` order.
        dealer_pressure: the composite in [-1, 1].
        pressure_components_z: its components, in :data:`PRESSURE_COMPONENTS` order.
        inventory_proxy_z: the dealer-inventory proxy decayed to ``last_event_ns``.
        ofi_windows_s: OFI windows.
        ofi_base: OFI at the touch per window.
        ofi_z: OFI per window over its EWMA RMS.
        tfi_windows_s: trade-flow-imbalance windows.
        trade_flow_imbalance: TFI per window, in [-1, 1].
        half_lives_s: half-lives of the decayed taker volume.
        signed_taker_volume_decayed_base: taker volume, buys positive, per half-life.
        depth_baseline_bid_notional: baseline bid depth per band.
        depth_baseline_ask_notional: baseline ask depth per band.
        spread_baseline_bps: baseline (median) quoted spread.
        quote_skew: time-averaged touch skew, in [-0.5, 0.5].
        depth_imbalance_smoothed: depth imbalance at the asymmetry band, EWMA-smoothed.
        volatility_ratio: fast over slow realized volatility.
        depth_to_fill_bid_bps: depth-to-fill on the bid side at the last stat tick.
        depth_to_fill_ask_bps: likewise, ask side.
        tick_size_price: estimated price tick.
        removed_traded_bid_notional: bid size removed by trades per band, since start.
        removed_cancelled_bid_notional: bid size removed by cancels per band, since start.
        removed_traded_ask_notional: likewise, ask side.
        removed_cancelled_ask_notional: likewise, ask side.
        removed_cancel_share_bid: share of missing bid size cancelled, per band.
        removed_cancel_share_ask: likewise, ask side.
        tick_best_bid_price: best bid at the last stat tick.
        tick_best_ask_price: best ask at the last stat tick.
        tick_mid_price: mid at the last stat tick.
        tick_depth_bid_notional: bid depth per band at the last stat tick.
        tick_depth_ask_notional: ask depth per band at the last stat tick.
        tick_signed_taker_notional: signed taker notional of the second the last stat tick
            closed (buy-taker minus sell-taker ``price × base qty``, quote currency).
    """

    live: bool
    warm: bool
    last_event_ns: int
    symptoms: tuple[SymptomReading, ...]
    dealer_pressure: float
    pressure_components_z: tuple[float, ...]
    inventory_proxy_z: float
    ofi_windows_s: tuple[int, ...]
    ofi_base: tuple[float, ...]
    ofi_z: tuple[float, ...]
    tfi_windows_s: tuple[int, ...]
    trade_flow_imbalance: tuple[float, ...]
    half_lives_s: tuple[float, ...]
    signed_taker_volume_decayed_base: tuple[float, ...]
    depth_baseline_bid_notional: tuple[float, ...]
    depth_baseline_ask_notional: tuple[float, ...]
    spread_baseline_bps: float
    quote_skew: float
    depth_imbalance_smoothed: float
    volatility_ratio: float
    depth_to_fill_bid_bps: float
    depth_to_fill_ask_bps: float
    tick_size_price: float
    removed_traded_bid_notional: tuple[float, ...]
    removed_cancelled_bid_notional: tuple[float, ...]
    removed_traded_ask_notional: tuple[float, ...]
    removed_cancelled_ask_notional: tuple[float, ...]
    removed_cancel_share_bid: tuple[float, ...]
    removed_cancel_share_ask: tuple[float, ...]
    tick_best_bid_price: float
    tick_best_ask_price: float
    tick_mid_price: float
    tick_depth_bid_notional: tuple[float, ...]
    tick_depth_ask_notional: tuple[float, ...]
    tick_signed_taker_notional: float


def _json_num(x: float) -> float | None:
    return x if math.isfinite(x) else None


def base_context(r: EngineReading, valid: bool) -> dict[str, Any]:
    """The fields every symptom's episode context starts with (docs/webhooks.md), from one
    reading: ``book_valid``, the touch and spread, the near-touch depth per band and their
    baselines, and the dealer pressure. The book's own figures are None unless ``valid``; the
    baselines are shown either way."""
    ctx: dict[str, Any] = {"book_valid": valid}
    if valid:
        bid, ask, mid = r.tick_best_bid_price, r.tick_best_ask_price, r.tick_mid_price
        ctx["best_bid"] = _json_num(bid)
        ctx["best_ask"] = _json_num(ask)
        ctx["mid"] = _json_num(mid)
        ctx["spread_bps"] = _json_num(1e4 * (ask - bid) / mid)
    else:
        ctx["best_bid"] = ctx["best_ask"] = ctx["mid"] = ctx["spread_bps"] = None
    ctx["spread_baseline_bps"] = _json_num(r.spread_baseline_bps)
    ctx["depth"] = {
        str(band): (
            {"bid": _json_num(b), "ask": _json_num(a)} if valid else {"bid": None, "ask": None}
        )
        for band, b, a in zip(
            BAND_BPS, r.tick_depth_bid_notional, r.tick_depth_ask_notional, strict=True
        )
    }
    ctx["depth_baseline"] = {
        str(band): {"bid": _json_num(b), "ask": _json_num(a)}
        for band, b, a in zip(
            BAND_BPS, r.depth_baseline_bid_notional, r.depth_baseline_ask_notional, strict=True
        )
    }
    ctx["dealer_pressure"] = _json_num(r.dealer_pressure)
    return ctx
