"""An embedded Coinbase Advanced Trade venue on loopback, driven by a seeded book generator.

:class:`EmbeddedCoinbase` is one asyncio websocket server on ``127.0.0.1`` speaking the
Advanced Trade market-data protocol (docs/venues/coinbase.md) for a few products. Its
books come from :class:`BookGenerator`, a small deterministic random walk (seeded; the same seed
always gives the same sequence of book changes and trades, whatever the timing), and it keeps
the ground truth (every level it has released, as exact text) so tests can compare the
service's books with what the venue actually sent.

Reproduced:

* One endpoint, any path. Client frames ``{"type":"subscribe"|"unsubscribe","product_ids":[…],
  "channel":…}`` with one channel per message (an optional ``jwt`` is accepted and ignored).
  ``level2``, ``market_trades`` and ``heartbeats`` are served; ``ticker``, ``ticker_batch``,
  ``candles`` and ``status`` are accepted and stay silent; ``user`` and
  ``futures_balance_summary`` need authentication and are refused. ``unsubscribe`` without
  ``product_ids`` leaves the whole channel.
* Every subscribe/unsubscribe is answered by a ``subscriptions`` message listing the
  connection's subscriptions. Subscribing ``level2`` first pushes one ``l2_data`` ``snapshot``
  message per newly subscribed product (the whole book, bids best first, then offers best
  first); subscribing ``market_trades`` first pushes a ``snapshot`` event with the product's
  recent trades (newest first, at most 50). A product already subscribed gets no new snapshot:
  a client that wants one unsubscribes first.
* Envelopes ``{"channel","timestamp","sequence_num","events"}`` as the production feed sends
  them (no ``client_id``), ``timestamp`` in Go ``RFC3339Nano`` form (nanoseconds, trailing
  zeros trimmed). ``sequence_num`` is one counter per connection, starting at 0, across every
  channel — heartbeats and subscription answers included. Errors are ``{"type":"error",
  "message":…}`` without a sequence number.
* ``l2_data`` updates carry absolute sizes (``"0"`` removes) with sides ``bid``/``offer``;
  ``market_trades`` updates carry ``side`` = the **maker's** (resting order's) side, as the real
  venue does (docs/venues/coinbase.md "Trade aggressor"): an aggressive buyer lifts the best
  offer and the trade reads ``"side":"SELL"``, an aggressive seller hits the best bid and it
  reads ``"BUY"`` (the trade is released before the book update that removes the liquidity it
  took). The trades of one event are listed newest first (descending ``trade_id``), in updates
  and in the snapshot alike.
* ``heartbeats``: one message per second per subscribed connection, with an integer
  ``heartbeat_counter`` (per connection) and a Go-formatted ``current_time``.
* Limits: a connection that has not subscribed within 5 s is closed (1008); more than 8
  client messages per second across all connections (one IP on loopback) are refused with an
  error; more than 8 websocket handshakes per second are refused with HTTP 429; a ``level2``
  subscribe that would take a connection over ``max_l2_products`` products at once is refused
  whole with the venue's error text "too many L2 streams requested in a single session" (the
  connection stays open and its other subscriptions keep flowing; unsubscribing frees room).

Not reproduced: TLS; JWT verification; the 250 ms batching of trades (each generator step's
trades go out in one message); closing idle channels after 60–90 s without heartbeats; the
REST API.

Fault injection (deterministic): :meth:`EmbeddedCoinbase.lose_next_update` (an update is lost
in transit: the truth moves and the sequence number is consumed; optionally the generator holds
right after it), :meth:`skip_sequence` (a sequence number is skipped, nothing lost),
:meth:`drop_connections` (TCP abort), :meth:`close_connections`, :meth:`send_raw`,
:meth:`pause` / :meth:`resume`.
"""

from __future__ import annotations

import asyncio
import http
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from mmradar.embedded.loopback import Connection, LoopbackVenue

