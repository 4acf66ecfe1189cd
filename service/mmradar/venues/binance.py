"""Binance spot (``binance``) and USD-M futures (``binance-usdm``): diff depth + REST snapshot.

Wire format (docs/venues/binance.md):

* Spot diff depth, stream ``<symbol>@depth@100ms``
  (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams)::

      {"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,
       "b":[["0.0024","10"]],"a":[["0.0026","100"]]}

* USD-M adds ``T`` and ``pu`` (the previous message's ``u``); ``U``/``u`` are not contiguous
  (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/Diff-Book-Depth-Streams)::

      {"e":"depthUpdate","E":123456789,"T":123456788,"s":"BTCUSDT","U":157,"u":160,"pu":149,
       "b":[["0.0024","10"]],"a":[["0.0026","100"]]}

* Trades: spot ``<symbol>@trade`` ``{"e":"trade","E":..,"s":..,"t":..,"p":"0.001","q":"100",
  "T":..,"m":true}``; USD-M ``<symbol>@aggTrade`` (``/market`` host path) with the same ``p``,
  ``q``, ``T``, ``m``. ``m`` = "is the buyer the market maker" ⇒ ``m=true``: the **seller**
  aggressed.
* ``{"e":"serverShutdown","E":..}`` precedes a server-side disconnect; ``{"result":null,"id":1}``
  acknowledges a subscription. Combined streams wrap every event as
  ``{"stream":"<name>","data":{...}}``.
* REST snapshot ``GET /api/v3/depth?symbol=&limit=5000`` (weight 250; 6000/min per IP) and
  ``GET /fapi/v1/depth?symbol=&limit=1000`` (weight 20; 2400/min):
  ``{"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],"asks":[...]}``.

Sequence rules:

* spot: drop ``u <= id``; apply when ``U <= id + 1 <= u`` (the documented "``id`` in ``[U;u]``"
  is wrong at the boundary: real data has ``U == lastUpdateId + 1``); otherwise a gap. The same
  rule chains live messages (normally ``U == prev_u + 1``).
* USD-M: first message after the snapshot needs ``U <= lastUpdateId <= u`` (drop ``u <
  lastUpdateId``); afterwards ``pu == prev_u``, else a gap.

Connections: the 24 h limit and ``serverShutdown`` are handled by the feed runner's reconnect;
Binance's ping frames are answered by the websocket library. Streams are put in the URL (no
live SUBSCRIBE frames, so the 5 incoming messages/s limit is never approached), at most
:data:`MAX_STREAMS_PER_CONNECTION` per connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import orjson
from mypy_extensions import mypyc_attr

from ..errors import MalformedMessage, UnknownMessage
from ..model import BookEvent, BookKind, Event, Notice, NoticeKind, TakerSide, Trade
from .base import ConnectionPlan, FrameParser, SnapshotRequest, SnapshotSource, Venue, Verdict

__all__ = ["MAX_STREAMS_PER_CONNECTION", "BinanceSpot", "BinanceUsdm"]

#: Binance allows 1024 streams per connection; stay well below it.
MAX_STREAMS_PER_CONNECTION = 200

_MS = 1_000_000
_tuple_new: Final = tuple.__new__

# Enum members as native constants: an enum attribute lookup is a slow generic getattr
# in compiled code, and these are read for every message.
_DELTA: Final = BookKind.DELTA
_SNAPSHOT: Final = BookKind.SNAPSHOT
_SELL: Final = TakerSide.SELL
_BUY: Final = TakerSide.BUY
_APPLY: Final = Verdict.APPLY
_DROP: Final = Verdict.DROP
_GAP: Final = Verdict.GAP
_SUBSCRIBED = (Notice(NoticeKind.SUBSCRIBED),)
_SHUTDOWN = (Notice(NoticeKind.SHUTDOWN, "serverShutdown"),)


def _numeric_levels(raw: bytes | str) -> bytes | None:
    """The frame with the quotes around its depth levels' numbers removed, or None.

    Binance sends prices and quantities as decimal strings; turning ``"b":[["61234.56","0.1"]]``
    into ``"b":[[61234.56,0.1]]`` lets orjson read them as numbers — correctly rounded, so the
    very float ``float(text)`` gives (``tests/core/test_binance_parse.py`` checks it bit for bit;
    the real captures' bookTicker oracle still matches exactly) — which costs far less than
    converting each text in Python afterwards (``make bench``: about a fifth of the per-frame
    time). Everything from the ``"b"`` key on is levels, commas, brackets and the ``"a"`` key; a
    frame of any other shape fails to decode after the change, or decodes to something that is
    not a depth update, and is then read unchanged.
    """
    data = raw if type(raw) is bytes else str(raw).encode()
    return _unquote_levels(data, b'"b":[', b",a:[", b',"a":[')


def _numeric_snapshot(body: bytes) -> bytes | None:
    """A REST depth snapshot with its levels' numbers unquoted (see :func:`_numeric_levels`)."""
    return _unquote_levels(body, b'"bids":[', b",asks:[", b',"asks":[')


def _unquote_levels(data: bytes, opening: bytes, bare: bytes, quoted: bytes) -> bytes | None:
    """``data`` with every quote after the first levels array's ``opening`` (``"b":[``) removed,
    except those of the second levels key (``bare`` → ``quoted``); None without ``opening``."""
    i = data.find(opening)
    if i < 0:
        return None
    i += len(opening) - 1  # keep the "[": everything from it on is levels
    return data[:i] + data[i:].translate(None, b'"').replace(bare, quoted, 1)


def _chunks(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class _BinanceParser:
    """Stateless frame parser shared by spot and USD-M (one instance per connection)."""

    __slots__ = ("_venue",)

    def __init__(self, venue: str) -> None:
        self._venue = venue

    def parse(self, raw: bytes | str, ts_recv_ns: int) -> Sequence[Event]:
        msg: Any = None
        fast = _numeric_levels(raw)
        if fast is not None:
            try:
                msg = orjson.loads(fast)
            except orjson.JSONDecodeError:
                msg = None  # not the expected shape: read the frame as it is
            else:
                inner = msg.get("data", msg) if type(msg) is dict else None
                if type(inner) is not dict or inner.get("e") != "depthUpdate":
                    msg = None
        if msg is None:
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise MalformedMessage(self._venue, "not JSON", raw) from exc
        if type(msg) is not dict:
            raise MalformedMessage(self._venue, "not a JSON object", raw)
        data = msg.get("data") if "stream" in msg else msg
        if type(data) is not dict:
            raise MalformedMessage(self._venue, "stream wrapper without an object", raw)
        try:
            kind = data.get("e")
            if kind == "depthUpdate":
                bids = data["b"]
                asks = data["a"]
                if type(bids) is not list or type(asks) is not list:
                    raise MalformedMessage(self._venue, "depth levels are not lists", raw)
                # tuple.__new__ directly: the NamedTuple's own __new__ is an interpreted
                # function, the costliest part of building the event from compiled code.
                event: BookEvent = _tuple_new(
                    BookEvent,
                    (
                        data["s"],
                        _DELTA,
                        bids,
                        asks,
                        int(data["U"]),
                        int(data["u"]),
                        data.get("pu"),
                        int(data["E"]) * _MS,
                        ts_recv_ns,
                        None,
                    ),
                )
                return (event,)
            if kind == "trade" or kind == "aggTrade":
                return (
                    Trade(
                        data["s"],
                        float(data["p"]),
                        float(data["q"]),
                        _SELL if data["m"] else _BUY,
                        int(data["T"]) * _MS,
                        ts_recv_ns,
                    ),
                )
            if kind == "serverShutdown":
                return _SHUTDOWN
            if kind is None:
                if "result" in msg and "id" in msg:
                    return _SUBSCRIBED
                if "error" in msg or ("code" in msg and "msg" in msg):
                    return (Notice(NoticeKind.ERROR, orjson.dumps(msg).decode()[:200]),)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(
                self._venue, f"bad {data.get('e')} message: {exc!r}", raw
            ) from exc
        raise UnknownMessage(self._venue, f"unknown event type {kind!r}", raw)


@mypyc_attr(allow_interpreted_subclasses=True)  # venues may be specialised
class _Binance(Venue):
    """What Binance spot and USD-M share: combined streams in the URL and REST snapshots."""

    snapshot_source = SnapshotSource.REST
    ws_host: ClassVar[str]
    rest_host: ClassVar[str]
    depth_path: ClassVar[str]
    trade_path: ClassVar[str]
    depth_stream: ClassVar[str]
    trade_stream: ClassVar[str]
    snapshot_path: ClassVar[str]
    snapshot_limit: ClassVar[int]
    snapshot_weight: ClassVar[int]

    #: Binance closes every connection at 24 h; leave on our own terms a little before.
    max_connection_age_s = 23.5 * 3600

    def used_weight(self, headers: Mapping[str, str]) -> int | None:
        value = headers.get("X-MBX-USED-WEIGHT-1M") or headers.get("x-mbx-used-weight-1m")
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def _ws(self) -> str:
        return self.ws_base or self.ws_host

    def _rest(self) -> str:
        return self.rest_base or self.rest_host

    def connections(self, symbols: Sequence[str], *, trades: bool) -> list[ConnectionPlan]:
        streams: list[tuple[str, str, str]] = [  # (path, stream, symbol)
            (self.depth_path, f"{s.lower()}@{self.depth_stream}", s) for s in symbols
        ]
        if trades:
            streams += [(self.trade_path, f"{s.lower()}@{self.trade_stream}", s) for s in symbols]
        plans: list[ConnectionPlan] = []
        for path in dict.fromkeys(p for p, _, _ in streams):
            on_path = [(name, s) for p, name, s in streams if p == path]
            for n, chunk in enumerate(
                _chunks([name for name, _ in on_path], MAX_STREAMS_PER_CONNECTION)
            ):
                depth = tuple(s for name, s in on_path if name in chunk and "@depth" in name)
                trade = tuple(s for name, s in on_path if name in chunk and "@depth" not in name)
                plans.append(
                    ConnectionPlan(
                        name=f"{self.name}{path or '/'}#{n}",
                        url=f"{self._ws()}{path}/stream?streams={'/'.join(chunk)}",
                        depth_symbols=depth,
                        trade_symbols=trade,
                    )
                )
        return plans

    def new_parser(self) -> FrameParser:
        return _BinanceParser(self.name)

    def snapshot_request(self, symbol: str) -> SnapshotRequest:
        return SnapshotRequest(
            url=f"{self._rest()}{self.snapshot_path}?symbol={symbol}&limit={self.snapshot_limit}",
            weight=self.snapshot_weight,
        )

    def parse_snapshot(self, symbol: str, body: bytes, ts_recv_ns: int) -> BookEvent:
        try:
            msg: Any = None
            fast = _numeric_snapshot(body)
            if fast is not None:
                with contextlib.suppress(orjson.JSONDecodeError):
                    msg = orjson.loads(fast)
            if type(msg) is not dict or "lastUpdateId" not in msg:
                msg = orjson.loads(body)  # not the expected shape: read the body as it is
            last_id = int(msg["lastUpdateId"])
            bids, asks = msg["bids"], msg["asks"]
            if type(bids) is not list or type(asks) is not list:
                raise TypeError("bids/asks are not lists")
            ts_event_ns = int(msg["E"]) * _MS if "E" in msg else ts_recv_ns
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(self.name, f"bad depth snapshot: {exc!r}", body) from exc
        return BookEvent(
            symbol, _SNAPSHOT, bids, asks, last_id, last_id, None, ts_event_ns, ts_recv_ns
        )


@mypyc_attr(allow_interpreted_subclasses=True)  # venues may be specialised
class BinanceSpot(_Binance):
    """Binance spot: ``U <= id + 1 <= u`` chain, REST snapshot of 5000 levels per side."""

    name = "binance"
    rest_weight_per_minute = 6000
    ws_host = "wss://stream.binance.com:9443"
    rest_host = "https://api.binance.com"
    depth_path = ""
    trade_path = ""
    depth_stream = "depth@100ms"
    trade_stream = "trade"
    snapshot_path = "/api/v3/depth"
    snapshot_limit = 5000
    snapshot_weight = 250

    @staticmethod
    def _verdict(last_id: int, delta: BookEvent) -> Verdict:
        if delta.last_id <= last_id:
            return _DROP
        if delta.first_id <= last_id + 1:
            return _APPLY
        return _GAP

    def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
        return self._verdict(snapshot.last_id, delta)

    def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
        return self._verdict(previous.last_id, delta)


@mypyc_attr(allow_interpreted_subclasses=True)  # venues may be specialised
class BinanceUsdm(_Binance):
    """Binance USD-M futures: ``pu`` chain, depth on ``/public``, trades on ``/market``."""

    name = "binance-usdm"
    rest_weight_per_minute = 2400
    ws_host = "wss://fstream.binance.com"
    rest_host = "https://fapi.binance.com"
    depth_path = "/public"
    trade_path = "/market"
    depth_stream = "depth@100ms"
    trade_stream = "aggTrade"
    snapshot_path = "/fapi/v1/depth"
    snapshot_limit = 1000
    snapshot_weight = 20

    def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
        last_id = snapshot.last_id
        if delta.last_id < last_id:
            return _DROP
        if delta.first_id <= last_id:
            return _APPLY
        return _GAP

    def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
        if delta.prev_id == previous.last_id:
            return _APPLY
        if delta.last_id <= previous.last_id:
            return _DROP
        return _GAP
