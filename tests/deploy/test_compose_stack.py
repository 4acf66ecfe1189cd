"""`docker compose up` of the whole stack, end to end, on a real Docker engine (docs/docker.md).

mmradar (demo mode: the embedded exchange, no internet) → Prometheus in a container scraping it
by service name, with the shipped rules → Alertmanager in a container → the alert receiver,
whose log shows the alert. Then `down` (quick, every exit code 0) and `up` again on the same
volumes (Prometheus still has the samples from before). Then the two-shard example: both
replicas scraped, every instrument exported by exactly one of them.

The shipped docker-compose.yml and deploy/compose.shards.yml run unchanged, with the images
they pin (stand-ins built from Debian's packages of the same versions in the tests' own dockerd:
conftest.py, standins/Dockerfile), Prometheus's and Alertmanager's shipped configs and
intervals, plus the test-only overrides compose.test.yml (one loopback network namespace for
the stack, service names in /etc/hosts, no Grafana) and compose.test-shards.yml. The test
reaches the APIs with `docker exec` into that namespace.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mmradar.config import load_settings
from support import timed, wait_until

from .dockerenv import COMPOSE_FILE, REPO, Built, DockerEngine, StackImages

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

HERE = Path(__file__).resolve().parent
TEST_OVERRIDE = HERE / "compose.test.yml"
SHARDS_FILE = REPO / "deploy" / "compose.shards.yml"
SHARDS_OVERRIDE = HERE / "compose.test-shards.yml"
#: The shards' config as the containers see it (compose.test-shards.yml mounts tests/ there).
SHARDS_CONFIG = "/mmradar-tests/deploy/stack/shards.toml"

# Deadlines, from the start of `docker compose up` (images already built).
#: Every service healthy per its own health check (the start-up is ordered by them, ~20 s).
HEALTHY_S = 180.0
#: Prometheus scrapes mmradar (its service discovery is throttled to 5 s; scrape interval 5 s).
SCRAPED_S = 60.0
#: The first symptom alert in the receiver's log: the demo's cycle starts its first stress
#: episode after 240 s of event time at 5x (48 s), with a 36 s detector warm-up; then at most
#: a scrape (5 s), a rule evaluation (5 s) and Alertmanager's group_wait (2 s for pages,
#: 30 s otherwise). Measured: about 60 s (docs/docker.md).
FIRST_ALERT_S = 300.0
#: `docker compose down`: every container stopped and removed.
DOWN_S = 10.0

FIRING = re.compile(
    r"^(?P<ts>\S+) .*mmradar\.receiver: FIRING (?P<alertname>\w+) (?P<labels>.*?)"
    r" startsAt=(?P<starts>\S+)(?: - (?P<summary>.*))?$"
)
# The probe run inside the stack's namespace: GET a URL, print the status and the body.
PROBE = (
    "import sys, urllib.error, urllib.request\n"
    "try:\n"
    "    r = urllib.request.urlopen(sys.argv[1], timeout=5)\n"
    "    status, body = r.status, r.read()\n"
    "except urllib.error.HTTPError as e:\n"
    "    status, body = e.code, e.read()\n"
    "print(status)\n"
    "sys.stdout.write(body.decode())\n"
)

T = TypeVar("T")


def parse_time(text: str) -> float:
    """RFC 3339 with up to nanoseconds (Docker's log timestamps) -> Unix seconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


class Stack:
    """One compose project of the shipped files plus the test overrides."""

    def __init__(
        self, engine: DockerEngine, project: str, files: list[Path], env: Mapping[str, str]
    ) -> None:
        self.engine = engine
        self.project = project
        self.files = files
        self.env = dict(env)

    def compose(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> tuple[int, str, float]:
        argv: list[str | Path] = ["-p", self.project]
        for f in self.files:
            argv += ["-f", f]
        started = time.monotonic()
        proc = self.engine.compose(*argv, *args, env=self.env, timeout=timeout, check=check)
        return proc.returncode, proc.stdout, time.monotonic() - started

    def up(self) -> float:
        """`up -d --wait`: returns when every service is healthy; the wall time it took."""
        code, out, took = self.compose(
            "up", "-d", "--wait", "--wait-timeout", f"{HEALTHY_S:.0f}",
            timeout=HEALTHY_S + 120, check=False,
        )  # fmt: skip
        if code != 0:
            states = {name: row["Status"] for name, row in self.ps().items()}
            raise AssertionError(
                f"docker compose up: not every service healthy within {HEALTHY_S:g} s "
                f"(exit {code}): {states}\n{out[-2000:]}\n{self.diagnostics()}"
            )
        return took

    def ps(self) -> dict[str, dict[str, Any]]:
        """``{service: row}`` of `docker compose ps -a --format json`."""
        out = self.compose("ps", "-a", "--format", "json")[1]
        rows = [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]
        return {row["Service"]: row for row in rows}

    def get(self, url: str) -> tuple[int, str]:
        """GET ``url`` from inside the stack's network namespace (the `netns` container)."""
        proc = self.engine.docker(
            "exec", f"{self.project}-netns-1", "python", "-c", PROBE, url, timeout=30, check=False
        )
        status, _, body = proc.stdout.partition("\n")
        if proc.returncode != 0 or not status.isdigit():
            return 0, proc.stdout
        return int(status), body

    def api(self, url: str) -> Any:
        status, body = self.get(url)
        assert status == 200, (url, status, body[-500:])
        return json.loads(body)

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Prometheus instant query (at ``at``, default now): the result vector."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        doc = self.api(f"http://prometheus:9090/api/v1/query?{urllib.parse.urlencode(params)}")
        assert doc["status"] == "success", doc
        result: list[dict[str, Any]] = doc["data"]["result"]
        return result

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", "--no-log-prefix", "-t", service)[1]

    def wait(self, what: str, probe: Callable[[], T | None], timeout_s: float) -> T:
        """Poll ``probe`` every second until it returns something other than None/False."""
        found = asyncio.run(
            wait_until(probe, what, timeout_s=timeout_s, interval_s=1.0, detail=self.diagnostics)
        )
        assert found is not None
        return found

    def diagnostics(self) -> str:
        _, out, _ = self.compose("logs", "--no-color", "--tail", "15", timeout=60, check=False)
        return out[-6000:]

    def down(self) -> tuple[float, dict[str, int]]:
        """`down` (volumes kept): its wall time and the exit code of every container it stopped
        (from the daemon's ``die`` events)."""
        since = time.time()
        _, _, took = self.compose("down", "-t", f"{DOWN_S:.0f}", timeout=120)
        events = self.engine.docker(
            "events", "--since", f"{since - 1:.3f}", "--until", f"{time.time():.3f}",
            "--filter", "type=container", "--filter", "event=die",
            "--filter", f"label=com.docker.compose.project={self.project}",
            "--format", "{{json .Actor.Attributes}}",
        ).stdout  # fmt: skip
        codes = {}
        for line in events.splitlines():
            attrs = json.loads(line)
            codes[attrs["com.docker.compose.service"]] = int(attrs["exitCode"])
        return took, codes

    def remove(self) -> None:
        self.compose("down", "-v", "-t", "2", timeout=120, check=False)


def targets(stack: Stack, job: str) -> dict[str, str]:
    """``{scrape URL: health}`` of the active targets of ``job``."""
    doc = stack.api("http://prometheus:9090/api/v1/targets?state=active")
    return {
        t["scrapeUrl"]: t["health"]
        for t in doc["data"]["activeTargets"]
        if t["labels"].get("job") == job
    }


def alertmanagers(stack: Stack) -> list[str]:
    """The URLs of the Alertmanagers Prometheus sends alerts to."""
    doc = stack.api("http://prometheus:9090/api/v1/alertmanagers")
    return [am["url"] for am in doc["data"]["activeAlertmanagers"]]


def assert_all_healthy(stack: Stack, expected: set[str]) -> None:
    rows = stack.ps()
    assert set(rows) == expected, sorted(rows)
    for service, row in rows.items():
        assert row["State"] == "running", (service, row["Status"])
        assert row["Health"] == "healthy", (service, row["Status"])


def first_symptom_alert(stack: Stack) -> dict[str, Any] | None:
    """The first symptom alert the receiver logged (timestamp, alert name, labels), or None."""
    for line in stack.logs("alert-receiver").splitlines():
        match = FIRING.match(line)
        if match is None:
            continue
        labels = dict(kv.split("=", 1) for kv in match["labels"].split())
        if labels.get("category") == "symptom":
            return {
                "at": parse_time(match["ts"]),
                "alertname": match["alertname"],
                "labels": labels,
                "summary": match["summary"],
            }
    return None


def am_metric(text: str, name: str, integration: str) -> float:
    pattern = re.compile(rf'^{name}\{{integration="{integration}"\}} (\S+)$', re.MULTILINE)
    found = pattern.search(text)
    assert found is not None, f"{name}{{integration={integration!r}}} not in Alertmanager /metrics"
    return float(found[1])


@pytest.fixture
def main_stack(engine: DockerEngine, built: Built, prom_images: StackImages) -> Any:
    project = f"{built.project}-stack"
    env = {"MMRADAR_IMAGE": built.image, "MMRADAR_MODE": "demo"}
    running = Stack(engine, project, [COMPOSE_FILE, TEST_OVERRIDE], env)
    try:
        yield running
    finally:
        running.remove()


@timed
def test_compose_stack_alert_reaches_the_receiver_and_data_survives_a_restart(
    main_stack: Stack, prom_images: StackImages, timed: bool
) -> None:
    s = main_stack
    # -- up: every service healthy by its own health check ------------------------------------
    t_up = time.time()
    up_s = s.up()
    services = {"mmradar", "alert-receiver", "alertmanager", "prometheus", "netns"}
    assert_all_healthy(s, services)
    # The pinned images run (the stand-ins where they were built): not something else.
    images = prom_images
    for service, image in (("prometheus", images.prometheus),
                           ("alertmanager", images.alertmanager)):  # fmt: skip
        cid = s.ps()[service]["ID"]
        assert s.engine.inspect(cid)["Config"]["Image"] == image

    # -- Prometheus scrapes mmradar by its service name, and knows Alertmanager by its own ----
    s.wait(
        "Prometheus scraping http://mmradar:9464/metrics successfully",
        lambda: targets(s, "mmradar") == {"http://mmradar:9464/metrics": "up"},
        SCRAPED_S,
    )
    s.wait(
        "Alertmanager discovered by Prometheus",
        lambda: alertmanagers(s) == ["http://alertmanager:9093/api/v2/alerts"],
        SCRAPED_S,
    )
    valid = s.wait(
        "mmradar_book_valid == 1 in Prometheus",
        lambda: [r for r in s.query("mmradar_book_valid == 1")] or None,
        SCRAPED_S,
    )
    assert [(r["metric"]["exchange"], r["metric"]["symbol"]) for r in valid] == [
        ("binance", "BTCUSDT")
    ]
    assert valid[0]["metric"]["instance"] == "mmradar:9464"
    # The shipped rule files are loaded (mounted from grafana/prometheus).
    groups = s.api("http://prometheus:9090/api/v1/rules")["data"]["groups"]
    assert "mmradar-symptoms" in {g["name"] for g in groups}

    # -- the demo's cycle fires a symptom; its alert reaches the receiver via Alertmanager -----
    alert = s.wait("a symptom alert in the receiver's log", lambda: first_symptom_alert(s),
                   FIRST_ALERT_S)  # fmt: skip
    first_alert_s = alert["at"] - t_up
    labels = alert["labels"]
    assert alert["alertname"].startswith("MMRadar"), alert
    assert labels["instance"] == "mmradar:9464" and labels["job"] == "mmradar", labels
    assert (labels["exchange"], labels["symbol"]) == ("binance", "BTCUSDT"), labels
    # It is the alert of a symptom episode the service started, which the rule turned into
    # a firing alert in Prometheus...
    match = f'symptom="{labels["symptom"]}",side="{labels["side"]}"'
    episodes = s.query(f"mmradar_symptom_episodes_total{{{match}}}")
    assert episodes and float(episodes[0]["value"][1]) >= 1, episodes
    fired = s.query(
        f'max_over_time(ALERTS{{alertname="{alert["alertname"]}",alertstate="firing",{match}}}'
        "[15m])"
    )
    assert fired and fired[0]["value"][1] == "1", fired
    # ... and Alertmanager delivered it to the webhook (the receiver), none failed.
    status, am_metrics = s.get("http://alertmanager:9093/metrics")
    assert status == 200
    assert am_metric(am_metrics, "alertmanager_notifications_total", "webhook") >= 1
    assert am_metric(am_metrics, "alertmanager_notifications_failed_total", "webhook") == 0

    # -- down: quick, every container exits 0 --------------------------------------------------
    before = s.query('timestamp(mmradar_book_valid{exchange="binance",symbol="BTCUSDT"})')
    t_old = float(before[0]["value"][1])
    prometheus_id = s.ps()["prometheus"]["ID"]
    down_s, codes = s.down()
    assert codes == dict.fromkeys(services, 0), codes
    if timed:
        assert down_s < DOWN_S, f"docker compose down took {down_s:.1f} s"
    assert s.ps() == {}

    # -- up again on the same volumes: the samples from before the restart are there ---------
    up2_s = s.up()
    assert_all_healthy(s, services)
    assert s.ps()["prometheus"]["ID"] != prometheus_id  # a new container, the old volume
    series = 'mmradar_book_valid{exchange="binance",symbol="BTCUSDT"}'
    old = s.query(series, at=t_old)
    assert [r["value"][1] for r in old] == ["1"], old
    stamp = s.query(f"timestamp({series})", at=t_old)
    assert [float(r["value"][1]) for r in stamp] == [t_old], stamp
    down2_s, codes = s.down()
    assert codes == dict.fromkeys(services, 0), codes
    if timed:
        assert down2_s < DOWN_S, f"docker compose down took {down2_s:.1f} s"

    print(
        f"\nstack ({'stand-in' if images.standin else 'registry'} images, made in "
        f"{images.build_s:.0f} s): up {up_s:.1f} s; first alert {first_alert_s:.1f} s after up "
        f"({alert['alertname']} {labels['symptom']}/{labels['side']}); down {down_s:.1f} s; "
        f"up again {up2_s:.1f} s; down {down2_s:.1f} s"
    )


@pytest.fixture
def shards_stack(engine: DockerEngine, built: Built, prom_images: StackImages) -> Any:
    project = f"{built.project}-shards"
    env = {"MMRADAR_IMAGE": built.image, "MMRADAR_CONFIG": SHARDS_CONFIG}
    files = [COMPOSE_FILE, SHARDS_FILE, TEST_OVERRIDE, SHARDS_OVERRIDE]
    running = Stack(engine, project, files, env)
    try:
        yield running
    finally:
        running.remove()


@timed
def test_compose_shards_both_scraped_every_instrument_once(
    shards_stack: Stack, timed: bool
) -> None:
    s = shards_stack
    t_up = time.time()
    s.up()
    services = {"mmradar", "mmradar-1", "alert-receiver", "alertmanager", "prometheus", "netns",
                "exchange"}  # fmt: skip
    assert_all_healthy(s, services)

    # Both replicas scraped by the names the shipped prometheus.compose-shards.yml lists.
    s.wait(
        "Prometheus scraping both shards",
        lambda: (
            targets(s, "mmradar")
            == {"http://mmradar-0:9464/metrics": "up", "http://mmradar-1:9464/metrics": "up"}
        ),
        SCRAPED_S,
    )
    # Every configured instrument valid on exactly one replica: the one whose share it is.
    config = REPO / "tests" / "deploy" / "stack" / "shards.toml"
    expected: dict[tuple[str, str], str] = {}
    for index in (0, 1):
        settings = load_settings(config, env={"MMRADAR_SHARD": f"{index}/2"})
        for feed in settings.feeds:
            for symbol in feed.symbols:
                assert (feed.exchange, symbol) not in expected
                expected[(feed.exchange, symbol)] = f"mmradar-{index}:9464"
    assert set(expected.values()) == {"mmradar-0:9464", "mmradar-1:9464"}  # both own some

    def exported() -> dict[tuple[str, str], list[str]] | None:
        rows = s.query("mmradar_book_valid")
        found: dict[tuple[str, str], list[str]] = {}
        for r in rows:
            m = r["metric"]
            found.setdefault((m["exchange"], m["symbol"]), []).append(m["instance"])
        ready = set(found) == set(expected) and all(r["value"][1] == "1" for r in rows)
        return found if ready else None

    found = s.wait("every instrument's book valid in Prometheus", exported, SCRAPED_S)
    assert found == {pair: [instance] for pair, instance in expected.items()}
    ready_s = time.time() - t_up
    down_s, codes = s.down()
    assert codes == dict.fromkeys(services, 0), codes
    if timed:
        assert down_s < DOWN_S, f"docker compose down took {down_s:.1f} s"
    print(f"\nshards: every book valid {ready_s:.1f} s after up; down {down_s:.1f} s")
