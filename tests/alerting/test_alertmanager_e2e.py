"""The shipped Alertmanager routes and inhibitions, in the real Alertmanager.

Alerts are posted straight to its API (no Prometheus, so no wait for a health alert's ``for:``),
labelled exactly as the shipped rules label them. A feed that is down inhibits the symptom,
book and resync alerts of its exchange on that replica; an invalid book inhibits the symptom
alerts of that book; nothing else is inhibited. Inhibited alerts never reach the webhook.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from .harness import PATH_BUDGET_S, AlertStack

pytestmark = pytest.mark.timeout(60)

INSTANCE = "mmradar:9464"


def alert(name: str, severity: str, category: str, **labels: str) -> dict[str, object]:
    base = {"alertname": name, "job": "mmradar", "instance": INSTANCE}
    return {
        "labels": {**base, **labels, "severity": severity, "category": category},
        "annotations": {"summary": f"{name} {labels}"},
    }


def symptom(name: str, exchange: str, symbol: str, **labels: str) -> dict[str, object]:
    side = labels.pop("side", "both")
    return alert(name, "page", "symptom", exchange=exchange, symbol=symbol, side=side, **labels)


def key(a: dict[str, object]) -> tuple[str, ...]:
    labels = a["labels"]
    assert isinstance(labels, dict)
    return tuple(labels.get(k, "") for k in ("alertname", "instance", "exchange", "symbol"))


async def test_inhibitions(alert_stack: Callable[..., Awaitable[AlertStack]]) -> None:
    stack = await alert_stack(None)  # Alertmanager and the receiver only
    sources = [
        alert("MMRadarFeedDown", "page", "health", exchange="binance", scope="feed"),
        alert("MMRadarBookInvalid", "ticket", "health", exchange="binance-usdm", symbol="ETHUSDT"),
    ]
    await stack.post_alerts(sources)
    for source in sources:  # the sources are in, and themselves notified
        await stack.receiver.wait_for(
            lambda a, s=source: key(a) == key(s), PATH_BUDGET_S, f"for {key(source)}"
        )

    inhibited = [
        symptom("MMRadarSpreadWidening", "binance", "BTCUSDT"),  # feed down
        symptom("MMRadarQuoteSkew", "binance", "ETHUSDT", side="bid"),  # feed down
        alert("MMRadarBookInvalid", "ticket", "health", exchange="binance", symbol="BTCUSDT"),
        alert("MMRadarResyncStorm", "ticket", "health", exchange="binance", symbol="BTCUSDT"),
        symptom("MMRadarLiquidityPull", "binance-usdm", "ETHUSDT"),  # book invalid
    ]
    notified = [
        symptom("MMRadarSpreadWidening", "binance-usdm", "BTCUSDT"),  # other exchange
        symptom("MMRadarSpreadWidening", "binance", "BTCUSDT", instance="replica-2:9464"),
        # A health alert is not a symptom: an invalid book does not hide a resync storm.
        alert("MMRadarResyncStorm", "ticket", "health", exchange="binance-usdm", symbol="ETHUSDT"),
    ]
    await stack.post_alerts(inhibited + notified)
    for a in notified:
        await stack.receiver.wait_for(
            lambda got, a=a: key(got) == key(a), PATH_BUDGET_S, f"for {key(a)}"
        )

    state = {key(a): a["status"] for a in await stack.alertmanager_alerts()}
    for a in inhibited:
        assert state[key(a)]["state"] == "suppressed", (key(a), state[key(a)])
        assert state[key(a)]["inhibitedBy"], key(a)
    for a in [*sources, *notified]:
        assert state[key(a)]["state"] == "active", (key(a), state[key(a)])

    received = {key(a) for a in stack.receiver.alerts()}
    assert received == {key(a) for a in [*sources, *notified]}
    # Grouped as shipped: by alertname, exchange and symbol.
    for notification in stack.receiver.notifications:
        assert set(notification["groupLabels"]) <= {"alertname", "exchange", "symbol"}
        assert notification["receiver"] == "mmradar-webhook"
