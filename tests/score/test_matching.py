"""Event matching and the scorecard's pooled figures, on hand-built episodes."""

from __future__ import annotations

import math

import pytest

from mmradar.score.matching import Episode, Tolerance, match_episodes, merge_close, time_outside
from mmradar.score.runner import RunResult, Series, TruthEpisode
from mmradar.score.scorecard import build_scorecard, format_markdown, scorecard_json

S = 1_000_000_000
T0 = 1_700_000_000 * S


def ep(start_s: float, end_s: float, symptom: str = "quote_skew", side: str = "bid") -> Episode:
    return Episode(symptom, side, T0 + round(start_s * S), T0 + round(end_s * S))


def test_match_first_alert_redundant_false_and_missed() -> None:
    truth = [ep(100, 130), ep(200, 220), ep(400, 410)]
    detected = [
        ep(96, 140),  # 4 s early: inside the 5-s anticipation window → matches truth 0
        ep(125, 135),  # inside truth 0 again → redundant
        ep(231, 240),  # 11 s after truth 1 ended: beyond the 10-s grace → false
        ep(205, 215),  # matches truth 1, 5 s late
        ep(300, 310),  # nothing near → false
    ]
    m = match_episodes(truth, detected, Tolerance(pre_s=5, post_s=10))
    assert m.pairs == ((0, 0), (1, 3))
    assert m.latencies_s == (-4.0, 5.0)
    assert m.end_latencies_s == (10.0, -5.0)  # detected end − truth end, per pair
    assert m.redundant == (1,)
    assert m.false == (2, 4)
    assert m.missed == (2,)


def test_window_edges_are_inclusive() -> None:
    truth = [ep(100, 130)]
    assert match_episodes(truth, [ep(95, 96)]).pairs == ((0, 0),)
    assert match_episodes(truth, [ep(140, 150)]).pairs == ((0, 0),)
    assert match_episodes(truth, [ep(94.999, 96)]).false == (0,)
    assert match_episodes(truth, [ep(140.001, 150)]).false == (0,)


def test_one_detection_matches_one_truth_and_overlapping_windows_are_shared_optimally() -> None:
    # Both truth windows contain t=112; the first detection goes to the episode whose window
    # closes first (truth 0), so the later one can still match truth 1.
    truth = [ep(100, 105), ep(110, 160)]
    m = match_episodes(truth, [ep(112, 120), ep(150, 155)])
    assert m.pairs == ((0, 0), (1, 1))
    assert m.latencies_s == (12.0, 40.0)
    assert m.missed == ()
    # a single detection can only ever match one episode
    m = match_episodes(truth, [ep(112, 170)])
    assert len(m.pairs) == 1
    assert m.missed == (1,)


def test_time_outside_counts_firing_not_covered_by_truth() -> None:
    truth = [ep(100, 130), ep(200, 220)]
    # 4 s before the first episode, 10 s after it; one detection entirely outside
    total, outside = time_outside([ep(96, 140), ep(300, 310)], truth)
    assert total == 54 * S
    assert outside == (4 + 10 + 10) * S
    # a detection spanning both episodes and the gap between them
    assert time_outside([ep(100, 220)], truth) == (120 * S, 70 * S)
    assert time_outside([], truth) == (0, 0)


def test_merge_close_joins_gaps_shorter_than_merge() -> None:
    eps = [ep(10, 20), ep(25, 30), ep(40.5, 50), ep(60, 61)]
    merged = merge_close(eps, 10.0)
    assert merged == [ep(10, 30), ep(40.5, 50), ep(60, 61)]
    assert merge_close(eps, 5.0) == [ep(10, 20), ep(25, 30), ep(40.5, 50), ep(60, 61)]
    assert merge_close(eps, 5.0001) == [ep(10, 30), ep(40.5, 50), ep(60, 61)]


def _run(
    truth: list[tuple[Episode, str]],
    detected: list[Episode],
    *,
    seconds: int = 1000,
    armed_from: int = 0,
    calm: tuple[int, int] = (0, 1000),
    kind: str = "symptom",
    scenario: str = "s",
    seed: int = 1,
) -> RunResult:
    series = Series()
    for k in range(seconds):
        series.t_ns.append(T0 + k * S)
        series.mid.append(100.0)
        series.q_true.append(math.sin(k / 50))
        series.proxy.append(-math.sin((k - 3) / 50))  # the proxy lags the truth by 3 s
        series.pressure.append(-math.sin(k / 50) * 0.5)
        series.armed.append(k >= armed_from)
        series.regime.append("calm" if calm[0] <= k < calm[1] else "buy_burst")
    return RunResult(
        scenario=scenario,
        kind=kind,
        seed=seed,
        symbol="BTCUSDT",
        expected=(),
        truth=[TruthEpisode(e, r) for e, r in truth],
        detected=detected,
        series=series,
        start_ns=T0,
        end_ns=T0 + seconds * S,
    )


