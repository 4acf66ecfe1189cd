"""The shipped Prometheus and Alertmanager files, checked by the real promtool and amtool.

* ``promtool check rules`` / ``promtool test rules`` / ``promtool check config`` and
  ``amtool check-config`` on the shipped files: exit 0 and SUCCESS.
* Negative controls: a deliberately broken copy of each file fails, so these tests can fail.
* Coverage: one alert per symptom of the contract plus the three health alerts, each with a
  firing and a not-firing unit test; symptom alerts read ``mmradar_symptom_active`` only.
* Every ``mmradar_*`` metric the rules and runbooks name is one the service exports.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.signals.episodes import (
    CROSS_VENUE_SYMPTOM_SIDES,
    HEDGE_SYMPTOM_SIDES,
    SYMPTOM_SIDES,
)
from mmradar.venues import VENUE_NAMES

from .harness import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    RULES,
    RULES_TEST,
    require_binary,
    run_tool,
)

SYMPTOM_ALERTS = {
    "spread_widening": "MMRadarSpreadWidening",
    "liquidity_evaporation": "MMRadarLiquidityEvaporation",
    "depth_asymmetry": "MMRadarDepthAsymmetry",
    "liquidity_pull": "MMRadarLiquidityPull",
    "quote_skew": "MMRadarQuoteSkew",
    "volatility_spike": "MMRadarVolatilitySpike",
    "venue_withdrawal": "MMRadarVenueWithdrawal",
    "hedge_pressure": "MMRadarHedgePressure",
}
HEALTH_ALERTS = {"MMRadarFeedDown", "MMRadarBookInvalid", "MMRadarResyncStorm"}
RULE_COUNT = 12  # 8 symptoms + FeedDown (feed and target) + BookInvalid + ResyncStorm


def _rule_blocks(text: str) -> dict[str, list[str]]:
    """alert name → the text of each rule with that name."""
    blocks: dict[str, list[str]] = {}
    for block in re.split(r"(?m)^\s*- alert: ", text)[1:]:
        name = block.split(None, 1)[0]
        blocks.setdefault(name, []).append(block)
    return blocks


# ------------------------------------------------------------------------------------------
# The shipped files pass the real tools
# ------------------------------------------------------------------------------------------


def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = run_tool([promtool, "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout
    assert f"SUCCESS: {RULE_COUNT} rules found" in result.stdout, result.stdout
    assert "FAILED" not in result.stdout  # lint findings are printed with rc 0


def test_promtool_test_rules() -> None:
    promtool = require_binary("promtool")
    result = run_tool([promtool, "test", "rules", str(RULES_TEST)])
    assert result.returncode == 0, result.stdout
    assert "SUCCESS" in result.stdout and "FAILED" not in result.stdout, result.stdout


def test_promtool_check_config(tmp_path: Path) -> None:
    """prometheus.yml names its rule file relative to itself: check it from elsewhere."""
    promtool = require_binary("promtool")
    result = run_tool([promtool, "check", "config", str(PROMETHEUS_CONFIG)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert "SUCCESS: 1 rule files found" in result.stdout, result.stdout
    assert f"SUCCESS: {RULE_COUNT} rules found" in result.stdout, result.stdout


def test_amtool_check_config() -> None:
    amtool = require_binary("amtool")
    result = run_tool([amtool, "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout
    assert "SUCCESS" in result.stdout and "1 receivers" in result.stdout, result.stdout
    assert "3 inhibit rules" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "MMRadarSpreadWidening", "severity": "page"}, "mmradar-webhook"),
        ({"alertname": "MMRadarBookInvalid", "severity": "ticket"}, "mmradar-webhook"),
        ({"alertname": "MMRadarQuoteSkew", "severity": "info"}, "mmradar-webhook"),
        ({"alertname": "SomethingElse"}, "mmradar-webhook"),
    ],
)
def test_amtool_routes(labels: dict[str, str], receiver: str) -> None:
    amtool = require_binary("amtool")
    argv = [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}"]
    argv += [f"--verify.receivers={receiver}", *(f"{k}={v}" for k, v in labels.items())]
    result = run_tool(argv)
    assert result.returncode == 0, result.stdout


# ------------------------------------------------------------------------------------------
# Negative controls: broken copies fail
# ------------------------------------------------------------------------------------------


def _copy_rules(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / RULES.name
    tests = tmp_path / RULES_TEST.name
    shutil.copy(RULES, rules)
    shutil.copy(RULES_TEST, tests)
    return rules, tests


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_broken_rules_fail_check(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules, _ = _copy_rules(tmp_path)
    _edit(rules, '{symptom="spread_widening"} == 1', '{symptom="spread_widening"} == 1)')
    result = run_tool([promtool, "check", "rules", str(rules)])
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout and "parse error" in result.stdout, result.stdout


def test_wrong_expectation_fails_unit_test(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    _, tests = _copy_rules(tmp_path)
    _edit(tests, 'severity: "page"', 'severity: "ticket"')
    result = run_tool([promtool, "test", "rules", str(tests)])
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout, result.stdout


def test_threshold_on_score_fails_unit_test(tmp_path: Path) -> None:
    """A rule that thresholds the score instead of reading the service's state is caught."""
    promtool = require_binary("promtool")
    rules, tests = _copy_rules(tmp_path)
    _edit(
        rules,
        'mmradar_symptom_active{symptom="spread_widening"} == 1',
        'mmradar_symptom_score{symptom="spread_widening"} > 4',
    )
    result = run_tool([promtool, "test", "rules", str(tests)])
    assert result.returncode != 0, result.stdout
    assert "binance-usdm" in result.stdout, result.stdout  # score 99, never active


