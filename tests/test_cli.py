"""The command line as a user runs it: real processes, real exit codes, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from mmradar.embedded.binance import EmbeddedBinance
from support import free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmradar", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})}, cwd=ROOT,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


GOOD = """
[http]
listen = "127.0.0.1:9464"

[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT"]
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (GOOD + "colour = 'red'\n", "feeds[0].colour: unknown key"),
        (GOOD.replace('["BTCUSDT"]', '"BTCUSDT"'), "feeds[0].symbols: expected a list of strings"),
        (GOOD + 'ws_url = "http://example.com"\n', "feeds[0].ws_url: invalid URL"),
        (GOOD.replace('["BTCUSDT"]', "[]"), "feeds[0].symbols: must not be empty"),
        (GOOD.replace('"binance"', '"nasdaq"'), "feeds[0].exchange: unknown exchange 'nasdaq'"),
        (
            GOOD.replace('"binance"', '"bybit"').replace('"BTCUSDT"', '"BTCUSD"'),
            "bybit BTCUSD: an inverse contract",
        ),
        (
            GOOD.replace('"binance"', '"okx"').replace('"BTCUSDT"', '"BTC-USD-250328-60000-C"'),
            "okx BTC-USD-250328-60000-C:",
        ),
    ],
)
async def test_config_errors_exit_2_with_key_path(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    for command in (["check-config", str(path)], ["run", "--config", str(path)]):
        code, out, err = await run_cli(*command)
        assert code == 2, (command, out, err)
        assert message in err, err
        assert "Traceback" not in err


async def test_check_config_prints_effective_config(tmp_path: Path) -> None:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    code, out, err = await run_cli(
        "check-config", str(path), env={"MMRADAR_HTTP_LISTEN": "0.0.0.0:9999"}
    )
    assert code == 0, err
    shown = tomllib.loads(out)
    assert shown["http"]["listen"] == "0.0.0.0:9999"  # the environment override is applied
    assert shown["feeds"][0]["symbols"] == ["BTCUSDT"]


async def _poll(url: str, ok: Callable[[int, str], bool], what: str, timeout_s: float) -> str:
    """GET ``url`` until ``ok(status, body)``; the body that satisfied it."""
    async with aiohttp.ClientSession() as session:

        async def answered() -> str | None:
            async with session.get(url) as resp:
                text = await resp.text()
                return text if ok(resp.status, text) else None

        return await wait_until(
            answered, what, timeout_s=timeout_s, interval_s=0.1, ignore=(aiohttp.ClientError,)
        )


#: README "Run it live": SIGINT/SIGTERM stop the service cleanly within 5 s (asserted by the
#: perf-marked test; the default run only bounds the wait so that a hang fails).
STOP_BUDGET_S = 5.0
HANG_S = 60.0


async def _stop_on_sigterm(tmp_path: Path) -> tuple[int | None, bytes, float]:
    """Run the service against an embedded venue until ready, SIGTERM it: exit code, stderr and
    seconds from the signal to the exit."""
    async with EmbeddedBinance("spot", speed=5.0) as venue:
        port = free_port()
        path = tmp_path / "live.toml"
        path.write_text(
            f'[http]\nlisten = "127.0.0.1:{port}"\n\n[[feeds]]\nexchange = "binance"\n'
            f'symbols = ["BTCUSDT"]\nws_url = "{venue.ws_base}"\nrest_url = "{venue.rest_base}"\n'
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mmradar", "run", "--config", str(path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        )  # fmt: skip
        try:
            await _poll(
                f"http://127.0.0.1:{port}/readyz", lambda s, _: s == 200, "/readyz 200", HANG_S
            )
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), HANG_S)
            elapsed = time.monotonic() - started
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        return proc.returncode, err, elapsed


async def test_sigterm_stops_the_service_cleanly(tmp_path: Path) -> None:
    returncode, err, _ = await _stop_on_sigterm(tmp_path)
    assert returncode == 0, err.decode()
    assert b"Traceback" not in err


@pytest.mark.perf
async def test_sigterm_stops_the_service_within_5_s(tmp_path: Path) -> None:
    returncode, err, elapsed = await _stop_on_sigterm(tmp_path)
    assert returncode == 0, err.decode()
    assert elapsed < STOP_BUDGET_S


async def _demo(scenario: list[str], low: float, high: float) -> float:
    """Run ``mmradar demo``, check its metrics once the book is valid and that SIGINT stops it
    cleanly; the seconds from the start until the book was valid."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmradar", "demo", *scenario,
        "--listen", f"127.0.0.1:{port}", "--no-summary",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    try:
        started = time.monotonic()
        text = await _poll(
            f"http://127.0.0.1:{port}/metrics",
            lambda s, t: (
                s == 200 and 'mmradar_book_valid{exchange="binance",symbol="BTCUSDT"} 1.0' in t
            ),
            "a valid BTCUSDT book in /metrics",
            HANG_S,
        )
        ready_s = time.monotonic() - started

        def value(name: str) -> float:
            return next(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(name + "{")
            )

        bid, ask = value("mmradar_best_bid_price"), value("mmradar_best_ask_price")
        assert low < bid < ask < high
        assert value("mmradar_depth_notional") > 0
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), HANG_S)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert f"http://127.0.0.1:{port}/metrics" in out.decode()
    return ready_s


DEMO_SCENARIOS = pytest.mark.parametrize(
    ("scenario", "low", "high"),
    [
        # The real capture's BTCUSDT traded around 61,600-61,900 USDT.
        (["--scenario", "btcusdt-spot"], 61_000, 62_500),
        # The default: the simulated scenario cycle, around 60,000.
        ([], 55_000, 65_000),
    ],
    ids=["capture", "default-cycle"],
)


@DEMO_SCENARIOS
async def test_demo_serves_correct_metrics(scenario: list[str], low: float, high: float) -> None:
    await _demo(scenario, low, high)


@pytest.mark.perf
@DEMO_SCENARIOS
async def test_demo_serves_correct_metrics_within_30_s(
    scenario: list[str], low: float, high: float
) -> None:
    assert await _demo(scenario, low, high) < 30
