"""An embedded Binance venue (spot or USD-M) on loopback, replaying a capture or a simulation.

:class:`EmbeddedBinance` is one asyncio server on ``127.0.0.1``: the same port answers websocket
upgrades with Binance's public market-data streams and plain HTTP GETs with Binance's REST depth
endpoint. It is the protocol layer only: the timeline it serves comes from a pluggable source
(:mod:`.source`) — a recorded capture (by default the packaged hftbacktest files, see
``mmradar/data/README.md``) or a run of the market simulator (:mod:`mmradar.sim`: spot, or its
perpetual on USD-M in lockstep with a spot venue). It keeps its own ground-truth book
(:mod:`.truth`) so tests can compare the service's book with what the venue actually sent.
``mmradar demo`` runs the whole service against it; end-to-end tests use it as "the fake
exchange", faults included. A simulated source may schedule faults of its own (a skipped diff,
dropped connections) on its timeline.

Reproduced (docs/venues/binance.md and the Binance documentation it links):

* URLs. Spot: raw ``/ws/<stream>[/<stream>...]``, ``/ws`` (live subscriptions only) and combined
  ``/stream?streams=a/b/c`` (events wrapped ``{"stream": name, "data": event}``). USD-M: the same
  under ``/public`` (depth) and ``/market`` (``aggTrade``); ``@trade`` is served on both roots
  because public sources disagree on where Binance routes it. A stream requested on the wrong
  root is accepted and stays silent, as an unknown stream does.
  The legacy un-prefixed USD-M paths (``/ws``, ``/stream``), decommissioned on 2026-04-23, are
  refused with **HTTP 404 at the handshake**. (Reports of the real venue describe a silent
  accept-and-send-nothing mode instead; a 404 makes the client's mistake obvious.)
* Streams: spot ``<s>@depth@100ms`` (the capture's own), ``<s>@depth`` (1000 ms windows), USD-M
  ``<s>@depth@0ms`` (the capture's own), ``@depth@100ms``, ``@depth`` (250 ms), ``@depth@500ms``;
  ``<s>@trade``; ``<s>@aggTrade`` synthesized from consecutive fills with the same trade time,
  price and side. Slower depth streams merge the capture's diffs per window (first ``U``, last
  ``u``, first ``pu``, last value per price), so every stream keeps Binance's chain rules:
  spot ``U == prev_u + 1``, USD-M ``pu == prev_u``. Unknown streams are accepted and silent.
* Live control frames ``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY`` /
  ``GET_PROPERTY`` ``combined``, answered ``{"result": ..., "id": ...}``; errors as Binance
  documents them, nested ``{"error": {"code", "msg"}, "id"}``. A frame that is not JSON gets
  ``{"error": {"code": 3, "msg": "Invalid JSON: expected value at line L column C"}}`` (the shape
  observed from the real venue); on USD-M the connection is then closed (1008), as Binance
  announced on 2023-06-22 for futures. More incoming frames per second than Binance allows
  (5 spot, 10 USD-M; pings and pongs not counted) close the connection with 1008.
* REST ``GET /api/v3/depth`` (spot; ``limit`` default 100, larger than 5000 truncated to 5000,
  weight 5/25/50/250) and ``GET /fapi/v1/depth`` (USD-M; ``limit`` one of 5, 10, 20, 50, 100,
  500, 1000, default 500, weight 2/5/10/20; ``E`` and ``T`` added), plus ``ping`` and ``time``
  (weight 1). Errors ``-1100``/``-1102``/``-1121`` with HTTP 400. ``X-MBX-USED-WEIGHT-1M`` on
  every answer; the weight budget (6000 spot, 2400 USD-M per clock minute) overflowing gives
  HTTP 429 with ``Retry-After`` and code ``-1003``.
* Ping frames every 20 s (spot) / 180 s (USD-M) with pong timeouts of 60 s / 600 s;
  ``serverShutdown`` events (combined name ``!serverShutdown``); maintenance-style closes with
  1001 "going away" at the end of each pass of a looping replay.

Not reproduced: the 24-hour connection lifetime; the 1024-streams-per-connection and
300-connections-per-5-minutes limits; the automatic 418 ban after repeated 429s (418 can be forced
with :meth:`EmbeddedBinance.fail_next_rest`); ``symbolStatus``; partial-depth, bookTicker, kline,
ticker and markPrice streams (the capture's bookTicker records are loaded but not served); WS-API
requests; TLS. Aggregate-trade ids are synthetic (a per-venue counter), not Binance's.

Replay and time (see :class:`EmbeddedBinance` for details): frames go out in capture order, paced
by the recorder's receive timestamps divided by ``speed``; event times are rebased onto the
venue's wall clock at :meth:`EmbeddedBinance.start`; each pass of a looping venue shifts times and
update ids forward so that they never go backwards. A venue may instead replay in lockstep with
another one (``lockstep=``: two markets of one simulation, e.g. spot and its perpetual): it
releases each step once the other has reached it on the shared receive-time axis, serves event
times on the other's time base and ends each pass with it.

Layout: this module holds the venue (lifecycle, replay, ground truth, fault injection); its
websocket protocol is in :mod:`.binance_ws` and its REST router in :mod:`.binance_rest`, base
classes of :class:`EmbeddedBinance`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from websockets.exceptions import ConnectionClosed

from ..clock import ShellClock, SystemClock
from .binance_rest import _RestRouter
from .binance_ws import Clock, _Client, _dumps
from .capture import CaptureSource, DepthDiff, Level, Market, Trade
from .plan import AggTradeEnd, FaultStep, FlushTick, ReplayPlan, Step, depth_intervals
from .source import CaptureSource as CaptureFileSource
from .source import FrameSource
from .truth import TruthBook

__all__ = ["EmbeddedBinance", "VenueStats"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VenueStats:
    """Counters of an :class:`EmbeddedBinance` (a snapshot; cumulative since construction).

    Attributes:
        connections_accepted: websocket connections that completed the handshake.
        connections_open: websocket connections currently registered.
        frames_sent: websocket text frames written to clients (events, replies, injections).
        depth_events: capture depth diffs released by the replay (sent or skipped).
        depth_events_skipped: diffs applied to the truth book but sent nowhere
            (:meth:`EmbeddedBinance.skip_next_depth`).
        trades: capture trades released by the replay.
        rest_requests: HTTP (non-websocket) requests answered, errors included.
        rest_rejected: REST answers with status 429 or 418.
        slow_clients_dropped: connections closed because their send queue overflowed.
        passes_completed: full passes over the capture.
    """

    connections_accepted: int
    connections_open: int
    frames_sent: int
    depth_events: int
    depth_events_skipped: int
    trades: int
    rest_requests: int
    rest_rejected: int
    slow_clients_dropped: int
    passes_completed: int


class _DepthWindow:
    """Merges consecutive diffs into one event of a slower depth stream."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.E = 0
        self.T: int | None = None
        self.U = 0
        self.u = 0
        self.pu: int | None = None
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def add(self, E: int, T: int | None, U: int, u: int, pu: int | None, diff: DepthDiff) -> None:
        if self.count == 0:
            self.U, self.pu = U, pu
        self.count += 1
        self.E, self.T, self.u = E, T, u
        self.bids.update(diff.b)
        self.asks.update(diff.a)

    def take(self) -> tuple[int, int | None, int, int, int | None, list[Level], list[Level]] | None:
        if self.count == 0:
            return None
        out = (
            self.E,
            self.T,
            self.U,
            self.u,
            self.pu,
            list(self.bids.items()),
            list(self.asks.items()),
        )
        self.reset()
        return out


