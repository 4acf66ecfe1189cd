"""The two real Binance captures replayed exactly as a live feed would see them.

Every line goes through the real frame parser (``venue.new_parser().parse``), depth events into
``BookSync`` (which buffers and asks for a snapshot), the capture's single REST snapshot line
through ``venue.parse_snapshot`` into ``on_snapshot`` once the sync has asked for it, and the
book is ``L2Book``. The exchange's own ``@bookTicker`` stream is the oracle: at every bookTicker
whose ``u`` equals the ``u`` of an applied depth event, the best bid/ask price *and* quantity
must equal the book's touch right after that event.

Expected counts come from an independent check (a plain Decimal reference book over each
capture's diff and bookTicker streams), recorded in docs/venues/binance.md.
"""

from __future__ import annotations

import gzip
import itertools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync, FetchSnapshot, SyncState
from mmradar.embedded.capture import capture_path
from mmradar.errors import UnknownMessage
from mmradar.model import BookEvent, BookKind, Notice, Side, TakerSide, Trade
from mmradar.venues.base import Venue, Verdict
from mmradar.venues.binance import BinanceSpot, BinanceUsdm

# The real captures are packaged with mmradar (one copy; read through importlib.resources).
SPOT_FILE = Path(str(capture_path("spot")))
USDM_FILE = Path(str(capture_path("usdm")))
SYM = "BTCUSDT"
SNAPSHOT_PREFIX = b'{"lastUpdateId"'

Line = tuple[int, bytes]


@cache
def capture(path: Path) -> tuple[Line, ...]:
    """``(recv_ns, raw_json)`` per line, exactly as recorded."""
    out: list[Line] = []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            line = line.rstrip(b"\n")
            if not line:
                continue
            ts, raw = line.split(b" ", 1)
            out.append((int(ts), raw))
    return tuple(out)


class RecordingBook:
    """An ``L2Book`` plus the touch right after every delta the synchroniser applied.

    The hot-path classes may be compiled (mypyc), so instrumentation composes instead of
    subclassing: the touches are recorded through ``BookSync(on_applied=...)``, and every
    other attribute is the real book's.
    """

    def __init__(self) -> None:
        self.book = L2Book()
        self.touches: list[tuple[tuple[float, float] | None, tuple[float, float] | None]] = []

    def record(self, event: BookEvent) -> None:
        self.touches.append((self.book.best_bid(), self.book.best_ask()))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.book, name)


def observed(venue_cls: type[Venue]) -> Venue:
    """The real venue, recording every sequence verdict it hands out (behaviour unchanged)."""

    class Observed(venue_cls):  # type: ignore[valid-type, misc]
        def __init__(self) -> None:
            super().__init__()
            self.verdicts: list[tuple[BookEvent, Verdict]] = []

        def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
            verdict: Verdict = super().first_after_snapshot(snapshot, delta)
            self.verdicts.append((delta, verdict))
            return verdict

        def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
            verdict: Verdict = super().next_in_sequence(previous, delta)
            self.verdicts.append((delta, verdict))
            return verdict

    return Observed()  # type: ignore[no-any-return]


