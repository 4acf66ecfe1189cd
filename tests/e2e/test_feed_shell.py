"""The feed runner's venue-limit machinery over real websockets on 127.0.0.1.

A toy stream-snapshot venue declares the limits real venues declare in their modules
(application keep-alive, a client message rate, connection pacing, a resubscribe timeout); a
small websocket server records what the runner sends and answers subscriptions with snapshots
(or, when told to, ignores them). Venue-specific behaviour lives in the venue class only: the
runner is the production :class:`mmradar.feed.FeedRunner`.

The runner and the server read one :class:`~fake_clock.FakeClock`: every wait of the runner
(connection pacing, back-off, the watchdog, the message rate) is on fake time, which the test
moves from one sleeper to the next, so the times asserted are exact and nothing sleeps. The
venue's intervals are binary fractions (0.25 s, 0.0625 s) so that sums of them are exact too.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import aiohttp
import orjson
import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.server import ServerConnection, serve

from fake_clock import FakeClock
from mmradar.config import FeedSettings
from mmradar.feed import FeedRunner, WeightBudget
from mmradar.metrics import Metrics
from mmradar.model import BookEvent, BookKind, Event, Notice, NoticeKind
from mmradar.pipeline import FeedPipeline
from mmradar.venues.base import ConnectionPlan, FrameParser, SnapshotSource, Venue, Verdict

SYMBOLS = ("AAA", "BBB")


class _Parser:
    def parse(self, raw: bytes | str, ts_recv_ns: int) -> Sequence[Event]:
        if raw == "pong":
            return [Notice(NoticeKind.HEARTBEAT)]
        msg = orjson.loads(raw)
        kind = BookKind.SNAPSHOT if msg["type"] == "snap" else BookKind.DELTA
        n = msg["id"]
        return [BookEvent(msg["s"], kind, msg["b"], msg["a"], n, n, None, ts_recv_ns, ts_recv_ns)]


class ToyVenue(Venue):
    """One connection per symbol; subscribe = ``sub:<symbol>``; a gap resubscribes."""

    name: ClassVar[str] = "toy"
    snapshot_source: ClassVar[SnapshotSource] = SnapshotSource.STREAM
    keepalive_text: ClassVar[str | None] = "ping"
    keepalive_interval_s: ClassVar[float] = 0.25
    max_messages_per_s: ClassVar[float | None] = 4.0
    connect_interval_s: ClassVar[float] = 0.25
    resubscribe_timeout_s: ClassVar[float] = 0.5

    def connections(self, symbols: Sequence[str], *, trades: bool) -> list[ConnectionPlan]:
        assert self.ws_base is not None
        return [
            ConnectionPlan(
                name=f"toy#{i}",
                url=f"{self.ws_base}/{s}",
                depth_symbols=(s,),
                trade_symbols=(),
                # four harmless frames first: with the sub they exceed 4 frames/s
                subscribe=(*(f"hello:{k}" for k in range(4)), f"sub:{s}")
                if i == 0
                else (f"sub:{s}",),
            )
            for i, s in enumerate(symbols)
        ]

    def new_parser(self) -> FrameParser:
        return _Parser()

    def resubscribe(self, symbol: str) -> tuple[str, ...]:
        return (f"sub:{symbol}",)

    def first_after_snapshot(self, snapshot: BookEvent, delta: BookEvent) -> Verdict:
        return Verdict.APPLY if delta.last_id == snapshot.last_id + 1 else Verdict.GAP

    def next_in_sequence(self, previous: BookEvent, delta: BookEvent) -> Verdict:
        return Verdict.APPLY if delta.last_id == previous.last_id + 1 else Verdict.GAP


WATCHDOG_S = 0.0625  # the runner's watchdog interval
RETRY_S = 0.0625  # the reconnect back-off


@dataclass
class ToyServer:
    """Records every client frame with its (fake) arrival time; answers ``sub:`` with a
    snapshot."""

    clock: FakeClock
    received: list[tuple[float, str, str]] = field(default_factory=list)  # (t, path, frame)
    opened: list[tuple[float, str]] = field(default_factory=list)
    ignore_subs: int = 0  # ignore this many resubscriptions (after the first subscribe)
    conns: dict[str, ServerConnection] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    async def handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        self.opened.append((self.clock.monotonic(), path))
        symbol = path.strip("/")
        self.conns[symbol] = ws
        async for frame in ws:
            assert isinstance(frame, str)
            self.received.append((self.clock.monotonic(), path, frame))
            if frame == "ping":
                await ws.send("pong")
            elif frame.startswith("sub:"):
                subs = [f for _, p, f in self.received if p == path and f.startswith("sub:")]
                if len(subs) > 1 and self.ignore_subs > 0:
                    self.ignore_subs -= 1
                    continue
                await self.snapshot(symbol)

    async def snapshot(self, symbol: str) -> None:
        n = self.ids[symbol] = self.ids.get(symbol, 100) + 10
        await self.conns[symbol].send(
            orjson.dumps(
                {"type": "snap", "s": symbol, "id": n, "b": [["9", "1"]], "a": [["11", "1"]]}
            ).decode()
        )

    async def gap(self, symbol: str) -> None:
        n = self.ids[symbol] = self.ids[symbol] + 5  # skips ids: a gap
        await self.conns[symbol].send(
            orjson.dumps(
                {"type": "delta", "s": symbol, "id": n, "b": [["9", "2"]], "a": []}
            ).decode()
        )

    def frames(self, path: str, prefix: str = "") -> list[tuple[float, str]]:
        return [(t, f) for t, p, f in self.received if p == path and f.startswith(prefix)]


def _fast_backoff() -> Iterator[float]:
    while True:
        yield RETRY_S


async def _run(server: ToyServer, body: object) -> FeedRunner:
    async with serve(server.handle, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        venue = ToyVenue(ws_base=f"ws://127.0.0.1:{port}")
        feed = FeedSettings(exchange="toy", symbols=SYMBOLS, trades=False)
        metrics = Metrics(CollectorRegistry(), [("toy", SYMBOLS)])
        pipeline = FeedPipeline(venue, SYMBOLS, metrics.feed("toy", SYMBOLS))
        async with aiohttp.ClientSession() as session:
            runner = FeedRunner(
                feed, pipeline, metrics.shell("toy", SYMBOLS), session, clock=server.clock,
                backoff_factory=_fast_backoff, ping_interval_s=None,
                watchdog_interval_s=WATCHDOG_S, rng=random.Random(7),
            )  # fmt: skip
            task = asyncio.create_task(runner.run())
            try:
                await body(runner)  # type: ignore[operator]
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
    return runner


def _valid(runner: FeedRunner, symbol: str) -> bool:
    return runner.pipeline.instruments[symbol].valid


async def test_connections_are_paced_frames_rate_limited_and_keepalives_sent() -> None:
    clock = FakeClock()
    server = ToyServer(clock)

    async def body(runner: FeedRunner) -> None:
        await clock.run_until(lambda: all(_valid(runner, s) for s in SYMBOLS), within_s=5.0)
        await clock.advance(1.0)

    await _run(server, body)
    # the second connection opened connect_interval_s after the first
    (t0, p0), (t1, p1) = server.opened[:2]
    assert (p0, p1) == ("/AAA", "/BBB")
    assert (t0, t1) == (0.0, 0.25)
    # The venue's 4 frames/s are shared by the two connections: 2 per second each, so the
    # rate holds per connection and for both together; each window is 1.1 s (a second and a
    # margin for network jitter). AAA's five subscribe frames: a burst of two at once, two more
    # when the window has passed, the fifth a window later.
    sent = [(t, f) for t, f in server.frames("/AAA") if f != "ping"]
    assert sent == [
        (0.0, "hello:0"), (0.0, "hello:1"), (1.1, "hello:2"), (1.1, "hello:3"), (2.2, "sub:AAA")
    ]  # fmt: skip
    # application keep-alives every keepalive_interval_s, on a watchdog tick, answered by the
    # venue (a heartbeat notice); they count against the connection's share like every other
    # frame: BBB's subscribe at 0.25 and its first ping use up its share of the window that
    # follows, so the next ping waits for the first frame to leave the window (1.35 s) and
    # goes on the next watchdog tick.
    bbb = server.frames("/BBB")
    assert bbb[:4] == [(0.25, "sub:BBB"), (0.5, "ping"), (1.375, "ping"), (1.625, "ping")]
    pings = [t for t, f in bbb if f == "ping"]
    assert len(pings) >= 2
    assert min(b - a for a, b in itertools.pairwise(pings)) >= ToyVenue.keepalive_interval_s
    for path in ("/AAA", "/BBB"):
        times = [t for t, _ in server.frames(path)]
        assert all(b - a >= 1.0 for a, b in zip(times, times[2:], strict=False)), path
    both = sorted(t for t, _, _ in server.received)
    assert all(b - a >= 1.0 for a, b in zip(both, both[4:], strict=False))


async def test_a_resubscribe_that_gets_no_snapshot_is_sent_again() -> None:
    clock = FakeClock()
    server = ToyServer(clock, ignore_subs=1)

    async def body(runner: FeedRunner) -> None:
        await clock.run_until(lambda: _valid(runner, "AAA"), within_s=5.0)
        await clock.advance(2.0)  # let the subscribe burst's rate window pass
        await server.gap("AAA")
        await clock.run_until(lambda: not _valid(runner, "AAA"), within_s=1.0)
        # the first resubscribe is ignored by the venue: the book stays invalid ...
        await clock.advance(0.25)
        assert not _valid(runner, "AAA")
        # ... until the runner asks again after resubscribe_timeout_s
        await clock.run_until(lambda: _valid(runner, "AAA"), within_s=3.0)

    runner = await _run(server, body)
    subs = server.frames("/AAA", "sub:")
    assert len(subs) == 3  # subscribe, ignored resubscribe, retried resubscribe
    # The subscribe went at 2.2 s, the gap arrived at 4.2 s. The resubscribe waits for AAA's
    # share of the message rate (its keep-alives at 3.3125 and 3.5625 s fill the 1.1-s
    # window): 4.4125 s. No snapshot by 4.9125 s (resubscribe_timeout_s after the request):
    # asked again, through the symbol's back-off (the second resync in a row: 0.5-1 s, seeded
    # jitter) and the rate (the resubscribe at 4.4125 and a keep-alive at 4.6875 s fill it):
    # 5.5125 s.
    assert [t for t, _ in subs] == pytest.approx([2.2, 4.4125, 5.5125])
    assert subs[2][0] - subs[1][0] >= ToyVenue.resubscribe_timeout_s
    assert runner.pipeline.instruments["AAA"].book.best_bid_price() == 9.0


def test_weight_budget_counts_over_the_venues_window() -> None:
    budget = WeightBudget(40, window_s=2.0)  # OKX books: 40 per 2 s, half for us
    for i in range(20):
        assert budget.delay(1, now=100.0 + i * 0.01) == 0.0
        budget.spend(1, now=100.0 + i * 0.01)
    wait = budget.delay(1, now=100.5)
    assert wait == pytest.approx(1.5)  # the first request leaves the 2-s window at 102.0
    assert budget.delay(1, now=102.01) == 0.0
    minute = WeightBudget(6000)
    assert minute.window_s == 60.0 and minute.cap == 3000


async def test_a_connection_that_drops_at_once_keeps_backing_off() -> None:
    """A venue that accepts and closes at once (or gaps on every connect) is retried with a
    growing delay: only a connection that held for ``stable_connection_s`` resets the back-off."""
    clock = FakeClock()
    opened: list[float] = []

    async def slam(ws: ServerConnection) -> None:
        opened.append(clock.monotonic())
        await ws.close(1011, "go away")

    def doubling() -> Iterator[float]:
        delay = RETRY_S
        while True:
            yield delay
            delay *= 2

    async with serve(slam, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        venue = ToyVenue(ws_base=f"ws://127.0.0.1:{port}")
        feed = FeedSettings(exchange="toy", symbols=("AAA",), trades=False)
        metrics = Metrics(CollectorRegistry(), [("toy", ("AAA",))])
        pipeline = FeedPipeline(venue, ("AAA",), metrics.feed("toy", ("AAA",)))
        async with aiohttp.ClientSession() as session:
            runner = FeedRunner(
                feed, pipeline, metrics.shell("toy", ("AAA",)), session, clock=clock,
                backoff_factory=doubling, ping_interval_s=None, watchdog_interval_s=WATCHDOG_S,
            )  # fmt: skip
            task = asyncio.create_task(runner.run())
            try:
                await clock.run_until(lambda: len(opened) >= 5, within_s=10.0)
            finally:
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
    gaps = [b - a for a, b in itertools.pairwise(opened[:5])]
    # every wait twice the one before; a back-off reset after each established connection
    # would give RETRY_S every time.
    assert gaps == [RETRY_S, 2 * RETRY_S, 4 * RETRY_S, 8 * RETRY_S]
