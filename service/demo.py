"""``mmradar demo``: the whole service against an embedded exchange on loopback.

The embedded venue (:mod:`service.embedded`) speaks Binance's exact websocket and REST protocol
and replays a real capture; the service connects to it through ``ws_url``/``rest_url`` — the
same code path as ``mmradar run`` against the real venue. When the capture ends the venue drops
every connection and starts over, so the demo also shows reconnects and resyncs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from .app import Service
from .config import LogSettings, parse_settings
from .embedded.binance import EmbeddedBinance
from .model import BAND_BPS, RESYNC_REASONS
from .venues import VENUE_NAMES

__all__ = ["SCENARIOS", "Scenario", "render_summary", "run_demo"]


@dataclass(frozen=True, slots=True)
class Scenario:
    """What the embedded exchange plays."""

    description: str
    exchange: str
    market: Literal["spot", "usdm"]
    symbols: tuple[str, ...]


SCENARIOS: Mapping[str, Scenario] = {
    "btcusdt-spot": Scenario(
        "real Binance spot BTCUSDT capture (2024-08-08, 6 min), looped", "binance", "spot",
        ("BTCUSDT",),
    ),
    "btcusdt-usdm": Scenario(
        "real Binance USD-M BTCUSDT capture (2024-08-08, 6 min), looped", "binance-usdm",
        "usdm", ("BTCUSDT",),
    ),
}  # fmt: skip


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def render_summary(service: Service) -> str:
    """A compact, human-readable state of every book (used by the live terminal summary)."""
    lines = []
    registry = service.registry
    for pipeline in service.pipelines:
        for inst in pipeline.instruments.values():
            labels = {"exchange": inst.exchange, "symbol": inst.symbol}
            book = inst.book
            resyncs = sum(
                registry.get_sample_value("mmradar_book_resyncs_total", {**labels, "reason": r})
                or 0.0
                for r in RESYNC_REASONS
            )
            reconnects = sum(
                s.value
                for metric in registry.collect()
                if metric.name == "mmradar_feed_reconnects"
                for s in metric.samples
                if s.name.endswith("_total") and s.labels.get("exchange") == inst.exchange
            )
            msgs = registry.get_sample_value(
                "mmradar_feed_messages_total", {"exchange": inst.exchange}
            )
            head = f"{inst.exchange} {inst.symbol}"
            if not inst.valid:
                lines.append(
                    f"{head:22} SYNCING   msgs {msgs or 0:>8.0f}  resyncs {resyncs:.0f}  "
                    f"reconnects {reconnects:.0f}"
                )
                continue
            bids, asks = book.depth_notional()
            imbalance = book.depth_imbalance()
            rv = inst.market.realized_volatility_bps()
            bands = "  ".join(
                f"{band}bp {b / 1e3:.0f}k/{a / 1e3:.0f}k ({imb:+.2f})"
                for band, b, a, imb in zip(BAND_BPS[:2], bids, asks, imbalance, strict=False)
            )
            lines.append(
                f"{head:22} VALID  bid {_fmt(book.best_bid_price(), '.2f')} "
                f"ask {_fmt(book.best_ask_price(), '.2f')} "
                f"spread {_fmt(book.spread_bps(), '.3f')}bp"
                f"  {bands}  rv30s {_fmt(rv[0], '.2f')}bp"
                f"  taker buy/sell {inst.market.taker_buy:.3f}/{inst.market.taker_sell:.3f}"
                f"  msgs {msgs or 0:.0f}  resyncs {resyncs:.0f}  reconnects {reconnects:.0f}"
            )
    return "\n".join(lines)


async def _print_summary(service: Service, out: TextIO, interval_s: float = 1.0) -> None:
    tty = out.isatty()
    previous_lines = 0
    while True:
        await asyncio.sleep(interval_s)
        text = render_summary(service)
        if tty and previous_lines:
            out.write(f"\x1b[{previous_lines}F\x1b[J")
        out.write(text + "\n")
        out.flush()
        previous_lines = text.count("\n") + 1


async def run_demo(
    stop: asyncio.Event,
    *,
    scenario: str = "btcusdt-spot",
    speed: float = 1.0,
    listen: str | None = None,
    summary: bool = True,
    duration_s: float | None = None,
    log_settings: LogSettings | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> None:
    """Start the embedded venue and the service against it; run until ``stop`` is set."""
    out = out or sys.stdout
    # The embedded venue's per-connection chatter is not the demo's story.
    logging.getLogger("service.embedded").setLevel(logging.WARNING)
    chosen = SCENARIOS[scenario]
    env = os.environ if env is None else env
    async with EmbeddedBinance(chosen.market, speed=speed, loop=True) as venue:
        http = {"listen": listen} if listen else {}
        settings = parse_settings(
            {
                "http": http,
                "feeds": [
                    {
                        "exchange": chosen.exchange,
                        "symbols": list(chosen.symbols),
                        "ws_url": venue.ws_base,
                        "rest_url": venue.rest_base,
                    }
                ],
            },
            env={k: v for k, v in env.items() if not (listen and k == "MMRADAR_HTTP_LISTEN")},
            supported=VENUE_NAMES,
            source="demo",
        )
        service = Service(settings)
        extra: list[Callable[[], Coroutine[Any, Any, None]]] = []

        async def announce() -> None:
            while service.server is not None and service.server.port == 0:
                await asyncio.sleep(0.05)
            assert service.server is not None
            out.write(
                f"mmradar demo: {chosen.description}\n"
                f"  embedded exchange  ws {venue.ws_base}  rest {venue.rest_base}\n"
                f"  metrics            {service.server.url}/metrics"
                f"  (also /healthz, /readyz)\n  Ctrl-C to stop.\n"
            )
            out.flush()
            if summary:
                await _print_summary(service, out)

        extra.append(announce)
        if duration_s is not None:

            async def stop_later() -> None:
                await asyncio.sleep(duration_s)
                stop.set()

            extra.append(stop_later)
        await service.run(stop, *extra)
