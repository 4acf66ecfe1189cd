"""The views that span several instruments' engines, built the same way live and in a replay.

An instrument watched on two or more venues gets a :class:`~mmradar.signals.crossvenue.
CrossVenueView` (``venue_withdrawal``); one watched as spot and as a perpetual gets a
:class:`~mmradar.signals.hedge.HedgeView` (basis, flow lead–lag, ``hedge_pressure``). Both read
only the engines' event-time ticks, so a replay of the same frames builds the same views and
reaches the same episodes as the live service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .instruments import market_kind
from .pipeline import FeedPipeline
from .signals.crossvenue import CrossVenueView, build_views
from .signals.episodes import EpisodeEvent
from .signals.hedge import HedgeView, build_hedge_views
from .signals.params import SignalSettings

__all__ = ["instrument_views"]


def instrument_views(
    pipelines: Iterable[FeedPipeline],
    params: SignalSettings,
    on_episode: Callable[[EpisodeEvent], None] | None = None,
) -> tuple[list[CrossVenueView], list[HedgeView]]:
    """The cross-venue and hedge views over the instruments of ``pipelines``.

    Args:
        pipelines: one per exchange.
        params: the ``[signals]`` settings.
        on_episode: receives the views' episode starts and ends.

    Returns:
        ``(cross-venue views, hedge views)``, in first-seen instrument order.
    """
    members = [
        (p.venue.name, symbol, p.venue.instrument(symbol), inst.engine)
        for p in pipelines
        for symbol, inst in p.instruments.items()
    ]
    cross = build_views(members, params, on_episode)
    hedge = build_hedge_views(
        [(x, s, i, market_kind(x, s), engine) for x, s, i, engine in members],
        params,
        on_episode,
    )
    return cross, hedge
