"""The ``sweep`` negative control: takers trade through the asks while makers keep quoting.

Liquidity *traded through*, not *pulled*: the dealers hedge every fill at once (their inventory
stays flat) and re-quote the side that was hit, so no inventory symptom is true; the background
asks within 25 bps are consumed by the sweeps. ``liquidity_evaporation`` must stay quiet (or
say ``cause: trade``), and the pulled-versus-traded attribution must see trades.
"""

from __future__ import annotations

from functools import cache

import msgspec

from mmradar.book.sync import FetchSnapshot
from mmradar.pipeline import FeedPipeline
from mmradar.signals.engine import SignalEngine
from mmradar.signals.episodes import EpisodeEvent
from mmradar.signals.params import SignalSettings
from mmradar.sim import SCENARIOS, Phase, ScenarioSpec, SimRun, simulate
from mmradar.venues import make_venue

SWEEP = SCENARIOS["sweep"]
SHORT = ScenarioSpec(
    name="short-sweep",
    kind="control",
    description="test schedule",
    phases=(Phase("calm", 20.0), Phase("sweep", 40.0)),
)


@cache
def short_run(seed: int = 3) -> SimRun:
    return simulate(SHORT, seed)


def test_sweeps_trade_through_the_asks_while_hedged_dealers_keep_quoting() -> None:
    run = short_run()
    full = sum(d.unit * sum(d.ladder) for d in run.params.dealers)
    in_sweep = [s for s in run.truth if s.regime == "sweep"]
    assert in_sweep
    # hedged: the dealers' inventory does not move, and their ask ladder stays (nearly) full
    q0 = in_sweep[0].total_inventory
    assert max(abs(s.total_inventory - q0) for s in in_sweep) < 1e-9
    assert min(sum(s.ask_size) for s in in_sweep) >= 0.8 * full
    # ... so no symptom is true
    assert run.episodes == []
    # the sweeps print buys far beyond the dealers' best ask (background traded through)
    dealer_fills = {(f.ts_ns, f.price_ticks) for f in run.fills}
    assert dealer_fills
    start = in_sweep[0].ts_ns
    sweep_trades = [f for f in run.frames if "@trade" in f.stream and f.ts_ns >= start]
    assert len(sweep_trades) > len([f for f in run.fills if f.ts_ns >= start])


def _drive(
    run: SimRun, params: SignalSettings
) -> tuple[SignalEngine, list[EpisodeEvent], list[tuple[int, float, float]]]:
    events: list[EpisodeEvent] = []
    pipeline = FeedPipeline(
        make_venue("binance"), [run.symbol], signal_params=params, on_episode=events.append
    )
    engine = pipeline.instruments[run.symbol].engine
    ticks: list[tuple[int, float, float]] = []  # (time, ask traded within 50 bps, bid traded)

    def on_tick(e: SignalEngine) -> None:
        ticks.append(
            (e.sample.ts_ns, e.removed_notional(False, 1)[0], e.removed_notional(True, 1)[0])
        )

    engine.on_tick = on_tick
    parser = pipeline.new_parser()
    for frame in run.frames:
        for command in pipeline.on_frame(parser, frame.payload, frame.ts_ns):
            if isinstance(command, FetchSnapshot):
                pipeline.on_snapshot(run.symbol, run.snapshot, frame.ts_ns)
    return engine, events, ticks


def test_evaporation_stays_quiet_and_the_removals_are_trade_led() -> None:
    run = simulate("sweep", 3)
    params = msgspec.structs.replace(SignalSettings(), warmup_seconds=300)
    engine, events, ticks = _drive(run, params)
    assert engine.warm
    inventory = [
        e
        for e in events
        if e.state == "firing"
        and e.symptom in ("depth_asymmetry", "quote_skew", "liquidity_evaporation")
        and not (e.symptom == "liquidity_evaporation" and e.context.get("cause") == "trade")
    ]
    assert inventory == []
    # the sweeps took the asks: what was traded away from them within 50 bps while the sweep
    # regime lasted dwarfs the calm minutes before, and the bids
    start = next(s.ts_ns for s in run.truth if s.regime == "sweep")
    end = max(s.ts_ns for s in run.truth if s.regime == "sweep")
    before = max((t for t in ticks if t[0] <= start), key=lambda t: t[0])
    after = max((t for t in ticks if t[0] <= end), key=lambda t: t[0])
    calm = before[1] / ((before[0] - ticks[0][0]) / 1e9)  # per second
    sweep_ask = (after[1] - before[1]) / ((after[0] - before[0]) / 1e9)
    sweep_bid = (after[2] - before[2]) / ((after[0] - before[0]) / 1e9)
    assert sweep_ask > 5 * calm
    assert sweep_ask > 5 * sweep_bid
    assert SWEEP.kind == "control" and not SWEEP.expected
