"""CKS, Gould–Bonart and Avellaneda–Stoikov checks on constructed inputs with known answers."""

from __future__ import annotations

import random

import pytest

from mmradar.score.validation import L1Path, as_benchmark, cks_regression, queue_imbalance

S = 1_000_000_000
T0 = 1_700_000_000 * S


def _walk(steps: int, q: float, seed: int) -> L1Path:
    """A one-tick book whose touch moves ±1 tick each 0.5 s with size ``q`` on both sides."""
    rng = random.Random(seed)
    path = L1Path(tick=0.01)
    bid = 10_000
    path.append(T0, bid / 100, q, (bid + 1) / 100, q)
    for n in range(1, steps):
        bid += 1 if rng.random() < 0.5 else -1
        path.append(T0 + n * S // 2, bid / 100, q, (bid + 1) / 100, q)
    return path


def test_cks_slope_is_one_over_twice_the_depth_on_a_stylised_book() -> None:
    # Each one-tick up move has e_n = q_b,n + q_a,n−1 = 2q (down: −2q), so ΔP = OFI/(2q)
    # exactly: β = 1/(2D) with D = q, R² = 1, and ĉ = β·D = ½ (CKS's stylised value).
    q = 3.0
    res = cks_regression(_walk(4000, q, seed=5), 10.0, window_s=300.0)
    assert res.fit.beta == pytest.approx(1 / (2 * q))
    assert res.fit.r2 == pytest.approx(1.0)
    assert res.c_hat == pytest.approx(0.5)
    assert res.fit.n == 199  # 2000 s of states: the intervals after the first one's
    assert res.window_beta_pos_sig == pytest.approx(1.0)
    assert all(r2 == pytest.approx(1.0) for r2 in res.window_r2)


def test_cks_depth_elasticity_on_books_of_different_depth() -> None:
    # Windows with depth q have β = 1/(2q): log β = −log 2 − log q, so λ = 1.
    path = L1Path(tick=0.01)
    bid = 10_000
    t = T0
    rng = random.Random(2)
    for q in (1.0, 2.0, 4.0, 8.0):
        for _ in range(1200):
            bid += 1 if rng.random() < 0.5 else -1
            path.append(t, bid / 100, q, (bid + 1) / 100, q)
            t += S // 2
    res = cks_regression(path, 10.0, window_s=600.0)
    assert res.lambda_hat == pytest.approx(1.0, abs=0.05)


def test_queue_imbalance_predicts_a_rule_based_market() -> None:
    # The heavier queue always wins: the next mid move goes toward the smaller queue's side.
    rng = random.Random(4)
    path = L1Path(tick=0.01)
    bid = 10_000
    t = T0
    for _ in range(3000):
        qb, qa = rng.uniform(0.1, 5), rng.uniform(0.1, 5)
        path.append(t, bid / 100, qb, (bid + 1) / 100, qa)
        t += S // 10
        bid += 1 if qb > qa else -1
        path.append(t, bid / 100, 1.0, (bid + 1) / 100, 1.0)
        t += S // 10
    gb = queue_imbalance(path)
    assert gb.hit_rate == pytest.approx(1.0)
    assert gb.hit_rate_one_tick == pytest.approx(1.0)
    assert gb.monotone
    p_low = gb.buckets[0][3]
    p_high = gb.buckets[-1][3]
    assert p_low < 0.5 < p_high


def test_avellaneda_stoikov_inventory_strategy_reduces_dispersion() -> None:
    inv, sym = as_benchmark(paths=300, seed=3)
    assert inv.spread == pytest.approx(1.29, abs=0.005)
    # the paper: sd(q_T) 2.80 vs 8.66, sd(profit) 5.89 vs 13.43
    assert inv.q_sd < 0.6 * sym.q_sd
    assert inv.profit_sd < 0.7 * sym.profit_sd
    assert 1.5 < inv.q_sd < 4.5