def test_broken_prometheus_config_fails_check(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    config = tmp_path / "prometheus.yml"
    shutil.copy(PROMETHEUS_CONFIG, config)  # without rules/ next to it
    result = run_tool([promtool, "check", "config", str(config)])
    assert result.returncode != 0, result.stdout
    assert "FAILED" in result.stdout, result.stdout


def test_broken_alertmanager_config_fails_check(tmp_path: Path) -> None:
    amtool = require_binary("amtool")
    config = tmp_path / "alertmanager.yml"
    shutil.copy(ALERTMANAGER_CONFIG, config)
    _edit(config, "  receiver: mmradar-webhook", "  receiver: nope")
    result = run_tool([amtool, "check-config", str(config)])
    assert result.returncode != 0, result.stdout
    assert 'undefined receiver "nope"' in result.stdout, result.stdout


# ------------------------------------------------------------------------------------------
# Coverage of the contract (text checks; no YAML library needed)
# ------------------------------------------------------------------------------------------


def test_one_alert_per_symptom_plus_health() -> None:
    assert set(SYMPTOM_ALERTS) == (
        set(SYMPTOM_SIDES) | set(CROSS_VENUE_SYMPTOM_SIDES) | set(HEDGE_SYMPTOM_SIDES)
    )
    blocks = _rule_blocks(RULES.read_text())
    assert set(blocks) == set(SYMPTOM_ALERTS.values()) | HEALTH_ALERTS
    for symptom, alert in SYMPTOM_ALERTS.items():
        (block,) = blocks[alert]
        expr = re.search(r"(?m)^\s*expr: (.*)$", block)
        assert expr is not None
        # The service owns thresholds and persistence: the rule reads its 0/1 state only.
        assert expr.group(1) == f'mmradar_symptom_active{{symptom="{symptom}"}} == 1'
        assert re.search(r"(?m)^\s*for: 0s$", block), alert
        assert re.search(r"(?m)^\s*category: symptom$", block), alert
    for name, rules in blocks.items():
        for block in rules:
            severity = re.search(r"(?m)^\s*severity: (\S+)$", block)
            assert severity is not None and severity.group(1) in {"page", "ticket", "info"}
            for key in ("summary", "description", "runbook"):
                assert re.search(rf"(?m)^\s*{key}: ", block), f"{name} has no {key}"


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    cases = re.split(r"(?m)^\s*- eval_time: ", RULES_TEST.read_text())[1:]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        name = re.search(r"(?m)^\s*alertname: (\S+)$", case)
        assert name is not None
        if re.search(r"(?m)^\s*exp_alerts: \[\]$", case):
            quiet.add(name.group(1))
        else:
            assert "exp_annotations:" in case and "exp_labels:" in case
            firing.add(name.group(1))
    expected = set(SYMPTOM_ALERTS.values()) | HEALTH_ALERTS
    assert firing == expected
    assert quiet == expected


def _exported_names() -> set[str]:
    """Family and sample names the real service exports for one instrument on two venues
    (so the cross-venue families exist too)."""
    settings = parse_settings(
        {
            "feeds": [
                {"exchange": "binance", "symbols": ["BTCUSDT"]},
                {"exchange": "binance-usdm", "symbols": ["BTCUSDT"]},
            ]
        },
        env={},
        supported=VENUE_NAMES,
    )
    service = Service(settings, serve_http=False)
    names: set[str] = set()
    for family in text_string_to_metric_families(generate_latest(service.registry).decode()):
        names.add(family.name)
        names.update(s.name for s in family.samples)
    return names


def _referenced_names() -> set[str]:
    """Every ``mmradar_*`` name in the rules (expressions, template queries, runbooks)."""
    text = "\n".join(
        line for line in RULES.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    return set(re.findall(r"\bmmradar_[a-z_]+[a-z]", text))


def test_rules_name_only_exported_metrics() -> None:
    exported = _exported_names()
    wanted = {n for n in _referenced_names() if not n.startswith("mmradar_symptom_")}
    assert {"mmradar_book_valid", "mmradar_feed_connected"} <= wanted
    assert wanted - exported == set()


def test_rules_name_exported_symptom_metrics() -> None:
    exported = _exported_names()
    if "mmradar_symptom_active" not in exported:
        pytest.skip("the service does not export mmradar_symptom_active yet (detectors pending)")
    wanted = {n for n in _referenced_names() if n.startswith("mmradar_symptom_")}
    assert wanted == {"mmradar_symptom_active", "mmradar_symptom_score"}
    assert wanted - exported == set()
