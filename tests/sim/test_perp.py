"""The second venue (a perpetual on Binance USD-M's wire) and the spot dealers' hedging."""

from __future__ import annotations

import math
from dataclasses import replace

import orjson
import pytest

from mmradar.book.sync import FetchSnapshot
from mmradar.pipeline import FeedPipeline
from mmradar.sim import SCENARIOS, HedgeParams, SimParams, simulate
from mmradar.sim.types import SimRun
from mmradar.venues import make_venue

S = 1_000_000_000


@pytest.fixture(scope="module")
def hedged() -> SimRun:
    return simulate("hedged-buy-burst", 1)


def test_the_spot_venue_is_unchanged_by_a_perpetual_alongside() -> None:
    """The perpetual draws from a stream of its own: unhedged, spot is byte-identical (hedged
    dealers quote on their net position, so a hedged run's spot venue differs)."""
    alone = simulate("buy-burst", 1, duration_s=420)
    both = simulate(replace(SCENARIOS["buy-burst"], perp=True), 1, duration_s=420)
    assert alone.perp is None and both.perp is not None
    assert [f.payload for f in both.frames] == [f.payload for f in alone.frames]
    assert both.truth == alone.truth
    assert both.episodes == alone.episodes
    assert both.perp.hedges == ()


class _Observer:
    def __init__(self) -> None:
        self.resyncs = 0

    def bad_message(self, reason: str) -> None:
        raise AssertionError(reason)

    def resync(self, symbol: str, reason: str) -> None:
        self.resyncs += 1


