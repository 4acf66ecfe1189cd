"""Clocks, injected wherever the shell needs the time (the pure core never reads one)."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Wall time for timestamps, monotonic time for intervals."""

    def wall_ns(self) -> int:
        """Nanoseconds since the Unix epoch (receive timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock (timeouts, back-off, staleness)."""
        ...


class SystemClock:
    """The real clocks."""

    def wall_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()
