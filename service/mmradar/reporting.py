"""What the shell reports: the small interface the feed runner and the replayer count through.

The pure pipeline reports through :class:`~mmradar.pipeline.FeedObserver`; its shell — the live
:class:`~mmradar.feed.FeedRunner` or the :class:`~mmradar.replay.Replayer` — reports what only
it sees (connections, reconnects, REST snapshots, parked resyncs, per-frame processing time)
through :class:`ShellObserver`, one per exchange. The metrics side implements it once
(:class:`mmradar.metrics.ShellMetrics`); :class:`NullShellObserver` drops everything (tests, and
replays without a registry).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NullShellObserver", "ShellObserver"]


class ShellObserver(Protocol):
    """What one exchange's feed shell counts (every call is cheap and never raises)."""

    def reconnect(self, reason: str) -> None:
        """A connection ended and is reopened; ``reason`` is one of ``RECONNECT_REASONS``."""
        ...

    def snapshot_request(self, result: str) -> None:
        """A REST depth snapshot request ended: ``ok``, ``error`` or ``rate_limited``."""
        ...

    def rest_weight_used(self, weight: int) -> None:
        """REST request weight spent within the venue's window, as of now."""
        ...

    def connections(self, up: int, *, all_up: bool) -> None:
        """``up`` connections are open now; ``all_up``: every connection of the feed is."""
        ...

    def park(self, symbol: str) -> None:
        """The book's resyncs were parked (too many failures in a row)."""
        ...

    def unpark(self, symbol: str) -> None:
        """The book's resyncs are no longer parked."""
        ...

    def frame_processed(self, seconds: float) -> None:
        """One frame went through the pipeline in ``seconds`` (called per frame)."""
        ...


class NullShellObserver:
    """A :class:`ShellObserver` that counts nothing."""

    __slots__ = ()

    def reconnect(self, reason: str) -> None:
        pass

    def snapshot_request(self, result: str) -> None:
        pass

    def rest_weight_used(self, weight: int) -> None:
        pass

    def connections(self, up: int, *, all_up: bool) -> None:
        pass

    def park(self, symbol: str) -> None:
        pass

    def unpark(self, symbol: str) -> None:
        pass

    def frame_processed(self, seconds: float) -> None:
        pass
