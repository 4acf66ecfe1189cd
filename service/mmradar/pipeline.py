"""The pure per-feed pipeline: frame → parser → book synchroniser → book → signals.

This is the whole per-message path of the service, with no I/O and no clock: the live feed
runner (:mod:`mmradar.feed`) and the replayer (:mod:`mmradar.replay`) drive the *same* object,
handing it frames with their receive timestamps and carrying out the :data:`Command` s it
returns (fetch a snapshot, resubscribe, reconnect). Counting goes through the injected
:class:`FeedObserver`, so the core never imports ``prometheus_client``.

Signals: each :class:`SymbolState` owns a :class:`~mmradar.signals.engine.SignalEngine`. Before
a depth message is applied, the engine's 1-s stat clock is advanced to the message's event time
(on the book still in force); after it is applied to a valid book the engine reads the touch
(O(1)); every trade goes to it; an invalidation (resync) ends its episodes. Episode starts and
ends are handed to ``on_episode`` synchronously (the shell must only enqueue them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from .book.l2book import L2Book
from .book.sync import BookSync, FetchSnapshot, Resubscribe
from .contracts import ContractSize
from .errors import MalformedMessage, ParseError
from .histograms import LATENCY_BUCKETS, FastHistogram
from .model import BookEvent, BookKind, Notice, NoticeKind, Trade
from .signals.engine import SignalEngine
from .signals.episodes import EpisodeEvent
from .signals.market import MarketParams, MarketState
from .signals.params import SignalSettings
from .venues.base import FrameParser, Venue

__all__ = [
    "BAD_MESSAGE_REASONS",
    "Command",
    "FeedObserver",
    "FeedPipeline",
    "NullObserver",
    "Reconnect",
    "SymbolState",
]

#: ``mmradar_feed_bad_messages_total{reason}`` label values.
BAD_MESSAGE_REASONS: tuple[str, ...] = ("malformed", "unknown", "unknown_symbol", "venue_error")


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Ask the shell to drop and re-open the connection the frame came from.

    ``resync_reason`` is what the books on that connection are invalidated with.
    """

    reason: str
    resync_reason: str = "reconnect"


Command = FetchSnapshot | Resubscribe | Reconnect


class FeedObserver(Protocol):
    """Receives the pipeline's rare events (implemented by :class:`mmradar.metrics.FeedMetrics`).

    The per-frame flows (frames received, feed latency) are not reported through it: the
    pipeline keeps them itself (:attr:`FeedPipeline.frames`, :attr:`FeedPipeline.latency`).
    """

    def bad_message(self, reason: str) -> None: ...
    def resync(self, symbol: str, reason: str) -> None: ...


class NullObserver:
    """A :class:`FeedObserver` that counts nothing (benchmarks, ad-hoc use)."""

    def bad_message(self, reason: str) -> None:
        pass

    def resync(self, symbol: str, reason: str) -> None:
        pass


class _Relay:
    """Forwards to :attr:`FeedPipeline.observer` as it is *when called*, so that an observer
    set after construction (the feed runner wraps it to log resyncs) sees every event."""

    __slots__ = ("_pipeline",)

    def __init__(self, pipeline: FeedPipeline) -> None:
        self._pipeline = pipeline

    def bad_message(self, reason: str) -> None:
        self._pipeline.observer.bad_message(reason)

    def resync(self, symbol: str, reason: str) -> None:
        self._pipeline.observer.resync(symbol, reason)


