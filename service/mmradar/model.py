"""The normalized vocabulary shared by venues, books, signals and metrics.

Price and quantity representation
---------------------------------
Venue modules hand levels over as the venue's own **exact decimal text** (``["61234.56",
"0.00120000"]``) — what every venue publishes (Kraken's JSON numbers are re-read as text by its
module) and what checksums are defined over — or, where no checksum needs the text, as the
float parsed from it by the JSON decoder (Binance: orjson reads the numbers itself, correctly
rounded, so the float is exactly ``float(text)``; far cheaper than converting each text in
Python). The book converts each text once, on apply, into a binary float and uses that float as
the level key. For every price a
venue can publish (at most 15 significant decimal digits) the text → float map is injective and
deterministic, so the float key identifies a level exactly; floats only *add up* inexactly
(depth notionals), never *identify* inexactly.

Time
----
Timestamps are integer nanoseconds since the Unix epoch: ``ts_event_ns`` is the venue's own
time for the message (receive time where the venue sends none), ``ts_recv_ns`` the local
receive time. Detectors run on ``ts_event_ns`` only (docs/signals.md).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "BAND_BPS",
    "RESYNC_REASONS",
    "BookEvent",
    "BookKind",
    "Event",
    "Levels",
    "Notice",
    "NoticeKind",
    "Side",
    "TakerSide",
    "Trade",
]

#: Depth bands, in basis points of mid (``band_bps`` label values, docs/metrics.md).
BAND_BPS: tuple[int, ...] = (10, 50, 100, 200)

#: ``mmradar_book_resyncs_total{reason}`` label values (docs/metrics.md).
RESYNC_REASONS: tuple[str, ...] = (
    "gap",
    "checksum",
    "crossed",
    "stale",
    "reconnect",
    "venue_reset",
    "overflow",
)

#: A side of levels: ``[[price, qty, ...], ...]``, each number the venue's exact decimal text or
#: the float parsed from that text (correctly rounded: the very float ``float(text)`` gives).
#: Extra trailing fields (OKX's order counts) are ignored. A zero quantity removes the level.
Levels = Sequence[Sequence[str | float]]


class Side(enum.Enum):
    """A side of the book."""

    BID = "bid"
    ASK = "ask"


class TakerSide(enum.Enum):
    """The aggressor of a trade: ``BUY`` lifted an ask, ``SELL`` hit a bid."""

    BUY = "buy"
    SELL = "sell"


class BookKind(enum.Enum):
    """Whether a book event replaces the book or changes it."""

    SNAPSHOT = "snapshot"
    DELTA = "delta"


class BookEvent(NamedTuple):
    """One venue depth message (or one snapshot), atomically applied.

    An immutable value type (a ``NamedTuple``: built once per venue message on the hot path,
    where it is three times cheaper to construct than a frozen dataclass).

    Attributes:
        symbol: the venue's own spelling (``BTCUSDT``, ``BTC-USD``).
        kind: snapshot (replace the book) or delta (set levels; zero quantity removes).
        bids: bid levels as exact decimal text.
        asks: ask levels as exact decimal text.
        first_id: first update id covered by the message (Binance ``U``); equal to ``last_id``
            for venues with one id per message.
        last_id: final update id (Binance ``u``/``lastUpdateId``, OKX ``seqId``, Bybit ``u``).
        prev_id: the id the venue says preceded this message (Binance USD-M ``pu``, OKX
            ``prevSeqId``), or ``None`` where the venue sends none.
        ts_event_ns: venue event time (receive time where the venue sends none).
        ts_recv_ns: local receive time.
        checksum: the venue's checksum of the book after this message, where it sends one.
    """

    symbol: str
    kind: BookKind
    bids: Levels
    asks: Levels
    first_id: int
    last_id: int
    prev_id: int | None
    ts_event_ns: int
    ts_recv_ns: int
    checksum: int | None = None


class Trade(NamedTuple):
    """One public trade with its aggressor side normalized (Binance ``m=true`` ⇒ ``SELL``)."""

    symbol: str
    price: float
    qty: float
    taker: TakerSide
    ts_event_ns: int
    ts_recv_ns: int


class NoticeKind(enum.Enum):
    """Connection-level messages that are neither depth nor trades."""

    SUBSCRIBED = "subscribed"  # a subscription acknowledgement
    HEARTBEAT = "heartbeat"  # venue keep-alive / pong
    SHUTDOWN = "shutdown"  # the venue will close the connection soon (reconnect now)
    CONNECTION_GAP = "connection_gap"  # a per-connection sequence broke: resync every book on it
    ERROR = "error"  # the venue reported an error for a request


@dataclass(frozen=True, slots=True)
class Notice:
    """A connection-level message, with a short human-readable detail."""

    kind: NoticeKind
    detail: str = ""


#: Everything a venue parser can produce from one frame.
Event = BookEvent | Trade | Notice
