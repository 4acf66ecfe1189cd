"""Scripted depth-event sequences through ``BookSync`` with the real Binance venues.

Sequence rules under test (docs/venues/binance.md):

* spot: drop ``u <= lastUpdateId``; apply when ``U <= id + 1 <= u``; live ``U == prev_u + 1``;
* USD-M: drop ``u < lastUpdateId``; first applied ``U <= lastUpdateId <= u``; then ``pu == prev_u``.

Every step asserts the exact book contents via ``book.items(side)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync, FetchSnapshot, SyncState
from mmradar.model import BookEvent, BookKind, Side
from mmradar.venues.base import Venue
from mmradar.venues.binance import BinanceSpot, BinanceUsdm

SYM = "BTCUSDT"
Lv = Sequence[tuple[str, str]]


def delta(first: int, last: int, bids: Lv = (), asks: Lv = (), pu: int | None = None) -> BookEvent:
    return BookEvent(
        SYM,
        BookKind.DELTA,
        [list(x) for x in bids],
        [list(x) for x in asks],
        first,
        last,
        pu,
        ts_event_ns=last * 1_000,
        ts_recv_ns=last * 1_000 + 7,
    )


def snapshot(last_id: int, bids: Lv, asks: Lv) -> BookEvent:
    return BookEvent(
        SYM,
        BookKind.SNAPSHOT,
        [list(x) for x in bids],
        [list(x) for x in asks],
        last_id,
        last_id,
        None,
        ts_event_ns=5,
        ts_recv_ns=6,
    )


class Harness:
    def __init__(self, venue: Venue, max_buffer: int = 10_000) -> None:
        self.resyncs: list[str] = []
        self.book = L2Book()
        self.sync = BookSync(venue, SYM, self.book, self.resyncs.append, max_buffer=max_buffer)

    def assert_book(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        assert self.book.items(Side.BID) == bids
        assert self.book.items(Side.ASK) == asks

    def assert_empty_syncing(self) -> None:
        assert self.sync.state is SyncState.SYNCING
        assert not self.sync.valid
        self.assert_book([], [])


SNAP_B = [("99.0", "1"), ("98.0", "2")]
SNAP_A = [("101.0", "1"), ("102.0", "2")]
BOOK_B = [(99.0, 1.0), (98.0, 2.0)]
BOOK_A = [(101.0, 1.0), (102.0, 2.0)]
FETCH = FetchSnapshot(SYM)


def live_spot(last_id: int = 100) -> Harness:
    h = Harness(BinanceSpot())
    assert h.sync.on_event(delta(last_id + 1, last_id + 2, [("97.0", "3")])) == FETCH
    assert h.sync.on_snapshot(snapshot(last_id, SNAP_B, SNAP_A)) is None
    h.assert_book([*BOOK_B, (97.0, 3.0)], BOOK_A)
    assert h.sync.state is SyncState.LIVE
    return h


def live_usdm(last_id: int = 100) -> Harness:
    h = Harness(BinanceUsdm())
    assert (
        h.sync.on_event(delta(last_id - 3, last_id + 2, [("97.0", "3")], pu=last_id - 9)) == FETCH
    )
    assert h.sync.on_snapshot(snapshot(last_id, SNAP_B, SNAP_A)) is None
    h.assert_book([*BOOK_B, (97.0, 3.0)], BOOK_A)
    assert h.sync.state is SyncState.LIVE
    return h


# -- bootstrap -------------------------------------------------------------------------------------


@pytest.mark.parametrize("venue_cls", [BinanceSpot, BinanceUsdm])
def test_buffers_before_snapshot_and_asks_exactly_once(venue_cls: type[Venue]) -> None:
    h = Harness(venue_cls())
    spot = venue_cls is BinanceSpot
    events = (
        [  # spot: [95;100] dropped (u == id), then a contiguous chain
            delta(95, 100, [("99.0", "50")]),
            delta(101, 103, [("99.5", "1")]),
            delta(104, 104, [], [("101.0", "0")]),
        ]
        if spot
        else [  # usdm: u=99 < id dropped; first applied U <= 100 <= u; then pu chain
            delta(90, 99, [("99.0", "50")], pu=85),
            delta(98, 102, [("99.5", "1")], pu=99),
            delta(107, 110, [], [("101.0", "0")], pu=102),
        ]
    )
    actions = [h.sync.on_event(e) for e in events]
    assert actions == [FETCH, None, None]
    h.assert_empty_syncing()
    assert h.sync.updates_applied == 0
    assert h.resyncs == []
    assert h.sync.on_snapshot(snapshot(100, SNAP_B, SNAP_A)) is None
    assert h.sync.state is SyncState.LIVE and h.sync.valid
    h.assert_book([(99.5, 1.0), *BOOK_B], [(102.0, 2.0)])
    assert h.sync.updates_applied == 2
    assert h.sync.last_event_ns == events[-1].ts_event_ns
    assert h.resyncs == []


@pytest.mark.parametrize(
    ("venue_cls", "first", "last", "pu", "outcome"),
    [
        # spot, lastUpdateId = 100: drop u <= 100; apply U <= 101 <= u
        (BinanceSpot, 90, 99, None, "drop"),
        (BinanceSpot, 99, 100, None, "drop"),  # u == lastUpdateId: already in the snapshot
        (BinanceSpot, 100, 101, None, "apply"),
        (BinanceSpot, 101, 101, None, "apply"),  # U == lastUpdateId + 1
        (BinanceSpot, 95, 120, None, "apply"),  # lastUpdateId strictly inside [U;u]
        (BinanceSpot, 102, 103, None, "refetch"),  # U > id + 1: snapshot too old
        # usdm, lastUpdateId = 100: drop u < 100; apply U <= 100 <= u
        (BinanceUsdm, 90, 99, 80, "drop"),
        (BinanceUsdm, 95, 100, 80, "apply"),  # u == lastUpdateId is applied on futures
        (BinanceUsdm, 100, 105, 80, "apply"),
        (BinanceUsdm, 101, 105, 80, "refetch"),  # U > lastUpdateId
    ],
)
def test_first_event_after_snapshot_boundaries(
    venue_cls: type[Venue], first: int, last: int, pu: int | None, outcome: str
) -> None:
    h = Harness(venue_cls())
    assert h.sync.on_event(delta(first, last, [("99.5", "7")], pu=pu)) == FETCH
    action = h.sync.on_snapshot(snapshot(100, SNAP_B, SNAP_A))
    assert h.resyncs == []
    if outcome == "refetch":
        assert action == FETCH
        h.assert_empty_syncing()
        return
    assert action is None
    assert h.sync.state is SyncState.LIVE
    if outcome == "drop":
        h.assert_book(BOOK_B, BOOK_A)
        assert h.sync.updates_applied == 0
    else:
        h.assert_book([(99.5, 7.0), *BOOK_B], BOOK_A)
        assert h.sync.updates_applied == 1


def test_spot_worked_example_nknusdt() -> None:
    """docs/venues/binance.md: lastUpdateId=499869752; [..750;..752] dropped, [..753;..754]
    applied."""
    h = Harness(BinanceSpot())
    assert h.sync.on_event(delta(499869750, 499869752, [("0.3", "999")])) == FETCH
    assert h.sync.on_event(delta(499869753, 499869754, [("0.30", "5")], [("0.31", "0")])) is None
    h.assert_empty_syncing()
    snap = snapshot(499869752, [("0.3", "1"), ("0.29", "2")], [("0.31", "3"), ("0.32", "4")])
    assert h.sync.on_snapshot(snap) is None
    h.assert_book([(0.3, 5.0), (0.29, 2.0)], [(0.32, 4.0)])
    assert h.sync.updates_applied == 1
    # the chain continues live: U == prev_u + 1
    assert h.sync.on_event(delta(499869755, 499869755, [], [("0.315", "1")])) is None
    h.assert_book([(0.3, 5.0), (0.29, 2.0)], [(0.315, 1.0), (0.32, 4.0)])
    assert h.resyncs == []
    assert h.sync.state is SyncState.LIVE


def test_usdm_worked_example_akrousdt() -> None:
    """docs/venues/binance.md: lastUpdateId=600859605486; first applied U=..603597,u=..605486."""
    h = Harness(BinanceUsdm())
    assert (
        h.sync.on_event(delta(600859598000, 600859599831, [("0.02", "999")], pu=600859597000))
        == FETCH
    )
    assert (
        h.sync.on_event(
            delta(600859603597, 600859605486, [("0.020", "5")], [("0.021", "0")], pu=600859599831)
        )
        is None
    )
    snap = snapshot(600859605486, [("0.02", "1"), ("0.019", "2")], [("0.021", "3"), ("0.022", "4")])
    assert h.sync.on_snapshot(snap) is None
    h.assert_book([(0.02, 5.0), (0.019, 2.0)], [(0.022, 4.0)])
    assert h.sync.updates_applied == 1
    # U is not prev_u + 1 on futures; only pu chains
    assert (
        h.sync.on_event(delta(600859605600, 600859605700, [], [("0.0215", "1")], pu=600859605486))
        is None
    )
    h.assert_book([(0.02, 5.0), (0.019, 2.0)], [(0.0215, 1.0), (0.022, 4.0)])
    assert h.resyncs == []


@pytest.mark.parametrize("venue_cls", [BinanceSpot, BinanceUsdm])
def test_snapshot_older_than_buffer_refetches_without_counting(venue_cls: type[Venue]) -> None:
    h = Harness(venue_cls())
    usdm = venue_cls is BinanceUsdm
    e1 = delta(200, 205, [("99.5", "1")], pu=190 if usdm else None)
    e2 = delta(206, 207, [], [("100.5", "2")], pu=205 if usdm else None)
    assert h.sync.on_event(e1) == FETCH
    assert h.sync.on_event(e2) is None
    assert h.sync.on_snapshot(snapshot(150, SNAP_B, SNAP_A)) == FETCH  # too old: go back to 3
    h.assert_empty_syncing()
    assert h.resyncs == []
    assert h.sync.updates_applied == 0
    e3 = delta(208, 208, [("98.0", "0")], pu=207 if usdm else None)
    assert h.sync.on_event(e3) is None  # still awaiting the second snapshot: no extra fetch
    # the buffered events were kept: a fitting snapshot continues from them
    assert h.sync.on_snapshot(snapshot(202, SNAP_B, SNAP_A)) is None
    h.assert_book([(99.5, 1.0), (99.0, 1.0)], [(100.5, 2.0), *BOOK_A])
    assert h.sync.updates_applied == 3
    assert h.resyncs == []


def test_snapshot_when_every_buffered_event_is_older_goes_live_and_chains_on() -> None:
    h = Harness(BinanceSpot())
    assert h.sync.on_event(delta(90, 95, [("99.0", "50")])) == FETCH
    assert h.sync.on_snapshot(snapshot(100, SNAP_B, SNAP_A)) is None
    h.assert_book(BOOK_B, BOOK_A)
    assert h.sync.updates_applied == 0
    assert h.sync.on_event(delta(96, 100, [("99.0", "60")])) is None  # still older: dropped
    h.assert_book(BOOK_B, BOOK_A)
    assert h.sync.on_event(delta(101, 101, [("99.0", "70")])) is None
    h.assert_book([(99.0, 70.0), (98.0, 2.0)], BOOK_A)
    assert h.sync.on_event(delta(103, 104, [("99.0", "80")])) == FETCH  # gap
    assert h.resyncs == ["gap"]


# -- live sequence ---------------------------------------------------------------------------------


def test_spot_live_chain_duplicates_and_overlaps() -> None:
    h = live_spot()  # last applied u = 102
    assert h.sync.on_event(delta(101, 102, [("97.0", "9")])) is None  # duplicate: dropped
    h.assert_book([*BOOK_B, (97.0, 3.0)], BOOK_A)
    assert h.sync.on_event(delta(100, 101, [("97.0", "9")])) is None  # older: dropped
    h.assert_book([*BOOK_B, (97.0, 3.0)], BOOK_A)
    assert h.sync.on_event(delta(102, 104, [("97.0", "0")])) is None  # overlaps: applied
    h.assert_book(BOOK_B, BOOK_A)
    assert h.sync.on_event(delta(105, 105, [], [("101.0", "4")])) is None
    h.assert_book(BOOK_B, [(101.0, 4.0), (102.0, 2.0)])
    assert h.sync.updates_applied == 3
    assert h.resyncs == []


def test_spot_gap_while_live_resyncs_once_and_keeps_the_event_after_the_gap() -> None:
    h = live_spot()  # last applied u = 102
    assert h.sync.on_event(delta(103, 104, [("98.0", "5")])) is None
    h.assert_book([(99.0, 1.0), (98.0, 5.0), (97.0, 3.0)], BOOK_A)
    after_gap = delta(106, 107, [("99.5", "1")])  # [105;105] missed
    assert h.sync.on_event(after_gap) == FETCH
    assert h.resyncs == ["gap"]
    h.assert_empty_syncing()
    assert h.sync.on_event(delta(108, 108, [], [("101.0", "0")])) is None  # buffered, no 2nd fetch
    assert h.resyncs == ["gap"]
    # the next snapshot (id 105) continues from the kept event [106;107]
    assert h.sync.on_snapshot(snapshot(105, SNAP_B, SNAP_A)) is None
    assert h.sync.state is SyncState.LIVE
    h.assert_book([(99.5, 1.0), *BOOK_B], [(102.0, 2.0)])
    assert h.resyncs == ["gap"]


def test_usdm_pu_chain_break_is_a_gap() -> None:
    h = live_usdm()  # last applied u = 102
    # U/u not contiguous is normal on futures; pu chains
    assert h.sync.on_event(delta(110, 120, [("98.0", "5")], pu=102)) is None
    h.assert_book([(99.0, 1.0), (98.0, 5.0), (97.0, 3.0)], BOOK_A)
    # a stale message (u <= prev u, wrong pu) is dropped, not a gap
    assert h.sync.on_event(delta(111, 119, [("98.0", "0")], pu=110)) is None
    h.assert_book([(99.0, 1.0), (98.0, 5.0), (97.0, 3.0)], BOOK_A)
    assert h.resyncs == []
    # pu != prev u and newer: a message was missed
    after_gap = delta(125, 130, [("99.5", "1")], pu=122)
    assert h.sync.on_event(after_gap) == FETCH
    assert h.resyncs == ["gap"]
    h.assert_empty_syncing()
    # the kept event satisfies the first-event rule against the next snapshot
    assert h.sync.on_snapshot(snapshot(127, SNAP_B, SNAP_A)) is None
    h.assert_book([(99.5, 1.0), *BOOK_B], BOOK_A)
    assert h.sync.on_event(delta(131, 131, [], [("101.0", "0")], pu=130)) is None
    h.assert_book([(99.5, 1.0), *BOOK_B], [(102.0, 2.0)])
    assert h.resyncs == ["gap"]


def test_usdm_pu_break_on_first_live_event_after_replay() -> None:
    h = live_usdm()  # last applied u = 102
    assert h.sync.on_event(delta(103, 104, [("98.0", "5")], pu=101)) == FETCH
    assert h.resyncs == ["gap"]
    h.assert_empty_syncing()


def test_gap_inside_buffer_replay_counts_a_gap() -> None:
    h = Harness(BinanceSpot())
    assert h.sync.on_event(delta(101, 102, [("99.5", "1")])) == FETCH
    assert h.sync.on_event(delta(104, 105, [("99.6", "1")])) is None  # [103;103] missing
    assert h.sync.on_event(delta(106, 106, [("99.7", "1")])) is None
    assert h.sync.on_snapshot(snapshot(100, SNAP_B, SNAP_A)) == FETCH
    assert h.resyncs == ["gap"]
    h.assert_empty_syncing()
    # both events after the gap were kept for the next snapshot
    assert h.sync.on_snapshot(snapshot(103, SNAP_B, SNAP_A)) is None
    h.assert_book([(99.7, 1.0), (99.6, 1.0), *BOOK_B], BOOK_A)
    assert h.resyncs == ["gap"]


# -- crossed, external invalidation ----------------------------------------------------------------


@pytest.mark.parametrize("usdm", [False, True])
def test_crossed_after_delta_resyncs(usdm: bool) -> None:
    h = live_usdm() if usdm else live_spot()  # last applied u = 102
    crossing = delta(103, 103, [("101.0", "1")], pu=102 if usdm else None)  # bid == best ask
    assert h.sync.on_event(crossing) is None  # nothing buffered: fetch on the next delta
    assert h.resyncs == ["crossed"]
    h.assert_empty_syncing()
    assert h.sync.on_event(delta(104, 104, [("99.0", "2")], pu=103 if usdm else None)) == FETCH
    assert h.resyncs == ["crossed"]


def test_crossed_snapshot_resyncs() -> None:
    h = Harness(BinanceSpot())
    assert h.sync.on_event(delta(90, 95)) == FETCH
    assert h.sync.on_snapshot(snapshot(100, [("101.5", "1")], SNAP_A)) is None
    assert h.resyncs == ["crossed"]
    h.assert_empty_syncing()


def test_crossed_during_replay_resyncs_and_keeps_later_events() -> None:
    h = Harness(BinanceSpot())
    assert h.sync.on_event(delta(101, 101, [("101.0", "1")])) == FETCH  # crosses the snapshot
    assert h.sync.on_event(delta(102, 102, [("99.5", "1")])) is None
    actions = [h.sync.on_snapshot(snapshot(100, SNAP_B, SNAP_A))]
    assert h.resyncs == ["crossed"]
    h.assert_empty_syncing()
    actions.append(h.sync.on_event(delta(103, 103, [("99.6", "1")])))
    assert actions.count(FETCH) == 1  # one new snapshot is asked for (now or on the next delta)
    # a new snapshot that covers the crossing message continues from [102;102]
    assert h.sync.on_snapshot(snapshot(101, SNAP_B, SNAP_A)) is None
    h.assert_book([(99.6, 1.0), (99.5, 1.0), *BOOK_B], BOOK_A)
    assert h.resyncs == ["crossed"]


@pytest.mark.parametrize("reason", ["stale", "reconnect"])
def test_invalidate_counts_only_when_live(reason: str) -> None:
    h = live_spot()
    assert h.sync.invalidate(reason) is None  # nothing buffered yet
    assert h.resyncs == [reason]
    h.assert_empty_syncing()
    assert h.sync.invalidate(reason) is None  # already SYNCING: not counted again
    assert h.resyncs == [reason]
    assert h.sync.on_event(delta(200, 201, [("99.0", "3")])) == FETCH
    assert h.sync.invalidate(reason) is None
    assert h.resyncs == [reason]
    # and a fresh bootstrap works
    assert h.sync.on_event(delta(202, 203, [("99.5", "3")])) == FETCH
    assert h.sync.on_snapshot(snapshot(201, SNAP_B, SNAP_A)) is None
    h.assert_book([(99.5, 3.0), *BOOK_B], BOOK_A)
    assert h.resyncs == [reason]


def test_invalidate_before_any_snapshot_is_not_counted() -> None:
    h = Harness(BinanceUsdm())
    assert h.sync.invalidate("reconnect") is None
    assert h.resyncs == []
    h.assert_empty_syncing()


def test_pushed_snapshot_while_live_counts_venue_reset() -> None:
    h = live_spot()
    assert h.sync.on_event(snapshot(300, [("90.0", "1")], [("91.0", "1")])) is None
    assert h.resyncs == ["venue_reset"]
    h.assert_book([(90.0, 1.0)], [(91.0, 1.0)])
    assert h.sync.on_event(delta(301, 301, [("90.5", "2")])) is None
    h.assert_book([(90.5, 2.0), (90.0, 1.0)], [(91.0, 1.0)])


# -- shell interaction -----------------------------------------------------------------------------


def test_snapshot_failed_asks_again_on_next_delta() -> None:
    h = Harness(BinanceSpot())
    assert h.sync.on_event(delta(101, 101)) == FETCH
    assert h.sync.on_event(delta(102, 102)) is None
    assert h.sync.snapshot_failed() is None
    assert h.sync.on_event(delta(103, 103, [("99.5", "1")])) == FETCH
    assert h.sync.on_event(delta(104, 104)) is None
    assert h.sync.on_snapshot(snapshot(100, SNAP_B, SNAP_A)) is None
    h.assert_book([(99.5, 1.0), *BOOK_B], BOOK_A)
    assert h.sync.updates_applied == 4


def test_buffer_bound_drops_oldest_so_snapshot_looks_too_old() -> None:
    h = Harness(BinanceSpot(), max_buffer=2)
    assert h.sync.on_event(delta(101, 101, [("99.1", "1")])) == FETCH
    assert h.sync.on_event(delta(102, 102, [("99.2", "1")])) is None
    assert h.sync.on_event(delta(103, 103, [("99.3", "1")])) is None  # evicts [101;101]
    assert h.sync.on_snapshot(snapshot(100, SNAP_B, SNAP_A)) == FETCH
    assert h.resyncs == []
    assert h.sync.on_snapshot(snapshot(101, SNAP_B, SNAP_A)) is None
    h.assert_book([(99.3, 1.0), (99.2, 1.0), *BOOK_B], BOOK_A)


def test_event_times_and_counters() -> None:
    h = live_spot()
    assert h.sync.last_event_ns == delta(101, 102).ts_event_ns
    assert h.sync.updates_applied == 1
    h.sync.on_event(delta(103, 109))
    assert h.sync.last_event_ns == 109_000
    assert h.sync.updates_applied == 2
    h.sync.on_event(delta(100, 105))  # dropped: nothing changes
    assert h.sync.last_event_ns == 109_000
    assert h.sync.updates_applied == 2


# -- stale: trust in time, not integrity ---------------------------------------------------------


@pytest.mark.parametrize("usdm", [False, True])
def test_stale_book_is_kept_and_the_next_in_sequence_message_revalidates_it(usdm: bool) -> None:
    h = live_usdm() if usdm else live_spot()  # last applied u = 102
    before = [(99.0, 1.0), (98.0, 2.0), (97.0, 3.0)]
    assert h.sync.mark_stale() is True
    assert h.sync.state is SyncState.STALE and h.sync.stale and not h.sync.valid
    assert h.resyncs == ["stale"]  # one stale episode, reported once
    h.assert_book(before, BOOK_A)  # nothing cleared, no snapshot asked for
    assert h.sync.mark_stale() is False  # already stale: not counted again
    assert h.resyncs == ["stale"]


def test_stale_spot_book_resumes_without_a_snapshot() -> None:
    h = live_spot()  # last applied u = 102
    h.sync.mark_stale()
    # an older message proves nothing: still stale
    assert h.sync.on_event(delta(100, 101, [("97.0", "9")])) is None
    assert h.sync.stale
    # the next message continues the chain: valid again, applied, no snapshot, no resync
    assert h.sync.on_event(delta(103, 104, [("98.0", "5")])) is None
    assert h.sync.valid and h.sync.state is SyncState.LIVE
    h.assert_book([(99.0, 1.0), (98.0, 5.0), (97.0, 3.0)], BOOK_A)
    assert h.resyncs == ["stale"]
    assert h.sync.updates_applied == 2
    # and it can go stale (and come back) again
    assert h.sync.mark_stale() is True
    assert h.sync.on_event(delta(105, 105, [], [("101.0", "2")])) is None and h.sync.valid
    assert h.resyncs == ["stale", "stale"]


@pytest.mark.parametrize("usdm", [False, True])
def test_stale_book_whose_next_message_is_a_gap_resyncs(usdm: bool) -> None:
    h = live_usdm() if usdm else live_spot()  # last applied u = 102
    h.sync.mark_stale()
    after_gap = delta(106, 107, [("99.5", "1")], pu=105 if usdm else None)
    assert h.sync.on_event(after_gap) == FETCH
    assert h.resyncs == ["stale", "gap"]
    h.assert_empty_syncing()


def test_stale_book_invalidated_by_a_reconnect_is_counted() -> None:
    h = live_spot()
    h.sync.mark_stale()
    assert h.sync.invalidate("reconnect") is None
    assert h.resyncs == ["stale", "reconnect"]
    h.assert_empty_syncing()


def test_only_a_live_book_goes_stale() -> None:
    h = Harness(BinanceSpot())
    assert h.sync.mark_stale() is False  # syncing: nothing to distrust
    assert h.sync.state is SyncState.SYNCING and h.resyncs == []


def test_stale_crossing_message_resyncs() -> None:
    h = live_spot()
    h.sync.mark_stale()
    assert h.sync.on_event(delta(103, 103, [("101.0", "1")])) is None  # continues, but crosses
    assert h.resyncs == ["stale", "crossed"]
    h.assert_empty_syncing()
