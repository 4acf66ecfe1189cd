"""Basis and flow lead–lag end to end: a spot and a perpetual venue on 127.0.0.1.

Two embedded Binance venues — spot (exchange ``binance``) and USD-M (``binance-usdm``) — serve
one synthetic BTCUSDT market each, built here: a touch that moves every 100 ms, the perpetual
quoted a drifting basis above spot, and one taker trade per second on each venue, the
perpetual's flow a copy of spot's three seconds later (plus noise of its own). The service
follows both; its hedge view pairs them as the spot and perpetual legs of ``BTC-USD``.

Venues and service run on one fake clock (the replays paced on it, the service's waits on it),
so the two venues stay on one event-time axis as real venues do, and each frame is read before
the clock moves on. Every expected value is computed from what the venues *sent*: the truth
book's mid at each depth frame and each trade frame's signed notional, with plain loops
(:mod:`leadlag_reference`) — never from the service's state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from fake_clock import FakeClock
from leadlag_reference import naive_correlations, naive_peak
from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.embedded.binance import EmbeddedBinance
from mmradar.embedded.capture import Capture, DepthDiff, Market, Record, Snapshot, Trade
from mmradar.embedded.plan import ReplayPlan, build_plan
from mmradar.venues import VENUE_NAMES
from support import wait_until

from .harness import Running, Samples, fast_backoff, sample

SYMBOL = "BTCUSDT"
INSTRUMENT = "BTC-USD"
#: The synthetic captures' first event time (a whole second), ms.
E0_MS = 1_700_000_000_000
#: Seconds of market per venue.
DURATION_S = 130
#: The perpetual's taker flow repeats spot's this many seconds later.
LAG_S = 3
WINDOW_S = 60
MAX_LAG_S = 10
MIN_ACTIVE_S = 10
CHANGE_S = 10
SIGNALS = {
    "leadlag_window_seconds": WINDOW_S,
    "leadlag_max_lag_seconds": MAX_LAG_S,
    "leadlag_min_active_seconds": MIN_ACTIVE_S,
    "basis_change_seconds": CHANGE_S,
}
#: Deep levels that never change, so neither side is ever empty.
FAR_BID, FAR_ASK = 5_000_000, 7_000_000  # cents


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _lcg(seed: int) -> Any:
    x = seed
    while True:
        x = (1103515245 * x + 12345) % 2**31
        yield x


def _spot_flow() -> list[int]:
    """Signed taker quantity per second, in units of 0.001 BTC (0: no trade)."""
    draw = _lcg(7)
    return [
        (next(draw) >> 8) % 401 - 200 if (next(draw) >> 8) % 5 else 0 for _ in range(DURATION_S)
    ]


def synthetic_capture(market: Market) -> Capture:
    """A ``DURATION_S`` market: a touch step every 100 ms, one trade a second at ``k + 0.5`` s.

    Spot's bid walks by 1-cent steps around 60 000; the perpetual's bid is spot's plus a basis
    drifting by 1-cent steps around 3.00; both spreads are 10 cents. The perpetual trades
    spot's signed quantity of ``LAG_S`` seconds before, doubled, plus noise of its own.
    """
    usdm = market == "usdm"
    walk, basis_walk, noise = _lcg(11), _lcg(13), _lcg(17)
    flow = _spot_flow()
    bid, basis = 6_000_000, 300
    last_id = 1000
    snapshot = Snapshot(
        recv_ns=(E0_MS - 100) * 1_000_000,
        lastUpdateId=last_id,
        bids=((_price(bid + (basis if usdm else 0)), "1.000"), (_price(FAR_BID), "5.000")),
        asks=((_price(bid + (basis if usdm else 0) + 10), "1.000"), (_price(FAR_ASK), "5.000")),
        E=E0_MS - 100 if usdm else None,
        T=E0_MS - 100 if usdm else None,
    )
    records: list[Record] = [snapshot]
    previous = bid + (basis if usdm else 0)
    u = last_id
    trade_id = 1
    for i in range(DURATION_S * 10 + 1):
        e_ms = E0_MS + 100 * i
        if i:
            bid += (next(walk) >> 8) % 3 - 1
            basis = min(400, max(200, basis + (next(basis_walk) >> 8) % 3 - 1))
        now = bid + (basis if usdm else 0)
        bids = [(_price(now), "1.000")]
        asks = [(_price(now + 10), "1.000")]
        if now != previous:
            bids.append((_price(previous), "0"))
            asks.append((_price(previous + 10), "0"))
        first = u if usdm and i == 0 else u + 1  # USD-M: the first diff straddles the snapshot
        records.append(
            DepthDiff(
                recv_ns=e_ms * 1_000_000 + 1_000_000,
                stream=f"{SYMBOL.lower()}@depth@100ms",
                E=e_ms,
                T=e_ms if usdm else None,
                s=SYMBOL,
                U=first,
                u=u + 1,
                pu=u if usdm else None,
                b=tuple(bids),
                a=tuple(asks),
            )
        )
        u += 1
        previous = now
        if i % 10 == 5 and i // 10 < DURATION_S:
            k = i // 10
            qty = flow[k]
            if usdm:
                qty = 2 * (flow[k - LAG_S] if k >= LAG_S else 0) + ((next(noise) >> 8) % 61 - 30)
            if qty:
                records.append(
                    Trade(
                        recv_ns=e_ms * 1_000_000 + 1_000_000,
                        stream=f"{SYMBOL.lower()}@trade",
                        E=e_ms,
                        T=e_ms,
                        s=SYMBOL,
                        t=trade_id,
                        p=_price(now + 10 if qty > 0 else now),
                        q=f"{abs(qty) / 1000:.3f}",
                        m=qty < 0,
                        M=None if usdm else True,
                        X="MARKET" if usdm else None,
                    )
                )
                trade_id += 1
    return Capture(records=tuple(records), snapshot=snapshot, symbol=SYMBOL)


class SyntheticSource:
    """:func:`synthetic_capture` as an embedded venue's frame source."""

    def __init__(self, market: Market) -> None:
        self._market: Market = market

    @property
    def market(self) -> Market:
        return self._market

    @property
    def description(self) -> str:
        return f"synthetic {SYMBOL} ({self._market})"

    def load(self) -> ReplayPlan:
        return build_plan(synthetic_capture(self._market), self._market)


