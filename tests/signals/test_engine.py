"""The signal engine in the pipeline: warm-up, resyncs, invalid books, signs, context, metrics."""

from __future__ import annotations

import math

import orjson
import pytest
from prometheus_client import CollectorRegistry

from mmradar.metrics import Metrics
from mmradar.model import BAND_BPS
from mmradar.signals.episodes import SYMPTOM_SIDES
from mmradar.signals.reading import PRESSURE_COMPONENTS

from .helpers import Run, seconds, start
from .synth import SYMBOL, Injection

EXCHANGE = "binance"
LABELS = {"exchange": EXCHANGE, "symbol": SYMBOL}


def with_metrics(run: Run) -> CollectorRegistry:
    registry = CollectorRegistry()
    metrics = Metrics(registry, [(EXCHANGE, [SYMBOL])])
    metrics.register_pipelines([run.pipeline])
    return registry


# -- warm-up and resyncs -----------------------------------------------------------------------


def test_no_episode_before_the_warm_up_ends() -> None:
    run = start(injections=(Injection("pull", 300, 360), Injection("spread", 400, 460)))
    pull_on: list[bool] = []

    def sample(_: int) -> None:
        pull_on.append(run.engine.pull.on["both"])

    run.feed.run(599, each_second=sample)
    assert not run.engine.warm
    assert any(pull_on)  # the detector saw the pull (its condition held) ...
    assert run.events == []  # ... but no episode starts during the warm-up
    run.feed.run(200)
    assert run.engine.warm
    assert run.events == []  # the symptoms were over when the warm-up ended


def test_a_resync_restarts_the_warm_up_and_keeps_the_baselines() -> None:
    run = start(
        injections=(
            Injection("pull", 1000, 1060),  # within 10 min of the resync: silent
            Injection("pull", 1600, 1660),  # after: detected
        )
    )
    run.feed.run(850)
    assert run.engine.warm
    baseline = run.engine.depth_baselines.bids[0]
    assert baseline > 0
    run.feed.run(100, drop_depth_at_s=(900,))  # a lost diff: gap → resync from a snapshot
    engine = run.engine
    assert run.pipeline.instruments[SYMBOL].valid
    assert not engine.warm
    assert 900 <= seconds(engine.life_start_ns) < 901
    assert seconds(engine.warm_at_ns) == pytest.approx(seconds(engine.life_start_ns) + 600)
    assert engine.depth_baselines.bids[0] == pytest.approx(baseline, rel=0.5)  # kept
    run.feed.run(600)  # to t = 1550
    assert run.events == []
    run.feed.run(150)  # to t = 1700
    fired = run.firing("liquidity_pull")
    assert len(fired) == 1 and 1600 <= seconds(fired[0].started_at_ns) <= 1606


def test_an_invalid_book_ends_episodes_and_suppresses_every_measure() -> None:
    run = start(injections=(Injection("pull", 900, 1000),))
    registry = with_metrics(run)
    run.feed.run(920)
    (fired,) = run.firing("liquidity_pull")
    assert (
        registry.get_sample_value(
            "mmradar_symptom_active", {**LABELS, "symptom": "liquidity_pull", "side": "both"}
        )
        == 1.0
    )
    # the feed goes silent: the shell declares the book stale
    run.pipeline.invalidate([SYMBOL], "stale")
    engine = run.engine
    assert not engine.live and not engine.warm
    (resolved,) = run.resolved("liquidity_pull")
    assert resolved.started_at_ns == fired.started_at_ns
    assert resolved.ended_at_ns is not None
    assert 919 <= seconds(resolved.ended_at_ns) <= 920  # the last message of the book's life
    ctx = resolved.context
    assert ctx["book_valid"] is False
    assert ctx["best_bid"] is None and ctx["spread_bps"] is None
    assert all(v == {"bid": None, "ask": None} for v in ctx["depth"].values())
    assert ctx["depth_baseline"]["10"]["bid"] > 0  # the baseline is still known
    for symptom, sides in SYMPTOM_SIDES.items():
        for side in sides:
            labels = {**LABELS, "symptom": symptom, "side": side}
            assert registry.get_sample_value("mmradar_symptom_active", labels) == 0.0
            assert math.isnan(registry.get_sample_value("mmradar_symptom_score", labels) or 0)
    for name in ("mmradar_dealer_pressure", "mmradar_quote_skew", "mmradar_volatility_ratio"):
        assert math.isnan(registry.get_sample_value(name, LABELS) or 0), name
    for window in ("1s", "10s", "1m"):
        value = registry.get_sample_value("mmradar_ofi", {**LABELS, "window": window})
        assert value is not None and math.isnan(value)
    assert registry.get_sample_value("mmradar_signals_warm", LABELS) == 0.0
    # the next diff makes the book resync; the symptom is still there but the warm-up restarts
    run.feed.run(60)
    assert run.pipeline.instruments[SYMBOL].valid and engine.live
    assert len(run.firing()) == len([e for e in run.events if e.state == "resolved"])
    assert len(run.firing("liquidity_pull")) == 1


