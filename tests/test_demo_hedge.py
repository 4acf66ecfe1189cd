"""``mmradar demo`` on a scenario with a perpetual, on a fake clock: both venues play in lockstep
and the service's hedge view (basis, flow lead–lag) forms from the two books it keeps."""

from __future__ import annotations

import asyncio
import io
import math
import re
import statistics
import time

import aiohttp

from e2e.harness import Samples, parse_metrics, sample
from fake_clock import FakeClock
from mmradar.demo import SCENARIOS, run_demo
from support import wait_until

SCENARIO = "hedged-buy-burst"
#: event time runs this much faster than the fake clock
SPEED = 10.0
#: fake seconds at which /metrics is scraped: event time 120-300 s, the scenario's calm
SCRAPES_S = [float(s) for s in range(12, 31)]
SPOT = {"exchange": "binance", "symbol": "BTCUSDT"}
PERP = {"exchange": "binance-usdm", "symbol": "BTCUSDT"}
PAIR = {"instrument": "BTC-USD", "spot_exchange": "binance", "perp_exchange": "binance-usdm"}


async def test_a_perp_scenario_plays_both_venues_and_the_hedge_view_forms() -> None:
    """Every scrape of the calm part: both books valid, their last updates at the same event
    time (lockstep), and ``mmradar_basis_bps`` finite and the basis of the two scraped mids.

    The basis is of the last evaluated event-time second and the mids are of the scrape's
    instant (up to ~2 s later), so each pair may differ by the mids' moves meanwhile: each is
    held to 3 bps, their means over the 19 scrapes to 0.5 bps, and the mids' own basis must be
    the perpetual's premium (a few bps, not 0), so the check cannot pass on a constant."""
    assert SCENARIOS[SCENARIO].perp_exchange == "binance-usdm"
    clock = FakeClock(wall_ns=time.time_ns())
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_demo(
            stop,
            scenario=SCENARIO,
            speed=SPEED,
            listen="127.0.0.1:0",
            duration_s=SCRAPES_S[-1] + 1.0,
            env={},
            out=out,
            clock=clock,
        )
    )
    await wait_until(lambda: clock.next_wake() is not None, "the demo to start", timeout_s=120)
    await clock.run_until(lambda: "  metrics " in out.getvalue(), within_s=5.0)
    found = re.search(r"metrics +(http://127\.0\.0\.1:\d+)/metrics", out.getvalue())
    assert found is not None
    url = found.group(1)
    scraped: list[Samples] = []
    async with aiohttp.ClientSession() as session:
        for at in SCRAPES_S:
            await clock.run_until(lambda at=at: clock.now >= at, within_s=at)
            async with session.get(f"{url}/metrics") as resp:
                assert resp.status == 200
                scraped.append(parse_metrics(await resp.text()))
    await clock.run_until(stop.is_set, within_s=5.0)
    await asyncio.wait_for(task, 10)

    exported: list[float] = []
    from_mids: list[float] = []
    for samples in scraped:
        for book in (SPOT, PERP):
            assert sample(samples, "mmradar_book_valid", **book) == 1.0
        spot_ts = sample(samples, "mmradar_book_last_update_timestamp_seconds", **SPOT)
        perp_ts = sample(samples, "mmradar_book_last_update_timestamp_seconds", **PERP)
        assert abs(spot_ts - perp_ts) <= 0.25, (spot_ts, perp_ts)
        spot_mid = sample(samples, "mmradar_mid_price", **SPOT)
        perp_mid = sample(samples, "mmradar_mid_price", **PERP)
        basis = sample(samples, "mmradar_basis_bps", **PAIR)
        assert math.isfinite(basis)
        expected = 1e4 * (perp_mid - spot_mid) / spot_mid
        assert abs(basis - expected) <= 3.0, (basis, expected)
        exported.append(basis)
        from_mids.append(expected)
    assert abs(statistics.fmean(exported) - statistics.fmean(from_mids)) <= 0.5
    assert 1.0 <= statistics.fmean(from_mids) <= 6.0

    last = scraped[-1]
    ahead = sample(last, "mmradar_flow_lead_seconds", instrument="BTC-USD", leader="binance",
                   follower="binance-usdm")  # fmt: skip
    behind = sample(last, "mmradar_flow_lead_seconds", instrument="BTC-USD",
                    leader="binance-usdm", follower="binance")  # fmt: skip
    assert math.isfinite(ahead) and ahead == -behind

    text = out.getvalue()
    assert re.search(r"second venue +ws ws://127\.0\.0\.1:\d+ .*\(binance-usdm BTCUSDT", text)
    assert "binance BTCUSDT        VALID" in text
    assert "binance-usdm BTCUSDT   VALID" in text
    assert re.search(r"hedge BTC-USD +basis [+-]\d+\.\d\dbp \(binance-usdm over binance\)", text)
