"""The cross-venue view: one instrument on three venues, fed by the real pipeline.

Each "venue" is a synthetic Binance-protocol market through its own :class:`FeedPipeline`;
the view compares their engines second by second of event time.
"""

from __future__ import annotations

import math
import statistics

import pytest

from mmradar.instruments import parse_instrument
from mmradar.model import BAND_BPS
from mmradar.signals.crossvenue import SYMPTOM, CrossVenueView, build_views
from mmradar.signals.episodes import EpisodeEvent
from mmradar.signals.params import SignalSettings

from .helpers import Run, seconds, start
from .synth import SYMBOL, Injection

ON = 900.0
OFF = 960.0
VENUES = ("alpha", "beta", "gamma")


def three_venues(
    injected: dict[str, Injection],
) -> tuple[list[Run], CrossVenueView, list[EpisodeEvent]]:
    runs = [
        start(seed=i + 1, injections=(injected[name],) if name in injected else ())
        for i, name in enumerate(VENUES)
    ]
    events: list[EpisodeEvent] = []
    views = build_views(
        [(name, SYMBOL, "BTC-USD", run.engine) for name, run in zip(VENUES, runs, strict=True)],
        SignalSettings(),
        events.append,
    )
    (view,) = views
    return runs, view, events


def advance(runs: list[Run], until_s: float, view: CrossVenueView, checks: list[float]) -> None:
    """Feed every venue second by second (interleaved, as live feeds arrive)."""
    now = runs[0].feed.market.n / 10
    while now < until_s:
        for run in runs:
            run.feed.run(1.0)
        now += 1.0
        if checks and now >= checks[0]:
            checks.pop(0)
            check_measures(runs, view)


def check_measures(runs: list[Run], view: CrossVenueView) -> None:
    live = [r for r in runs if r.engine.live]
    assert view.valid_venues == len(live)
    mids = [r.engine.sample.mid for r in live]
    median = statistics.median(mids)
    for member, run in zip(view.members, runs, strict=True):
        expected = 1e4 * (run.engine.sample.mid / median - 1.0)
        assert member.dislocation_bps == pytest.approx(expected, abs=1e-9)
    for i, _ in enumerate(BAND_BPS):
        assert view.bids[i] == pytest.approx(sum(r.engine.sample.bids[i] for r in live))
        assert view.asks[i] == pytest.approx(sum(r.engine.sample.asks[i] for r in live))


def withdrawal(events: list[EpisodeEvent], state: str) -> list[EpisodeEvent]:
    return [e for e in events if e.symptom == SYMPTOM and e.state == state]


def test_one_venue_pulling_its_quotes_is_named_while_the_others_hold() -> None:
    runs, view, events = three_venues({"beta": Injection("pull", ON, OFF)})
    advance(runs, OFF + 40, view, checks=[300.0, ON + 20, OFF + 30])
    (fired,) = withdrawal(events, "firing")
    assert (fired.exchange, fired.symbol, fired.side) == ("beta", SYMBOL, "both")
    latency = seconds(fired.started_at_ns) - ON
    assert 0 <= latency <= 8, latency
    assert fired.score > 0.5  # most of beta's usual near-touch liquidity is gone
    assert fired.context["instrument"] == "BTC-USD"
    assert fired.context["depth_ratio"] <= SignalSettings().withdrawal_ratio_on
    others = fired.context["other_venues_depth_ratio"]
    assert set(others) == {f"alpha:{SYMBOL}", f"gamma:{SYMBOL}"}
    assert min(others.values()) >= SignalSettings().withdrawal_others_ratio
    (resolved,) = withdrawal(events, "resolved")
    assert resolved.exchange == "beta"
    assert 0 <= seconds(resolved.ended_at_ns) - OFF <= 30
    assert resolved.context["peak_score"] >= fired.score
    # the machines of the other venues never left idle
    assert [m.machine.episodes for m in view.members] == [0, 1, 0]


def test_a_market_wide_pull_is_not_one_venues_withdrawal() -> None:
    pull = Injection("pull", ON, OFF)
    runs, view, events = three_venues({name: pull for name in VENUES})
    advance(runs, OFF + 40, view, checks=[ON + 20])
    assert withdrawal(events, "firing") == []
    # ... while each venue's own detector sees its pull
    assert all(r.firing("liquidity_pull") for r in runs)


