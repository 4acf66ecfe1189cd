"""The HTTP endpoint: ``/metrics`` (Prometheus exposition), ``/healthz`` and ``/readyz``.

* ``/metrics`` — the injected registry, in the Prometheus text format (or OpenMetrics when the
  scraper asks for it).
* ``/healthz`` — liveness: 200 while the process serves requests.
* ``/readyz`` — readiness: 200 when every configured book is valid, else 503; the JSON body
  lists each book's state either way, so an operator can see which one is not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .pipeline import FeedPipeline

__all__ = ["MetricsServer"]

log = logging.getLogger(__name__)


def _book_states(pipelines: Sequence[FeedPipeline]) -> list[Mapping[str, object]]:
    return [
        {"exchange": inst.exchange, "symbol": inst.symbol, "valid": inst.valid}
        for p in pipelines
        for inst in p.instruments.values()
    ]


class MetricsServer:
    """An aiohttp server for the three endpoints.

    Args:
        registry: what ``/metrics`` exposes.
        pipelines: whose books ``/readyz`` reports.
        host: listen address.
        port: listen port (0 = any free port; see :attr:`port` after :meth:`start`).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        pipelines: Sequence[FeedPipeline] | Callable[[], Sequence[FeedPipeline]],
        host: str,
        port: int,
    ) -> None:
        self.registry = registry
        self._pipelines = pipelines
        self.host = host
        self.port = port
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    def pipelines(self) -> Sequence[FeedPipeline]:
        """The pipelines ``/readyz`` reports on."""
        return self._pipelines() if callable(self._pipelines) else self._pipelines

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9464``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            OSError: the address is in use or cannot be bound.
        """
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server  # the bound port when 0 was asked for
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("serving /metrics on %s", self.url)

    async def stop(self) -> None:
        """Stop serving and release the port."""
        await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(self.registry)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        books = _book_states(self.pipelines())
        ready = bool(books) and all(b["valid"] for b in books)
        body = orjson.dumps({"ready": ready, "books": books})
        return web.Response(
            body=body, status=200 if ready else 503, content_type="application/json"
        )
