"""Small, exact statistics for the scorecard (pure Python: no NumPy needed to score).

Every function skips pairs where either value is NaN, and returns NaN where the statistic is
undefined (too few points, zero variance) rather than raising.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "LogitFit",
    "OlsFit",
    "lagged_correlations",
    "logistic_fit",
    "mean",
    "ols",
    "peak_lag",
    "pearson",
    "quantile",
    "ranks",
    "spearman",
    "stdev",
]

_NAN = math.nan


def _pairs(x: Sequence[float], y: Sequence[float]) -> tuple[list[float], list[float]]:
    if len(x) != len(y):
        raise ValueError(f"series of different lengths: {len(x)} and {len(y)}")
    xs: list[float] = []
    ys: list[float] = []
    for a, b in zip(x, y, strict=True):
        if a == a and b == b:  # neither is NaN
            xs.append(a)
            ys.append(b)
    return xs, ys


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean of the non-NaN values (NaN if there are none)."""
    vals = [v for v in values if v == v]
    return math.fsum(vals) / len(vals) if vals else _NAN


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n − 1) of the non-NaN values (NaN below two values)."""
    vals = [v for v in values if v == v]
    if len(vals) < 2:
        return _NAN
    m = math.fsum(vals) / len(vals)
    return math.sqrt(math.fsum((v - m) ** 2 for v in vals) / (len(vals) - 1))


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation between order statistics.

    The position of the quantile in the sorted values ``v_0 ≤ … ≤ v_{n−1}`` is ``h = q·(n−1)``
    and the result ``v_⌊h⌋ + (h − ⌊h⌋)·(v_⌊h⌋+1 − v_⌊h⌋)`` (Hyndman–Fan type 7, NumPy's
    default). NaN for no values.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    vals = sorted(v for v in values if v == v)
    if not vals:
        return _NAN
    h = q * (len(vals) - 1)
    lo = math.floor(h)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (h - lo) * (vals[hi] - vals[lo])


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation of the pairs where neither value is NaN."""
    xs, ys = _pairs(x, y)
    return _pearson(xs, ys)


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    n = len(xs)
    if n < 3:
        return _NAN
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True))
    sxx = math.fsum((a - mx) ** 2 for a in xs)
    syy = math.fsum((b - my) ** 2 for b in ys)
    if sxx <= 0.0 or syy <= 0.0:
        return _NAN
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank (for Spearman's ρ)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        avg = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            out[order[k]] = avg
        i = j + 1
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation ρ (Pearson of average ranks) of the non-NaN pairs."""
    xs, ys = _pairs(x, y)
    return _pearson(ranks(xs), ranks(ys))


def lagged_correlations(
    x: Sequence[float], y: Sequence[float], max_lag: int, *, rank: bool = True
) -> list[tuple[int, float]]:
    """``c(L) = corr(x[t+L], y[t])`` for ``L = −max_lag … max_lag`` (samples).

    With equally spaced samples, a peak at ``L > 0`` means ``x`` **lags** ``y`` by ``L``
    samples (``x`` repeats what ``y`` did ``L`` samples earlier); ``L < 0`` means ``x`` leads.

    Args:
        x: the first series.
        y: the second series, on the same grid.
        max_lag: the largest lag magnitude, in samples.
        rank: Spearman (True) or Pearson (False) correlation at each lag.

    Returns:
        ``(lag, correlation)`` for every lag, in increasing lag order.
    """
    if len(x) != len(y):
        raise ValueError(f"series of different lengths: {len(x)} and {len(y)}")
    n = len(x)
    corr = spearman if rank else pearson
    out: list[tuple[int, float]] = []
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            xs, ys = x[lag:], y[: n - lag]
        else:
            xs, ys = x[: n + lag], y[-lag:]
        out.append((lag, corr(xs, ys)))
    return out


def peak_lag(correlations: Sequence[tuple[int, float]]) -> tuple[int, float]:
    """The ``(lag, correlation)`` with the highest correlation (the smallest |lag| on ties).

    ``(0, NaN)`` if every correlation is NaN.
    """
    best: tuple[int, float] = (0, _NAN)
    for lag, c in correlations:
        if c != c:
            continue
        if best[1] != best[1] or c > best[1] or (c == best[1] and abs(lag) < abs(best[0])):
            best = (lag, c)
    return best


@dataclass(frozen=True, slots=True)
class OlsFit:
    """Ordinary least squares ``y = alpha + beta·x + ε``.

    Attributes:
        n: points used.
        alpha: intercept.
        beta: slope.
        r2: coefficient of determination.
        t_beta: the slope's t-statistic (classical i.i.d. standard error).
    """

    n: int
    alpha: float
    beta: float
    r2: float
    t_beta: float


def ols(x: Sequence[float], y: Sequence[float]) -> OlsFit:
    """OLS fit of ``y`` on ``x`` with an intercept, over the non-NaN pairs."""
    xs, ys = _pairs(x, y)
    n = len(xs)
    if n < 3:
        return OlsFit(n, _NAN, _NAN, _NAN, _NAN)
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxx = math.fsum((a - mx) ** 2 for a in xs)
    syy = math.fsum((b - my) ** 2 for b in ys)
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True))
    if sxx <= 0.0:
        return OlsFit(n, _NAN, _NAN, _NAN, _NAN)
    beta = sxy / sxx
    alpha = my - beta * mx
    sse = max(0.0, syy - beta * sxy)
    r2 = 1.0 - sse / syy if syy > 0.0 else _NAN
    se = math.sqrt(sse / (n - 2) / sxx)
    t_beta = beta / se if se > 0.0 else math.copysign(math.inf, beta)
    return OlsFit(n, alpha, beta, r2, t_beta)


@dataclass(frozen=True, slots=True)
class LogitFit:
    """Logistic regression ``P(y = 1 | x) = 1/(1 + exp(−(x0 + x1·x)))``.

    Attributes:
        n: points used.
        x0: intercept.
        x1: slope.
        converged: Newton's method converged.
    """

    n: int
    x0: float
    x1: float
    converged: bool


def logistic_fit(x: Sequence[float], y: Sequence[bool], *, iterations: int = 50) -> LogitFit:
    """Maximum-likelihood logistic regression of ``y`` on ``x`` (Newton–Raphson).

    Args:
        x: the regressor (NaN points are skipped).
        y: the binary outcomes.
        iterations: at most this many Newton steps.

    Returns:
        The fit; NaN coefficients if there are fewer than two points of each outcome or the
        data separate perfectly.
    """
    pts = [(a, 1.0 if b else 0.0) for a, b in zip(x, y, strict=True) if a == a]
    n = len(pts)
    ones = sum(1 for _, b in pts if b)
    if ones < 2 or n - ones < 2:
        return LogitFit(n, _NAN, _NAN, False)
    b0 = b1 = 0.0
    for _ in range(iterations):
        g0 = g1 = h00 = h01 = h11 = 0.0
        for a, b in pts:
            z = b0 + b1 * a
            p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
            r = b - p
            w = p * (1.0 - p)
            g0 += r
            g1 += r * a
            h00 += w
            h01 += w * a
            h11 += w * a * a
        det = h00 * h11 - h01 * h01
        if not det > 1e-12:
            return LogitFit(n, _NAN, _NAN, False)
        d0 = (h11 * g0 - h01 * g1) / det
        d1 = (h00 * g1 - h01 * g0) / det
        b0 += d0
        b1 += d1
        if abs(b1) > 1e6:
            return LogitFit(n, _NAN, _NAN, False)
        if abs(d0) < 1e-10 and abs(d1) < 1e-10:
            return LogitFit(n, b0, b1, True)
    return LogitFit(n, b0, b1, False)