@dataclass
class Replay:
    venue: Venue
    book: RecordingBook
    sync: BookSync
    resyncs: list[str] = field(default_factory=list)
    fetches: int = 0
    snapshots_delivered: int = 0
    tickers: list[dict[str, object]] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    depth_events: int = 0
    apply_errors: list[tuple[BookEvent, Exception]] = field(default_factory=list)
    on_depth: Callable[[Replay, BookEvent], None] | None = None

    @property
    def applied(self) -> list[BookEvent]:
        return [e for e, v in self.venue.verdicts if v is Verdict.APPLY]  # type: ignore[attr-defined]

    @property
    def dropped(self) -> list[BookEvent]:
        return [e for e, v in self.venue.verdicts if v is Verdict.DROP]  # type: ignore[attr-defined]

    def touches_by_u(self) -> dict[int, tuple[object, object]]:
        applied = [e for e in self.applied if all(e is not bad for bad, _ in self.apply_errors)]
        assert len(applied) == len(self.book.touches)
        return {e.last_id: t for e, t in zip(applied, self.book.touches, strict=True)}

    def oracle(self) -> tuple[int, int]:
        """(matches, mismatches) of bookTicker vs the book at equal ``u``."""
        touches = self.touches_by_u()
        matches = mismatches = 0
        for t in self.tickers:
            touch = touches.get(t["u"])  # type: ignore[arg-type]
            if touch is None:
                continue
            want = ((float(t["b"]), float(t["B"])), (float(t["a"]), float(t["A"])))  # type: ignore[arg-type]
            if touch == want:
                matches += 1
            else:
                mismatches += 1
        return matches, mismatches


def replay(
    venue_cls: type[Venue],
    lines: tuple[Line, ...] | list[Line],
    on_depth: Callable[[Replay, BookEvent], None] | None = None,
) -> Replay:
    venue = observed(venue_cls)
    book = RecordingBook()
    resyncs: list[str] = []
    sync = BookSync(venue, SYM, book.book, resyncs.append, on_applied=book.record)
    r = Replay(venue, book, sync, resyncs, on_depth=on_depth)
    parser = venue.new_parser()
    awaiting = False

    def act(action: object) -> None:
        nonlocal awaiting
        if action is None:
            return
        assert action == FetchSnapshot(SYM)
        assert not awaiting, "asked twice for one snapshot"
        r.fetches += 1
        awaiting = True

    for ts, raw in lines:
        if raw.startswith(SNAPSHOT_PREFIX):
            assert awaiting, "the recorder fetched the snapshot after buffering; so must we"
            awaiting = False
            snap = venue.parse_snapshot(SYM, raw, ts)
            r.snapshots_delivered += 1
            act(r.sync.on_snapshot(snap))
            continue
        try:
            events = parser.parse(raw, ts)
        except UnknownMessage:
            msg = orjson.loads(raw)
            assert "@bookTicker" in msg["stream"]
            r.tickers.append(msg["data"])
            continue
        for ev in events:
            if isinstance(ev, BookEvent):
                r.depth_events += 1
                if r.on_depth is not None:
                    r.on_depth(r, ev)
                try:
                    act(r.sync.on_event(ev))
                except ValueError as exc:
                    r.apply_errors.append((ev, exc))
            elif isinstance(ev, Trade):
                r.trades.append(ev)
            else:
                r.notices.append(ev)
    return r


@cache
def clean_replay(venue_cls: type[Venue]) -> Replay:
    return replay(venue_cls, capture(SPOT_FILE if venue_cls is BinanceSpot else USDM_FILE))


# -- the oracle ------------------------------------------------------------------------------------


def test_spot_capture_matches_book_ticker_exactly() -> None:
    r = clean_replay(BinanceSpot)
    assert r.depth_events == 3451
    assert r.fetches == 1 and r.snapshots_delivered == 1
    assert r.resyncs == []
    assert r.apply_errors == []
    assert len(r.dropped) == 2
    applied = r.applied
    assert len(applied) == 3449
    assert r.sync.updates_applied == 3449
    assert (applied[0].first_id, applied[0].last_id) == (50093239208, 50093239224)
    # the spot chain is contiguous throughout
    assert all(b.first_id == a.last_id + 1 for a, b in itertools.pairwise(applied))
    assert r.oracle() == (564, 0)
    assert r.sync.state is SyncState.LIVE
    assert not r.book.is_crossed()
    assert len(r.tickers) == 28040
    assert r.notices == []