def test_a_venue_whose_book_is_invalid_leaves_the_comparison_and_its_episode_ends() -> None:
    runs, view, events = three_venues({"alpha": Injection("pull", ON, OFF)})
    advance(runs, ON + 20, view, checks=[])
    assert view.members[0].machine.firing
    runs[0].feed.run(1.0, drop_depth_at_s=(ON + 20.5,))  # a gap: alpha resyncs
    for run in runs[1:]:
        run.feed.run(1.0)
    # alpha resynced at once (the synthetic venue answers the snapshot request): a new book
    # life, still warming up, so it is out of the comparison
    assert seconds(runs[0].engine.life_start_ns) >= ON + 20
    assert not runs[0].engine.warm
    (resolved,) = withdrawal(events, "resolved")
    assert resolved.exchange == "alpha"
    assert resolved.context["book_valid"] is False
    assert not view.members[0].machine.firing


def test_views_need_two_distinct_venues_of_one_instrument() -> None:
    a, b = start(seed=1), start(seed=2)
    members = [
        ("x", "BTCUSDT", "BTC-USD", a.engine),
        ("x", "BTCFDUSD", "BTC-USD", b.engine),  # two symbols of one venue: not cross-venue
    ]
    assert build_views(members, SignalSettings()) == []
    views = build_views(
        [("x", "BTCUSDT", "BTC-USD", a.engine), ("y", "BTC-USD", "BTC-USD", b.engine)],
        SignalSettings(),
    )
    assert [v.instrument for v in views] == ["BTC-USD"]
    assert math.isnan(views[0].members[0].dislocation_bps)  # nothing seen yet


@pytest.mark.parametrize(
    ("symbol", "instrument"),
    [
        ("BTCUSDT", "BTC-USD"),
        ("BTC-USDT", "BTC-USD"),
        ("BTC-USD", "BTC-USD"),
        ("BTC/USD", "BTC-USD"),
        ("XBT/USD", "BTC-USD"),
        ("btcusdc", "BTC-USD"),
        ("BTC-USDT-SWAP", "BTC-USD"),
        ("ETHBTC", "ETH-BTC"),
        ("ETH/EUR", "ETH-EUR"),
        ("XDG/USD", "DOGE-USD"),
    ],
)
def test_canonical_instrument_ids(symbol: str, instrument: str) -> None:
    parsed = parse_instrument(symbol)
    assert parsed is not None and parsed.id == instrument


def test_unrecognized_spelling_is_not_compared() -> None:
    assert parse_instrument("WHATEVER") is None
    assert parse_instrument("") is None


def test_cross_venue_series_are_exposed_for_every_member_from_start_up() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from mmradar.metrics import MarketCollector

    runs, view, _ = three_venues({})
    registry = CollectorRegistry()
    registry.register(MarketCollector([], [view]))

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = generate_latest(registry).decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    before = scrape()
    for name in VENUES:
        key = frozenset(
            {"exchange": name, "symbol": SYMBOL, "symptom": SYMPTOM, "side": "both"}.items()
        )
        assert before[("mmradar_symptom_active", key)] == 0.0
        info = frozenset({"instrument": "BTC-USD", "exchange": name, "symbol": SYMBOL}.items())
        assert before[("mmradar_instrument_info", info)] == 1.0
        assert math.isnan(before[("mmradar_cross_venue_mid_dislocation_bps", info)])
    assert before[("mmradar_cross_venue_venues", frozenset({"instrument": "BTC-USD"}.items()))] == 0
    advance(runs, 120, view, checks=[])
    after = scrape()
    assert after[("mmradar_cross_venue_venues", frozenset({"instrument": "BTC-USD"}.items()))] == 3
    for band in BAND_BPS:
        key = frozenset({"instrument": "BTC-USD", "side": "bid", "band_bps": str(band)}.items())
        assert after[("mmradar_consolidated_depth_notional", key)] == pytest.approx(
            view.bids[BAND_BPS.index(band)]
        )
        assert after[("mmradar_consolidated_depth_notional", key)] > 0
