"""Lock-free histograms owned by the pipeline: feed latency, per-frame processing time.

They are plain numbers updated inline on the hot path (this module is compiled with the rest
of the per-frame path) and exported by :mod:`mmradar.metrics` at scrape time. Everything runs
on the event-loop thread, so no lock is needed — unlike ``prometheus_client`` metric objects,
whose per-update lock costs more than the rest of the per-frame path.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["LATENCY_BUCKETS", "PROCESSING_BUCKETS", "FastHistogram"]

#: ``mmradar_feed_latency_seconds`` buckets (receive time − venue event time).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: ``mmradar_processing_seconds`` buckets (per-frame processing time).
PROCESSING_BUCKETS: tuple[float, ...] = (
    5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 0.1,
)  # fmt: skip


class FastHistogram:
    """A lock-free histogram: one C ``bisect`` and two adds per observation.

    Bucket ``i`` counts observations ``≤ bounds[i]`` and ``> bounds[i-1]`` (Prometheus ``le``
    semantics); the last count is for ``+Inf``.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds: tuple[float, ...] = tuple(bounds)
        self.counts: list[int] = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[int]:
        """Cumulative counts per bucket, ``+Inf`` last."""
        out: list[int] = []
        total = 0
        for count in self.counts:
            total += count
            out.append(total)
        return out
