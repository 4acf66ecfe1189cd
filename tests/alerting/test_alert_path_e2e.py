"""The alert path end to end with the real binaries, driven by a stand-in exporter.

exporter (``mmradar_symptom_active`` 0 → 1 → 0) → Prometheus (1 s scrape and evaluation, the
shipped rules) → Alertmanager (the shipped routes and inhibitions, short group timings) → a
webhook receiver on 127.0.0.1: a ``firing`` then a ``resolved`` notification, each within
:data:`PATH_BUDGET_S` of the change, with the exact labels and annotations of the rule.

The stand-in exports what the service exports for one book (every symptom/side label set at 0,
a valid book, a connected feed) from a ``prometheus_client`` registry served by the service's own
:class:`mmradar.http.MetricsServer`. The same path with the real service and detectors is in
``test_alert_path_service_e2e.py``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from mmradar.http import MetricsServer
from mmradar.model import RESYNC_REASONS
from mmradar.signals.episodes import SYMPTOM_SIDES
from support import limit, timed

from .harness import PATH_BUDGET_S, AlertStack

pytestmark = pytest.mark.timeout(60)

EXCHANGE = "binance"
SYMBOL = "BTCUSDT"
RULE_NAMES = {
    "MMRadarSpreadWidening",
    "MMRadarLiquidityEvaporation",
    "MMRadarDepthAsymmetry",
    "MMRadarLiquidityPull",
    "MMRadarQuoteSkew",
    "MMRadarVolatilitySpike",
    "MMRadarVenueWithdrawal",
    "MMRadarHedgePressure",
    "MMRadarFeedDown",
    "MMRadarBookInvalid",
    "MMRadarResyncStorm",
}


class StandIn:
    """The service's exposition for one healthy book, with symptoms the test can switch."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        es = ["exchange", "symbol"]
        self.active = Gauge(
            "mmradar_symptom_active", "1 while an episode is firing.",
            [*es, "symptom", "side"], registry=self.registry,
        )  # fmt: skip
        self.score = Gauge(
            "mmradar_symptom_score", "Detector score.",
            [*es, "symptom", "side"], registry=self.registry,
        )  # fmt: skip
        self.spread = Gauge("mmradar_spread_bps", "Spread.", es, registry=self.registry)
        valid = Gauge("mmradar_book_valid", "Book valid.", es, registry=self.registry)
        connected = Gauge(
            "mmradar_feed_connected", "Feed up.", ["exchange"], registry=self.registry
        )
        resyncs = Counter(
            "mmradar_book_resyncs", "Resyncs.", [*es, "reason"], registry=self.registry
        )
        for symptom, sides in SYMPTOM_SIDES.items():
            for side in sides:
                self.active.labels(EXCHANGE, SYMBOL, symptom, side).set(0)
                self.score.labels(EXCHANGE, SYMBOL, symptom, side).set(0)
        self.spread.labels(EXCHANGE, SYMBOL).set(1.25)
        valid.labels(EXCHANGE, SYMBOL).set(1)
        connected.labels(EXCHANGE).set(1)
        for reason in RESYNC_REASONS:
            resyncs.labels(EXCHANGE, SYMBOL, reason)
        self.server = MetricsServer(self.registry, [], "127.0.0.1", 0)

    def spread_widening(self, active: bool, score: float, spread_bps: float) -> None:
        self.active.labels(EXCHANGE, SYMBOL, "spread_widening", "both").set(1 if active else 0)
        self.score.labels(EXCHANGE, SYMBOL, "spread_widening", "both").set(score)
        self.spread.labels(EXCHANGE, SYMBOL).set(spread_bps)


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    exporter = StandIn()
    await exporter.server.start()
    try:
        yield exporter
    finally:
        await exporter.server.stop()


@timed
async def test_symptom_alert_fires_and_resolves_end_to_end(
    timed: bool, stand_in: StandIn, alert_stack: Callable[..., Awaitable[AlertStack]]
) -> None:
    target = f"127.0.0.1:{stand_in.server.port}"
    stack = await alert_stack(target)  # returns once scraped and Alertmanager discovered

    # The real Prometheus loaded the shipped rules: every alert, with its labels.
    rules = await stack.rules()
    assert {r["name"] for r in rules} == RULE_NAMES
    assert all(r["labels"]["severity"] in {"page", "ticket", "info"} for r in rules)
    assert all(r["health"] == "ok" for r in rules), [r.get("lastError") for r in rules]

    # Quiet book: nothing fires (a rule evaluated on the first scrape would have posted).
    assert await stack.query("ALERTS") == []
    assert stack.receiver.notifications == []

    # 0 -> 1: the service started an episode.
    stand_in.spread_widening(True, score=7.5, spread_bps=9.25)
    flipped = time.monotonic()
    fired = await stack.receiver.wait_for(
        lambda a: a["labels"]["alertname"] == "MMRadarSpreadWidening" and a["status"] == "firing",
        limit(PATH_BUDGET_S, timed),
        "firing MMRadarSpreadWidening",
        stack.check_running,
    )
    fire_s = fired["_received_monotonic"] - flipped
    assert fired["labels"] == {
        "alertname": "MMRadarSpreadWidening",
        "category": "symptom",
        "exchange": EXCHANGE,
        "instance": target,
        "job": "mmradar",
        "severity": "page",
        "side": "both",
        "symbol": SYMBOL,
        "symptom": "spread_widening",
    }
    annotations = fired["annotations"]
    assert set(annotations) == {"summary", "description", "runbook"}
    assert annotations["summary"] == f"Spread widening on {EXCHANGE} {SYMBOL}"
    assert annotations["description"] == (
        f"The quoted spread (best ask - best bid) of {SYMBOL} on {EXCHANGE} jumped against its "
        "baseline and held past the service's persistence filter: spread now 9.25 bps, "
        f"detector score 7.50 ({target})."
    )
    assert annotations["runbook"].startswith("Dealers are charging more to take on inventory")
    notification = next(
        n for n in stack.receiver.notifications if fired in _alerts_of(n)
    )  # the group the shipped route built
    assert notification["receiver"] == "mmradar-webhook"
    assert notification["groupLabels"] == {
        "alertname": "MMRadarSpreadWidening",
        "exchange": EXCHANGE,
        "symbol": SYMBOL,
    }

    # 1 -> 0: the service ended the episode.
    stand_in.spread_widening(False, score=1.0, spread_bps=1.25)
    flipped = time.monotonic()
    resolved = await stack.receiver.wait_for(
        lambda a: a["labels"]["alertname"] == "MMRadarSpreadWidening" and a["status"] == "resolved",
        limit(PATH_BUDGET_S, timed),
        "resolved MMRadarSpreadWidening",
        stack.check_running,
    )
    resolve_s = resolved["_received_monotonic"] - flipped
    assert resolved["labels"] == fired["labels"]
    assert resolved["startsAt"] == fired["startsAt"]

    # Only that alert travelled the path; nothing else fired.
    assert stack.receiver.alertnames() == {"MMRadarSpreadWidening"}
    print(f"alert path: firing after {fire_s:.2f} s, resolved after {resolve_s:.2f} s")


def _alerts_of(notification: dict[str, object]) -> list[dict[str, object]]:
    alerts = notification["alerts"]
    assert isinstance(alerts, list)
    return [{**a, "_received_monotonic": notification["_received_monotonic"]} for a in alerts]
