"""The bundled alert receiver (service/mmradar/receiver.py) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from mmradar.receiver import AlertReceiver, format_alert

# An Alertmanager 0.25 webhook body (version 4), as the compose stack's Alertmanager sends it.
NOTIFICATION: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{severity="page"}:{alertname="MMRadarSpreadWidening"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "mmradar-webhook",
    "groupLabels": {"alertname": "MMRadarSpreadWidening"},
    "commonLabels": {"alertname": "MMRadarSpreadWidening", "severity": "page"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "MMRadarSpreadWidening",
                "category": "symptom",
                "exchange": "binance",
                "instance": "mmradar:9464",
                "job": "mmradar",
                "severity": "page",
                "side": "both",
                "symbol": "BTCUSDT",
            },
            "annotations": {
                "summary": "spread widening on binance BTCUSDT",
                "description": "score 5.1",
            },
            "startsAt": "2026-01-02T03:04:05.123Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": "0123456789abcdef",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "MMRadarFeedDown", "exchange": "binance"},
            "annotations": {"description": "feed\n  back up"},
            "startsAt": "2026-01-02T03:00:00Z",
            "endsAt": "2026-01-02T03:04:00Z",
        },
    ],
}

FIRING_LINE = (
    "FIRING MMRadarSpreadWidening category=symptom exchange=binance instance=mmradar:9464"
    " job=mmradar severity=page side=both symbol=BTCUSDT startsAt=2026-01-02T03:04:05.123Z"
    " - spread widening on binance BTCUSDT"
)
RESOLVED_LINE = (
    "RESOLVED MMRadarFeedDown exchange=binance startsAt=2026-01-02T03:00:00Z"
    " endsAt=2026-01-02T03:04:00Z - feed back up"
)


@pytest.fixture
async def receiver() -> AsyncIterator[AlertReceiver]:
    server = AlertReceiver("127.0.0.1", 0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def test_format_alert_lines() -> None:
    assert format_alert(NOTIFICATION["alerts"][0]) == FIRING_LINE
    assert format_alert(NOTIFICATION["alerts"][1]) == RESOLVED_LINE
    assert format_alert({}) == "UNKNOWN (no alertname)"


async def test_receiver_logs_every_alert_of_a_notification(
    receiver: AlertReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar.receiver")
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{receiver.port}/alerts"
        async with session.post(url, json=NOTIFICATION) as resp:
            assert resp.status == 200
        async with session.get(f"http://127.0.0.1:{receiver.port}/healthz") as resp:
            assert resp.status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "mmradar.receiver"]
    assert lines[-2:] == [FIRING_LINE, RESOLVED_LINE]
    assert receiver.received == 2


@pytest.mark.parametrize(
    "body", [b"not json", b'{"status": "firing"}', b'{"alerts": [1, 2]}', b'{"alerts": {}}']
)
async def test_receiver_rejects_malformed_bodies(
    receiver: AlertReceiver, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar.receiver")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{receiver.port}/", data=body) as resp,
    ):
        assert resp.status == 400
    assert receiver.received == 0
    assert any("malformed notification" in r.getMessage() for r in caplog.records)


async def test_receiver_command_logs_to_stderr_and_stops_on_sigterm() -> None:
    """``python -m mmradar.receiver``, as the compose service runs it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmradar.receiver", "--listen", "127.0.0.1:0",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        first = await asyncio.wait_for(proc.stderr.readline(), timeout=30)
        match = re.search(rb"alert receiver listening on 127\.0\.0\.1:(\d+)", first)
        assert match, first
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{int(match[1])}/alerts", json=NOTIFICATION) as resp,
        ):
            assert resp.status == 200
        logged = [await asyncio.wait_for(proc.stderr.readline(), timeout=10) for _ in range(2)]
        assert logged[0].decode().rstrip().endswith("mmradar.receiver: " + FIRING_LINE)
        assert logged[1].decode().rstrip().endswith("mmradar.receiver: " + RESOLVED_LINE)

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_receiver_command_rejects_a_bad_listen_address() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmradar.receiver", "--listen", "nowhere",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    assert b"--listen" in err
