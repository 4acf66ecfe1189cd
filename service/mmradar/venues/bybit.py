"""Bybit v5 (``bybit``): public ``orderbook.1000.{symbol}`` snapshots + deltas, ``publicTrade``.

Source: docs/venues/bybit.md, which follows ``bybit-exchange/docs``
(``docs/v5/websocket/public/orderbook.mdx``, ``trade.mdx``, ``wss-authentication.mdx`` = the
"Connect" page; live at https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook).

Category
--------
The ``bybit`` exchange value follows **USDT perpetuals** (category ``linear``,
``wss://stream.bybit.com/v5/public/linear``): Bybit's deepest BTCUSDT/ETHUSDT books are its
perpetuals, and it is there that dealer inventory stress shows. Spot (``/v5/public/spot``) is the
same wire protocol with one extra limit (10 args per subscribe request); it is a constructor
argument, ``Bybit(category="spot")``, and nothing outside this module knows the difference.

Units: linear contracts (USDT/USDC perpetuals and futures) and spot publish sizes in the **base
coin** (Bybit v5 "Place Order", https://bybit-exchange.github.io/docs/v5/order/create-order:
"Perps, Futures & Option: always use base coin as unit"), which is what every measure uses, so
no conversion is needed. **Inverse** contracts (``BTCUSD``, ``BTCUSDH26``: sizes in USD
contracts, category ``inverse`` on ``/v5/public/inverse``) are not supported: this module never
connects there, and an inverse spelling is refused when the service is built
(:meth:`Bybit.contract_requests`, ``ContractError``, exit code 2) instead of being subscribed on
the linear endpoint, which would answer "handler not found".

Wire format
-----------
* Subscribe ``{"req_id":"…","op":"subscribe","args":["orderbook.1000.BTCUSDT",…]}``; acks
  ``{"success":true,"ret_msg":"","conn_id":"…","req_id":"…","op":"subscribe"}`` (spot puts
  ``"subscribe"`` in ``ret_msg``); failures ``{"success":false,"ret_msg":"error:already
  subscribed,topic:…",…}``.
* Depth (1000 levels, 200 ms on linear and spot — the deepest push both categories offer)::

      {"topic":"orderbook.1000.BTCUSDT","type":"snapshot","ts":1672304484978,
       "data":{"s":"BTCUSDT","b":[["16493.50","0.006"]],"a":[["16611.00","0.029"]],
               "u":18521288,"seq":7961638724},"cts":1672304484976}

  then ``"type":"delta"`` messages of the same shape; size ``"0"`` deletes. The stream *is* a
  top-1000 window: levels leaving it are deleted by the venue, levels entering it are sent, so the
  book is trimmed to :attr:`Bybit.max_depth` after every message. ``seq`` is a cross sequence
  (comparable across depths, not contiguous) and is not used; ``ts`` (when the system generated
  the message) is the event time.
* Trades ``{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":…,"data":[{"T":…,"s":"BTCUSDT",
  "S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"…","BT":false,"RPI":false,"seq":…}]}``,
  up to 1024 trades per message. ``S`` is the **side of the taker**: ``Buy`` ⇒ an aggressive buy.
  Block trades (``BT``) and RPI fills are trades like any other and are counted.
* Keep-alive ``{"req_id":"ping","op":"ping"}`` every 20 s (the server cuts a connection silent for
  10 minutes); the answer ``{"success":true,"ret_msg":"pong",…,"op":"ping"}`` (or
  ``{"op":"pong",…}`` on other Bybit channels) is a heartbeat.

Sequence rule
-------------
After (re)subscribing the venue pushes a ``snapshot``; every later ``delta`` carries the next
update id: ``u == previous u + 1`` (the docs call ``u`` "a sequence" without promising the step;
real streams step by one per message per topic, docs/venues/bybit.md). A delta at or below the last
id is a duplicate (dropped); a jump is a gap, healed by unsubscribing and subscribing again (Bybit
pushes a fresh snapshot). Every snapshot replaces the book ("If you receive a new snapshot message,
you will have to reset your local orderbook"), and a message with ``u == 1`` is a snapshot after a
service restart whatever its ``type`` says: it is emitted as a ``SNAPSHOT``, so a LIVE book counts
it as a ``venue_reset``. There is no checksum.

Limits (Connect page): at most 21,000 characters of ``args`` per public connection, 10 args per
subscribe request on spot (none stated for linear). Each symbol's topics (depth, trades) go in
a request of their own: Bybit refuses a whole request that names one topic it does not know, so
a refused symbol (counted ``venue_error``) must not share a request with others. At most 500 new
connections per 5 minutes per domain (connections are few and long-lived; the feed runner's
back-off spaces reconnects). No REST is used, so there is no request-weight budget to keep.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import orjson

from ..errors import ContractError, MalformedMessage, UnknownMessage
from ..model import BookEvent, BookKind, Event, Notice, NoticeKind, TakerSide, Trade
from .base import (
    ConnectionPlan,
    FrameParser,
    SnapshotRequest,
    SnapshotSource,
    Venue,
    Verdict,
    decode_object,
)

__all__ = [
    "CATEGORIES",
    "DEPTH",
    "MAX_ARGS_CHARS_PER_CONNECTION",
    "MAX_TOPICS_PER_CONNECTION",
    "Bybit",
    "BybitCategory",
]

#: Levels per side of the subscribed book: the deepest ``orderbook`` stream of linear and spot.
DEPTH: Final = 1000
#: Bybit refuses more than 21,000 characters of ``args`` per public connection; keep a margin.
MAX_ARGS_CHARS_PER_CONNECTION: Final = 20_000
#: Topics per connection: a 1000-level book every 200 ms is heavy; spread symbols out.
MAX_TOPICS_PER_CONNECTION: Final = 100
#: Bybit allows 500 new connections per 5 minutes per domain; a plan never comes near it.
MAX_CONNECTIONS: Final = 100

#: Bybit's inverse contracts: a coin against ``USD``, perpetual or dated (``BTCUSDH26``).
_INVERSE: Final = re.compile(r"[A-Z0-9]+USD(?:[FGHJKMNQUVXZ]\d{2})?")

_MS: Final = 1_000_000
_tuple_new: Final = tuple.__new__
_EMPTY: Final[list[list[str]]] = []

# Enum members as native constants (read for every message; see binance.py).
_DELTA: Final = BookKind.DELTA
_SNAPSHOT: Final = BookKind.SNAPSHOT
_SELL: Final = TakerSide.SELL
_BUY: Final = TakerSide.BUY
_APPLY: Final = Verdict.APPLY
_DROP: Final = Verdict.DROP
_GAP: Final = Verdict.GAP
_SUBSCRIBED: Final = (Notice(NoticeKind.SUBSCRIBED),)
_HEARTBEAT: Final = (Notice(NoticeKind.HEARTBEAT),)


@dataclass(frozen=True, slots=True)
class BybitCategory:
    """One Bybit v5 public market (``category``) and what differs between markets.

    Attributes:
        name: the v5 ``category`` (``linear``, ``spot``).
        path: websocket path on the public host.
        depth: levels per side of the deepest ``orderbook`` topic.
    """

    name: str
    path: str
    depth: int


#: The categories this module speaks (``Bybit(category=...)``).
CATEGORIES: Final = MappingProxyType(
    {
        "linear": BybitCategory("linear", "/v5/public/linear", DEPTH),
        "spot": BybitCategory("spot", "/v5/public/spot", DEPTH),
    }
)


def _side(value: object) -> TakerSide:
    if value == "Buy":
        return _BUY
    if value == "Sell":
        return _SELL
    raise ValueError(f"unknown taker side {value!r}")


class _BybitParser:
    """Stateless frame parser (one instance per connection)."""

    __slots__ = ("_venue",)

    def __init__(self, venue: str) -> None:
        self._venue = venue

    def parse(self, raw: bytes | str, ts_recv_ns: int) -> Sequence[Event]:
        msg = decode_object(self._venue, raw)
        topic = msg.get("topic")
        if topic is None:
            return self._control(msg, raw)
        if type(topic) is not str:
            raise MalformedMessage(self._venue, "topic is not a string", raw)
        channel = topic.partition(".")[0]
        try:
            if channel == "orderbook":
                return (self._depth(msg, ts_recv_ns, raw),)
            if channel == "publicTrade":
                data = msg["data"]
                if type(data) is not list:
                    raise TypeError("trade data is not a list")
                return [
                    Trade(
                        t["s"],
                        float(t["p"]),
                        float(t["v"]),
                        _side(t["S"]),
                        int(t["T"]) * _MS,
                        ts_recv_ns,
                    )
                    for t in data
                ]
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(self._venue, f"bad {topic} message: {exc!r}", raw) from exc
        raise UnknownMessage(self._venue, f"unknown topic {topic!r}", raw)

    def _depth(self, msg: dict[str, object], ts_recv_ns: int, raw: bytes | str) -> BookEvent:
        data = msg["data"]
        if type(data) is not dict:
            raise TypeError("depth data is not an object")
        u = data["u"]
        if type(u) is not int:
            raise TypeError("u is not an integer")
        bids = data.get("b", _EMPTY)
        asks = data.get("a", _EMPTY)
        if type(bids) is not list or type(asks) is not list:
            raise TypeError("depth levels are not lists")
        kind = msg["type"]
        # u == 1: the venue restarted and this message is a full book, whatever "type" says.
        if kind == "snapshot" or u == 1:
            book_kind = _SNAPSHOT
        elif kind == "delta":
            book_kind = _DELTA
        else:
            raise UnknownMessage(self._venue, f"unknown depth message type {kind!r}", raw)
        ts = msg["ts"]
        if type(ts) is not int:
            raise TypeError("ts is not an integer")
        event: BookEvent = _tuple_new(
            BookEvent,
            (data["s"], book_kind, bids, asks, u, u, None, ts * _MS, ts_recv_ns, None),
        )
        return event

    def _control(self, msg: dict[str, object], raw: bytes | str) -> Sequence[Event]:
        op = msg.get("op")
        success = msg.get("success")
        if op == "pong" or (op == "ping" and msg.get("ret_msg") == "pong"):
            return _HEARTBEAT
        if success is False:
            detail = f"{op}: {msg.get('ret_msg')}"
            return (Notice(NoticeKind.ERROR, detail[:200]),)
        if success is True and (op == "subscribe" or op == "unsubscribe"):
            return _SUBSCRIBED
        if msg.get("type") == "COMMAND_RESP":  # option/spread shape of a subscription answer
            data = msg.get("data")
            failed = data.get("failTopics") if type(data) is dict else None
            if failed:
                return (Notice(NoticeKind.ERROR, f"failed topics: {failed}"[:200]),)
            return _SUBSCRIBED
        raise UnknownMessage(self._venue, f"unknown control message op={op!r}", raw)


class Bybit(Venue):
    """Bybit v5 public streams: WS snapshot + contiguous ``u`` deltas, re-subscribe on a gap.

    Args:
        ws_base: ``scheme://host:port`` replacing ``wss://stream.bybit.com``.
        rest_base: unused (books bootstrap from the stream).
        category: ``"linear"`` (USDT perpetuals, the default) or ``"spot"``.

    Raises:
        ValueError: an unknown category.
    """

    name = "bybit"
    snapshot_source = SnapshotSource.STREAM
    keepalive_text = '{"req_id":"ping","op":"ping"}'
    keepalive_interval_s = 20.0
    max_depth = DEPTH
    ws_host = "wss://stream.bybit.com"

    def __init__(
        self, ws_base: str | None = None, rest_base: str | None = None, category: str = "linear"
    ) -> None:
        super().__init__(ws_base=ws_base, rest_base=rest_base)
        try:
            self.category = CATEGORIES[category]
        except KeyError:
            known = ", ".join(CATEGORIES)
            raise ValueError(f"unknown Bybit category {category!r} (one of: {known})") from None
        self._depth_prefix = f"orderbook.{self.category.depth}."

    # -- connections -----------------------------------------------------------------------

    def depth_topic(self, symbol: str) -> str:
        """The depth topic of ``symbol``, e.g. ``orderbook.1000.BTCUSDT``."""
        return self._depth_prefix + symbol

    @staticmethod
    def _request(op: str, args: Sequence[str], req_id: str) -> str:
        return orjson.dumps({"req_id": req_id, "op": op, "args": list(args)}).decode()

    def connections(self, symbols: Sequence[str], *, trades: bool) -> list[ConnectionPlan]:
        """One connection per group of symbols, each symbol's depth and trades together.

        A group closes before it would pass :data:`MAX_TOPICS_PER_CONNECTION` topics or
        :data:`MAX_ARGS_CHARS_PER_CONNECTION` characters of ``args``; each symbol's topics
        go in a subscribe request of their own.

        Raises:
            ValueError: the plan would need more than :data:`MAX_CONNECTIONS` connections.
        """
        groups: list[list[str]] = []
        group: list[str] = []
        topics = chars = 0
        per_symbol = 2 if trades else 1
        for symbol in symbols:
            size = sum(len(t) + 3 for t in self._topics(symbol, trades))  # quotes and comma
            if group and (
                topics + per_symbol > MAX_TOPICS_PER_CONNECTION
                or chars + size > MAX_ARGS_CHARS_PER_CONNECTION
            ):
                groups.append(group)
                group, topics, chars = [], 0, 0
            group.append(symbol)
            topics += per_symbol
            chars += size
        if group:
            groups.append(group)
        if len(groups) > MAX_CONNECTIONS:
            raise ValueError(
                f"{len(symbols)} symbols need {len(groups)} Bybit connections "
                f"(at most {MAX_CONNECTIONS})"
            )
        url = f"{self.ws_base or self.ws_host}{self.category.path}"
        plans = []
        for n, members in enumerate(groups):
            name = f"{self.name}/{self.category.name}#{n}"
            # One request per symbol (its depth and trade topics): Bybit refuses a whole request
            # that names one topic it does not know, so a refused symbol must not share a
            # request with the others.
            plans.append(
                ConnectionPlan(
                    name=name,
                    url=url,
                    depth_symbols=tuple(members),
                    trade_symbols=tuple(members) if trades else (),
                    subscribe=tuple(
                        self._request("subscribe", list(self._topics(s, trades)), f"sub-{n}-{i}")
                        for i, s in enumerate(members)
                    ),
                )
            )
        return plans

    def _topics(self, symbol: str, trades: bool) -> tuple[str, ...]:
        depth = self.depth_topic(symbol)
        return (depth, f"publicTrade.{symbol}") if trades else (depth,)

    def new_parser(self) -> FrameParser:
        return _BybitParser(self.name)

    def contract_requests(self, symbols: Sequence[str]) -> list[SnapshotRequest]:
        """None: linear and spot sizes are base-coin units already.

        Raises:
            ContractError: an inverse contract (sizes in USD contracts; not supported).
        """
        for symbol in symbols:
            if _INVERSE.fullmatch(symbol.upper()):
                raise ContractError(
                    self.name, symbol, "an inverse contract (sizes in USD contracts, category "
                    "'inverse'): not supported; the bybit feed follows linear contracts "
                    "(BTCUSDT, sizes in the base coin)",
                )  # fmt: skip
        return []

    def resubscribe(self, symbol: str) -> tuple[str, ...]:
        """Unsubscribe and subscribe the depth topic again: Bybit then pushes a fresh snapshot."""
        topic = [self.depth_topic(symbol)]
        return (
            self._request("unsubscribe", topic, f"resync-{symbol}"),
            self._request("subscribe", topic, f"resync-{symbol}"),
        )

    # -- sequence --------------------------------------------------------------------------

    @staticmethod
    def _verdict(last_u: int, delta: BookEvent) -> Verdict:
        u = delta.last_id
        if u == last_u + 1:
            return _APPLY
        if u <= last_u:
            return _DROP
        return _GAP

    def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
        return self._verdict(snapshot.last_id, delta)

    def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
        return self._verdict(previous.last_id, delta)

    def is_reset(self, previous: BookEvent | None, snapshot: BookEvent) -> bool:
        """Whether a snapshot pushed onto a LIVE book is a reset rather than a refresh.

        A snapshot that continues the chain (``u`` equal to the last applied id — Bybit's
        re-push of an unchanged book — or the next one) only restates the book; ``u == 1``
        (service restart) or any other jump is a reset. The book is replaced either way.
        """
        if previous is None or snapshot.last_id == 1:
            return True
        return not (previous.last_id <= snapshot.last_id <= previous.last_id + 1)
