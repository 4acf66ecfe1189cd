"""The provisioned Grafana dashboards (``grafana/dashboards/*.json``), checked without Grafana.

Offline: every dashboard validates against the Grafana 12.3.3 dashboard JSON Schema (vendored in
``tests/fixtures/grafana/``), and every panel's ``options`` and ``fieldConfig.defaults.custom``
against the panel-type schema where there is one; data sources are the provisioned ``prometheus``
uid; panel ids are unique; panels have a description, a grid position and do not overlap; the
template variables and cross-dashboard links are in place.

Live: every query a dashboard sends — panel targets, annotation queries, variable queries —
runs against a real Prometheus scraping the service while it plays the real BTCUSDT captures of
two venues, Binance spot and USD-M (:mod:`.live`), with the template variables substituted as
Grafana would, and must return data (at least one finite value over the window), for the demo's
instrument and for "All". The cross-venue panels are also checked to name every venue.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from .grafana import (
    DATASOURCE,
    LABEL_VALUES,
    PANEL_SCHEMAS,
    Dashboard,
    Query,
    data_panels,
    grid_overlaps,
    interpolate,
    load_dashboards,
    panels,
    provisioned_datasource_uids,
    queries,
    schema_registry,
    validator,
    variables_used,
)
from .live import EXCHANGE, INSTRUMENT, RATE_INTERVAL, SYMBOL, VENUES, LiveStack

DASHBOARDS = load_dashboards()
EXPECTED = {"mmradar-overview.json", "mmradar-symbol.json", "mmradar-feed-health.json"}
REGISTRY = schema_registry()
QUERIES = [q for name, d in DASHBOARDS.items() for q in queries(name, d)]
#: Built-in variables the dashboards may use (their values are filled in per query).
BUILTINS = {"__rate_interval", "__interval", "__range"}


def _named(name: str) -> Dashboard:
    return DASHBOARDS[name]


def _variables(dashboard: Dashboard) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def test_the_three_dashboards_exist() -> None:
    assert set(DASHBOARDS) == EXPECTED
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    assert all(d["uid"] == name.removesuffix(".json") for name, d in DASHBOARDS.items())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dashboard_validates_against_grafana_schema(name: str) -> None:
    dashboard = _named(name)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator("dashboard.jsonschema.json", REGISTRY).iter_errors(dashboard)
    ]
    # Items of "panels" are oneOf(Panel, RowPanel): validate each on its own for a precise
    # message instead of one vague oneOf error.
    for panel in dashboard["panels"]:
        kind = "RowPanel" if panel["type"] == "row" else "Panel"
        ref = f"dashboard.jsonschema.json#/definitions/{kind}"
        errors += [
            f"panel {panel.get('id')} {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator(ref, REGISTRY).iter_errors(panel)
        ]
    assert errors == []
    # Grafana 12.3.3 writes schemaVersion 42 (the schema's default for this version).
    default = REGISTRY.contents("dashboard.jsonschema.json")["definitions"]["Dashboard"]
    assert dashboard["schemaVersion"] == default["properties"]["schemaVersion"]["default"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_panel_options_validate_against_panel_schemas(name: str) -> None:
    checked = 0
    errors = []
    for panel in data_panels(_named(name)):
        schema = PANEL_SCHEMAS.get(panel["type"])
        assert schema is not None, f"panel {panel['id']}: no schema for type {panel['type']!r}"
        file = f"panels/{schema}.jsonschema.json"
        parts = [("Options", panel.get("options", {}))]
        custom = panel["fieldConfig"]["defaults"].get("custom")
        definitions = REGISTRY.contents(file)["definitions"]
        if custom is not None and "FieldConfig" in definitions:
            parts.append(("FieldConfig", custom))
        for definition, instance in parts:
            checked += 1
            errors += [
                f"panel {panel['id']} {definition} "
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator(f"{file}#/definitions/{definition}", REGISTRY).iter_errors(
                    instance
                )
            ]
    assert errors == []
    assert checked > 0


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_datasource_is_the_provisioned_prometheus(name: str) -> None:
    dashboard = _named(name)
    refs = []
    for panel in data_panels(dashboard):
        refs.append((f"panel {panel['id']}", panel.get("datasource")))
        assert panel.get("targets"), f"panel {panel['id']} has no query"
        refs += [
            (f"panel {panel['id']} {t['refId']}", t.get("datasource")) for t in panel["targets"]
        ]
    for annotation in dashboard["annotations"]["list"]:
        if not annotation.get("builtIn"):
            refs.append((f"annotation {annotation['name']}", annotation.get("datasource")))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            refs.append((f"variable {variable['name']}", variable.get("datasource")))
    wrong = [(where, ref) for where, ref in refs if ref != DATASOURCE]
    assert wrong == []


def test_the_datasource_uid_is_the_provisioned_one() -> None:
    assert DATASOURCE["uid"] in provisioned_datasource_uids()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_panels_have_ids_positions_and_descriptions(name: str) -> None:
    dashboard = _named(name)
    all_panels = list(panels(dashboard))
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in all_panels:
        grid = panel.get("gridPos")
        assert grid is not None, f"panel {panel['id']} has no gridPos"
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["id"]
        assert panel.get("title"), f"panel {panel['id']} has no title"
    for panel in data_panels(dashboard):
        assert len(panel.get("description", "")) >= 40, f"panel {panel['id']} description"
    assert grid_overlaps(dashboard) == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_units_legends_and_colours(name: str) -> None:
    """A trader reads units and series names at a glance: every data panel has a unit, no
    panel uses Grafana's ``bps`` (bits per second) for basis points, every series has a
    legend, and book validity reads 0 as red."""
    for panel in data_panels(_named(name)):
        defaults = panel["fieldConfig"]["defaults"]
        where = f"panel {panel['id']} {panel['title']!r}"
        if panel["type"] != "heatmap":
            assert defaults.get("unit"), f"{where}: no unit"
            assert defaults["unit"] != "bps", f"{where}: 'bps' is bits/s in Grafana"
        for target in panel["targets"]:
            assert target.get("legendFormat"), f"{where} {target['refId']}: no legend"
        raw_validity = any(t["expr"].startswith("mmradar_book_valid{") for t in panel["targets"])
        if raw_validity and panel["type"] in ("stat", "state-timeline"):
            steps = defaults["thresholds"]["steps"]
            assert steps[0] == {"color": "red", "value": None}, where
            value_map = defaults["mappings"][0]["options"]
            assert value_map["0"]["color"] == "red" and value_map["1"]["color"] == "green"


def test_dealer_pressure_is_signed_red_to_green_on_minus_one_to_one() -> None:
    found = 0
    for name in EXPECTED:
        for panel in data_panels(_named(name)):
            if not any(t["expr"].startswith("mmradar_dealer_pressure{") for t in panel["targets"]):
                continue
            found += 1
            defaults = panel["fieldConfig"]["defaults"]
            assert (defaults["min"], defaults["max"]) == (-1, 1), panel["title"]
            steps = defaults["thresholds"]["steps"]
            assert steps[0]["color"] == "red" and steps[-1]["color"] == "green"
            assert "positive = dealers short = upward pressure" in panel["description"]
    assert found >= 3


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exchange_and_symbol_variables(name: str) -> None:
    dashboard = _named(name)
    variables = _variables(dashboard)
    for var in ("exchange", "symbol"):
        assert var in variables, f"${var} missing"
        match = LABEL_VALUES.match(variables[var]["query"])
        assert match is not None, variables[var]["query"]
        assert match["label"] == var
        assert (match["selector"] or "").startswith("mmradar_book_valid")
    multi = name != "mmradar-symbol.json"
    for var in ("exchange", "symbol"):
        assert variables[var]["multi"] is multi and variables[var]["includeAll"] is multi
    # Multi-value variables must be matched with =~, single-value ones may use =.
    for query in queries(name, dashboard):
        if multi:
            assert 'exchange="$exchange"' not in query.expr, query.id
            assert 'symbol="$symbol"' not in query.expr, query.id
    # Every variable a query, a panel title or a description uses is defined (or one of
    # Grafana's built-ins): Grafana interpolates all of them.
    texts = [(q.id, q.expr) for q in queries(name, dashboard)]
    texts += [
        (f"panel {p['id']}", f"{p.get('title', '')} {p.get('description', '')}")
        for p in panels(dashboard)
    ]
    for where, text in texts:
        unknown = variables_used(text) - set(variables) - BUILTINS
        assert unknown == set(), f"{where}: {unknown}"


def test_overview_links_to_symbol_with_the_instrument() -> None:
    overview = _named("mmradar-overview.json")
    urls = [
        link["url"]
        for panel in data_panels(overview)
        for link in panel["fieldConfig"]["defaults"].get("links", [])
    ]
    assert urls, "no data link from Overview to Symbol"
    symbol_uid = _named("mmradar-symbol.json")["uid"]
    for url in urls:
        assert url.startswith(f"/d/{symbol_uid}/")
        assert "var-exchange=${__field.labels.exchange}" in url
        assert "var-symbol=${__field.labels.symbol}" in url
    # The dashboard links carry variables and time range to the other mmradar dashboards.
    for dashboard in DASHBOARDS.values():
        assert "mmradar" in dashboard["tags"]
        (link,) = dashboard["links"]
        assert link["type"] == "dashboards" and link["tags"] == ["mmradar"]
        assert link["includeVars"] and link["keepTime"]


def test_symbol_annotates_symptom_episodes() -> None:
    annotations = {a["name"]: a for a in _named("mmradar-symbol.json")["annotations"]["list"]}
    episodes = annotations["Symptom episodes"]
    assert episodes["expr"].startswith("mmradar_symptom_active{")
    assert episodes["expr"].endswith("== 1")
    assert "{{symptom}}" in episodes["titleFormat"] and "{{side}}" in episodes["titleFormat"]


# ---------------------------------------------------------------------------------------
# Live: every query returns data from a real Prometheus scraping the demo service
# ---------------------------------------------------------------------------------------


#: What each query variable lists in the live stack: both venues, the one symbol they serve,
#: and the canonical instrument it is on both.
LISTED = {"exchange": sorted(VENUES), "symbol": [SYMBOL], "instrument": [INSTRUMENT]}


def _values(dashboard: Dashboard, everything: bool, window_s: float) -> dict[str, str]:
    """Variable values as Grafana would interpolate them: the demo's instrument, or "All"
    (the variable's allValue) for multi-value variables."""
    values = {
        "__rate_interval": RATE_INTERVAL,
        "__interval": "1s",
        "__range": f"{max(1, math.floor(window_s))}s",
    }
    for name, variable in _variables(dashboard).items():
        if everything and variable.get("includeAll"):
            values[name] = variable["allValue"]
        elif name == "exchange":
            values[name] = EXCHANGE
        elif name == "symbol":
            values[name] = SYMBOL
        elif name == "instrument":
            values[name] = INSTRUMENT
        else:
            values[name] = variable["current"]["value"]
    return values


def _cases() -> list[Any]:
    cases = []
    for query in QUERIES:
        if query.kind == "variable":
            continue
        dashboard = DASHBOARDS[query.dashboard]
        cases.append(pytest.param(query, False, id=f"{query.id} [{EXCHANGE} {SYMBOL}]"))
        if any(v.get("includeAll") for v in _variables(dashboard).values()):
            cases.append(pytest.param(query, True, id=f"{query.id} [All]"))
    return cases


def test_there_are_queries_to_check() -> None:
    kinds = {q.kind for q in QUERIES}
    assert kinds == {"panel", "annotation", "variable"}
    assert len(QUERIES) >= 60


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("query", "everything"), _cases())
async def test_query_returns_data(live: LiveStack, query: Query, everything: bool) -> None:
    end = time.time()
    start = live.first_scrape_s
    expr = interpolate(query.expr, _values(DASHBOARDS[query.dashboard], everything, end - start))
    if query.instant:
        result = await live.instant(expr, at=end)
    else:
        result = await live.range(expr, start, end)
    assert result, f"no series for {expr}"
    assert live.has_finite_sample(result), f"only NaN/Inf for {expr}: {result[:3]}"


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("query", [q for q in QUERIES if q.kind == "variable"], ids=lambda q: q.id)
async def test_variable_query_lists_the_demo_instrument(live: LiveStack, query: Query) -> None:
    values = _values(DASHBOARDS[query.dashboard], everything=True, window_s=60)
    match = LABEL_VALUES.match(interpolate(query.expr, values))
    assert match is not None
    got = await live.label_values(match["label"], match["selector"])
    assert sorted(got) == LISTED[match["label"]]


