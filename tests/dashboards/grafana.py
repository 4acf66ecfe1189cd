"""Reading the provisioned dashboards the way Grafana does, without a Grafana server.

* :func:`load_dashboards` reads ``grafana/dashboards/*.json``.
* :func:`schema_registry` registers the Grafana 12.3.3 dashboard JSON Schema and the optional
  panel-type schemas vendored in ``tests/fixtures/grafana/`` (provenance, licence and sha256 in
  its ``SOURCES.md``) under their relative paths,
  so ``{"$ref": "panels/stat.jsonschema.json#/definitions/Options"}`` resolves.
* :func:`queries` lists every PromQL expression a dashboard sends to Prometheus: panel targets,
  annotation queries and template-variable queries.
* :func:`interpolate` substitutes template variables (``$name``, ``${name}``,
  ``${name:format}``, ``[[name]]``) the way the Prometheus data source does, and refuses a
  variable it does not know.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
#: Grafana 12.3.3's dashboard schema and the panel schemas, vendored unmodified (Apache-2.0).
GRAFANA_SCHEMAS = REPO / "tests" / "fixtures" / "grafana"

#: The data source every panel, target, annotation and variable must use: the provisioned
#: Prometheus data source has this fixed uid.
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

PROVISIONED_DATASOURCES = REPO / "grafana" / "provisioning" / "datasources"

#: Panel ``type`` → the optional panel schema file (``panels/<file>.jsonschema.json``).
PANEL_SCHEMAS: Mapping[str, str] = {
    "timeseries": "timeseries",
    "stat": "stat",
    "table": "table",
    "state-timeline": "statetimeline",
    "heatmap": "heatmap",
    "bargauge": "bargauge",
}

Dashboard = dict[str, Any]
Panel = dict[str, Any]


def provisioned_datasource_uids() -> set[str]:
    """The ``uid`` of every data source in ``grafana/provisioning/datasources/*.yml`` (read
    line by line: the files are flat YAML, and the test environment has no YAML parser)."""
    uid = re.compile(r"""^\s*(?:-\s+)?uid:\s*["']?([\w.-]+)["']?\s*(?:#.*)?$""")
    return {
        m.group(1)
        for path in sorted(PROVISIONED_DATASOURCES.glob("*.y*ml"))
        for line in path.read_text().splitlines()
        if (m := uid.match(line))
    }


def load_dashboards() -> dict[str, Dashboard]:
    """``{file name: dashboard}`` of every provisioned dashboard."""
    return {
        path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))
    }


def schema_registry() -> Registry[Any]:
    """Every ``*.jsonschema.json`` under the vendored Grafana folder, by relative path."""
    return Registry().with_resources(
        (
            path.relative_to(GRAFANA_SCHEMAS).as_posix(),
            Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT7),
        )
        for path in sorted(GRAFANA_SCHEMAS.rglob("*.jsonschema.json"))
    )


def validator(ref: str, registry: Registry[Any]) -> Draft7Validator:
    """A validator for one schema or definition, e.g. ``dashboard.jsonschema.json``."""
    return Draft7Validator({"$ref": ref}, registry=registry)


def panels(dashboard: Dashboard) -> Iterator[Panel]:
    """Every panel, rows and the panels nested in collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def data_panels(dashboard: Dashboard) -> Iterator[Panel]:
    """Every panel that is not a row."""
    return (p for p in panels(dashboard) if p["type"] != "row")


@dataclass(frozen=True)
class Query:
    """One PromQL expression a dashboard sends, and where it comes from."""

    dashboard: str
    where: str  # "panel 7 'Dealer pressure' A", "annotation 'Symptom episodes'", ...
    expr: str
    kind: str  # "panel", "annotation" or "variable"
    instant: bool = False

    @property
    def id(self) -> str:
        return f"{self.dashboard.removesuffix('.json')}: {self.where}"


def queries(name: str, dashboard: Dashboard) -> Iterator[Query]:
    """Every PromQL expression of ``dashboard`` (file ``name``)."""
    for panel in data_panels(dashboard):
        for target in panel.get("targets", []):
            yield Query(
                name,
                f"panel {panel['id']} {panel.get('title', '')!r} {target['refId']}",
                target["expr"],
                "panel",
                instant=bool(target.get("instant")) and not target.get("range"),
            )
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            yield Query(
                name, f"annotation {annotation['name']!r}", annotation["expr"], "annotation"
            )
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield Query(name, f"variable ${variable['name']}", variable["query"], "variable")


#: ``label_values(selector, label)``: what a Prometheus query variable asks for.
LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")

_VARIABLE = re.compile(
    r"\$\{(?P<braced>\w+)(?::(?P<format>\w+))?\}|\[\[(?P<bracket>\w+)\]\]|\$(?P<plain>\w+)"
)


def variables_used(text: str) -> set[str]:
    """Names of the template variables referenced in ``text``."""
    return {
        m.group("braced") or m.group("bracket") or m.group("plain")
        for m in _VARIABLE.finditer(text)
    }


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every template variable replaced by ``values[name]``.

    Raises:
        KeyError: a variable that ``values`` does not define.
    """

    def replace(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bracket") or m.group("plain")
        if name not in values:
            raise KeyError(f"unknown template variable ${name} in {text!r}")
        return values[name]

    return _VARIABLE.sub(replace, text)


def grid_overlaps(dashboard: Dashboard) -> list[tuple[int, int]]:
    """Pairs of panel ids whose grid rectangles overlap (top-level panels)."""
    boxes = [(p["id"], p["gridPos"]) for p in dashboard.get("panels", []) if "gridPos" in p]
    overlaps = []
    for i, (id_a, a) in enumerate(boxes):
        for id_b, b in boxes[i + 1 :]:
            if (
                a["x"] < b["x"] + b["w"]
                and b["x"] < a["x"] + a["w"]
                and a["y"] < b["y"] + b["h"]
                and b["y"] < a["y"] + a["h"]
            ):
                overlaps.append((id_a, id_b))
    return overlaps
