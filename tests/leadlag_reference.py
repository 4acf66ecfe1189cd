"""Plain references for the flow lead–lag estimator (docs/signals.md), written without the
service's code: Pearson correlation by its textbook formula, recomputed from scratch."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["naive_correlations", "naive_peak"]


def naive_correlations(
    a: Sequence[float], b: Sequence[float], window: int, max_lag: int, min_active: int
) -> dict[int, float]:
    """Per lag ``-max_lag … max_lag``: the correlation of ``(a[t - lag], b[t])`` over the pairs
    with both indices among the last ``window`` and both values present (not NaN); NaN with
    fewer than ``max(2, min_active)`` non-zero values on either side, fewer than 3 pairs, or a
    constant side."""
    last = len(a) - 1
    first = max(0, last - window + 1)
    need = max(2, min_active)
    out: dict[int, float] = {}
    for lag in range(-max_lag, max_lag + 1):
        xs: list[float] = []
        ys: list[float] = []
        for t in range(first, last + 1):
            i = t - lag
            if i < first or i > last:
                continue
            x, y = a[i], b[t]
            if math.isnan(x) or math.isnan(y):
                continue
            xs.append(x)
            ys.append(y)
        n = len(xs)
        if n < 3 or sum(x != 0 for x in xs) < need or sum(y != 0 for y in ys) < need:
            out[lag] = math.nan
            continue
        mx = sum(xs) / n
        my = sum(ys) / n
        cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        vx = sum((x - mx) ** 2 for x in xs)
        vy = sum((y - my) ** 2 for y in ys)
        out[lag] = cov / math.sqrt(vx * vy) if vx > 0 and vy > 0 else math.nan
    return out


def naive_peak(corrs: dict[int, float]) -> tuple[float, float]:
    """``(lag, correlation)`` of the highest correlation; ties: the smaller ``|lag|``, then the
    positive lag. ``(NaN, NaN)`` when every lag is NaN."""
    finite = [(r, -abs(lag), lag) for lag, r in corrs.items() if not math.isnan(r)]
    if not finite:
        return math.nan, math.nan
    r, _, lag = max(finite)
    return float(lag), r