@pytest.mark.asyncio(loop_scope="module")
async def test_symptom_episode_annotation_marks_the_episode(live: LiveStack) -> None:
    """The annotation query returns the episode with the labels its title is built from,
    and the service delivered the episode's webhook too."""
    (annotation,) = [
        a
        for a in _named("mmradar-symbol.json")["annotations"]["list"]
        if a["name"] == "Symptom episodes"
    ]
    expr = interpolate(annotation["expr"], {"exchange": EXCHANGE, "symbol": SYMBOL})
    result = await live.range(expr, live.first_scrape_s, time.time())
    assert result
    for series in result:
        labels = series["metric"]
        assert labels["exchange"] == EXCHANGE and labels["symbol"] == SYMBOL
        assert labels["symptom"] and labels["side"] in ("both", "bid", "ask", "buy", "sell")
        assert {v for _, v in series["values"]} == {"1"}
    started = {(p["symptom"], p["side"]) for p in live.webhook_posts if p["state"] == "firing"}
    assert started & {(s["metric"]["symptom"], s["metric"]["side"]) for s in result}


def _target(dashboard: str, title: str, ref: str = "A") -> str:
    """The expression of target ``ref`` of the panel titled ``title``."""
    (panel,) = [p for p in data_panels(_named(dashboard)) if p["title"] == title]
    (target,) = [t for t in panel["targets"] if t["refId"] == ref]
    return str(target["expr"])


