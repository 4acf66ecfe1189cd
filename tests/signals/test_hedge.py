"""The hedge view: basis, flow lead–lag and ``hedge_pressure`` on synthetic ticks.

The legs are stand-in engines that only carry what the view reads from a real one (the tick
sample, liveness, warm-up, book life); every expected value is computed here independently,
from the fed series, with plain loops.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadlag_reference import naive_correlations, naive_peak
from mmradar.app import Service, _run_feed
from mmradar.book.l2book import L2Book
from mmradar.config import parse_settings
from mmradar.contracts import ContractSize
from mmradar.errors import ConfigError, ContractError, UnitsError
from mmradar.instruments import market_kind
from mmradar.model import BAND_BPS
from mmradar.signals.engine import SignalEngine
from mmradar.signals.episodes import EpisodeEvent
from mmradar.signals.hedge import (
    SYMPTOM,
    HedgeView,
    LeadLag,
    build_hedge_views,
    require_base_units,
)
from mmradar.signals.market import MarketParams, MarketState
from mmradar.signals.params import SignalSettings
from mmradar.signals.reading import EngineReading
from mmradar.signals.ticks import TickFanout, add_tick_listener
from mmradar.venues import VENUE_NAMES
from mmradar.webhooks import encode

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
NAN = math.nan


class FakeEngine:
    """What a hedge view reads from a :class:`SignalEngine`."""

    def __init__(self, warm: bool = True) -> None:
        self.sample = SimpleNamespace(ts_ns=0, mid=NAN, signed_notional=0.0)
        self.live = True
        self.warm = warm
        self.life_start_ns = 1
        self.on_tick: Any = None

    def tick(self, ts_ns: int, mid: float, notional: float) -> None:
        self.sample.ts_ns = ts_ns
        self.sample.mid = mid
        self.sample.signed_notional = notional
        if self.on_tick is not None:
            self.on_tick(self)

    def read(self, settle: bool = True) -> EngineReading:
        n = len(BAND_BPS)
        mid = self.sample.mid
        return dataclasses.replace(
            BLANK_READING,
            tick_best_bid_price=mid - 0.5,
            tick_best_ask_price=mid + 0.5,
            tick_mid_price=mid,
            spread_baseline_bps=1.0,
            tick_depth_bid_notional=(1.0,) * n,
            tick_depth_ask_notional=(1.0,) * n,
            depth_baseline_bid_notional=(1.0,) * n,
            depth_baseline_ask_notional=(1.0,) * n,
            dealer_pressure=0.0,
            tick_signed_taker_notional=self.sample.signed_notional,
        )


#: A real engine's reading (the context reads its fields); the fake fills in the book's.
BLANK_READING = SignalEngine("binance", "BTCUSDT", L2Book(), MarketState(MarketParams())).read(
    settle=False
)


def engine(fake: FakeEngine) -> SignalEngine:
    return cast(SignalEngine, fake)


def view_of(
    params: SignalSettings, events: list[EpisodeEvent] | None = None
) -> tuple[HedgeView, FakeEngine, FakeEngine]:
    spot, perp = FakeEngine(), FakeEngine()
    views = build_hedge_views(
        [
            ("binance", "BTCUSDT", "BTC-USD", "spot", engine(spot)),
            ("binance-usdm", "BTCUSDT", "BTC-USD", "perp", engine(perp)),
        ],
        params,
        events.append if events is not None else None,
    )
    (view,) = views
    return view, spot, perp


# -- lead-lag estimator ----------------------------------------------------------------------


def test_a_series_copied_three_seconds_later_peaks_at_lag_three() -> None:
    # a pseudo-random series (a linear congruential generator), b = a delayed by 3 s
    x = 12345
    a: list[float] = []
    for _ in range(200):
        x = (1103515245 * x + 12345) % 2**31
        a.append(float(x % 2001 - 1000))
    b = [NAN, NAN, NAN, *a[:-3]]
    ll = LeadLag(100, 10, 20)
    for x_a, x_b in zip(a, b, strict=True):
        ll.push(x_a, x_b)
    lag, corr = ll.peak()
    assert lag == 3.0
    assert corr == pytest.approx(1.0)
    expected = naive_correlations(a, b, 100, 10, 20)
    for k, lag_k in enumerate(ll.lags):
        got = ll.correlation(k)
        if math.isnan(expected[lag_k]):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(expected[lag_k], abs=1e-9)


def test_too_few_active_seconds_read_nan() -> None:
    ll = LeadLag(60, 5, 10)
    for t in range(60):
        ll.push(100.0 if t % 10 == 0 else 0.0, 50.0 if t % 7 == 0 else 0.0)
    assert all(math.isnan(r) for r in ll.correlations())
    assert all(math.isnan(v) for v in ll.peak())


series = st.lists(
    st.one_of(st.integers(-50, 50).map(float), st.just(0.0), st.just(NAN)),
    min_size=0,
    max_size=160,
)


@settings(max_examples=200, deadline=None)
@given(
    a=series,
    b=series,
    window=st.integers(4, 40),
    max_lag=st.integers(1, 6),
    min_active=st.integers(2, 6),
)
def test_incremental_lead_lag_matches_a_naive_recomputation(
    a: list[float], b: list[float], window: int, max_lag: int, min_active: int
) -> None:
    if max_lag >= window:
        max_lag = window - 1
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ll = LeadLag(window, max_lag, min_active)
    for t in range(n):
        ll.push(a[t], b[t])
        expected = naive_correlations(a[: t + 1], b[: t + 1], window, max_lag, min_active)
        for k, lag in enumerate(ll.lags):
            got = ll.correlation(k)
            if math.isnan(expected[lag]):
                assert math.isnan(got), (t, lag, got)
            else:
                assert got == pytest.approx(expected[lag], abs=1e-9), (t, lag)
        lag_got, corr_got = ll.peak()
        lag_exp, corr_exp = naive_peak(expected)
        if math.isnan(lag_exp):
            assert math.isnan(lag_got)
        else:
            assert corr_got == pytest.approx(corr_exp, abs=1e-9)
            # ties within rounding may pick another lag of the same correlation
            k = ll.lags.index(int(lag_got))
            assert expected[int(lag_got)] == pytest.approx(corr_exp, abs=1e-9), k


# -- basis -----------------------------------------------------------------------------------


def test_basis_is_computed_from_both_legs_of_one_second() -> None:
    view, spot, perp = view_of(SignalSettings(basis_change_seconds=2))
    spots = [100.0, 100.5, 101.0, 101.0]
    perps = [100.1, 100.55, 101.2, 100.9]
    for i, (s, p) in enumerate(zip(spots, perps, strict=True)):
        t = T0 + i * NS
        spot.tick(t, s, 0.0)
        perp.tick(t, p, 0.0)
    (basis,) = view.read().basis
    assert view.evaluated_ns == T0 + 3 * NS
    assert basis.spot_venue == "binance"
    assert basis.perp_venue == "binance-usdm"
    bps = [1e4 * (p - s) / s for s, p in zip(spots, perps, strict=True)]
    assert basis.basis_bps == pytest.approx(bps[-1])
    assert basis.basis_change_bps_per_second == pytest.approx((bps[3] - bps[1]) / 2)
    assert math.isnan(basis.basis_zscore)  # no baseline minute closed yet


def test_a_stale_or_invalid_leg_suppresses_the_basis() -> None:
    view, spot, perp = view_of(SignalSettings())
    spot.tick(T0, 100.0, 0.0)
    perp.tick(T0, 100.1, 0.0)
    # the perp stops reporting: its leg has no sample of the next seconds
    for i in range(1, 5):
        spot.tick(T0 + i * NS, 100.0, 0.0)
    (basis,) = view.read().basis
    assert view.evaluated_ns == T0 + 2 * NS  # the grace: 2 s behind the spot
    assert math.isnan(basis.basis_bps)
    perp.live = False
    spot.tick(T0 + 5 * NS, 100.0, 0.0)
    assert math.isnan(view.read().basis[0].basis_bps)


def test_basis_zscore_against_its_own_baseline() -> None:
    params = SignalSettings(baseline_minutes=5, basis_z_floor_bps=0.5)
    view, spot, perp = view_of(params)
    values: list[float] = []
    minute = 60
    # three minutes of basis alternating 10 and 12 bps, then one second at 20 bps
    for i in range(3 * minute):
        t = T0 - T0 % (60 * NS) + i * NS
        bps = 10.0 if i % 2 == 0 else 12.0
        spot.tick(t, 100.0, 0.0)
        perp.tick(t, 100.0 * (1 + bps * 1e-4), 0.0)
        values.append(bps)
    t = T0 - T0 % (60 * NS) + 3 * minute * NS
    spot.tick(t, 100.0, 0.0)
    perp.tick(t, 100.0 * (1 + 20e-4), 0.0)
    # each minute's median is 11 (30 tens, 30 twelves), the deviations are all 1
    (basis,) = view.read().basis
    assert basis.basis_bps == pytest.approx(20.0)
    assert basis.basis_zscore == pytest.approx((20.0 - 11.0) / (1.4826 * 1.0))


# -- hedge_pressure --------------------------------------------------------------------------


def drive_hedge(
    params: SignalSettings,
    *,
    basis_moves: bool,
    delay_s: int = 2,
    after_s: int = 60,
    perp_arrives_late: bool = False,
    sell_before_s: int | None = None,
) -> tuple[HedgeView, list[EpisodeEvent]]:
    """Ten quiet minutes, then a buy burst on the spot leg followed ``delay_s`` later by
    buying on the perp leg, with (or without) the perp's price running up.

    ``sell_before_s``: the spot leg also has a 12-s sell burst ending that many seconds before
    its buy burst (the buy burst is then a reversal).

    ``perp_arrives_late``: each of the perp's ticks reaches the view only after spot's tick of
    the next second (a feed a little behind the other in arrival, not in event time)."""
    events: list[EpisodeEvent] = []
    view, spot, perp = view_of(params, events)
    held: list[tuple[int, float, float]] = []
    start = T0 - T0 % (60 * NS)
    quiet = 600
    for i in range(quiet + after_s):
        t = start + i * NS
        # background flow: small alternating trades on both legs
        noise = 500.0 if i % 2 == 0 else -500.0
        k = i - quiet
        spot_flow = 200_000.0 if 0 <= k < 10 else noise
        if sell_before_s is not None and -sell_before_s - 12 <= k < -sell_before_s:
            spot_flow = -200_000.0
        perp_flow = 150_000.0 if delay_s <= k < delay_s + 20 else -noise
        basis = 5.0 + (0.5 if i % 3 == 0 else 0.0)
        if basis_moves and k >= delay_s:
            # the perp runs up while it is bought, and comes back once the buying stops
            up = min(2.0 * (k - delay_s + 1), 20.0)
            back = max(0.0, 2.0 * (k - delay_s - 19))
            basis += max(0.0, up - back)
        spot.tick(t, 100.0, spot_flow)
        if perp_arrives_late:
            for tick in held:
                perp.tick(*tick)
            held = [(t, 100.0 * (1 + basis * 1e-4), perp_flow)]
        else:
            perp.tick(t, 100.0 * (1 + basis * 1e-4), perp_flow)
    for tick in held:
        perp.tick(*tick)
    return view, events


def test_a_spot_burst_hedged_on_the_perp_fires_hedge_pressure_buy_on_the_perp() -> None:
    params = SignalSettings(baseline_minutes=5)
    view, events = drive_hedge(params, basis_moves=True)
    firing = [e for e in events if e.state == "firing"]
    assert firing, "no hedge_pressure episode"
    e = firing[0]
    assert e.symptom == SYMPTOM
    assert (e.exchange, e.symbol, e.side) == ("binance-usdm", "BTCUSDT", "buy")
    # the spot burst's onset is second 0 of the burst (its 5-s sum crosses both thresholds
    # there); the perp's evidence counts from second 3 (hedge_min_lag_seconds after the onset):
    # its buying, 300 times its typical second and clipped to 4, adds 4 − 0.5 a second, so the
    # CUSUM is 3.5, 7, 10.5 at seconds 3, 4, 5 — past hedge_follower_cusum (10) at second 5,
    # with the basis already 12 bps above its pre-onset median: the condition holds from second
    # 5 and, after hedge_on_seconds (1 s), fires at second 6
    start = T0 - T0 % (60 * NS) + 600 * NS
    assert e.started_at_ns == start + 6 * NS
    # the perp's buying stops after second 21 and its price comes back over the next ten
    # seconds: the basis z is back under hedge_basis_level_z at second 31, and the episode
    # resolves hedge_off_seconds (10) later
    (resolved,) = [x for x in events if x.state == "resolved"]
    assert resolved.ended_at_ns == start + 41 * NS
    ctx = e.context
    assert ctx["instrument"] == "BTC-USD"
    assert (ctx["leader_exchange"], ctx["leader_symbol"]) == ("binance", "BTCUSDT")
    assert ctx["basis_zscore"] >= params.hedge_basis_level_z
    assert ctx["follower_cusum"] == 14.0  # 10.5 + 3.5 at second 6
    assert ctx["basis_bps"] > 5.0
    for key in ("book_valid", "best_bid", "depth", "depth_baseline", "dealer_pressure"):
        assert key in ctx
    assert "lead_seconds" in ctx and "lead_correlation" in ctx
    legs = {leg.exchange: leg for leg in view.read().legs}
    perp_buy = next(s for s in legs["binance-usdm"].symptoms if s.side == "buy")
    assert perp_buy.episodes == 1
    assert all(s.episodes == 0 for s in legs["binance"].symptoms)


def test_no_basis_move_no_hedge_pressure() -> None:
    _, events = drive_hedge(SignalSettings(baseline_minutes=5), basis_moves=False)
    assert events == []


def test_a_same_second_common_shock_is_not_a_hedge() -> None:
    """Both venues' flows start in the same second, with the same basis move: a common shock
    (the perp's run does not start hedge_min_lag_seconds after the spot's onset)."""
    _, events = drive_hedge(SignalSettings(baseline_minutes=5), basis_moves=True, delay_s=0)
    assert events == []


@pytest.mark.parametrize(("common", "first"), [(3.0, None), (7.0, 6)])
def test_flow_already_going_at_the_onset_is_a_common_shock(
    common: float, first: int | None
) -> None:
    """The perp's buying starts two seconds after the spot's onset: its second 2 (4, plus the
    noise of seconds −1, 0 and 1) falls in the window from the second before the onset to
    hedge_min_lag_seconds after it. At the default hedge_common_shock (7) that is a hedge,
    firing at second 6; with the check at 3 the perp was already trading the spot's way when
    the burst began — a common shock, which leads nothing."""
    params = SignalSettings(baseline_minutes=5, hedge_common_shock=common)
    _, events = drive_hedge(params, basis_moves=True, delay_s=2)
    starts = [e.started_at_ns for e in events if e.state == "firing"]
    start = T0 - T0 % (60 * NS) + 600 * NS
    assert starts == ([] if first is None else [start + first * NS])


def test_a_one_second_lag_is_a_common_shock_at_the_defaults() -> None:
    """Buying on the perp from the second after the spot's onset puts 8 in the window: no
    hedge."""
    _, events = drive_hedge(SignalSettings(baseline_minutes=5), basis_moves=True, delay_s=1)
    assert events == []


@pytest.mark.parametrize(("reversal_s", "fires"), [(60, False), (0, True)])
def test_a_burst_reversing_a_sustained_burst_leads_no_hedge(reversal_s: int, fires: bool) -> None:
    """A 12-s spot sell burst ends 20 s before the buy burst: the buy burst is a reversal
    (within hedge_reversal_seconds of a burst of the other sign lasting at least two summing
    windows) and the perp's buying after it is not taken for a hedge."""
    params = SignalSettings(baseline_minutes=5, hedge_reversal_seconds=reversal_s)
    _, events = drive_hedge(params, basis_moves=True, sell_before_s=20)
    assert bool([e for e in events if e.state == "firing" and e.side == "buy"]) is fires


