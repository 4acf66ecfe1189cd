"""Streaming baselines on venue event time (docs/signals.md, "Baselines").

Everything takes the sample's event time ``ts_ns`` (integer ns) and never reads a clock.

* :class:`Ewma` — time-decayed exponential average for irregular sampling:
  ``α = 1 − exp(−Δt·ln2/h)``, ``m ← m + α·(x − m)``. The first sample sets ``m``. While
  *frozen*, time passes but nothing is learned (the next update does not catch up on the frozen
  interval).
* :class:`BucketedMedian` — the robust level and scale of a 1-s statistic: samples are grouped
  into 1-minute buckets (by event-time minute); each closed bucket keeps the median of its
  samples and the median of their absolute deviations from the baseline median in force (or
  from the bucket's own median before any baseline exists). The baseline **median** is the
  median of the last ``n`` bucket medians, the **MAD** the median of their deviation medians.
  O(1) per sample, one sort of ≤ 60 values per minute and of ≤ ``n`` values per minute:
  exact, no sketch. A bucket with fewer than ``min_samples`` samples (the book was invalid or
  the baseline frozen for most of that minute) is discarded.
* :func:`robust_z` — ``(x − med) / max(1.4826·MAD, floor)``: always floored, because
  discreteness (a spread pinned at one tick) makes the MAD 0.
* :class:`BucketedMedians` — the same for several series sampled together (band depths).
* :class:`RollingMax` and :class:`RollingSum` — fixed windows of the 1-s stat clock's samples.

Freezing (docs/signals.md): a baseline is not updated while a symptom that reads it is firing,
so the baseline does not chase the anomaly and let the alert clear itself.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal

from mypy_extensions import mypyc_attr

__all__ = [
    "MAD_TO_SIGMA",
    "BucketedMedian",
    "BucketedMedians",
    "Ewma",
    "RollingMax",
    "RollingSum",
    "robust_z",
]

_NS = 1_000_000_000
_LN2 = math.log(2.0)
#: 1.4826·MAD estimates σ for Gaussian data.
MAD_TO_SIGMA = 1.4826


def robust_z(x: float, median: float, mad: float, floor: float) -> float:
    """Robust z-score ``(x − median) / max(1.4826·mad, floor)``; NaN if any input is NaN.

    Args:
        x: the statistic.
        median: the baseline median.
        mad: the baseline median absolute deviation.
        floor: the smallest scale allowed (must be > 0).
    """
    scale = MAD_TO_SIGMA * mad
    if not scale >= floor:  # also catches a NaN mad
        if mad != mad:
            return math.nan
        scale = floor
    return (x - median) / scale


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class Ewma:
    """Exponentially weighted moving average with a half-life in event time.

    Args:
        half_life_s: half-life in seconds (> 0).
    """

    __slots__ = ("_alpha", "_dt", "_last_ns", "_rate", "half_life_s", "value")

    def __init__(self, half_life_s: float) -> None:
        if not half_life_s > 0:
            raise ValueError("half_life_s must be > 0")
        self.half_life_s = half_life_s
        self._rate = _LN2 / (half_life_s * _NS)  # per ns
        self.value = math.nan
        self._last_ns: int | None = None
        self._dt = 0  # the last Δt and its α: the stat clock repeats the same Δt
        self._alpha = 0.0

    def update(self, x: float, ts_ns: int, *, frozen: bool = False) -> float:
        """Fold ``x`` observed at ``ts_ns`` into the average and return it.

        A NaN ``x`` is ignored (time still passes). A sample at or before the previous one
        carries no weight (``α = 0``), so time never runs backwards.
        """
        last = self._last_ns
        if last is not None and ts_ns < last:
            return self.value
        self._last_ns = ts_ns
        if frozen or x != x:
            return self.value
        if self.value != self.value:
            self.value = x
        elif last is not None and ts_ns > last:
            dt = ts_ns - last
            if dt != self._dt:
                self._dt = dt
                self._alpha = 1.0 - math.exp(-dt * self._rate)
            self.value += self._alpha * (x - self.value)
        return self.value

    def reset(self) -> None:
        """Forget everything (the next sample starts afresh)."""
        self.value = math.nan
        self._last_ns = None


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class BucketedMedian:
    """Median and MAD of the last ``n_buckets`` one-minute bucket summaries.

    Args:
        n_buckets: buckets kept (the baseline window, in minutes).
        bucket_s: bucket length in seconds of event time (60).
        min_samples: a closed bucket with fewer samples is discarded.
        reducer: ``"median"`` (robust level of 1-s samples) or ``"mean"`` (e.g. the per-minute
            mean of squared returns: realized variance per second).
    """

    __slots__ = (
        "_bucket_ns",
        "_count",
        "_cur_k",
        "_devs",
        "_meds",
        "_min_samples",
        "_reducer",
        "_samples",
        "mad",
        "median",
    )

    def __init__(
        self,
        n_buckets: int = 30,
        bucket_s: float = 60.0,
        min_samples: int = 20,
        reducer: Literal["median", "mean"] = "median",
    ) -> None:
        if n_buckets < 1:
            raise ValueError("n_buckets must be >= 1")
        self._bucket_ns = round(bucket_s * _NS)
        self._min_samples = min_samples
        self._reducer = reducer
        self._meds: deque[float] = deque(maxlen=n_buckets)
        self._devs: deque[float] = deque(maxlen=n_buckets)
        self._samples: list[float] = []
        self._cur_k: int | None = None
        self._count = 0
        #: Baseline median (NaN until a bucket has closed).
        self.median = math.nan
        #: Baseline median absolute deviation (NaN until a bucket has closed).
        self.mad = math.nan

    @property
    def buckets(self) -> int:
        """Closed buckets currently in the baseline."""
        return len(self._meds)

    def add(self, x: float, ts_ns: int, *, frozen: bool = False) -> None:
        """Add the 1-s sample ``x`` taken at ``ts_ns`` (NaN and frozen samples are skipped).

        Crossing into a new event-time minute closes the previous bucket first.
        """
        k = ts_ns // self._bucket_ns
        cur = self._cur_k
        if cur is None:
            self._cur_k = k
        elif k > cur:
            self._close()
            self._cur_k = k
        elif k < cur:
            return  # never reopen a closed minute
        if frozen or x != x:
            return
        self._samples.append(x)

    def drop_current(self) -> None:
        """Discard the open bucket (a resync: no bucket spans an invalid period)."""
        self._samples.clear()
        self._cur_k = None

    def _close(self) -> None:
        samples = self._samples
        if len(samples) >= self._min_samples:
            samples.sort()
            mean = self._reducer == "mean"
            level = math.fsum(samples) / len(samples) if mean else _median_sorted(samples)
            ref = self.median if self.median == self.median else level
            devs = sorted(abs(x - ref) for x in samples)
            self._meds.append(level)
            self._devs.append(_median_sorted(devs))
            self.median = _median_sorted(sorted(self._meds))
            self.mad = _median_sorted(sorted(self._devs))
        self._samples = []

    def z(self, x: float, floor: float) -> float:
        """:func:`robust_z` of ``x`` against this baseline."""
        return robust_z(x, self.median, self.mad, floor)


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class BucketedMedians:
    """:class:`BucketedMedian` for several series sampled together (one bucket clock).

    ``medians[i]`` / ``mads[i]`` are series ``i``'s baseline. Adding a sample of every series
    is one loop of list appends; the sorting happens once a minute.

    Args:
        n_series: how many series.
        n_buckets: buckets kept (minutes).
        bucket_s: bucket length in seconds.
        min_samples: a closed bucket with fewer samples is discarded (per series).
    """

    __slots__ = ("_series", "mads", "medians")

    def __init__(
        self, n_series: int, n_buckets: int = 30, bucket_s: float = 60.0, min_samples: int = 20
    ) -> None:
        self._series = [BucketedMedian(n_buckets, bucket_s, min_samples) for _ in range(n_series)]
        self.medians: tuple[float, ...] = (math.nan,) * n_series
        self.mads: tuple[float, ...] = (math.nan,) * n_series

    def add(self, xs: tuple[float, ...], ts_ns: int, *, frozen: bool = False) -> None:
        """Add one sample of every series (same rules as :meth:`BucketedMedian.add`)."""
        series = self._series
        first = series[0]
        k = ts_ns // first._bucket_ns
        if k != first._cur_k:
            for one, x in zip(series, xs, strict=True):
                one.add(x, ts_ns, frozen=frozen)
            self.medians = tuple(one.median for one in series)
            self.mads = tuple(one.mad for one in series)
            return
        if frozen:
            return
        for one, x in zip(series, xs, strict=True):
            if x == x:
                one._samples.append(x)

    def drop_current(self) -> None:
        """Discard every open bucket (resync)."""
        for one in self._series:
            one.drop_current()


def _median_sorted(xs: list[float]) -> float:
    n = len(xs)
    mid = n // 2
    if n % 2:
        return xs[mid]
    return 0.5 * (xs[mid - 1] + xs[mid])


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class RollingMax:
    """Maximum of the last ``window`` samples (NaN samples count as absent).

    Windows here are a few seconds long, so ``max`` over a bounded deque (in C) beats a
    monotone deque in Python.

    Args:
        window: samples covered, including the newest.
    """

    __slots__ = ("_q", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._q: deque[float] = deque(maxlen=window)

    def push(self, x: float) -> float:
        """Add the next sample and return the window's maximum (NaN if it holds none)."""
        q = self._q
        q.append(x if x == x else -math.inf)
        m = max(q)
        return m if m > -math.inf else math.nan

    def clear(self) -> None:
        """Empty the window."""
        self._q.clear()


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class RollingSum:
    """Sums of the last ``w`` per-second bins for several windows ``w`` (running sums).

    Args:
        windows: window lengths in bins, e.g. ``(1, 10, 60)``.
    """

    __slots__ = ("_bins", "_pushes", "sums", "windows")

    def __init__(self, windows: tuple[int, ...]) -> None:
        self.windows = windows
        self._bins: deque[float] = deque(maxlen=max(windows))
        self.sums = [0.0] * len(windows)
        self._pushes = 0

    def push(self, x: float) -> None:
        """Append the next bin (bins are consecutive seconds)."""
        bins = self._bins
        sums = self.sums
        n = len(bins)
        for i, w in enumerate(self.windows):
            sums[i] += x - bins[n - w] if n >= w else x
        bins.append(x)
        self._pushes += 1
        if self._pushes % 600 == 0:  # re-add from scratch: running float sums drift
            values = list(bins)
            self.sums = [math.fsum(values[-w:]) for w in self.windows]

    @property
    def filled(self) -> int:
        """Bins currently held (at most the longest window)."""
        return len(self._bins)

    def clear(self) -> None:
        """Empty every window."""
        self._bins.clear()
        self.sums = [0.0] * len(self.windows)
