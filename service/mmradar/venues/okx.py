"""OKX (``okx``): the public ``books`` channel bootstrapped from REST, plus ``trades``.

Wire format (docs/venues/okx.md; OKX v5 docs, "WS / Order book channel",
https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel):

* Endpoint ``wss://ws.okx.com:8443/ws/v5/public``; one subscribe frame per connection::

      {"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},
                                {"channel":"trades","instId":"BTC-USDT"}]}

  acknowledged per argument ``{"event":"subscribe","arg":{...},"connId":"a4d3ae55"}``; errors
  ``{"event":"error","code":"60012","msg":"...","connId":"..."}``; a service upgrade is announced
  ~30 s ahead by ``{"event":"notice","code":"64008","msg":"...","connId":"..."}`` (reconnect).
* ``books`` pushes (levels ``[price, size, "0", numOrders]``, all strings; size ``"0"`` removes)::

      {"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{
        "asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"]],
        "ts":"1597026383085","checksum":0,"prevSeqId":123456,"seqId":123457}]}

* ``trades`` pushes ``{"arg":{...},"data":[{"instId":"BTC-USDT","tradeId":"130639474",
  "px":"42219.9","sz":"0.12060306","side":"buy","ts":"1630048897897","count":"3"}]}``;
  ``side`` is "Trade side of taker" (OKX docs, trades channel field table): ``buy`` ⇒ the buyer
  aggressed. ``sz`` is base currency on spot and **contracts** on derivatives (see "Contract
  sizes").
* Keep-alive: the venue closes a connection with nothing pushed for 30 s; the client sends the
  plain text ``ping`` (every :attr:`Okx.keepalive_interval_s` < 30 s) and the venue answers the
  plain text ``pong`` (not JSON).

2026 changes (docs/venues/okx.md, "Sync method" and "Integrity check"):

* The initial websocket snapshot is delisted (changelog, last update 2026-02-12): books start
  from ``GET /api/v5/market/books?instId=…&sz=400`` (``{"code":"0","msg":"","data":[{"asks",
  "bids","ts","seqId"}]}``; 400 levels per side, the ``books`` channel's own depth; 40 requests
  per 2 s per IP). Updates are buffered meanwhile; buffered updates with ``seqId <=`` the
  snapshot's are dropped, the first one applied must satisfy ``prevSeqId <= seqId_snapshot <
  seqId``, and a snapshot older than the buffered stream is fetched again. A ``snapshot``
  action that still arrives on the socket is handled as a pushed snapshot.
* The ``checksum`` field is always 0 since 2026-06-23 (announcement of 2026-05-21): it is
  verified whenever it is non-zero and ignored when 0.

Sequence rule (OKX docs, "Sequence ID"): ``seqId`` is per instrument; each update's
``prevSeqId`` equals the previous message's ``seqId`` (an identity chain: steps are not +1).
Two exceptions keep the identity test valid: an idle update (no change for ~60 s) has empty
sides and ``seqId == prevSeqId``; a maintenance reset has ``seqId < prevSeqId`` and normal
chaining resumes from it. Any other ``prevSeqId`` is a gap.

Checksum (historical, for data before 2026-06-23; verified 290/290 on a real 2022 capture):
the best 25 bids and asks of the local book interleaved ``bid1px:bid1sz:ask1px:ask1sz:…``
(missing levels skipped), strings exactly as received, CRC32 as a *signed* 32-bit integer.

Contract sizes (docs/venues/okx.md "Contract sizes"; OKX docs "Get instruments",
https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments): on ``-SWAP`` and futures
instruments ``sz`` (books and trades) counts contracts. At start-up, before any connection, the
shell asks ``GET /api/v5/public/instruments?instType=SWAP`` (and ``FUTURES``) once per type
(:meth:`Okx.contract_requests`) and :meth:`Okx.parse_contracts` reads each configured
derivative's ``ctVal``, ``ctMult``, ``ctValCcy`` and ``ctType``: a **linear** contract is
``ctVal × ctMult`` of the base currency (``BTC-USDT-SWAP``: 0.01 BTC), an **inverse** one
``ctVal × ctMult`` of the quote currency (``BTC-USD-SWAP``: 100 USD, so ``sz × 100 / price``
BTC). Books convert level quantities on apply and keep the venue's text for the checksum; the
parser converts trade sizes. A derivative OKX does not list, or lists without a usable contract
value, stops the service (``ContractError``, exit code 2); options and unrecognised instrument
ids are refused when the service is built.

Limits: at most :data:`MAX_BOOKS_PER_CONNECTION` books per connection (OKX recommends fewer
than 30 depth-400 channels per connection), one subscribe operation per connection (480 per
hour allowed); connections open 0.35 s apart (3 per second per IP); REST snapshots are
charged :data:`SNAPSHOT_WEIGHT` of a 40-per-2-s budget (:attr:`Okx.rest_window_s`), of which
the feed uses half, and a snapshot found older than the stream is asked for again after 0.2 s.
OKX has no connection-age limit.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

import orjson
from mypy_extensions import mypyc_attr

from ..contracts import ContractSize
from ..errors import ContractError, MalformedMessage, UnknownMessage
from ..model import BookEvent, BookKind, Event, Notice, NoticeKind, Side, TakerSide, Trade
from .base import (
    ConnectionPlan,
    FrameParser,
    SnapshotRequest,
    SnapshotSource,
    Venue,
    Verdict,
    decode_object,
)

if TYPE_CHECKING:
    from ..book.l2book import L2Book

__all__ = [
    "CHECKSUM_DEPTH",
    "INSTRUMENTS_PATH",
    "MAX_BOOKS_PER_CONNECTION",
    "SNAPSHOT_DEPTH",
    "SNAPSHOT_WEIGHT",
    "Okx",
    "checksum_text",
    "instrument_type",
    "okx_checksum",
    "signed_crc32",
]

#: OKX recommends fewer than 30 depth-400 channels per connection.
MAX_BOOKS_PER_CONNECTION = 25
#: Levels per side of the REST snapshot: the maximum ``sz`` of ``/api/v5/market/books``, which
#: is also the depth of the ``books`` channel.
SNAPSHOT_DEPTH = 400
#: Levels per side covered by the checksum.
CHECKSUM_DEPTH = 25
#: Cost of one snapshot request against :attr:`Okx.rest_weight_per_minute` (see there).
SNAPSHOT_WEIGHT = 1
#: Instrument metadata (``ctVal``, ``ctMult``, ``ctValCcy``, ``ctType``): 20 requests per 2 s per
#: IP and instrument type (OKX docs "Get instruments"); at most two requests at start-up, each
#: charged one unit of the feed's REST budget.
INSTRUMENTS_PATH = "/api/v5/public/instruments"
INSTRUMENTS_WEIGHT = 1
_DERIVATIVES: Final = ("SWAP", "FUTURES")

_MS = 1_000_000
_tuple_new: Final = tuple.__new__

# Enum members as native constants (read for every message).
_DELTA: Final = BookKind.DELTA
_SNAPSHOT: Final = BookKind.SNAPSHOT
_SELL: Final = TakerSide.SELL
_BUY: Final = TakerSide.BUY
_APPLY: Final = Verdict.APPLY
_DROP: Final = Verdict.DROP
_GAP: Final = Verdict.GAP
_SUBSCRIBED = (Notice(NoticeKind.SUBSCRIBED),)
_PONG = (Notice(NoticeKind.HEARTBEAT, "pong"),)
_UPGRADE_NOTICE = "64008"  # "The connection will soon be closed for a service upgrade."


def signed_crc32(text: str) -> int:
    """CRC32 of ``text`` (UTF-8) as a signed 32-bit integer, as OKX publishes it."""
    crc = zlib.crc32(text.encode())
    return crc - 0x1_0000_0000 if crc >= 0x8000_0000 else crc


def checksum_text(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> str:
    """OKX's checksum string of best-first ``bids`` and ``asks`` (``(price, size)`` text).

    ``bid1px:bid1sz:ask1px:ask1sz:bid2px:…`` over the first :data:`CHECKSUM_DEPTH` levels of
    each side; where one side has fewer levels its missing entries are skipped.
    """
    parts: list[str] = []
    for i in range(min(CHECKSUM_DEPTH, max(len(bids), len(asks)))):
        if i < len(bids):
            parts.append(bids[i][0])
            parts.append(bids[i][1])
        if i < len(asks):
            parts.append(asks[i][0])
            parts.append(asks[i][1])
    return ":".join(parts)


def okx_checksum(book: L2Book) -> int:
    """The checksum OKX would publish for ``book`` (which must keep level text)."""
    return signed_crc32(
        checksum_text(
            book.text_top(Side.BID, CHECKSUM_DEPTH), book.text_top(Side.ASK, CHECKSUM_DEPTH)
        )
    )


def instrument_type(symbol: str) -> str:
    """OKX ``instType`` of an instrument id: ``SPOT`` (``BTC-USDT``), ``SWAP``
    (``BTC-USDT-SWAP``) or ``FUTURES`` (``BTC-USD-260626``).

    Raises:
        ContractError: an option (``BTC-USD-260626-100000-C``: priced in the underlying, not
            supported) or an id of no shape OKX uses.
    """
    parts = symbol.upper().split("-")
    if len(parts) == 2 and all(parts):
        return "SPOT"
    if len(parts) == 3 and parts[0] and parts[1]:
        if parts[2] == "SWAP":
            return "SWAP"
        if len(parts[2]) == 6 and parts[2].isdigit():
            return "FUTURES"
    if len(parts) == 5 and parts[4] in ("C", "P"):
        raise ContractError(
            "okx", symbol, "options are not supported (premiums are quoted in the underlying)"
        )
    raise ContractError(
        "okx",
        symbol,
        "not an OKX spot (BTC-USDT), perpetual (BTC-USDT-SWAP) or futures (BTC-USD-260626) id",
    )


def _contract_size(symbol: str, item: dict[str, Any]) -> ContractSize:
    """A listed derivative's contract size (``item``: one ``Get instruments`` record)."""
    ct_type, ccy = item.get("ctType"), item.get("ctValCcy")
    raw_value, raw_mult = item.get("ctVal"), item.get("ctMult")
    usable = False
    if type(raw_value) is str and type(raw_mult) is str:
        try:
            value = Decimal(raw_value)
            mult = Decimal(raw_mult)
            usable = value.is_finite() and value > 0 and mult.is_finite() and mult > 0
        except InvalidOperation:
            pass
    if not usable:
        raise ContractError(
            "okx", symbol, f"OKX lists no usable contract value (ctVal {raw_value!r}, "
            f"ctMult {raw_mult!r})",
        )  # fmt: skip
    base, quote = symbol.split("-")[:2]
    if ct_type == "linear":
        expected = base
    elif ct_type == "inverse":
        expected = quote
    else:
        raise ContractError("okx", symbol, f"unknown contract type (ctType {ct_type!r})")
    if ccy != expected:
        raise ContractError(
            "okx", symbol, f"a {ct_type} contract valued in {ccy!r}, not in {expected!r}"
        )
    return ContractSize.of(
        value,
        mult,
        inverse=ct_type == "inverse",
        source=f"ctVal {raw_value} {ccy} x ctMult {raw_mult}, {ct_type}",
    )