def test_follower_flow_outside_the_lead_window_does_not_count() -> None:
    params = SignalSettings(baseline_minutes=5, leadlag_max_lag_seconds=3)
    _, events = drive_hedge(params, basis_moves=True, delay_s=8)
    assert events == []


def test_an_invalid_follower_book_ends_its_episode_at_once() -> None:
    view, events = drive_hedge(SignalSettings(baseline_minutes=5), basis_moves=True, after_s=15)
    assert view.legs[1].machines["buy"].firing
    spot = cast(FakeEngine, view.legs[0].engine)
    perp = cast(FakeEngine, view.legs[1].engine)
    perp.live = False
    t = view.evaluated_ns
    for i in range(1, 5):
        spot.tick(t + i * NS, 100.0, 0.0)
    resolved = [e for e in events if e.state == "resolved"]
    assert len(resolved) == 1
    assert resolved[0].context["book_valid"] is False
    assert resolved[0].side == "buy"
    assert not view.legs[1].machines["buy"].firing


# -- wiring ----------------------------------------------------------------------------------


def test_views_need_a_spot_and_a_perp_leg_of_one_instrument() -> None:
    a, b, c = FakeEngine(), FakeEngine(), FakeEngine()
    assert (
        build_hedge_views(
            [
                ("binance", "BTCUSDT", "BTC-USD", "spot", engine(a)),
                ("coinbase", "BTC-USD", "BTC-USD", "spot", engine(b)),
                ("binance-usdm", "ETHUSDT", "ETH-USD", "perp", engine(c)),
            ],
            SignalSettings(),
        )
        == []
    )
    d = FakeEngine()
    views = build_hedge_views(
        [
            ("okx", "BTC-USDT", "BTC-USD", "spot", engine(d)),
            ("okx", "BTC-USDT-SWAP", "BTC-USD", "perp", engine(FakeEngine())),
            ("okx", "BTC-USD-260626", "BTC-USD", "future", engine(FakeEngine())),
        ],
        SignalSettings(),
    )
    (view,) = views
    assert [leg.venue for leg in view.legs] == ["okx:BTC-USDT", "okx:BTC-USDT-SWAP"]


