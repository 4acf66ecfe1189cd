"""The embedded Binance venue's websocket protocol: where a connection lands (URL routes), the
SUBSCRIBE/UNSUBSCRIBE/property control messages and the per-connection incoming-rate limit."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection

from .capture import Market
from .loopback import Connection, LoopbackVenue

# One logger for the whole venue (see binance.py).
logger = logging.getLogger("mmradar.embedded.binance")

Clock = Callable[[], int]
"""Wall clock in ns since the epoch (``time.time_ns``)."""

_FAST_HIGH_WATER = 1000
_CONTROL_METHODS = (
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST_SUBSCRIPTIONS",
    "SET_PROPERTY",
    "GET_PROPERTY",
)


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a websocket connection landed."""

    root: str  # "" (spot), "public" or "market" (USD-M)
    combined: bool  # wrap events as {"stream", "data"}
    streams: tuple[str, ...]  # streams named in the URL


class _Client(Connection):
    """One websocket connection: where it landed and its subscriptions."""

    def __init__(self, ws: ServerConnection, route: _Route, max_frames: int) -> None:
        super().__init__(ws, max_frames, high_water=max(1, min(_FAST_HIGH_WATER, max_frames // 2)))
        self.root = route.root
        self.combined = route.combined
        self.subscriptions: dict[str, None] = {}  # ordered set, as listed to the client
        self.served: set[str] = set()  # the subset this venue sends events for
        self.incoming: deque[float] = deque()


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


class _WebsocketProtocol(LoopbackVenue[_Client]):
    """The websocket side of :class:`~mmradar.embedded.binance.EmbeddedBinance`."""

    _market: Market
    _max_queue_frames: int
    _max_incoming_per_s: int
    _subscribers: dict[str, set[_Client]]
    _stream_roots: dict[str, frozenset[str]]

    # -- websocket connections ---------------------------------------------------------------

    def _ws_route(self, path: str, query: str) -> _Route | None:
        root = ""
        if self._market == "usdm":
            head, sep, rest = path.lstrip("/").partition("/")
            if head not in ("public", "market"):
                return None  # legacy un-prefixed paths: decommissioned
            root, path = head, "/" + rest if sep else "/"
        if path in ("/ws", "/ws/"):
            return _Route(root, combined=False, streams=())
        if path.startswith("/ws/"):
            names = urllib.parse.unquote(path[len("/ws/") :]).split("/")
            return _Route(root, combined=False, streams=tuple(n for n in names if n))
        if path == "/stream":
            values = urllib.parse.parse_qs(query).get("streams", [])
            names = [n for value in values for n in value.split("/") if n]
            return _Route(root, combined=True, streams=tuple(names))
        return None

    def _serves(self, client: _Client, stream: str) -> bool:
        roots = self._stream_roots.get(stream)
        return roots is not None and client.root in roots

    def _subscribe(self, client: _Client, streams: Iterable[str]) -> None:
        for stream in streams:
            client.subscriptions[stream] = None
            if self._serves(client, stream):
                client.served.add(stream)
                self._subscribers.setdefault(stream, set()).add(client)
        self._refresh_gate()

    def _unsubscribe(self, client: _Client, streams: Iterable[str]) -> None:
        for stream in streams:
            client.subscriptions.pop(stream, None)
            client.served.discard(stream)
            subscribers = self._subscribers.get(stream)
            if subscribers is not None:
                subscribers.discard(client)
        self._refresh_gate()

    def _abandon(self, client: _Client) -> None:
        """Stop sending events to a client that is being closed."""
        self._unsubscribe(client, list(client.subscriptions))
        super()._abandon(client)

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        path, _, query = request.path.partition("?")
        route = self._ws_route(path, query)
        assert route is not None  # process_request refused the others
        client = _Client(ws, route, self._max_queue_frames)
        logger.debug("embedded binance %s: connection %s", self._market, request.path)
        self._subscribe(client, route.streams)
        await self._serve(client, self._on_message)

    def _on_message(self, client: _Client, message: str | bytes) -> None:
        if self._rate_exceeded(client):
            self._close(client, 1008, "Too many requests")
            return
        self._on_control(client, message)

    def _rate_exceeded(self, client: _Client) -> bool:
        if self._max_incoming_per_s <= 0:
            return False
        now = asyncio.get_running_loop().time()
        client.incoming.append(now)
        while client.incoming and client.incoming[0] <= now - 1.0:
            client.incoming.popleft()
        return len(client.incoming) > self._max_incoming_per_s

    def _on_control(self, client: _Client, message: str | bytes) -> None:
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError as exc:
            error = {
                "code": 3,
                "msg": f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}",
            }
            self._push(client, _dumps({"error": error}))
            if self._market == "usdm":
                self._close(client, 1008, "Invalid JSON")
            return
        reply = self._control_reply(client, request)
        self._push(client, _dumps(reply))

    def _control_reply(self, client: _Client, request: Any) -> dict[str, Any]:
        def error(code: int, msg: str, rid: Any = None) -> dict[str, Any]:
            return {"error": {"code": code, "msg": msg}, "id": rid}

        if not isinstance(request, dict):
            return error(2, "Invalid request: expected a JSON object")
        rid = request.get("id")
        valid_id = "id" in request and (
            rid is None
            or (isinstance(rid, int) and not isinstance(rid, bool) and -(2**63) <= rid < 2**63)
            or (isinstance(rid, str) and len(rid) <= 36 and rid.isalnum())
        )
        if not valid_id:
            return error(2, "Invalid request: request ID must be an unsigned integer")
        method = request.get("method")
        if method is None:
            return error(2, "Invalid request: missing field `method`", rid)
        if method not in _CONTROL_METHODS:
            expected = ", ".join(f"`{m}`" for m in _CONTROL_METHODS)
            return error(
                2, f"Invalid request: unknown variant `{method}`, expected one of {expected}", rid
            )
        params = request.get("params", [])
        if not isinstance(params, list):
            return error(2, "Invalid request: params must be an array", rid)
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not all(isinstance(p, str) for p in params):
                return error(2, "Invalid request: invalid stream name", rid)
            if method == "SUBSCRIBE":
                self._subscribe(client, params)
            else:
                self._unsubscribe(client, params)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(client.subscriptions), "id": rid}
        if not params or not isinstance(params[0], str):
            return error(2, "Invalid request: property name must be a string", rid)
        if params[0] != "combined":
            return error(0, "Unknown property", rid)
        if method == "GET_PROPERTY":
            if len(params) > 1:
                return error(2, "Invalid request: too many parameters", rid)
            return {"result": client.combined, "id": rid}
        if len(params) != 2:
            return error(2, "Invalid request: too many parameters", rid)
        if not isinstance(params[1], bool):
            return error(1, "Invalid value type: expected Boolean", rid)
        client.combined = params[1]
        return {"result": None, "id": rid}