def test_usdm_capture_matches_book_ticker_exactly() -> None:
    r = clean_replay(BinanceUsdm)
    assert r.depth_events == 6551
    assert r.fetches == 1 and r.snapshots_delivered == 1
    assert r.resyncs == []
    assert r.apply_errors == []
    assert len(r.dropped) == 4
    applied = r.applied
    assert len(applied) == 6547
    assert r.sync.updates_applied == 6547
    first = applied[0]
    assert (first.first_id, first.last_id, first.prev_id) == (
        5123107850310,
        5123107853551,
        5123107850146,
    )
    assert all(b.prev_id == a.last_id for a, b in itertools.pairwise(applied))
    # U/u are NOT contiguous on futures: only pu chains
    assert any(b.first_id != a.last_id + 1 for a, b in itertools.pairwise(applied))
    assert r.oracle() == (629, 0)
    assert r.sync.state is SyncState.LIVE
    assert not r.book.is_crossed()
    assert len(r.tickers) == 66089
    assert r.notices == []


@pytest.mark.parametrize(
    ("venue_cls", "path", "snapshot_id"),
    [
        (BinanceSpot, SPOT_FILE, 50093239218),
        (BinanceUsdm, USDM_FILE, 5123107852948),
    ],
)
def test_capture_snapshot_parses(venue_cls: type[Venue], path: Path, snapshot_id: int) -> None:
    ts, raw = next(line for line in capture(path) if line[1].startswith(SNAPSHOT_PREFIX))
    snap = venue_cls().parse_snapshot(SYM, raw, ts)
    body = orjson.loads(raw)
    assert snap.kind is BookKind.SNAPSHOT
    assert snap.first_id == snap.last_id == snapshot_id
    # the floats orjson reads from the text, bit for bit float(text)
    assert snap.bids == [[float(p), float(q)] for p, q in body["bids"]]
    assert snap.asks == [[float(p), float(q)] for p, q in body["asks"]]
    assert len(snap.bids) == len(snap.asks) == 1000
    assert snap.ts_recv_ns == ts
    assert snap.ts_event_ns == (body["E"] * 1_000_000 if "E" in body else ts)


@pytest.mark.parametrize("venue_cls", [BinanceSpot, BinanceUsdm])
def test_taker_volume_matches_independent_decimal_sum(venue_cls: type[Venue]) -> None:
    r = clean_replay(venue_cls)
    path = SPOT_FILE if venue_cls is BinanceSpot else USDM_FILE
    want: dict[str, Decimal] = {"buy": Decimal(), "sell": Decimal()}
    counts: Counter[str] = Counter()
    first_trade_t = None
    for _, raw in capture(path):
        if b"@trade" not in raw[:40]:
            continue
        data = orjson.loads(raw)["data"]
        side = "sell" if data["m"] is True else "buy"  # buyer is maker => seller aggressed
        want[side] += Decimal(data["q"])
        counts[side] += 1
        if first_trade_t is None:
            first_trade_t = data["T"]
    got = {"buy": math.fsum(t.qty for t in r.trades if t.taker is TakerSide.BUY)}
    got["sell"] = math.fsum(t.qty for t in r.trades if t.taker is TakerSide.SELL)
    assert len(r.trades) == (9757 if venue_cls is BinanceSpot else 21313)
    assert Counter(t.taker.value for t in r.trades) == counts
    assert counts["buy"] > 0 and counts["sell"] > 0
    for side in ("buy", "sell"):
        assert math.isclose(got[side], float(want[side]), rel_tol=1e-12), side
    assert got["buy"] != pytest.approx(got["sell"], rel=1e-6)  # a side swap would be visible
    assert r.trades[0].ts_event_ns == first_trade_t * 1_000_000
    assert all(t.symbol == SYM for t in r.trades)


# -- damaged streams -------------------------------------------------------------------------------


def depth_line_indices(lines: tuple[Line, ...]) -> list[int]:
    return [i for i, (_, raw) in enumerate(lines) if b"@depth" in raw[:40]]


