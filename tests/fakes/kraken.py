"""An embedded Kraken spot venue (WebSocket v2) on loopback, re-encoding a real capture.

:class:`EmbeddedKraken` is one asyncio websockets server on ``127.0.0.1`` answering at ``/v2``
with Kraken's public WebSocket v2 protocol. Its order books are driven by the packaged real
Binance captures (:mod:`.capture`, :mod:`.plan`), re-encoded as Kraken pairs: by default the
spot BTCUSDT capture becomes ``BTC/USDT`` (price precision 2, quantity precision 8); the USD-M
capture is available as ``BTC/USD`` (precision 1 and 8). Every capture price and quantity is
converted to integer units of the pair's precision when the plan is loaded (a value that does
not fit is an error), so the venue's books, texts and checksums are exact integer arithmetic,
sharing no code with the service.

Reproduced (docs/venues/kraken.md and the Kraken v2 docs cited in
:mod:`mmradar.venues.kraken`):

* ``status`` update on connect; ``{"channel":"heartbeat"}`` once a second on connections with a
  subscription when nothing else was sent for a second; ``ping`` → ``pong`` with ``req_id``,
  ``time_in``, ``time_out``.
* ``subscribe`` / ``unsubscribe`` for ``book`` (``depth`` ∈ {10, 25, 100, 500, 1000}, default
  10; ``snapshot`` default true), ``trade`` (``snapshot`` default true: the last 50 trades) and
  ``instrument`` (assets and pairs with their precisions; ``snapshot`` default true). Every
  request is answered per symbol with ``{"method", "result", "success": true, "time_in",
  "time_out", "req_id"}`` or ``{"error", "method", "success": false, "symbol", ...}``
  (``Currency pair not supported``, ``Already subscribed``, ``Subscription Not Found``; the
  error texts other than the first are modelled, not quoted). Unknown methods or channels and
  frames that are not JSON objects get an error reply; more than ``max_requests_per_s`` requests
  in a second get ``Exceeded msg rate``.
* ``book``: the snapshot (top ``depth`` levels) follows the acknowledgement; updates carry only
  what changed **inside the subscribed depth**: changed and new levels, ``qty`` 0 for removed
  levels, and the levels that slide into scope from below when levels inside it are removed;
  levels pushed out of scope by an insert are **not** sent (the client truncates). Prices and
  quantities are JSON numbers printed with the pair's precision (trailing zeros kept), and every
  snapshot and update carries the CRC32 ``checksum`` of the top 10 asks and bids; updates carry
  an RFC 3339 ``timestamp``.
* ``trade`` updates with ``side`` = the taker's direction (a capture fill whose buyer was the
  maker is a ``sell``), ``ord_type``, sequential ``trade_id`` and ``timestamp``.

Not reproduced: authentication and private channels; ``ticker``, ``ohlc``, ``level3``; the v1
protocol; TLS; connection-rate limits. Book updates are one message per capture diff (Kraken
publishes per engine event).

Time: capture event times are rebased so that the first served diff of each pair happens at
:meth:`EmbeddedKraken.start` (on the venue's wall ``clock``); frames are paced by the capture's
receive times divided by ``speed`` (``math.inf``: as fast as clients read) on the pacing clock
(``pace_clock``: the system's, or a test's fake clock, as the other loopback venues). The
replay advances only while a client is subscribed to a served ``book`` or ``trade`` and the
venue is not paused, and plays the capture once (afterwards only heartbeats flow).

Fault injection: :meth:`~EmbeddedKraken.corrupt_next_checksum`,
:meth:`~EmbeddedKraken.drop_connections`, :meth:`~EmbeddedKraken.close_connections`,
:meth:`~EmbeddedKraken.send_raw`, :meth:`~EmbeddedKraken.pause` /
:meth:`~EmbeddedKraken.resume`.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
import math
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from mmradar.clock import ShellClock, SystemClock
from mmradar.embedded.capture import (
    CaptureError,
    DepthDiff,
    Market,
    Trade,
    capture_path,
    load_capture,
)
from mmradar.embedded.loopback import Connection, LoopbackVenue
from mmradar.embedded.plan import ReplayPlan, build_plan

__all__ = ["DEFAULT_PAIRS", "PAIRS", "EmbeddedKraken", "KrakenPair", "KrakenVenueStats"]

logger = logging.getLogger(__name__)

_DEPTHS = (10, 25, 100, 500, 1000)
_CHECKSUM_LEVELS = 10
_TRADE_SNAPSHOT = 50
_HIGH_WATER = 2000
_REQUEST_LOG = 10_000


@dataclass(frozen=True, slots=True)
class KrakenPair:
    """A pair the venue serves and the packaged capture that drives it."""

    symbol: str  # v2 spelling, e.g. "BTC/USDT"
    base: str
    quote: str
    price_precision: int  # decimal places of prices on the wire
    qty_precision: int  # decimal places of quantities on the wire
    market: Market  # which packaged Binance capture drives its book and trades


#: Every pair the venue can serve.
PAIRS: dict[str, KrakenPair] = {
    "BTC/USDT": KrakenPair("BTC/USDT", "BTC", "USDT", 2, 8, "spot"),
    "BTC/USD": KrakenPair("BTC/USD", "BTC", "USD", 1, 8, "usdm"),
}
#: Pairs served unless told otherwise.
DEFAULT_PAIRS: tuple[str, ...] = ("BTC/USDT",)


@dataclass(frozen=True, slots=True)
class KrakenVenueStats:
    """Counters of an :class:`EmbeddedKraken` (cumulative since construction).

    Attributes:
        connections_accepted: websocket connections that completed the handshake.
        connections_open: connections currently open.
        frames_sent: text frames written to clients.
        book_updates: capture diffs released (applied to the truth books).
        trades: capture trades released.
        requests: client frames received.
        checksums_corrupted: book messages sent with a deliberately wrong checksum.
        slow_clients_dropped: connections closed because their send queue overflowed.
    """

    connections_accepted: int
    connections_open: int
    frames_sent: int
    book_updates: int
    trades: int
    requests: int
    checksums_corrupted: int
    slow_clients_dropped: int


# -- exact units -------------------------------------------------------------------------------


def _units(text: str, precision: int) -> int:
    """Decimal text → integer units of ``10**-precision`` (exactly, or CaptureError)."""
    whole, _, frac = text.partition(".")
    if len(frac) > precision:
        if frac[precision:].strip("0"):
            raise CaptureError(0, f"{text} does not fit precision {precision}")
        frac = frac[:precision]
    digits = (whole or "0") + frac.ljust(precision, "0")
    if not digits.isdigit():
        raise CaptureError(0, f"{text} is not a plain non-negative decimal")
    return int(digits)


@functools.lru_cache(maxsize=1 << 16)
def _text(units: int, precision: int) -> str:
    """Integer units → decimal text with exactly ``precision`` places (trailing zeros kept)."""
    if precision == 0:
        return str(units)
    digits = str(units).rjust(precision + 1, "0")
    return f"{digits[:-precision]}.{digits[-precision:]}"


def _rfc3339(ms: int) -> str:
    secs, rem = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rem * 1000:06d}Z"


def _rfc3339_ns(ns: int) -> str:
    secs, rem = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{rem // 1000:06d}Z"


@dataclass(frozen=True, slots=True)
class _Diff:
    recv_ns: int
    E: int  # capture event time, ms
    bids: tuple[tuple[int, int], ...]  # (price units, qty units); qty 0 removes
    asks: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class _Fill:
    recv_ns: int
    T: int  # capture trade time, ms
    price: int  # units
    qty: int  # units
    qty_text: str
    side: str  # taker direction


@dataclass(frozen=True, slots=True)
class _Timeline:
    """A pair's capture in exact units: the starting book and the served steps."""

    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]
    steps: tuple[_Diff | _Fill, ...]
    recv_first_ns: int
    first_event_ms: int


