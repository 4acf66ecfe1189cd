"""An embedded Bybit v5 public venue on loopback, re-encoding a real Binance capture.

:class:`EmbeddedBybit` is one asyncio websocket server on ``127.0.0.1`` speaking Bybit's v5 public
stream protocol (docs/venues/bybit.md; :mod:`mmradar.venues.bybit` documents the same
rules from the client side). Its book dynamics are the packaged hftbacktest Binance capture
(``mmradar/data/README.md``) re-encoded as Bybit messages: category ``linear`` replays the USD-M
BTCUSDT capture (tick 0.10, lot 0.001 — Bybit's own BTCUSDT perpetual steps), ``spot`` the spot
capture (prices re-written with 2 decimals, quantities with 6). Everything is deterministic: the
initial update id and the cross sequence come from ``seed``.

Reproduced:

* ``ws://host:port/v5/public/{category}``; any other path is refused with HTTP 404.
* ``{"req_id","op":"subscribe"|"unsubscribe","args":[...]}`` answered with Bybit's ack shape
  (``ret_msg`` ``""`` on linear, ``"subscribe"`` on spot); a topic already subscribed, an unknown
  topic, more than 10 args in one spot request, or a frame that is not a JSON request are
  answered ``{"success":false,"ret_msg":"error:…",…}`` (the texts follow the "already
  subscribed" form Bybit uses; the others are modelled on it). ``{"op":"ping"}`` is answered
  ``{"success":true,"ret_msg":"pong",…,"op":"ping"}``.
* ``orderbook.1000.{symbol}``: a ``snapshot`` of the top 1000 levels per side right after the
  ack, then one ``delta`` per push window (200 ms of capture time) in which the top-1000 window
  changed. The window is exact: a level pushed out of the top 1000 is deleted (size ``"0"``) and
  a level pulled into it is sent, as the venue's own depth-limited streams do. ``u`` steps by one
  per message per topic; ``seq`` increases by a seeded random step; ``ts``/``cts`` are event
  times rebased onto the venue clock at :meth:`EmbeddedBybit.start`.
* ``publicTrade.{symbol}``: the capture's trades, consecutive fills with the same trade time in
  one message, ``S`` = taker side (Binance ``m=true`` ⇒ ``"Sell"``), ``T``, ``s``, ``v``, ``p``,
  ``L`` (linear only), ``i``, ``BT``, ``RPI``, ``seq``.

Fault injection: :meth:`EmbeddedBybit.skip_next_delta` (an update id is consumed but the delta is
sent nowhere: a ``u`` gap), :meth:`EmbeddedBybit.restart_service` (the next push is a ``snapshot``
with ``u == 1`` and the chain restarts from there), ``periodic_snapshot_every`` (after every N
deltas the same state is pushed again as a ``snapshot`` with the same ``u``),
:meth:`EmbeddedBybit.drop_connections` (TCP abort), :meth:`EmbeddedBybit.send_raw`,
:meth:`EmbeddedBybit.pause` / :meth:`EmbeddedBybit.resume`.

Not reproduced: TLS; the 10-minute idle cut-off; the per-domain connection limits; other
topics (tickers, klines, ``orderbook.full``) and depths other than 1000 (refused as unknown);
REST; looping (after the capture the venue stays connected and idle).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import ipaddress
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from mmradar.embedded.capture import DepthDiff, Market, Trade, capture_path, load_capture
from mmradar.embedded.loopback import Connection, LoopbackVenue
from mmradar.embedded.plan import build_plan

__all__ = ["BybitStats", "EmbeddedBybit", "WindowBook"]

logger = logging.getLogger(__name__)

Category = Literal["linear", "spot"]
Level = tuple[str, str]

DEPTH = 1000
_MARKET: dict[str, Market] = {"linear": "usdm", "spot": "spot"}
_DECIMALS: dict[str, tuple[int, int]] = {"linear": (2, 3), "spot": (2, 6)}  # price, quantity
_SPOT_ARGS_PER_REQUEST = 10
_HIGH_WATER = 1000
_LOW_WATER = 250


def _fmt(text: str, decimals: int) -> str:
    """Re-write decimal ``text`` with exactly ``decimals`` decimals (only zeros may be cut)."""
    whole, dot, frac = text.partition(".")
    if len(frac) == decimals and dot:
        return text
    kept, cut = frac[:decimals], frac[decimals:]
    if cut.strip("0"):
        raise ValueError(f"{text} does not fit {decimals} decimals")
    return f"{whole}.{kept.ljust(decimals, '0')}"


# -- the timeline ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Push:
    """One depth push: the change of the top-1000 window over one push window of the capture.

    Built from the capture's diffs merged over the window (last value per price) and applied to
    the full book by :class:`WindowBook`; empty changes are not pushes (Bybit sends nothing).
    """

    recv_ns: int
    E: int  # event time of the last merged diff, ms (capture time base)
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class _Trades:
    """Consecutive capture fills with the same trade time: one ``publicTrade`` message."""

    recv_ns: int
    E: int
    fills: tuple[Trade, ...]


@dataclass(frozen=True, slots=True)
class _Timeline:
    symbol: str
    window_bids: tuple[Level, ...]  # the top-1000 window before the first push, best first
    window_asks: tuple[Level, ...]
    steps: tuple[_Push | _Trades, ...]
    first_event_ms: int


@functools.lru_cache(maxsize=4)
def _timeline(category: str, push_ms: int) -> _Timeline:
    market = _MARKET[category]
    pd, qd = _DECIMALS[category]
    plan = build_plan(load_capture(capture_path(market)), market)

    def levels(raw: Iterable[Level]) -> tuple[Level, ...]:
        return tuple((_fmt(p, pd), _fmt(q, qd)) for p, q in raw)

    steps: list[_Push | _Trades] = []
    window_end: int | None = None
    bids: dict[str, str] = {}
    asks: dict[str, str] = {}
    last_E = 0
    fills: list[Trade] = []

    def flush_depth(at: int) -> None:
        nonlocal window_end
        if window_end is not None:
            steps.append(_Push(at, last_E, tuple(bids.items()), tuple(asks.items())))
            bids.clear()
            asks.clear()
            window_end = None

    def flush_trades() -> None:
        if fills:
            steps.append(_Trades(fills[-1].recv_ns, fills[-1].E, tuple(fills)))
            fills.clear()

    for step in plan.steps:
        if not isinstance(step, DepthDiff | Trade):
            continue
        if window_end is not None and step.recv_ns >= window_end:
            flush_trades()
            flush_depth(window_end)
        if isinstance(step, DepthDiff):
            if window_end is None:
                window_end = step.recv_ns + push_ms * 1_000_000
            bids.update(levels(step.b))
            asks.update(levels(step.a))
            last_E = step.E
        else:
            if fills and fills[-1].T != step.T:
                flush_trades()
            fills.append(
                Trade(
                    step.recv_ns,
                    step.stream,
                    step.E,
                    step.T,
                    step.s,
                    step.t,
                    _fmt(step.p, pd),
                    _fmt(step.q, qd),
                    step.m,
                    step.M,
                    step.X,
                )
            )
    flush_trades()
    if window_end is not None:
        flush_depth(window_end)
    snap = plan.snapshot
    book = WindowBook(levels(snap.bids), levels(snap.asks), DEPTH)
    window_bids, window_asks = book.window()
    served: list[_Push | _Trades] = []
    for item in steps:
        if isinstance(item, _Push):
            bids_change, asks_change = book.apply(item.bids, item.asks)
            if not bids_change and not asks_change:
                continue
            item = _Push(item.recv_ns, item.E, tuple(bids_change), tuple(asks_change))
        served.append(item)
    return _Timeline(
        plan.symbol, tuple(window_bids), tuple(window_asks), tuple(served), plan.first_event_ms
    )


# -- the ground truth -----------------------------------------------------------------------------


class _Side:
    """One side of the full book: price text → quantity text, plus sorted keys (best last)."""

    def __init__(self, sign: float) -> None:
        self.sign = sign  # bids +1 (ascending prices), asks -1 (ascending negated prices)
        self.qty: dict[float, tuple[str, str]] = {}
        self.keys: list[float] = []

    def boundary(self, depth: int) -> float:
        return self.keys[-depth] if len(self.keys) >= depth else -math.inf

    def set(self, price: str, qty: str) -> None:
        key = self.sign * float(price)
        if not qty.strip("0."):  # decimal text of zero
            if self.qty.pop(key, None) is not None:
                del self.keys[bisect.bisect_left(self.keys, key)]
        else:
            if key not in self.qty:
                bisect.insort(self.keys, key)
            self.qty[key] = (price, qty)

    def top(self, depth: int) -> list[Level]:
        return [self.qty[k] for k in reversed(self.keys[-depth:])]

    def apply(self, levels: Iterable[Level], depth: int) -> list[Level]:
        """Apply absolute levels; return the change of the top-``depth`` window, best first."""
        old_bound = self.boundary(depth)
        before: dict[float, tuple[str, str] | None] = {}
        for price, qty in levels:
            key = self.sign * float(price)
            if key not in before:
                before[key] = self.qty.get(key)
            self.set(price, qty)
        new_bound = self.boundary(depth)
        lo, hi = min(old_bound, new_bound), max(old_bound, new_bound)
        candidates = set(before)
        if lo != hi:
            i = bisect.bisect_left(self.keys, lo)
            j = bisect.bisect_right(self.keys, hi)
            candidates.update(self.keys[i:j])
        out: list[tuple[float, Level]] = []
        for key in candidates:
            old = before[key] if key in before else self.qty[key]
            new = self.qty.get(key)
            in_old = old is not None and key >= old_bound
            in_new = new is not None and key >= new_bound
            if in_new and new is not None and (not in_old or old != new):
                out.append((key, new))
            elif in_old and not in_new and old is not None:
                out.append((key, (old[0], "0")))
        out.sort(reverse=True)
        return [level for _, level in out]


class WindowBook:
    """The venue's full book and its top-``depth`` window (what ``orderbook.{depth}`` shows).

    Plain dicts and sorted float keys, independent of the service's book.
    """

    def __init__(self, bids: Iterable[Level], asks: Iterable[Level], depth: int = DEPTH) -> None:
        self.depth = depth
        self.bids = _Side(1.0)
        self.asks = _Side(-1.0)
        for p, q in bids:
            self.bids.set(p, q)
        for p, q in asks:
            self.asks.set(p, q)

    def apply(
        self, bids: Iterable[Level], asks: Iterable[Level]
    ) -> tuple[list[Level], list[Level]]:
        """Apply a diff to the full book; return the window's change ``(bids, asks)``."""
        return self.bids.apply(bids, self.depth), self.asks.apply(asks, self.depth)

    def window(self) -> tuple[list[Level], list[Level]]:
        """The top-``depth`` levels per side, best first."""
        return self.bids.top(self.depth), self.asks.top(self.depth)