class SymbolState:
    """One (exchange, symbol): its book, synchroniser, market state and signal engine.

    A resync and a stale episode alike end the signal engine's book life (episodes end, the
    warm-up restarts when the book is valid again): nothing is computed from a book that is
    not valid. Only the resync clears the book.
    """

    __slots__ = ("book", "engine", "exchange", "last_depth_recv_ns", "market", "symbol", "sync")

    def __init__(
        self,
        venue: Venue,
        symbol: str,
        observer: FeedObserver,
        params: MarketParams,
        signal_params: SignalSettings | None = None,
        on_episode: Callable[[EpisodeEvent], None] | None = None,
    ) -> None:
        self.exchange = venue.name
        self.symbol = symbol
        self.book = L2Book(keep_text=venue.book_keeps_text)
        self.market = MarketState(params)
        self.engine = SignalEngine(
            venue.name, symbol, self.book, self.market, signal_params, on_episode
        )
        self.last_depth_recv_ns = 0

        def on_resync(reason: str) -> None:
            observer.resync(symbol, reason)
            self.market.reset_book()
            self.engine.on_invalid(self.sync.last_event_ns)

        self.sync = BookSync(venue, symbol, self.book, on_resync=on_resync)

    @property
    def valid(self) -> bool:
        """True while the book is in sync (``mmradar_book_valid``)."""
        return self.sync.valid


_NO_COMMANDS: list[Command] = []
_SNAPSHOT: Final = BookKind.SNAPSHOT


