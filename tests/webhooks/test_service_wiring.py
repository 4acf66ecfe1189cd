"""The service wiring: ``[[webhooks]]`` in the config → senders run with the service, every
episode the pipelines report reaches them (and the ``on_episode`` callback), stop stays prompt.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry

from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.signals.episodes import EpisodeEvent
from mmradar.webhooks import encode
from support import limit, timed

from .conftest import SECRET, Receiver, make_event


def slow_backoff() -> Iterator[float]:
    while True:
        yield 1.0


@timed
async def test_service_delivers_episodes_to_webhooks(
    receiver: Receiver, dead_base: str, timed: bool
) -> None:
    dead = dead_base.removeprefix("http://")
    settings = parse_settings(
        {
            "http": {"listen": "127.0.0.1:0"},
            "feeds": [
                {
                    "exchange": "binance",
                    "symbols": ["BTCUSDT"],
                    "ws_url": f"ws://{dead}",
                    "rest_url": f"http://{dead}",
                }
            ],
            "webhooks": [
                {"url": f"{receiver.base}/hook/${{HOOK_SECRET}}", "format": "json"},
                {"url": f"{receiver.base}/slack/${{HOOK_SECRET}}", "format": "slack"},
            ],
        },
        env={"HOOK_SECRET": SECRET},
    )
    registry = CollectorRegistry()
    seen: list[EpisodeEvent] = []
    service = Service(
        settings,
        registry=registry,
        serve_http=False,
        backoff_factory=slow_backoff,
        on_episode=seen.append,
    )
    for fmt in ("json", "slack"):
        for result in ("ok", "retry", "dropped"):
            labels = {"format": fmt, "result": result}
            assert registry.get_sample_value("mmradar_webhook_deliveries_total", labels) == 0

    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    event = make_event()
    # What the signal engine of the instrument calls on an episode transition.
    engine = service.pipelines[0].instruments["BTCUSDT"].engine
    assert engine.on_episode is not None
    engine.on_episode(event)
    assert seen == [event]
    await receiver.wait_for(2)
    by_path = {r.path: r.body for r in receiver.requests}
    assert by_path == {
        f"/hook/{SECRET}": encode(event, "json"),
        f"/slack/{SECRET}": encode(event, "slack"),
    }
    t0 = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, limit(5.0, timed))
    if timed:
        assert time.monotonic() - t0 < 1.5
    ok = registry.get_sample_value(
        "mmradar_webhook_deliveries_total", {"format": "json", "result": "ok"}
    )
    assert ok == 1