class RecordingBinance(EmbeddedBinance):
    """An embedded venue that also notes what it sent: the truth book's mid with each depth
    frame (by its ``E``), and each trade frame's signed notional (by its ``T``)."""

    def __init__(self, market: Market, clock: FakeClock) -> None:
        super().__init__(
            market,
            source=SyntheticSource(market),
            speed=1.0,
            loop=False,
            clock=clock.wall_ns,
            pace_clock=clock,
        )
        self.mids: list[tuple[int, float]] = []
        self.flows: list[tuple[int, float]] = []

    def _publish(self, stream: str, payload: bytes) -> bool:
        sent = super()._publish(stream, payload)
        if sent:
            msg = orjson.loads(payload)
            if msg.get("e") == "depthUpdate":
                truth = self._truth
                assert truth is not None
                bid = max(Decimal(p) for p in truth.bids)
                ask = min(Decimal(p) for p in truth.asks)
                self.mids.append((int(msg["E"]), 0.5 * (float(bid) + float(ask))))
            elif msg.get("e") in ("trade", "aggTrade"):
                notional = float(msg["q"]) * float(msg["p"])
                self.flows.append((int(msg["T"]), -notional if msg["m"] else notional))
        return sent

    def mid_in_force(self, t_ms: int) -> float:
        """The mid of the book in force at ``t_ms``: after every depth frame with ``E < t``."""
        return [mid for e, mid in self.mids if e < t_ms][-1]

    def flow_of_second(self, t_ms: int) -> float:
        """Signed taker notional of the second ending at ``t_ms``: trades with ``T`` in
        ``[t - 1 s, t)``."""
        total = 0.0
        for ts, signed in self.flows:
            if t_ms - 1000 <= ts < t_ms:
                total += signed
        return total