@pytest.mark.parametrize(
    ("exchange", "symbol", "kind"),
    [
        ("binance", "BTCUSDT", "spot"),
        ("binance-usdm", "BTCUSDT", "perp"),
        ("bybit", "BTCUSDT", "perp"),
        ("coinbase", "BTC-USD", "spot"),
        ("kraken", "BTC/USD", "spot"),
        ("okx", "BTC-USDT", "spot"),
        ("okx", "BTC-USDT-SWAP", "perp"),
        ("okx", "BTC-USD-260626", "future"),
    ],
)
def test_market_kind(exchange: str, symbol: str, kind: str) -> None:
    assert market_kind(exchange, symbol) == kind


def test_both_views_receive_every_tick_through_one_slot() -> None:
    fake = FakeEngine()
    seen: list[str] = []
    add_tick_listener(engine(fake), lambda e: seen.append("first"))
    first = fake.on_tick
    assert not isinstance(first, TickFanout)
    add_tick_listener(engine(fake), lambda e: seen.append("second"))
    add_tick_listener(engine(fake), lambda e: seen.append("third"))
    assert isinstance(fake.on_tick, TickFanout)
    fake.tick(T0, 100.0, 0.0)
    assert seen == ["first", "second", "third"]


def test_a_leg_in_contracts_of_unknown_value_is_refused() -> None:
    size = ContractSize(0.01, False, "ctVal 0.01 BTC")
    require_base_units(
        "okx", ["BTC-USDT", "BTC-USDT-SWAP"], {"BTC-USDT-SWAP"}, {"BTC-USDT-SWAP": size}
    )
    with pytest.raises(UnitsError, match="BTC-USDT-SWAP: contract value unknown") as info:
        require_base_units("okx", ["BTC-USDT", "BTC-USDT-SWAP"], {"BTC-USDT-SWAP"}, {})
    assert isinstance(info.value, ContractError)
    assert isinstance(info.value, ConfigError)


