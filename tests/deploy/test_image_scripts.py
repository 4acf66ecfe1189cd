"""The image's entrypoint (docker/entrypoint.sh) and health check (docker/healthcheck.py), run
on the host: the entrypoint against a stand-in ``mmradar`` that records how it was called."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest

from mmradar.receiver import AlertReceiver
from support import free_port

from .dockerenv import REPO, clean_env

ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
HEALTHCHECK = REPO / "docker" / "healthcheck.py"

# Prints argv and whether MMRADAR_MODE is still set, as JSON.
RECORD = 'import json, os, sys; print(json.dumps([sys.argv[1:], "MMRADAR_MODE" in os.environ]))'
STAND_IN = """#!/bin/sh
exec "{python}" -c '{record}' "$@"
"""


def entrypoint(
    tmp_path: Path, *args: str, mode: str | None = None
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stand_in = bin_dir / "mmradar"
    stand_in.write_text(STAND_IN.format(python=sys.executable, record=RECORD))
    stand_in.chmod(0o755)
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    if mode is not None:
        env["MMRADAR_MODE"] = mode
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mode", "args", "expected"),
    [
        (None, [], ["run"]),
        ("run", [], ["run"]),
        ("demo", [], ["demo", "--no-summary"]),
        ("demo", ["demo", "--speed", "4"], ["demo", "--speed", "4"]),
        (None, ["check-config", "/config/x.toml"], ["check-config", "/config/x.toml"]),
        (None, ["--version"], ["--version"]),
    ],
)
def test_entrypoint_runs_mmradar(
    tmp_path: Path, mode: str | None, args: list[str], expected: list[str]
) -> None:
    proc = entrypoint(tmp_path, *args, mode=mode)
    assert proc.returncode == 0, proc.stderr
    argv, mode_still_set = json.loads(proc.stdout)
    assert argv == expected
    assert mode_still_set is False  # mmradar would warn about an unknown MMRADAR_* variable


def test_entrypoint_execs_other_commands(tmp_path: Path) -> None:
    proc = entrypoint(tmp_path, "sh", "-c", "echo other $0", "x")
    assert proc.returncode == 0
    assert proc.stdout == "other x\n"


def test_entrypoint_rejects_an_unknown_mode(tmp_path: Path) -> None:
    proc = entrypoint(tmp_path, mode="live")
    assert proc.returncode == 2
    assert "MMRADAR_MODE must be run or demo, not 'live'" in proc.stderr
    assert proc.stdout == ""


def _load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mmradar_healthcheck", HEALTHCHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("0.0.0.0:9464", "http://127.0.0.1:9464/healthz"),
        ("127.0.0.1:19464", "http://127.0.0.1:19464/healthz"),
        (":9464", "http://127.0.0.1:9464/healthz"),
        ("[::]:9464", "http://[::1]:9464/healthz"),
        ("[::1]:9000", "http://[::1]:9000/healthz"),
        ("mmradar:9464", "http://mmradar:9464/healthz"),
    ],
)
def test_healthcheck_url(listen: str, url: str) -> None:
    assert _load_healthcheck().healthz_url(listen) == url


@pytest.fixture
async def healthz_server() -> AsyncIterator[int]:
    server = AlertReceiver("127.0.0.1", 0)  # any server with GET /healthz
    await server.start()
    try:
        yield server.port
    finally:
        await server.stop()


async def test_healthcheck_exit_codes(healthz_server: int) -> None:
    async def check(listen: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(HEALTHCHECK),
            env=clean_env(MMRADAR_HTTP_LISTEN=listen),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    rc, out = await check(f"0.0.0.0:{healthz_server}")
    assert (rc, out.strip()) == (0, f"healthy: http://127.0.0.1:{healthz_server}/healthz")
    closed = free_port()
    rc, out = await check(f"127.0.0.1:{closed}")
    assert rc == 1
    assert out.startswith(f"unhealthy: http://127.0.0.1:{closed}/healthz")
