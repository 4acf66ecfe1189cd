"""What every embedded venue shares: a websockets server on loopback and its connection machinery.

Each embedded venue (:mod:`.binance` here; the test suite's fake Coinbase, Kraken, OKX and
Bybit venues) speaks its own protocol: message shapes, sequence and checksum rules, subscribe
handling. Everything below the protocol is the same for all of them and lives here:

* binding the port, stopping (tasks first, then every connection and the listening socket), the
  async context manager and the base URLs;
* per connection (:class:`Connection`), a send queue drained by one writer task, the only task
  that writes to the socket, so frames go out in the order they were queued; a queue bound
  (a client that falls further behind is dropped as a slow consumer); high/low-water marks a
  fast replay can wait on;
* the pause gate: the venue's generator or replay runs only while :meth:`LoopbackVenue._active`
  (some connection subscribes) and the venue is not :meth:`~LoopbackVenue.pause`\\ d;
* fault injection common to every venue: :meth:`~LoopbackVenue.drop_connections` (TCP abort),
  :meth:`~LoopbackVenue.close_connections` (a close frame after the queued frames),
  :meth:`~LoopbackVenue.send_raw`, :meth:`~LoopbackVenue.pause` /
  :meth:`~LoopbackVenue.resume`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["CloseFrame", "Connection", "LoopbackVenue"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """Send-queue item: close the connection with ``code`` and ``reason`` after the frames
    queued before it."""

    code: int
    reason: str


class Connection:
    """One client connection's sending side: a queue of text frames and its marks.

    Venues subclass it to add their per-connection protocol state (subscriptions, sequence
    counters) and override :meth:`forget` to clear it.

    Args:
        ws: the server side of the websocket.
        max_frames: queue bound; a connection with this many text frames queued is a slow
            consumer (:meth:`push` returns False). ``None``: unbounded.
        high_water: queued frames from which :attr:`below_low_water` is cleared (a fast replay
            waits on it); the low-water mark is a quarter of it. Default: half the bound.
    """

    def __init__(
        self, ws: ServerConnection, max_frames: int | None = None, high_water: int | None = None
    ) -> None:
        self.ws = ws
        self.max_frames = sys.maxsize if max_frames is None else max_frames
        if high_water is None:
            high_water = max(1, self.max_frames // 2)
        self.high_water = high_water
        self.low_water = high_water // 4
        self.frames: deque[bytes | CloseFrame] = deque()
        self.wakeup = asyncio.Event()
        #: set while the queue is at or below the low-water mark.
        self.below_low_water = asyncio.Event()
        self.below_low_water.set()
        #: a fast replay stopped waiting for this connection (until it drains to low water).
        self.stalled = False
        #: abandoned by the venue: nothing more is queued, its frames are not handled.
        self.closing = False
        #: ``time.monotonic()`` when a frame was last queued (or the connection opened).
        self.last_push = time.monotonic()

    def push(self, frame: bytes | CloseFrame) -> bool:
        """Queue a frame (nothing once :attr:`closing`); False if the queue is full."""
        if self.closing:
            return True
        if isinstance(frame, bytes) and len(self.frames) >= self.max_frames:
            return False
        self.frames.append(frame)
        self.last_push = time.monotonic()
        self.wakeup.set()
        if len(self.frames) >= self.high_water:
            self.below_low_water.clear()
        return True

    def forget(self) -> None:
        """Drop the protocol state (subscriptions) of a connection the venue abandons."""


C = TypeVar("C", bound=Connection)


class LoopbackVenue(Generic[C]):
    """Base of the embedded venues: the server, the connections and the pause gate.

    A venue binds with :meth:`_bind`, builds its :class:`Connection` subclass in its websocket
    handler and passes it to :meth:`_serve` with its message handler; it queues frames with
    :meth:`_push`, and gates its generator or replay on :meth:`_hold`, overriding
    :meth:`_active` to say when a connection wants what it releases.

    Args:
        host: interface to bind (loopback in every use).
        port: port to bind; 0 picks a free one (see :attr:`ws_base` for the bound one).
        label: how lifecycle log lines name the venue (``"coinbase"``, ``"binance spot"``).
        paused: start with the gate held (:meth:`resume` opens it).
    """

    def __init__(self, host: str, port: int, label: str, *, paused: bool = False) -> None:
        self._host = host
        self._port = port
        self._label = label
        self._bound_port = 0
        self._server: Server | None = None
        #: background tasks (replay, generator, heartbeats), cancelled by :meth:`stop`.
        self._tasks: list[asyncio.Task[None]] = []
        #: the open connections (abandoned ones are removed at once).
        self._clients: set[C] = set()
        self._paused = paused
        self._may_run = asyncio.Event()
        self._n_accepted = 0
        self._n_frames = 0
        self._n_slow = 0

    async def start(self) -> None:
        """Bind the port (:meth:`_bind`) and start the venue's tasks."""
        raise NotImplementedError

    async def _bind(self, handler: Any, **options: Any) -> None:
        """Start the websockets server on the venue's host and port with ``options``."""
        self._server = await serve(
            handler,
            self._host,
            self._port,
            compression=None,
            logger=logging.getLogger(f"{type(self).__module__}.ws"),
            **options,
        )
        self._bound_port = int(next(iter(self._server.sockets)).getsockname()[1])

    async def stop(self) -> None:
        """Stop the tasks, close every connection and the listening socket.

        Idempotent; returns when every task of the venue has finished.
        """
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        server, self._server = self._server, None
        if server is not None:
            server.close(close_connections=True)
            await server.wait_closed()
            logger.info("embedded %s stopped", self._label)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def ws_base(self) -> str:
        """Websocket base URL ``ws://127.0.0.1:PORT``; the client appends the venue's paths."""
        return f"ws://{self._host}:{self._bound_port}"

    @property
    def rest_base(self) -> str:
        """REST base URL ``http://127.0.0.1:PORT`` (same port; venues without REST answer 404)."""
        return f"http://{self._host}:{self._bound_port}"

    # -- fault injection -------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Abort every connection's TCP transport: no close frame (clients see 1006)."""
        for client in list(self._clients):
            self._abandon(client)
            client.ws.transport.abort()
        logger.info("embedded %s: dropped all connections", self._label)

    def close_connections(self, code: int = 1001, reason: str = "going away") -> None:
        """Close every connection with a close frame, after the frames queued before it."""
        for client in list(self._clients):
            self._close(client, code, reason)

    def send_raw(self, text: str) -> None:
        """Send ``text`` verbatim as one text frame to every open connection."""
        frame = text.encode()
        for client in list(self._clients):
            self._push(client, frame)

    def pause(self) -> None:
        """Hold the venue's generator or replay before its next step (connections stay open;
        heartbeats and control replies continue)."""
        self._paused = True
        self._refresh_gate()

    def resume(self) -> None:
        """Continue a paused generator or replay."""
        self._paused = False
        self._refresh_gate()

    # -- the gate ----------------------------------------------------------------------------

    def _active(self) -> bool:
        """Whether some connection wants what the venue releases (venues narrow it down)."""
        return any(not c.closing for c in self._clients)

    def _refresh_gate(self) -> None:
        """Open the gate while :meth:`_active` and not paused; call after a subscription
        change."""
        if self._active() and not self._paused:
            self._may_run.set()
        else:
            self._may_run.clear()

    def _pace_time(self) -> float:
        """The clock the venue paces on, in seconds (the event loop's; a venue may pace on
        another, e.g. a test's fake clock)."""
        return asyncio.get_running_loop().time()

    async def _hold(self) -> float:
        """Wait while the gate is closed; return the seconds spent waiting (on
        :meth:`_pace_time`)."""
        if self._may_run.is_set():
            return 0.0
        began = self._pace_time()
        await self._may_run.wait()
        return self._pace_time() - began

    async def _flushed(self) -> None:
        """Wait until every open connection's send queue is empty."""
        while any(c.frames for c in self._clients):
            await asyncio.sleep(0.005)

    # -- connections -------------------------------------------------------------------------

    async def _serve(self, client: C, on_message: Callable[[C, str | bytes], None]) -> None:
        """Run one connection: register it, start its writer, hand every frame it sends to
        ``on_message`` (none once it is :attr:`~Connection.closing`) until it closes, then
        abandon it and stop the writer."""
        self._clients.add(client)
        self._n_accepted += 1
        self._refresh_gate()  # it may hold subscriptions already (streams named in the URL)
        name = f"embedded-{self._label.replace(' ', '-')}-writer"
        writer = asyncio.create_task(self._write(client), name=name)
        try:
            async for message in client.ws:
                if not client.closing:
                    on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            self._abandon(client)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    def _push(self, client: C, frame: bytes | CloseFrame) -> None:
        """Queue ``frame``; a client whose queue is full is dropped as a slow consumer."""
        if not client.push(frame):
            self._n_slow += 1
            logger.info(
                "embedded %s: dropping a slow client (%d frames queued)",
                self._label,
                len(client.frames),
            )
            self._abandon(client)
            client.ws.transport.abort()

    def _close(self, client: C, code: int, reason: str) -> None:
        """Close ``client`` with a close frame after its queued frames, and abandon it."""
        client.push(CloseFrame(code, reason))
        self._abandon(client)

    def _abandon(self, client: C) -> None:
        """Stop sending to a client that is being closed (its queued frames still go out)."""
        client.forget()
        client.closing = True
        client.below_low_water.set()  # a fast replay must not wait for it any more
        self._clients.discard(client)
        self._refresh_gate()

    async def _write(self, client: C) -> None:
        """Send a client's queued frames in order; the only task writing to its socket."""
        ws = client.ws
        try:
            while True:
                if not client.frames:
                    client.wakeup.clear()
                    await client.wakeup.wait()
                    continue
                item = client.frames.popleft()
                if len(client.frames) <= client.low_water:
                    client.below_low_water.set()
                    client.stalled = False
                if isinstance(item, CloseFrame):
                    await ws.close(item.code, item.reason)
                    return
                await ws.send(item, text=True)
                self._n_frames += 1
        except ConnectionClosed:
            pass
        finally:
            client.frames.clear()
            client.below_low_water.set()
