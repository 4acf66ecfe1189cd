"""The shipped Dockerfile and docker-compose.yml on a real Docker engine (docs/docker.md).

One image is built per session (the ``built`` fixture of conftest.py), through the shipped
docker-compose.yml (its ``build`` section, with BASE_IMAGE pointed at a locally made Debian
base, host networking for the build and the host's CA bundle as the optional ``ca`` build
secret). Containers use the host network and listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from support import free_port, limit, timed, wait_until

from .dockerenv import Built, DockerEngine

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

BOOK_VALID = re.compile(r"^mmradar_book_valid\{[^}]*\} 1\.0$", re.MULTILINE)
#: README "Run it live", docs/docker.md: SIGINT/SIGTERM stop cleanly within 5 s.
STOP_BUDGET_S = 5.0


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _poll(what: str, probe: Callable[[], bool], timeout_s: float, engine: DockerEngine,
          name: str) -> None:  # fmt: skip
    """Poll ``probe`` every 0.5 s until it is true; on timeout the container's log tail."""

    def logs() -> str:
        return "logs:\n" + engine.docker("logs", "--tail", "40", name, check=False).stdout

    asyncio.run(
        wait_until(probe, what, timeout_s=timeout_s, interval_s=0.5, ignore=(OSError,), detail=logs)
    )


@timed
def test_image_runs_demo_as_non_root_healthy_and_stops_on_sigterm(
    built: Built, timed: bool
) -> None:
    engine = built.engine
    port = free_port()
    name = f"{built.project}-demo"
    # Arrange: the image's default command, demo mode, on the host network and loopback only.
    engine.docker(
        "run", "-d", "--name", name, "--network", "host",
        "-e", "MMRADAR_MODE=demo", "-e", f"MMRADAR_HTTP_LISTEN=127.0.0.1:{port}",
        built.image,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _poll("/healthz 200", lambda: _get(f"{base}/healthz")[0] == 200, 60, engine, name)
        _poll(
            "a valid book (mmradar_book_valid 1) in /metrics",
            lambda: BOOK_VALID.search(_get(f"{base}/metrics")[1]) is not None,
            60, engine, name,
        )  # fmt: skip

        # Not root, and PID 1 is the Python process itself (it gets SIGTERM from docker stop).
        info = engine.inspect(name)
        assert info["Config"]["User"] == "10001:10001"
        assert engine.docker("exec", name, "id", "-u").stdout.strip() == "10001"
        pid1 = engine.docker("exec", name, "cat", "/proc/1/cmdline").stdout.split("\0")
        assert pid1[0].endswith("python3") or pid1[0].endswith("python"), pid1
        assert pid1[1:3] == ["/opt/mmradar/bin/mmradar", "demo"], pid1
        # The hot path is compiled, and the runtime stage has no compiler.
        compiled = engine.docker(
            "exec", name, "python", "-c", "import mmradar.pipeline as m; print(m.__file__)"
        ).stdout.strip()
        assert compiled.endswith(".so"), compiled
        no_cc = engine.docker("exec", name, "sh", "-c", "command -v gcc cc", check=False)
        assert no_cc.returncode != 0 and no_cc.stdout.strip() == "", no_cc.stdout

        # The image's HEALTHCHECK (interval 10 s) reports healthy.
        _poll(
            "HEALTHCHECK healthy",
            lambda: engine.inspect(name)["State"]["Health"]["Status"] == "healthy",
            60, engine, name,
        )  # fmt: skip

        # Act: SIGTERM, as `docker stop` sends it.
        started = time.monotonic()
        engine.docker("kill", "--signal", "TERM", name)
        engine.docker("wait", name, timeout=30)
        stop_s = time.monotonic() - started

        # Assert: a clean stop, well within the budget.
        state = engine.inspect(name)["State"]
        assert state["ExitCode"] == 0, engine.docker("logs", name).stdout[-2000:]
        if timed:
            assert stop_s < STOP_BUDGET_S, f"stopped after {stop_s:.2f} s"
        print(f"build {built.build_s:.0f} s, SIGTERM stop {stop_s:.2f} s")
    finally:
        engine.docker("rm", "-f", name, check=False)


def test_image_size_and_no_build_secret_left(built: Built) -> None:
    engine = built.engine
    size_mb = engine.inspect(built.image)["Size"] / 1e6
    print(f"image {built.image}: {size_mb:.0f} MB")
    # The runtime stage is the base plus the virtual environment (about 50 MB), no toolchain.
    assert size_mb < 600
    leftovers = engine.docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", built.image, "-c",
        "ls /tmp/ca-bundle.pem /run/secrets/ca /src 2>/dev/null; true",
    )  # fmt: skip
    assert leftovers.stdout.strip() == ""