__all__ = [
    "TOO_MANY_L2_STREAMS",
    "BookGenerator",
    "EmbeddedCoinbase",
    "Step",
    "TradePrint",
    "VenueStats",
    "format_rfc3339_nano",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], int]
"""Wall clock in ns since the epoch (``time.time_ns``)."""

_QTY_UNIT = 10**8  # sizes are integers of 1e-8 base units
_SERVED = ("level2", "market_trades", "heartbeats")
_SILENT = ("ticker", "ticker_batch", "candles", "status")
_AUTHENTICATED = ("user", "futures_balance_summary")
_TRADE_HISTORY = 50
#: The venue's answer to a level2 subscribe over its per-session product limit.
TOO_MANY_L2_STREAMS = "too many L2 streams requested in a single session"


def format_rfc3339_nano(ts_ns: int) -> str:
    """Format epoch ns as Go's ``RFC3339Nano`` in UTC: ``2023-02-09T20:32:50.71496485Z``.

    Trailing zeros of the fraction are trimmed, and the fraction is left out when zero.
    """
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    head = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if ns == 0:
        return head + "Z"
    return f"{head}.{ns:09d}".rstrip("0") + "Z"


def _go_time(ts_ns: int, monotonic_s: float) -> str:
    """Go's ``time.Time.String()`` form, as in heartbeat ``current_time``."""
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    head = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    return f"{head}.{ns:09d} +0000 UTC m=+{monotonic_s:.9f}"


def _price_text(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def _qty_text(units: int) -> str:
    if units == 0:
        return "0"
    whole, frac = divmod(units, _QTY_UNIT)
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac:08d}".rstrip("0")


@dataclass(frozen=True, slots=True)
class TradePrint:
    """One trade the generator printed, with the touch it met.

    Attributes:
        product: product id, e.g. ``"BTC-USD"``.
        trade_id: the venue's trade id (a counter, as text).
        taker: the aggressor's side, ``"BUY"`` (lifted the best offer) or ``"SELL"`` (hit the
            best bid).
        price: price text.
        size: size text (base currency).
        best_bid: best bid price text just before the trade.
        best_ask: best offer price text just before the trade.
    """

    product: str
    trade_id: str
    taker: str
    price: str
    size: str
    best_bid: str
    best_ask: str

    @property
    def side(self) -> str:
        """The wire ``side``: the maker's (resting order's) side, opposite the taker."""
        return "SELL" if self.taker == "BUY" else "BUY"


@dataclass(frozen=True, slots=True)
class Step:
    """What one generator step changed.

    Attributes:
        product: the product it changed.
        bids: bid levels set, ``(price text, size text)``; ``"0"`` removes.
        asks: offer levels set, likewise.
        trades: trades printed (released before the book change).
    """

    product: str
    bids: tuple[tuple[str, str], ...]
    asks: tuple[tuple[str, str], ...]
    trades: tuple[TradePrint, ...]


