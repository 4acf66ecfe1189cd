"""Delivery against real local HTTP endpoints: ok, 5xx then recovery, silent, slow, dead.

Every test reads ``mmradar_webhook_deliveries_total`` from a fresh registry and checks that the
secret part of the URL never reaches a log line.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mmradar.config import WebhookSettings
from mmradar.metrics import Metrics
from mmradar.webhooks import Webhooks, WebhookSender, encode
from support import limit, timed, wait_until

from .conftest import (
    SECRET,
    Counts,
    Receiver,
    Reply,
    SilentServer,
    fast_backoff,
    hook,
    make_event,
)

StartSender = Callable[..., WebhookSender]


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG, logger="mmradar.webhooks")
    yield
    assert SECRET not in caplog.text
    assert "s3cr3t" not in caplog.text


@pytest.fixture
async def start(counts: Counts) -> AsyncIterator[StartSender]:
    """Build a sender (fast back-off, short timeouts unless given) and run it as a task."""
    tasks: list[asyncio.Task[None]] = []

    def make(base: str, fmt: str = "json", **options: Any) -> WebhookSender:
        options.setdefault("backoff_factory", fast_backoff)
        options.setdefault("connect_timeout_s", 1.0)
        options.setdefault("total_timeout_s", 2.0)
        sender = WebhookSender(hook(base, fmt), counts.family, **options)
        tasks.append(asyncio.create_task(sender.run()))
        return sender

    yield make
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------------------------------------
# (1) ok
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "slack", "discord"])
async def test_delivers_in_order(
    fmt: str, receiver: Receiver, counts: Counts, start: StartSender
) -> None:
    n = 20
    sender = start(receiver.base, fmt)
    events = [make_event("firing" if i % 2 else "resolved", seq=i + 1) for i in range(n)]
    for event in events:
        sender.submit(event)
    await wait_until(lambda: counts("ok", fmt) == n, f"{n} ok deliveries ({fmt})")
    assert [r.body for r in receiver.requests] == [encode(e, fmt) for e in events]
    assert all(r.path == f"/hook/{SECRET}" for r in receiver.requests)
    assert all(r.headers["Content-Type"] == "application/json" for r in receiver.requests)
    assert (counts("retry", fmt), counts("dropped", fmt)) == (0, 0)


async def test_every_configured_format_has_series_from_start(counts: Counts) -> None:
    for fmt in ("json", "slack", "discord"):
        for result in ("ok", "retry", "dropped"):
            assert counts(result, fmt) == 0


# --------------------------------------------------------------------------------------------
# (2) 5xx, then recovery
# --------------------------------------------------------------------------------------------


async def test_500s_then_recovery(receiver: Receiver, counts: Counts, start: StartSender) -> None:
    receiver.script.extend([Reply(500), Reply(502), Reply(503)])
    sender = start(receiver.base)
    sender.submit(make_event(seq=1))
    sender.submit(make_event(seq=2))
    await wait_until(lambda: counts("ok") == 2, "2 ok deliveries")
    seqs = [b["context"]["seq"] for b in receiver.bodies()]
    assert seqs == [1, 1, 1, 1, 2]  # the same event retried until delivered, order kept
    assert (counts("retry"), counts("ok"), counts("dropped")) == (3, 2, 0)


async def test_429_honours_retry_after(
    receiver: Receiver, counts: Counts, start: StartSender
) -> None:
    receiver.script.append(Reply(429, headers={"Retry-After": "1"}))
    sender = start(receiver.base)  # back-off is 20 ms: only Retry-After explains a long wait
    sender.submit(make_event())
    await wait_until(lambda: counts("ok") == 1, "1 ok delivery")
    first, second = receiver.requests
    assert second.at - first.at >= 0.99
    assert (counts("retry"), counts("dropped")) == (1, 0)


async def test_4xx_is_dropped_at_once(
    receiver: Receiver,
    counts: Counts,
    start: StartSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.script.append(Reply(404, body="no_service"))
    sender = start(receiver.base, "slack")
    sender.submit(make_event(seq=1))
    sender.submit(make_event(seq=2))
    await wait_until(lambda: counts("ok", "slack") == 1, "1 ok delivery (slack)")
    assert len(receiver.requests) == 2  # no retry of the 404
    assert (counts("dropped", "slack"), counts("retry", "slack")) == (1, 0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "HTTP 404: no_service" in r.getMessage()
        and f"{receiver.base}/hook/${{HOOK_SECRET}}" in r.getMessage()
        for r in warnings
    ), [r.getMessage() for r in warnings]


async def test_redirect_is_not_followed(
    receiver: Receiver, counts: Counts, start: StartSender
) -> None:
    receiver.script.append(Reply(302, headers={"Location": "http://127.0.0.1:9/elsewhere"}))
    sender = start(receiver.base)
    sender.submit(make_event())
    await wait_until(lambda: counts("dropped") == 1, "1 dropped event")
    assert len(receiver.requests) == 1


# --------------------------------------------------------------------------------------------
# (3) a receiver that accepts the connection and never answers
# --------------------------------------------------------------------------------------------


@timed
async def test_silent_receiver_bounded_attempts(
    silent: SilentServer, receiver: Receiver, counts: Counts, start: StartSender, timed: bool
) -> None:
    sender = start(silent.base, total_timeout_s=0.3, max_attempts=3)
    task_start = time.monotonic()
    sender.submit(make_event(seq=1))
    await wait_until(lambda: counts("dropped") == 1, "1 dropped event")
    elapsed = time.monotonic() - task_start
    assert (counts("retry"), counts("ok")) == (2, 0)
    assert silent.connections == 3  # one connection per attempt, each timed out
    assert elapsed >= 0.85  # 3 × 0.3 s timeouts + 2 × 20 ms back-off
    if timed:
        assert elapsed < 2.0
    # The worker is still healthy: the next event goes through the same bounded cycle.
    sender.submit(make_event(seq=2))
    await wait_until(lambda: counts("dropped") == 2, "2 dropped events")
    assert (counts("retry"), silent.connections) == (4, 6)


@timed
async def test_max_age_bounds_retries(
    receiver: Receiver, counts: Counts, start: StartSender, timed: bool
) -> None:
    receiver.default = Reply(500)
    sender = start(receiver.base, max_attempts=1000, max_age_s=0.3)
    sender.submit(make_event())
    await wait_until(lambda: counts("dropped") == 1, "1 dropped event")
    attempts = len(receiver.requests)
    assert attempts <= 16  # every ~20 ms for 0.3 s, then given up
    assert counts("retry") == attempts - 1
    if timed:
        assert attempts >= 3
        assert receiver.requests[-1].at - receiver.requests[0].at < 0.6  # 0.3 s + slack


# --------------------------------------------------------------------------------------------
# (4) a slow receiver: the queue bounds, drops are counted, submit never blocks
# --------------------------------------------------------------------------------------------


@timed
async def test_slow_receiver_drops_oldest_and_submit_never_blocks(
    receiver: Receiver, counts: Counts, start: StartSender, timed: bool
) -> None:
    receiver.default = Reply(delay_s=2.0)
    sender = start(receiver.base, queue_size=5, total_timeout_s=5.0)
    await asyncio.sleep(0)  # the worker is waiting on its queue
    latencies: list[float] = []
    events = [make_event(seq=i + 1) for i in range(50)]
    for i, event in enumerate(events):
        # A cyclic-GC pass triggered by earlier tests' garbage is not submit()'s cost.
        gc.disable()
        try:
            t0 = time.perf_counter()
            sender.submit(event)
            latencies.append(time.perf_counter() - t0)
        finally:
            gc.enable()
        if i == 0:
            # The worker has taken event 1 once the receiver holds its request.
            await receiver.wait_for(1)
    print(f"\nsubmit latency: max {max(latencies) * 1e6:.1f} µs over {len(latencies)} calls")
    if timed:
        assert max(latencies) < 1e-3
    assert sender.pending == 5
    assert counts("dropped") == 44  # 50 − 1 in flight − 5 queued; the oldest went first
    await wait_until(lambda: counts("ok") == 2, "2 ok deliveries", timeout_s=limit(6.0, timed))
    seqs = [b["context"]["seq"] for b in receiver.bodies()]
    assert seqs[:2] == [1, 46]  # then 47..50 wait behind the slow receiver
    assert counts("retry") == 0


async def test_overflow_before_start_keeps_newest(receiver: Receiver, counts: Counts) -> None:
    sender = WebhookSender(hook(receiver.base), counts.family, queue_size=3)
    for i in range(5):
        sender.submit(make_event(seq=i + 1))
    assert counts("dropped") == 2
    task = asyncio.create_task(sender.run())
    try:
        await wait_until(lambda: counts("ok") == 3, "3 ok deliveries")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [b["context"]["seq"] for b in receiver.bodies()] == [3, 4, 5]


# --------------------------------------------------------------------------------------------
# (5) a dead endpoint
# --------------------------------------------------------------------------------------------


async def test_dead_endpoint_retries_then_drops(
    dead_base: str, counts: Counts, start: StartSender, caplog: pytest.LogCaptureFixture
) -> None:
    sender = start(dead_base, "discord", max_attempts=4)
    sender.submit(make_event())
    await wait_until(lambda: counts("dropped", "discord") == 1, "1 dropped event (discord)")
    assert (counts("retry", "discord"), counts("ok", "discord")) == (3, 0)
    text = caplog.text
    assert "cannot connect" in text and "gave up after 4 attempts" in text
    assert f"{dead_base}/hook/${{HOOK_SECRET}}" in text


# --------------------------------------------------------------------------------------------
# Shutdown
# --------------------------------------------------------------------------------------------


@timed
async def test_cancel_flushes_pending_quickly(
    receiver: Receiver, counts: Counts, timed: bool
) -> None:
    receiver.script.append(Reply(delay_s=0.3))
    sender = WebhookSender(hook(receiver.base), counts.family)
    task = asyncio.create_task(sender.run())
    for i in range(3):
        sender.submit(make_event(seq=i + 1))
    await receiver.wait_for(1)
    t0 = time.monotonic()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if timed:
        assert time.monotonic() - t0 < 1.0
    assert task.cancelled()
    # the interrupted event and the two queued ones had their last chance within the bound
    assert [b["context"]["seq"] for b in receiver.bodies()] == [1, 1, 2, 3]
    assert (counts("ok"), counts("dropped")) == (3, 0)


@timed
async def test_cancel_never_waits_more_than_the_flush_bound(
    silent: SilentServer, counts: Counts, timed: bool
) -> None:
    sender = WebhookSender(hook(silent.base), counts.family, flush_timeout_s=0.5)
    task = asyncio.create_task(sender.run())
    for i in range(10):
        sender.submit(make_event(seq=i + 1))
    await wait_until(lambda: silent.connections == 1, "the silent receiver's first connection")
    t0 = time.monotonic()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    waited = time.monotonic() - t0
    assert waited >= 0.45
    if timed:
        assert waited < 0.9
    assert (counts("ok"), counts("dropped")) == (0, 10)


async def test_webhooks_fan_out(receiver: Receiver, counts: Counts) -> None:
    hooks = Webhooks([hook(receiver.base, "json"), hook(receiver.base, "slack")], counts.family)
    task = asyncio.create_task(hooks.run())
    try:
        hooks.submit(make_event())
        await wait_until(
            lambda: counts("ok", "json") == 1 and counts("ok", "slack") == 1,
            "one ok delivery to each hook",
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    bodies = sorted(r.body for r in receiver.requests)
    assert bodies == sorted([encode(make_event(), "json"), encode(make_event(), "slack")])


async def test_url_without_template_is_masked_in_logs(
    dead_base: str, counts: Counts, caplog: pytest.LogCaptureFixture
) -> None:
    settings = WebhookSettings(url=f"{dead_base}/services/{SECRET}?token={SECRET}")
    sender = WebhookSender(
        settings, counts.family, max_attempts=2, backoff_factory=fast_backoff, flush_timeout_s=0
    )
    task = asyncio.create_task(sender.run())
    try:
        sender.submit(make_event())
        await wait_until(lambda: counts("dropped") == 1, "1 dropped event")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert f"webhook {dead_base}/***" in caplog.text


def test_series_exist_for_configured_formats_only() -> None:
    registry = CollectorRegistry()
    Metrics(registry, [], webhook_formats=["slack"])
    for result in ("ok", "retry", "dropped"):
        labels = {"format": "slack", "result": result}
        assert registry.get_sample_value("mmradar_webhook_deliveries_total", labels) == 0
        labels = {"format": "json", "result": result}
        assert registry.get_sample_value("mmradar_webhook_deliveries_total", labels) is None
