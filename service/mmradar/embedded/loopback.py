"""What every embedded venue shares: one websockets server on loopback and its background tasks.

Each fake venue (:mod:`.binance`, :mod:`.coinbase`, :mod:`.kraken`, :mod:`.okx`, :mod:`.bybit`)
speaks its own protocol; binding the port, stopping (tasks first, then every connection and the
listening socket), the async context manager and the base URLs are the same for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import TracebackType
from typing import Any, Self

from websockets.asyncio.server import Server, serve

__all__ = ["LoopbackVenue"]

logger = logging.getLogger(__name__)


class LoopbackVenue:
    """Base of the embedded venues.

    Args:
        host: interface to bind (loopback in every use).
        port: port to bind; 0 picks a free one (see :attr:`ws_base` for the bound one).
        label: how lifecycle log lines name the venue (``"coinbase"``, ``"binance spot"``).
    """

    def __init__(self, host: str, port: int, label: str) -> None:
        self._host = host
        self._port = port
        self._label = label
        self._bound_port = 0
        self._server: Server | None = None
        #: background tasks (replay, generator, heartbeats), cancelled by :meth:`stop`.
        self._tasks: list[asyncio.Task[None]] = []

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