@asynccontextmanager
async def serving(
    venues: dict[str, RecordingBinance], clock: FakeClock
) -> AsyncIterator[Running[dict[str, RecordingBinance]]]:
    settings = parse_settings(
        {
            "http": {"listen": "127.0.0.1:0"},
            "feeds": [
                {
                    "exchange": exchange,
                    "symbols": [SYMBOL],
                    "ws_url": venue.ws_base,
                    "rest_url": venue.rest_base,
                }
                for exchange, venue in venues.items()
            ],
            "signals": SIGNALS,
        },
        env={},
        supported=VENUE_NAMES,
    )
    service = Service(settings, backoff_factory=fast_backoff, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        server = service.server
        assert server is not None
        await wait_until(lambda: server.port != 0, "the metrics server to start", timeout_s=10)
        async with aiohttp.ClientSession() as session:
            yield Running(venues, service, server.url, session)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def basis_of(samples: Samples, name: str) -> float:
    return sample(
        samples, name, instrument=INSTRUMENT, spot_exchange="binance", perp_exchange="binance-usdm"
    )


def lead_of(samples: Samples, name: str, leader: str, follower: str) -> float:
    return sample(samples, name, instrument=INSTRUMENT, leader=leader, follower=follower)


async def test_basis_and_flow_lead_lag_match_the_venues_truth() -> None:
    clock = FakeClock(wall_ns=(time.time_ns() // 10**9 - 3600) * 10**9)
    spot = RecordingBinance("spot", clock)
    perp = RecordingBinance("usdm", clock)
    venues = {"binance": spot, "binance-usdm": perp}
    async with spot, perp, serving(venues, clock) as running:
        (view,) = running.service.hedge
        assert [(leg.exchange, leg.kind) for leg in view.legs] == [
            ("binance", "spot"),
            ("binance-usdm", "perp"),
        ]
        # Both books valid, then the whole market played on the fake clock.
        pipelines = running.service.pipelines
        await clock.run_until(
            lambda: all(p.instruments[SYMBOL].valid for p in pipelines), within_s=5.0
        )
        await clock.run_until(
            lambda: spot.stats.passes_completed == 1 and perp.stats.passes_completed == 1,
            within_s=DURATION_S + 30,
        )
        await clock.settle()
        samples = await running.scrape()
        for exchange in venues:
            assert sample(samples, "mmradar_book_valid", exchange=exchange, symbol=SYMBOL) == 1
            resyncs = sum(
                v
                for (name, labels), v in samples.items()
                if name == "mmradar_book_resyncs_total" and ("exchange", exchange) in labels
            )
            assert resyncs == 0, exchange

        # The last second both venues reported: the last depth frame's E is a whole
        # second on both (the synthetic markets end on one), so it was a tick of each.
        last_ms = min(spot.mids[-1][0], perp.mids[-1][0])
        assert last_ms % 1000 == 0
        assert view.evaluated_ns == last_ms * 1_000_000

        # Basis now, and its change over CHANGE_S, from the truth books' mids.
        def basis_at(t_ms: int) -> float:
            s, p = spot.mid_in_force(t_ms), perp.mid_in_force(t_ms)
            return 1e4 * (p - s) / s

        want = basis_at(last_ms)
        assert 2 / 6e4 * 1e4 * 0.9 < want < 4 / 6e4 * 1e4 * 1.1  # 2-4 USD on 60 000
        assert basis_of(samples, "mmradar_basis_bps") == pytest.approx(want, rel=1e-12)
        change = (want - basis_at(last_ms - CHANGE_S * 1000)) / CHANGE_S
        assert basis_of(samples, "mmradar_basis_change_bps_per_second") == pytest.approx(
            change, rel=1e-9, abs=1e-12
        )

        # Signed taker notional of the last second, per venue.
        for exchange, venue in venues.items():
            got = sample(
                samples,
                "mmradar_signed_taker_notional",
                instrument=INSTRUMENT,
                exchange=exchange,
                symbol=SYMBOL,
                kind="spot" if exchange == "binance" else "perp",
            )
            assert got == pytest.approx(venue.flow_of_second(last_ms), rel=1e-12, abs=1e-9)

        # Lead-lag over the last WINDOW_S seconds, recomputed from the trade frames.
        seconds = [last_ms - 1000 * (WINDOW_S - 1 - j) for j in range(WINDOW_S)]
        a = [spot.flow_of_second(t) for t in seconds]
        b = [perp.flow_of_second(t) for t in seconds]
        corrs = naive_correlations(a, b, WINDOW_S, MAX_LAG_S, MIN_ACTIVE_S)
        lag, corr = naive_peak(corrs)
        assert lag == LAG_S and corr > 0.9, (lag, corr)
        forward = ("binance", "binance-usdm")
        backward = ("binance-usdm", "binance")
        assert lead_of(samples, "mmradar_flow_lead_seconds", *forward) == lag
        assert lead_of(samples, "mmradar_flow_lead_seconds", *backward) == -lag
        for pair in (forward, backward):
            got = lead_of(samples, "mmradar_flow_lead_correlation", *pair)
            assert got == pytest.approx(corr, abs=1e-9)

        # The symptom's series exist for both legs and both sides.
        for exchange in venues:
            for side in ("buy", "sell"):
                labels = {
                    "exchange": exchange,
                    "symbol": SYMBOL,
                    "symptom": "hedge_pressure",
                    "side": side,
                }
                assert sample(samples, "mmradar_symptom_active", **labels) in (0.0, 1.0)
                assert ("mmradar_symptom_episodes_total", frozenset(labels.items())) in samples