@pytest.mark.asyncio(loop_scope="module")
async def test_cross_venue_panels_name_every_venue(live: LiveStack) -> None:
    """The cross-venue queries return each venue under its own name: finite dislocations for
    both venues, two valid venues at least once, and a ``venue_withdrawal`` row per venue.

    ``venue_withdrawal`` does not fire on the real captures (neither venue withdraws), so its
    state timeline is checked for what it does show: one quiet (0) row per venue, joined to
    the instrument. The Symbol dashboard's "other venues" target must not repeat the selected
    one."""
    start, end = live.first_scrape_s, time.time()
    overview = _values(_named("mmradar-overview.json"), everything=True, window_s=end - start)
    symbol = _values(_named("mmradar-symbol.json"), everything=False, window_s=end - start)

    def exchanges(result: list[dict[str, Any]]) -> set[str]:
        return {s["metric"]["exchange"] for s in result}

    def finite_by_exchange(result: list[dict[str, Any]]) -> set[str]:
        return {s["metric"]["exchange"] for s in result if live.has_finite_sample([s])}

    title = "Mid dislocation from the cross-venue median"
    expr = interpolate(_target("mmradar-overview.json", title), overview)
    dislocation = await live.range(expr, start, end)
    assert finite_by_exchange(dislocation) == set(VENUES)
    assert {s["metric"]["instrument"] for s in dislocation} == {INSTRUMENT}

    expr = interpolate(_target("mmradar-overview.json", "Valid venues"), overview)
    (venues,) = await live.range(expr, start, end)
    assert max(float(v) for _, v in venues["values"]) == len(VENUES)

    expr = interpolate(_target("mmradar-overview.json", "Venue withdrawal"), overview)
    withdrawal = await live.range(expr, start, end)
    assert exchanges(withdrawal) == set(VENUES)
    for series in withdrawal:
        assert series["metric"]["instrument"] == INSTRUMENT
        assert series["metric"]["symptom"] == "venue_withdrawal"
        assert {v for _, v in series["values"]} <= {"0", "1"}

    this = await live.range(interpolate(_target("mmradar-symbol.json", title), symbol), start, end)
    assert exchanges(this) == {EXCHANGE}
    others = interpolate(_target("mmradar-symbol.json", title, "B"), symbol)
    assert finite_by_exchange(await live.range(others, start, end)) == set(VENUES) - {EXCHANGE}

    share = interpolate(
        _target("mmradar-symbol.json", "Share of consolidated depth (10 bps band)"), symbol
    )
    result = await live.range(share, start, end)
    assert {s["metric"]["side"] for s in result} == {"bid", "ask"}
    # While both venues are valid, each holds part of the consolidated depth.
    values = [float(v) for s in result for _, v in s["values"]]
    assert any(0 < v < 1 for v in values), values[:20]