def test_scorecard_pools_runs_with_exact_figures() -> None:
    a = _run(
        [(ep(300, 330), "buy_burst"), (ep(500, 520), "buy_burst"), (ep(50, 60), "calm")],
        [ep(301, 340), ep(320, 325), ep(502, 530), ep(700, 720), ep(55, 65)],
        armed_from=100,  # the truth episode at 50 s is before the warm-up ended: unscored
        calm=(0, 290),  # 190 armed calm seconds: 100..289
    )
    b = _run(
        [(ep(300, 330), "buy_burst")],
        [ep(310, 340), ep(100, 110)],  # latency 10 s; a false alert in calm
        calm=(0, 200),  # 200 armed calm seconds
        seed=2,
    )
    card = build_scorecard([a, b])
    ks = card.keys[("quote_skew", "bid")]
    assert (ks.truth, ks.detected, ks.tp, ks.fp, ks.redundant, ks.ignored) == (3, 7, 3, 2, 1, 1)
    assert ks.fn == 0
    assert ks.precision == pytest.approx(3 / 5)
    assert ks.recall == pytest.approx(1.0)
    assert ks.f1 == pytest.approx(2 * 0.6 / 1.6)
    assert sorted(ks.latencies_s) == [1.0, 2.0, 10.0]
    assert ks.latency_median_s == pytest.approx(2.0)
    assert ks.latency_p90_s == pytest.approx(2.0 + 0.8 * 8.0)
    # false alerts in calm: only b's at 100 s (a's at 700 s is in the burst regime)
    assert ks.calm_false == 1
    assert card.calm_hours == pytest.approx((190 + 200) / 3600)
    assert card.false_per_calm_hour(ks) == pytest.approx(3600 / 390)
    assert card.total.tp == 3
    assert card.scenarios["s"].unscored_truth == 1
    # end latencies of the scored pairs: 340−330, 530−520, 340−330
    assert sorted(ks.end_latencies_s) == [10.0, 10.0, 10.0]
    assert ks.end_latency_median_s == pytest.approx(10.0)
    # firing time outside the (merged) truth, over every detection of both runs
    assert ks.firing_ns == (39 + 5 + 28 + 20 + 10 + 30 + 10) * S
    assert ks.outside_ns == (10 + 0 + 10 + 20 + 5 + 10 + 10) * S
    # the proxy lags the truth by 3 s and is perfectly monotone in it at that lag
    for _, _, q in card.proxy:
        assert q.peak_lag_s == 3
        assert q.peak_spearman == pytest.approx(1.0)
        assert 0.9 < q.spearman < 1.0
    text = format_markdown(card)
    assert "| `quote_skew` | bid | 3 | 7 | 3 | 2 | 1 | 0.60 | 1.00 | 0.75 |" in text
    assert "| 2.0 | 8.4 | 10.0 | 46% |" in text  # latency median, p90, end latency, outside
    data = scorecard_json(card)
    assert data["all"]["tp"] == 3  # type: ignore[index]


def test_controls_count_inventory_symptoms() -> None:
    run = _run(
        [],
        [ep(400, 420), ep(500, 510, "volatility_spike", "both"), ep(600, 610, "depth_asymmetry")],
        kind="control",
        scenario="spoof",
    )
    card = build_scorecard([run])
    cs = card.controls["spoof"]
    assert (cs.runs, cs.inventory_firings, cs.all_firings) == (1, 2, 3)
    assert card.control_inventory_firings == 2
    assert any("negative controls" in m for m in scorecard_json(card)["targets_missed"])  # type: ignore[attr-defined]


def test_evaporation_marked_cause_trade_does_not_break_a_control() -> None:
    """Liquidity traded through while makers keep quoting: evaporation may be reported if it
    says the takers took it (cause: trade); as a pulled side it breaks the control."""
    traded = Episode("liquidity_evaporation", "ask", T0 + 400 * S, T0 + 420 * S, "trade")
    pulled = Episode("liquidity_evaporation", "ask", T0 + 500 * S, T0 + 520 * S, "cancel")
    card = build_scorecard([_run([], [traded], kind="control", scenario="sweep")])
    cs = card.controls["sweep"]
    assert (cs.inventory_firings, cs.traded_evaporations, cs.all_firings) == (0, 1, 1)
    assert not any("negative controls" in m for m in scorecard_json(card)["targets_missed"])  # type: ignore[attr-defined]
    card = build_scorecard([_run([], [traded, pulled], kind="control", scenario="sweep")])
    assert card.controls["sweep"].inventory_firings == 1
    assert "| sweep | 1 | 0.28 | inventory symptoms, hedge_pressure | 1 | 1 | 0 | 2 |" in (
        format_markdown(card)
    )


