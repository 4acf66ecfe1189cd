"""Coinbase Advanced Trade (``coinbase``): ``level2`` + ``market_trades`` + ``heartbeats``.

Wire format (docs/venues/coinbase.md; https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/websocket/level2.md,
…/market-trades.md, …/heartbeats.md, and the Advanced Trade AsyncAPI document, whose field shapes
were checked by Coinbase against the production feed):

* Endpoint ``wss://advanced-trade-ws.coinbase.com`` (no path). One channel per subscribe
  message; ``product_ids`` batch the products::

      {"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"level2"}
      {"type":"subscribe","channel":"heartbeats"}

  ``unsubscribe`` has the same shape. A subscribe must arrive within 5 s of connecting.
* Every server message is an envelope ``{"channel", "timestamp", "sequence_num", "events"}``
  (the prose docs add ``"client_id": ""``, which production omits). The channel names differ
  from the subscription names: ``l2_data`` (level2), ``market_trades``, ``heartbeats``,
  ``subscriptions`` (the answer to every subscribe/unsubscribe)::

      {"channel":"l2_data","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":0,
       "events":[{"type":"snapshot","product_id":"BTC-USD","updates":[
         {"side":"bid","event_time":"…","price_level":"21921.73","new_quantity":"0.06317902"},
         {"side":"offer","event_time":"…","price_level":"21921.74","new_quantity":"1.2"}]}]}

  ``"type":"update"`` events follow. ``new_quantity`` is the level's new size (not a delta);
  ``"0"`` removes it. Sides are ``bid`` and ``offer`` (not ``ask``).
* ``market_trades`` events: ``{"type":"snapshot"|"update","trades":[{"trade_id","product_id",
  "price","size","side":"BUY"|"SELL","time"}]}``; updates are collected over 250 ms.
* ``heartbeats`` events: ``{"current_time","heartbeat_counter"}``, one message per second.
* Errors: ``{"type":"error","message":"…"}`` (no channel, no ``sequence_num``).

Rules implemented:

* **Sequencing.** ``sequence_num`` is one counter per connection across all channels
  (heartbeats and subscription answers included); there is no per-product sequence and no
  checksum. The frame parser (one per connection) expects ``previous + 1``; any other value is
  a lost message somewhere on the socket, reported as ``Notice(CONNECTION_GAP)`` *before* the
  message's own events. :attr:`Coinbase.reconnect_on_gap` makes the pipeline invalidate every
  book whose snapshot came on that connection (reason ``gap``) and drop and reopen the
  connection (``Reconnect("gap")``): its subscribe messages bring fresh snapshots and a new
  counter. Coinbase documents no other way to recover a level2 stream than a new subscription,
  and unsubscribing and subscribing every product again on the same session would lean on the
  venue's undocumented per-session level2 accounting (see *Limits*). An ``l2_data`` message that
  cannot be parsed does not advance the counter: its update is lost, so the next message
  reports the gap.
* **Snapshots** come on the stream after subscribing level2 (``SnapshotSource.STREAM``); a
  snapshot resets the book. A single book invalidated on its own (crossed, an unreadable level)
  is resubscribed: ``unsubscribe`` + ``subscribe`` level2 for the product, which makes the venue
  push a fresh snapshot. Deltas need no verdict beyond the connection counter: every delta the
  parser passes on is the next one (``APPLY``).
* **Event time** is the envelope ``timestamp`` (RFC 3339 with up to nanoseconds, trailing
  zeros trimmed, Go ``RFC3339Nano`` style), parsed exactly to integer ns, for book events and
  trades alike. The per-level ``event_time`` and the per-trade ``time`` are not used.
* **Trade aggressor.** ``side`` names the **maker** (resting) order's side, so the aggressor is
  the opposite: ``"side":"SELL"`` ⇒ a resting sell order was lifted by an aggressive buyer ⇒
  :attr:`TakerSide.BUY`. Settled on a real Advanced Trade capture
  (``tests/fixtures/coinbase/fastmm_coinbase_advanced_20260930.jsonl``, docs/venues/coinbase.md
  "Trade aggressor"): against the book rebuilt from ``l2_data`` as of each trade's ``time``, 106
  of its 107 update trades print on the side opposite their label (a ``SELL`` at the best ask),
  one inside the spread, none on the labelled side. The trades of one event arrive newest first;
  they are passed on in ``trade_id`` order (oldest first). Only ``update`` trade events are
  counted: the ``snapshot`` sent on subscribing repeats recent trades that happened before (or
  were counted on an earlier connection).
* **Limits** (docs/venues/coinbase.md "Limits"). Coinbase refuses level2 for more products in
  one session than an undocumented limit ("too many L2 streams requested in a single session";
  16 accepted and 32 refused in JKorf/Coinbase.Net issue #19): a connection carries at most
  :data:`MAX_PRODUCTS_PER_CONNECTION` products and connections open
  :attr:`Coinbase.connect_interval_s` apart, within the 8 connections/s that Coinbase documents
  per IP. Each product gets subscribe messages of its own (``level2``, then ``market_trades``),
  then one ``heartbeats``: the venue refuses a whole message that names one product it does not
  know, so a product the venue refuses (counted ``venue_error``) must not take the others of its
  message down with it. The runner paces every client message, each connection at its share of
  the 8 messages/s per IP (15 products: 31 messages, about 4 s on one connection, 8 s on each of
  two). Resubscribing goes product by product for the same reason. Heartbeats keep the
  subscriptions open (channels otherwise close after 60–90 s without updates); no client-side
  ping is needed, and there is no documented connection age limit.
* **Products.** A ``-USDC`` product (other than ``USDT-USDC`` and ``EURC-USDC``) is served under
  its ``-USD`` book on every public channel, so the configured product would never receive an
  event of its own: :meth:`Coinbase.symbol_problem` refuses it in the configuration, naming the
  ``-USD`` product to use instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

import orjson
from mypy_extensions import mypyc_attr

from ..errors import MalformedMessage, UnknownMessage
from ..model import BookEvent, BookKind, Event, Notice, NoticeKind, TakerSide, Trade
from .base import ConnectionPlan, FrameParser, SnapshotSource, Venue, Verdict, decode_object
from .timestamps import parse_rfc3339_ns

__all__ = ["MAX_PRODUCTS_PER_CONNECTION", "USDC_PRODUCTS_SERVED", "Coinbase"]

#: Products per connection (level2 and market_trades alike). Coinbase answers a level2
#: subscription over its per-session limit with "too many L2 streams requested in a single
#: session" and documents no number; JKorf/Coinbase.Net issue #19 reports 16 products accepted
#: and 32 refused on one connection. 15 stays below the largest count reported to work, and a
#: gap (which reconnects the connection) re-sends at most 15 snapshots.
MAX_PRODUCTS_PER_CONNECTION = 15

#: ``-USDC`` products served on every public channel under their own id (Coinbase: "USDT-USDC
#: and EURC-USDC are available on all channels"); any other ``-USDC`` product returns the data
#: of the ``-USD`` product.
USDC_PRODUCTS_SERVED: Final = frozenset({"USDT-USDC", "EURC-USDC"})

_tuple_new: Final = tuple.__new__

# Enum members as native constants (read for every message).
_DELTA: Final = BookKind.DELTA
_SNAPSHOT: Final = BookKind.SNAPSHOT
_BUY: Final = TakerSide.BUY
_SELL: Final = TakerSide.SELL
_APPLY: Final = Verdict.APPLY
_HEARTBEAT = (Notice(NoticeKind.HEARTBEAT),)
_SUBSCRIBED = (Notice(NoticeKind.SUBSCRIBED),)
_NO_EVENTS: tuple[Event, ...] = ()


class _CoinbaseParser:
    """Frame parser for one connection: checks the connection-wide ``sequence_num``."""

    __slots__ = ("_expected", "_ts_cache", "_venue")

    def __init__(self, venue: str) -> None:
        self._venue = venue
        self._expected: int | None = None  # sequence_num of the next message
        self._ts_cache: list[Any] = ["", 0]

    def parse(self, raw: bytes | str, ts_recv_ns: int) -> Sequence[Event]:
        msg = decode_object(self._venue, raw)
        channel = msg.get("channel")
        if channel is None:
            if msg.get("type") == "error":
                detail = msg.get("message")
                reason = msg.get("reason")
                text = f"{detail}: {reason}" if reason else str(detail)
                error = Notice(NoticeKind.ERROR, text[:200])
                seq = msg.get("sequence_num")
                if type(seq) is int:  # not documented on errors; counted if present
                    expected = self._expected
                    self._expected = seq + 1
                    if expected is not None and seq != expected:
                        return (self._gap_notice(seq, expected), error)
                return (error,)
            raise MalformedMessage(self._venue, "message without a channel", raw)

        seq = msg.get("sequence_num")
        if type(seq) is not int:
            raise MalformedMessage(self._venue, "sequence_num missing or not an integer", raw)
        expected = self._expected
        gap = expected is not None and seq != expected

        if channel == "l2_data":
            # The counter advances only once the update is in hand: a lost l2 update must
            # show as a gap on the next message.
            out: list[Event] = [self._gap_notice(seq, expected)] if gap else []
            self._book_events(msg, raw, ts_recv_ns, out)
            self._expected = seq + 1
            return out
        if channel == "market_trades":
            out = [self._gap_notice(seq, expected)] if gap else []
            try:
                self._trades(msg, raw, ts_recv_ns, out)
            except MalformedMessage:
                # Lost trades do not touch the books, but a gap this message revealed must
                # still be reported: by the next message.
                if not gap:
                    self._expected = seq + 1
                raise
            self._expected = seq + 1
            return out
        self._expected = seq + 1
        if channel == "heartbeats":
            return (self._gap_notice(seq, expected), *_HEARTBEAT) if gap else _HEARTBEAT
        if channel == "subscriptions":
            return (self._gap_notice(seq, expected), *_SUBSCRIBED) if gap else _SUBSCRIBED
        if gap:
            # A message of a channel this module does not use still proves the gap.
            return (self._gap_notice(seq, expected),)
        raise UnknownMessage(self._venue, f"unknown channel {channel!r}", raw)

    @staticmethod
    def _gap_notice(seq: int, expected: int | None) -> Notice:
        return Notice(NoticeKind.CONNECTION_GAP, f"sequence_num {seq}, expected {expected}")

    def _timestamp(self, msg: dict[str, Any], raw: bytes | str) -> int:
        ts = msg.get("timestamp")
        if type(ts) is not str:
            raise MalformedMessage(self._venue, "timestamp missing", raw)
        try:
            return parse_rfc3339_ns(ts, self._ts_cache)
        except ValueError as exc:
            raise MalformedMessage(self._venue, str(exc), raw) from exc

    def _book_events(
        self, msg: dict[str, Any], raw: bytes | str, ts_recv_ns: int, out: list[Event]
    ) -> None:
        ts_event_ns = self._timestamp(msg, raw)
        seq: int = msg["sequence_num"]
        events = msg.get("events")
        if type(events) is not list:
            raise MalformedMessage(self._venue, "l2_data without an events list", raw)
        try:
            for event in events:
                kind = event["type"]
                if kind == "update":
                    book_kind = _DELTA
                elif kind == "snapshot":
                    book_kind = _SNAPSHOT
                else:
                    raise MalformedMessage(self._venue, f"unknown l2_data event {kind!r}", raw)
                product = event["product_id"]
                if type(product) is not str:
                    raise MalformedMessage(self._venue, "product_id is not a string", raw)
                bids: list[tuple[str, str]] = []
                asks: list[tuple[str, str]] = []
                for update in event["updates"]:
                    side = update["side"]
                    price = update["price_level"]
                    qty = update["new_quantity"]
                    if type(price) is not str or type(qty) is not str:
                        raise MalformedMessage(self._venue, "level text is not a string", raw)
                    if side == "bid":
                        bids.append((price, qty))
                    elif side == "offer":
                        asks.append((price, qty))
                    else:
                        raise MalformedMessage(self._venue, f"unknown side {side!r}", raw)
                # tuple.__new__ directly: cheaper than the NamedTuple's interpreted __new__.
                out.append(
                    _tuple_new(
                        BookEvent,
                        (
                            product,
                            book_kind,
                            bids,
                            asks,
                            seq,
                            seq,
                            None,
                            ts_event_ns,
                            ts_recv_ns,
                            None,
                        ),
                    )
                )
        except (KeyError, TypeError) as exc:
            raise MalformedMessage(self._venue, f"bad l2_data event: {exc!r}", raw) from exc

    def _trades(
        self, msg: dict[str, Any], raw: bytes | str, ts_recv_ns: int, out: list[Event]
    ) -> None:
        ts_event_ns = self._timestamp(msg, raw)
        events = msg.get("events")
        if type(events) is not list:
            raise MalformedMessage(self._venue, "market_trades without an events list", raw)
        try:
            for event in events:
                kind = event["type"]
                trades = event["trades"]
                if type(trades) is not list:
                    raise MalformedMessage(self._venue, "trades is not a list", raw)
                if kind == "snapshot":
                    continue  # recent history, not new flow (see the module docstring)
                if kind != "update":
                    raise MalformedMessage(self._venue, f"unknown trades event {kind!r}", raw)
                if len(trades) > 1:
                    # Listed newest first: pass them on oldest first (numeric trade_id order).
                    trades = sorted(trades, key=_trade_order)
                for trade in trades:
                    # ``side`` is the maker's (resting order's) side: the aggressor is opposite.
                    side = trade["side"]
                    if side == "SELL":
                        taker = _BUY
                    elif side == "BUY":
                        taker = _SELL
                    else:
                        raise MalformedMessage(self._venue, f"unknown trade side {side!r}", raw)
                    out.append(
                        Trade(
                            trade["product_id"],
                            float(trade["price"]),
                            float(trade["size"]),
                            taker,
                            ts_event_ns,
                            ts_recv_ns,
                        )
                    )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(self._venue, f"bad market_trades event: {exc!r}", raw) from exc


def _trade_order(trade: dict[str, Any]) -> tuple[int, str]:
    """Sort key of a trade: its ``trade_id`` (decimal digits) in numeric order.

    Raises:
        KeyError, TypeError: no ``trade_id`` string (a malformed message).
    """
    trade_id = trade["trade_id"]
    if type(trade_id) is not str:
        raise TypeError(f"trade_id is not a string: {trade_id!r}")
    return len(trade_id), trade_id


def _frame(kind: str, channel: str, products: Sequence[str] | None = None) -> str:
    body: dict[str, Any] = {"type": kind}
    if products is not None:
        body["product_ids"] = list(products)
    body["channel"] = channel
    return orjson.dumps(body).decode()


@mypyc_attr(allow_interpreted_subclasses=True)  # venues may be specialised
class Coinbase(Venue):
    """Coinbase Advanced Trade market data: stream snapshots, connection-wide ``sequence_num``."""

    name = "coinbase"
    snapshot_source = SnapshotSource.STREAM
    ws_host = "wss://advanced-trade-ws.coinbase.com"
    #: client messages per second the venue accepts per IP (unauthenticated).
    max_messages_per_s: ClassVar[float] = 8.0
    #: connections open this far apart: 2 per second against Coinbase's 8 per second per IP;
    #: the runner paces every client message at a connection's share of the 8 messages/s.
    connect_interval_s: ClassVar[float] = 0.5
    #: a ``sequence_num`` gap reconnects the connection (see the module docstring).
    reconnect_on_gap: ClassVar[bool] = True

    def connections(self, symbols: Sequence[str], *, trades: bool) -> list[ConnectionPlan]:
        plans: list[ConnectionPlan] = []
        url = self.ws_base or self.ws_host
        for n, start in enumerate(range(0, len(symbols), MAX_PRODUCTS_PER_CONNECTION)):
            chunk = tuple(symbols[start : start + MAX_PRODUCTS_PER_CONNECTION])
            # One product per subscribe message: the venue refuses a whole message that names
            # one product it does not know, so a bad product must not share a message with the
            # others (the runner paces the messages at max_messages_per_s).
            subscribe = [_frame("subscribe", "level2", [p]) for p in chunk]
            if trades:
                subscribe.extend(_frame("subscribe", "market_trades", [p]) for p in chunk)
            subscribe.append(_frame("subscribe", "heartbeats"))
            plans.append(
                ConnectionPlan(
                    name=f"{self.name}#{n}",
                    url=url,
                    depth_symbols=chunk,
                    trade_symbols=chunk if trades else (),
                    subscribe=tuple(subscribe),
                )
            )
        return plans

    def new_parser(self) -> FrameParser:
        return _CoinbaseParser(self.name)

    def resubscribe(self, symbol: str) -> tuple[str, ...]:
        """Unsubscribe and subscribe level2 for ``symbol``: the venue pushes a new snapshot."""
        return (_frame("unsubscribe", "level2", [symbol]), _frame("subscribe", "level2", [symbol]))

    def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
        # Continuity is the connection's sequence_num, checked by the parser.
        return _APPLY

    def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
        return _APPLY

    def symbol_problem(self, symbol: str) -> str | None:
        """Refuse ``-USDC`` products the public channels serve under the ``-USD`` book."""
        base, sep, quote = symbol.rpartition("-")
        if sep and quote.upper() == "USDC" and symbol.upper() not in USDC_PRODUCTS_SERVED:
            usd = f"{base}-USD"
            return (
                f"{symbol!r} has no market data of its own on Coinbase Advanced Trade: its "
                f"public channels return the {usd!r} book (USD and USDC books are unified); "
                f"configure {usd!r} instead"
            )
        return None