# -- signs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "sign"), [("buying", 1), ("selling", -1)])
def test_aggressive_flow_drives_the_proxy_and_the_pressure(kind: str, sign: int) -> None:
    """Aggressive buyers leave dealers short: proxy and pressure positive (docs/signals.md)."""
    run = start(seed=3, injections=(Injection(kind, 900, 960),))
    registry = with_metrics(run)
    run.feed.run(900)
    before = run.engine.inventory_proxy()
    assert abs(before) < 4
    run.feed.run(30)
    proxy = registry.get_sample_value("mmradar_dealer_inventory_proxy", LABELS)
    pressure = registry.get_sample_value("mmradar_dealer_pressure", LABELS)
    assert proxy is not None and pressure is not None
    assert sign * proxy > 5
    assert sign * pressure > 0.3
    assert -1 <= pressure <= 1
    inventory = registry.get_sample_value(
        "mmradar_dealer_pressure_component", {**LABELS, "component": "inventory"}
    )
    assert inventory is not None and sign * inventory > 5
    tfi = registry.get_sample_value("mmradar_trade_flow_imbalance", {**LABELS, "window": "10s"})
    assert tfi is not None and sign * tfi > 0.5
    decayed = registry.get_sample_value(
        "mmradar_signed_taker_volume_decayed", {**LABELS, "half_life": "1m"}
    )
    assert decayed is not None and sign * decayed > 0