class _Window:
    """The venue's top-1000 window as plain dicts of text (the served ground truth)."""

    def __init__(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bids = dict(bids)
        self.asks = dict(asks)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if qty.strip("0."):
                    side[price] = qty
                else:
                    side.pop(price, None)

    def window(self) -> tuple[list[Level], list[Level]]:
        bids = sorted(self.bids.items(), key=lambda level: float(level[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda level: float(level[0]))
        return bids, asks


# -- the venue ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BybitStats:
    """Counters of an :class:`EmbeddedBybit` (cumulative since construction)."""

    connections_accepted: int
    connections_open: int
    frames_sent: int
    deltas_sent: int
    deltas_skipped: int
    snapshots_sent: int
    trades: int


class _Client(Connection):
    def __init__(self, ws: ServerConnection, conn_id: str) -> None:
        super().__init__(ws)  # unbounded: the real venue has no documented queue limit
        self.conn_id = conn_id
        self.topics: set[str] = set()

    def forget(self) -> None:
        self.topics.clear()


class EmbeddedBybit(LoopbackVenue[_Client]):
    """A Bybit v5 public venue (``linear`` or ``spot``) on 127.0.0.1 with a ground-truth book.

    The replay advances only while some connection is subscribed to one of the venue's topics
    and the venue is not :meth:`pause`\\ d, so a test may connect at leisure even at
    ``speed=math.inf`` (as fast as possible; the replay then waits for clients whose send queue
    passes a high-water mark). Every push is applied to the truth book whether it is sent or not.

    Args:
        category: ``"linear"`` (USD-M capture) or ``"spot"`` (spot capture).
        speed: replay speed on the capture's receive-time axis; ``math.inf`` or 0 = as fast as
            possible.
        host: an IPv4 loopback address.
        port: 0 picks a free port.
        seed: seeds the initial update id and the cross-sequence steps.
        push_ms: depth push window (Bybit: 200 ms for 1000 levels).
        periodic_snapshot_every: after every this many deltas, push the same state again as a
            ``snapshot`` with the same ``u`` (0: never).
        clock: wall clock in ns (event-time origin, ``ts`` of control frames).
    """

    def __init__(
        self,
        category: Category = "linear",
        *,
        speed: float = math.inf,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 7,
        push_ms: int = 200,
        periodic_snapshot_every: int = 0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if category not in _MARKET:
            raise ValueError(f"category must be 'linear' or 'spot', not {category!r}")
        if not ipaddress.ip_address(host).is_loopback or ":" in host:
            raise ValueError(f"host must be an IPv4 loopback address, not {host!r}")
        if not (speed == 0 or speed > 0):
            raise ValueError(f"speed must be >= 0, not {speed!r}")
        self.category: Category = category
        self._speed = speed
        self._fast = speed == 0 or math.isinf(speed)
        super().__init__(host, port, f"bybit {category}")
        self._rng = random.Random(seed)
        self._push_ms = push_ms
        self._periodic = periodic_snapshot_every
        self._clock = clock
        self._timeline: _Timeline | None = None
        self._drained = asyncio.Event()
        self._time_off = 0
        self._truth: _Window | None = None
        self._u = 0
        self._seq = 0
        self._ts = 0  # event time (ms) of the last push
        self._skip = 0
        self._restart = False
        self._since_snapshot = 0
        self._last_trade_price: Decimal | None = None
        self._taker = {"buy": Decimal(0), "sell": Decimal(0)}
        self._n_conn = 0
        self._n_deltas = 0
        self._n_skipped = 0
        self._n_snapshots = 0
        self._n_trades = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the timeline, bind the port and start the replay.

        Raises:
            RuntimeError: already started.
        """
        if self._timeline is not None:
            raise RuntimeError("an EmbeddedBybit can be started only once")
        self._timeline = tl = await asyncio.to_thread(_timeline, self.category, self._push_ms)
        self._truth = _Window(tl.window_bids, tl.window_asks)
        start_ms = self._clock() // 1_000_000
        self._time_off = start_ms - tl.first_event_ms
        self._ts = start_ms
        self._u = self._rng.randrange(10_000_000, 90_000_000)
        self._seq = self._rng.randrange(10**10, 9 * 10**10)
        await self._bind(
            self._handle,
            process_request=self._process_request,
            ping_interval=None,
            close_timeout=2.0,
        )
        self._tasks = [asyncio.create_task(self._replay(), name="embedded-bybit-replay")]
        logger.info("embedded bybit %s serving %s at %s", self.category, tl.symbol, self.ws_base)

    # -- addresses and ground truth ----------------------------------------------------------

    @property
    def symbol(self) -> str:
        """The served symbol, e.g. ``"BTCUSDT"``."""
        return self._require_timeline().symbol

    @property
    def depth_topic(self) -> str:
        return f"orderbook.{DEPTH}.{self.symbol}"

    @property
    def trade_topic(self) -> str:
        return f"publicTrade.{self.symbol}"

    @property
    def stats(self) -> BybitStats:
        return BybitStats(
            connections_accepted=self._n_conn,
            connections_open=len(self._clients),
            frames_sent=self._n_frames,
            deltas_sent=self._n_deltas,
            deltas_skipped=self._n_skipped,
            snapshots_sent=self._n_snapshots,
            trades=self._n_trades,
        )

    @property
    def last_update_id(self) -> int:
        """``u`` of the last push (sent or skipped)."""
        return self._u

    def truth_book(self, symbol: str) -> tuple[dict[str, str], dict[str, str]]:
        """What a correct ``orderbook.1000`` client holds now: the top-1000 window per side.

        Returns:
            ``(bids, asks)``, each ``{price text: quantity text}``.
        """
        bids, asks = self._require_truth(symbol).window()
        return dict(bids), dict(asks)

    def taker_volume(self, symbol: str) -> dict[str, Decimal]:
        """Base volume of the trades released so far by taker side (``S``)."""
        self._require_truth(symbol)
        return dict(self._taker)

    async def wait_drained(self) -> None:
        """Wait until the whole capture has been released and every send queue is empty."""
        await self._drained.wait()
        await self._flushed()

    # -- fault injection ---------------------------------------------------------------------

    def skip_next_delta(self, symbol: str) -> None:
        """Consume the next delta's update id and apply it to the truth, but send it nowhere."""
        self._require_truth(symbol)
        self._skip += 1

    def restart_service(self, symbol: str) -> None:
        """Make the next push a ``snapshot`` with ``u == 1`` (a Bybit service restart)."""
        self._require_truth(symbol)
        self._restart = True

    # -- websocket ---------------------------------------------------------------------------

    def _require_timeline(self) -> _Timeline:
        if self._timeline is None:
            raise RuntimeError("venue not started")
        return self._timeline

    def _require_truth(self, symbol: str) -> _Window:
        if symbol.upper() != self.symbol or self._truth is None:
            raise KeyError(f"unknown symbol {symbol!r}; this venue serves {self.symbol}")
        return self._truth

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.partition("?")[0] == f"/v5/public/{self.category}":
            return None
        body = b"404 page not found"
        headers = Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return Response(404, "Not Found", headers, body)

    def _active(self) -> bool:
        return any(c.topics for c in self._clients)

    async def _handle(self, ws: ServerConnection) -> None:
        self._n_conn += 1
        await self._serve(_Client(ws, f"conn-{self._n_conn:08d}"), self._on_request)

    def _reply(self, client: _Client, op: str, req_id: Any, ok: bool, ret_msg: str) -> None:
        body: dict[str, Any] = {"success": ok, "ret_msg": ret_msg, "conn_id": client.conn_id}
        if self.category == "linear" or req_id is not None:
            body["req_id"] = "" if req_id is None else req_id
        body["op"] = op
        self._push(client, orjson.dumps(body))

    def _on_request(self, client: _Client, message: str | bytes) -> None:
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            self._reply(client, "", None, False, "error:request not json or without op")
            return
        op, req_id = request["op"], request.get("req_id")
        if op == "ping":
            self._reply(client, "ping", req_id, True, "pong")
            return
        if op not in ("subscribe", "unsubscribe"):
            self._reply(client, op, req_id, False, f"error:unknown op {op}")
            return
        args = request.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            self._reply(client, op, req_id, False, "error:args must be a list of topics")
            return
        if self.category == "spot" and len(args) > _SPOT_ARGS_PER_REQUEST:
            self._reply(client, op, req_id, False, f"error:args size >{_SPOT_ARGS_PER_REQUEST}")
            return
        served = (self.depth_topic, self.trade_topic)
        if op == "unsubscribe":
            client.topics.difference_update(args)
            self._refresh_gate()
            self._reply(client, op, req_id, True, "")
            return
        for topic in args:
            if topic not in served:
                self._reply(client, op, req_id, False, f"error:handler not found,topic:{topic}")
                return
            if topic in client.topics:
                self._reply(client, op, req_id, False, f"error:already subscribed,topic:{topic}")
                return
        self._reply(client, op, req_id, True, "subscribe" if self.category == "spot" else "")
        for topic in args:
            client.topics.add(topic)
            if topic == self.depth_topic:
                self._push(client, self._snapshot_frame())
        self._refresh_gate()

    # -- messages ----------------------------------------------------------------------------

    def _depth_frame(self, kind: str, bids: list[Level], asks: list[Level]) -> bytes:
        return orjson.dumps(
            {
                "topic": self.depth_topic,
                "type": kind,
                "ts": self._ts,
                "data": {
                    "s": self.symbol,
                    "b": [list(level) for level in bids],
                    "a": [list(level) for level in asks],
                    "u": self._u,
                    "seq": self._seq,
                },
                "cts": self._ts - 2,
            }
        )

    def _snapshot_frame(self) -> bytes:
        assert self._truth is not None
        self._n_snapshots += 1
        return self._depth_frame("snapshot", *self._truth.window())

    def _publish(self, topic: str, frame: bytes) -> None:
        for client in list(self._clients):
            if topic in client.topics:
                self._push(client, frame)

    def _release_push(self, push: _Push) -> None:
        assert self._truth is not None
        bids, asks = list(push.bids), list(push.asks)
        self._truth.apply(bids, asks)
        self._ts = push.E + self._time_off
        self._seq += self._rng.randint(1, 40)
        if self._restart:
            self._restart = False
            self._u = 1
            self._since_snapshot = 0
            self._publish(self.depth_topic, self._snapshot_frame())
            return
        self._u += 1
        if self._skip:
            self._skip -= 1
            self._n_skipped += 1
            logger.info("embedded bybit: skipped delta u=%d", self._u)
            return
        self._n_deltas += 1
        self._publish(self.depth_topic, self._depth_frame("delta", bids, asks))
        self._since_snapshot += 1
        if self._periodic and self._since_snapshot >= self._periodic:
            self._since_snapshot = 0
            self._publish(self.depth_topic, self._snapshot_frame())

    def _release_trades(self, trades: _Trades) -> None:
        data = []
        for fill in trades.fills:
            price = Decimal(fill.p)
            taker = "Sell" if fill.m else "Buy"
            self._taker["sell" if fill.m else "buy"] += Decimal(fill.q)
            self._n_trades += 1
            item: dict[str, Any] = {
                "T": fill.T + self._time_off,
                "s": fill.s,
                "S": taker,
                "v": fill.q,
                "p": fill.p,
            }
            if self.category == "linear":
                last = self._last_trade_price
                if last is None or price == last:
                    item["L"] = "ZeroPlusTick"
                else:
                    item["L"] = "PlusTick" if price > last else "MinusTick"
            self._last_trade_price = price
            item.update({"i": str(fill.t), "BT": False, "RPI": False, "seq": self._seq})
            data.append(item)
        frame = orjson.dumps(
            {
                "topic": self.trade_topic,
                "type": "snapshot",
                "ts": trades.E + self._time_off,
                "data": data,
            }
        )
        self._publish(self.trade_topic, frame)

    # -- replay ------------------------------------------------------------------------------

    async def _replay(self) -> None:
        tl = self._require_timeline()
        loop = asyncio.get_running_loop()
        first = tl.steps[0].recv_ns
        origin: float | None = None
        for step in tl.steps:
            held = await self._hold()
            if not self._fast:
                offset_s = (step.recv_ns - first) / 1e9 / self._speed
                origin = loop.time() - offset_s if origin is None else origin + held
                while (delay := origin + offset_s - loop.time()) > 0:
                    await asyncio.sleep(delay)
                    origin += await self._hold()
            if isinstance(step, _Push):
                self._release_push(step)
            else:
                self._release_trades(step)
            if self._fast:
                await asyncio.sleep(0)
                while any(len(c.frames) > _HIGH_WATER for c in self._clients):
                    await asyncio.sleep(0.002)
                    if not any(len(c.frames) > _LOW_WATER for c in self._clients):
                        break
        self._drained.set()
        logger.info("embedded bybit %s: capture fully released", self.category)