def test_the_service_refuses_a_hedge_leg_in_contracts_of_unknown_value() -> None:
    """OKX spot and swap of one instrument are a hedge view; the swap's sizes are contracts.
    If the feed's start-up fetch left its contract value unknown, the feed stops before it
    connects rather than compare contracts with coins."""
    settings = parse_settings(
        {"feeds": [{"exchange": "okx", "symbols": ["BTC-USDT", "BTC-USDT-SWAP"]}]},
        env={},
        supported=VENUE_NAMES,
    )
    service = Service(settings, serve_http=False)
    (view,) = service.hedge
    assert [(leg.symbol, leg.kind) for leg in view.legs] == [
        ("BTC-USDT", "spot"),
        ("BTC-USDT-SWAP", "perp"),
    ]
    assert service.hedge_legs == [("BTC-USDT", "BTC-USDT-SWAP")]
    (pipeline,) = service.pipelines
    ran: list[bool] = []

    async def run() -> None:
        ran.append(True)

    runner = cast(Any, SimpleNamespace(venue=pipeline.venue, exchange="okx", run=run))
    with pytest.raises(UnitsError, match="okx BTC-USDT-SWAP: contract value unknown"):
        asyncio.run(_run_feed(runner, [], service.hedge_legs[0]))
    assert ran == []
    pipeline.venue.use_contracts({"BTC-USDT-SWAP": ContractSize(0.01, False, "ctVal 0.01")})
    asyncio.run(_run_feed(runner, [], service.hedge_legs[0]))
    assert ran == [True]