class _Book:
    """One product's generated book: integer ticks → integer 1e-8 units."""

    def __init__(self, product: str, mid_ticks: int, rng: random.Random) -> None:
        self.product = product
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        # Dense near the touch (1–3 ticks apart), then sparse out to about 3 % of mid (never
        # down to a price of zero, whatever the mid).
        lo, hi = max(1, mid_ticks // 150_000), max(2, mid_ticks // 5_000)
        spread = rng.randint(1, 4)
        bid = mid_ticks - spread // 2
        ask = bid + spread
        for n in range(400):
            gap = rng.randint(1, 3) if n < 120 else rng.randint(lo, hi)
            self.bids[bid] = self._size(rng)
            self.asks[ask] = self._size(rng)
            bid -= gap
            ask += rng.randint(1, 3) if n < 120 else rng.randint(lo, hi)

    @staticmethod
    def _size(rng: random.Random) -> int:
        return rng.randint(1, 250_000) * 1000  # 0.00001 … 2.5

    def best_bid(self) -> int:
        return max(self.bids)

    def best_ask(self) -> int:
        return min(self.asks)


class BookGenerator:
    """A deterministic random walk of a few L2 books with taker trades.

    Each :meth:`step` changes one product with one to three actions: a resting order placed
    near (or inside) the touch, a cancel or size change near the touch, a change deep in the
    book, or a taker trade that consumes part or all of the best level on the other side. The
    books never cross and keep at least :attr:`MIN_LEVELS` levels per side.

    Args:
        products: product ids with their starting mid price in ticks of 0.01.
        seed: random seed.
    """

    MIN_LEVELS = 60

    def __init__(self, products: Sequence[tuple[str, int]], seed: int) -> None:
        self._rng = random.Random(seed)
        self.books = {p: _Book(p, mid, self._rng) for p, mid in products}
        self._products = [p for p, _ in products]
        self._trade_id = 100_000_000

    def snapshot(self, product: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The whole book of ``product`` as text, bids best first, then offers best first."""
        book = self.books[product]
        bids = [(_price_text(p), _qty_text(book.bids[p])) for p in sorted(book.bids, reverse=True)]
        asks = [(_price_text(p), _qty_text(book.asks[p])) for p in sorted(book.asks)]
        return bids, asks

    def truth(self, product: str) -> tuple[dict[str, str], dict[str, str]]:
        """``({price: size}, {price: size})`` text of ``product``'s book."""
        book = self.books[product]
        return (
            {_price_text(p): _qty_text(q) for p, q in book.bids.items()},
            {_price_text(p): _qty_text(q) for p, q in book.asks.items()},
        )

    def step(self) -> Step:
        """Advance one product by one to three actions."""
        rng = self._rng
        product = rng.choice(self._products)
        book = self.books[product]
        changes: dict[tuple[str, int], int] = {}  # (side, ticks) → new size, in order
        trades: list[TradePrint] = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            r = rng.random()
            if r < 0.18:
                trades.append(self._trade(book, changes))
            elif r < 0.55:
                self._place(book, changes)
            elif r < 0.80:
                self._cancel(book, changes)
            elif r < 0.93:
                self._resize(book, changes)
            else:
                self._deep(book, changes)
        bids = tuple(
            (_price_text(p), _qty_text(q)) for (side, p), q in changes.items() if side == "bid"
        )
        asks = tuple(
            (_price_text(p), _qty_text(q)) for (side, p), q in changes.items() if side == "offer"
        )
        return Step(product, bids, asks, tuple(trades))

    @staticmethod
    def _set(book: _Book, changes: dict[tuple[str, int], int], side: str, p: int, q: int) -> None:
        levels = book.bids if side == "bid" else book.asks
        if q:
            levels[p] = q
        else:
            levels.pop(p, None)
        changes.pop((side, p), None)  # keep the order of the last write
        changes[(side, p)] = q

    def _trade(self, book: _Book, changes: dict[tuple[str, int], int]) -> TradePrint:
        rng = self._rng
        bb, ba = book.best_bid(), book.best_ask()
        buy = rng.random() < 0.5
        side = "offer" if buy else "bid"
        level = ba if buy else bb
        resting = (book.asks if buy else book.bids)[level]
        take = resting if rng.random() < 0.35 else rng.randint(1, resting)
        self._set(book, changes, side, level, resting - take)
        self._refill(book, changes, side)
        self._trade_id += 1
        return TradePrint(
            product=book.product,
            trade_id=str(self._trade_id),
            taker="BUY" if buy else "SELL",
            price=_price_text(level),
            size=_qty_text(take),
            best_bid=_price_text(bb),
            best_ask=_price_text(ba),
        )

    def _refill(self, book: _Book, changes: dict[tuple[str, int], int], side: str) -> None:
        levels = book.bids if side == "bid" else book.asks
        while len(levels) < self.MIN_LEVELS:  # deep liquidity arrives when a side runs thin
            if side == "bid":
                p = min(levels) - self._rng.randint(1, 50)
            else:
                p = max(levels) + self._rng.randint(1, 50)
            self._set(book, changes, side, p, _Book._size(self._rng))

    def _place(self, book: _Book, changes: dict[tuple[str, int], int]) -> None:
        rng = self._rng
        bb, ba = book.best_bid(), book.best_ask()
        inside = rng.random() < 0.15 and ba - bb > 1
        if rng.random() < 0.5:
            p = rng.randint(bb + 1, ba - 1) if inside else bb - rng.randint(0, 12)
            self._set(book, changes, "bid", p, _Book._size(rng))
        else:
            p = rng.randint(bb + 1, ba - 1) if inside else ba + rng.randint(0, 12)
            self._set(book, changes, "offer", p, _Book._size(rng))

    def _cancel(self, book: _Book, changes: dict[tuple[str, int], int]) -> None:
        rng = self._rng
        side = rng.choice(("bid", "offer"))
        levels = book.bids if side == "bid" else book.asks
        if len(levels) <= self.MIN_LEVELS:
            return
        near = sorted(levels, reverse=side == "bid")[:15]
        # Leave the touch alone more often than not, so the book rarely has a huge spread.
        p = near[min(len(near) - 1, int(rng.expovariate(0.3)))]
        self._set(book, changes, side, p, 0)

    def _resize(self, book: _Book, changes: dict[tuple[str, int], int]) -> None:
        rng = self._rng
        side = rng.choice(("bid", "offer"))
        levels = book.bids if side == "bid" else book.asks
        near = sorted(levels, reverse=side == "bid")[:20]
        self._set(book, changes, side, rng.choice(near), _Book._size(rng))

    def _deep(self, book: _Book, changes: dict[tuple[str, int], int]) -> None:
        rng = self._rng
        side = rng.choice(("bid", "offer"))
        levels = book.bids if side == "bid" else book.asks
        ranked = sorted(levels, reverse=side == "bid")
        p = rng.choice(ranked[20:])
        if rng.random() < 0.5 and len(levels) > self.MIN_LEVELS:
            self._set(book, changes, side, p, 0)
        else:
            self._set(book, changes, side, p, _Book._size(rng))


@dataclass(frozen=True, slots=True)
class VenueStats:
    """Counters of an :class:`EmbeddedCoinbase` (cumulative since construction).

    Attributes:
        connections_accepted: websocket connections that completed the handshake.
        connections_open: websocket connections currently registered.
        connections_refused: handshakes refused with HTTP 429 (connection rate limit).
        client_messages: frames received from clients.
        client_messages_refused: client frames refused by the message rate limit.
        l2_subscribes_refused: level2 subscribes refused by the per-connection product limit.
        frames_sent: frames written to clients.
        steps: generator steps released.
        updates_lost: per-connection l2 updates lost in transit (:meth:`lose_next_update`).
        snapshots_sent: ``l2_data`` snapshot messages queued.
    """

    connections_accepted: int
    connections_open: int
    connections_refused: int
    client_messages: int
    client_messages_refused: int
    l2_subscribes_refused: int
    frames_sent: int
    steps: int
    updates_lost: int
    snapshots_sent: int


class _Client(Connection):
    """One websocket connection: its subscriptions and sequence counter."""

    def __init__(self, ws: ServerConnection, max_frames: int) -> None:
        super().__init__(ws, max_frames)
        self.subs: dict[str, dict[str, None]] = {}  # channel → ordered set of products
        self.seq = 0  # sequence_num of the next message
        self.heartbeat_counter = 0
        self.subscribed = asyncio.Event()

    def forget(self) -> None:
        self.subs.clear()

    def wants(self, channel: str, product: str) -> bool:
        products = self.subs.get(channel)
        return products is not None and product in products


class EmbeddedCoinbase(LoopbackVenue[_Client]):
    """A Coinbase Advanced Trade market-data venue on 127.0.0.1, with ground truth.

    The generator advances only while some connection subscribes ``level2`` or
    ``market_trades`` and the venue is not :meth:`pause`\\ d, so a test may connect at leisure.
    Each released step goes to every connection subscribed to its product: trades first (one
    ``market_trades`` message), then the book change (one ``l2_data`` update).

    Args:
        products: product ids served (``BTC-USD``, ``ETH-USD`` and ``SOL-USD`` start at
            realistic mids, any other at 100.00).
        seed: generator seed.
        rate_hz: generator steps per second; ``0`` or ``math.inf`` = as fast as possible.
        steps: stop generating after this many steps (``None``: never).
        host: listen address (loopback).
        port: listen port; 0 picks a free one.
        clock: wall clock in ns (envelope timestamps).
        heartbeat_interval_s: seconds between heartbeats.
        subscribe_timeout_s: close connections that have not subscribed by then.
        max_messages_per_s: client frames per second accepted across all connections.
        max_connections_per_s: websocket handshakes per second accepted.
        max_queue_frames: a connection with more frames queued is dropped as too slow.
        max_l2_products: level2 products one connection may hold at once (the real venue's
            undocumented per-session limit: 16 reported accepted and 32 refused,
            JKorf/Coinbase.Net issue #19).
        paused: start paused (:meth:`resume` starts the generator), e.g. until a client's
            connections have all subscribed.
    """

    def __init__(
        self,
        products: Sequence[str] = ("BTC-USD", "ETH-USD"),
        *,
        seed: int = 20240808,
        rate_hz: float = 400.0,
        steps: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.time_ns,
        heartbeat_interval_s: float = 1.0,
        subscribe_timeout_s: float = 5.0,
        max_messages_per_s: int = 8,
        max_connections_per_s: int = 8,
        max_queue_frames: int = 100_000,
        max_l2_products: int = 16,
        paused: bool = False,
    ) -> None:
        mids = {"BTC-USD": 6_123_456, "ETH-USD": 264_321, "SOL-USD": 14_250}
        self._generator = BookGenerator([(p, mids.get(p, 10_000)) for p in products], seed)
        self._products = tuple(products)
        self._rate_hz = rate_hz
        self._fast = rate_hz == 0 or rate_hz == float("inf")
        self._steps_limit = steps
        super().__init__(host, port, "coinbase", paused=paused)
        self._clock = clock
        self._heartbeat_interval_s = heartbeat_interval_s
        self._subscribe_timeout_s = subscribe_timeout_s
        self._max_messages_per_s = max_messages_per_s
        self._max_connections_per_s = max_connections_per_s
        self._max_queue_frames = max_queue_frames
        self._max_l2_products = max_l2_products
        self._pause_after_loss = False

        self._done = asyncio.Event()
        self._lose: dict[str, int] = {}
        self._incoming: deque[float] = deque()
        self._handshakes: deque[float] = deque()
        self._recent: dict[str, deque[TradePrint]] = {
            p: deque(maxlen=_TRADE_HISTORY) for p in products
        }
        self._prints: dict[str, list[TradePrint]] = {p: [] for p in products}
        self._taker: dict[str, dict[str, Decimal]] = {
            p: {"buy": Decimal(0), "sell": Decimal(0)} for p in products
        }
        self._n_refused = 0
        self._n_client = 0
        self._n_client_refused = 0
        self._n_l2_refused = 0
        self._n_steps = 0
        self._n_lost = 0
        self._n_snapshots = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start the generator and heartbeat tasks.

        Raises:
            RuntimeError: already started.
        """
        if self._server is not None or self._tasks:
            raise RuntimeError("an EmbeddedCoinbase can be started only once")
        await self._bind(
            self._handle,
            process_request=self._process_request,
            ping_interval=None,
            close_timeout=2.0,
        )
        self._tasks = [
            asyncio.create_task(self._generate(), name="embedded-coinbase-generator"),
            asyncio.create_task(self._heartbeats(), name="embedded-coinbase-heartbeats"),
        ]
        logger.info("embedded coinbase serving %s at %s", ", ".join(self._products), self.ws_base)

    # -- addresses, truth, counters -------------------------------------------------------

    @property
    def products(self) -> tuple[str, ...]:
        """The product ids served."""
        return self._products

    @property
    def stats(self) -> VenueStats:
        """A snapshot of the venue's counters."""
        return VenueStats(
            connections_accepted=self._n_accepted,
            connections_open=len(self._clients),
            connections_refused=self._n_refused,
            client_messages=self._n_client,
            client_messages_refused=self._n_client_refused,
            l2_subscribes_refused=self._n_l2_refused,
            frames_sent=self._n_frames,
            steps=self._n_steps,
            updates_lost=self._n_lost,
            snapshots_sent=self._n_snapshots,
        )

    def truth_book(self, product: str) -> tuple[dict[str, str], dict[str, str]]:
        """The ground-truth book of ``product``: ``({price: size}, {price: size})`` text."""
        return self._generator.truth(self._known(product))

    def taker_volume(self, product: str) -> dict[str, Decimal]:
        """Base volume of the trades released so far by aggressor side: ``{"buy", "sell"}``."""
        return dict(self._taker[self._known(product)])

    def trades(self, product: str) -> tuple[TradePrint, ...]:
        """Every trade released so far for ``product``, oldest first."""
        return tuple(self._prints[self._known(product)])

    async def wait_steps(self, n: int) -> None:
        """Wait until at least ``n`` generator steps have been released in total."""
        while self._n_steps < n:
            await asyncio.sleep(0.005)

    async def wait_done(self) -> None:
        """Wait until the last step (``steps``) is released and every queue is flushed."""
        await self._done.wait()
        await self._flushed()

    def _known(self, product: str) -> str:
        if product not in self._generator.books:
            raise KeyError(f"unknown product {product!r}; this venue serves {self._products}")
        return product

    # -- fault injection -------------------------------------------------------------------

    def lose_next_update(self, product: str, *, pause: bool = False) -> None:
        """Lose the next ``l2_data`` update of ``product`` in transit on every connection.

        The truth moves and each subscribed connection's ``sequence_num`` skips the number the
        lost message would have had. Calls accumulate. With ``pause``, the generator holds
        right after the lost update (as :meth:`pause`): nothing more is released until
        :meth:`resume`, so the next message (a heartbeat) is the one that shows the gap.
        """
        self._lose[self._known(product)] = self._lose.get(product, 0) + 1
        self._pause_after_loss = self._pause_after_loss or pause

    def skip_sequence(self) -> None:
        """Skip one ``sequence_num`` on every open connection (nothing is lost)."""
        for client in self._clients:
            client.seq += 1

    # -- generator and heartbeats ------------------------------------------------------------

    def _active(self) -> bool:
        return any(
            c.subs.get("level2") or c.subs.get("market_trades")
            for c in self._clients
            if not c.closing
        )

    async def _generate(self) -> None:
        loop = asyncio.get_running_loop()
        origin = loop.time()
        released = 0  # since origin
        while not self._finished():
            if not self._may_run.is_set():
                await self._may_run.wait()
                origin, released = loop.time(), 0
            if self._fast:
                self._release(self._generator.step())
                if self._n_steps % 64 == 0:
                    await asyncio.sleep(0)
                continue
            wait = released / self._rate_hz - (loop.time() - origin)
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            due = int((loop.time() - origin) * self._rate_hz) + 1 - released
            for _ in range(min(due, 256)):
                if not self._may_run.is_set() or self._finished():
                    break
                self._release(self._generator.step())
                released += 1
            await asyncio.sleep(0)
        self._done.set()

    def _finished(self) -> bool:
        return self._steps_limit is not None and self._n_steps >= self._steps_limit

    def _release(self, step: Step) -> None:
        self._n_steps += 1
        product = step.product
        now = self._clock()
        stamp = format_rfc3339_nano(now)
        if step.trades:
            for trade in step.trades:
                self._prints[product].append(trade)
                self._recent[product].appendleft(trade)
                self._taker[product]["buy" if trade.taker == "BUY" else "sell"] += Decimal(
                    trade.size
                )
            # Newest first, as the venue lists them.
            trades = [self._trade_json(t, stamp) for t in reversed(step.trades)]
            events = [{"type": "update", "trades": trades}]
            payload = orjson.dumps(events)
            for client in list(self._clients):
                if client.wants("market_trades", product):
                    self._send(client, "market_trades", stamp, payload)
        if not step.bids and not step.asks:
            return
        updates = [
            {"side": "bid", "event_time": stamp, "price_level": p, "new_quantity": q}
            for p, q in step.bids
        ] + [
            {"side": "offer", "event_time": stamp, "price_level": p, "new_quantity": q}
            for p, q in step.asks
        ]
        payload = orjson.dumps([{"type": "update", "product_id": product, "updates": updates}])
        lose = self._lose.get(product, 0) > 0
        if lose:
            self._lose[product] -= 1
        for client in list(self._clients):
            if client.wants("level2", product):
                if lose:
                    client.seq += 1  # the message existed, and never arrived
                    self._n_lost += 1
                else:
                    self._send(client, "l2_data", stamp, payload)
        if lose:
            logger.info("embedded coinbase: lost an l2_data update of %s in transit", product)
            if self._pause_after_loss:
                self._pause_after_loss = False
                self.pause()

    @staticmethod
    def _trade_json(trade: TradePrint, stamp: str) -> dict[str, str]:
        return {
            "trade_id": trade.trade_id,
            "product_id": trade.product,
            "price": trade.price,
            "size": trade.size,
            "side": trade.side,
            "time": stamp,
        }

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_interval_s)
            now = self._clock()
            stamp = format_rfc3339_nano(now)
            for client in list(self._clients):
                if "heartbeats" in client.subs:
                    client.heartbeat_counter += 1
                    events = [
                        {
                            "current_time": _go_time(now, time.monotonic()),
                            "heartbeat_counter": client.heartbeat_counter,
                        }
                    ]
                    self._send(client, "heartbeats", stamp, orjson.dumps(events))

    # -- sending -----------------------------------------------------------------------------

    def _send(self, client: _Client, channel: str, stamp: str, events: bytes) -> None:
        """Queue one envelope, taking the connection's next ``sequence_num``."""
        seq = client.seq
        client.seq += 1
        frame = b"".join(
            (
                b'{"channel":"',
                channel.encode(),
                b'","timestamp":"',
                stamp.encode(),
                b'","sequence_num":',
                str(seq).encode(),
                b',"events":',
                events,
                b"}",
            )
        )
        self._push(client, frame)

    def _error(self, client: _Client, message: str) -> None:
        self._push(client, orjson.dumps({"type": "error", "message": message}))

    # -- connections ---------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            body = b"websocket only\n"
            headers = Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return Response(426, "Upgrade Required", headers, body)
        now = time.monotonic()
        while self._handshakes and self._handshakes[0] <= now - 1.0:
            self._handshakes.popleft()
        if len(self._handshakes) >= self._max_connections_per_s:
            self._n_refused += 1
            body = b"Too Many Requests\n"
            headers = Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return Response(429, http.HTTPStatus(429).phrase, headers, body)
        self._handshakes.append(now)
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        client = _Client(ws, self._max_queue_frames)
        watchdog = asyncio.create_task(self._subscribe_deadline(client))
        try:
            await self._serve(client, self._on_frame)
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)

    def _on_frame(self, client: _Client, message: str | bytes) -> None:
        self._n_client += 1
        if self._rate_exceeded():
            self._n_client_refused += 1
            self._error(client, "rate limit exceeded")
            return
        self._on_message(client, message)

    async def _subscribe_deadline(self, client: _Client) -> None:
        try:
            async with asyncio.timeout(self._subscribe_timeout_s):
                await client.subscribed.wait()
        except TimeoutError:
            logger.info("embedded coinbase: no subscribe within %.1f s", self._subscribe_timeout_s)
            self._close(client, 1008, "subscribe timeout")

    def _rate_exceeded(self) -> bool:
        now = time.monotonic()
        incoming = self._incoming
        while incoming and incoming[0] <= now - 1.0:
            incoming.popleft()
        if len(incoming) >= self._max_messages_per_s:
            return True
        incoming.append(now)
        return False

    def _on_message(self, client: _Client, message: str | bytes) -> None:
        try:
            request: Any = orjson.loads(message)
        except orjson.JSONDecodeError:
            self._error(client, "failure to parse message: invalid JSON")
            return
        if not isinstance(request, dict):
            self._error(client, "failure to parse message: expected a JSON object")
            return
        kind = request.get("type")
        if kind not in ("subscribe", "unsubscribe"):
            self._error(client, f"unknown message type {kind!r}")
            return
        channel = request.get("channel")
        if not isinstance(channel, str) or not channel:
            self._error(client, "channel is required (one channel per message)")
            return
        if channel in _AUTHENTICATED:
            self._error(client, f"authentication failure: channel {channel} requires a jwt")
            return
        if channel not in _SERVED and channel not in _SILENT:
            self._error(client, f"unknown channel {channel!r}")
            return
        raw_products = request.get("product_ids")
        if raw_products is None:
            products: list[str] = []
        elif isinstance(raw_products, list) and all(isinstance(p, str) for p in raw_products):
            products = list(dict.fromkeys(raw_products))
        else:
            self._error(client, "product_ids must be a list of strings")
            return
        unknown = [p for p in products if p not in self._generator.books]
        if unknown:
            self._error(client, f"failure to subscribe: unknown product_ids {unknown}")
            return
        if kind == "subscribe":
            if channel != "heartbeats" and not products:
                self._error(client, f"failure to subscribe: product_ids required for {channel}")
                return
            if channel == "level2":
                held = client.subs.get("level2", {})
                if len(held.keys() | set(products)) > self._max_l2_products:
                    self._n_l2_refused += 1
                    self._error(client, TOO_MANY_L2_STREAMS)
                    return
            self._subscribe(client, channel, products)
        else:
            self._unsubscribe(client, channel, products)
        self._subscriptions_message(client)
        self._refresh_gate()

    def _subscribe(self, client: _Client, channel: str, products: Iterable[str]) -> None:
        client.subscribed.set()
        current = client.subs.setdefault(channel, {})
        stamp = format_rfc3339_nano(self._clock())
        for product in products:
            if product in current:
                continue
            current[product] = None
            if channel == "level2":
                bids, asks = self._generator.snapshot(product)
                updates = [
                    {"side": "bid", "event_time": stamp, "price_level": p, "new_quantity": q}
                    for p, q in bids
                ] + [
                    {"side": "offer", "event_time": stamp, "price_level": p, "new_quantity": q}
                    for p, q in asks
                ]
                events = [{"type": "snapshot", "product_id": product, "updates": updates}]
                self._send(client, "l2_data", stamp, orjson.dumps(events))
                self._n_snapshots += 1
            elif channel == "market_trades":
                trades = [self._trade_json(t, stamp) for t in self._recent[product]]
                events = [{"type": "snapshot", "trades": trades}]
                self._send(client, "market_trades", stamp, orjson.dumps(events))

    @staticmethod
    def _unsubscribe(client: _Client, channel: str, products: Sequence[str]) -> None:
        current = client.subs.get(channel)
        if current is None:
            return
        if not products:
            del client.subs[channel]
            return
        for product in products:
            current.pop(product, None)
        if not current:
            del client.subs[channel]

    def _subscriptions_message(self, client: _Client) -> None:
        listing = {channel: list(products) for channel, products in client.subs.items()}
        events = [{"subscriptions": listing}]
        self._send(
            client, "subscriptions", format_rfc3339_nano(self._clock()), orjson.dumps(events)
        )
