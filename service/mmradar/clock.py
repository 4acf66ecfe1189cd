"""Clocks, injected wherever the shell needs the time (the pure core never reads one).

:class:`Clock` is what a reader of the time needs (timestamps, intervals); :class:`ShellClock`
adds what the asyncio shell needs to wait and to time its own work, so that a test can run
the shell's timers (back-off, pacing, watchdog, staleness, replay speed) on a fake clock
whose ``sleep`` advances the fake time instead of waiting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "ShellClock", "SystemClock"]


class Clock(Protocol):
    """Wall time for timestamps, monotonic time for intervals."""

    def wall_ns(self) -> int:
        """Nanoseconds since the Unix epoch (receive timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock (timeouts, back-off, staleness)."""
        ...


class ShellClock(Clock, Protocol):
    """A :class:`Clock` the asyncio shell also waits on and times its work with."""

    def perf_counter(self) -> float:
        """Seconds on a high-resolution clock (per-frame processing time)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of :meth:`monotonic` time (at least one pass of the loop)."""
        ...


class SystemClock:
    """The real clocks (the time module's functions themselves: the per-frame reads cost no
    extra call)."""

    wall_ns = staticmethod(time.time_ns)
    monotonic = staticmethod(time.monotonic)
    perf_counter = staticmethod(time.perf_counter)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