class EmbeddedBinance(_RestRouter):
    """A Binance venue (spot or USD-M) on 127.0.0.1 replaying a source, with ground truth.

    One replay task walks the capture's timeline and fans each event out to every connection
    subscribed to its stream. Each connection has its own bounded send queue and writer task, so
    a slow client never blocks the others: if its queue overflows it is disconnected (TCP abort),
    like a venue dropping a slow consumer. In as-fast-as-possible mode the replay additionally
    waits (up to ``slow_client_timeout_s``) for clients whose queue passes a high-water mark, so
    speed does not by itself overflow healthy clients.

    **When the replay runs.** It advances only while at least one connection is subscribed to a
    stream this venue serves, and while not :meth:`pause`\\ d; otherwise it holds (pacing resumes
    where it stopped). So a test may connect at leisure, even at ``speed=math.inf``.

    **Ground truth.** Before the first diff is released the truth book is the capture's REST
    snapshot; diffs the capture's own procedure would drop are never served (see :mod:`.plan`).
    Every released diff is applied to the truth book, whether sent or skipped. REST snapshots are
    cut from the truth book, so ``lastUpdateId`` is the ``u`` of the last released diff.

    **Event-time rebasing.** ``start_ms = clock() // 10**6`` is taken in :meth:`start`. Every
    served time (``E``, ``T``, snapshot ``E``/``T``) becomes ``t' = t - E0 + start_ms +
    k * (span + 1000)`` where ``E0`` is the first served diff's ``E``, ``span`` the capture's
    served time span in ms and ``k`` the pass number (0 for the first pass).

    **Looping.** At the end of a pass with ``loop=True`` every connection is closed with 1001
    "going away" (after the frames already queued for it), the truth book is reset to the
    snapshot and pass ``k + 1`` starts when a client subscribes again, with update ids
    (``U``, ``u``, ``pu``, ``lastUpdateId``) shifted by ``(k + 1) * (id span + 1)``, trade ids by
    ``(k + 1) * (trade-id span + 1)`` and times as above, so ids and times never go backwards.
    With ``loop=False`` the venue stays connected and idle (pings only) after the pass;
    :meth:`wait_drained` returns once everything was sent.

    Fault injection (all deterministic): :meth:`skip_next_depth`, :meth:`drop_connections`,
    :meth:`close_connections`, :meth:`send_raw`, :meth:`send_server_shutdown`, :meth:`pause` /
    :meth:`resume`, :meth:`fail_next_rest`.
    """

    def __init__(
        self,
        market: Market,
        *,
        capture: CaptureSource | None = None,
        source: FrameSource | None = None,
        speed: float = 1.0,
        loop: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval_s: float | None = None,
        clock: Clock = time.time_ns,
        pace_clock: ShellClock | None = None,
        rest_weight_per_minute: int | None = None,
        max_queue_frames: int = 10_000,
        slow_client_timeout_s: float = 5.0,
        max_incoming_per_s: int | None = None,
        lockstep: EmbeddedBinance | None = None,
    ) -> None:
        """Configure the venue; nothing runs before :meth:`start`.

        Args:
            market: ``"spot"`` or ``"usdm"``.
            capture: capture file; default the packaged one for ``market``.
            source: what to serve instead of a capture file, e.g. a
                :class:`~.source.SimulatedSource`; its market must be ``market``.
            speed: replay speed factor on the capture's receive-time axis; ``0`` or
                ``math.inf`` = as fast as possible.
            loop: start over at the end of the capture (see class docstring).
            host: listen address; must be an IPv4 loopback address.
            port: listen port; 0 picks a free one.
            ping_interval_s: seconds between ping frames; default 20 (spot) / 180 (USD-M).
                The pong timeout is Binance's: 60 s (spot) / 600 s (USD-M), or the interval if
                that is longer.
            clock: wall clock in ns (event-time origin, REST minute windows, ``E`` of
                injected events).
            pace_clock: the clock the replay is paced on (its ``monotonic`` and ``sleep``);
                default the wall clock. A test on a fake clock passes it here and as ``clock``.
            rest_weight_per_minute: REST weight budget per clock minute; default 6000 (spot) /
                2400 (USD-M).
            max_queue_frames: per-connection send-queue bound; a client whose queue overflows
                is disconnected.
            slow_client_timeout_s: in as-fast-as-possible mode, how long the replay waits for a
                lagging client before leaving it behind.
            max_incoming_per_s: client frames per second before the connection is closed with
                1008; default 5 (spot) / 10 (USD-M); 0 disables the limit.
            lockstep: replay in lockstep with this venue (the *leader*, started first), whose
                source shares this one's receive-time axis: each step is released once the
                leader has released a step at or after its time in the same pass (``speed`` and
                ``pace_clock`` are then the leader's business), the rest of a pass when the
                leader completes it; event times are rebased onto the leader's (the same
                source time is served as the same ``E`` on both venues). The replay still
                holds while nobody here subscribes, and catches up when someone does.

        Raises:
            ValueError: an argument is out of range, or ``capture`` and ``source`` are both
                given, or the source is for another market, or ``lockstep`` is this venue.
        """
        if market not in ("spot", "usdm"):
            raise ValueError(f"market must be 'spot' or 'usdm', not {market!r}")
        if source is not None and capture is not None:
            raise ValueError("give a capture or a source, not both")
        if source is not None and source.market != market:
            raise ValueError(f"the source serves {source.market!r}, not {market!r}")
        if not (speed == 0 or speed > 0):
            raise ValueError(f"speed must be >= 0, not {speed!r}")
        if not ipaddress.ip_address(host).is_loopback or ":" in host:
            raise ValueError(f"host must be an IPv4 loopback address, not {host!r}")
        if max_queue_frames < 1:
            raise ValueError("max_queue_frames must be >= 1")
        if lockstep is self:
            raise ValueError("a venue cannot replay in lockstep with itself")
        spot = market == "spot"
        self._market: Market = market
        self._source: FrameSource = (
            source if source is not None else CaptureFileSource(market, capture)
        )
        self._speed = speed
        self._fast = speed == 0 or math.isinf(speed)
        self._loop_capture = loop
        super().__init__(host, port, f"binance {market}")
        self._ping_interval_s = (
            ping_interval_s if ping_interval_s is not None else (20.0 if spot else 180.0)
        )
        self._ping_timeout_s = max(60.0 if spot else 600.0, self._ping_interval_s)
        self._clock = clock
        self._pace: ShellClock = pace_clock or SystemClock()
        self._weight_budget = rest_weight_per_minute or (6000 if spot else 2400)
        self._max_queue_frames = max_queue_frames
        self._slow_client_timeout_s = slow_client_timeout_s
        if max_incoming_per_s is None:
            max_incoming_per_s = 5 if spot else 10
        self._max_incoming_per_s = max_incoming_per_s
        self._leader = lockstep
        # (pass, receive time) of the last released step, and who waits for it to move
        self._released_at: tuple[int, int] = (-1, 0)
        self._progress: asyncio.Event | None = None

        self._plan: ReplayPlan | None = None
        self._start_ms = 0
        self._subscribers: dict[str, set[_Client]] = {}
        self._stream_roots: dict[str, frozenset[str]] = {}
        self._native_depth = ""
        self._window_streams: dict[int, str] = {}
        self._windows: dict[int, _DepthWindow] = {}
        self._drained = asyncio.Event()

        # per-pass state
        self._position_ns = 0
        self._pass = 0
        self._id_off = 0
        self._trade_off = 0
        self._agg_off = 0
        self._time_off = 0
        self._truth: TruthBook | None = None
        self._truth_E: int | None = None
        self._truth_T: int | None = None
        self._skip_depth = 0
        self._taker = {"buy": Decimal(0), "sell": Decimal(0)}

        # REST
        self._weight_minute = -1
        self._weight_used = 0
        self._forced: deque[tuple[int, int]] = deque()  # (status, retry_after_s)

        # counters
        self._n_depth = 0
        self._n_skipped = 0
        self._n_trades = 0
        self._n_rest = 0
        self._n_rest_rejected = 0
        self._n_passes = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the capture, bind the port and start the replay task.

        Raises:
            RuntimeError: already started, or started and stopped (a venue runs once), or the
                ``lockstep`` leader has not been started.
            CaptureError: the capture cannot be served.
            ValueError: this source's time span does not fit in one pass of the leader's.
        """
        if self._plan is not None:
            raise RuntimeError("an EmbeddedBinance can be started only once")
        leader = self._leader
        if leader is not None and leader._plan is None:
            raise RuntimeError("start the lockstep leader first")
        plan = await asyncio.to_thread(self._source.load)
        if leader is not None and plan.time_hi_ms - plan.time_lo_ms >= leader.plan.time_shift_ms:
            raise ValueError("the source spans more event time than one pass of the leader's")
        self._plan = plan
        symbol = plan.symbol.lower()
        if self._market == "spot":
            roots = {"depth": frozenset({""}), "trade": frozenset({""}), "agg": frozenset({""})}
        else:
            roots = {
                "depth": frozenset({"public"}),
                "trade": frozenset({"public", "market"}),
                "agg": frozenset({"market"}),
            }
        for suffix, interval in depth_intervals(self._market).items():
            name = f"{symbol}{suffix}"
            self._stream_roots[name] = roots["depth"]
            if interval == 0:
                self._native_depth = name
            else:
                self._window_streams[interval] = name
                self._windows[interval] = _DepthWindow()
        self._stream_roots[f"{symbol}@trade"] = roots["trade"]
        self._stream_roots[f"{symbol}@aggTrade"] = roots["agg"]

        self._start_ms = self._clock() // 1_000_000 if leader is None else leader.start_ms
        self._reset_pass(0)
        await self._bind(
            self._handle,
            process_request=self._process_request,
            ping_interval=self._ping_interval_s,
            ping_timeout=self._ping_timeout_s,
            close_timeout=2.0,
        )
        self._tasks = [asyncio.create_task(self._replay(), name="embedded-binance-replay")]
        logger.info(
            "embedded binance %s serving %s at %s (speed=%s, loop=%s%s)",
            self._market,
            plan.symbol,
            self.ws_base,
            self._speed,
            self._loop_capture,
            "" if leader is None else f", in lockstep with {leader.ws_base}",
        )

    # -- addresses and ground truth ----------------------------------------------------------

    @property
    def market(self) -> Market:
        """``"spot"`` or ``"usdm"``."""
        return self._market

    @property
    def symbol(self) -> str:
        """The served symbol in Binance's REST spelling, e.g. ``"BTCUSDT"``."""
        return self._require_plan().symbol

    @property
    def start_ms(self) -> int:
        """The event-time origin: the clock in ms when :meth:`start` ran."""
        return self._start_ms

    @property
    def pass_number(self) -> int:
        """The current pass over the capture (0 for the first)."""
        return self._pass

    @property
    def plan(self) -> ReplayPlan:
        """The static replay plan (capture-derived constants and timeline)."""
        return self._require_plan()

    @property
    def source(self) -> FrameSource:
        """What the venue serves (a capture file or a simulated scenario)."""
        return self._source

    @property
    def position_ns(self) -> int:
        """Where the replay is on the source's own receive-time axis (the last released step).

        For a :class:`~.source.SimulatedSource` this is the simulated event time; it restarts
        at every pass of a looping venue. 0 before anything was released.
        """
        return self._position_ns

    @property
    def stats(self) -> VenueStats:
        """A snapshot of the venue's counters."""
        return VenueStats(
            connections_accepted=self._n_accepted,
            connections_open=len(self._clients),
            frames_sent=self._n_frames,
            depth_events=self._n_depth,
            depth_events_skipped=self._n_skipped,
            trades=self._n_trades,
            rest_requests=self._n_rest,
            rest_rejected=self._n_rest_rejected,
            slow_clients_dropped=self._n_slow,
            passes_completed=self._n_passes,
        )

    def truth_book(self, symbol: str) -> tuple[dict[str, str], dict[str, str]]:
        """The ground-truth book as of the last released diff.

        Args:
            symbol: the venue's symbol (any case).

        Returns:
            Copies of ``(bids, asks)``, each ``{price text: quantity text}``.
        """
        truth = self._require_truth(symbol)
        return dict(truth.bids), dict(truth.asks)

    def truth_last_update_id(self, symbol: str) -> int:
        """``u`` of the last released diff (shifted per pass), or the snapshot's id before.

        Args:
            symbol: the venue's symbol (any case).
        """
        return self._require_truth(symbol).last_update_id

    def taker_volume(self, symbol: str) -> dict[str, Decimal]:
        """Base volume of the trades released so far, by aggressor side (all passes).

        Binance ``m=true`` (buyer is maker) means the seller was the aggressor: ``"sell"``.

        Args:
            symbol: the venue's symbol (any case).

        Returns:
            ``{"buy": Decimal, "sell": Decimal}``.
        """
        self._require_truth(symbol)
        return dict(self._taker)

    async def wait_drained(self) -> None:
        """Wait until the capture has been fully sent.

        Returns once the replay has released the whole capture (the first pass when looping)
        and every open connection's send queue is empty. A client that never reads keeps its
        queue full until it is dropped as a slow consumer.
        """
        await self._drained.wait()
        await self._flushed()

    # -- fault injection ---------------------------------------------------------------------

    def skip_next_depth(self, symbol: str) -> None:
        """Apply the next diff to the truth book but send it on no depth stream (a gap).

        Windows of the slower depth streams are closed before the skipped diff, so the gap
        shows on every depth stream. Calls accumulate: two calls skip two diffs.

        Args:
            symbol: the venue's symbol (any case).
        """
        self._require_truth(symbol)
        self._skip_depth += 1

    def send_server_shutdown(self) -> None:
        """Send Binance's ``serverShutdown`` event to every open connection.

        Raw connections get ``{"e":"serverShutdown","E":ms}``; combined ones get it wrapped
        with stream name ``!serverShutdown``. The connections stay open; follow with
        :meth:`close_connections` to complete the maintenance sequence.
        """
        payload = _dumps({"e": "serverShutdown", "E": self._clock() // 1_000_000})
        wrapped = b'{"stream":"!serverShutdown","data":' + payload + b"}"
        for client in list(self._clients):
            self._push(client, wrapped if client.combined else payload)

    async def ping(self) -> None:
        """Send one ping frame on every open connection now (what the keep-alive sends every
        ``ping_interval_s``), for a client whose clock is not the wall clock."""
        for client in list(self._clients):
            try:
                await client.ws.ping()
            except ConnectionClosed:
                continue

    def fail_next_rest(
        self, count: int = 1, *, status: Literal[429, 418] = 429, retry_after_s: int = 1
    ) -> None:
        """Answer the next ``count`` REST requests with HTTP ``status`` (Binance ``-1003``).

        Args:
            count: how many answers to force.
            status: 429 (rate limit) or 418 (IP ban).
            retry_after_s: value of the ``Retry-After`` header.
        """
        if status not in (429, 418):
            raise ValueError("status must be 429 or 418")
        self._forced.extend([(status, retry_after_s)] * count)

    # -- replay ----------------------------------------------------------------------------

    def _require_truth(self, symbol: str) -> TruthBook:
        plan = self._require_plan()
        if symbol.upper() != plan.symbol or self._truth is None:
            raise KeyError(f"unknown symbol {symbol!r}; this venue serves {plan.symbol}")
        return self._truth

    def _time_offset(self, number: int) -> int:
        """What pass ``number`` adds to the source's event times, ms (the leader's, if any)."""
        if self._leader is not None:
            return self._leader._time_offset(number)
        plan = self._require_plan()
        return self._start_ms - plan.first_event_ms + number * plan.time_shift_ms

    def _reset_pass(self, number: int) -> None:
        plan = self._require_plan()
        self._pass = number
        self._id_off = number * plan.id_shift
        self._trade_off = number * plan.trade_id_shift
        self._agg_off = plan.trade_id_lo // 2 + number * plan.agg_trade_count
        self._time_off = self._time_offset(number)
        self._truth = TruthBook(plan.snapshot, id_offset=self._id_off)
        snap = plan.snapshot
        self._truth_E = None if snap.E is None else snap.E + self._time_off
        self._truth_T = None if snap.T is None else snap.T + self._time_off
        for window in self._windows.values():
            window.take()

    def _active(self) -> bool:
        return any(c.served for c in self._clients)

    async def _replay(self) -> None:
        plan = self._require_plan()
        while True:
            logger.info("embedded binance %s: pass %d ready", self._market, self._pass)
            if self._leader is None:
                await self._run_pass(plan)
            else:
                await self._run_pass_lockstep(plan, self._leader)
            self._n_passes += 1
            self._moved()
            self._drained.set()
            logger.info("embedded binance %s: pass %d complete", self._market, self._pass)
            if not self._loop_capture:
                return
            self.close_connections(1001, "going away")
            self._reset_pass(self._pass + 1)

    def _pace_time(self) -> float:
        return self._pace.monotonic()  # the pacing clock (a test's fake clock, or the system's)

    async def _run_pass(self, plan: ReplayPlan) -> None:
        """Release every step of the timeline once, paced by receive time / ``speed``."""
        pace = self._pace
        origin: float | None = None
        idle = 0
        for step in plan.steps:
            held = await self._hold()
            if self._fast:
                if self._release(step) or idle >= 255:
                    idle = 0
                    await asyncio.sleep(0)
                    await self._backpressure()
                else:
                    idle += 1
                continue
            offset_s = (step.recv_ns - plan.recv_first_ns) / 1e9 / self._speed
            if origin is None:
                origin = pace.monotonic() - offset_s
            else:
                origin += held
            while (delay := origin + offset_s - pace.monotonic()) > 0:
                idle = 0
                await pace.sleep(delay)
                origin += await self._hold()
            self._release(step)
            idle += 1
            if idle >= 256:
                idle = 0
                await asyncio.sleep(0)

    async def _run_pass_lockstep(self, plan: ReplayPlan, leader: EmbeddedBinance) -> None:
        """Release every step of the timeline once, as the leader reaches its time."""
        number = self._pass
        idle = 0
        for step in plan.steps:
            await self._hold()
            if not leader._reached(number, step.recv_ns):
                idle = 0
                await leader._wait_reached(number, step.recv_ns)
                await self._hold()
            self._release(step)
            idle += 1
            if idle >= 256:
                idle = 0
                await asyncio.sleep(0)

    def _reached(self, number: int, recv_ns: int) -> bool:
        """Whether the replay has released a step at or after ``recv_ns`` of pass ``number``,
        or completed that pass."""
        return self._n_passes > number or self._released_at >= (number, recv_ns)

    async def _wait_reached(self, number: int, recv_ns: int) -> None:
        """Wait until :meth:`_reached` (a lockstep follower waits on its leader)."""
        while not self._reached(number, recv_ns):
            if self._progress is None:
                self._progress = asyncio.Event()
            await self._progress.wait()

    def _moved(self) -> None:
        """Wake whoever waits for the replay to move on."""
        if self._progress is not None:
            self._progress.set()
            self._progress = None

    async def _backpressure(self) -> None:
        """As-fast-as-possible mode: let lagging clients catch up, within a time limit."""
        lagging = [c for c in self._clients if not c.stalled and len(c.frames) >= c.high_water]
        if not lagging:
            return
        try:
            async with asyncio.timeout(self._slow_client_timeout_s):
                for client in lagging:
                    await client.below_low_water.wait()
        except TimeoutError:
            for client in lagging:
                if not client.below_low_water.is_set():
                    client.stalled = True

    def _release(self, step: Step) -> bool:
        """Release one timeline step; return True if any frame was queued."""
        self._position_ns = step.recv_ns
        self._released_at = (self._pass, step.recv_ns)
        if self._progress is not None:
            self._moved()
        if isinstance(step, FaultStep):
            if step.kind == "gap":
                self._skip_depth += 1
            else:
                self.drop_connections()
            return False
        if isinstance(step, DepthDiff):
            return self._release_depth(step)
        if isinstance(step, Trade):
            return self._release_trade(step)
        if isinstance(step, FlushTick):
            return self._flush_window(step.interval_ms)
        return self._release_agg_trade(step)

    def _release_depth(self, diff: DepthDiff) -> bool:
        truth = self._truth
        assert truth is not None
        E = diff.E + self._time_off
        T = None if diff.T is None else diff.T + self._time_off
        U, u = diff.U + self._id_off, diff.u + self._id_off
        pu = None if diff.pu is None else diff.pu + self._id_off
        truth.apply(diff.b, diff.a, u)
        self._truth_E, self._truth_T = E, T
        self._n_depth += 1
        if self._skip_depth > 0:
            self._skip_depth -= 1
            self._n_skipped += 1
            sent = False
            for interval in self._windows:
                sent = self._flush_window(interval) or sent
            logger.info("embedded binance %s: skipped depth diff u=%d", self._market, u)
            return sent
        for window in self._windows.values():
            window.add(E, T, U, u, pu, diff)
        if not self._subscribers.get(self._native_depth):
            return False
        payload = self._depth_payload(E, T, U, u, pu, diff.b, diff.a)
        return self._publish(self._native_depth, payload)

    def _flush_window(self, interval: int) -> bool:
        merged = self._windows[interval].take()
        stream = self._window_streams[interval]
        if merged is None or not self._subscribers.get(stream):
            return False
        return self._publish(stream, self._depth_payload(*merged))

    def _depth_payload(
        self,
        E: int,
        T: int | None,
        U: int,
        u: int,
        pu: int | None,
        bids: Iterable[Level],
        asks: Iterable[Level],
    ) -> bytes:
        symbol = self._require_plan().symbol
        b = [list(level) for level in bids]
        a = [list(level) for level in asks]
        if self._market == "spot":
            event: dict[str, Any] = {
                "e": "depthUpdate",
                "E": E,
                "s": symbol,
                "U": U,
                "u": u,
                "b": b,
                "a": a,
            }
        else:
            event = {
                "e": "depthUpdate",
                "E": E,
                "T": T,
                "s": symbol,
                "U": U,
                "u": u,
                "pu": pu,
                "b": b,
                "a": a,
            }
        return _dumps(event)

    def _release_trade(self, trade: Trade) -> bool:
        self._n_trades += 1
        self._taker["sell" if trade.m else "buy"] += Decimal(trade.q)
        stream = f"{trade.s.lower()}@trade"
        if not self._subscribers.get(stream):
            return False
        E, T, t = trade.E + self._time_off, trade.T + self._time_off, trade.t + self._trade_off
        if self._market == "spot":
            event: dict[str, Any] = {
                "e": "trade",
                "E": E,
                "s": trade.s,
                "t": t,
                "p": trade.p,
                "q": trade.q,
                "T": T,
                "m": trade.m,
            }
            if trade.M is not None:
                event["M"] = trade.M
        else:
            event = {
                "e": "trade",
                "E": E,
                "T": T,
                "s": trade.s,
                "t": t,
                "p": trade.p,
                "q": trade.q,
            }
            if trade.X is not None:
                event["X"] = trade.X
            event["m"] = trade.m
        return self._publish(stream, _dumps(event))

    def _release_agg_trade(self, end: AggTradeEnd) -> bool:
        plan = self._require_plan()
        stream = f"{plan.symbol.lower()}@aggTrade"
        if not self._subscribers.get(stream):
            return False
        g = end.group
        event: dict[str, Any] = {
            "e": "aggTrade",
            "E": g.E + self._time_off,
            "s": plan.symbol,
            "a": g.index + self._agg_off,
            "p": g.p,
            "q": g.q,
            "f": g.f + self._trade_off,
            "l": g.l + self._trade_off,
            "T": g.T + self._time_off,
            "m": g.m,
        }
        if self._market == "spot":
            event["M"] = True
        return self._publish(stream, _dumps(event))

    def _publish(self, stream: str, payload: bytes) -> bool:
        clients = self._subscribers.get(stream)
        if not clients:
            return False
        wrapped: bytes | None = None
        for client in list(clients):
            if client.combined:
                if wrapped is None:
                    wrapped = b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"
                self._push(client, wrapped)
            else:
                self._push(client, payload)
        return True
