"""Symptom episodes: what a detector's alert state machine emits when it starts or ends firing.

The names are a stable interface (docs/metrics.md, docs/webhooks.md): ``symptom`` ∈
spread_widening, liquidity_evaporation, depth_asymmetry, liquidity_pull, quote_skew,
volatility_spike; ``side`` ∈ both, bid, ask (see :data:`SYMPTOM_SIDES`); the cross-venue
``venue_withdrawal`` (side both) and ``hedge_pressure`` (side buy, sell: the direction the
hedgers trade).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "CROSS_VENUE_SYMPTOM_SIDES",
    "HEDGE_SYMPTOM_SIDES",
    "SYMPTOMS",
    "SYMPTOM_SIDES",
    "EpisodeEvent",
]

#: symptom → the ``side`` label values its series exist for (docs/metrics.md).
SYMPTOM_SIDES: Mapping[str, tuple[str, ...]] = {
    "spread_widening": ("both",),
    "liquidity_evaporation": ("bid", "ask"),
    "depth_asymmetry": ("bid", "ask"),
    "liquidity_pull": ("both",),
    "quote_skew": ("bid", "ask"),
    "volatility_spike": ("both",),
}
SYMPTOMS: tuple[str, ...] = tuple(SYMPTOM_SIDES)

#: Symptoms judged across venues (:mod:`mmradar.signals.crossvenue`): their series exist for
#: every configured symbol whose instrument is watched on at least two venues, labelled with
#: the venue the symptom names.
CROSS_VENUE_SYMPTOM_SIDES: Mapping[str, tuple[str, ...]] = {"venue_withdrawal": ("both",)}

#: Symptoms of the hedge view (:mod:`mmradar.signals.hedge`, spot against perpetual legs of one
#: instrument): their series exist for every configured symbol that is a leg of a hedge view,
#: labelled with the follower (hedge) leg; the side is the direction the hedgers trade.
HEDGE_SYMPTOM_SIDES: Mapping[str, tuple[str, ...]] = {"hedge_pressure": ("buy", "sell")}


@dataclass(frozen=True, slots=True)
class EpisodeEvent:
    """An episode started (``state="firing"``) or ended (``state="resolved"``).

    Attributes:
        symptom: one of :data:`SYMPTOMS`.
        exchange: config ``exchange`` value.
        symbol: venue spelling.
        side: ``both``, ``bid``, ``ask``; ``buy`` or ``sell`` for ``hedge_pressure``.
        state: ``firing`` at the start, ``resolved`` at the end.
        started_at_ns: venue event time the episode started.
        ended_at_ns: venue event time it ended (``None`` while firing).
        score: the detector's score at the transition (z or ratio, per symptom).
        context: what a trader needs to act: top of book, spread, per-band depth now and at
            baseline, book validity (JSON-serialisable values only).
        recording: the flight recording holding the raw frames around the episode start
            (:mod:`mmradar.flight`; set by the shell, None when none was written).
    """

    symptom: str
    exchange: str
    symbol: str
    side: str
    state: Literal["firing", "resolved"]
    started_at_ns: int
    ended_at_ns: int | None
    score: float
    context: Mapping[str, Any] = field(default_factory=dict)
    recording: str | None = None
