"""OKX's ``seqId``/``prevSeqId`` rule and REST bootstrap, through the real book synchroniser.

Vectors: the "Sequence ID" example of the OKX docs and the 2026 REST-bootstrap procedure
(``tests/fixtures/okx/SOURCES.md``).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync, FetchSnapshot
from mmradar.model import BookEvent, BookKind, Side
from mmradar.venues.base import Verdict
from mmradar.venues.okx import Okx, okx_checksum

SYM = "BTC-USDT"
MS = 1_000_000


def delta(
    prev: int,
    seq: int,
    bids: list[list[str]] | None = None,
    asks: list[list[str]] | None = None,
    ts_ms: int = 1_000,
    checksum: int | None = None,
) -> BookEvent:
    return BookEvent(
        SYM, BookKind.DELTA, bids or [], asks or [], seq, seq, prev, ts_ms * MS, ts_ms * MS,
        checksum,
    )  # fmt: skip


def snapshot(seq: int, ts_ms: int = 1_000, prev: int | None = None) -> BookEvent:
    return BookEvent(
        SYM, BookKind.SNAPSHOT, [["99", "1", "0", "1"]], [["101", "1", "0", "1"]], seq, seq,
        prev, ts_ms * MS, ts_ms * MS,
    )  # fmt: skip


class Harness:
    def __init__(self) -> None:
        self.venue = Okx()
        self.book = L2Book(keep_text=True)
        self.resyncs: list[str] = []
        self.sync = BookSync(self.venue, SYM, self.book, on_resync=self.resyncs.append)

    def levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return self.book.items(Side.BID), self.book.items(Side.ASK)


# -- verdicts ------------------------------------------------------------------------------------


def test_docs_sequence_example_applies_idle_and_reset_updates() -> None:
    # Snapshot (-1,10); normal (10,15); no update (15,15); reset (15,3); normal (3,5).
    h = Harness()
    assert h.sync.on_event(snapshot(10, prev=-1)) is None
    assert h.sync.valid
    for event in (
        delta(10, 15, bids=[["99.5", "2", "0", "1"]]),
        delta(15, 15),
        delta(15, 3, asks=[["100.5", "3", "0", "2"]]),
        delta(3, 5, bids=[["99", "0", "0", "0"]]),
    ):
        assert h.sync.on_event(event) is None
        assert h.sync.valid
    assert h.resyncs == []
    assert h.sync.updates_applied == 4
    assert h.levels() == ([(99.5, 2.0)], [(100.5, 3.0), (101.0, 1.0)])


def test_next_in_sequence_is_an_identity_test() -> None:
    venue = Okx()
    previous = delta(10, 15)
    assert venue.next_in_sequence(previous, delta(15, 22)) is Verdict.APPLY  # step 7, not 1
    assert venue.next_in_sequence(previous, delta(15, 15)) is Verdict.APPLY  # idle
    assert venue.next_in_sequence(previous, delta(15, 3)) is Verdict.APPLY  # reset
    assert venue.next_in_sequence(previous, delta(16, 22)) is Verdict.GAP
    assert venue.next_in_sequence(previous, delta(14, 15)) is Verdict.GAP
    assert venue.next_in_sequence(previous, delta(10, 15)) is Verdict.GAP


def test_first_after_rest_snapshot_rule() -> None:
    venue = Okx()
    snap = snapshot(110)
    assert venue.first_after_snapshot(snap, delta(100, 107)) is Verdict.DROP  # seqId <= 110
    assert venue.first_after_snapshot(snap, delta(100, 110)) is Verdict.DROP
    assert venue.first_after_snapshot(snap, delta(110, 110)) is Verdict.DROP  # idle, contained
    assert venue.first_after_snapshot(snap, delta(107, 115)) is Verdict.APPLY  # 107 <= 110 < 115
    assert venue.first_after_snapshot(snap, delta(110, 115)) is Verdict.APPLY
    assert venue.first_after_snapshot(snap, delta(111, 115)) is Verdict.GAP  # snapshot too old
    assert venue.first_after_snapshot(snap, delta(115, 115)) is Verdict.GAP  # idle, but later


def test_first_after_snapshot_with_a_reset() -> None:
    venue = Okx()
    # The reset names the snapshot's seqId: it is the next message.
    assert venue.first_after_snapshot(snapshot(115), delta(115, 3)) is Verdict.APPLY
    # The snapshot was taken after the reset (its seqId restarted low, later time): drop it.
    late = snapshot(4, ts_ms=2_000)
    assert venue.first_after_snapshot(late, delta(115, 3, ts_ms=1_500)) is Verdict.DROP
    assert venue.first_after_snapshot(late, delta(3, 4, ts_ms=1_600)) is Verdict.DROP
    assert venue.first_after_snapshot(late, delta(4, 9, ts_ms=2_100)) is Verdict.APPLY
    # A snapshot from before the reset but older than the chain: fetch again.
    early = snapshot(100, ts_ms=1_000)
    assert venue.first_after_snapshot(early, delta(115, 3, ts_ms=1_500)) is Verdict.GAP


# -- REST bootstrap through BookSync -------------------------------------------------------------


def test_rest_bootstrap_drops_contained_updates_and_applies_the_straddling_one() -> None:
    h = Harness()
    assert h.sync.on_event(delta(100, 107, bids=[["98", "5", "0", "1"]])) == FetchSnapshot(SYM)
    assert h.sync.on_event(delta(107, 115, bids=[["98.5", "6", "0", "1"]])) is None
    assert h.sync.on_event(delta(115, 120, asks=[["101", "0", "0", "0"]])) is None
    assert not h.sync.valid
    assert h.sync.on_snapshot(snapshot(110)) is None
    assert h.sync.valid
    assert h.sync.updates_applied == 2  # (100,107) dropped
    # "98" came with the dropped update: the snapshot (taken later) does not hold it.
    assert h.levels() == ([(99.0, 1.0), (98.5, 6.0)], [])
    assert h.sync.on_event(delta(120, 121, asks=[["102", "1", "0", "1"]])) is None
    assert h.levels()[1] == [(102.0, 1.0)]
    assert h.resyncs == []


def test_rest_snapshot_older_than_the_stream_is_fetched_again() -> None:
    h = Harness()
    assert h.sync.on_event(delta(100, 107)) == FetchSnapshot(SYM)
    assert h.sync.on_event(delta(107, 115)) is None
    assert h.sync.on_snapshot(snapshot(90)) == FetchSnapshot(SYM)
    assert not h.sync.valid
    assert h.resyncs == []  # not a broken book: just a stale snapshot
    assert h.sync.on_snapshot(snapshot(107)) is None
    assert h.sync.valid
    assert h.sync.updates_applied == 1


def test_gap_while_live_is_counted_and_refetched() -> None:
    h = Harness()
    h.sync.on_event(delta(100, 107))
    h.sync.on_snapshot(snapshot(100))
    assert h.sync.valid
    assert h.sync.on_event(delta(120, 130)) == FetchSnapshot(SYM)  # (107,120) was lost
    assert h.resyncs == ["gap"]
    assert not h.sync.valid
    assert h.sync.on_snapshot(snapshot(125)) is None  # the kept (120,130) straddles it
    assert h.sync.valid


def test_checksum_checked_when_non_zero_only() -> None:
    h = Harness()
    h.sync.on_event(snapshot(10, prev=-1))
    update = [["99.5", "2", "0", "1"]]
    assert h.sync.on_event(delta(10, 11, bids=update, checksum=None)) is None  # 0 ⇒ None
    probe = L2Book(keep_text=True)
    probe.load(h.book.text_top(Side.BID, 400), h.book.text_top(Side.ASK, 400))
    probe.apply([["99.6", "1", "0", "1"]], [])
    good = okx_checksum(probe)
    assert h.sync.on_event(delta(11, 12, bids=[["99.6", "1", "0", "1"]], checksum=good)) is None
    assert h.sync.valid
    assert h.sync.on_event(delta(12, 13, checksum=good ^ 0x10)) is None
    assert h.resyncs == ["checksum"]
    assert not h.sync.valid
    assert h.sync.on_event(delta(13, 14)) == FetchSnapshot(SYM)  # the next update asks


def test_pushed_snapshot_is_followed_by_a_strict_chain() -> None:
    venue = Okx()
    pushed = snapshot(10, prev=-1)
    assert venue.first_after_snapshot(pushed, delta(10, 15)) is Verdict.APPLY
    assert venue.first_after_snapshot(pushed, delta(10, 10)) is Verdict.APPLY  # idle
    assert venue.first_after_snapshot(pushed, delta(10, 3)) is Verdict.APPLY  # reset
    assert venue.first_after_snapshot(pushed, delta(8, 15)) is Verdict.GAP
    assert venue.first_after_snapshot(pushed, delta(5, 8)) is Verdict.GAP


def test_pushed_snapshot_while_live_is_a_venue_reset() -> None:
    h = Harness()
    h.sync.on_event(snapshot(10, prev=-1))
    h.sync.on_event(delta(10, 11))
    assert h.sync.on_event(snapshot(50, prev=-1)) is None
    assert h.resyncs == ["venue_reset"]
    assert h.sync.valid
    assert h.sync.on_event(delta(50, 51)) is None
    assert h.resyncs == ["venue_reset"]


# -- property: the identity chain detects exactly the losses that matter -------------------------


_LEVEL = st.tuples(
    st.sampled_from(["bids", "asks"]),
    st.integers(min_value=1, max_value=20),
    st.sampled_from(["0", "1", "2.5", "0.001"]),
)
_STEP = st.tuples(
    st.sampled_from(["normal"] * 6 + ["idle", "reset"]),
    st.integers(min_value=1, max_value=100),
    st.lists(_LEVEL, max_size=5),
)


@st.composite
def chains(draw: st.DrawFn) -> list[BookEvent]:
    """An update chain with irregular steps, idle updates and maintenance resets."""
    seq = draw(st.integers(min_value=0, max_value=10**6))
    events = []
    for i, (kind, step, levels) in enumerate(draw(st.lists(_STEP, min_size=2, max_size=40))):
        prev = seq
        if kind == "normal":
            seq += step
        elif kind == "reset":
            seq = (seq - step) if seq > step else seq + step if seq == 0 else seq // 2
            if seq >= prev:  # nowhere below to restart from: a normal step instead
                seq = prev + step
        sides: dict[str, list[list[str]]] = {"bids": [], "asks": []}
        if kind != "idle":
            for side, tick, qty in levels:
                price = f"{100 - tick}" if side == "bids" else f"{100 + tick}"
                sides[side].append([price, qty, "0", "1"])
        events.append(delta(prev, seq, sides["bids"], sides["asks"], ts_ms=1_000 + i))
    return events


def _replay(events: list[BookEvent], first_prev: int) -> Harness:
    h = Harness()
    h.sync.on_event(snapshot(first_prev, prev=-1))
    for event in events:
        h.sync.on_event(event)
    return h


@settings(max_examples=100, deadline=None)
@given(chains())
def test_complete_chain_never_resyncs_and_equals_the_reference(events: list[BookEvent]) -> None:
    h = _replay(events, events[0].prev_id or 0)
    assert h.resyncs == []
    assert h.sync.valid
    bids: dict[float, float] = {99.0: 1.0}
    asks: dict[float, float] = {101.0: 1.0}
    for event in events:
        for side, levels in ((bids, event.bids), (asks, event.asks)):
            for price, qty, *_ in levels:
                if float(qty) == 0:
                    side.pop(float(price), None)
                else:
                    side[float(price)] = float(qty)
    assert h.levels() == (
        sorted(bids.items(), reverse=True),
        sorted(asks.items()),
    )


@settings(max_examples=100, deadline=None)
@given(chains(), st.data())
def test_a_lost_message_is_a_gap_unless_it_was_idle(
    events: list[BookEvent], data: st.DataObject
) -> None:
    lost = data.draw(st.integers(min_value=0, max_value=len(events) - 2))
    kept = events[:lost] + events[lost + 1 :]
    h = _replay(kept, events[0].prev_id or 0)
    idle = events[lost].last_id == events[lost].prev_id
    assert h.resyncs == ([] if idle else ["gap"])