def test_image_entrypoint_runs_subcommands(built: Built) -> None:
    out = built.engine.docker("run", "--rm", "--network", "none", built.image, "--version")
    assert out.stdout.strip().startswith("mmradar ")
    bad = built.engine.docker(
        "run", "--rm", "--network", "none", "-e", "MMRADAR_MODE=nope", built.image, check=False
    )
    assert bad.returncode == 2
    assert "MMRADAR_MODE must be run or demo" in bad.stdout


@timed
def test_compose_runs_receiver_from_the_image_and_logs_alerts(
    built: Built, tmp_path: Path, timed: bool
) -> None:
    """`docker compose up` of mmradar (demo) and alert-receiver from the shipped file, on the
    host network: the receiver logs a posted Alertmanager notification; `down` is quick."""
    engine = built.engine
    metrics_port, receiver_port = free_port(), free_port()
    override = tmp_path / "host.override.yml"
    override.write_text(
        f"""\
services:
  mmradar:
    network_mode: host
    ports: !reset []
    environment:
      MMRADAR_HTTP_LISTEN: 127.0.0.1:{metrics_port}
  alert-receiver:
    network_mode: host
    command: ["python", "-m", "mmradar.receiver", "--listen", "127.0.0.1:{receiver_port}"]
    healthcheck:
      test: ["CMD", "python", "/usr/local/bin/mmradar-healthcheck",
             "http://127.0.0.1:{receiver_port}/healthz"]
"""
    )
    project = f"{built.project}-up"
    compose = ["-p", project, "-f", "docker-compose.yml", "-f", str(built.build_override),
               "-f", str(override)]  # fmt: skip
    # A tag that does not exist yet, as on a first `up`: compose builds it for the mmradar
    # service (every layer cached by now) and alert-receiver, which never pulls, runs it too.
    image = f"{project}:latest"
    engine.track_image(image)
    env = {"MMRADAR_IMAGE": image, "MMRADAR_BASE_IMAGE": built.base_image, "MMRADAR_MODE": "demo"}
    try:
        engine.compose(*compose, "up", "-d", "--wait", "--wait-timeout", "90",
                       "alert-receiver", timeout=600, env=env)  # fmt: skip
        ps = engine.compose(*compose, "ps", "--format", "json", env=env).stdout
        states = {}
        for line in ps.splitlines():
            row = json.loads(line)
            states[row["Service"]] = row["Health"]
        assert states == {"mmradar": "healthy", "alert-receiver": "healthy"}

        payload = {
            "version": "4",
            "receiver": "mmradar-webhook",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "MMRadarLiquidityPull", "symbol": "BTCUSDT"},
                    "annotations": {"summary": "near-touch depth collapsed on both sides"},
                    "startsAt": "2026-01-02T03:04:05Z",
                }
            ],
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{receiver_port}/alerts",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        expected = (
            "FIRING MMRadarLiquidityPull symbol=BTCUSDT startsAt=2026-01-02T03:04:05Z"
            " - near-touch depth collapsed on both sides"
        )

        def logged() -> bool:
            logs = engine.compose(*compose, "logs", "alert-receiver", env=env).stdout
            return expected in logs

        asyncio.run(
            wait_until(logged, f"{expected!r} in the receiver's log", timeout_s=limit(10, timed))
        )

        started = time.monotonic()
        engine.compose(*compose, "down", "-t", "10", timeout=120, env=env)
        down_s = time.monotonic() - started
        # Both stop on SIGTERM at once; without it compose would wait 10 s per container.
        if timed:
            assert down_s < 8, f"compose down took {down_s:.1f} s"
        print(f"compose down {down_s:.1f} s")
    finally:
        engine.compose(*compose, "down", "-t", "2", "-v", check=False, timeout=120, env=env)