def test_spot_gap_injected_by_deleting_one_depth_line() -> None:
    lines = capture(SPOT_FILE)
    depth = depth_line_indices(lines)
    victim = depth[1000]  # well after the snapshot
    removed = orjson.loads(lines[victim][1])["data"]
    # replay up to 100 depth messages past the hole (the rest would only be buffered)
    damaged = [line for i, line in enumerate(lines[: depth[1100]]) if i != victim]
    r = replay(BinanceSpot, damaged)
    assert r.resyncs == ["gap"]
    assert r.fetches == 2  # the bootstrap, and the re-fetch after the gap
    assert r.sync.state is SyncState.SYNCING
    assert r.book.levels(Side.BID) == r.book.levels(Side.ASK) == 0
    applied = r.applied
    assert applied[-1].last_id == removed["U"] - 1  # everything before the hole was applied
    assert len(applied) == 1000 - 2  # depth[0], depth[1] are dropped, depth[2..999] applied
    # the oracle still holds for everything that was applied
    matches, mismatches = r.oracle()
    assert mismatches == 0 and matches > 0


def test_usdm_gap_injected_by_deleting_one_depth_line() -> None:
    lines = capture(USDM_FILE)
    depth = depth_line_indices(lines)
    victim = depth[3000]
    damaged = [line for i, line in enumerate(lines[: depth[3100]]) if i != victim]
    r = replay(BinanceUsdm, damaged)
    assert r.resyncs == ["gap"]
    assert r.fetches == 2
    assert r.sync.state is SyncState.SYNCING
    assert r.oracle()[1] == 0


@pytest.mark.parametrize("venue_cls", [BinanceSpot, BinanceUsdm])
def test_corrupted_quantity_text_never_leaves_a_silently_wrong_book(venue_cls: type[Venue]) -> None:
    """The parser passes level text through; ``L2Book.apply`` raises before mutating anything;
    the message is therefore not applied, so the very next depth message is a GAP."""
    full = capture(SPOT_FILE if venue_cls is BinanceSpot else USDM_FILE)
    depth = depth_line_indices(full)
    victim = depth[500]
    lines = list(full[: depth[600]])
    ts, raw = lines[victim]
    msg = orjson.loads(raw)
    side = "b" if msg["data"]["b"] else "a"
    good_qty = msg["data"][side][0][1]
    msg["data"][side][0][1] = good_qty[:2] + "x" + good_qty[2:]  # e.g. "0.x3233200"
    lines[victim] = (ts, orjson.dumps(msg))
    bad_u = msg["data"]["u"]

    # the parser does not look inside level text
    parsed = venue_cls().new_parser().parse(lines[victim][1], ts)
    assert isinstance(parsed[0], BookEvent)
    assert getattr(parsed[0], "bids" if side == "b" else "asks")[0][1] == msg["data"][side][0][1]

    seen: dict[str, object] = {}

    def on_depth(r: Replay, ev: BookEvent) -> None:
        if ev.last_id == bad_u:
            seen["before"] = (r.book.items(Side.BID), r.book.items(Side.ASK))
            seen["updates"] = r.sync.updates_applied
        elif "before" in seen and "next" not in seen:
            # the message right after the corrupted one: book unchanged by the failed apply
            seen["next"] = (r.book.items(Side.BID), r.book.items(Side.ASK))
            seen["resyncs_before_next"] = list(r.resyncs)

    r = replay(venue_cls, lines, on_depth=on_depth)
    assert [e.last_id for e, _ in r.apply_errors] == [bad_u]
    assert isinstance(r.apply_errors[0][1], ValueError)
    assert seen["next"] == seen["before"]  # apply raised before mutating
    assert seen["resyncs_before_next"] == []
    assert r.resyncs == ["gap"]  # ... and the next message is a gap, never a silent skip
    assert r.sync.updates_applied == seen["updates"]
    assert r.sync.state is SyncState.SYNCING
    assert r.fetches == 2
    assert r.oracle()[1] == 0
