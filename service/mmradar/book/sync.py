"""The per-symbol book synchroniser: a sans-I/O state machine, identical for every venue.

::

    SYNCING ──snapshot + buffered deltas chain──► LIVE ──gap / checksum / crossed /
       ▲                                           │ ▲    reconnect / venue reset
       │                                mark_stale │ │ next depth message continues the
       │                                           ▼ │ sequence (or passes the checksum)
       └──── book cleared, counted ◄──── gap ──── STALE

While ``SYNCING`` a REST-snapshot venue's deltas are buffered and the shell is asked (once) to
fetch a snapshot; when it arrives the buffer is replayed through the venue's
``first_after_snapshot`` / ``next_in_sequence`` rules. A stream-snapshot venue is asked to
resubscribe and deltas are ignored until its snapshot arrives on the socket.

A book that might be wrong is never repaired: it is cleared, counted through ``on_resync`` and
rebuilt from a fresh snapshot. The synchroniser never reads a clock and never does I/O; it
returns :class:`FetchSnapshot` / :class:`Resubscribe` actions for the shell to carry out.

``STALE`` is about trust in time, not integrity (docs/metrics.md, ``reason="stale"``): the
shell marks a LIVE book stale when no depth message arrived for ``stale_after_seconds``. It is
not valid (``mmradar_book_valid`` 0, signals suppressed), but its levels and its position in the
venue's sequence are kept, and no snapshot is asked for. The next depth message is judged by
the same rules as on a LIVE book: one that continues the sequence (and passes the checksum,
where the venue sends one) makes the book LIVE again without a snapshot; a gap resyncs it.
Entering ``STALE`` is reported through ``on_resync("stale")`` (counted as a stale episode).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from mypy_extensions import mypyc_attr

from ..model import BookEvent, BookKind
from ..venues.base import SnapshotSource, Venue, Verdict
from .l2book import L2Book

__all__ = ["Action", "BookSync", "FetchSnapshot", "Resubscribe", "SyncState"]


class SyncState(enum.Enum):
    """Where a book is in its life cycle."""

    SYNCING = "syncing"
    LIVE = "live"
    STALE = "stale"


# Enum members as native constants: an enum attribute lookup is a slow generic getattr
# in compiled code, and these are read for every message.
_LIVE: Final = SyncState.LIVE
_SYNCING: Final = SyncState.SYNCING
_STALE: Final = SyncState.STALE
_SNAPSHOT: Final = BookKind.SNAPSHOT
_APPLY: Final = Verdict.APPLY
_DROP: Final = Verdict.DROP
_GAP: Final = Verdict.GAP


@dataclass(frozen=True, slots=True)
class FetchSnapshot:
    """Ask the shell to fetch a REST snapshot for ``symbol`` and hand it to ``on_snapshot``."""

    symbol: str


@dataclass(frozen=True, slots=True)
class Resubscribe:
    """Ask the shell to resubscribe ``symbol`` so the venue pushes a fresh snapshot."""

    symbol: str


Action = FetchSnapshot | Resubscribe


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class BookSync:
    """Keeps one :class:`L2Book` in sync with a venue's depth stream.

    Args:
        venue: supplies the bootstrap kind, the sequence rules and the checksum.
        symbol: the venue's spelling of the instrument.
        book: the book this synchroniser owns.
        on_resync: called with the reason every time a LIVE (or STALE) book is invalidated,
            and with ``"stale"`` when a LIVE book is marked stale.
        on_applied: called after every delta applied to a book that stays valid (tracing,
            tests); the book reflects that delta when it is called.
        max_buffer: deltas kept while waiting for a snapshot (oldest dropped first).
        max_buffered_levels: levels (all buffered deltas' together) kept while waiting for a
            snapshot, oldest deltas dropped first: the buffer's memory bound (a delta of a
            busy book at a fast pace holds tens of levels; 100,000 levels are ~12 MiB).
        max_levels_per_side: a book with more levels on one side is invalidated
            (``overflow``): never truncated, which would change its measures silently.
    """

    __slots__ = (
        "_awaiting_snapshot",
        "_buffer",
        "_buffered_levels",
        "_depth",
        "_last",
        "_max_buffer",
        "_max_buffered_levels",
        "_max_levels",
        "_on_applied",
        "_on_resync",
        "_rest",
        "_snapshot",
        "_venue",
        "book",
        "last_event_ns",
        "state",
        "symbol",
        "updates_applied",
    )

    def __init__(
        self,
        venue: Venue,
        symbol: str,
        book: L2Book,
        on_resync: Callable[[str], None] = lambda reason: None,
        max_buffer: int = 10_000,
        on_applied: Callable[[BookEvent], None] | None = None,
        max_buffered_levels: int = 100_000,
        max_levels_per_side: int = 100_000,
    ) -> None:
        self._venue = venue
        self._rest = venue.snapshot_source is SnapshotSource.REST
        self._depth = venue.max_depth
        self.symbol = symbol
        self.book = book
        self._on_resync = on_resync
        self._on_applied = on_applied
        self._buffer: deque[BookEvent] = deque()
        self._buffered_levels = 0
        self._max_buffer = max_buffer
        self._max_buffered_levels = max_buffered_levels
        self._max_levels = max_levels_per_side
        self._snapshot: BookEvent | None = None
        self._last: BookEvent | None = None
        self._awaiting_snapshot = False
        self.state = _SYNCING
        self.last_event_ns = 0  # venue event time of the last applied message
        self.updates_applied = 0

    @property
    def valid(self) -> bool:
        """True while the book is LIVE (in sync with the venue)."""
        return self.state is _LIVE

    # -- inputs ----------------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        """True while the book is STALE (kept, not valid, revalidated by the next message)."""
        return self.state is _STALE

    def on_event(self, event: BookEvent) -> Action | None:
        """Feed one depth event from the stream (delta, or a pushed snapshot)."""
        state = self.state
        if event.kind is _SNAPSHOT:
            if state is not _SYNCING and self._venue.is_reset(self._last or self._snapshot, event):
                self._on_resync("venue_reset")
            return self._load(event)
        if state is not _SYNCING:  # LIVE, or STALE (the same rules decide)
            last = self._last
            if last is None:
                snapshot = self._snapshot
                assert snapshot is not None
                verdict = self._venue.first_after_snapshot(snapshot, event)
            else:
                verdict = self._venue.next_in_sequence(last, event)
            if verdict is _APPLY:
                # A STALE book continues: the sequence (or the checksum in _apply) proves it.
                self.state = _LIVE
                return self._apply(event)
            if verdict is _DROP:
                return None
            return self._invalidate("gap", event)
        # SYNCING
        if not self._rest:
            return None  # waiting for the venue's snapshot on the socket
        self._buffer_delta(event)
        if not self._awaiting_snapshot:
            self._awaiting_snapshot = True
            return FetchSnapshot(self.symbol)
        return None

    def on_snapshot(self, snapshot: BookEvent) -> Action | None:
        """Load a snapshot (REST answer or pushed on the stream) and replay buffered deltas.

        A REST snapshot nobody is waiting for (one that was in flight when the book was
        invalidated again, or a duplicate) is ignored: the book asks afresh.
        """
        if self._rest and not self._awaiting_snapshot:
            return None
        return self._load(snapshot)

    def _load(self, snapshot: BookEvent) -> Action | None:
        self._awaiting_snapshot = False
        buffered = list(self._buffer)
        self._buffer.clear()
        self._buffered_levels = 0
        self.book.load(snapshot.bids, snapshot.asks)
        if self._depth is not None:
            self.book.truncate(self._depth)
        if self.book.max_side_levels() > self._max_levels:
            self.state = _LIVE  # counted like any overflow of a live book
            return self._invalidate("overflow", None)
        if (
            snapshot.checksum is not None
            and self._venue.verify_checksum(self.book, snapshot) is False
        ):
            # A snapshot that disagrees with its own checksum is never trusted.
            self.state = _LIVE  # counted like any checksum failure of a live book
            return self._invalidate("checksum", None)
        self._snapshot = snapshot
        self._last = None
        self.state = _LIVE
        self.last_event_ns = snapshot.ts_event_ns
        started = False
        # A local, not self._last: the type checker (and mypyc, which trusts it) would keep
        # the attribute narrowed to None across the _apply() calls below.
        last: BookEvent | None = None
        for i, event in enumerate(buffered):
            if last is None:
                verdict = self._venue.first_after_snapshot(snapshot, event)
            else:
                verdict = self._venue.next_in_sequence(last, event)
            if verdict is _DROP:
                continue
            if verdict is _GAP:
                if not started:
                    # The snapshot is older than the buffered stream (Binance step 4: "go back
                    # to 3"): not a broken book, just fetch again.
                    self.state = _SYNCING
                    self.book.clear()
                    self._buffer.extend(buffered[i:])
                    self._recount()
                    self._awaiting_snapshot = True
                    return FetchSnapshot(self.symbol)
                return self._invalidate("gap", event, buffered[i + 1 :])
            started = True
            action = self._apply(event, buffered[i + 1 :])
            if self.state is not _LIVE:
                return action
            last = event
        return self._check_book()

    def snapshot_failed(self) -> Action | None:
        """The shell could not fetch the snapshot; ask again on the next delta."""
        self._awaiting_snapshot = False
        return None

    def invalidate(self, reason: str) -> Action | None:
        """Invalidate the book from outside (``reconnect``); counted if it was LIVE or STALE."""
        return self._invalidate(reason, None)

    def mark_stale(self) -> bool:
        """Mark a LIVE book STALE (no depth message for a while): not valid, nothing cleared.

        Returns:
            True if the book was LIVE (the stale episode is reported through ``on_resync``).
        """
        if self.state is not _LIVE:
            return False
        self.state = _STALE
        self._on_resync("stale")
        return True

    # -- internals -------------------------------------------------------------------------

    def _apply(self, event: BookEvent, later: list[BookEvent] | None = None) -> Action | None:
        """Apply ``event``; on failure invalidate, keeping ``later`` buffered deltas."""
        self.book.apply(event.bids, event.asks)
        if self._depth is not None:
            self.book.truncate(self._depth)
        self._last = event
        self.last_event_ns = event.ts_event_ns
        self.updates_applied += 1
        if self.book.is_crossed():
            return self._invalidate("crossed", None, later)
        if self.book.max_side_levels() > self._max_levels:
            return self._invalidate("overflow", None, later)
        if event.checksum is not None:
            ok = self._venue.verify_checksum(self.book, event)
            if ok is False:
                return self._invalidate("checksum", None, later)
        if self._on_applied is not None:
            self._on_applied(event)
        return None

    def _buffer_delta(self, event: BookEvent) -> None:
        """Buffer a delta while waiting for a snapshot, within both bounds (oldest out)."""
        buffer = self._buffer
        buffer.append(event)
        self._buffered_levels += len(event.bids) + len(event.asks)
        while len(buffer) > 1 and (
            len(buffer) > self._max_buffer or self._buffered_levels > self._max_buffered_levels
        ):
            old = buffer.popleft()
            self._buffered_levels -= len(old.bids) + len(old.asks)

    def _recount(self) -> None:
        self._buffered_levels = sum(len(e.bids) + len(e.asks) for e in self._buffer)
        while len(self._buffer) > 1 and (
            len(self._buffer) > self._max_buffer
            or self._buffered_levels > self._max_buffered_levels
        ):
            old = self._buffer.popleft()
            self._buffered_levels -= len(old.bids) + len(old.asks)

    def _check_book(self) -> Action | None:
        if self.book.is_crossed():
            return self._invalidate("crossed", None)
        return None

    def _invalidate(
        self, reason: str, pending: BookEvent | None, more: list[BookEvent] | None = None
    ) -> Action | None:
        was_live = self.state is not _SYNCING
        self.state = _SYNCING
        self.book.clear()
        self._snapshot = None
        self._last = None
        self._buffer.clear()
        self._buffered_levels = 0
        if was_live:
            self._on_resync(reason)
        if not self._rest:
            return Resubscribe(self.symbol)
        # Keep the event after a gap: it is a valid future message for the next snapshot.
        if pending is not None:
            self._buffer.append(pending)
        if more:
            self._buffer.extend(more)
        self._recount()
        if self._buffer:
            self._awaiting_snapshot = True
            return FetchSnapshot(self.symbol)
        self._awaiting_snapshot = False
        return None
