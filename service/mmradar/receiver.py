"""A tiny Alertmanager webhook receiver that logs every alert it receives.

The ``docker compose up`` stack routes Alertmanager's notifications here (service
``alert-receiver``), so alerts show up in ``docker compose logs`` without any external
integration; point ``MMRADAR_ALERT_WEBHOOK_URL`` at a real relay instead (docs/docker.md)::

    python -m mmradar.receiver --listen 0.0.0.0:9095

``POST`` of an Alertmanager webhook body (version 4) to any path logs one line per alert::

    FIRING MMRadarSpreadWidening exchange=binance symbol=BTCUSDT severity=page ... - summary

``GET /healthz`` answers 200. SIGINT/SIGTERM stop it (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from .config import parse_listen
from .errors import ConfigError
from .log import configure_logging

__all__ = ["AlertReceiver", "format_alert", "main"]

# A fixed name: the module also runs as __main__ (python -m mmradar.receiver).
log = logging.getLogger("mmradar.receiver")

DEFAULT_LISTEN = "127.0.0.1:9095"
#: A request body larger than this is refused (Alertmanager batches are far smaller).
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Longest annotation text kept in a log line.
MAX_TEXT_CHARS = 300


def _text(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


def format_alert(alert: Mapping[str, Any]) -> str:
    """One log line for one alert of a webhook body.

    Status and alert name first, then the other labels sorted by name, then the summary
    annotation (or the description when there is no summary), whitespace collapsed.
    """
    labels = alert.get("labels") or {}
    annotations = alert.get("annotations") or {}
    status = str(alert.get("status") or "unknown").upper()
    parts = [status, str(labels.get("alertname", "(no alertname)"))]
    parts += [f"{k}={_text(v)}" for k, v in sorted(labels.items()) if k != "alertname"]
    if alert.get("startsAt"):
        parts.append(f"startsAt={alert['startsAt']}")
    if status == "RESOLVED" and alert.get("endsAt"):
        parts.append(f"endsAt={alert['endsAt']}")
    note = annotations.get("summary") or annotations.get("description")
    line = " ".join(parts)
    return f"{line} - {_text(note)}" if note else line


class AlertReceiver:
    """The receiver's aiohttp server.

    Args:
        host: address to listen on.
        port: TCP port; 0 picks a free one (see :attr:`port` after :meth:`start`).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.received = 0
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post("/{path:.*}", self._notify)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def start(self) -> None:
        """Bind and serve; :attr:`port` holds the bound port afterwards."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("alert receiver listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop serving; idempotent."""
        await self._runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _notify(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            alerts = body["alerts"]
            if not isinstance(alerts, list) or not all(isinstance(a, dict) for a in alerts):
                raise TypeError("alerts is not a list of objects")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed notification on %s: %s", request.path, exc)
            return web.Response(status=400, text="expected an Alertmanager webhook body\n")
        receiver = body.get("receiver", "?") if isinstance(body, dict) else "?"
        log.debug("notification for %s: %d alert(s)", receiver, len(alerts))
        for alert in alerts:
            self.received += 1
            log.info("%s", format_alert(alert))
        return web.Response(text="ok\n")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mmradar.receiver",
        description="Log every alert of Alertmanager webhook notifications.",
    )
    p.add_argument("--listen", default=DEFAULT_LISTEN, help=f"host:port (default {DEFAULT_LISTEN})")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    return p


async def _serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    receiver = AlertReceiver(host, port)
    try:
        await receiver.start()
        await stop.wait()
        log.info("alert receiver stopping (%d alert(s) received)", receiver.received)
    finally:
        await receiver.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the receiver until SIGINT/SIGTERM; exit 0, 2 on a bad ``--listen``, 1 on OSError."""
    args = _parser().parse_args(argv)
    try:
        http = parse_listen(args.listen)
    except ConfigError as exc:
        print(f"receiver: {exc}", file=sys.stderr)
        return 2
    configure_logging("info", args.log_format)
    try:
        asyncio.run(_serve(http.host, http.port))
    except OSError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
