"""The feed runner: the thin asyncio shell around one feed's pure pipeline.

One :class:`FeedRunner` per exchange (its ``[[feeds]]`` tables merged into one feed by
:func:`mmradar.config.merge_feeds`, so the venue's per-IP limits and the exchange-keyed metrics
cover all of them) runs, under one ``TaskGroup``:

* one supervisor task per websocket connection the venue plans (reconnect with exponential
  back-off and jitter, reset after every successful connection);
* one REST snapshot worker (one request at a time, within the venue's request-weight budget,
  honouring 429/418 ``Retry-After``);
* a watchdog: books with no depth message for ``stale_after_seconds`` are invalidated, and a
  connection from which nothing at all — pings included — arrived for that long is dropped
  and reopened; connections are also renewed before the venue's age limit (Binance: 24 h).

Every frame is handed to :meth:`FeedPipeline.on_frame` inline, in the connection's task: the
core is synchronous and takes microseconds, so there is no queue to grow and no blocking call
on the event loop. Transport failures are classified by :func:`classify`; anything else is a
bug and propagates (the service exits 1 rather than spin).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection, connect

from .book.sync import FetchSnapshot, Resubscribe
from .clock import Clock, SystemClock
from .config import FeedSettings
from .errors import MalformedMessage, SnapshotError
from .metrics import Metrics
from .pipeline import Command, FeedObserver, FeedPipeline, Reconnect
from .venues.base import ConnectionPlan

__all__ = ["FeedRunner", "FrameRecorder", "WeightBudget", "backoff", "classify"]

log = logging.getLogger(__name__)


def backoff(
    initial_s: float = 0.5,
    maximum_s: float = 30.0,
    factor: float = 2.0,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Exponential back-off with "equal jitter": each delay is uniform in ``[d/2, d]``.

    Jitter keeps a fleet of clients from reconnecting in lockstep after a venue outage.
    """
    rng = rng or random.Random()
    delay = initial_s
    while True:
        yield delay / 2 + rng.uniform(0.0, delay / 2)
        delay = min(maximum_s, delay * factor)


def classify(exc: BaseException) -> str | None:
    """``"error"``/``"closed"`` for transport failures worth a reconnect, ``None`` otherwise."""
    if isinstance(exc, websockets.ConnectionClosed):
        return "closed"
    if isinstance(exc, OSError | TimeoutError | websockets.InvalidHandshake | EOFError):
        return "error"
    if isinstance(exc, websockets.InvalidURI | websockets.InvalidMessage):
        return "error"
    return None


class FrameRecorder(Protocol):
    """What the runner tells a recorder (see :mod:`mmradar.record`)."""

    def opened(self, exchange: str, plan: ConnectionPlan, ts_ns: int) -> None: ...
    def frame(self, exchange: str, conn_name: str, ts_ns: int, raw: bytes | str) -> None: ...
    def closed(self, exchange: str, conn_name: str, ts_ns: int, reason: str) -> None: ...
    def snapshot(self, exchange: str, symbol: str, ts_ns: int, body: bytes) -> None: ...


