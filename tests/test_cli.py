"""The command line as a user runs it: real processes, real exit codes, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
import tomllib
from pathlib import Path

import aiohttp
import pytest

from mmradar.embedded.binance import EmbeddedBinance

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


async def _poll(url: str, ok: object, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    text = await resp.text()
                    if ok(resp.status, text):  # type: ignore[operator]
                        return text
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, f"timed out polling {url}"
            await asyncio.sleep(0.1)


async def test_sigterm_stops_the_service_within_5_s(tmp_path: Path) -> None:
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
            await _poll(f"http://127.0.0.1:{port}/readyz", lambda s, _: s == 200, 30)
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 5)
            elapsed = time.monotonic() - started
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()
        assert elapsed < 5.0
        assert b"Traceback" not in err


@pytest.mark.parametrize(
    ("scenario", "low", "high"),
    [
        # The real capture's BTCUSDT traded around 61,600-61,900 USDT.
        (["--scenario", "btcusdt-spot"], 61_000, 62_500),
        # The default: the simulated scenario cycle, around 60,000.
        ([], 55_000, 65_000),
    ],
    ids=["capture", "default-cycle"],
)
async def test_demo_serves_correct_metrics_within_30_s(
    scenario: list[str], low: float, high: float
) -> None:
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
            30,
        )
        assert time.monotonic() - started < 30

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
        out, err = await asyncio.wait_for(proc.communicate(), 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert f"http://127.0.0.1:{port}/metrics" in out.decode()
