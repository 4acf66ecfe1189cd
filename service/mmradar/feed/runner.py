"""The :class:`FeedRunner`: one exchange's connections, REST snapshot worker, resync scheduler
and watchdog under one ``TaskGroup`` (see :mod:`mmradar.feed`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Final

import aiohttp
import websockets
from websockets.asyncio.client import connect

from ..book.sync import FetchSnapshot, Resubscribe
from ..clock import ShellClock, SystemClock
from ..config import FeedSettings
from ..errors import MalformedMessage, SnapshotError
from ..pipeline import Command, FeedObserver, FeedPipeline
from ..reporting import ShellObserver
from ..venues.base import ConnectionPlan, FrameParser, SnapshotSource
from .connection import (
    FrameRecorder,
    _ReconnectRequested,
    _refusal,
    _tracked,
    _TrackedConnection,
    backoff,
    classify,
)
from .rest import WeightBudget, _failure, _retry_after
from .resync import (
    LogLimiter,
    MessagePacer,
    ResyncBackoff,
    ResyncPolicy,
    ResyncSlot,
    _count_text,
    _left_out,
)

# The package's logger: operators and tests filter on "mmradar.feed".
log = logging.getLogger("mmradar.feed")


class _ResyncEvents:
    """Passes counts through and notes every resync for the runner to log (with what happens
    next, known once the runner has handled the commands: :meth:`FeedRunner._report`)."""

    def __init__(self, inner: FeedObserver) -> None:
        self._inner = inner
        self.bad_message = inner.bad_message
        self.pending: list[tuple[str, str]] = []
        self.last_reason: dict[str, str] = {}

    def resync(self, symbol: str, reason: str) -> None:
        self._inner.resync(symbol, reason)
        self.pending.append((symbol, reason))
        self.last_reason[symbol] = reason


_SNAPSHOT: Final = "snapshot"
_RESUBSCRIBE: Final = "resubscribe"


class FeedRunner:
    """Runs one exchange's feed: its connections, its REST snapshots and its watchdog.

    The metrics labelled by exchange only (connections, REST weight) assume one runner per
    exchange: the service merges an exchange's ``[[feeds]]`` tables into one feed.

    Args:
        feed: the exchange's feed (its ``[[feeds]]`` tables merged).
        pipeline: the feed's pure pipeline (its observer is wrapped to log resyncs).
        observer: what the runner reports (connections, reconnects, REST snapshots and
            weight, parked resyncs, per-frame processing time): the exchange's
            :meth:`Metrics.shell <mmradar.metrics.Metrics.shell>` in the service.
        session: shared aiohttp client session for REST snapshots.
        clock: wall and monotonic clocks, and every wait of the runner (back-off, pacing,
            the watchdog's interval, the REST budget): :class:`~mmradar.clock.SystemClock`
            by default.
        backoff_factory: makes a fresh reconnect-delay iterator.
        recorder: optional raw-frame recorder.
        open_timeout_s: websocket opening-handshake timeout.
        ping_interval_s: client keep-alive pings (detect dead TCP); ``None`` to disable.
        watchdog_interval_s: how often staleness, liveness and keep-alives are checked.
        resync_policy: the per-symbol resync back-off (defaults: :class:`ResyncPolicy`).
        heartbeat_window_s: connection liveness window; default the venue's
            ``heartbeat_window_s``.
        rng: jitter of the resync back-off.
        rest_timeout_s: a REST snapshot request with no complete answer by then fails.
        refused_retry_s: the least delay before reconnecting after the venue's name did not
            resolve (DNS) or its handshake answered HTTP 451/403 (a geo-block): such attempts
            are logged at most once per 5 minutes, with a count.
        stable_connection_s: a connection that stayed up this long resets the reconnect
            back-off; one that drops sooner (a venue that accepts and then closes, a sequence
            gap on every connect) keeps backing off, so it never reconnects in a tight loop.
    """

    def __init__(
        self,
        feed: FeedSettings,
        pipeline: FeedPipeline,
        observer: ShellObserver,
        session: aiohttp.ClientSession,
        *,
        clock: ShellClock | None = None,
        backoff_factory: Callable[[], Iterator[float]] = backoff,
        recorder: FrameRecorder | None = None,
        open_timeout_s: float = 10.0,
        ping_interval_s: float | None = 20.0,
        watchdog_interval_s: float = 1.0,
        resync_policy: ResyncPolicy | None = None,
        heartbeat_window_s: float | None = None,
        rng: random.Random | None = None,
        rest_timeout_s: float = 15.0,
        refused_retry_s: float = 60.0,
        stable_connection_s: float = 30.0,
    ) -> None:
        self.feed = feed
        self.pipeline = pipeline
        self.venue = pipeline.venue
        self.exchange = self.venue.name
        self._events = _ResyncEvents(pipeline.observer)
        pipeline.observer = self._events
        self.observer = observer
        self.session = session
        self.clock: ShellClock = clock or SystemClock()
        self.backoff_factory = backoff_factory
        self.recorder = recorder
        self.open_timeout_s = open_timeout_s
        self.ping_interval_s = ping_interval_s
        self.watchdog_interval_s = watchdog_interval_s
        self.policy = resync_policy or ResyncPolicy()
        self.heartbeat_window_s = heartbeat_window_s or self.venue.heartbeat_window_s
        self.rest_timeout_s = rest_timeout_s
        self.refused_retry_s = refused_retry_s
        self.stable_connection_s = stable_connection_s
        self._refused: dict[str, str] = {}  # plan name → why the venue refused us
        self._refused_log = LogLimiter(300.0)
        self.plans = self.venue.connections(feed.symbols, trades=feed.trades)
        self.budget = WeightBudget(
            self.venue.rest_weight_per_minute, window_s=self.venue.rest_window_s
        )
        self._last_fetch: dict[str, float] = {}  # symbol → monotonic time of its last request
        # Each connection gets an equal share of the venue's rate, so that it holds on every
        # connection and for the feed's IP as a whole (Coinbase counts per IP).
        rate = self.venue.max_messages_per_s
        share = rate / len(self.plans) if rate and self.plans else None
        self._pacers = {plan.name: MessagePacer(share) for plan in self.plans}
        self._resubscribed: dict[str, float] = {}  # symbol → monotonic time of its resubscribe
        self._backoff = ResyncBackoff(self.policy, rng)
        self._due: dict[str, tuple[float, str]] = {}  # symbol → (monotonic due time, kind)
        self._wake = asyncio.Event()  # a resync was scheduled
        self._parked: set[str] = set()
        self._after_reconnect: set[str] = set()  # books whose next resync a reconnect caused
        self._uncounted_fetch: set[str] = set()  # queued fetches of those: not streak attempts
        #: connection name → the frame parser of its current (or last) connection
        self.parsers: dict[str, FrameParser] = {}
        self._rest = self.venue.snapshot_source is SnapshotSource.REST
        self._next_step: dict[str, str] = {}  # symbol → what happens next (for the resync log)
        self._log_limit = LogLimiter(self.policy.log_interval_s)
        self._stale_since: dict[str, float] = {}  # symbol → monotonic time it went stale
        self._connection_class = _tracked(self.clock)
        self._snapshots: asyncio.Queue[str] = asyncio.Queue()
        self._snapshot_pending: set[str] = set()
        self._live: dict[str, tuple[_TrackedConnection, float]] = {}  # plan name → (ws, opened)
        self._close_reason: dict[str, str] = {}
        self._keepalive_at: dict[str, float] = {}  # plan name → last keep-alive sent (monotonic)
        self._depth_conn: dict[str, str] = {
            s: plan.name for plan in self.plans for s in plan.depth_symbols
        }

    async def run(self) -> None:
        """Run until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for i, plan in enumerate(self.plans):
                delay = i * self.venue.connect_interval_s
                tg.create_task(self._supervise(plan, delay), name=plan.name)
            tg.create_task(self._snapshot_worker(), name=f"{self.exchange}/snapshots")
            tg.create_task(self._resync_scheduler(), name=f"{self.exchange}/resyncs")
            tg.create_task(self._watchdog(), name=f"{self.exchange}/watchdog")

    # -- connections -----------------------------------------------------------------------

    async def _supervise(self, plan: ConnectionPlan, start_delay_s: float = 0.0) -> None:
        if start_delay_s > 0:
            await self.clock.sleep(start_delay_s)  # the venue's connection-rate limit
        delays = self.backoff_factory()
        while True:
            started = self.clock.monotonic()
            reason, established = await self._connect_once(plan)
            if established and self.clock.monotonic() - started >= self.stable_connection_s:
                delays = self.backoff_factory()  # reset only after a connection that held
            self.observer.reconnect(reason)
            delay = next(delays)
            refused = self._refused.pop(plan.name, None)
            if refused is None:
                log.info(
                    "%s: reconnecting %s in %.1f s (%s)", self.exchange, plan.name, delay, reason
                )
            else:
                # Refused for who or where we are (DNS, geo-block): retrying fast cannot help.
                delay = max(delay, self.refused_retry_s)
                left_out = self._refused_log.admit(plan.name, refused, self.clock.monotonic())
                if left_out is not None:
                    log.warning(
                        "%s: cannot connect %s: %s; retrying every %.0f s%s",
                        self.exchange, plan.name, refused, delay,
                        f" ({sum(left_out.values())} more attempts since the last line)"
                        if left_out else "",
                    )  # fmt: skip
            await self.clock.sleep(delay)

    async def _connect_once(self, plan: ConnectionPlan) -> tuple[str, bool]:
        """One connection's life. Returns the reconnect reason and whether it was established."""
        established = False
        cancelled = False
        reason, resync_reason = "error", "reconnect"
        try:
            async with connect(
                plan.url,
                create_connection=self._connection_class,
                open_timeout=self.open_timeout_s,
                ping_interval=self.ping_interval_s,
                ping_timeout=self.ping_interval_s,
                close_timeout=1.0,
                max_size=self.venue.max_frame_bytes,
            ) as ws:
                assert isinstance(ws, _TrackedConnection)
                established = True
                ws.last_bytes_at = self.clock.monotonic()
                self._on_open(plan, ws)
                for text in plan.subscribe:
                    await self._send_paced(plan.name, ws, text)
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
            refused = _refusal(exc)
            if refused is not None:
                self._refused[plan.name] = refused  # logged, rate-limited, by _supervise
            else:
                log.warning("%s: connection %s %s: %s", self.exchange, plan.name, kind, exc)
        finally:
            if established:
                self._on_close(plan, "shutdown" if cancelled else reason, record=not cancelled)
                if not cancelled:
                    if resync_reason == "reconnect" and self._rest:
                        # Each book's first resync after a reconnect is the connection's (its
                        # own back-off spaces it), not the book failing: it does not count
                        # towards the book's resync streak (_request_resync).
                        self._after_reconnect.update(plan.depth_symbols)
                    commands = self.pipeline.invalidate(plan.depth_symbols, resync_reason)
                    await self._dispatch(commands)
                    self._report()
        return reason, established

    async def _read(self, plan: ConnectionPlan, ws: _TrackedConnection) -> None:
        pipeline = self.pipeline
        parser = pipeline.new_parser()
        self.parsers[plan.name] = parser  # the flight recorder's checkpoints read it
        wall_ns = self.clock.wall_ns
        observe = self.observer.frame_processed
        recorder = self.recorder
        exchange = self.exchange
        perf = self.clock.perf_counter
        events = self._events.pending
        async for raw in ws:
            ts = wall_ns()
            t0 = perf()
            commands = pipeline.on_frame(parser, raw, ts)
            observe(perf() - t0)
            if recorder is not None:
                recorder.frame(exchange, plan.name, ts, raw)
            if commands:
                await self._dispatch(commands)
            if commands or events:
                self._report()

    def _on_open(self, plan: ConnectionPlan, ws: _TrackedConnection) -> None:
        self._live[plan.name] = (ws, self.clock.monotonic())
        self._update_connected()
        if self.venue.snapshot_source is SnapshotSource.STREAM:
            # The connection's subscribe frames bring fresh snapshots: resubscribes scheduled
            # for its books are moot.
            for symbol in plan.depth_symbols:
                if symbol in self._due:
                    self._unschedule(symbol)
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
        self.observer.connections(up, all_up=up == len(self.plans))

    # -- commands --------------------------------------------------------------------------

    async def _dispatch(self, commands: Sequence[Command]) -> None:
        resubscribe: dict[str, list[str]] = {}  # connection → symbols, in command order
        for command in commands:
            if isinstance(command, FetchSnapshot):
                if self._request_resync(command.symbol, _SNAPSHOT):
                    self._enqueue_snapshot(command.symbol)
            elif isinstance(command, Resubscribe):
                name = self._depth_conn.get(command.symbol)
                if name is None:
                    continue
                if name not in self._live:
                    # the connection is down: its reconnect subscribes afresh
                    self._next_step[command.symbol] = "resubscribed when the connection reopens"
                elif self._request_resync(command.symbol, _RESUBSCRIBE):
                    resubscribe.setdefault(name, []).append(command.symbol)
            else:
                raise _ReconnectRequested(command)
        for name, symbols in resubscribe.items():
            await self._resubscribe(name, symbols)

    def _request_resync(self, symbol: str, kind: str) -> bool:
        """Pass a resync request of ``symbol`` through its back-off.

        Returns:
            True to carry it out now; False when it is scheduled for later (or already is).
        """
        if symbol in self._due or (kind == _SNAPSHOT and symbol in self._snapshot_pending):
            self._next_step[symbol] = f"a {kind} is already scheduled"
            return False
        now = self.clock.monotonic()
        what = "fetching a REST snapshot" if kind == _SNAPSHOT else "resubscribing"
        if symbol in self._after_reconnect:
            self._after_reconnect.discard(symbol)
            if kind == _SNAPSHOT:
                # Not an attempt of the symbol's streak either: a book resynced after every
                # venue restart, and valid for minutes in between, must not be parked by one
                # fault that comes a few seconds after such a resync.
                self._uncounted_fetch.add(symbol)
            self._next_step[symbol] = what
            return True
        slot = self._backoff.request(symbol, now)
        if slot.parked:
            self._park(symbol, slot, kind)
        elif slot.due_at > now:
            self._next_step[symbol] = (
                f"{what} in {slot.due_at - now:.1f} s (back-off: {slot.streak} resyncs in a row)"
            )
        else:
            self._next_step[symbol] = what
            return True
        self._due[symbol] = (slot.due_at, kind)
        self._wake.set()
        return False

    def _park(self, symbol: str, slot: ResyncSlot, kind: str) -> None:
        self._parked.add(symbol)
        self.observer.park(symbol)
        self._next_step[symbol] = f"parked for {self.policy.park_s:.0f} s"
        log.warning(
            "%s %s: book failed to resync %d times in a row (last: %s): parked, the next %s"
            " in %.0f s (mmradar_book_parked; the other symbols are unaffected)",
            self.exchange, symbol, slot.streak, self._events.last_reason.get(symbol, "?"),
            kind, self.policy.park_s,
        )  # fmt: skip

    def _unschedule(self, symbol: str) -> None:
        self._due.pop(symbol, None)
        if symbol in self._parked:
            self._parked.discard(symbol)
            self.observer.unpark(symbol)

    def _enqueue_snapshot(self, symbol: str) -> None:
        if symbol not in self._snapshot_pending:
            self._snapshot_pending.add(symbol)
            self._snapshots.put_nowait(symbol)

    async def _resync_scheduler(self) -> None:
        """Carry out the resyncs the back-off delayed, when they are due."""
        while True:
            self._wake.clear()
            now = self.clock.monotonic()
            if not self._due:
                await self._wake.wait()
                continue
            next_at = min(at for at, _ in self._due.values())
            if next_at > now:
                await self._wait_woken(next_at - now)
                continue
            resubscribe: dict[str, list[str]] = {}
            for symbol, (at, kind) in list(self._due.items()):
                if at > now:
                    continue
                self._unschedule(symbol)
                if self.pipeline.instruments[symbol].valid:
                    continue  # healed meanwhile (a reconnect's subscribe)
                if kind == _SNAPSHOT:
                    self._enqueue_snapshot(symbol)
                else:
                    name = self._depth_conn.get(symbol)
                    if name is not None and name in self._live:
                        resubscribe.setdefault(name, []).append(symbol)
            for name, symbols in resubscribe.items():
                await self._resubscribe(name, symbols)

    async def _wait_woken(self, seconds: float) -> None:
        """Wait until a resync is scheduled or ``seconds`` of the clock have passed."""
        woken = asyncio.ensure_future(self._wake.wait())
        timer = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait((woken, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (woken, timer):
                task.cancel()
            await asyncio.gather(woken, timer, return_exceptions=True)

    async def _resubscribe(self, name: str, symbols: list[str]) -> None:
        """Ask the venue for fresh snapshots of ``symbols`` on connection ``name``."""
        live = self._live.get(name)
        if live is None:
            return  # the connection is down: its reconnect subscribes afresh
        now = self.clock.monotonic()
        for symbol in symbols:
            self._resubscribed[symbol] = now
            self._backoff.attempted(symbol, now)
        with contextlib.suppress(websockets.ConnectionClosed):
            for text in self.venue.resubscribe_many(symbols):
                await self._send_paced(name, live[0], text)

    async def _send_paced(self, name: str, ws: _TrackedConnection, text: str) -> None:
        """Send a client frame on connection ``name`` within the venue's message rate."""
        pacer = self._pacers[name]
        while (wait := pacer.delay(self.clock.monotonic())) > 0:
            await self.clock.sleep(wait)
        pacer.sent(self.clock.monotonic())
        await ws.send(text)

    # -- resync log ------------------------------------------------------------------------

    def _report(self) -> None:
        """Log the resyncs noted since the last call: symbol, reason, what happens next.

        Called after every pipeline call that may resync (and the handling of its commands),
        so the next steps noted meanwhile (:attr:`_next_step`) are this round's.
        """
        pending = self._events.pending
        steps = self._next_step
        events = list(pending)
        pending.clear()
        now = self.clock.monotonic()
        rest = self.venue.snapshot_source is SnapshotSource.REST
        for symbol, reason in events:
            step = steps.get(symbol)
            if reason == "stale":
                self._stale_since[symbol] = now
                step = (
                    f"no depth message for {self.feed.stale_after_seconds:g} s: reads invalid, "
                    "kept (no resync) until the next in-sequence depth message"
                )
            elif step is None:
                if reason == "venue_reset":
                    step = "the venue's new snapshot replaces it"
                elif rest:
                    step = "a REST snapshot is fetched with the next depth message"
                else:
                    step = "resubscribed when the connection reopens"
            elif step.startswith("parked"):
                continue  # the park has its own line
            left_out = self._log_limit.admit(symbol, reason, now)
            if left_out is None:
                continue
            level = logging.INFO if reason == "stale" else logging.WARNING
            verb = "book stale" if reason == "stale" else f"book invalidated ({reason})"
            log.log(
                level, "%s %s: %s; %s%s", self.exchange, symbol, verb, step, _left_out(left_out)
            )
        steps.clear()

    # -- REST snapshots --------------------------------------------------------------------

    async def _snapshot_worker(self) -> None:
        """One REST snapshot at a time. A failed fetch is asked for again by the next depth
        message, through the symbol's back-off (a failing symbol does not hold up the others)."""
        while True:
            symbol = await self._snapshots.get()
            self._snapshot_pending.discard(symbol)
            wait = self._last_fetch.get(symbol, -1e18) + self.venue.snapshot_refetch_delay_s
            if wait > self.clock.monotonic():
                await self.clock.sleep(wait - self.clock.monotonic())
            self._last_fetch[symbol] = self.clock.monotonic()
            if symbol in self._uncounted_fetch:
                self._uncounted_fetch.discard(symbol)
            else:
                self._backoff.attempted(symbol, self.clock.monotonic())
            ok = await self._fetch_snapshot(symbol)
            if not ok:
                self.pipeline.snapshot_failed(symbol)

    async def _fetch_snapshot(self, symbol: str) -> bool:
        request = self.venue.snapshot_request(symbol)
        while (wait := self.budget.delay(request.weight, self.clock.monotonic())) > 0:
            log.info("%s: REST weight budget: waiting %.1f s for %s", self.exchange, wait, symbol)
            await self.clock.sleep(wait)
        self.budget.spend(request.weight, self.clock.monotonic())
        report = self.observer.snapshot_request
        try:
            async with self.session.get(
                request.url, timeout=aiohttp.ClientTimeout(total=self.rest_timeout_s)
            ) as resp:
                body = await resp.read()
                used = self.venue.used_weight(resp.headers)
                if used is not None:
                    self.budget.venue_reports(used, self.clock.monotonic())
                self.observer.rest_weight_used(self.budget.used(self.clock.monotonic()))
                if resp.status in (418, 429):
                    retry_after = _retry_after(
                        resp.headers.get("Retry-After"), self.clock.wall_ns()
                    )
                    self.budget.block(retry_after, self.clock.monotonic())
                    report("rate_limited")
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
            report("error")
            log.warning(
                "%s: snapshot for %s failed: %s",
                self.exchange, symbol, _failure(exc, self.rest_timeout_s),
            )  # fmt: skip
            return False
        report("ok")
        log.info("%s: %s snapshot loaded", self.exchange, symbol)
        with contextlib.suppress(_ReconnectRequested):
            await self._dispatch(commands)
        self._report()
        return True

    # -- watchdog --------------------------------------------------------------------------

    async def _watchdog(self) -> None:
        stale_ns = int(self.feed.stale_after_seconds * 1e9)
        heartbeat_s = self.heartbeat_window_s
        max_age = self.venue.max_connection_age_s
        while True:
            await self.clock.sleep(self.watchdog_interval_s)
            self.pipeline.mark_stale(self.clock.wall_ns(), stale_ns)  # no resync: no commands
            self._report()
            self._watch_books()
            await self._retry_resubscribes()
            now = self.clock.monotonic()
            for name, (ws, opened) in list(self._live.items()):
                if now - ws.last_bytes_at > heartbeat_s:
                    self._drop(name, ws, "stale")
                elif max_age is not None and now - opened > max_age:
                    self._drop(name, ws, "max_age")
                else:
                    await self._keepalive(name, ws, opened)

    def _watch_books(self) -> None:
        """Log stale books that came back, and the resync lines the log limit left out."""
        now = self.clock.monotonic()
        instruments = self.pipeline.instruments
        for symbol, since in list(self._stale_since.items()):
            sync = instruments[symbol].sync
            if sync.stale:
                continue
            del self._stale_since[symbol]
            if sync.valid:
                log.info(
                    "%s %s: book valid again after %.0f s stale (its sequence continued; no "
                    "snapshot)", self.exchange, symbol, now - since,
                )  # fmt: skip
        for symbol in [s for s in self._due if instruments[s].valid]:
            self._unschedule(symbol)  # healed while waiting (a reconnect's subscribe)
        for symbol, left_out in self._log_limit.overdue(now):
            log.warning(
                "%s %s: %s not logged in the last %.0f s",
                self.exchange, symbol, _count_text(left_out), self.policy.log_interval_s,
            )  # fmt: skip

    async def _retry_resubscribes(self) -> None:
        """Resubscribe books whose snapshot never came (the request was refused or lost)."""
        if not self._resubscribed:
            return
        now = self.clock.monotonic()
        timeout = self.venue.resubscribe_timeout_s
        again: dict[str, list[str]] = {}
        for symbol, at in list(self._resubscribed.items()):
            sync = self.pipeline.instruments[symbol].sync
            if sync.valid or sync.stale:
                del self._resubscribed[symbol]
            elif now - at >= timeout and symbol not in self._due:
                name = self._depth_conn.get(symbol)
                if name is not None and name in self._live:
                    if self._request_resync(symbol, _RESUBSCRIBE):
                        again.setdefault(name, []).append(symbol)
                    self._next_step.pop(symbol, None)
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
        if self._pacers[name].delay(now) > 0:
            return  # the connection's rate is used up: the next watchdog tick sends it
        self._keepalive_at[name] = now
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send_paced(name, ws, text)

    def _drop(self, name: str, ws: _TrackedConnection, reason: str) -> None:
        log.warning("%s: dropping connection %s (%s)", self.exchange, name, reason)
        self._close_reason[name] = reason
        ws.transport.abort()
