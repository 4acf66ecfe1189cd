"""Several listeners on one signal engine's stat tick.

:class:`~mmradar.signals.engine.SignalEngine` has one ``on_tick`` slot (called after every
stat tick with the engine). The cross-venue view (:mod:`.crossvenue`) and the hedge view
(:mod:`.hedge`) both sample the engines of their instruments: :func:`add_tick_listener` turns
the slot into a :class:`TickFanout` once a second listener arrives. The slot still holds one
object, so the flight recorder's checkpoints (which refer to it rather than contain it) keep
working unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .engine import SignalEngine

__all__ = ["TickFanout", "add_tick_listener"]

TickListener = Callable[["SignalEngine"], None]


class TickFanout:
    """Calls every listener in the order they were added."""

    __slots__ = ("listeners",)

    def __init__(self, *listeners: TickListener) -> None:
        self.listeners: list[TickListener] = list(listeners)

    def __call__(self, engine: SignalEngine) -> None:
        for listener in self.listeners:
            listener(engine)


def add_tick_listener(engine: SignalEngine, listener: TickListener) -> None:
    """Have ``listener`` called after every stat tick of ``engine`` (after those already set)."""
    current = engine.on_tick
    if current is None:
        engine.on_tick = listener
    elif isinstance(current, TickFanout):
        current.listeners.append(listener)
    else:
        engine.on_tick = TickFanout(current, listener)