class WeightBudget:
    """A venue's REST request-weight budget over a rolling window (pure; time passed in).

    One per exchange: the exchange's one :class:`FeedRunner` owns it.

    Args:
        per_minute: the venue's limit per IP and window.
        share: the fraction of it this process allows itself (others may share the IP).
        window_s: the venue's counting window (a minute for Binance, 2 s for OKX's books).
    """

    def __init__(self, per_minute: int, share: float = 0.5, window_s: float = 60.0) -> None:
        self.cap = max(1, int(per_minute * share)) if per_minute else 0
        self.window_s = window_s
        self._spent: deque[tuple[float, int]] = deque()
        self._blocked_until = 0.0
        self._venue_used = 0
        self._venue_used_at = -1e18

    def _used(self, now: float) -> int:
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self._spent.popleft()
        own = sum(w for _, w in self._spent)
        venue = self._venue_used if now - self._venue_used_at < self.window_s else 0
        return max(own, venue)

    def used(self, now: float) -> int:
        """Weight spent within the window, by our count or the venue's, whichever is more."""
        return self._used(now)

    def delay(self, weight: int, now: float) -> float:
        """Seconds to wait before a request of ``weight`` fits the budget (0: go now)."""
        if now < self._blocked_until:
            return self._blocked_until - now
        if not self.cap or self._used(now) + weight <= self.cap or not self._spent:
            return 0.0
        # Wait until enough of the oldest spending leaves the window.
        need = self._used(now) + weight - self.cap
        freed = 0
        for at, w in self._spent:
            freed += w
            if freed >= need:
                return max(0.0, at + self.window_s - now)
        return self.window_s

    def spend(self, weight: int, now: float) -> None:
        """Record a request of ``weight`` sent at ``now``."""
        self._spent.append((now, weight))

    def venue_reports(self, used: int, now: float) -> None:
        """The venue said how much weight this IP has used this minute."""
        self._venue_used = used
        self._venue_used_at = now

    def block(self, seconds: float, now: float) -> None:
        """The venue said stop (429/418 with ``Retry-After``)."""
        self._blocked_until = max(self._blocked_until, now + seconds)


class _TrackedConnection(ClientConnection):
    """A client connection that notes when any bytes (frames, pings, pongs) last arrived."""

    last_bytes_at = 0.0

    def data_received(self, data: bytes) -> None:
        self.last_bytes_at = time.monotonic()
        super().data_received(data)


class _ReconnectRequested(Exception):
    def __init__(self, command: Reconnect) -> None:
        super().__init__(command.reason)
        self.command = command


class _LoggingObserver:
    """Passes counts through and logs resyncs (lifecycle events) with venue and symbol."""

    def __init__(self, inner: FeedObserver, exchange: str) -> None:
        self._inner = inner
        self._exchange = exchange
        self.bad_message = inner.bad_message

    def resync(self, symbol: str, reason: str) -> None:
        log.warning("%s %s: book invalidated (%s), resyncing", self._exchange, symbol, reason)
        self._inner.resync(symbol, reason)


