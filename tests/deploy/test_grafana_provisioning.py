"""grafana/provisioning/ checked against Grafana's provisioning format, without a Grafana server.

No Grafana can run on the test machines (no Debian package, no pullable image: docs/docker.md),
so the stack test runs without it. Instead the files are parsed with PyYAML and checked against
the structures Grafana reads them into (``apiVersion: 1``): the keys of a data source and of a
dashboard provider, their types and allowed values, and how they fit docker-compose.yml (the
data source URL names the Prometheus service and its port; the provider's path is where the
dashboards are mounted, and holds them). Grafana ignores unknown keys silently (a misspelled
``isDefualt`` just does nothing), which is why unknown keys are errors here.

Format: https://grafana.com/docs/grafana/latest/administration/provisioning/ and Grafana's
reader, github.com/grafana/grafana pkg/services/provisioning/datasources/types.go and
config_reader.go, pkg/services/provisioning/dashboards/types.go and file_reader.go. The
dashboards themselves are checked by tests/dashboards (schema, data sources, queries).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from .dockerenv import COMPOSE_FILE, REPO
from .test_configs import compose_model, mount_target

PROVISIONING = REPO / "grafana" / "provisioning"
DASHBOARDS = REPO / "grafana" / "dashboards"
PROMETHEUS_YML = REPO / "grafana" / "prometheus" / "prometheus.yml"

#: Directories Grafana reads under its provisioning path.
PROVISIONING_DIRS = {
    "datasources",
    "dashboards",
    "plugins",
    "alerting",
    "notifiers",
    "access-control",
}
#: datasources/*.yml, apiVersion 1 (upsertDataSourceFromConfigV1 and configsV1).
DATASOURCES_FILE_KEYS = {"apiVersion", "datasources", "deleteDatasources", "prune"}
DATASOURCE_KEYS = {
    "orgId", "orgName", "version", "name", "type", "access", "url", "user", "database",
    "basicAuth", "basicAuthUser", "withCredentials", "isDefault", "correlations", "jsonData",
    "secureJsonData", "editable", "uid",
}  # fmt: skip
DATASOURCE_TYPES: dict[str, type | tuple[type, ...]] = {
    "orgId": int, "version": int, "name": str, "type": str, "access": str, "url": str,
    "user": str, "database": str, "basicAuth": bool, "basicAuthUser": str,
    "withCredentials": bool, "isDefault": bool, "correlations": list, "jsonData": dict,
    "secureJsonData": dict, "editable": bool, "uid": str, "orgName": str,
}  # fmt: skip
#: Grafana's own data source ``access`` values; anything else is replaced by proxy with a warning.
ACCESS = {"proxy", "direct"}
#: util.IsValidShortUID: at most 40 characters of letters, digits, '-' and '_'.
UID = re.compile(r"[A-Za-z0-9_-]{1,40}")
#: dashboards/*.yml, apiVersion 1 (configV1 and configs).
DASHBOARDS_FILE_KEYS = {"apiVersion", "providers"}
PROVIDER_KEYS = {
    "name", "type", "orgId", "folder", "folderUid", "editable", "options", "disableDeletion",
    "updateIntervalSeconds", "allowUiUpdates",
}  # fmt: skip
PROVIDER_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "type": str, "orgId": int, "folder": str, "folderUid": str, "editable": bool,
    "options": dict, "disableDeletion": bool, "updateIntervalSeconds": int,
    "allowUiUpdates": bool,
}  # fmt: skip
#: Options of the ``file`` provider (file_reader.go).
FILE_OPTIONS = {"path", "foldersFromFilesStructure"}


def yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yml", ".yaml"))


def _typed(table: dict[str, Any], types: dict[str, Any], where: str) -> list[str]:
    problems = []
    for key, value in table.items():
        want = types.get(key)
        # bool is an int in Python; Grafana's ints are not booleans.
        if want is int and isinstance(value, bool):
            problems.append(f"{where}.{key}: expected an integer, got {value!r}")
        elif want is not None and not isinstance(value, want):
            problems.append(f"{where}.{key}: expected {want.__name__}, got {value!r}")
    return problems


def datasource_problems(doc: Any, services: dict[str, Any]) -> list[str]:
    """What Grafana would ignore, reject or misread in one datasources file, plus mismatches
    with the compose stack ``services`` (``docker compose config`` model)."""
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems = [f"unknown top-level key {k!r}" for k in sorted(set(doc) - DATASOURCES_FILE_KEYS)]
    if doc.get("apiVersion") != 1:
        problems.append(f"apiVersion: expected 1, got {doc.get('apiVersion')!r}")
    sources = doc.get("datasources")
    if not isinstance(sources, list) or not sources:
        return [*problems, "datasources: expected a non-empty list"]
    defaults: dict[int, int] = {}
    names: set[tuple[object, object]] = set()
    for i, source in enumerate(sources):
        where = f"datasources[{i}]"
        if not isinstance(source, dict):
            problems.append(f"{where}: not a mapping")
            continue
        problems += [f"{where}: unknown key {k!r}" for k in sorted(set(source) - DATASOURCE_KEYS)]
        problems += _typed(source, DATASOURCE_TYPES, where)
        for key in ("name", "type", "uid", "url"):
            if not source.get(key):
                problems.append(f"{where}.{key}: missing")
        org = source.get("orgId", 1)
        if (org, source.get("name")) in names:
            problems.append(f"{where}.name: {source.get('name')!r} twice in org {org}")
        names.add((org, source.get("name")))
        if source.get("access", "proxy") not in ACCESS:
            problems.append(f"{where}.access: {source['access']!r} is not one of {sorted(ACCESS)}")
        if not UID.fullmatch(str(source.get("uid", ""))):
            problems.append(f"{where}.uid: {source.get('uid')!r} is not a valid Grafana uid")
        if source.get("isDefault") is True:
            defaults[org] = defaults.get(org, 0) + 1
            if defaults[org] > 1:
                problems.append(f"{where}.isDefault: a second default data source in org {org}")
        if source.get("type") == "prometheus":
            problems += _prometheus_problems(source, services, where)
    return problems


def _prometheus_problems(source: dict[str, Any], services: dict[str, Any], where: str) -> list[str]:
    problems = []
    # Grafana's server (access: proxy) reaches Prometheus by its compose service name.
    if source.get("access", "proxy") != "proxy":
        problems.append(f"{where}.access: the browser cannot resolve compose service names")
    url = urlsplit(str(source.get("url", "")))
    if url.scheme != "http" or url.hostname not in services:
        problems.append(f"{where}.url: {source.get('url')!r} names no compose service")
    elif "image" in services[url.hostname]:
        listen = [a for a in services[url.hostname].get("command", []) if "listen-address" in a]
        port = int(listen[0].rpartition(":")[2]) if listen else 9090  # Prometheus's default
        if url.port != port:
            problems.append(f"{where}.url: port {url.port}, but Prometheus listens on {port}")
    json_data = source.get("jsonData") or {}
    if json_data.get("httpMethod", "POST") not in ("GET", "POST"):
        problems.append(f"{where}.jsonData.httpMethod: {json_data['httpMethod']!r}")
    # $__rate_interval and range-query steps never go below the scrape interval of mmradar.
    scrape = yaml.safe_load(PROMETHEUS_YML.read_text())
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "mmradar"]
    interval = job.get("scrape_interval", scrape["global"]["scrape_interval"])
    if json_data.get("timeInterval") != interval:
        problems.append(
            f"{where}.jsonData.timeInterval: {json_data.get('timeInterval')!r}, but Prometheus "
            f"scrapes mmradar every {interval}"
        )
    return problems


def provider_problems(doc: Any, grafana: dict[str, Any]) -> list[str]:
    """What Grafana would ignore, reject or misread in one dashboard-providers file, plus
    whether each file provider's path is a directory of dashboards that ``grafana`` (its
    ``docker compose config`` model) mounts."""
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems = [f"unknown top-level key {k!r}" for k in sorted(set(doc) - DASHBOARDS_FILE_KEYS)]
    if doc.get("apiVersion") != 1:
        problems.append(f"apiVersion: expected 1, got {doc.get('apiVersion')!r}")
    providers = doc.get("providers")
    if not isinstance(providers, list) or not providers:
        return [*problems, "providers: expected a non-empty list"]
    names: set[str] = set()
    mounts = {
        v["target"]: Path(v["source"]) for v in grafana.get("volumes", []) if v["type"] == "bind"
    }
    for i, provider in enumerate(providers):
        where = f"providers[{i}]"
        if not isinstance(provider, dict):
            problems.append(f"{where}: not a mapping")
            continue
        problems += [f"{where}: unknown key {k!r}" for k in sorted(set(provider) - PROVIDER_KEYS)]
        problems += _typed(provider, PROVIDER_TYPES, where)
        name = provider.get("name")
        if not name:
            problems.append(f"{where}.name: missing")
        elif name in names:
            problems.append(f"{where}.name: {name!r} is not unique")
        names.add(str(name))
        if provider.get("type", "file") != "file":
            problems.append(f"{where}.type: {provider['type']!r}; Grafana has only 'file'")
            continue
        options = provider.get("options")
        if not isinstance(options, dict):
            problems.append(f"{where}.options: missing")
            continue
        problems += [
            f"{where}.options: unknown key {k!r}" for k in sorted(set(options) - FILE_OPTIONS)
        ]
        if options.get("foldersFromFilesStructure") and (
            provider.get("folder") or provider.get("folderUid")
        ):
            problems.append(
                f"{where}: folder/folderUid must be empty with foldersFromFilesStructure"
            )
        path = options.get("path")
        if not isinstance(path, str) or not path:
            problems.append(f"{where}.options.path: missing")
            continue
        host = mounts.get(path)
        if host is None:
            problems.append(
                f"{where}.options.path: {path} is not a directory docker-compose.yml mounts"
            )
        elif not sorted(host.glob("*.json")):
            problems.append(f"{where}.options.path: {path} (mounted from {host}) has no dashboards")
    return problems


def dashboard_problems(directory: Path) -> list[str]:
    """Grafana refuses a provisioned dashboard without a title, and keeps one of two with the
    same uid."""
    problems = []
    uids: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            dashboard = json.loads(path.read_text())
        except ValueError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        if not dashboard.get("title"):
            problems.append(f"{path.name}: no title")
        uid = dashboard.get("uid")
        if not isinstance(uid, str) or not UID.fullmatch(uid):
            problems.append(f"{path.name}: uid {uid!r} is not a valid Grafana uid")
        elif uid in uids:
            problems.append(f"{path.name}: uid {uid!r} also in {uids[uid]}")
        else:
            uids[uid] = path.name
    return problems


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    model: dict[str, Any] = compose_model(COMPOSE_FILE)["services"]
    return model


def test_provisioning_directory_layout(services: dict[str, Any]) -> None:
    # Mounted at the provisioning path of the Grafana image (GF_PATHS_PROVISIONING), which the
    # compose file does not move.
    grafana = services["grafana"]
    assert mount_target(grafana, PROVISIONING) == "/etc/grafana/provisioning"
    assert "GF_PATHS_PROVISIONING" not in grafana.get("environment", {})
    subdirs = {p.name for p in PROVISIONING.iterdir() if p.is_dir()}
    assert subdirs <= PROVISIONING_DIRS, subdirs - PROVISIONING_DIRS
    assert {"datasources", "dashboards"} <= subdirs
    # Grafana reads only *.yml/*.yaml there: anything else would be silently ignored.
    for sub in subdirs:
        for path in (PROVISIONING / sub).iterdir():
            assert path.suffix in (".yml", ".yaml"), path


def test_datasources_follow_grafanas_format(services: dict[str, Any]) -> None:
    files = yaml_files(PROVISIONING / "datasources")
    assert files
    uids = set()
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert datasource_problems(doc, services) == [], path.name
        uids |= {s["uid"] for s in doc["datasources"]}
    # The uid every dashboard refers to (tests/dashboards checks each reference).
    assert "prometheus" in uids


def test_dashboard_providers_follow_grafanas_format(services: dict[str, Any]) -> None:
    files = yaml_files(PROVISIONING / "dashboards")
    assert files
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert provider_problems(doc, services["grafana"]) == [], path.name


def test_provisioned_dashboards_have_titles_and_unique_uids() -> None:
    assert sorted(DASHBOARDS.glob("*.json"))
    assert dashboard_problems(DASHBOARDS) == []


def _datasources() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        (PROVISIONING / "datasources" / "prometheus.yml").read_text()
    )
    return doc


def _providers() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((PROVISIONING / "dashboards" / "mmradar.yml").read_text())
    return doc


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``doc`` with ``a.0.b`` set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


def _rename(doc: dict[str, Any], path: str, new: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[new] = node.pop(last)
    return out


Mutation = Callable[[dict[str, Any]], dict[str, Any]]


def _second_default(doc: dict[str, Any]) -> dict[str, Any]:
    extra = {**doc["datasources"][0], "name": "Prometheus 2", "uid": "prometheus-2"}
    return _set(doc, "datasources", [*doc["datasources"], extra])


# (case, mutation of the shipped file, a fragment of the expected problem)
BROKEN_DATASOURCES: list[tuple[str, Mutation, str]] = [
    ("misspelled key", lambda d: _rename(d, "datasources.0.isDefault", "isDefualt"), "'isDefualt'"),
    ("no apiVersion", lambda d: _set(d, "apiVersion", ...), "apiVersion: expected 1"),
    ("bad access", lambda d: _set(d, "datasources.0.access", "server"), "access: 'server'"),
    ("bad uid", lambda d: _set(d, "datasources.0.uid", "prom etheus"), "not a valid Grafana uid"),
    ("no url", lambda d: _set(d, "datasources.0.url", ...), "url: missing"),
    ("wrong host", lambda d: _set(d, "datasources.0.url", "http://localhost:9090"), "no compose"),
    ("wrong port", lambda d: _set(d, "datasources.0.url", "http://prometheus:9091"), "port 9091"),
    ("string bool", lambda d: _set(d, "datasources.0.isDefault", "yes"), "expected bool"),
    ("two defaults", _second_default, "a second default"),
    ("interval", lambda d: _set(d, "datasources.0.jsonData.timeInterval", "15s"), "timeInterval"),
]
BROKEN_PROVIDERS: list[tuple[str, Mutation, str]] = [
    ("misspelled option", lambda d: _rename(d, "providers.0.options.path", "paht"), "'paht'"),
    (
        "not mounted",
        lambda d: _set(d, "providers.0.options.path", "/var/lib/grafana/dashboards"),
        "not a directory docker-compose.yml mounts",
    ),
    ("no options", lambda d: _set(d, "providers.0.options", ...), "options: missing"),
    ("bad type", lambda d: _set(d, "providers.0.type", "files"), "only 'file'"),
    (
        "folder and structure",
        lambda d: _set(d, "providers.0.options.foldersFromFilesStructure", True),
        "folder/folderUid must be empty",
    ),
    ("interval text", lambda d: _set(d, "providers.0.updateIntervalSeconds", "30"), "expected int"),
    ("same name", lambda d: _set(d, "providers", [*d["providers"], d["providers"][0]]), "unique"),
]


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), BROKEN_DATASOURCES, ids=[c[0] for c in BROKEN_DATASOURCES]
)
def test_datasource_check_catches(
    case: str, mutate: Mutation, expected: str, services: dict[str, Any]
) -> None:
    """The checks above can fail: each broken copy of the shipped file is reported."""
    problems = datasource_problems(mutate(_datasources()), services)
    assert any(expected in p for p in problems), (case, problems)


@pytest.mark.parametrize(
    ("case", "mutate", "expected"), BROKEN_PROVIDERS, ids=[c[0] for c in BROKEN_PROVIDERS]
)
def test_provider_check_catches(
    case: str, mutate: Mutation, expected: str, services: dict[str, Any]
) -> None:
    problems = provider_problems(mutate(_providers()), services["grafana"])
    assert any(expected in p for p in problems), (case, problems)


def test_provider_check_needs_dashboards_in_the_mounted_directory(
    tmp_path: Path, services: dict[str, Any]
) -> None:
    grafana = copy.deepcopy(services["grafana"])
    for volume in grafana["volumes"]:
        if volume["type"] == "bind" and Path(volume["source"]) == DASHBOARDS:
            volume["source"] = str(tmp_path)  # an empty directory
    problems = provider_problems(_providers(), grafana)
    assert any("has no dashboards" in p for p in problems), problems


def test_dashboard_check_catches_missing_title_and_duplicate_uid(tmp_path: Path) -> None:
    first = json.loads(sorted(DASHBOARDS.glob("*.json"))[0].read_text())
    (tmp_path / "a.json").write_text(json.dumps(first))
    (tmp_path / "b.json").write_text(json.dumps({**first, "title": ""}))
    problems = dashboard_problems(tmp_path)
    assert any("b.json: no title" in p for p in problems), problems
    assert any(f"uid {first['uid']!r} also in a.json" in p for p in problems), problems
