"""``L2Book.set_contract``: venue quantities in contracts, measures in base units.

A naive ``Decimal`` reference converts each level exactly (linear ``qty × m``, inverse
``qty × m / price``) and derives the touch and the band depths from scratch with the band-edge
expressions of ``book/l2book.py``; the book must agree (``rel_tol=1e-9``) and keep each level's
text exactly as sent.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmradar.book.l2book import L2Book
from mmradar.model import BAND_BPS, Side

PRICES = st.integers(min_value=99_000, max_value=101_000).map(lambda t: f"{t / 10:.1f}")
SIZES = st.one_of(
    st.just("0"), st.integers(min_value=1, max_value=500_000).map(lambda n: f"{n / 100:.2f}")
)
SIDE = st.lists(st.tuples(PRICES, SIZES), max_size=30)
MULTIPLIERS = st.sampled_from(["0.01", "0.1", "1", "10", "100", "0.0001"])


def reference(
    levels: dict[Decimal, tuple[str, str]], mult: Decimal, inverse: bool
) -> dict[Decimal, Decimal]:
    return {
        p: Decimal(q) * mult / p if inverse else Decimal(q) * mult for p, (_, q) in levels.items()
    }


def set_levels(side: dict[Decimal, tuple[str, str]], levels: list[tuple[str, str]]) -> None:
    for p, q in levels:
        if Decimal(q) == 0:
            side.pop(Decimal(p), None)
        else:
            side[Decimal(p)] = (p, q)


@settings(max_examples=150, deadline=None)
@given(
    snapshot=st.tuples(SIDE, SIDE),
    updates=st.lists(st.tuples(SIDE, SIDE), max_size=8),
    mult_text=MULTIPLIERS,
    inverse=st.booleans(),
)
def test_contract_books_equal_a_converted_reference(
    snapshot: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    updates: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]],
    mult_text: str,
    inverse: bool,
) -> None:
    mult = Decimal(mult_text)
    book = L2Book(keep_text=True)
    book.set_contract(float(mult), inverse)
    bids: dict[Decimal, tuple[str, str]] = {}
    asks: dict[Decimal, tuple[str, str]] = {}
    book.load(*snapshot)
    set_levels(bids, snapshot[0])
    set_levels(asks, snapshot[1])
    for b, a in updates:
        book.apply(b, a)
        set_levels(bids, b)
        set_levels(asks, a)
    ref_bids, ref_asks = reference(bids, mult, inverse), reference(asks, mult, inverse)
    for side, ref, texts in ((Side.BID, ref_bids, bids), (Side.ASK, ref_asks, asks)):
        order = sorted(ref, reverse=side is Side.BID)
        got = book.items(side)
        assert [p for p, _ in got] == [float(p) for p in order]
        for (_, q), p in zip(got, order, strict=True):
            assert math.isclose(q, float(ref[p]), rel_tol=1e-12)
        # The venue's text is kept as sent (what OKX's checksum reads).
        assert book.text_top(side, len(order)) == [texts[p] for p in order]
    if not ref_bids or not ref_asks or max(ref_bids) >= min(ref_asks):
        return  # no two-sided, uncrossed book: no depth to compare
    mid = (float(max(ref_bids)) + float(min(ref_asks))) / 2.0
    got_bids, got_asks = book.depth_notional()
    for i, band in enumerate(BAND_BPS):
        x = band / 1e4
        want_bid = sum(
            (p * q for p, q in ref_bids.items() if float(p) >= mid * (1.0 - x)), Decimal()
        )
        want_ask = sum(
            (p * q for p, q in ref_asks.items() if float(p) <= mid * (1.0 + x)), Decimal()
        )
        assert math.isclose(got_bids[i], float(want_bid), rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(got_asks[i], float(want_ask), rel_tol=1e-9, abs_tol=1e-9)
        if inverse:  # an inverse contract's notional is its quote value, sz × m
            value = sum(
                (Decimal(q) * mult for p, (_, q) in bids.items() if float(p) >= mid * (1.0 - x)),
                Decimal(),
            )
            assert math.isclose(got_bids[i], float(value), rel_tol=1e-9, abs_tol=1e-9)


def test_default_is_base_units_and_contract_is_set_once_before_levels() -> None:
    book = L2Book()
    assert book.contract == (1.0, False)
    book.load([["100.5", "2"]], [["101", "3"]])
    assert book.best_bid() == (100.5, 2.0)
    with pytest.raises(ValueError, match="already has levels"):
        book.set_contract(0.01)
    book.clear()
    book.set_contract(0.01)
    book.apply([["100.5", "2"]], [])
    assert book.best_bid() == (100.5, 0.02)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="finite and > 0"):
            L2Book().set_contract(bad)


def test_an_inverse_level_without_a_positive_price_is_malformed() -> None:
    # A ValueError: the pipeline counts the frame as malformed and resyncs, never crashes.
    book = L2Book()
    book.set_contract(100.0, inverse=True)
    with pytest.raises(ValueError, match="price > 0"):
        book.apply([["0", "5"]], [])
    with pytest.raises(ValueError, match="price > 0"):
        book.load([["-1", "5"]], [])