class FeedRunner:
    """Runs one exchange's feed: its connections, its REST snapshots and its watchdog.

    The metrics labelled by exchange only (connections, REST weight) assume one runner per
    exchange: the service merges an exchange's ``[[feeds]]`` tables into one feed.

    Args:
        feed: the exchange's feed (its ``[[feeds]]`` tables merged).
        pipeline: the feed's pure pipeline (its observer is wrapped to log resyncs).
        metrics: the metric families.
        session: shared aiohttp client session for REST snapshots.
        clock: wall and monotonic clocks.
        backoff_factory: makes a fresh reconnect-delay iterator.
        recorder: optional raw-frame recorder.
        open_timeout_s: websocket opening-handshake timeout.
        ping_interval_s: client keep-alive pings (detect dead TCP); ``None`` to disable.
    """

    def __init__(
        self,
        feed: FeedSettings,
        pipeline: FeedPipeline,
        metrics: Metrics,
        session: aiohttp.ClientSession,
        *,
        clock: Clock | None = None,
        backoff_factory: Callable[[], Iterator[float]] = backoff,
        recorder: FrameRecorder | None = None,
        open_timeout_s: float = 10.0,
        ping_interval_s: float | None = 20.0,
        watchdog_interval_s: float = 1.0,
    ) -> None:
        self.feed = feed
        self.pipeline = pipeline
        self.venue = pipeline.venue
        self.exchange = self.venue.name
        pipeline.observer = _LoggingObserver(pipeline.observer, self.exchange)
        self.metrics = metrics
        self.session = session
        self.clock = clock or SystemClock()
        self.backoff_factory = backoff_factory
        self.recorder = recorder
        self.open_timeout_s = open_timeout_s
        self.ping_interval_s = ping_interval_s
        self.watchdog_interval_s = watchdog_interval_s
        self.plans = self.venue.connections(feed.symbols, trades=feed.trades)
        self.budget = WeightBudget(
            self.venue.rest_weight_per_minute, window_s=self.venue.rest_window_s
        )
        self._last_fetch: dict[str, float] = {}  # symbol → monotonic time of its last request
        self._sent_at: deque[float] = deque()  # client frames sent in the last second
        self._resubscribed: dict[str, float] = {}  # symbol → monotonic time of its resubscribe
        self._snapshots: asyncio.Queue[str] = asyncio.Queue()
        self._snapshot_pending: set[str] = set()
        self._live: dict[str, tuple[_TrackedConnection, float]] = {}  # plan name → (ws, opened)
        self._close_reason: dict[str, str] = {}
        self._keepalive_at: dict[str, float] = {}  # plan name → last keep-alive sent (monotonic)
        self._depth_conn: dict[str, str] = {
            s: plan.name for plan in self.plans for s in plan.depth_symbols
        }
        self._processing = metrics.processing
        self._connected = metrics.feed_connected.labels(self.exchange)
        self._connections = metrics.feed_connections.labels(self.exchange)

    async def run(self) -> None:
        """Run until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for i, plan in enumerate(self.plans):
                delay = i * self.venue.connect_interval_s
                tg.create_task(self._supervise(plan, delay), name=plan.name)
            tg.create_task(self._snapshot_worker(), name=f"{self.exchange}/snapshots")
            tg.create_task(self._watchdog(), name=f"{self.exchange}/watchdog")

    # -- connections -----------------------------------------------------------------------

    async def _supervise(self, plan: ConnectionPlan, start_delay_s: float = 0.0) -> None:
        if start_delay_s > 0:
            await asyncio.sleep(start_delay_s)  # the venue's connection-rate limit
        delays = self.backoff_factory()
        while True:
            reason, established = await self._connect_once(plan)
            if established:
                delays = self.backoff_factory()  # reset after every successful connection
            self.metrics.feed_reconnects.labels(self.exchange, reason).inc()
            delay = next(delays)
            log.info("%s: reconnecting %s in %.1f s (%s)", self.exchange, plan.name, delay, reason)
            await asyncio.sleep(delay)

    async def _connect_once(self, plan: ConnectionPlan) -> tuple[str, bool]:
        """One connection's life. Returns the reconnect reason and whether it was established."""
        established = False
        cancelled = False
        reason, resync_reason = "error", "reconnect"
        try:
            async with connect(
                plan.url,
                create_connection=_TrackedConnection,
                open_timeout=self.open_timeout_s,
                ping_interval=self.ping_interval_s,
                ping_timeout=self.ping_interval_s,
                close_timeout=1.0,
                max_size=2**24,
            ) as ws:
                assert isinstance(ws, _TrackedConnection)
                established = True
                ws.last_bytes_at = time.monotonic()
                self._on_open(plan, ws)
                for text in plan.subscribe:
                    await self._send_paced(ws, text)
                await self._read(plan, ws)
                reason = self._close_reason.pop(plan.name, "closed")
        except asyncio.CancelledError:
            cancelled = True  # shutting down: not a disconnect worth recording
            raise
        except _ReconnectRequested as request:
            reason, resync_reason = request.command.reason, request.command.resync_reason
        except Exception as exc:  # classified below; bugs propagate
            kind = classify(exc)
            if kind is None:
                raise
            reason = self._close_reason.pop(plan.name, kind)
            log.warning("%s: connection %s %s: %s", self.exchange, plan.name, kind, exc)
        finally:
            if established:
                self._on_close(plan, "shutdown" if cancelled else reason, record=not cancelled)
                if not cancelled:
                    commands = self.pipeline.invalidate(plan.depth_symbols, resync_reason)
                    await self._dispatch(commands)
        return reason, established

    async def _read(self, plan: ConnectionPlan, ws: _TrackedConnection) -> None:
        pipeline = self.pipeline
        parser = pipeline.new_parser()
        wall_ns = self.clock.wall_ns
        observe = self._processing.observe
        recorder = self.recorder
        exchange = self.exchange
        perf = time.perf_counter
        async for raw in ws:
            ts = wall_ns()
            t0 = perf()
            commands = pipeline.on_frame(parser, raw, ts)
            observe(perf() - t0)
            if recorder is not None:
                recorder.frame(exchange, plan.name, ts, raw)
            if commands:
                await self._dispatch(commands)

    def _on_open(self, plan: ConnectionPlan, ws: _TrackedConnection) -> None:
        self._live[plan.name] = (ws, self.clock.monotonic())
        self._update_connected()
        log.info("%s: connected %s (%s)", self.exchange, plan.name, plan.url)
        if self.recorder is not None:
            self.recorder.opened(self.exchange, plan, self.clock.wall_ns())

    def _on_close(self, plan: ConnectionPlan, reason: str, *, record: bool = True) -> None:
        self._live.pop(plan.name, None)
        self._update_connected()
        log.info("%s: disconnected %s (%s)", self.exchange, plan.name, reason)
        if record and self.recorder is not None:
            self.recorder.closed(self.exchange, plan.name, self.clock.wall_ns(), reason)

    def _update_connected(self) -> None:
        up = len(self._live)
        self._connections.set(up)
        self._connected.set(1 if up == len(self.plans) else 0)

    # -- commands --------------------------------------------------------------------------

    async def _dispatch(self, commands: Sequence[Command]) -> None:
        resubscribe: dict[str, list[str]] = {}  # connection → symbols, in command order
        for command in commands:
            if isinstance(command, FetchSnapshot):
                if command.symbol not in self._snapshot_pending:
                    self._snapshot_pending.add(command.symbol)
                    self._snapshots.put_nowait(command.symbol)
            elif isinstance(command, Resubscribe):
                name = self._depth_conn.get(command.symbol)
                if name is not None:
                    resubscribe.setdefault(name, []).append(command.symbol)
            else:
                raise _ReconnectRequested(command)
        for name, symbols in resubscribe.items():
            await self._resubscribe(name, symbols)

    async def _resubscribe(self, name: str, symbols: list[str]) -> None:
        """Ask the venue for fresh snapshots of ``symbols`` on connection ``name``."""
        live = self._live.get(name)
        if live is None:
            return  # the connection is down: its reconnect subscribes afresh
        now = self.clock.monotonic()
        for symbol in symbols:
            self._resubscribed[symbol] = now
        with contextlib.suppress(websockets.ConnectionClosed):
            for text in self.venue.resubscribe_many(symbols):
                await self._send_paced(live[0], text)

    async def _send_paced(self, ws: _TrackedConnection, text: str) -> None:
        """Send a client frame within the venue's message-rate limit (N frames in any 1 s)."""
        rate = self.venue.max_messages_per_s
        if rate:
            sent = self._sent_at
            limit = max(1, int(rate))
            while len(sent) >= limit:
                wait = sent[0] + 1.0 - self.clock.monotonic()
                if wait <= 0:
                    sent.popleft()
                else:
                    await asyncio.sleep(wait)
            sent.append(self.clock.monotonic())
        await ws.send(text)

    # -- REST snapshots --------------------------------------------------------------------

    async def _snapshot_worker(self) -> None:
        delays = self.backoff_factory()
        while True:
            symbol = await self._snapshots.get()
            self._snapshot_pending.discard(symbol)
            wait = self._last_fetch.get(symbol, -1e18) + self.venue.snapshot_refetch_delay_s
            if wait > self.clock.monotonic():
                await asyncio.sleep(wait - self.clock.monotonic())
            self._last_fetch[symbol] = self.clock.monotonic()
            ok = await self._fetch_snapshot(symbol)
            if ok:
                delays = self.backoff_factory()
            else:
                self.pipeline.snapshot_failed(symbol)
                await asyncio.sleep(next(delays))

    async def _fetch_snapshot(self, symbol: str) -> bool:
        request = self.venue.snapshot_request(symbol)
        while (wait := self.budget.delay(request.weight, self.clock.monotonic())) > 0:
            log.info("%s: REST weight budget: waiting %.1f s for %s", self.exchange, wait, symbol)
            await asyncio.sleep(wait)
        self.budget.spend(request.weight, self.clock.monotonic())
        results = self.metrics.snapshot_requests
        try:
            async with self.session.get(
                request.url, timeout=aiohttp.ClientTimeout(total=15)
            ) as resp:
                body = await resp.read()
                used = self.venue.used_weight(resp.headers)
                if used is not None:
                    self.budget.venue_reports(used, self.clock.monotonic())
                self.metrics.rest_weight_used.labels(self.exchange).set(
                    self.budget.used(self.clock.monotonic())
                )
                if resp.status in (418, 429):
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
                    self.budget.block(retry_after, self.clock.monotonic())
                    results.labels(self.exchange, "rate_limited").inc()
                    log.warning(
                        "%s: REST %d for %s snapshot; backing off %.0f s",
                        self.exchange, resp.status, symbol, retry_after,
                    )  # fmt: skip
                    return False
                if resp.status != 200:
                    raise SnapshotError(f"HTTP {resp.status}: {body[:200]!r}")
            ts = self.clock.wall_ns()
            if self.recorder is not None:
                self.recorder.snapshot(self.exchange, symbol, ts, body)
            commands = self.pipeline.on_snapshot(symbol, body, ts)
        except (aiohttp.ClientError, TimeoutError, SnapshotError, MalformedMessage) as exc:
            results.labels(self.exchange, "error").inc()
            log.warning("%s: snapshot for %s failed: %s", self.exchange, symbol, exc)
            return False
        results.labels(self.exchange, "ok").inc()
        log.info("%s: %s snapshot loaded", self.exchange, symbol)
        with contextlib.suppress(_ReconnectRequested):
            await self._dispatch(commands)
        return True

    # -- watchdog --------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        stale_after_s = self.feed.stale_after_seconds
        stale_ns = int(stale_after_s * 1e9)
        max_age = self.venue.max_connection_age_s
        while True:
            await asyncio.sleep(self.watchdog_interval_s)
            await self._dispatch(self.pipeline.check_stale(self.clock.wall_ns(), stale_ns))
            await self._retry_resubscribes()
            now = time.monotonic()
            for name, (ws, opened) in list(self._live.items()):
                if now - ws.last_bytes_at > stale_after_s:
                    self._drop(name, ws, "stale")
                elif max_age is not None and self.clock.monotonic() - opened > max_age:
                    self._drop(name, ws, "max_age")
                else:
                    await self._keepalive(name, ws, opened)

    async def _retry_resubscribes(self) -> None:
        """Resubscribe books whose snapshot never came (the request was refused or lost)."""
        if not self._resubscribed:
            return
        now = self.clock.monotonic()
        timeout = self.venue.resubscribe_timeout_s
        again: dict[str, list[str]] = {}
        for symbol, at in list(self._resubscribed.items()):
            inst = self.pipeline.instruments[symbol]
            if inst.valid:
                del self._resubscribed[symbol]
            elif now - at >= timeout:
                name = self._depth_conn.get(symbol)
                if name is not None:
                    again.setdefault(name, []).append(symbol)
        for name, symbols in again.items():
            log.warning(
                "%s: no snapshot %.0f s after resubscribing %s; asking again",
                self.exchange, timeout, ", ".join(symbols),
            )  # fmt: skip
            await self._resubscribe(name, symbols)

    async def _keepalive(self, name: str, ws: _TrackedConnection, opened: float) -> None:
        """Send the venue's application-level ping when it is due (OKX, Bybit, Kraken)."""
        text = self.venue.keepalive_text
        if text is None:
            return
        now = self.clock.monotonic()
        last = max(self._keepalive_at.get(name, opened), opened)
        if now - last < self.venue.keepalive_interval_s:
            return
        self._keepalive_at[name] = now
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(text)

    def _drop(self, name: str, ws: _TrackedConnection, reason: str) -> None:
        log.warning("%s: dropping connection %s (%s)", self.exchange, name, reason)
        self._close_reason[name] = reason
        ws.transport.abort()


def _retry_after(value: str | None, default_s: float = 60.0) -> float:
    try:
        return max(1.0, float(value)) if value is not None else default_s
    except ValueError:
        return default_s