@pytest.mark.asyncio(loop_scope="module")
async def test_basis_and_lead_lag_panels_name_both_legs(live: LiveStack) -> None:
    """Binance spot and USD-M are the spot and perpetual legs of one instrument: the basis
    panels show that pair with finite values, the lead-lag panels both orders of the pair with
    opposite lags, and the hedge_pressure timeline one row per venue and side."""
    start, end = live.first_scrape_s, time.time()
    overview = _values(_named("mmradar-overview.json"), everything=True, window_s=end - start)
    for title in ("Basis (perpetual - spot)", "Basis z-score"):
        expr = interpolate(_target("mmradar-overview.json", title), overview)
        (series,) = await live.range(expr, start, end)
        labels = series["metric"]
        assert (labels["spot_exchange"], labels["perp_exchange"]) == ("binance", "binance-usdm")
        assert labels["instrument"] == INSTRUMENT
        assert live.has_finite_sample([series]), title
    expr = interpolate(
        _target("mmradar-overview.json", "Flow lead (positive = leader leads)"), overview
    )
    result = await live.instant(expr, at=end)
    pairs = {(s["metric"]["leader"], s["metric"]["follower"]): s["value"][1] for s in result}
    assert set(pairs) == {("binance", "binance-usdm"), ("binance-usdm", "binance")}
    forward, backward = pairs[("binance", "binance-usdm")], pairs[("binance-usdm", "binance")]
    if math.isfinite(float(forward)):
        assert float(forward) == -float(backward)
    expr = interpolate(_target("mmradar-overview.json", "Hedge pressure"), overview)
    rows = await live.range(expr, start, end)
    assert {(s["metric"]["exchange"], s["metric"]["side"]) for s in rows} == {
        (x, side) for x in VENUES for side in ("buy", "sell")
    }