def test_truth_labels_no_detector_reports_are_listed_not_scored() -> None:
    run = _run([(ep(300, 330, "inventory_stress", "long"), "sell_burst")], [])
    card = build_scorecard([run])
    assert card.unknown_truth == {"inventory_stress/long": 1}
    assert card.total.truth == 0


def test_hedge_pressure_rows_are_scored_like_the_other_symptoms() -> None:
    truth = [
        (ep(370, 395, "hedge_pressure", "buy"), "buy_burst"),
        (ep(450, 470, "hedge_pressure", "sell"), "calm"),
    ]
    detected = [ep(373, 400, "hedge_pressure", "buy"), ep(700, 710, "hedge_pressure", "buy")]
    card = build_scorecard([_run(truth, detected, calm=(0, 360))])
    buy = card.keys[("hedge_pressure", "buy")]
    sell = card.keys[("hedge_pressure", "sell")]
    assert (buy.truth, buy.tp, buy.fp, buy.latencies_s) == (1, 1, 1, [3.0])
    assert (sell.truth, sell.tp, sell.fp, sell.recall) == (1, 0, 0, 0.0)
    text = format_markdown(card)
    assert "| `hedge_pressure` | buy | 1 | 2 | 1 | 1 | 0 | 0.50 | 1.00 |" in text
    assert "| `hedge_pressure` | sell | 1 | 0 | 0 | 0 | 0 | – | 0.00 |" in text
    rows = scorecard_json(card)["symptoms"]
    assert [(r["symptom"], r["side"]) for r in rows][-2:] == [  # type: ignore[index]
        ("hedge_pressure", "buy"),
        ("hedge_pressure", "sell"),
    ]


def test_a_hedge_control_must_keep_hedge_pressure_silent_only() -> None:
    """common-shock and unhedged-burst drive real spot inventory symptoms (scored as such);
    only hedge_pressure breaks them. Every control must keep hedge_pressure silent."""
    skew = ep(380, 420, "quote_skew", "bid")
    hedge = ep(390, 400, "hedge_pressure", "buy")
    run = _run([(skew, "buy_burst")], [skew, hedge], kind="control", scenario="unhedged-burst")
    run.silent = ("hedge_pressure",)
    card = build_scorecard([run])
    cs = card.controls["unhedged-burst"]
    assert (cs.inventory_firings, cs.hedge_firings, cs.all_firings) == (0, 1, 2)
    assert cs.silent == ("hedge_pressure",)
    assert card.keys[("quote_skew", "bid")].tp == 1
    misses = scorecard_json(card)["targets_missed"]
    assert misses == [
        "hedge_pressure/buy: precision 0.00 < 0.9",
        "hedge_pressure/buy: 3.60 false alerts per calm hour > 0.5",
        "negative controls: 1 hedge_pressure episode(s)",
    ]
    assert "| unhedged-burst | 1 | 0.28 | hedge_pressure | – | 0 | 1 | 2 |" in format_markdown(card)
    # a single-venue control firing hedge_pressure is broken too
    card = build_scorecard([_run([], [hedge], kind="control", scenario="spoof")])
    assert (card.control_inventory_firings, card.control_hedge_firings) == (0, 1)


def test_a_hedge_reported_on_the_wrong_venue_is_false() -> None:
    """Truth is on the perpetual (the venue the hedgers trade on); the same detection reported
    on the spot venue as the follower does not match it."""
    truth = [(ep(370, 395, "hedge_pressure", "buy"), "buy_burst")]
    right = Episode("hedge_pressure", "buy", T0 + 373 * S, T0 + 400 * S, "binance-usdm")
    wrong = Episode("hedge_pressure", "buy", T0 + 372 * S, T0 + 380 * S, "binance")
    run = _run(truth, [wrong, right], calm=(0, 360))
    run.hedge_exchange = "binance-usdm"
    buy = build_scorecard([run]).keys[("hedge_pressure", "buy")]
    assert (buy.detected, buy.tp, buy.fp, buy.calm_false, buy.latencies_s) == (2, 1, 1, 0, [3.0])
    run = _run(truth, [wrong], calm=(0, 360))
    run.hedge_exchange = "binance-usdm"
    buy = build_scorecard([run]).keys[("hedge_pressure", "buy")]
    assert (buy.detected, buy.tp, buy.fp, buy.recall) == (1, 0, 1, 0.0)
