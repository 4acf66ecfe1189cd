"""The venue interface: everything that differs between exchanges, and nothing else.

A venue module is sans-I/O. It says *where* to connect and *what* to send
(:meth:`Venue.connections`), turns frames into normalized events (:meth:`Venue.new_parser`),
says how to ask for and read a REST snapshot (REST-snapshot venues), and supplies the venue's
sequence rule and checksum. The feed runner (:mod:`mmradar.feed`) does the I/O; the book
synchroniser (:mod:`mmradar.book.sync`) applies the rules. Neither branches on the venue.

Two bootstraps cover the six venues (docs/venues/):

* ``SnapshotSource.REST`` (Binance spot and USD-M; OKX after its WS snapshot is delisted): buffer
  deltas, fetch ``snapshot_request(symbol)``, then apply the buffer through
  ``first_after_snapshot`` / ``next_in_sequence``.
* ``SnapshotSource.STREAM`` (Coinbase, Kraken, Bybit, OKX today): the venue pushes a snapshot on
  the socket after (re)subscribing; a gap is healed with ``resubscribe(symbol)``.

Sequence rules come in three shapes, all expressed through the two verdict methods: per-symbol
contiguous ids (Binance spot ``U == prev_u + 1``, Bybit ``u``), per-symbol identity chains
(Binance USD-M ``pu == prev_u``, OKX ``prevSeqId == seqId``), and per-connection counters
(Coinbase ``sequence_num``), which the venue's stateful frame parser checks itself and reports
as a ``Notice(CONNECTION_GAP)``. Checksum venues (Kraken CRC32) implement ``verify_checksum``.

Units: a venue whose quantities are not in the base currency (OKX derivatives publish contracts)
names the REST requests for its instrument metadata (``contract_requests``) and reads the answers
(``parse_contracts``); the shell makes them once at start-up, before any connection, and hands
the sizes to the pipeline, which tells the books and the venue (``use_contracts``; the venue's
parsers convert trade sizes). :mod:`mmradar.contracts` has the rule.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import orjson

from ..contracts import ContractSize
from ..errors import MalformedMessage
from ..instruments import parse_instrument
from ..model import BookEvent, Event

if TYPE_CHECKING:
    from ..book.l2book import L2Book

__all__ = [
    "ConnectionPlan",
    "FrameParser",
    "SnapshotRequest",
    "SnapshotSource",
    "Venue",
    "Verdict",
    "decode_object",
]


def decode_object(venue: str, raw: bytes | str) -> dict[str, Any]:
    """A frame's JSON object.

    Raises:
        MalformedMessage: the frame is not JSON, or not a JSON object.
    """
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(venue, "not JSON", raw) from exc
    if type(msg) is not dict:
        raise MalformedMessage(venue, "not a JSON object", raw)
    return msg


class SnapshotSource(enum.Enum):
    """Where a book's initial state comes from."""

    REST = "rest"
    STREAM = "stream"


class Verdict(enum.Enum):
    """What to do with a delta given the book's current position in the venue's sequence."""

    APPLY = "apply"  # the next message in the chain: apply it
    DROP = "drop"  # already contained in the book (older than the snapshot): ignore it
    GAP = "gap"  # something was missed: the book is invalid, resync


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    """One websocket connection a feed needs.

    Attributes:
        name: stable, human-readable name used in logs (``binance-usdm/public#0``).
        url: full websocket URL, streams included where the venue puts them in the URL.
        depth_symbols: symbols whose depth stream this connection carries.
        trade_symbols: symbols whose trade stream this connection carries.
        subscribe: text frames to send right after connecting.
    """

    name: str
    url: str
    depth_symbols: tuple[str, ...]
    trade_symbols: tuple[str, ...]
    subscribe: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotRequest:
    """A REST depth-snapshot request and its cost against the venue's request-weight budget."""

    url: str
    weight: int


class FrameParser(Protocol):
    """Turns one websocket frame into normalized events. One instance per connection.

    Raises:
        MalformedMessage: the frame is not JSON or has the wrong shape.
        UnknownMessage: a well-formed message of a kind the venue module does not handle.
    """

    def parse(self, raw: bytes | str, ts_recv_ns: int) -> Sequence[Event]: ...


