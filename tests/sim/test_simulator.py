"""The market simulator on its own: determinism, book and inventory invariants, the wire
format through the service's own parser and book sync, the labelling rule, and the
Avellaneda–Stoikov property that an inventory-averse dealer holds far less inventory risk.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import replace
from decimal import Decimal
from functools import cache

import orjson
import pytest

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync, FetchSnapshot
from mmradar.model import BookEvent, Side, TakerSide, Trade
from mmradar.sim import (
    SCENARIOS,
    DealerParams,
    Phase,
    ScenarioSpec,
    SimParams,
    SimRun,
    glft_quotes,
    label_episodes,
    simulate,
)
from mmradar.venues.binance import BinanceSpot

# A compressed stress scenario: every inventory regime early, so runs stay short.
SHORT = ScenarioSpec(
    name="short-stress",
    kind="symptom",
    description="test schedule",
    phases=(
        Phase("calm", 20.0),
        Phase("buy_burst", 45.0),
        Phase("calm", 5.0),
        Phase("vol_shock", 20.0),
        Phase("dry_up", 30.0),
        Phase("spoof", 5.0),
        Phase("refresh", 20.0),
    ),
)


@cache
def short_run(seed: int = 11) -> SimRun:
    return simulate(SHORT, seed)


def depth_events(run: SimRun) -> list[dict[str, object]]:
    return [orjson.loads(f.payload)["data"] for f in run.frames if "@depth" in f.stream]


def test_same_seed_same_bytes_and_another_seed_differs() -> None:
    a = simulate("buy-burst", 5, duration_s=20)
    b = simulate("buy-burst", 5, duration_s=20)
    c = simulate("buy-burst", 6, duration_s=20)
    assert a.snapshot == b.snapshot
    assert [(f.ts_ns, f.stream, f.payload) for f in a.frames] == [
        (f.ts_ns, f.stream, f.payload) for f in b.frames
    ]
    assert a.truth == b.truth and a.episodes == b.episodes
    assert [f.payload for f in a.frames] != [f.payload for f in c.frames]
    assert len(a.truth) == 200  # 20 s of 100 ms samples


def test_frames_are_binance_spot_combined_stream_frames_in_time_order() -> None:
    run = short_run()
    assert run.symbol == "BTCUSDT" and run.tick == "0.01"
    assert all(a.ts_ns <= b.ts_ns for a, b in itertools.pairwise(run.frames))
    streams = {f.stream for f in run.frames}
    assert streams == {"btcusdt@depth@100ms", "btcusdt@trade"}
    depth = next(orjson.loads(f.payload) for f in run.frames if "@depth" in f.stream)
    assert list(depth) == ["stream", "data"] and depth["stream"] == "btcusdt@depth@100ms"
    assert list(depth["data"]) == ["e", "E", "s", "U", "u", "b", "a"]
    trade = next(orjson.loads(f.payload) for f in run.frames if "@trade" in f.stream)
    assert list(trade["data"]) == ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
    for event in depth_events(run)[:50]:
        for p, q in [*event["b"], *event["a"]]:  # type: ignore[misc]
            assert len(p.split(".")[1]) == 8 and len(q.split(".")[1]) == 8
            assert Decimal(p) % Decimal("0.01") == 0 and Decimal(q) % Decimal("0.00001") == 0
    snap = orjson.loads(run.snapshot)
    assert list(snap) == ["lastUpdateId", "bids", "asks"]
    assert len(snap["bids"]) > 400 and len(snap["asks"]) > 400


def test_update_ids_are_contiguous_and_windows_are_100_ms() -> None:
    run = short_run()
    events = depth_events(run)
    snap = orjson.loads(run.snapshot)
    assert events[0]["U"] == snap["lastUpdateId"] + 1
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(events))  # type: ignore[operator]
    times = [f.ts_ns for f in run.frames if "@depth" in f.stream]
    assert all((t - run.start_ns) % 100_000_000 == 0 for t in times)
    assert all(e["E"] == t // 1_000_000 for e, t in zip(events, times, strict=True))
    # one event per window at most, each level at most once per side
    assert len(set(times)) == len(times)
    for e in events:
        for side in ("b", "a"):
            prices = [p for p, _ in e[side]]  # type: ignore[attr-defined]
            assert len(prices) == len(set(prices))


def test_book_is_never_crossed_and_trades_match_the_book() -> None:
    run = short_run()
    snap = orjson.loads(run.snapshot)
    bids = {Decimal(p): Decimal(q) for p, q in snap["bids"]}
    asks = {Decimal(p): Decimal(q) for p, q in snap["asks"]}
    samples = iter(run.truth)
    checked = 0
    for frame in run.frames:
        data = orjson.loads(frame.payload)["data"]
        if data["e"] == "trade":
            assert Decimal(data["q"]) > 0
            continue
        for book, key in ((bids, "b"), (asks, "a")):
            for p, q in data[key]:
                if Decimal(q) == 0:
                    book.pop(Decimal(p), None)  # may be a level born and gone in the window
                else:
                    book[Decimal(p)] = Decimal(q)
        assert max(bids) < min(asks)
        sample = next(s for s in samples if s.ts_ns == frame.ts_ns)
        assert sample.mid == pytest.approx(float(max(bids) + min(asks)) / 2, abs=1e-6)
        checked += 1
    assert checked > 1000
    assert all(s.spread > 0 for s in run.truth)
    final_bids = {Decimal(p): Decimal(q) for p, q in run.final_bids}
    final_asks = {Decimal(p): Decimal(q) for p, q in run.final_asks}
    assert (bids, asks) == (final_bids, final_asks)


def test_each_dealers_inventory_is_the_signed_sum_of_its_fills() -> None:
    run = short_run()
    lot = Decimal("0.00001")
    n = len(run.truth[0].inventory)
    assert {f.dealer for f in run.fills} == set(range(n))
    for s in (run.truth[len(run.truth) // 2], run.truth[-1]):
        for i in range(n):
            lots = sum(f.lots for f in run.fills if f.dealer == i and f.ts_ns <= s.ts_ns)
            assert Decimal(repr(s.inventory[i])).quantize(lot) == lots * lot
        assert s.total_inventory == pytest.approx(sum(s.inventory), abs=1e-9)
    # every dealer fill is a public trade at the same price and time
    trades = {
        (f.ts_ns, Decimal(d["p"]))
        for f in run.frames
        if "@trade" in f.stream
        for d in [orjson.loads(f.payload)["data"]]
    }
    assert all((f.ts_ns, f.price_ticks * Decimal("0.01")) in trades for f in run.fills)


def test_service_parser_and_book_sync_reproduce_the_simulators_book() -> None:
    run = short_run()
    venue = BinanceSpot()
    parser = venue.new_parser()
    book = L2Book()
    resyncs: list[str] = []
    sync = BookSync(venue, "BTCUSDT", book, resyncs.append)
    trades: list[Trade] = []
    fetched = False
    for frame in run.frames:
        for ev in parser.parse(frame.payload, frame.ts_ns):
            if isinstance(ev, BookEvent):
                action = sync.on_event(ev)
                if action is not None:
                    assert action == FetchSnapshot("BTCUSDT") and not fetched
                    fetched = True
                    # the REST snapshot as of the start: older than every buffered diff
                    assert (
                        sync.on_snapshot(
                            venue.parse_snapshot("BTCUSDT", run.snapshot, run.start_ns)
                        )
                        is None
                    )
            else:
                assert isinstance(ev, Trade)
                trades.append(ev)
    assert fetched and sync.valid and resyncs == []
    want_bids = [(float(p), float(q)) for p, q in run.final_bids]
    want_asks = [(float(p), float(q)) for p, q in run.final_asks]
    assert sorted(book.items(Side.BID), reverse=True) == want_bids
    assert sorted(book.items(Side.ASK)) == want_asks
    # aggressor sides: dealer fills on the bid are taker sells
    sells = sum(t.qty for t in trades if t.taker is TakerSide.SELL)
    assert sells > 0 and sum(t.qty for t in trades) > sells


def test_stress_regimes_load_dealers_and_are_labelled_per_the_sign_convention() -> None:
    run = short_run()
    by_regime: dict[str, list[float]] = {}
    for s in run.truth:
        by_regime.setdefault(s.regime, []).append(s.total_inventory)
    cap = sum(d.q_max * d.unit for d in SimParams().dealers)
    assert min(by_regime["buy_burst"]) < -0.5 * cap  # buyers leave the dealers short
    assert max(by_regime["dry_up"]) > 0.8 * cap  # relentless selling: long, near the limit
    kinds = {(e.symptom, e.side, e.regime) for e in run.episodes}
    assert {
        ("quote_skew", "bid", "buy_burst"),
        ("depth_asymmetry", "bid", "buy_burst"),
        ("liquidity_evaporation", "ask", "buy_burst"),
        ("volatility_spike", "both", "vol_shock"),
        ("liquidity_pull", "both", "vol_shock"),
        ("spread_widening", "both", "vol_shock"),
        ("quote_skew", "ask", "dry_up"),
        ("liquidity_evaporation", "bid", "dry_up"),
    } <= kinds
    # at the hard limit the dealers stop bidding (the side that adds to a long inventory)
    dry = [s for s in run.truth if s.regime == "dry_up"]
    assert any(not any(s.bid_quoted) and all(s.ask_quoted) for s in dry)
    # the controls label nothing: the refresh is too short, the spoofer is not a dealer
    control = [e for e in run.episodes if e.regime in ("spoof", "refresh")]
    assert all(e.symptom in ("quote_skew", "depth_asymmetry", "liquidity_evaporation")
               and e.start_ns < run.start_ns + 125 * 10**9 for e in control)  # fmt: skip
    for e in run.episodes:
        assert e.start_ns <= e.end_ns and e.end_ns - e.start_ns >= 2 * 10**9


def test_labelling_rule_on_handmade_samples() -> None:
    run = simulate("calm", 3, duration_s=10)
    base = run.truth[-1]
    p = SimParams()
    full = [d.unit * sum(d.ladder) for d in p.dealers]
    t0 = base.ts_ns
    samples = []
    for i in range(60):  # 6 s: dealers short at the limit, asks gone, then fully pulled
        pulled = i >= 40
        samples.append(
            replace(
                base,
                ts_ns=t0 + i * 100_000_000,
                total_inventory=-0.9 * sum(d.q_max * d.unit for d in p.dealers),
                bid_size=tuple(0.0 if pulled else f for f in full),
                ask_size=tuple(0.0 for _ in full),
                bid_quoted=tuple(not pulled for _ in full),
                ask_quoted=tuple(False for _ in full),
                dealer_spread=math.inf,
                regime="buy_burst",
            )
        )
    episodes = {(e.symptom, e.side): (e.start_ns - t0, e.end_ns - t0) for e in
                label_episodes([*run.truth, *samples], p)}  # fmt: skip
    assert episodes[("quote_skew", "bid")] == (0, 5_900_000_000)
    assert episodes[("depth_asymmetry", "bid")] == (0, 5_900_000_000)
    assert episodes[("liquidity_evaporation", "ask")] == (0, 3_900_000_000)
    assert episodes[("spread_widening", "both")] == (0, 5_900_000_000)  # no dealer ask: ∞
    assert ("liquidity_pull", "both") not in episodes  # 2.0 s - 0.1 s < min_s
    assert ("volatility_spike", "both") not in episodes


def test_glft_quotes() -> None:
    half, skew = glft_quotes(0.1, 1.0, 2.0, 1.0)
    assert half == pytest.approx(0.488 + 0.132, abs=0.002)
    assert skew == pytest.approx(0.264, abs=0.001)
    assert glft_quotes(0.0, 1.0, 2.0, 1.0) == (0.5, 0.0)  # risk-neutral: 1/k, no skew
    assert glft_quotes(0.1, 1.0, 2.0, 5.0)[1] == pytest.approx(5 * skew)


def test_inventory_averse_dealer_holds_far_less_inventory_risk() -> None:
    """Avellaneda–Stoikov (2008; docs/signals.md) in LOB mode, one dealer, seeded."""
    unbounded = {"q_soft": 1e9, "q_max": 1e9, "pull_kappa": 1e9}
    averse = SimParams(dealers=(DealerParams(**unbounded),))  # type: ignore[arg-type]
    symmetric = SimParams(dealers=(DealerParams(skew=False, **unbounded),))  # type: ignore[arg-type]
    var_averse: list[float] = []
    var_symmetric: list[float] = []
    for seed in (1, 2):
        for params, out in ((averse, var_averse), (symmetric, var_symmetric)):
            run = simulate("calm", seed, duration_s=240, params=params)
            out.append(statistics.pvariance([s.total_inventory for s in run.truth[::10]]))
    ratio = sum(var_averse) / sum(var_symmetric)
    assert ratio < 0.25, (var_averse, var_symmetric)
    assert all(math.isfinite(v) and v > 0 for v in var_averse)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_is_well_formed(name: str) -> None:
    spec = SCENARIOS[name]
    assert spec.kind in ("symptom", "calm", "control")
    assert spec.description and spec.duration_s >= 300
    assert spec.phases[0].regime == "calm" and spec.phases[0].duration_s >= 240
    assert (spec.kind == "symptom") == bool(spec.expected)
    assert all(
        side in (("buy", "sell") if symptom == "hedge_pressure" else ("bid", "ask", "both"))
        for symptom, side in spec.expected
    )
    assert spec.perp or not spec.hedged
    assert all(symptom == "hedge_pressure" for symptom, _ in spec.expected) or not spec.silent
