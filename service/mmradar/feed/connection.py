"""The feed's websocket connections: reconnect back-off, failure classification, the tracked
client connection (when bytes last arrived) and what the runner tells a frame recorder."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import ClassVar, Protocol

import websockets
from websockets.asyncio.client import ClientConnection

from ..clock import Clock, SystemClock
from ..pipeline import Reconnect
from ..venues.base import ConnectionPlan


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
    def contracts(self, exchange: str, ts_ns: int, bodies: Sequence[bytes]) -> None: ...


class _TrackedConnection(ClientConnection):
    """A client connection that notes when any bytes (frames, pings, pongs) last arrived.

    ``monotonic`` is the feed's injected clock (a subclass per runner, :func:`_tracked`).
    Leaving the ``async with`` on purpose — shutdown (cancellation) or a reconnect the feed
    asked for — closes with 1000 (normal closure), not websockets' 1011 for any exception.
    """

    last_bytes_at = 0.0
    monotonic: ClassVar[Callable[[], float]] = SystemClock().monotonic

    def data_received(self, data: bytes) -> None:
        self.last_bytes_at = type(self).monotonic()
        super().data_received(data)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None or issubclass(exc_type, asyncio.CancelledError):
            await self.close(1000, "shutdown" if exc_type is not None else "")
        elif issubclass(exc_type, _ReconnectRequested):
            await self.close(1000, "reconnecting")
        else:
            await super().__aexit__(exc_type, exc_value, traceback)


def _tracked(clock: Clock) -> type[_TrackedConnection]:
    """A :class:`_TrackedConnection` class reading ``clock``."""

    class Tracked(_TrackedConnection):
        monotonic: ClassVar[Callable[[], float]] = clock.monotonic

    return Tracked


class _ReconnectRequested(Exception):
    def __init__(self, command: Reconnect) -> None:
        super().__init__(command.reason)
        self.command = command


def _refusal(exc: BaseException) -> str | None:
    """Why connecting cannot work from here (DNS, geo-block), or None for other failures."""
    if isinstance(exc, websockets.InvalidStatus):
        status = exc.response.status_code
        if status == 451:
            return "HTTP 451 Unavailable For Legal Reasons at the handshake (geo-blocked)"
        if status == 403:
            return "HTTP 403 Forbidden at the handshake (this location or IP is refused)"
        return None
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed ({exc.strerror or exc})"
    return None
