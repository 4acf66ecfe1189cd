"""``L2Book`` against a naive reference book that recomputes everything from scratch.

The reference keeps one plain ``dict`` (``Decimal`` price → ``Decimal`` qty) per side and derives
every measure from it on demand, using the band-edge expressions documented in
``service/mmradar/book/l2book.py`` (bids ``price >= mid * (1.0 - bps / 1e4)``, asks
``price <= mid * (1.0 + bps / 1e4)``), so that a level sitting exactly on an edge is classified
the same way. Notionals are summed exactly in ``Decimal`` and compared with
``math.isclose(rel_tol=1e-9, abs_tol=1e-9)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmradar.book.l2book import L2Book
from mmradar.model import BAND_BPS, Side

# -- the naive reference ---------------------------------------------------------------------------


class RefBook:
    """Plain dicts; every read recomputes from scratch."""

    def __init__(self, bands_bps: Sequence[int] = BAND_BPS) -> None:
        self.bands_bps = tuple(bands_bps)
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def copy(self) -> RefBook:
        other = RefBook(self.bands_bps)
        other.bids = dict(self.bids)
        other.asks = dict(self.asks)
        return other

    @staticmethod
    def _set(side: dict[Decimal, Decimal], levels: Sequence[Sequence[str]]) -> None:
        for p, q in levels:
            price, qty = Decimal(p), Decimal(q)
            if qty == 0:
                side.pop(price, None)
            else:
                side[price] = qty

    def load(self, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        self.bids, self.asks = {}, {}
        self._set(self.bids, bids)
        self._set(self.asks, asks)

    def apply(self, bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> None:
        self._set(self.bids, bids)
        self._set(self.asks, asks)

    def clear(self) -> None:
        self.bids, self.asks = {}, {}

    def truncate(self, depth: int) -> None:
        self.bids = dict(sorted(self.bids.items(), reverse=True)[:depth])
        self.asks = dict(sorted(self.asks.items())[:depth])

    def items(self, side: Side) -> list[tuple[float, float]]:
        if side is Side.BID:
            return [(float(p), float(q)) for p, q in sorted(self.bids.items(), reverse=True)]
        return [(float(p), float(q)) for p, q in sorted(self.asks.items())]

    def best(self, side: Side) -> tuple[float, float] | None:
        items = self.items(side)
        return items[0] if items else None

    def mid(self) -> float:
        b, a = self.best(Side.BID), self.best(Side.ASK)
        if b is None or a is None:
            return math.nan
        return (b[0] + a[0]) / 2.0

    def microprice(self) -> float:
        b, a = self.best(Side.BID), self.best(Side.ASK)
        if b is None or a is None:
            return math.nan
        return (b[0] * a[1] + a[0] * b[1]) / (a[1] + b[1])

    def spread_bps(self) -> float:
        b, a = self.best(Side.BID), self.best(Side.ASK)
        if b is None or a is None:
            return math.nan
        return (a[0] - b[0]) / ((a[0] + b[0]) / 2.0) * 1e4

    def crossed(self) -> bool:
        b, a = self.best(Side.BID), self.best(Side.ASK)
        return b is not None and a is not None and b[0] >= a[0]

    def depth(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        mid = self.mid()
        bids: list[float] = []
        asks: list[float] = []
        for bps in self.bands_bps:
            x = bps / 1e4
            lo = mid * (1.0 - x)
            hi = mid * (1.0 + x)
            # NaN mid: every comparison is False, so both sums are 0.
            bids.append(
                float(sum((p * q for p, q in self.bids.items() if float(p) >= lo), Decimal()))
            )
            asks.append(
                float(sum((p * q for p, q in self.asks.items() if float(p) <= hi), Decimal()))
            )
        return tuple(bids), tuple(asks)

    def imbalance(self) -> tuple[float, ...]:
        bids, asks = self.depth()
        return tuple(
            (b - a) / (b + a) if b + a > 0 else 0.0 for b, a in zip(bids, asks, strict=True)
        )


# -- comparison helpers ----------------------------------------------------------------------------


def close(a: float, b: float, rel: float = 1e-9, abs_: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_top(book: L2Book, ref: RefBook) -> None:
    """Everything except depth: touch, mid, microprice, spread, counts, top(n), crossed."""
    for side in (Side.BID, Side.ASK):
        expected = ref.items(side)
        assert book.levels(side) == len(expected), side
        assert book.items(side) == expected, side
        for n in (0, 1, 2, 3, len(expected), len(expected) + 5):
            assert book.top(side, n) == expected[:n], (side, n)
    assert book.best_bid() == ref.best(Side.BID)
    assert book.best_ask() == ref.best(Side.ASK)
    rb, ra = ref.best(Side.BID), ref.best(Side.ASK)
    assert same_float(book.best_bid_price(), rb[0] if rb else math.nan)
    assert same_float(book.best_ask_price(), ra[0] if ra else math.nan)
    assert same_float(book.mid(), ref.mid())
    assert close(book.microprice(), ref.microprice(), rel=1e-12, abs_=1e-12)
    assert close(book.spread_bps(), ref.spread_bps(), rel=1e-9, abs_=1e-9)
    assert book.is_crossed() is ref.crossed()


def check_depth(book: L2Book, ref: RefBook) -> None:
    """depth_notional() per band and side, monotonicity, and depth_imbalance()."""
    got_bids, got_asks = book.depth_notional()
    want_bids, want_asks = ref.depth()
    assert len(got_bids) == len(got_asks) == len(ref.bands_bps)
    for i, bps in enumerate(ref.bands_bps):
        assert close(got_bids[i], want_bids[i]), ("bid", bps, got_bids, want_bids)
        assert close(got_asks[i], want_asks[i]), ("ask", bps, got_asks, want_asks)
    for sums in (got_bids, got_asks):
        for narrow, wide in itertools.pairwise(sums):
            assert narrow <= wide + 1e-9, sums  # widening a band never loses depth
    got_imb = book.depth_imbalance()
    want_imb = ref.imbalance()
    for i in range(len(ref.bands_bps)):
        assert close(got_imb[i], want_imb[i]), (i, got_imb, want_imb)


# -- strategies ------------------------------------------------------------------------------------

# Decimal text on a small grid around 100 so levels collide (updates, deletes, re-inserts) and sit
# on or near the band edges (10/50/100/200 bps of mid ≈ 100 → ±0.1, ±0.5, ±1, ±2). Some prices
# have two spellings of the same number ("100" / "100.00"): they are one level.
PRICES = [
    "97.9",
    "98",
    "98.00",
    "99",
    "99.5",
    "99.50",
    "99.80",
    "99.85",
    "99.9",
    "99.90",
    "99.95",
    "99.97",
    "99.98",
    "99.99",
    "100",
    "100.00",
    "100.01",
    "100.02",
    "100.05",
    "100.1",
    "100.10",
    "100.15",
    "100.2",
    "100.5",
    "101",
    "102",
    "102.1",
]
QTYS = ["0", "0.00000000", "0.0", "1.5", "0.1", "0.2", "0.3", "2", "0.00100000", "12.75"]

level = st.tuples(st.sampled_from(PRICES), st.sampled_from(QTYS))
levels = st.lists(level, max_size=6)

op = st.one_of(
    st.tuples(st.just("apply"), levels, levels),
    st.tuples(st.just("apply"), levels, st.just([])),
    st.tuples(st.just("apply"), st.just([]), levels),
    st.tuples(st.just("read")),
    st.tuples(st.just("read")),
    st.tuples(st.just("snapshot"), levels, levels),
    st.tuples(st.just("truncate"), st.integers(0, 4)),
    st.tuples(st.just("clear")),
)
ops = st.lists(op, min_size=1, max_size=40)

Step = tuple[Any, ...]

SETTINGS = settings(max_examples=200, deadline=None)


def run(book: L2Book, ref: RefBook, steps: list[Step]) -> None:
    check_top(book, ref)
    for step in steps:
        kind = step[0]
        if kind == "apply":
            book.apply(step[1], step[2])
            ref.apply(step[1], step[2])
        elif kind == "snapshot":
            book.load(step[1], step[2])
            ref.load(step[1], step[2])
        elif kind == "truncate":
            book.truncate(step[1])
            ref.truncate(step[1])
        elif kind == "clear":
            book.clear()
            ref.clear()
        elif kind == "read":
            check_depth(book, ref)
        check_top(book, ref)
    check_depth(book, ref)


# -- properties ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rebase_every", [3, 4096])
@SETTINGS
@given(steps=ops)
def test_book_matches_reference(rebase_every: int, steps: list[Step]) -> None:
    run(L2Book(rebase_every=rebase_every), RefBook(), steps)


@SETTINGS
@given(steps=ops)
def test_book_matches_reference_custom_bands(steps: list[Step]) -> None:
    bands = (1, 5, 20, 80, 300)
    run(L2Book(bands_bps=bands, rebase_every=5), RefBook(bands), steps)


@SETTINGS
@given(
    first=st.tuples(levels, levels),
    moves=st.lists(st.tuples(levels, levels), min_size=1, max_size=12),
    read_mask=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_lazy_edges_after_multi_step_mid_travel(
    first: tuple[list[tuple[str, str]], list[tuple[str, str]]],
    moves: list[tuple[list[tuple[str, str]], list[tuple[str, str]]]],
    read_mask: list[bool],
) -> None:
    """Depth is read only at some moments, so edges jump over several mid moves at once."""
    book, ref = L2Book(), RefBook()
    book.load(*first)
    ref.load(*first)
    check_depth(book, ref)
    for (bids, asks), read in zip(moves, read_mask, strict=False):
        book.apply(bids, asks)
        ref.apply(bids, asks)
        if read:
            check_depth(book, ref)
    check_top(book, ref)
    check_depth(book, ref)


@SETTINGS
@given(steps=st.lists(st.tuples(levels, levels, st.booleans()), min_size=1, max_size=30))
def test_crossed_free_sequence_never_reports_crossed(
    steps: list[tuple[list[tuple[str, str]], list[tuple[str, str]], bool]],
) -> None:
    """Only updates that keep the (reference) book uncrossed are applied: the book agrees."""
    book, ref = L2Book(), RefBook()
    applied = 0
    for bids, asks, read in steps:
        candidate = ref.copy()
        candidate.apply(bids, asks)
        if candidate.crossed():
            continue  # the venue would never publish this
        ref = candidate
        book.apply(bids, asks)
        applied += 1
        assert not book.is_crossed()
        bb, ba = book.best_bid_price(), book.best_ask_price()
        if not (math.isnan(bb) or math.isnan(ba)):
            assert bb < book.mid() < ba
            assert book.spread_bps() > 0.0
        if read:
            check_depth(book, ref)
        check_top(book, ref)


@SETTINGS
@given(
    bids=levels,
    asks=levels,
    n=st.integers(0, 8),
    bound=st.one_of(
        st.sampled_from(PRICES), st.decimals(min_value="0.5", max_value="200", places=2).map(str)
    ),
)
def test_near_notional_is_the_sum_over_top_up_to_the_bound(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], n: int, bound: str
) -> None:
    book = L2Book()
    book.load(bids, asks)
    b = float(bound)
    for side, inside in ((Side.BID, lambda p: p >= b), (Side.ASK, lambda p: p <= b)):
        want = 0.0
        for price, qty in book.top(side, n):
            if not inside(price):
                break
            want += price * qty
        assert book.near_notional(side is Side.BID, n, b) == want  # same terms, same order


@SETTINGS
@given(bids=levels, asks=levels, extra=st.lists(st.integers(1, 1000), min_size=1, max_size=6))
def test_depth_never_decreases_as_band_widens(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], extra: list[int]
) -> None:
    bands = tuple(sorted(set(extra)))
    book = L2Book(bands_bps=bands)
    book.load(bids, asks)
    got_bids, got_asks = book.depth_notional()
    for sums in (got_bids, got_asks):
        assert all(a <= b + 1e-9 for a, b in itertools.pairwise(sums))
    ref = RefBook(bands)
    ref.load(bids, asks)
    check_depth(book, ref)


# -- table-driven tests ----------------------------------------------------------------------------

BASE_BIDS = [["99.99", "1.5"], ["99.95", "2"], ["99.5", "0.3"], ["98", "12.75"]]
BASE_ASKS = [["100.01", "0.1"], ["100.05", "2"], ["100.5", "0.2"], ["102", "1.5"]]


def loaded(rebase_every: int = 4096) -> tuple[L2Book, RefBook]:
    book, ref = L2Book(rebase_every=rebase_every), RefBook()
    book.load(BASE_BIDS, BASE_ASKS)
    ref.load(BASE_BIDS, BASE_ASKS)
    return book, ref


MALFORMED_LEVELS = [
    pytest.param([["abc", "1"]], ValueError, id="price-not-a-number"),
    pytest.param([["1", "abc"]], ValueError, id="qty-not-a-number"),
    pytest.param([["1"]], IndexError, id="missing-qty"),
    pytest.param([[]], IndexError, id="empty-level"),
    pytest.param([[None, "1"]], TypeError, id="price-null"),
    pytest.param([["1", None]], TypeError, id="qty-null"),
    pytest.param([["99.98", "1"], ["abc", "1"]], ValueError, id="valid-then-bad"),
    pytest.param([["99.99", "0"], ["1"]], IndexError, id="delete-then-bad"),
]
VALID_OTHER_SIDE = {
    Side.BID: [["99.98", "5"], ["99.99", "0"]],  # valid: would insert and delete
    Side.ASK: [["100.02", "5"], ["100.01", "0"]],
}


@pytest.mark.parametrize("bad_side", [Side.BID, Side.ASK])
@pytest.mark.parametrize(("bad", "exc"), MALFORMED_LEVELS)
def test_apply_malformed_level_raises_with_consistent_state(
    bad_side: Side, bad: list[list[Any]], exc: type[Exception]
) -> None:
    # The contract: apply() raises on the first malformed level; the levels before it are
    # applied (bids before asks), and the caller treats the book as invalid (the synchroniser
    # clears it and resyncs). The book's own state must stay consistent all the same.
    book, ref = loaded()
    book.depth_notional()  # place the edges first
    if bad_side is Side.BID:
        bids, asks = bad, VALID_OTHER_SIDE[Side.ASK]
    else:
        bids, asks = VALID_OTHER_SIDE[Side.BID], bad
    with pytest.raises(exc):
        book.apply(bids, asks)
    if bad_side is Side.BID:
        ref.apply(bad[:-1], [])
    else:
        ref.apply(VALID_OTHER_SIDE[Side.BID], bad[:-1])
    check_top(book, ref)
    check_depth(book, ref)
    # and the book still works normally afterwards
    book.apply([["99.98", "5"]], [])
    ref.apply([["99.98", "5"]], [])
    check_top(book, ref)
    check_depth(book, ref)


def test_apply_rejects_level_that_is_a_string() -> None:
    book, ref = loaded()
    with pytest.raises((ValueError, TypeError, IndexError)):
        book.apply(["100.5", "22"], [])  # a level, not a list of levels
    check_top(book, ref)


def test_imbalance_of_empty_band_is_zero() -> None:
    # mid 100, spread 40 bps: the 10 bps band [99.9, 100.1] holds no level on either side.
    book, ref = L2Book(rebase_every=10**9), RefBook()
    book.load([["99.80", "1"]], [["100.20", "1"]])
    ref.load([["99.80", "1"]], [["100.20", "1"]])
    book.depth_notional()
    # two bids enter the band (moving the mid) and leave again, between depth reads
    book.apply([["99.91", "0.3"], ["99.92", "0.1"]], [])
    book.apply([["99.91", "0"], ["99.92", "0"]], [])
    check_top(book, ref)
    assert ref.imbalance()[0] == 0.0
    bids, asks = book.depth_notional()
    assert bids[0] == 0.0  # an empty band is exactly 0, not float residue
    assert asks[0] == 0.0
    assert book.depth_imbalance()[0] == 0.0  # ... but the imbalance is +1.0


def test_load_replaces_everything_and_skips_zero_quantities() -> None:
    book, ref = loaded()
    book.depth_notional()
    snap_b = [["99.9", "1"], ["99.8", "0.00000000"], ["99.7", "2"], ["99.7", "0"]]
    snap_a = [["100.3", "0"], ["100.4", "3"]]
    book.load(snap_b, snap_a)
    ref.load(snap_b, snap_a)
    assert book.items(Side.BID) == [(99.9, 1.0)]
    assert book.items(Side.ASK) == [(100.4, 3.0)]
    check_top(book, ref)
    check_depth(book, ref)


def test_same_number_different_text_is_one_level() -> None:
    book = L2Book()
    book.apply([["100", "1"], ["100.00", "2"], ["100.000000", "3"]], [["101.10", "1"]])
    assert book.items(Side.BID) == [(100.0, 3.0)]
    book.apply([["100.0", "0.00000000"]], [])
    assert book.levels(Side.BID) == 0


def test_delete_of_absent_level_is_a_noop() -> None:
    book, ref = loaded()
    before = book.depth_notional()
    book.apply([["99.01", "0"], ["99.02", "0.00000000"]], [["101.01", "0"]])
    check_top(book, ref)
    assert book.depth_notional() == before


@pytest.mark.parametrize(
    ("depth", "bids", "asks"),
    [
        (0, [], []),
        (1, [(99.99, 1.5)], [(100.01, 0.1)]),
        (
            3,
            [(99.99, 1.5), (99.95, 2.0), (99.5, 0.3)],
            [(100.01, 0.1), (100.05, 2.0), (100.5, 0.2)],
        ),
        (4, None, None),
        (10, None, None),
    ],
)
def test_truncate_keeps_best_levels(
    depth: int, bids: list[tuple[float, float]] | None, asks: list[tuple[float, float]] | None
) -> None:
    book, ref = loaded()
    full_bids, full_asks = book.items(Side.BID), book.items(Side.ASK)
    book.depth_notional()  # edges placed: truncation must fix the band sums too
    book.truncate(depth)
    ref.truncate(depth)
    assert book.items(Side.BID) == (full_bids if bids is None else bids)
    assert book.items(Side.ASK) == (full_asks if asks is None else asks)
    check_top(book, ref)
    check_depth(book, ref)


def test_clear_empties_everything_and_book_is_reusable() -> None:
    book, ref = loaded()
    book.depth_notional()
    book.clear()
    ref.clear()
    assert book.levels(Side.BID) == book.levels(Side.ASK) == 0
    assert book.best_bid() is None and book.best_ask() is None
    assert math.isnan(book.mid()) and math.isnan(book.microprice())
    assert math.isnan(book.spread_bps())
    n = len(BAND_BPS)
    assert book.depth_notional() == ((0.0,) * n, (0.0,) * n)
    assert book.depth_imbalance() == (0.0,) * n
    # rebuilt by deltas only (no load): edges must be re-placed from scratch
    book.apply([["99.9", "1"], ["99.0", "2"]], [["100.1", "3"], ["101.5", "4"]])
    ref.apply([["99.9", "1"], ["99.0", "2"]], [["100.1", "3"], ["101.5", "4"]])
    check_top(book, ref)
    check_depth(book, ref)


@pytest.mark.parametrize(
    ("bids", "asks"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([["99.99", "1"]], [], id="bids-only"),
        pytest.param([], [["100.01", "1"]], id="asks-only"),
    ],
)
def test_empty_side_gives_nans_and_zero_depth(bids: list[list[str]], asks: list[list[str]]) -> None:
    book = L2Book()
    book.load(bids, asks)
    assert (book.best_bid() is None) == (not bids)
    assert (book.best_ask() is None) == (not asks)
    assert math.isnan(book.best_bid_price()) == (not bids)
    assert math.isnan(book.best_ask_price()) == (not asks)
    for value in (book.mid(), book.microprice(), book.spread_bps()):
        assert math.isnan(value)
    assert not book.is_crossed()
    n = len(BAND_BPS)
    assert book.depth_notional() == ((0.0,) * n, (0.0,) * n)
    assert book.depth_imbalance() == (0.0,) * n
    assert book.top(Side.BID, 5) == [(99.99, 1.0)] * len(bids)
    assert book.top(Side.ASK, 5) == [(100.01, 1.0)] * len(asks)


def test_side_emptied_and_refilled_between_reads() -> None:
    """Mid goes NaN (edges reset) and comes back: the band sums are rebuilt correctly."""
    book, ref = loaded()
    check_depth(book, ref)
    remove_asks = [[p, "0"] for p, _ in BASE_ASKS]
    book.apply([], remove_asks)
    ref.apply([], remove_asks)
    check_top(book, ref)
    check_depth(book, ref)
    book.apply([["99.999", "4"]], [["100.2", "1"], ["100.3", "2"]])
    ref.apply([["99.999", "4"]], [["100.2", "1"], ["100.3", "2"]])
    check_top(book, ref)
    check_depth(book, ref)


def test_microprice_leans_toward_thinner_side() -> None:
    book = L2Book()
    book.load([["100", "9"]], [["101", "1"]])
    assert book.microprice() == pytest.approx((100 * 1 + 101 * 9) / 10)
    assert book.microprice() > book.mid()
    assert book.spread_bps() == pytest.approx(1e4 * 1 / 100.5)


def test_band_edge_level_exactly_on_edge_is_included() -> None:
    # mid = 100 exactly; the 100 bps edges are 100 * 0.99 and 100 * 1.01 as floats.
    book = L2Book(bands_bps=(100,))
    lo, hi = 100.0 * (1.0 - 100 / 1e4), 100.0 * (1.0 + 100 / 1e4)
    book.load([["99.5", "1"], [repr(lo), "2"]], [["100.5", "1"], [repr(hi), "3"]])
    assert book.mid() == 100.0
    (bid,), (ask,) = book.depth_notional()
    assert bid == pytest.approx(99.5 + 2 * lo)
    assert ask == pytest.approx(100.5 + 3 * hi)
    # one ulp outside: excluded
    book.load([["99.5", "1"], [repr(math.nextafter(lo, 0)), "2"]], [["100.5", "1"]])
    assert book.depth_notional()[0] == (pytest.approx(99.5),)