def test_the_real_usdm_pipeline_keeps_the_perpetual_book(hedged: SimRun) -> None:
    perp = hedged.perp
    assert perp is not None and perp.exchange == "binance-usdm"
    observer = _Observer()
    pipeline = FeedPipeline(make_venue(perp.exchange), [perp.symbol], observer)
    parser = pipeline.new_parser()

    def carry(commands: object) -> None:
        for command in commands:  # type: ignore[attr-defined]
            if type(command) is FetchSnapshot:
                carry(pipeline.on_snapshot(perp.symbol, perp.snapshot, hedged.start_ns))

    inst = pipeline.instruments[perp.symbol]
    for frame in perp.frames:
        carry(pipeline.on_frame(parser, frame.payload, frame.ts_ns))
    assert inst.valid and observer.resyncs == 0
    bid, ask = inst.book.best_bid(), inst.book.best_ask()
    assert bid is not None and ask is not None
    assert 0.5 * (bid[0] + ask[0]) == pytest.approx(perp.mid[-1], abs=1e-9)
    # the perpetual trades at a basis over spot (3 bps by default), on its own grid
    assert len(perp.mid) == len(hedged.truth)
    basis = [
        1e4 * (m / s.mid - 1) for m, s in zip(perp.mid, hedged.truth, strict=True) if s.mid == s.mid
    ]
    assert 1.0 < sorted(basis)[len(basis) // 2] < 5.0
    first = orjson.loads(perp.frames[0].payload)["data"]
    snap = orjson.loads(perp.snapshot)
    assert first["U"] <= snap["lastUpdateId"] <= first["u"] and first["pu"] == first["U"]
    assert len(snap["bids"]) <= 1000 and snap["bids"][0][0] == "60014.30"


def test_dealers_hedge_a_fraction_of_their_inventory_with_a_delay(hedged: SimRun) -> None:
    perp = hedged.perp
    assert perp is not None
    t0 = hedged.start_ns
    burst = [h for h in perp.hedges if hedged.regime_at(h.ts_ns) == "buy_burst"]
    assert {h.side for h in burst} == {"buy"}
    first_fill = next(f for f in hedged.fills if hedged.regime_at(f.ts_ns) == "buy_burst")
    # the hedger sees the inventory 1.5 s late, and hedges by half-lives
    assert burst[0].ts_ns - first_fill.ts_ns >= 1.5 * S
    assert (burst[0].ts_ns - t0, round(burst[0].qty, 3)) == (370_875_000_000, 0.013)
    assert len(perp.hedges) == 539
    # hedged, the dealers keep absorbing the burst: the spot inventory goes far beyond what
    # their net position (inventory + hedge) ever reaches
    spot = min(s.total_inventory for s in hedged.truth)
    net = min(s.total_inventory + s.hedge_position for s in hedged.truth)
    assert (round(spot, 3), round(net, 3)) == (-2.564, -0.97)
    bought = sum(h.filled for h in burst)
    assert 0.6 * -spot < bought < 0.8 * -spot  # fraction 0.7
    # the hedge comes off patiently (unwind half-life 30 s): still on at the end of the run
    assert all(0.5 < x < 0.55 for x in perp.hedge_position)
    assert abs(sum(hedged.truth[-1].inventory) + sum(perp.hedge_position)) < 0.1


def test_hedge_episodes_are_labelled_from_the_hedge_orders(hedged: SimRun) -> None:
    t0 = hedged.start_ns
    got = [
        (e.side, (e.start_ns - t0) / S, (e.end_ns - t0) / S, e.regime, e.exchange, e.symbol)
        for e in hedged.episodes
        if e.symptom == "hedge_pressure"
    ]
    # the hedge of the burst (the patient unwind after it is no burst of hedging)
    assert got == [("buy", 370.875, 439.875, "buy_burst", "binance-usdm", "BTCUSDT")]
    perp = hedged.perp
    assert perp is not None
    buys = [h.ts_ns for h in perp.hedges if h.side == "buy"]
    assert t0 + 370_875_000_000 in buys
    # spot labels keep the spot exchange
    assert {e.exchange for e in hedged.episodes if e.symptom != "hedge_pressure"} == {"binance"}


def test_hedged_sell_burst_hedges_by_selling() -> None:
    run = simulate("hedged-sell-burst", 1)
    eps = [e for e in run.episodes if e.symptom == "hedge_pressure"]
    assert [(e.side, run.regime_at(e.start_ns)) for e in eps] == [("sell", "sell_burst")] * 3


@pytest.mark.parametrize("name", ["unhedged-burst", "common-shock"])
def test_controls_have_a_perpetual_and_no_hedging(name: str) -> None:
    run = simulate(name, 1)
    assert run.perp is not None and run.perp.hedges == ()
    assert not [e for e in run.episodes if e.symptom == "hedge_pressure"]
    assert SCENARIOS[name].kind == "control" and SCENARIOS[name].silent == ("hedge_pressure",)


def test_a_common_shock_hits_both_venues_at_the_same_instants() -> None:
    run = simulate("common-shock", 1)
    perp = run.perp
    assert perp is not None

    def buys(frames: object, kind: bytes) -> dict[int, float]:
        out: dict[int, float] = {}
        for f in frames:  # type: ignore[attr-defined]
            if kind in f.payload:
                d = orjson.loads(f.payload)["data"]
                if not d["m"]:
                    out[d["T"]] = out.get(d["T"], 0.0) + float(d["q"])
        return out

    spot = buys(run.frames, b'"trade"')
    fut = buys(perp.frames, b"aggTrade")
    shocks = [t for t in spot if run.regime_at(t * 1_000_000) == "common_shock" and t in fut]
    assert len(shocks) == 56
    # the perpetual's buying in the shocks is far above its calm rate
    calm = sum(q for t, q in fut.items() if run.regime_at(t * 1_000_000) == "calm") / 576
    shock = sum(q for t, q in fut.items() if run.regime_at(t * 1_000_000) == "common_shock") / 24
    assert shock > 3 * calm


def test_hedge_parameters_scale_the_hedge() -> None:
    base = simulate("hedged-buy-burst", 2, duration_s=420)
    half = simulate(
        "hedged-buy-burst", 2, duration_s=420, params=SimParams(hedge=HedgeParams(fraction=0.3))
    )
    assert base.perp is not None and half.perp is not None
    # hedged dealers quote on their net position: how much they hedge changes spot too
    assert [f.payload for f in base.frames] != [f.payload for f in half.frames]
    a = sum(h.filled for h in base.perp.hedges if h.side == "buy")
    b = sum(h.filled for h in half.perp.hedges if h.side == "buy")
    # a smaller fraction hedges less, and the dealers, less hedged, absorb less of the burst
    assert (round(a, 3), round(b, 3)) == (1.659, 0.337)
    assert math.isfinite(a)