@functools.lru_cache(maxsize=4)
def _timeline(pair: KrakenPair) -> _Timeline:
    plan: ReplayPlan = build_plan(load_capture(capture_path(pair.market)), pair.market)
    pp, qp = pair.price_precision, pair.qty_precision

    def levels(raw: Iterable[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
        return tuple((_units(p, pp), _units(q, qp)) for p, q in raw)

    steps: list[_Diff | _Fill] = []
    for step in plan.steps:
        if isinstance(step, DepthDiff):
            steps.append(_Diff(step.recv_ns, step.E, levels(step.b), levels(step.a)))
        elif isinstance(step, Trade):
            qty = _units(step.q, qp)
            side = "sell" if step.m else "buy"
            steps.append(_Fill(step.recv_ns, step.T, _units(step.p, pp), qty, step.q, side))
    snap = plan.snapshot
    return _Timeline(
        levels(snap.bids), levels(snap.asks), tuple(steps), plan.recv_first_ns, plan.first_event_ms
    )


# -- the venue's book ----------------------------------------------------------------------------


class _Side:
    """One side of a book in integer units: ``qty`` by price and the sorted prices."""

    def __init__(self, levels: Iterable[tuple[int, int]], bid: bool) -> None:
        self.bid = bid
        self.qty: dict[int, int] = {p: q for p, q in levels if q}
        self.prices: list[int] = sorted(self.qty)  # ascending either way

    def edge(self, depth: int) -> int | None:
        """The ``depth``-th best price, None if the side has fewer levels (all in scope)."""
        if len(self.prices) < depth:
            return None
        return self.prices[-depth] if self.bid else self.prices[depth - 1]

    def inside(self, price: int, edge: int | None) -> bool:
        return edge is None or (price >= edge if self.bid else price <= edge)

    def top(self, n: int) -> list[tuple[int, int]]:
        ps = self.prices[-n:][::-1] if self.bid else self.prices[:n]
        return [(p, self.qty[p]) for p in ps]

    def set(self, price: int, qty: int) -> None:
        if qty:
            if price not in self.qty:
                bisect.insort(self.prices, price)
            self.qty[price] = qty
        elif self.qty.pop(price, None) is not None:
            del self.prices[bisect.bisect_left(self.prices, price)]

    def change(
        self, changes: Sequence[tuple[int, int]], depths: Iterable[int]
    ) -> dict[int, list[tuple[int, int]]]:
        """Apply ``changes``; return, per subscribed depth, the levels a client must be sent.

        A client that holds the top ``depth`` levels, applies the returned levels (qty 0
        removes) and truncates to ``depth`` holds the new top ``depth`` levels.
        """
        depths = tuple(depths)
        latest = dict(changes)  # a price changed twice in one diff: its last value counts
        before = {d: self.edge(d) for d in depths}
        old = {p: self.qty.get(p) for p in latest}
        for p, q in latest.items():
            self.set(p, q)
        out: dict[int, list[tuple[int, int]]] = {}
        for d in depths:
            edge_before, edge_after = before[d], self.edge(d)
            sent: list[tuple[int, int]] = []
            for p, q in latest.items():
                was = old[p]
                in_before = was is not None and self.inside(p, edge_before)
                in_after = q != 0 and self.inside(p, edge_after)
                if in_after and (not in_before or was != q):
                    sent.append((p, q))
                elif in_before and q == 0:
                    sent.append((p, 0))
            if edge_before is not None:  # unchanged levels sliding into scope from below
                prices = self.prices
                if self.bid:
                    lo = 0 if edge_after is None else bisect.bisect_left(prices, edge_after)
                    hi = bisect.bisect_left(prices, edge_before)
                else:
                    lo = bisect.bisect_right(prices, edge_before)
                    hi = (
                        len(prices)
                        if edge_after is None
                        else bisect.bisect_right(prices, edge_after)
                    )
                sent += [(p, self.qty[p]) for p in prices[lo:hi] if p not in latest]
            out[d] = sent
        return out


class _Book:
    def __init__(self, pair: KrakenPair, timeline: _Timeline) -> None:
        self.pair = pair
        self.bids = _Side(timeline.bids, bid=True)
        self.asks = _Side(timeline.asks, bid=False)

    def checksum(self) -> int:
        parts = [f"{p}{q}" for p, q in self.asks.top(_CHECKSUM_LEVELS)]
        parts += [f"{p}{q}" for p, q in self.bids.top(_CHECKSUM_LEVELS)]
        return zlib.crc32("".join(parts).encode())

    def levels_json(self, levels: Iterable[tuple[int, int]]) -> str:
        pp, qp = self.pair.price_precision, self.pair.qty_precision
        return (
            "["
            + ",".join(f'{{"price":{_text(p, pp)},"qty":{_text(q, qp)}}}' for p, q in levels)
            + "]"
        )

    def message(
        self,
        kind: str,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
        checksum: int,
        timestamp: str | None,
    ) -> bytes:
        ts = f',"timestamp":"{timestamp}"' if timestamp is not None else ""
        return (
            f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{self.pair.symbol}",'
            f'"bids":{self.levels_json(bids)},"asks":{self.levels_json(asks)},'
            f'"checksum":{checksum}{ts}}}]}}'
        ).encode()


# -- connections ---------------------------------------------------------------------------------


class _Client(Connection):
    def __init__(self, ws: ServerConnection, max_frames: int) -> None:
        super().__init__(ws, max_frames)
        self.book: dict[str, int] = {}  # symbol → subscribed depth
        self.trade: set[str] = set()
        self.instrument = False
        self.requests: deque[float] = deque()

    def forget(self) -> None:
        self.book.clear()
        self.trade.clear()

    @property
    def subscribed(self) -> bool:
        return bool(self.book or self.trade or self.instrument)


class EmbeddedKraken(LoopbackVenue[_Client]):
    """A Kraken v2 venue on 127.0.0.1 replaying re-encoded captures, with ground truth.

    Args:
        pairs: symbols to serve (keys of :data:`PAIRS`).
        speed: replay speed on the capture's receive-time axis; ``math.inf`` (or 0) = as fast
            as the clients read.
        host: listen address (IPv4 loopback).
        port: listen port; 0 picks a free one.
        heartbeat_interval_s: seconds of silence after which a subscribed connection gets a
            heartbeat.
        max_requests_per_s: client requests per second per connection before ``Exceeded msg
            rate`` errors.
        max_queue_frames: per-connection send-queue bound; a client that falls further behind
            is dropped as a slow consumer.
        duration_s: serve only the first ``duration_s`` seconds of each capture (receive-time
            axis); ``None`` = all of it.
        clock: wall clock in ns (event-time origin, ``timestamp``, ``time_in``, ``time_out``).
        pace_clock: the clock the replay and the request-rate window run on (its ``monotonic``
            and ``sleep``); default the system's. A test on a fake clock passes it here and as
            ``clock``. Heartbeats stay on the wall clock.
    """

    def __init__(
        self,
        pairs: Sequence[str] = DEFAULT_PAIRS,
        *,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval_s: float = 1.0,
        max_requests_per_s: int = 50,
        max_queue_frames: int = 100_000,
        duration_s: float | None = None,
        clock: Callable[[], int] = time.time_ns,
        pace_clock: ShellClock | None = None,
    ) -> None:
        unknown = [s for s in pairs if s not in PAIRS]
        if unknown:
            raise ValueError(f"unknown pairs {unknown}; known: {sorted(PAIRS)}")
        if host != "127.0.0.1":
            raise ValueError("the embedded venue listens on 127.0.0.1 only")
        self._pairs = {s: PAIRS[s] for s in pairs}
        self._speed = speed
        self._fast = speed == 0 or math.isinf(speed)
        super().__init__(host, port, "kraken")
        self._heartbeat_s = heartbeat_interval_s
        self._max_requests = max_requests_per_s
        self._max_frames = max_queue_frames
        self._duration_ns = None if duration_s is None else int(duration_s * 1e9)
        self._clock = clock
        self._pace: ShellClock = pace_clock or SystemClock()

        self._timelines: dict[str, _Timeline] = {}
        self._books: dict[str, _Book] = {}
        self._trades: dict[str, deque[bytes]] = {}  # recent trades, for trade snapshots
        self._trade_ids: dict[str, int] = {}
        self._taker: dict[str, dict[str, Decimal]] = {}
        self._corrupt: dict[str, int] = {}
        self._start_ms = 0
        self._drained = asyncio.Event()
        self._connection_id = 0x5EED_0000_0000_0000

        self._n_updates = 0
        self._n_trades = 0
        self._n_requests = 0
        self._n_corrupted = 0
        #: ``(pacing time, frame)`` of the latest client frames received.
        self.request_log: deque[tuple[float, str | bytes]] = deque(maxlen=_REQUEST_LOG)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the captures, bind the port, start the replay and heartbeat tasks."""
        if self._timelines:
            raise RuntimeError("an EmbeddedKraken can be started only once")
        for symbol, pair in self._pairs.items():
            timeline = await asyncio.to_thread(_timeline, pair)
            self._timelines[symbol] = timeline
            self._books[symbol] = _Book(pair, timeline)
            self._trades[symbol] = deque(maxlen=_TRADE_SNAPSHOT)
            self._trade_ids[symbol] = 0
            self._taker[symbol] = {"buy": Decimal(0), "sell": Decimal(0)}
            self._corrupt[symbol] = 0
        self._start_ms = self._clock() // 1_000_000
        await self._bind(
            self._handle,
            process_request=self._process_request,
            ping_interval=None,
            close_timeout=1.0,
            max_size=2**20,
        )
        self._tasks = [
            asyncio.create_task(self._replay(), name="embedded-kraken-replay"),
            asyncio.create_task(self._heartbeats(), name="embedded-kraken-heartbeat"),
        ]
        logger.info("embedded kraken serving %s at %s", list(self._pairs), self.ws_base)

    # -- addresses and ground truth ----------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        """The served pairs."""
        return tuple(self._pairs)

    def pair(self, symbol: str) -> KrakenPair:
        """The served pair ``symbol`` (KeyError if not served)."""
        return self._pairs[symbol]

    def truth_book(self, symbol: str, depth: int = 1000) -> tuple[dict[str, str], dict[str, str]]:
        """The top ``depth`` levels a subscriber at that depth holds, as the wire's text.

        Returns:
            ``(bids, asks)``, each ``{price text: quantity text}``.
        """
        book = self._books[symbol]
        pp, qp = book.pair.price_precision, book.pair.qty_precision
        return (
            {_text(p, pp): _text(q, qp) for p, q in book.bids.top(depth)},
            {_text(p, pp): _text(q, qp) for p, q in book.asks.top(depth)},
        )

    def truth_checksum(self, symbol: str) -> int:
        """The checksum the venue would send for ``symbol`` now."""
        return self._books[symbol].checksum()

    def full_depth(self, symbol: str) -> tuple[int, int]:
        """Levels per side of the venue's whole book (beyond any subscribed depth)."""
        book = self._books[symbol]
        return len(book.bids.prices), len(book.asks.prices)

    def taker_volume(self, symbol: str) -> dict[str, Decimal]:
        """Base volume of the trades released so far by taker side (``buy``/``sell``)."""
        return dict(self._taker[symbol])

    @property
    def stats(self) -> KrakenVenueStats:
        """A snapshot of the counters."""
        return KrakenVenueStats(
            connections_accepted=self._n_accepted,
            connections_open=len(self._clients),
            frames_sent=self._n_frames,
            book_updates=self._n_updates,
            trades=self._n_trades,
            requests=self._n_requests,
            checksums_corrupted=self._n_corrupted,
            slow_clients_dropped=self._n_slow,
        )

    async def wait_drained(self) -> None:
        """Wait until the whole capture was released and every send queue is empty."""
        await self._drained.wait()
        await self._flushed()

    # -- fault injection ---------------------------------------------------------------------

    def corrupt_next_checksum(self, symbol: str) -> None:
        """Send the next book message(s) of ``symbol`` (one release) with a wrong checksum."""
        self._corrupt[symbol] += 1

    # -- replay --------------------------------------------------------------------------------

    def _active(self) -> bool:
        return any(c.book or c.trade for c in self._clients if not c.closing)

    async def _replay(self) -> None:
        merged: list[tuple[int, int, str, _Diff | _Fill]] = []
        for symbol, timeline in self._timelines.items():
            merged += [
                (step.recv_ns - timeline.recv_first_ns, i, symbol, step)
                for i, step in enumerate(timeline.steps)
                if self._duration_ns is None
                or step.recv_ns - timeline.recv_first_ns <= self._duration_ns
            ]
        merged.sort(key=lambda item: (item[0], item[1]))
        pace = self._pace
        origin: float | None = None
        for offset_ns, _, symbol, step in merged:
            held = await self._hold()
            if origin is not None:
                origin += held
            if self._fast:
                if self._release(symbol, step):
                    await asyncio.sleep(0)
                    while any(len(c.frames) > _HIGH_WATER for c in self._clients):
                        await asyncio.sleep(0.001)
                continue
            offset_s = offset_ns / 1e9 / self._speed
            if origin is None:
                origin = pace.monotonic() - offset_s
            while (delay := origin + offset_s - pace.monotonic()) > 0:
                await pace.sleep(delay)
                origin += await self._hold()
            self._release(symbol, step)
        self._drained.set()
        logger.info("embedded kraken: capture fully released")

    def _release(self, symbol: str, step: _Diff | _Fill) -> bool:
        if isinstance(step, _Diff):
            return self._release_diff(symbol, step)
        return self._release_trade(symbol, step)

    def _release_diff(self, symbol: str, diff: _Diff) -> bool:
        book = self._books[symbol]
        self._n_updates += 1
        subscribers = [c for c in self._clients if symbol in c.book and not c.closing]
        depths = {c.book[symbol] for c in subscribers}
        bid_out = book.bids.change(diff.bids, depths)
        ask_out = book.asks.change(diff.asks, depths)
        if not subscribers:
            return False
        checksum = book.checksum()
        if self._corrupt[symbol] > 0 and any(bid_out[d] or ask_out[d] for d in depths):
            self._corrupt[symbol] -= 1
            self._n_corrupted += 1
            checksum = (checksum + 1) & 0xFFFFFFFF
            logger.info("embedded kraken: corrupting the checksum of a %s update", symbol)
        stamp = _rfc3339(diff.E - self._timelines[symbol].first_event_ms + self._start_ms)
        frames = {
            d: book.message("update", bid_out[d], ask_out[d], checksum, stamp)
            for d in depths
            if bid_out[d] or ask_out[d]
        }
        sent = False
        for client in subscribers:
            frame = frames.get(client.book[symbol])
            if frame is not None:
                self._push(client, frame)
                sent = True
        return sent

    def _release_trade(self, symbol: str, fill: _Fill) -> bool:
        pair = self._pairs[symbol]
        self._n_trades += 1
        self._taker[symbol][fill.side] += Decimal(fill.qty_text)
        self._trade_ids[symbol] += 1
        stamp = _rfc3339(fill.T - self._timelines[symbol].first_event_ms + self._start_ms)
        entry = (
            f'{{"symbol":"{symbol}","side":"{fill.side}",'
            f'"price":{_text(fill.price, pair.price_precision)},'
            f'"qty":{_text(fill.qty, pair.qty_precision)},"ord_type":"market",'
            f'"trade_id":{self._trade_ids[symbol]},"timestamp":"{stamp}"}}'
        ).encode()
        self._trades[symbol].append(entry)
        frame = b'{"channel":"trade","type":"update","data":[' + entry + b"]}"
        sent = False
        for client in list(self._clients):
            if symbol in client.trade and not client.closing:
                self._push(client, frame)
                sent = True
        return sent

    def _pace_time(self) -> float:
        return self._pace.monotonic()  # the pacing clock (a test's fake clock, or the system's)

    async def _heartbeats(self) -> None:
        frame = b'{"channel":"heartbeat"}'
        while True:
            await asyncio.sleep(self._heartbeat_s / 4)
            now = time.monotonic()
            for client in list(self._clients):
                if client.subscribed and now - client.last_push >= self._heartbeat_s:
                    self._push(client, frame)

    # -- connections ---------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.partition("?")[0] not in ("/v2", "/v2/"):
            return connection.respond(404, f"Not found: {request.path}\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        client = _Client(ws, self._max_frames)
        self._connection_id += 1
        status = {
            "channel": "status",
            "data": [
                {
                    "api_version": "v2",
                    "connection_id": self._connection_id,
                    "system": "online",
                    "version": "2.0.10",
                }
            ],
            "type": "update",
        }
        self._push(client, orjson.dumps(status))
        await self._serve(client, self._on_frame)

    def _on_frame(self, client: _Client, message: str | bytes) -> None:
        self._n_requests += 1
        self.request_log.append((self._pace.monotonic(), message))
        self._on_request(client, message)

    # -- requests ------------------------------------------------------------------------------

    def _reply(self, client: _Client, body: dict[str, Any], time_in: str) -> None:
        body["time_in"] = time_in
        body["time_out"] = _rfc3339_ns(self._clock())
        self._push(client, orjson.dumps(body))

    def _error(
        self,
        client: _Client,
        method: Any,
        error: str,
        time_in: str,
        req_id: Any = None,
        symbol: str | None = None,
    ) -> None:
        body: dict[str, Any] = {"error": error, "method": method, "success": False}
        if symbol is not None:
            body["symbol"] = symbol
        if req_id is not None:
            body["req_id"] = req_id
        self._reply(client, body, time_in)

    def _rate_exceeded(self, client: _Client) -> bool:
        now = self._pace.monotonic()
        client.requests.append(now)
        while client.requests and client.requests[0] <= now - 1.0:
            client.requests.popleft()
        return len(client.requests) > self._max_requests

    def _on_request(self, client: _Client, message: str | bytes) -> None:
        time_in = _rfc3339_ns(self._clock())
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            self._error(client, "error", "Malformed request", time_in)
            return
        if not isinstance(request, dict):
            self._error(client, "error", "Malformed request", time_in)
            return
        method = request.get("method")
        req_id = request.get("req_id")
        if req_id is not None and (type(req_id) is not int or req_id < 0):
            self._error(client, method, "Invalid req_id", time_in)
            return
        if self._rate_exceeded(client):
            self._error(client, method, "Exceeded msg rate", time_in, req_id)
            return
        if method == "ping":
            body: dict[str, Any] = {"method": "pong"}
            if req_id is not None:
                body["req_id"] = req_id
            self._reply(client, body, time_in)
            return
        if method not in ("subscribe", "unsubscribe"):
            self._error(client, method, "Method not supported", time_in, req_id)
            return
        params = request.get("params")
        if not isinstance(params, dict):
            self._error(client, method, "Missing params", time_in, req_id)
            return
        channel = params.get("channel")
        if channel == "instrument":
            self._instrument(client, method, params, req_id, time_in)
        elif channel in ("book", "trade"):
            self._market(client, method, channel, params, req_id, time_in)
        else:
            self._error(client, method, "Channel not supported", time_in, req_id)

    def _ack(
        self,
        client: _Client,
        method: str,
        result: dict[str, Any],
        req_id: Any,
        time_in: str,
    ) -> None:
        body: dict[str, Any] = {"method": method, "result": result, "success": True}
        if req_id is not None:
            body["req_id"] = req_id
        self._reply(client, body, time_in)

    def _instrument(
        self, client: _Client, method: str, params: dict[str, Any], req_id: Any, time_in: str
    ) -> None:
        snapshot = params.get("snapshot", True)
        if method == "unsubscribe":
            if not client.instrument:
                self._error(client, method, "Subscription Not Found", time_in, req_id)
                return
            client.instrument = False
            self._ack(client, method, {"channel": "instrument"}, req_id, time_in)
            return
        if client.instrument:
            self._error(client, method, "Already subscribed", time_in, req_id)
            return
        client.instrument = True
        self._ack(
            client, method, {"channel": "instrument", "snapshot": bool(snapshot)}, req_id, time_in
        )
        if snapshot:
            self._push(client, self._instrument_snapshot())

    def _instrument_snapshot(self) -> bytes:
        assets: dict[str, dict[str, Any]] = {}
        pairs = []
        for pair in self._pairs.values():
            for asset in (pair.base, pair.quote):
                assets[asset] = {
                    "id": asset,
                    "status": "enabled",
                    "precision": 10 if asset == pair.base else 8,
                    "precision_display": 5,
                    "borrowable": True,
                    "collateral_value": 1.0,
                    "margin_rate": 0.02,
                }
            pairs.append(
                {
                    "symbol": pair.symbol,
                    "base": pair.base,
                    "quote": pair.quote,
                    "status": "online",
                    "qty_precision": pair.qty_precision,
                    "qty_increment": 10.0**-pair.qty_precision,
                    "price_precision": pair.price_precision,
                    "cost_precision": 5,
                    "marginable": True,
                    "has_index": True,
                    "cost_min": 0.5,
                    "tick_size": 10.0**-pair.price_precision,
                    "price_increment": 10.0**-pair.price_precision,
                    "qty_min": 0.0001,
                }
            )
        body = {
            "channel": "instrument",
            "type": "snapshot",
            "data": {"assets": list(assets.values()), "pairs": pairs},
        }
        return orjson.dumps(body)

    def _market(
        self,
        client: _Client,
        method: str,
        channel: str,
        params: dict[str, Any],
        req_id: Any,
        time_in: str,
    ) -> None:
        symbols = params.get("symbol")
        if not isinstance(symbols, list) or not symbols:
            self._error(client, method, "Missing symbol", time_in, req_id)
            return
        depth = params.get("depth", 10)
        if channel == "book" and depth not in _DEPTHS:
            self._error(client, method, f"Invalid depth {depth}", time_in, req_id)
            return
        snapshot = params.get("snapshot", True)
        if not isinstance(snapshot, bool):
            self._error(client, method, "Invalid snapshot", time_in, req_id)
            return
        for symbol in symbols:
            if not isinstance(symbol, str) or symbol not in self._pairs:
                self._error(
                    client, method, "Currency pair not supported", time_in, req_id, str(symbol)
                )
                continue
            if channel == "book":
                self._book_request(client, method, symbol, depth, snapshot, req_id, time_in)
            else:
                self._trade_request(client, method, symbol, snapshot, req_id, time_in)
        self._refresh_gate()

    def _book_request(
        self,
        client: _Client,
        method: str,
        symbol: str,
        depth: int,
        snapshot: bool,
        req_id: Any,
        time_in: str,
    ) -> None:
        if method == "unsubscribe":
            if client.book.get(symbol) != depth:
                self._error(client, method, "Subscription Not Found", time_in, req_id, symbol)
                return
            del client.book[symbol]
            result = {"channel": "book", "depth": depth, "symbol": symbol}
            self._ack(client, method, result, req_id, time_in)
            return
        if symbol in client.book:
            self._error(client, method, "Already subscribed", time_in, req_id, symbol)
            return
        client.book[symbol] = depth
        result = {"channel": "book", "depth": depth, "snapshot": snapshot, "symbol": symbol}
        self._ack(client, method, result, req_id, time_in)
        if snapshot:
            book = self._books[symbol]
            checksum = book.checksum()
            if self._corrupt[symbol] > 0:
                self._corrupt[symbol] -= 1
                self._n_corrupted += 1
                checksum = (checksum + 1) & 0xFFFFFFFF
            self._push(
                client,
                book.message(
                    "snapshot", book.bids.top(depth), book.asks.top(depth), checksum, None
                ),
            )

    def _trade_request(
        self,
        client: _Client,
        method: str,
        symbol: str,
        snapshot: bool,
        req_id: Any,
        time_in: str,
    ) -> None:
        if method == "unsubscribe":
            if symbol not in client.trade:
                self._error(client, method, "Subscription Not Found", time_in, req_id, symbol)
                return
            client.trade.discard(symbol)
            self._ack(client, method, {"channel": "trade", "symbol": symbol}, req_id, time_in)
            return
        if symbol in client.trade:
            self._error(client, method, "Already subscribed", time_in, req_id, symbol)
            return
        client.trade.add(symbol)
        result = {"channel": "trade", "snapshot": snapshot, "symbol": symbol}
        self._ack(client, method, result, req_id, time_in)
        if snapshot:
            recent = list(self._trades[symbol])
            self._push(
                client,
                b'{"channel":"trade","type":"snapshot","data":[' + b",".join(recent) + b"]}",
            )
