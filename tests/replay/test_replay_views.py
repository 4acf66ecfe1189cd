"""A recording of a spot and a perpetual venue replays to the hedge view's episodes.

The views over several instruments (cross-venue, hedge) read only the engines' event-time
ticks. A recording of both simulated venues of ``hedged-buy-burst`` — the frames the scorer
feeds, with the REST snapshots where the books ask for them — must replay to exactly the
``hedge_pressure`` episodes the scorer's drive of the same run finds, and export the basis.
"""

from __future__ import annotations

import heapq
import math
from pathlib import Path

import msgspec
from prometheus_client import CollectorRegistry

from mmradar.record import Recorder
from mmradar.replay import format_summary, replay
from mmradar.score.runner import drive
from mmradar.signals.params import SignalSettings
from mmradar.sim import SCENARIOS, simulate
from mmradar.venues import make_venue

SYM = "BTCUSDT"


async def test_a_two_venue_recording_replays_to_the_scorers_hedge_episodes(
    tmp_path: Path,
) -> None:
    params = msgspec.structs.replace(SignalSettings(), warmup_seconds=300.0)
    name, seed = "hedged-buy-burst", 1
    run = simulate(name, seed)
    assert run.perp is not None
    spec = SCENARIOS[name]
    scored = drive(run, scenario=name, kind=spec.kind, seed=seed, params=params)
    want = [
        (e.side, e.start_ns, e.end_ns) for e in scored.detected if e.symptom == "hedge_pressure"
    ]
    assert want, "the scorer finds the hedge of this run"

    venues = {"binance": run, "binance-usdm": run.perp}
    plans = {x: make_venue(x).connections([SYM], trades=True)[0] for x in venues}
    first = min(run.frames[0].ts_ns, run.perp.frames[0].ts_ns)
    streams = [[(f.ts_ns, x, f.payload) for f in v.frames] for x, v in venues.items()]
    merged = heapq.merge(*streams, key=lambda r: r[0])
    with Recorder(
        tmp_path, [(x, [SYM], True) for x in venues], version="test", start_ns=first
    ) as rec:
        for x, plan in plans.items():
            rec.opened(x, plan, first)
        snapshot_sent: set[str] = set()
        for ts, x, payload in merged:
            rec.frame(x, plans[x].name, ts, payload)
            if x not in snapshot_sent:
                # the book asks for its snapshot on its first depth message (as the scorer
                # answers it: at once, with the run's start snapshot)
                rec.snapshot(x, SYM, ts, venues[x].snapshot)
                snapshot_sent.add(x)
        paths = list(rec.paths)

    registry = CollectorRegistry()
    result = await replay(paths, registry=registry, signal_params=params, progress=False, out=None)
    got = [
        (v.side, v.started_ns, v.ended_ns)
        for v in result.view_episodes
        if v.symptom == "hedge_pressure"
    ]
    # still firing at the end of the recording: the scorer ends it at the last event
    got = [(s, a, b if b is not None else scored.end_ns) for s, a, b in got]
    assert got == want
    assert all(v.exchange == "binance-usdm" for v in result.view_episodes)
    basis = registry.get_sample_value(
        "mmradar_basis_bps",
        {"instrument": "BTC-USD", "spot_exchange": "binance", "perp_exchange": "binance-usdm"},
    )
    assert basis is not None and math.isfinite(basis)
    assert "hedge_pressure/buy" in format_summary(result)