def test_pressure_stays_in_range_and_near_zero_when_calm() -> None:
    run = start(seed=2)
    values: list[float] = []

    def sample(_: int) -> None:
        if not math.isnan(run.engine.pressure):
            values.append(run.engine.pressure)

    run.feed.run(1800, each_second=sample)
    assert len(values) > 1500
    assert all(-1 < v < 1 for v in values)
    values.sort()
    assert abs(values[len(values) // 2]) < 0.2
    assert values[int(0.95 * len(values))] < 0.6 and values[int(0.05 * len(values))] > -0.6


# -- episode events --------------------------------------------------------------------------------


def test_episode_context_carries_the_book_and_baselines() -> None:
    run = start(injections=(Injection("evaporation", 900, 930, side="ask"),))
    run.feed.run(1000)
    fired = run.firing("liquidity_evaporation")[0]
    assert (fired.exchange, fired.symbol, fired.side) == (EXCHANGE, SYMBOL, "ask")
    assert fired.ended_at_ns is None and fired.score >= 0.5
    ctx = fired.context
    assert ctx["book_valid"] is True
    assert 0 < ctx["best_bid"] < ctx["best_ask"]
    assert ctx["mid"] == pytest.approx((ctx["best_bid"] + ctx["best_ask"]) / 2)
    assert ctx["spread_bps"] > 0 and ctx["spread_baseline_bps"] > 0
    assert set(ctx["depth"]) == set(ctx["depth_baseline"]) == {str(b) for b in BAND_BPS}
    now, base = ctx["depth"]["10"], ctx["depth_baseline"]["10"]
    assert now["ask"] < 0.5 * base["ask"]  # the evaporated side
    assert now["bid"] > 0.8 * base["bid"]  # the side that held
    assert ctx["detector"]["near_depth_ratio_ask"] <= 0.5
    # the sequential decision: the onset statistic reached its threshold
    assert ctx["detector"]["ask_cusum"] >= ctx["detector"]["ask_threshold"] > 0
    # pulled versus traded: the injection takes the size away without trades
    assert ctx["cause"] == "cancel"
    assert ctx["detector"]["cancel_share_ask"] >= 2 / 3
    assert -1 <= ctx["dealer_pressure"] <= 1
    orjson.dumps(ctx, option=orjson.OPT_SERIALIZE_NUMPY)  # JSON-serialisable
    assert all(
        v is None or math.isfinite(v)
        for v in (ctx["best_bid"], ctx["spread_bps"], *ctx["detector"].values())
    )
    # the summary records it too
    (record,) = [r for r in run.engine.all_episodes() if r.symptom == "liquidity_evaporation"]
    assert record.side == "ask" and record.started_ns == fired.started_at_ns


# -- metrics ---------------------------------------------------------------------------------------


def test_symptom_series_exist_from_start_up() -> None:
    run = start()
    registry = with_metrics(run)
    for symptom, sides in SYMPTOM_SIDES.items():
        for side in sides:
            labels = {**LABELS, "symptom": symptom, "side": side}
            assert registry.get_sample_value("mmradar_symptom_active", labels) == 0.0
            assert registry.get_sample_value("mmradar_symptom_episodes_total", labels) == 0.0
            score = registry.get_sample_value("mmradar_symptom_score", labels)
            assert score is not None and math.isnan(score)  # nothing computed yet
    for name in ("mmradar_dealer_pressure", "mmradar_dealer_inventory_proxy"):
        value = registry.get_sample_value(name, LABELS)
        assert value is not None and math.isnan(value)
    assert registry.get_sample_value("mmradar_signals_warm", LABELS) == 0.0
    for component in PRESSURE_COMPONENTS:
        labels = {**LABELS, "component": component}
        assert registry.get_sample_value("mmradar_dealer_pressure_component", labels) is not None
    for side in ("bid", "ask"):
        for band in BAND_BPS:
            labels = {**LABELS, "side": side, "band_bps": str(band)}
            assert registry.get_sample_value("mmradar_depth_baseline_notional", labels) is not None


def test_metrics_follow_an_episode() -> None:
    run = start(injections=(Injection("skew", 900, 960, side="bid"),))
    registry = with_metrics(run)
    labels = {**LABELS, "symptom": "quote_skew", "side": "bid"}
    run.feed.run(940)
    assert registry.get_sample_value("mmradar_signals_warm", LABELS) == 1.0
    assert registry.get_sample_value("mmradar_symptom_active", labels) == 1.0
    assert registry.get_sample_value("mmradar_symptom_episodes_total", labels) == 1.0
    score = registry.get_sample_value("mmradar_symptom_score", labels)
    assert score is not None and score >= 0.3
    skew = registry.get_sample_value("mmradar_quote_skew", LABELS)
    assert skew is not None and skew > 0.3
    other = {**labels, "side": "ask"}
    assert registry.get_sample_value("mmradar_symptom_active", other) == 0.0
    assert registry.get_sample_value("mmradar_symptom_score", other) == 0.0
    run.feed.run(60)
    assert registry.get_sample_value("mmradar_symptom_active", labels) == 0.0
    assert registry.get_sample_value("mmradar_symptom_episodes_total", labels) == 1.0
    tick = registry.get_sample_value("mmradar_tick_size", LABELS)
    assert tick == pytest.approx(0.01)
    base = registry.get_sample_value(
        "mmradar_depth_baseline_notional", {**LABELS, "side": "bid", "band_bps": "10"}
    )
    assert base is not None and 20_000 < base < 200_000


def test_a_long_silence_of_a_valid_book_is_caught_up_in_bounded_time() -> None:
    from mmradar.signals.engine import MAX_CATCH_UP_TICKS

    run = start()
    run.feed.run(700)
    engine = run.engine
    before = engine.sample.ts_ns
    far = before + 10 * 86_400 * 1_000_000_000  # ten days later
    engine.advance(far)
    assert engine.live
    assert engine.next_tick_ns == (far // 1_000_000_000 + 1) * 1_000_000_000
    assert engine.sample.ts_ns == far // 1_000_000_000 * 1_000_000_000
    assert MAX_CATCH_UP_TICKS <= 3600
