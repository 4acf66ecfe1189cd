"""The alert path end to end with the real service and the real binaries.

embedded Binance venue replaying a synthetic capture → the real :class:`mmradar.app.Service`
(websocket + REST, book, detectors) → ``/metrics`` → Prometheus (1 s scrape and evaluation, the
shipped rules) → Alertmanager (the shipped routes and inhibitions, short group timings) → a
webhook receiver on 127.0.0.1: ``MMRadarSpreadWidening`` arrives ``firing`` and then
``resolved``.

The capture (hftbacktest format, ``<recv_ns> <json>`` lines, gzip) is generated here: a deep,
symmetric, one-tick BTCUSDT book, calm (only deep levels change) through the detectors'
warm-up; then the 50 best levels of each side are pulled (the spread jumps from 1 to 101 ticks,
mid and near-touch balance unchanged) and held; then they come back. Detectors run on venue
event time, and the capture's receive times (the replay's pacing) are decoupled from its event
times: minutes of calm event time replay in a fraction of a second, the widening at real pace.
Once the service reports the episode the test pauses the venue, so event time stops and the
episode stays active for as long as the alert needs to travel; resuming replays the recovery.

Skipped (only) while the service does not export ``mmradar_symptom_active`` yet.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.embedded.binance import EmbeddedBinance
from mmradar.venues import VENUE_NAMES
from support import limit, timed, wait_until

from .harness import PATH_BUDGET_S, AlertStack


def _service_exports_symptoms() -> bool:
    settings = parse_settings(
        {"feeds": [{"exchange": "binance", "symbols": ["BTCUSDT"]}]}, env={}, supported=VENUE_NAMES
    )
    service = Service(settings, serve_http=False)
    return b"mmradar_symptom_active" in generate_latest(service.registry)


if not _service_exports_symptoms():
    pytest.skip(
        "the service does not export mmradar_symptom_active yet (detectors pending)",
        allow_module_level=True,
    )

pytestmark = pytest.mark.timeout(90)

SYMBOL = "BTCUSDT"
STREAM = "btcusdt@depth@100ms"
TICK = Decimal("0.10")
BEST_BID = Decimal("60000.00")
LEVELS = 600  # per side: 60 USDT deep, the whole 10 bps band
PULLED = 50  # best levels removed from each side: spread 1 tick -> 101 ticks
WARMUP_S = 60  # [signals] warmup_seconds for the test (default 600)
CALM_S = 300  # event time of calm book before the widening (warm-up + baseline minutes)
WIDE_S = 8  # event time the spread stays wide, replayed at real pace
RECOVERY_S = 60  # event time of the recovered book, replayed fast (T_off, T_min pass)
TAIL_S = 120  # then a calm book at real pace, so it never goes stale during the test
WIDE_SPREAD_BPS = "1.68"  # 10.10 / 60000.05 * 1e4


def _price(p: Decimal) -> str:
    return f"{p:.2f}"


def write_capture(path: Path) -> None:
    """The scenario above as an hftbacktest capture of Binance spot ``@depth@100ms``."""
    bids = [_price(BEST_BID - i * TICK) for i in range(LEVELS)]
    asks = [_price(BEST_BID + TICK + i * TICK) for i in range(LEVELS)]
    recv_ns = 1_700_000_000_000_000_000
    event_ms = 1_700_000_000_000
    update_id = 1000
    lines = [
        f"{recv_ns} ".encode()
        + orjson.dumps(
            {
                "lastUpdateId": update_id,
                "bids": [[p, "1.000"] for p in bids],
                "asks": [[p, "1.000"] for p in asks],
            }
        )
    ]

    def diff(b: list[list[str]], a: list[list[str]], recv_step_ns: int) -> None:
        nonlocal recv_ns, event_ms, update_id
        recv_ns += recv_step_ns
        event_ms += 100
        update_id += 1
        data = {"e": "depthUpdate", "E": event_ms, "s": SYMBOL, "U": update_id, "u": update_id}
        data |= {"b": b, "a": a}
        lines.append(f"{recv_ns} ".encode() + orjson.dumps({"stream": STREAM, "data": data}))

    def toggles(n: int) -> Iterator[tuple[list[list[str]], list[list[str]]]]:
        """Symmetric changes far from the touch: the book stays alive, its shape does not."""
        for i in range(n):
            qty = "1.500" if i % 2 == 0 else "1.000"
            yield [[bids[LEVELS - 100], qty]], [[asks[LEVELS - 100], qty]]

    fast, real = 100_000, 100_000_000  # receive-time steps: 0.1 ms, 100 ms
    for b, a in toggles(CALM_S * 10):
        diff(b, a, fast)
    diff([[p, "0"] for p in bids[:PULLED]], [[p, "0"] for p in asks[:PULLED]], real)
    for b, a in toggles(WIDE_S * 10):
        diff(b, a, real)
    diff([[p, "1.000"] for p in bids[:PULLED]], [[p, "1.000"] for p in asks[:PULLED]], real)
    for b, a in toggles(RECOVERY_S * 10):
        diff(b, a, 1_000_000)
    for b, a in toggles(TAIL_S * 10):
        diff(b, a, real)
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1))


def _no_backoff() -> Iterator[float]:
    while True:
        yield 0.05


async def _symptom_active(session: aiohttp.ClientSession, url: str) -> float | None:
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "mmradar_symptom_active" and s.labels == {
                "exchange": "binance",
                "symbol": SYMBOL,
                "symptom": "spread_widening",
                "side": "both",
            }:
                return s.value
    return None


async def _wait_active(
    session: aiohttp.ClientSession, url: str, value: float, timeout_s: float
) -> None:
    async def reached() -> bool:
        return await _symptom_active(session, url) == value

    await wait_until(reached, f"spread_widening active == {value}", timeout_s=timeout_s)


@timed
async def test_service_symptom_alert_fires_and_resolves(
    timed: bool, tmp_path: Path, alert_stack: Callable[..., Awaitable[AlertStack]]
) -> None:
    capture = tmp_path / "spread_widening.gz"
    write_capture(capture)
    venue = EmbeddedBinance("spot", capture=capture, speed=1.0, loop=False)
    await venue.start()
    venue.pause()  # nothing replays before Prometheus is watching
    settings = parse_settings(
        {
            "http": {"listen": "127.0.0.1:0"},
            "feeds": [
                {
                    "exchange": "binance",
                    "symbols": [SYMBOL],
                    "trades": False,
                    "ws_url": venue.ws_base,
                    "rest_url": venue.rest_base,
                }
            ],
            "signals": {"warmup_seconds": WARMUP_S},
        },
        env={},
        supported=VENUE_NAMES,
    )
    service = Service(settings, backoff_factory=_no_backoff)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    try:
        assert service.server is not None
        server = service.server
        await wait_until(lambda: server.port != 0, "the metrics server to start", timeout_s=10)
        url = service.server.url
        target = f"127.0.0.1:{service.server.port}"
        stack = await alert_stack(target)  # returns once scraped and Alertmanager discovered
        assert await _symptom_active(session, url) == 0

        # Calm through the warm-up (fast), then the spread jumps and is held at real pace.
        venue.resume()
        await _wait_active(session, url, 1, timeout_s=20)
        venue.pause()  # event time stops: the episode stays active while the alert travels
        active_at = time.monotonic()
        fired = await stack.receiver.wait_for(
            lambda a: (
                a["labels"]["alertname"] == "MMRadarSpreadWidening" and a["status"] == "firing"
            ),
            limit(PATH_BUDGET_S, timed),
            "firing MMRadarSpreadWidening",
            stack.check_running,
        )
        fire_s = fired["_received_monotonic"] - active_at
        assert fired["labels"] == {
            "alertname": "MMRadarSpreadWidening",
            "category": "symptom",
            "exchange": "binance",
            "instance": target,
            "job": "mmradar",
            "severity": "page",
            "side": "both",
            "symbol": SYMBOL,
            "symptom": "spread_widening",
        }
        description = fired["annotations"]["description"]
        assert f"spread now {WIDE_SPREAD_BPS} bps, detector score " in description, description
        assert "n/a" not in description, description

        # The book recovers; the service ends the episode after T_off (event time, fast).
        venue.resume()
        await _wait_active(session, url, 0, timeout_s=20)
        ended_at = time.monotonic()
        resolved = await stack.receiver.wait_for(
            lambda a: (
                a["labels"]["alertname"] == "MMRadarSpreadWidening" and a["status"] == "resolved"
            ),
            limit(PATH_BUDGET_S, timed),
            "resolved MMRadarSpreadWidening",
            stack.check_running,
        )
        resolve_s = resolved["_received_monotonic"] - ended_at
        assert resolved["labels"] == fired["labels"]
        assert resolved["startsAt"] == fired["startsAt"]
        # The feed and the book stayed healthy throughout.
        health = {"MMRadarFeedDown", "MMRadarBookInvalid", "MMRadarResyncStorm"}
        assert stack.receiver.alertnames() & health == set()
        print(
            f"service alert path: firing {fire_s:.2f} s after the episode started, resolved "
            f"{resolve_s:.2f} s after it ended; alerts seen: {sorted(stack.receiver.alertnames())}"
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await session.close()
        await venue.stop()