@pytest.mark.parametrize("fmt", ["json", "slack", "discord"])
def test_hedge_pressure_webhooks_carry_the_leader_and_the_basis(fmt: str) -> None:
    _, events = drive_hedge(SignalSettings(baseline_minutes=5), basis_moves=True)
    firing = next(e for e in events if e.state == "firing")

    def reject(name: str) -> None:
        raise ValueError(f"invalid JSON constant {name}")

    body = json.loads(encode(firing, fmt), parse_constant=reject)
    text = json.dumps(body)
    if fmt == "json":
        assert (body["symptom"], body["side"], body["exchange"]) == (
            "hedge_pressure",
            "buy",
            "binance-usdm",
        )
        ctx = body["context"]
        assert ctx["leader_exchange"] == "binance" and ctx["lead_seconds"] == 2.0
        assert ctx["basis_zscore"] == pytest.approx(firing.context["basis_zscore"])
    else:
        for fact in ("hedge_pressure", "binance-usdm", "(buy)", "leader_exchange", "lead_seconds"):
            assert fact in text, fact


def test_arrival_order_across_venues_does_not_change_the_result() -> None:
    """Event time only: the same ticks, one venue's arriving a second behind the other's,
    give the same measures and the same episodes (as a replay at another speed would)."""
    params = SignalSettings(baseline_minutes=5)
    live, live_events = drive_hedge(params, basis_moves=True)
    late, late_events = drive_hedge(params, basis_moves=True, perp_arrives_late=True)
    assert live_events and [
        (e.state, e.side, e.exchange, e.started_at_ns, e.ended_at_ns, e.score) for e in live_events
    ] == [
        (e.state, e.side, e.exchange, e.started_at_ns, e.ended_at_ns, e.score) for e in late_events
    ]
    assert live.evaluated_ns == late.evaluated_ns
    assert repr(live.read()) == repr(late.read())