class FeedPipeline:
    """Everything one ``[[feeds]]`` entry computes, driven by frames and timestamps.

    Args:
        venue: the venue module instance.
        symbols: configured symbols (venue spelling); events for others are counted as bad.
        observer: receives counts.
        params: market-state parameters.
        signal_params: detector parameters (``[signals]``; defaults if None).
        on_episode: receives every symptom episode start and end (synchronously, from inside
            :meth:`on_frame`; it must not block or raise).
    """

    def __init__(
        self,
        venue: Venue,
        symbols: Sequence[str],
        observer: FeedObserver | None = None,
        params: MarketParams | None = None,
        signal_params: SignalSettings | None = None,
        on_episode: Callable[[EpisodeEvent], None] | None = None,
    ) -> None:
        self.venue = venue
        self.observer: FeedObserver = observer or NullObserver()
        #: frames received (``mmradar_feed_messages_total``)
        self.frames = 0
        #: receive time − venue event time (``mmradar_feed_latency_seconds``)
        self.latency = FastHistogram(LATENCY_BUCKETS)
        params = params or MarketParams()
        relay = _Relay(self)
        self.instruments: dict[str, SymbolState] = {
            s: SymbolState(venue, s, relay, params, signal_params, on_episode) for s in symbols
        }
        # symbol → the parser (connection) its last stream snapshot came through
        self._carriers: dict[str, FrameParser] = {}

    def new_parser(self) -> FrameParser:
        """A frame parser for a new connection."""
        return self.venue.new_parser()

    def use_contracts(self, sizes: Mapping[str, ContractSize]) -> None:
        """Start-up, before any frame: these symbols' venue quantities are contracts (the
        books convert level quantities, the venue's parsers trade sizes; mmradar.contracts)."""
        self.venue.use_contracts(sizes)
        for symbol, size in sizes.items():
            self.instruments[symbol].book.set_contract(size.multiplier, size.inverse)

    # -- inputs ----------------------------------------------------------------------------

    def on_frame(self, parser: FrameParser, raw: bytes | str, ts_recv_ns: int) -> list[Command]:
        """Process one websocket frame received at ``ts_recv_ns`` (wall clock, ns)."""
        observer = self.observer
        self.frames += 1
        try:
            events = parser.parse(raw, ts_recv_ns)
        except ParseError as exc:
            observer.bad_message(exc.reason)
            if exc.symbols:
                # The frame carried depth updates: lost, their books are no longer right.
                return self.invalidate([s for s in exc.symbols if s in self.instruments], "gap")
            return _NO_COMMANDS
        commands: list[Command] = _NO_COMMANDS
        reconnecting = False  # a gap on a reconnect_on_gap venue: this connection is replaced
        for event in events:
            if type(event) is BookEvent:
                if reconnecting:
                    continue  # from the broken stream; the new connection brings snapshots
                inst = self.instruments.get(event.symbol)
                if inst is None:
                    observer.bad_message("unknown_symbol")
                    continue
                ts_event = event.ts_event_ns
                self.latency.observe((ts_recv_ns - ts_event) * 1e-9)
                inst.last_depth_recv_ns = ts_recv_ns
                if event.kind is _SNAPSHOT:
                    self._carriers[event.symbol] = parser  # the connection now carrying it
                sync = inst.sync
                engine = inst.engine
                if ts_event >= engine.next_tick_ns:  # far future unless the book is valid
                    engine.advance(ts_event)
                applied = sync.updates_applied
                if sync.valid:
                    engine.before_delta(event)  # pulled vs traded: reads the sizes it replaces
                try:
                    action = sync.on_event(event)
                except (ValueError, TypeError, IndexError):
                    # A level that is not [price_text, qty_text]: the book was left untouched,
                    # but an update is lost, so the book is no longer right: resync now.
                    observer.bad_message("malformed")
                    action = sync.invalidate("gap")
                if sync.valid:
                    engine.on_depth(ts_event, sync.updates_applied != applied)
                if action is not None:
                    if commands is _NO_COMMANDS:
                        commands = []
                    commands.append(action)
            elif type(event) is Trade:
                inst = self.instruments.get(event.symbol)
                if inst is None:
                    observer.bad_message("unknown_symbol")
                    continue
                self.latency.observe((ts_recv_ns - event.ts_event_ns) * 1e-9)
                inst.engine.on_trade(event.qty, event.taker, event.ts_event_ns, event.price)
            elif type(event) is Notice:
                kind = event.kind
                if kind is NoticeKind.SHUTDOWN:
                    commands = [*commands, Reconnect("venue_closing")]
                elif kind is NoticeKind.CONNECTION_GAP:
                    # A per-connection sequence (Coinbase) broke: every book whose snapshot
                    # came on this connection may have missed an update (books on the feed's
                    # other connections are not concerned).
                    carried = [s for s, p in self._carriers.items() if p is parser]
                    resyncs = self.invalidate(carried, "gap")
                    if self.venue.reconnect_on_gap:
                        # Healed by a new connection, whose subscriptions bring snapshots
                        # (the resyncs' resubscribes are moot); trades still count.
                        if not reconnecting:
                            reconnecting = True
                            commands = [*commands, Reconnect("gap", "gap")]
                    else:
                        commands = [*commands, *resyncs]
                elif kind is NoticeKind.ERROR:
                    observer.bad_message("venue_error")
        return commands

    def on_snapshot(self, symbol: str, body: bytes, ts_recv_ns: int) -> list[Command]:
        """Hand a REST snapshot body for ``symbol`` to its synchroniser.

        Raises:
            MalformedMessage: the body is not a depth snapshot (the caller retries).
        """
        inst = self.instruments[symbol]
        event = self.venue.parse_snapshot(symbol, body, ts_recv_ns)
        try:
            action = inst.sync.on_snapshot(event)
        except (ValueError, TypeError, IndexError) as exc:
            inst.sync.invalidate("gap")
            raise MalformedMessage(self.venue.name, f"bad snapshot levels: {exc!r}") from exc
        if inst.sync.valid:
            inst.engine.on_depth(inst.sync.last_event_ns)
        return [action] if action is not None else []

    def snapshot_failed(self, symbol: str) -> None:
        """A snapshot fetch failed; the next delta asks again."""
        self.instruments[symbol].sync.snapshot_failed()

    def invalidate(self, symbols: Iterable[str], reason: str) -> list[Command]:
        """Invalidate books from outside (``reconnect``, ``gap``): cleared and resynced."""
        commands: list[Command] = []
        for symbol in symbols:
            action = self.instruments[symbol].sync.invalidate(reason)
            if action is not None:
                commands.append(action)
        return commands

    def mark_stale(self, now_ns: int, stale_after_ns: int) -> list[str]:
        """Mark LIVE books with no depth message for ``stale_after_ns`` (wall clock) STALE.

        A stale book reads not valid and its signals stop, but it is not resynced: the next
        depth message that continues the venue's sequence (or passes its checksum) makes it
        valid again without a snapshot (:meth:`BookSync.mark_stale`).

        Returns:
            The symbols that became stale now.
        """
        stale = [
            s
            for s, inst in self.instruments.items()
            if inst.valid and now_ns - inst.last_depth_recv_ns > stale_after_ns
        ]
        for symbol in stale:
            self.instruments[symbol].sync.mark_stale()
        return stale