def _chunks(items: Sequence[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


class _OkxParser:
    """Stateless frame parser (one instance per connection): OKX sequences per instrument.

    ``sizes`` (the venue's :attr:`~mmradar.venues.base.Venue.contract_sizes`) converts the trade
    sizes of derivatives from contracts to base units.
    """

    __slots__ = ("_sizes", "_venue")

    def __init__(self, venue: str, sizes: dict[str, ContractSize] | None = None) -> None:
        self._venue = venue
        self._sizes: dict[str, ContractSize] = {} if sizes is None else sizes

    def parse(self, raw: bytes | str, ts_recv_ns: int) -> Sequence[Event]:
        if raw == "pong" or raw == b"pong":
            return _PONG
        msg = decode_object(self._venue, raw)
        data = msg.get("data")
        if data is not None:
            arg = msg.get("arg")
            if type(arg) is not dict or type(data) is not list:
                raise MalformedMessage(self._venue, "push without arg object or data list", raw)
            channel = arg.get("channel")
            try:
                if channel == "books":
                    return self._books(arg["instId"], msg.get("action"), data, ts_recv_ns, raw)
                if channel == "trades":
                    return self._trades(data, ts_recv_ns, raw)
            except (KeyError, TypeError, ValueError) as exc:
                raise MalformedMessage(self._venue, f"bad {channel} push: {exc!r}", raw) from exc
            raise UnknownMessage(self._venue, f"unhandled channel {channel!r}", raw)
        event = msg.get("event")
        if event == "subscribe" or event == "unsubscribe" or event == "channel-conn-count":
            return _SUBSCRIBED
        if event == "error" or event == "channel-conn-count-error":
            return (Notice(NoticeKind.ERROR, f"{msg.get('code')}: {msg.get('msg')}"[:200]),)
        if event == "notice" and msg.get("code") == _UPGRADE_NOTICE:
            return (Notice(NoticeKind.SHUTDOWN, f"{_UPGRADE_NOTICE}: {msg.get('msg')}"[:200]),)
        raise UnknownMessage(self._venue, f"unknown message (event {event!r})", raw)

    def _trades(self, data: list[Any], ts_recv_ns: int, raw: bytes | str) -> list[Event]:
        sizes = self._sizes
        trades: list[Event] = []
        for item in data:
            symbol = item["instId"]
            price = float(item["px"])
            qty = float(item["sz"])
            if sizes:
                size = sizes.get(symbol)
                if size is not None:
                    qty = size.base_qty(qty, price)  # contracts -> base units
            trades.append(
                Trade(
                    symbol,
                    price,
                    qty,
                    self._taker(item["side"], raw),
                    int(item["ts"]) * _MS,
                    ts_recv_ns,
                )
            )
        return trades

    def _taker(self, side: Any, raw: bytes | str) -> TakerSide:
        if side == "buy":
            return _BUY
        if side == "sell":
            return _SELL
        raise MalformedMessage(self._venue, f"unknown trade side {side!r}", raw)

    def _books(
        self, symbol: Any, action: Any, data: list[Any], ts_recv_ns: int, raw: bytes | str
    ) -> list[Event]:
        if action == "update":
            kind = _DELTA
        elif action == "snapshot":
            kind = _SNAPSHOT
        else:
            raise MalformedMessage(self._venue, f"unknown books action {action!r}", raw)
        if type(symbol) is not str:
            raise MalformedMessage(self._venue, "instId is not a string", raw)
        events: list[Event] = []
        for item in data:
            bids = item["bids"]
            asks = item["asks"]
            if type(bids) is not list or type(asks) is not list:
                raise MalformedMessage(self._venue, "book levels are not lists", raw)
            seq = item["seqId"]
            prev = item["prevSeqId"]
            if type(seq) is not int or type(prev) is not int:
                raise MalformedMessage(self._venue, "seqId/prevSeqId are not integers", raw)
            checksum = item.get("checksum")
            if checksum is not None and type(checksum) is not int:
                raise MalformedMessage(self._venue, "checksum is not an integer", raw)
            # tuple.__new__ directly: the NamedTuple's own __new__ is an interpreted function.
            event: BookEvent = _tuple_new(
                BookEvent,
                (
                    symbol,
                    kind,
                    bids,
                    asks,
                    seq,
                    seq,
                    prev,
                    int(item["ts"]) * _MS,
                    ts_recv_ns,
                    checksum or None,  # 0: deprecated, "must no longer be used"
                ),
            )
            events.append(event)
        return events


@mypyc_attr(allow_interpreted_subclasses=True)  # venues may be specialised
class Okx(Venue):
    """OKX spot and derivatives: ``books`` + ``trades``, REST bootstrap, ``seqId`` chain."""

    name = "okx"
    snapshot_source = SnapshotSource.REST
    #: ``/api/v5/market/books`` allows 40 requests per 2 s per IP: the budget counts over a 2-s
    #: window, one unit per request, and the feed allows itself half (20 per 2 s).
    rest_weight_per_minute = 40
    rest_window_s = 2.0
    #: OKX's REST book is cached and can lag the stream by tens of milliseconds: a snapshot
    #: older than the buffered updates is asked for again, but not at once.
    snapshot_refetch_delay_s = 0.2
    #: 3 new connections per second per IP.
    connect_interval_s = 0.35
    keepalive_text = "ping"
    #: OKX drops a connection with nothing pushed for 30 s; ping well inside it.
    keepalive_interval_s = 20.0
    book_keeps_text = True
    ws_host: Final = "wss://ws.okx.com:8443"
    rest_host: Final = "https://www.okx.com"
    ws_path: Final = "/ws/v5/public"
    snapshot_path: Final = "/api/v5/market/books"

    def _ws(self) -> str:
        return self.ws_base or self.ws_host

    def _rest(self) -> str:
        return self.rest_base or self.rest_host

    def connections(self, symbols: Sequence[str], *, trades: bool) -> list[ConnectionPlan]:
        plans: list[ConnectionPlan] = []
        for n, chunk in enumerate(_chunks(symbols, MAX_BOOKS_PER_CONNECTION)):
            args = [{"channel": "books", "instId": s} for s in chunk]
            if trades:
                args += [{"channel": "trades", "instId": s} for s in chunk]
            plans.append(
                ConnectionPlan(
                    name=f"{self.name}/public#{n}",
                    url=f"{self._ws()}{self.ws_path}",
                    depth_symbols=chunk,
                    trade_symbols=chunk if trades else (),
                    subscribe=(orjson.dumps({"op": "subscribe", "args": args}).decode(),),
                )
            )
        return plans

    def new_parser(self) -> FrameParser:
        return _OkxParser(self.name, self.contract_sizes)

    def contract_requests(self, symbols: Sequence[str]) -> list[SnapshotRequest]:
        """``GET /api/v5/public/instruments?instType=…`` once per derivative type among
        ``symbols`` (none for spot only).

        Raises:
            ContractError: an option or an unrecognised instrument id.
        """
        kinds = {instrument_type(symbol) for symbol in symbols}
        return [
            SnapshotRequest(
                url=f"{self._rest()}{INSTRUMENTS_PATH}?instType={kind}", weight=INSTRUMENTS_WEIGHT
            )
            for kind in _DERIVATIVES
            if kind in kinds
        ]

    def parse_contracts(
        self, symbols: Sequence[str], bodies: Sequence[bytes]
    ) -> dict[str, ContractSize]:
        """Read ``GET /api/v5/public/instruments`` answers (https://www.okx.com/docs-v5/en/
        #public-data-rest-api-get-instruments)::

            {"code":"0","msg":"","data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP",
              "ctVal":"0.01","ctMult":"1","ctValCcy":"BTC","ctType":"linear",…},…]}
        """
        listed: dict[str, dict[str, Any]] = {}
        for body in bodies:
            try:
                msg: Any = orjson.loads(body)
                if type(msg) is not dict:
                    raise TypeError("not a JSON object")
                if msg.get("code") != "0":
                    raise ValueError(f"venue error {msg.get('code')}: {msg.get('msg')}")
                data = msg["data"]
                if type(data) is not list:
                    raise TypeError("data is not a list")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise MalformedMessage(self.name, f"bad instruments answer: {exc!r}", body) from exc
            for item in data:
                if type(item) is dict and type(item.get("instId")) is str:
                    listed[item["instId"]] = item
        sizes: dict[str, ContractSize] = {}
        for symbol in symbols:
            kind = instrument_type(symbol)
            if kind not in _DERIVATIVES:
                continue
            item = listed.get(symbol)
            if item is None or item.get("instType") != kind:
                raise ContractError(
                    self.name, symbol, f"OKX lists no {kind} instrument {symbol!r} "
                    f"(GET {INSTRUMENTS_PATH}?instType={kind}): its contract value is unknown",
                )  # fmt: skip
            sizes[symbol] = _contract_size(symbol, item)
        return sizes

    def snapshot_request(self, symbol: str) -> SnapshotRequest:
        return SnapshotRequest(
            url=f"{self._rest()}{self.snapshot_path}?instId={symbol}&sz={SNAPSHOT_DEPTH}",
            weight=SNAPSHOT_WEIGHT,
        )

    def parse_snapshot(self, symbol: str, body: bytes, ts_recv_ns: int) -> BookEvent:
        """Parse ``GET /api/v5/market/books`` (https://www.okx.com/docs-v5/en/
        #order-book-trading-market-data-get-order-book)::

            {"code":"0","msg":"","data":[{"asks":[["41006.8","0.60038921","0","1"]],
              "bids":[["41006.3","0.30178218","0","2"]],"ts":"1629966436396","seqId":3235}]}
        """
        try:
            msg: Any = orjson.loads(body)
            if msg["code"] != "0":
                raise ValueError(f"venue error {msg['code']}: {msg.get('msg')}")
            (item,) = msg["data"]
            bids, asks = item["bids"], item["asks"]
            if type(bids) is not list or type(asks) is not list:
                raise TypeError("bids/asks are not lists")
            seq = item["seqId"]
            if type(seq) is not int:
                raise TypeError("seqId is not an integer")
            ts_event_ns = int(item["ts"]) * _MS
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(self.name, f"bad books snapshot: {exc!r}", body) from exc
        return BookEvent(symbol, _SNAPSHOT, bids, asks, seq, seq, None, ts_event_ns, ts_recv_ns)

    def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
        snap_seq = snapshot.last_id
        seq = delta.last_id
        prev = delta.prev_id
        if prev is None:
            return _GAP
        if snapshot.prev_id == -1:
            # Pushed on the socket (prevSeqId -1): the stream goes on from it, strictly chained.
            return _APPLY if prev == snap_seq else _GAP
        # A REST snapshot (``GET /api/v5/market/books``) cut anywhere in the buffered stream.
        if seq < prev:  # a maintenance reset
            if prev == snap_seq:
                return _APPLY
            if seq <= snap_seq and delta.ts_event_ns <= snapshot.ts_event_ns:
                return _DROP  # the snapshot was taken after the reset
            return _GAP
        if seq <= snap_seq:
            return _DROP  # already in the snapshot (idle updates with seqId == it included)
        if prev <= snap_seq:
            return _APPLY  # prevSeqId <= snapshot seqId < seqId
        return _GAP  # the snapshot is older than the buffered stream: fetch again

    def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
        # Normal updates, idle updates (seqId == prevSeqId) and resets (seqId < prevSeqId)
        # all name the seqId of the message before them.
        if delta.prev_id == previous.last_id:
            return _APPLY
        return _GAP

    def verify_checksum(self, book: L2Book, event: BookEvent) -> bool | None:
        expected = event.checksum
        if not expected:  # absent, or 0: deprecated since 2026-06-23
            return None
        return okx_checksum(book) == expected
