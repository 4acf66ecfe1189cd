"""Kraken spot (``kraken``): WebSocket v2 ``book`` at depth 1000, CRC32 checksum, ``trade``.

Wire format (docs/venues/kraken.md; Kraken docs under
https://docs.kraken.com/exchange/api-reference/spot-websocket-v2/ : ``book``, ``trade``,
``instrument``, ``heartbeat``, ``ping``; and
https://docs.kraken.com/exchange/guides/websockets/book-checksum-v2):

* One endpoint, ``wss://ws.kraken.com/v2``; symbols are spelled ``BTC/USD`` (v1 said ``XBT/USD``).
  Requests are JSON objects ``{"method": "subscribe"|"unsubscribe"|"ping", "params": {...},
  "req_id": int}``; every subscribe/unsubscribe is answered per symbol::

      {"method":"subscribe","result":{"channel":"book","depth":1000,"snapshot":true,
       "symbol":"BTC/USD"},"success":true,"time_in":"…","time_out":"…","req_id":2}
      {"error":"Currency pair not supported","method":"subscribe","success":false,
       "symbol":"XBT/USD","time_in":"…","time_out":"…","req_id":2}

* ``book``: a snapshot after every subscribe, then updates; **prices and quantities are JSON
  numbers**, and a CRC32 ``checksum`` of the top 10 levels rides on **every** message (v1 sent
  it on updates only)::

      {"channel":"book","type":"snapshot","data":[{"symbol":"ALGO/USD",
        "bids":[{"price":0.12291,"qty":27039.62776299}],"asks":[{"price":0.12307,"qty":600.0}],
        "checksum":2375857985}]}
      {"channel":"book","type":"update","data":[{"symbol":"ALGO/USD",
        "bids":[{"price":0.12275,"qty":6597.51731160}],"asks":[],"checksum":1100635717,
        "timestamp":"2024-10-03T02:46:57.050170Z"}]}

  ``qty`` 0 removes a level. There is no sequence number: the checksum is the only integrity
  check, so every delta is applied (:meth:`Kraken.first_after_snapshot` and
  :meth:`Kraken.next_in_sequence` always say ``APPLY``). After every message the book is
  truncated to the subscribed depth (``max_depth``): the venue sends no ``qty: 0`` for levels
  pushed out of scope, only for levels that were removed.
* ``instrument``: reference data of every pair, including ``price_precision`` and
  ``qty_precision`` (decimal places), as a snapshot and later updates::

      {"channel":"instrument","type":"snapshot","data":{"assets":[...],"pairs":[
        {"symbol":"BTC/USD","base":"BTC","quote":"USD","status":"online","qty_precision":8,
         "qty_increment":1e-08,"price_precision":1,"price_increment":0.1,...}]}}

* ``trade``: ``{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"buy",
  "price":0.5147,"qty":6423.46326,"ord_type":"limit","trade_id":4665846,
  "timestamp":"2023-09-25T07:48:36.925533Z"}]}``. ``side`` is the **taker** order direction, so
  it is the aggressor as is. Subscribed with ``"snapshot": false``: the optional snapshot
  replays recent trades, which would be counted twice across reconnects (trade snapshots that
  arrive anyway are ignored).
* ``{"channel":"heartbeat"}`` about once a second while subscribed; ``{"channel":"status",...}``
  on connect; ``{"method":"ping","req_id":n}`` is answered by ``{"method":"pong",...}``.

Exact level text
----------------
The checksum is defined over each price and quantity printed with the pair's precision
(``0.12307``/``600.00000000`` → ``"12307"`` + ``"60000000000"``), but v2 sends JSON numbers
whose text a JSON decoder does not keep. Each connection therefore subscribes to ``instrument``
first: the frame parser (one per connection) learns every pair's ``price_precision`` and
``qty_precision`` and turns each decoded number into the exact decimal text at parse time with
``"%.{precision}f" % number``. That is exact whenever the printed text has at most 15
significant digits (every decimal of ≤15 significant digits survives the round trip through a
binary double); a number at or above ``10**(15 - precision)`` could have more, and then the
whole frame is decoded again with :class:`decimal.Decimal` numbers (the Kraken doc's own tip),
which is exact for any length. Until a pair's precision is known (a book frame overtaking the
instrument snapshot), its numbers are read the same exact way and kept as the venue printed
them. The book keeps this text (``book_keeps_text``) and the checksum reads it back
(:func:`checksum_of`).

Checksum (https://docs.kraken.com/exchange/guides/websockets/book-checksum-v2): the top 10 asks
best (lowest) first, then the top 10 bids best (highest) first; for each level the price text
with ``.`` removed and leading zeros stripped, then the quantity text likewise; CRC32 of the
concatenation, unsigned, against ``checksum``. A mismatch invalidates the book (reason
``checksum``); it is healed by resubscribing (unsubscribe + subscribe), which makes the venue
push a fresh snapshot.

Limits: the spot WebSocket message rate is dynamic ("Exceeded msg rate"), so requests are
batched: one ``subscribe`` per channel carries up to :data:`SYMBOLS_PER_REQUEST` symbols, a
connection carries at most :data:`MAX_SYMBOLS_PER_CONNECTION` symbols (book and trades of the
same symbols share it), a resubscribe is two frames for one symbol, and every frame is paced
at :attr:`Kraken.max_messages_per_s` per connection. Kraken documents no connection age
limit. The application ``ping`` is sent every :attr:`Kraken.keepalive_interval_s` (the venue's
heartbeats keep the connection from looking stale in between).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

import orjson

from ..errors import MalformedMessage, UnknownMessage
from ..model import BookEvent, BookKind, Event, Notice, NoticeKind, Side, TakerSide, Trade
from .base import ConnectionPlan, FrameParser, SnapshotSource, Venue, Verdict, decode_object
from .timestamps import parse_rfc3339_ns

if TYPE_CHECKING:
    from ..book.l2book import L2Book

__all__ = [
    "BOOK_DEPTH",
    "CHECKSUM_LEVELS",
    "MAX_SYMBOLS_PER_CONNECTION",
    "SYMBOLS_PER_REQUEST",
    "Kraken",
    "KrakenParser",
    "checksum_of",
    "level_digits",
]

_SYMBOL_FIELD = re.compile(r'"symbol"\s*:\s*"([^"]{1,40})"')

#: Subscribed book depth: the largest Kraken offers (10, 25, 100, 500 or 1000).
BOOK_DEPTH: Final = 1000
#: Levels per side the checksum covers, whatever the subscribed depth.
CHECKSUM_LEVELS: Final = 10
#: Symbols named in one subscribe request (keeps the request count low under the dynamic rate).
SYMBOLS_PER_REQUEST: Final = 20
#: Symbols carried by one connection (book and trades of the same symbols).
MAX_SYMBOLS_PER_CONNECTION: Final = 100

_WS_HOST: Final = "wss://ws.kraken.com"
_WS_PATH: Final = "/v2"
#: Beyond this many significant digits a binary double may not hold the venue's decimal.
_EXACT_DIGITS: Final = 15

# Enum members as native constants (read for every message).
_DELTA: Final = BookKind.DELTA
_SNAPSHOT: Final = BookKind.SNAPSHOT
_BUY: Final = TakerSide.BUY
_SELL: Final = TakerSide.SELL
_APPLY: Final = Verdict.APPLY
_ASK: Final = Side.ASK
_BID: Final = Side.BID
_tuple_new: Final = tuple.__new__
_SUBSCRIBED = (Notice(NoticeKind.SUBSCRIBED),)
_HEARTBEAT = (Notice(NoticeKind.HEARTBEAT),)
_NOTHING: tuple[Event, ...] = ()
_TAKER: Final = {"buy": _BUY, "sell": _SELL}


def level_digits(text: str) -> str:
    """One price or quantity as the checksum string wants it: ``.`` removed, leading zeros
    stripped (``"0.00100000"`` → ``"100000"``, ``"45285.2"`` → ``"452852"``)."""
    return text.replace(".", "").lstrip("0")


def checksum_of(asks: Iterable[Sequence[str]], bids: Iterable[Sequence[str]]) -> int:
    """CRC32 (unsigned) of Kraken's checksum string for these levels.

    Args:
        asks: the top ask levels, best (lowest) first, as ``(price_text, qty_text)``.
        bids: the top bid levels, best (highest) first.

    The same rule serves WebSocket v1 (strings on the wire) and v2 (numbers printed with the
    pair's precision).
    """
    parts = [level_digits(p) + level_digits(q) for p, q, *_ in asks]
    parts += [level_digits(p) + level_digits(q) for p, q, *_ in bids]
    return zlib.crc32("".join(parts).encode("ascii"))


class _Precision:
    """A pair's decimal places and the magnitudes below which a double is exact."""

    __slots__ = ("price_fmt", "price_limit", "price_spec", "qty_fmt", "qty_limit", "qty_spec")

    def __init__(self, price_precision: int, qty_precision: int) -> None:
        self.price_spec = f".{price_precision}f"  # format() spec, exact for Decimal
        self.qty_spec = f".{qty_precision}f"
        self.price_fmt = "%" + self.price_spec  # printf format, fast for float and int
        self.qty_fmt = "%" + self.qty_spec
        self.price_limit = 10.0 ** (_EXACT_DIGITS - price_precision)
        self.qty_limit = 10.0 ** (_EXACT_DIGITS - qty_precision)


def _book_symbols(raw: bytes | str) -> tuple[str, ...]:
    """The symbols a ``book`` frame names, read from its text (it may not be valid JSON)."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    if '"book"' not in text:
        return ()
    return tuple(dict.fromkeys(_SYMBOL_FIELD.findall(text)))


def _exact_text(number: Any, spec: str | None) -> str:
    """Decimal text of a number decoded exactly (``Decimal`` or ``int``).

    With ``spec`` (``".5f"``) it is printed with the pair's precision; without, as the venue
    wrote it.
    """
    if type(number) is not Decimal and type(number) is not int:
        raise TypeError(f"not a number: {number!r}")
    if spec is not None:
        return format(Decimal(number), spec)
    return format(number, "f") if type(number) is Decimal else str(number)


class KrakenParser:
    """Frame parser for one Kraken v2 connection.

    Stateful: it remembers the precision of every pair from the connection's ``instrument``
    channel (see the module docstring, "Exact level text").
    """

    __slots__ = ("_precision", "_ts_cache", "_venue")

    def __init__(self, venue: str = "kraken") -> None:
        self._venue = venue
        self._precision: dict[str, _Precision] = {}
        self._ts_cache: list[Any] = ["", 0]  # [seconds prefix, epoch seconds]

    def precision(self, symbol: str) -> tuple[str, str] | None:
        """The ``(price, qty)`` printf formats learned for ``symbol``, if any."""
        p = self._precision.get(symbol)
        return None if p is None else (p.price_fmt, p.qty_fmt)

    def parse(self, raw: bytes | str, ts_recv_ns: int) -> Sequence[Event]:
        try:
            msg = decode_object(self._venue, raw)
        except MalformedMessage as exc:
            # Kraken's books carry no sequence and the checksum covers the top 10 levels only:
            # a book update lost to a bad frame may never be noticed, so its books resync.
            exc.symbols = _book_symbols(raw)
            raise
        channel = msg.get("channel")
        try:
            if channel == "book":
                events = self._book(msg, ts_recv_ns, exact=False)
                if events is None:  # a number a double cannot hold: decode exactly
                    events = self._book(
                        json.loads(raw, parse_float=Decimal), ts_recv_ns, exact=True
                    )
                assert events is not None
                return events
            if channel == "trade":
                return self._trades(msg, ts_recv_ns)
            if channel == "heartbeat":
                return _HEARTBEAT
            if channel == "instrument":
                self._instruments(msg)
                return _NOTHING
            if channel == "status":
                return _HEARTBEAT
            if channel is None:
                method = msg.get("method")
                if method == "subscribe" or method == "unsubscribe":
                    if msg.get("success") is True:
                        return _SUBSCRIBED
                    return (self._error(msg),)
                if method == "pong":
                    return _HEARTBEAT
                if "error" in msg:
                    return (self._error(msg),)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            lost = _book_symbols(raw) if channel == "book" else ()
            raise MalformedMessage(
                self._venue, f"bad {channel} message: {exc!r}", raw, symbols=lost
            ) from exc
        what = f"channel {channel!r}" if channel is not None else f"method {msg.get('method')!r}"
        raise UnknownMessage(self._venue, f"unknown {what}", raw)

    @staticmethod
    def _error(msg: dict[str, Any]) -> Notice:
        detail = f"{msg.get('method')} {msg.get('symbol', '')}: {msg.get('error')}"
        return Notice(NoticeKind.ERROR, detail[:200])

    # -- book ------------------------------------------------------------------------------

    def _book(
        self, msg: dict[str, Any], ts_recv_ns: int, *, exact: bool
    ) -> tuple[Event, ...] | None:
        """The frame's book events; ``None`` if a number needs the exact (Decimal) decoding."""
        kind_text = msg["type"]
        if kind_text == "update":
            kind = _DELTA
        elif kind_text == "snapshot":
            kind = _SNAPSHOT
        else:
            raise ValueError(f"book type {kind_text!r}")
        events: list[Event] = []
        for entry in msg["data"]:
            symbol = entry["symbol"]
            if type(symbol) is not str:
                raise TypeError("symbol is not a string")
            precision = self._precision.get(symbol)
            bids = self._levels(entry.get("bids", ()), precision, exact)
            asks = self._levels(entry.get("asks", ()), precision, exact)
            if bids is None or asks is None:
                return None
            checksum = entry.get("checksum")
            stamp = entry.get("timestamp")
            ts_event_ns = ts_recv_ns if stamp is None else parse_rfc3339_ns(stamp, self._ts_cache)
            event: BookEvent = _tuple_new(
                BookEvent,
                (
                    symbol,
                    kind,
                    bids,
                    asks,
                    0,
                    0,
                    None,
                    ts_event_ns,
                    ts_recv_ns,
                    None if checksum is None else int(checksum),
                ),
            )
            events.append(event)
        return tuple(events)

    @staticmethod
    def _levels(levels: Any, precision: _Precision | None, exact: bool) -> list[list[str]] | None:
        if type(levels) is not list and type(levels) is not tuple:
            raise TypeError("levels are not a list")
        out: list[list[str]] = []
        if exact or precision is None:
            if not exact:
                return None  # precision unknown: keep the venue's own digits
            pspec = None if precision is None else precision.price_spec
            qspec = None if precision is None else precision.qty_spec
            for level in levels:
                out.append([_exact_text(level["price"], pspec), _exact_text(level["qty"], qspec)])
            return out
        pfmt, qfmt = precision.price_fmt, precision.qty_fmt
        plim, qlim = precision.price_limit, precision.qty_limit
        for level in levels:
            price = level["price"]
            qty = level["qty"]
            if price >= plim or qty >= qlim:
                return None
            out.append([pfmt % price, qfmt % qty])
        return out

    # -- trades, instruments, time -----------------------------------------------------------

    def _trades(self, msg: dict[str, Any], ts_recv_ns: int) -> tuple[Event, ...]:
        kind_text = msg["type"]
        if kind_text == "snapshot":
            return _NOTHING  # recent history, not new trades (see the module docstring)
        if kind_text != "update":
            raise ValueError(f"trade type {kind_text!r}")
        out: list[Event] = []
        for t in msg["data"]:
            out.append(
                Trade(
                    t["symbol"],
                    float(t["price"]),
                    float(t["qty"]),
                    _TAKER[t["side"]],
                    parse_rfc3339_ns(t["timestamp"], self._ts_cache),
                    ts_recv_ns,
                )
            )
        return tuple(out)

    def _instruments(self, msg: dict[str, Any]) -> None:
        data = msg["data"]
        for pair in data.get("pairs", ()):
            pp = pair["price_precision"]
            qp = pair["qty_precision"]
            if type(pp) is not int or type(qp) is not int or not 0 <= pp <= 18 or not 0 <= qp <= 18:
                raise ValueError(f"bad precision for {pair.get('symbol')!r}")
            self._precision[pair["symbol"]] = _Precision(pp, qp)


def _request(method: str, params: dict[str, Any], req_id: int) -> str:
    return orjson.dumps({"method": method, "params": params, "req_id": req_id}).decode()


class Kraken(Venue):
    """Kraken spot, WebSocket v2: stream snapshots, checksum-only integrity, depth 1000."""

    name = "kraken"
    snapshot_source = SnapshotSource.STREAM
    keepalive_text = '{"method":"ping"}'
    keepalive_interval_s = 20.0
    #: Kraken's spot WebSocket message rate is dynamic and unpublished ("Exceeded msg rate";
    #: https://docs.kraken.com/api/docs/guides/spot-ratelimits): frames are paced at a
    #: conservative 5 per second per connection (Binance's documented limit; a resubscribe
    #: is two frames).
    max_messages_per_s = 5.0
    max_depth = BOOK_DEPTH
    book_keeps_text = True

    #: req_id of each kind of request (echoed by the venue; for reading logs and captures).
    REQ_INSTRUMENT: Final = 1
    REQ_BOOK: Final = 2
    REQ_TRADE: Final = 3
    REQ_RESUBSCRIBE: Final = 4

    def _url(self) -> str:
        return f"{self.ws_base or _WS_HOST}{_WS_PATH}"

    def connections(self, symbols: Sequence[str], *, trades: bool) -> list[ConnectionPlan]:
        plans: list[ConnectionPlan] = []
        for n, start in enumerate(range(0, len(symbols), MAX_SYMBOLS_PER_CONNECTION)):
            chunk = list(symbols[start : start + MAX_SYMBOLS_PER_CONNECTION])
            frames = [_request("subscribe", {"channel": "instrument"}, self.REQ_INSTRUMENT)]
            batches = [
                chunk[i : i + SYMBOLS_PER_REQUEST]
                for i in range(0, len(chunk), SYMBOLS_PER_REQUEST)
            ]
            frames += [
                _request(
                    "subscribe",
                    {"channel": "book", "symbol": b, "depth": BOOK_DEPTH, "snapshot": True},
                    self.REQ_BOOK,
                )
                for b in batches
            ]
            if trades:
                frames += [
                    _request(
                        "subscribe",
                        {"channel": "trade", "symbol": b, "snapshot": False},
                        self.REQ_TRADE,
                    )
                    for b in batches
                ]
            plans.append(
                ConnectionPlan(
                    name=f"{self.name}/v2#{n}",
                    url=self._url(),
                    depth_symbols=tuple(chunk),
                    trade_symbols=tuple(chunk) if trades else (),
                    subscribe=tuple(frames),
                )
            )
        return plans

    def new_parser(self) -> FrameParser:
        return KrakenParser(self.name)

    def resubscribe(self, symbol: str) -> tuple[str, ...]:
        params = {"channel": "book", "symbol": [symbol], "depth": BOOK_DEPTH}
        return (
            _request("unsubscribe", params, self.REQ_RESUBSCRIBE),
            _request("subscribe", {**params, "snapshot": True}, self.REQ_RESUBSCRIBE),
        )

    def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
        return _APPLY  # no sequence numbers: the checksum is the integrity check

    def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
        return _APPLY

    def verify_checksum(self, book: L2Book, event: BookEvent) -> bool | None:
        expected = event.checksum
        if expected is None:
            return None
        asks = book.text_top(_ASK, CHECKSUM_LEVELS)
        bids = book.text_top(_BID, CHECKSUM_LEVELS)
        return checksum_of(asks, bids) == expected
