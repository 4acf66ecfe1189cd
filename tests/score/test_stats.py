"""The scorecard's statistics on constructed series with known answers."""

from __future__ import annotations

import math
import random

import pytest

from mmradar.score.stats import (
    lagged_correlations,
    logistic_fit,
    ols,
    peak_lag,
    pearson,
    quantile,
    ranks,
    spearman,
    stdev,
)


def test_ranks_average_ties() -> None:
    assert ranks([10.0, 20.0, 10.0, 30.0]) == [1.5, 3.0, 1.5, 4.0]


def test_spearman_is_invariant_to_monotone_transforms_and_skips_nan() -> None:
    x = [0.1 * k for k in range(1, 50)]
    assert spearman(x, [math.exp(v) for v in x]) == pytest.approx(1.0)
    assert spearman(x, [-(v**3) for v in x]) == pytest.approx(-1.0)
    y = [math.exp(v) for v in x]
    y[5] = math.nan
    assert spearman(x, y) == pytest.approx(1.0)


def test_spearman_known_value() -> None:
    # ranks x = 1..5, y ranks = 2,1,4,3,5: rho = 1 − 6·Σd²/(n(n²−1)) = 1 − 6·4/120 = 0.8
    assert spearman([1, 2, 3, 4, 5], [20, 10, 40, 30, 50]) == pytest.approx(0.8)


def test_pearson_and_constant_series() -> None:
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert math.isnan(pearson([1, 1, 1, 1], [1, 2, 3, 4]))


def test_lagged_correlation_finds_a_known_lag() -> None:
    rng = random.Random(7)
    y = [rng.gauss(0, 1) for _ in range(600)]
    lag = 7
    # x(t) = y(t − 7): x repeats y seven samples later, so x lags y by +7
    x = [math.nan] * lag + y[:-lag]
    found, corr = peak_lag(lagged_correlations(x, y, 20))
    assert found == lag
    assert corr == pytest.approx(1.0)
    # and the mirror image: a leading series peaks at a negative lag
    found, _ = peak_lag(lagged_correlations(y, x, 20))
    assert found == -lag


def test_quantile_interpolates_linearly() -> None:
    vals = [4.0, 1.0, 3.0, 2.0]
    assert quantile(vals, 0.5) == pytest.approx(2.5)
    assert quantile(vals, 0.9) == pytest.approx(3.7)
    assert quantile(vals, 0.0) == 1.0
    assert math.isnan(quantile([], 0.5))
    assert stdev([1.0, 2.0, 3.0, 4.0]) == pytest.approx(math.sqrt(5 / 3))


def test_ols_recovers_a_known_slope() -> None:
    rng = random.Random(3)
    x = [rng.uniform(-10, 10) for _ in range(2000)]
    exact = ols(x, [0.25 * v - 1.0 for v in x])
    assert exact.beta == pytest.approx(0.25)
    assert exact.alpha == pytest.approx(-1.0)
    assert exact.r2 == pytest.approx(1.0)
    noisy = ols(x, [0.25 * v + rng.gauss(0, 1) for v in x])
    assert noisy.beta == pytest.approx(0.25, abs=0.01)
    # R² = var(βx)/(var(βx) + 1) with var(x) = 100/3
    expected = 0.0625 * 100 / 3 / (0.0625 * 100 / 3 + 1)
    assert noisy.r2 == pytest.approx(expected, abs=0.03)
    assert noisy.t_beta > 50


def test_logistic_fit_recovers_coefficients() -> None:
    rng = random.Random(11)
    x = [rng.uniform(-1, 1) for _ in range(20000)]
    y = [rng.random() < 1 / (1 + math.exp(-(0.2 + 2.0 * v))) for v in x]
    fit = logistic_fit(x, y)
    assert fit.converged
    assert fit.x0 == pytest.approx(0.2, abs=0.06)
    assert fit.x1 == pytest.approx(2.0, abs=0.15)


def test_parse_seeds() -> None:
    from mmradar.score.command import parse_seeds

    assert parse_seeds("1-3,7") == (1, 2, 3, 7)
    assert parse_seeds("5") == (5,)
    assert parse_seeds("3,1,3") == (1, 3)
    for bad in ("", "1-", "a", "4-2", "1,,2"):
        with pytest.raises(ValueError):
            parse_seeds(bad)
