"""A fault-injecting proxy on 127.0.0.1 between the service and any fake venue.

The service is configured with the proxy's base URL as its ``ws_url`` and ``rest_url``; the
proxy forwards every websocket connection (same path and query) and every REST request to the
venue, frame for frame, and can on demand:

* rewrite the next server frame that matches (a malformed level, a crossed level), or the
  client's frames (a subscription to a symbol that does not exist);
* send frames of its own (garbage, unknown JSON, a duplicate or an old frame from the
  connection's history, a frame of tens of MiB);
* hold every server frame back and release them at once (a burst after a pause), or go
  half-open (stop forwarding in both directions and stop answering pings, TCP left open);
* abort every connection (TCP reset) or refuse handshakes with an HTTP status (451, 403);
* answer REST requests with a status (500, 429/418 with ``Retry-After``), hang, or serve an
  older snapshot than the stream has moved past.

The truth stays the venue's: whatever the proxy changes, the service must notice and resync to
the venue's book.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType, web

Rewrite = Callable[[str], str | None]
"""A frame rewrite: the new text, or None to leave this frame alone (the next one is tried)."""


@dataclass
class _Conn:
    client: web.WebSocketResponse
    request: web.Request
    upstream: aiohttp.ClientWebSocketResponse
    history: deque[str] = field(default_factory=lambda: deque(maxlen=500))
    #: frames to the service, in order (one writer task sends them)
    out: asyncio.Queue[str | bytes] = field(default_factory=asyncio.Queue)


@dataclass
class RestFault:
    """One REST answer the proxy gives instead of the venue's.

    ``kind``: ``status`` (``status`` with ``headers``), ``hang`` (no answer for ``seconds``),
    ``stale`` (the first snapshot body the proxy saw for this path and symbol).
    """

    kind: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class FaultProxy:
    """The proxy in front of one venue (``ws_base``, ``rest_base``: the venue's URLs)."""

    def __init__(self, ws_base: str, rest_base: str | None = None) -> None:
        self.ws_base = ws_base.rstrip("/")
        self.rest_base = (rest_base or ws_base.replace("ws://", "http://")).rstrip("/")
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0
        self.conns: list[_Conn] = []
        self.rewrites: deque[Rewrite] = deque()
        self.client_rewrite: Rewrite | None = None
        self.rest_faults: deque[RestFault] = deque()
        self.refuse_status: int | None = None
        self.holding = False
        self._flowing = asyncio.Event()  # set unless half-open
        self._flowing.set()
        self._held: list[tuple[_Conn, str | bytes]] = []
        self._first_bodies: dict[str, bytes] = {}
        #: REST requests answered (faults included) and websocket handshakes accepted
        self.rest_requests = 0
        self.accepted = 0
        self.refused = 0
        self.frames = 0  # server frames forwarded (or injected)

    @property
    def half_open(self) -> bool:
        """While true, server frames are read but stalled: nothing reaches the client."""
        return not self._flowing.is_set()

    @half_open.setter
    def half_open(self, value: bool) -> None:
        if value:
            self._flowing.clear()
        else:
            self._flowing.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        self.abort()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    @property
    def url_ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def url_rest(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults ------------------------------------------------------------------------------

    def inject(self, text: str | bytes) -> None:
        """Send ``text`` to every open connection (in order with the forwarded frames)."""
        for conn in list(self.conns):
            self._send(conn, text)

    def abort(self) -> None:
        """TCP reset of every connection (no close frame)."""
        for conn in list(self.conns):
            if conn.request.transport is not None:
                conn.request.transport.abort()

    def release(self) -> int:
        """Stop holding; send every held frame at once. Returns how many."""
        self.holding = False
        held, self._held = self._held, []
        for conn, data in held:
            self._send(conn, data)
        return len(held)

    def history(self, contains: str) -> list[str]:
        """Server frames forwarded so far (newest last) containing ``contains``."""
        out: list[str] = []
        for conn in self.conns:
            out.extend(f for f in conn.history if contains in f)
        return out

    # -- internals ---------------------------------------------------------------------------

    def _send(self, conn: _Conn, data: str | bytes) -> None:
        self.frames += 1
        conn.out.put_nowait(data)  # behind every frame queued before it

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        return await self._rest(request)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_status is not None:
            self.refused += 1
            return web.Response(status=self.refuse_status, text="refused by the fault proxy")
        assert self._session is not None
        try:
            upstream = await self._session.ws_connect(
                f"{self.ws_base}{request.path_qs}", max_msg_size=0, autoping=True
            )
        except aiohttp.ClientError:
            return web.Response(status=502)
        client = web.WebSocketResponse(max_msg_size=0, autoping=False)
        await client.prepare(request)
        self.accepted += 1
        conn = _Conn(client, request, upstream)
        self.conns.append(conn)

        async def down() -> None:  # venue → service
            async for msg in upstream:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                data: str | bytes = msg.data
                text = data if isinstance(data, str) else data.decode("utf-8", "replace")
                conn.history.append(text)
                for i, rewrite in enumerate(self.rewrites):
                    new = rewrite(text)
                    if new is not None:
                        del self.rewrites[i]
                        data = new if isinstance(data, str) else new.encode()
                        break
                await self._flowing.wait()  # held while half-open
                if self.holding:
                    self._held.append((conn, data))
                    continue
                self._send(conn, data)

        async def writer() -> None:
            while True:
                data = await conn.out.get()
                if isinstance(data, str):
                    await client.send_str(data)
                else:
                    await client.send_bytes(data)

        async def up() -> None:  # service → venue
            async for msg in client:
                if self.half_open:
                    continue  # neither forwarded nor answered (pings included)
                if msg.type == WSMsgType.PING:
                    await client.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    data = msg.data
                    if self.client_rewrite is not None:
                        new = self.client_rewrite(data)
                        data = data if new is None else new
                    await upstream.send_str(data)
                elif msg.type == WSMsgType.BINARY:
                    await upstream.send_bytes(msg.data)

        tasks = [
            asyncio.create_task(down()),
            asyncio.create_task(up()),
            asyncio.create_task(writer()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            with contextlib.suppress(ValueError):
                self.conns.remove(conn)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await upstream.close()
            with contextlib.suppress(Exception):
                await client.close()
        return client

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        self.rest_requests += 1
        key = request.path_qs
        if self.rest_faults:
            fault = self.rest_faults.popleft()
            if fault.kind == "status":
                return web.Response(
                    status=fault.status, headers=fault.headers, text='{"code":-1,"msg":"fault"}'
                )
            if fault.kind == "hang":
                # The fault itself, not synchronisation: the request is held for its seconds.
                await asyncio.sleep(fault.seconds)
            elif fault.kind == "stale" and key in self._first_bodies:
                return web.Response(body=self._first_bodies[key], content_type="application/json")
        async with self._session.get(f"{self.rest_base}{request.path_qs}") as resp:
            body = await resp.read()
            headers = {
                k: v
                for k, v in resp.headers.items()
                if k.lower() in ("content-type", "retry-after") or k.lower().startswith("x-")
            }
            if resp.status == 200:
                self._first_bodies.setdefault(key, body)
            return web.Response(body=body, status=resp.status, headers=headers)
