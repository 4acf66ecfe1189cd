"""The real Prometheus and Alertmanager on 127.0.0.1, and a webhook receiver that records posts.

Used by the alerting tests (docs/alerting.md, "Testing", describes the Debian binaries):

* :func:`require_binary` finds a binary CI installs (``.ci/install-system-deps``): missing is a
  failure when ``CI=true``, a skip otherwise.
* :class:`AlertStack` writes a test-specific ``prometheus.yml`` (1 s scrape and evaluation, the
  *shipped* rules file) and an ``alertmanager.yml`` derived from the *shipped* one (its routes and
  inhibitions kept; the webhook URL pointed at the local receiver and group timings shortened),
  starts both processes with temporary storage, and stops them by PID (terminate, wait, kill).
* :class:`WebhookReceiver` is an aiohttp server on ``127.0.0.1:0`` recording every notification.

Nothing here sleeps for a fixed time: readiness, the first scrape (about 5.5 s after start,
service discovery is throttled) and Alertmanager discovery are polled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from support import free_ports, wait_until

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "grafana" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "mmradar.yml"
RULES_TEST = PROMETHEUS_DIR / "rules" / "mmradar_test.yml"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTMANAGER_CONFIG = REPO / "grafana" / "alertmanager" / "alertmanager.yml"

#: The binaries under their Debian names, with the upstream name as a fallback.
BINARIES: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus",),
    "promtool": ("promtool",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "amtool": ("amtool",),
}

#: What the path may take from a change of the exported gauge to the webhook post: one scrape
#: and one evaluation (1 s each here) plus Alertmanager's dispatch; measured 0.8–1.7 s
#: (docs/alerting.md).
PATH_BUDGET_S = 10.0


def require_binary(name: str) -> str:
    """The path of a binary CI installs; fail (``CI=true``) or skip (elsewhere) when missing.

    Args:
        name: a key of :data:`BINARIES`.
    """
    for candidate in BINARIES[name]:
        path = shutil.which(candidate)
        if path is not None:
            return path
    names = " or ".join(BINARIES[name])
    message = f"{names} not found on PATH; install with: bash .ci/install-system-deps"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def run_tool(argv: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool/amtool; stdout and stderr merged into ``stdout``."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        check=False,
    )


class Process:
    """A child process with its output in a log file; :meth:`stop` ends it by its PID."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_running(self) -> None:
        """Raise with the log tail if the process has exited."""
        rc = self.popen.poll()
        if rc is not None:
            raise AssertionError(f"{self.name} exited with {rc}:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM by PID, wait up to 10 s, then SIGKILL; idempotent."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


Alert = dict[str, Any]
Notification = dict[str, Any]


class WebhookReceiver:
    """Records Alertmanager's webhook posts (``POST /alerts``) on 127.0.0.1."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self.port = 0
        app = web.Application()
        app.router.add_post("/alerts", self._post)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        body["_received_monotonic"] = time.monotonic()
        self.notifications.append(body)
        return web.Response(text="ok")

    def alerts(self, alertname: str | None = None, status: str | None = None) -> list[Alert]:
        """Every alert of every notification so far, optionally filtered."""
        return [
            {**alert, "_received_monotonic": n["_received_monotonic"]}
            for n in self.notifications
            for alert in n["alerts"]
            if (alertname is None or alert["labels"].get("alertname") == alertname)
            and (status is None or alert["status"] == status)
        ]

    def alertnames(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts()}

    async def wait_for(
        self,
        predicate: Callable[[Alert], bool],
        timeout_s: float,
        what: str,
        on_wait: Callable[[], None] = lambda: None,
    ) -> Alert:
        """The first recorded alert matching ``predicate``, waiting up to ``timeout_s``;
        ``on_wait`` is called while none does (it may raise, e.g. a process exited)."""

        def matched() -> Alert | None:
            found = next((a for a in self.alerts() if predicate(a)), None)
            if found is None:
                on_wait()
            return found

        def received() -> str:
            return f"got {[(a['labels'].get('alertname'), a['status']) for a in self.alerts()]}"

        return await wait_until(
            matched,
            f"a webhook notification {what}",
            timeout_s=timeout_s,
            interval_s=0.05,
            detail=received,
        )


def prometheus_config(target: str, alertmanager: str, rules: Path = RULES) -> str:
    """A test ``prometheus.yml`` (JSON is YAML): job ``mmradar`` scraping ``target`` every 1 s."""
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "mmradar", "static_configs": [{"targets": [target]}]}],
    }
    return json.dumps(config, indent=2) + "\n"


def alertmanager_config(webhook_url: str, source: Path = ALERTMANAGER_CONFIG) -> str:
    """The shipped ``alertmanager.yml`` with the webhook pointed at ``webhook_url`` and short
    group timings (``group_wait: 0s``, ``group_interval: 1s``); routes and inhibitions kept."""
    text = source.read_text()
    text, n_url = re.subn(r'(?m)^(\s*-?\s*url:\s*)"[^"]*"', rf'\g<1>"{webhook_url}"', text)
    text, n_wait = re.subn(r"(?m)^(\s*group_wait:\s*)\S+", r"\g<1>0s", text)
    text, n_interval = re.subn(r"(?m)^(\s*group_interval:\s*)\S+", r"\g<1>1s", text)
    assert n_url == 1, f"expected one webhook url in {source}, found {n_url}"
    assert n_wait >= 1 and n_interval >= 1, f"no group timings to shorten in {source}"
    return text


class AlertStack:
    """Prometheus and Alertmanager (real binaries) plus a webhook receiver, on 127.0.0.1.

    Args:
        workdir: where configs, storage and logs go (a ``tmp_path``).
        target: ``host:port`` of the exporter that job ``mmradar`` scrapes; None starts
            Alertmanager and the receiver only.
    """

    def __init__(self, workdir: Path, target: str | None) -> None:
        self.workdir = workdir
        self.target = target
        self.receiver = WebhookReceiver()
        self.processes: list[Process] = []
        self.prometheus_url = ""
        self.alertmanager_url = ""
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "stack not started"
        return self._session

    async def start(self) -> None:
        alertmanager = require_binary("alertmanager")
        prometheus = require_binary("prometheus") if self.target is not None else ""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        await self.receiver.start()

        am_port, prom_port = free_ports(2)
        am_config = self.workdir / "alertmanager.yml"
        am_config.write_text(alertmanager_config(self.receiver.url))
        (self.workdir / "am").mkdir()
        self.alertmanager_url = f"http://127.0.0.1:{am_port}"
        self.processes.append(
            Process(
                "alertmanager",
                [
                    alertmanager,
                    f"--config.file={am_config}",
                    f"--storage.path={self.workdir / 'am'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                self.workdir / "alertmanager.log",
            )
        )
        if self.target is not None:
            prom_config = self.workdir / "prometheus.yml"
            prom_config.write_text(prometheus_config(self.target, f"127.0.0.1:{am_port}"))
            (self.workdir / "tsdb").mkdir()
            self.prometheus_url = f"http://127.0.0.1:{prom_port}"
            self.processes.append(
                Process(
                    "prometheus",
                    [
                        prometheus,
                        f"--config.file={prom_config}",
                        f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                    ],
                    self.workdir / "prometheus.log",
                )
            )

    async def stop(self) -> None:
        """Stop every process by PID, then the receiver; safe after a partial start."""
        try:
            for process in reversed(self.processes):
                process.stop()
        finally:
            if self._session is not None:
                await self._session.close()
            await self.receiver.stop()

    def check_running(self) -> None:
        for process in self.processes:
            process.check_running()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} log ---\n{p.log_tail()}" for p in self.processes)

    async def _get_json(self, url: str, **params: str) -> Any:
        async with self.session.get(url, params=params) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def _poll(self, what: str, probe: Callable[[], Any], timeout_s: float) -> Any:
        async def running_probe() -> Any:
            self.check_running()
            return await probe()

        return await wait_until(
            running_probe,
            what,
            timeout_s=timeout_s,
            interval_s=0.1,
            ignore=(aiohttp.ClientError, TimeoutError),
            detail=self.logs,
        )

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query against Prometheus: the result vector."""
        body = await self._get_json(f"{self.prometheus_url}/api/v1/query", query=expr)
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    async def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Until Alertmanager answers and, with a target, Prometheus has scraped it (``up`` 1)
        and discovered Alertmanager."""

        async def ready(url: str) -> bool:
            async with self.session.get(f"{url}/-/ready") as resp:
                return resp.status == 200

        await self._poll("alertmanager ready", lambda: ready(self.alertmanager_url), timeout_s)
        if self.target is None:
            return
        await self._poll("prometheus ready", lambda: ready(self.prometheus_url), timeout_s)

        async def scraped() -> bool:
            result = await self.query('up{job="mmradar"}')
            return any(r["value"][1] == "1" for r in result)

        async def discovered() -> bool:
            body = await self._get_json(f"{self.prometheus_url}/api/v1/alertmanagers")
            return bool(body["data"]["activeAlertmanagers"])

        await self._poll('up{job="mmradar"} == 1', scraped, timeout_s)
        await self._poll("alertmanager discovered by prometheus", discovered, timeout_s)

    async def rules(self) -> list[dict[str, Any]]:
        """Prometheus' loaded alerting rules (``/api/v1/rules``), flattened."""
        body = await self._get_json(f"{self.prometheus_url}/api/v1/rules", type="alert")
        return [rule for group in body["data"]["groups"] for rule in group["rules"]]

    async def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts straight to Alertmanager (``POST /api/v2/alerts``)."""
        async with self.session.post(f"{self.alertmanager_url}/api/v2/alerts", json=alerts) as r:
            assert r.status == 200, await r.text()

    async def alertmanager_alerts(self) -> list[dict[str, Any]]:
        """Alertmanager's view (``GET /api/v2/alerts``), with inhibition status."""
        return list(await self._get_json(f"{self.alertmanager_url}/api/v2/alerts"))
