"""Streaming baselines on event time: scripted (ts, value) sequences, exact expectations."""

from __future__ import annotations

import math
import statistics

import pytest

from mmradar.signals.baselines import (
    MAD_TO_SIGMA,
    BucketedMedian,
    BucketedMedians,
    Ewma,
    RollingMax,
    RollingSum,
    robust_z,
)

S = 1_000_000_000
M = 60 * S


# -- Ewma ------------------------------------------------------------------------------------


def test_ewma_first_sample_sets_the_level_and_a_half_life_halves_the_gap() -> None:
    e = Ewma(10.0)
    assert math.isnan(e.value)
    assert e.update(4.0, 100 * S) == 4.0
    # one half-life later the average has moved half-way to the new value
    assert e.update(0.0, 110 * S) == pytest.approx(2.0)
    # irregular sampling: two steps of 5 s = one of 10 s
    a, b = Ewma(10.0), Ewma(10.0)
    a.update(0.0, 0)
    b.update(0.0, 0)
    a.update(1.0, 5 * S)
    a.update(1.0, 10 * S)
    b.update(1.0, 10 * S)
    assert a.value == pytest.approx(b.value)


def test_ewma_ignores_nan_out_of_order_and_frozen_samples() -> None:
    e = Ewma(1.0)
    e.update(1.0, 10 * S)
    assert e.update(math.nan, 11 * S) == 1.0
    assert e.update(5.0, 5 * S) == 1.0  # earlier than the last sample: no weight
    assert e.update(5.0, 11 * S) == 1.0  # same time as the last one: α = 0
    # frozen: time passes, nothing is learned, and the next update does not catch up
    assert e.update(100.0, 100 * S, frozen=True) == 1.0
    assert e.update(3.0, 101 * S) == pytest.approx(2.0)  # one half-life since the frozen one
    e.reset()
    assert math.isnan(e.value)
    assert e.update(7.0, 0) == 7.0


def test_ewma_rejects_a_non_positive_half_life() -> None:
    with pytest.raises(ValueError):
        Ewma(0.0)


# -- BucketedMedian --------------------------------------------------------------------------


def test_bucketed_median_is_nan_until_a_bucket_closes_then_exact() -> None:
    b = BucketedMedian(n_buckets=3, min_samples=3)
    for i, x in enumerate([1.0, 5.0, 3.0, 2.0]):
        b.add(x, i * S)
    assert math.isnan(b.median) and math.isnan(b.mad) and b.buckets == 0
    b.add(10.0, M)  # the next minute closes the first bucket
    assert b.buckets == 1
    assert b.median == 2.5  # median of 1, 2, 3, 5
    # deviations from the bucket's own median (no baseline yet): 1.5, 0.5, 0.5, 2.5
    assert b.mad == 1.0


def test_bucketed_median_takes_medians_of_minute_medians_and_deviations() -> None:
    b = BucketedMedian(n_buckets=3, min_samples=1)
    minutes = [[1.0, 1.0, 1.0], [3.0, 3.0, 3.0], [2.0, 2.0, 2.0], [10.0, 10.0, 10.0]]
    for m, xs in enumerate(minutes):
        for i, x in enumerate(xs):
            b.add(x, m * M + i * S)
    b.add(0.0, len(minutes) * M)  # close the last one
    # the window keeps the last 3 minute-medians: 3, 2, 10
    assert b.buckets == 3
    assert b.median == 3.0
    # deviations were measured against the baseline in force when each minute closed:
    # minute 1 (3s) vs 1 → 2; minute 2 (2s) vs median(1, 3) = 2 → 0; minute 3 (10s) vs 2 → 8
    assert b.mad == 2.0
    assert b.z(9.0, floor=0.1) == pytest.approx((9.0 - 3.0) / (MAD_TO_SIGMA * 2.0))


def test_bucketed_median_mean_reducer() -> None:
    b = BucketedMedian(n_buckets=5, min_samples=1, reducer="mean")
    for i, x in enumerate([1.0, 2.0, 6.0]):
        b.add(x, i * S)
    b.add(0.0, M)
    assert b.median == 3.0