class Venue(abc.ABC):
    """A venue's wire knowledge. Immutable after construction, but for :attr:`contract_sizes`
    (set once at start-up, before any parser exists).

    Args:
        ws_base: ``scheme://host:port`` replacing the venue's websocket host (config
            ``ws_url``); the venue's own paths and queries are appended.
        rest_base: the same for REST (config ``rest_url``).
    """

    #: config ``exchange`` value, also the ``exchange`` metric label.
    name: ClassVar[str]
    snapshot_source: ClassVar[SnapshotSource]
    #: REST request-weight budget per ``rest_window_s`` (per IP; a minute unless the venue
    #: counts over a shorter window); the feed allows itself half of it.
    rest_weight_per_minute: ClassVar[int] = 0
    rest_window_s: ClassVar[float] = 60.0
    #: least time between two REST snapshot requests of one symbol (a venue whose REST book
    #: is cached can answer with one older than the buffered stream; asking again at once
    #: would burn the budget).
    snapshot_refetch_delay_s: ClassVar[float] = 0.0
    #: client frames per second the venue accepts (per connection, or per IP where the venue
    #: counts so); ``None`` = unpaced. The feed paces every frame it sends (subscribes,
    #: resubscribes, keep-alives) per connection, each connection at an equal share of this
    #: rate, so it holds on every connection and for all of them together.
    max_messages_per_s: ClassVar[float | None] = None
    #: the feed opens its connections at least this far apart (venue connection-rate limits).
    connect_interval_s: ClassVar[float] = 0.0
    #: a stream-snapshot book still waiting for its snapshot this long after a resubscribe is
    #: resubscribed again (a refused or lost request must not leave it invalid for good).
    resubscribe_timeout_s: ClassVar[float] = 10.0
    #: application-level keep-alive text frame and its period, for venues that need one.
    keepalive_text: ClassVar[str | None] = None
    keepalive_interval_s: ClassVar[float] = 20.0
    #: connection liveness: a connection from which nothing at all (frames, pings, pongs)
    #: arrived for this long is dropped and reopened. It must exceed the longest interval at
    #: which something is guaranteed to arrive: the venue's heartbeat or ping frames, or the
    #: answer to the feed's own keep-alive (``keepalive_interval_s``) and websocket pings
    #: (every 20 s). Book staleness (``stale_after_seconds``) is separate: a quiet book on a
    #: live connection is not a dead connection.
    heartbeat_window_s: ClassVar[float] = 60.0
    #: Largest websocket frame accepted; a bigger one closes the connection (1009) and is
    #: counted as a reconnect. 16 MiB is far above any venue's real frames (the largest are
    #: full-book snapshots of a few MiB, Coinbase level2); docs/reliability.md.
    max_frame_bytes: ClassVar[int] = 16 * 1024 * 1024
    #: levels per side the venue's protocol keeps (Kraken's subscribed depth): the book is
    #: truncated to it after every message, before the checksum. ``None`` = no truncation rule.
    max_depth: ClassVar[int | None] = None
    #: the checksum is defined over the venue's level text (OKX): books keep it.
    book_keeps_text: ClassVar[bool] = False
    #: reconnect proactively before the venue's own connection age limit (seconds).
    max_connection_age_s: ClassVar[float | None] = None
    #: how a broken per-connection sequence (``Notice(CONNECTION_GAP)``) is healed: ``True``
    #: drops and reopens the connection (its subscribe messages bring fresh snapshots),
    #: ``False`` resyncs each book of the connection on its own (resubscribe or snapshot).
    reconnect_on_gap: ClassVar[bool] = False

    def __init__(self, ws_base: str | None = None, rest_base: str | None = None) -> None:
        self.ws_base = ws_base.rstrip("/") if ws_base else None
        self.rest_base = rest_base.rstrip("/") if rest_base else None
        #: contract sizes of the symbols whose quantities are not base units, set once at
        #: start-up (:meth:`use_contracts`) before any parser is made; read by the parsers.
        self.contract_sizes: dict[str, ContractSize] = {}

    @abc.abstractmethod
    def connections(self, symbols: Sequence[str], *, trades: bool) -> list[ConnectionPlan]:
        """Plan the websocket connections for ``symbols`` (depth, and trades if ``trades``)."""

    @abc.abstractmethod
    def new_parser(self) -> FrameParser:
        """A frame parser for one connection (stateful where the venue sequences per connection)."""

    def snapshot_request(self, symbol: str) -> SnapshotRequest:
        """The REST snapshot request for ``symbol`` (REST-snapshot venues only)."""
        raise NotImplementedError(f"{self.name} books bootstrap from the stream")

    def parse_snapshot(self, symbol: str, body: bytes, ts_recv_ns: int) -> BookEvent:
        """Parse a REST snapshot body into a ``SNAPSHOT`` event (REST-snapshot venues only).

        Raises:
            MalformedMessage: the body is not a depth snapshot.
        """
        raise NotImplementedError(f"{self.name} books bootstrap from the stream")

    def resubscribe(self, symbol: str) -> tuple[str, ...]:
        """Text frames that make the venue push a fresh snapshot (stream-snapshot venues)."""
        raise NotImplementedError(f"{self.name} books bootstrap from REST")

    def resubscribe_many(self, symbols: Sequence[str]) -> tuple[str, ...]:
        """Frames resubscribing several symbols of one connection (default: one by one)."""
        return tuple(text for symbol in symbols for text in self.resubscribe(symbol))

    def is_reset(self, previous: BookEvent | None, snapshot: BookEvent) -> bool:
        """Whether a snapshot pushed onto a LIVE book is a venue reset (counted, the signals
        restart) or a mere refresh of the same book (Bybit re-pushes unchanged books).

        ``previous`` is the last applied delta (or the snapshot in force). The book is
        replaced either way.
        """
        return True

    @abc.abstractmethod
    def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
        """Verdict on a delta when nothing has been applied on top of ``snapshot`` yet."""

    @abc.abstractmethod
    def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
        """Verdict on ``delta`` given the last applied delta ``previous``."""

    def contract_requests(self, symbols: Sequence[str]) -> list[SnapshotRequest]:
        """The REST requests for the instrument metadata of ``symbols``' contracts, made once at
        start-up before any connection; ``[]`` when every quantity is already in base units.

        Raises:
            ContractError: a symbol of a kind this module cannot convert (refused before any
                I/O, when the service is built).
        """
        return []

    def parse_contracts(
        self, symbols: Sequence[str], bodies: Sequence[bytes]
    ) -> dict[str, ContractSize]:
        """The contract size of every symbol of ``symbols`` that needs one, from the answers
        to :meth:`contract_requests` (same order).

        Raises:
            MalformedMessage: an answer is not the venue's instrument list (the shell retries).
            ContractError: the venue's answer leaves a symbol's contract value unknown.
        """
        return {}

    def use_contracts(self, sizes: Mapping[str, ContractSize]) -> None:
        """Start-up only: the sizes the venue's parsers convert trade quantities with."""
        self.contract_sizes.update(sizes)

    def symbol_problem(self, symbol: str) -> str | None:
        """Why ``symbol`` cannot be followed on this venue (a configuration error naming the
        key), or ``None`` when the venue module has no objection."""
        return None

    def instrument(self, symbol: str) -> str | None:
        """The canonical instrument id of ``symbol`` (``BTC-USD``) for the cross-venue view.

        The generic rule (:func:`mmradar.instruments.parse_instrument`) reads separators and
        quote suffixes; a venue with other spellings overrides this. ``None``: not comparable.
        """
        parsed = parse_instrument(symbol)
        return parsed.id if parsed is not None else None

    def used_weight(self, headers: Mapping[str, str]) -> int | None:
        """The request weight the venue reports as spent this minute, if it reports it."""
        return None

    def verify_checksum(self, book: L2Book, event: BookEvent) -> bool | None:
        """Check ``book`` (after applying ``event``) against the venue's checksum.

        Returns ``None`` when the venue (or this message) carries no checksum.
        """
        return None