def test_bucketed_median_skips_nan_frozen_and_thin_buckets() -> None:
    b = BucketedMedian(n_buckets=5, min_samples=3)
    b.add(1.0, 0)
    b.add(math.nan, S)
    b.add(100.0, 2 * S, frozen=True)
    b.add(1.0, 3 * S)
    b.add(1.0, M)  # closes minute 0 with only 2 usable samples: discarded
    assert b.buckets == 0
    for i in range(1, 4):
        b.add(4.0, M + i * S)
    b.add(0.0, 2 * M)
    assert b.buckets == 1 and b.median == 4.0


def test_bucketed_median_drop_current_and_no_reopening() -> None:
    b = BucketedMedian(n_buckets=5, min_samples=1)
    b.add(1.0, 0)
    b.add(2.0, M)  # minute 0 closed (median 1)
    b.add(50.0, M + S)
    b.drop_current()  # a resync: minute 1's samples are gone
    b.add(3.0, 3 * M)
    b.add(7.0, 2 * M)  # an earlier minute than the open one: ignored
    b.add(0.0, 4 * M)
    assert b.buckets == 2
    assert b.median == 2.0  # medians 1 and 3


def test_bucketed_medians_equals_independent_series() -> None:
    many = BucketedMedians(2, n_buckets=4, min_samples=2)
    one = [BucketedMedian(4, min_samples=2), BucketedMedian(4, min_samples=2)]
    t = 0
    for k in range(300):
        xs = (math.sin(k) * 10, float(k % 7))
        many.add(xs, t, frozen=k % 50 == 0)
        for series, x in zip(one, xs, strict=True):
            series.add(x, t, frozen=k % 50 == 0)
        t += S
    assert many.medians == tuple(s.median for s in one)
    assert many.mads == tuple(s.mad for s in one)


# -- robust z, windows -----------------------------------------------------------------------


def test_robust_z_uses_the_floor_and_propagates_nan() -> None:
    assert robust_z(5.0, 1.0, 0.0, floor=2.0) == 2.0  # MAD 0: the floor is the scale
    assert robust_z(5.0, 1.0, 1.0, floor=0.1) == pytest.approx(4.0 / MAD_TO_SIGMA)
    assert math.isnan(robust_z(5.0, 1.0, math.nan, floor=0.1))
    assert math.isnan(robust_z(5.0, math.nan, 1.0, floor=0.1))
    assert math.isnan(robust_z(math.nan, 1.0, 1.0, floor=0.1))


def test_rolling_max() -> None:
    r = RollingMax(3)
    assert [r.push(x) for x in [1.0, 5.0, 2.0, 1.0, 1.0, math.nan]] == [1, 5, 5, 5, 2, 1]
    r.clear()
    assert math.isnan(r.push(math.nan))


def test_rolling_sum_windows_and_drift_free_recompute() -> None:
    r = RollingSum((1, 3, 5))
    values = [float(i % 11) - 3.3 for i in range(1_500)]
    for i, x in enumerate(values):
        r.push(x)
        for w, got in zip(r.windows, r.sums, strict=True):
            want = math.fsum(values[max(0, i + 1 - w) : i + 1])
            assert got == pytest.approx(want, abs=1e-9)
    assert r.filled == 5
    r.clear()
    assert r.filled == 0 and r.sums == [0.0, 0.0, 0.0]


def test_bucketed_median_matches_statistics_on_random_data() -> None:
    import random

    rng = random.Random(7)
    b = BucketedMedian(n_buckets=30, min_samples=1)
    minute_medians = []
    for m in range(40):
        xs = [rng.gauss(0, 1) for _ in range(60)]
        minute_medians.append(statistics.median(xs))
        for i, x in enumerate(xs):
            b.add(x, m * M + i * S)
    b.add(0.0, 40 * M)
    assert b.median == pytest.approx(statistics.median(minute_medians[-30:]))
