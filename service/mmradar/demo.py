"""``mmradar demo``: the whole service against an embedded exchange on loopback.

The embedded venue (:mod:`mmradar.embedded`) speaks Binance's exact websocket and REST protocol;
the service connects to it through ``ws_url``/``rest_url`` — the same code path as ``mmradar
run`` against the real venue. It serves either a simulated market (:mod:`mmradar.sim`: dealers
with known inventories, scripted stress regimes) or a real capture replay. When the timeline ends
the venue drops every connection and starts over, so the demo also shows reconnects and resyncs.

A simulated scenario with a perpetual (``ScenarioSpec.perp``: ``hedged-buy-burst`` and the
others) plays both of its venues: a second embedded venue speaks Binance USD-M and serves the
perpetual's frames in lockstep with the spot venue's (one pacing clock, one event-time base), and
the service follows both (``binance`` and ``binance-usdm``), so its hedge view (basis, flow
lead–lag, ``hedge_pressure``) forms as in the scorer.

Simulated scenarios run at :data:`SIM_SPEED` × real time by default and with a shorter
detector warm-up (:data:`SIM_WARMUP_S` of event time, instead of the service's 600 s), so the
default ``cycle`` shows every symptom within a few minutes; captures default to real time.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from .app import Service
from .clock import ShellClock, SystemClock
from .config import LogSettings, parse_settings
from .embedded.binance import EmbeddedBinance
from .embedded.source import CaptureSource, FrameSource, SimulatedPerpSource, SimulatedSource
from .fmt import fmt_float
from .model import BAND_BPS, RESYNC_REASONS
from .sim import CYCLE
from .sim import SCENARIOS as SIM_SCENARIOS
from .sim.perp import EXCHANGE as PERP_EXCHANGE
from .venues import VENUE_NAMES

__all__ = [
    "DEFAULT_SCENARIO",
    "SCENARIOS",
    "SIM_SPEED",
    "SIM_WARMUP_S",
    "Scenario",
    "render_summary",
    "run_demo",
]

#: Default speed of simulated scenarios (event time runs this much faster than the wall clock).
SIM_SPEED = 5.0
#: Detector warm-up of the demo on simulated scenarios, seconds of event time.
SIM_WARMUP_S = 180.0
#: What ``mmradar demo`` plays without ``--scenario``.
DEFAULT_SCENARIO = CYCLE


@dataclass(frozen=True, slots=True)
class Scenario:
    """What the embedded exchange plays.

    Attributes:
        description: one line for ``--list-scenarios``.
        exchange: the feed's ``exchange`` (``binance`` or ``binance-usdm``).
        market: the venue's market.
        symbols: the symbols served.
        source: ``"capture"`` (a real recording) or ``"sim"`` (a :mod:`mmradar.sim` scenario
            of the same name).
        default_speed: speed without ``--speed``.
        perp_exchange: the feed ``exchange`` of a second venue serving the simulated scenario's
            perpetual in lockstep (``binance-usdm``); None for one venue.
    """

    description: str
    exchange: str
    market: Literal["spot", "usdm"]
    symbols: tuple[str, ...]
    source: Literal["capture", "sim"] = "capture"
    default_speed: float = 1.0
    perp_exchange: str | None = None


def _sim_scenarios() -> dict[str, Scenario]:
    out = {}
    for name, spec in SIM_SCENARIOS.items():
        minutes = spec.duration_s / 60.0
        # a two-venue scenario plays its perpetual on a second venue, in lockstep
        perp = f" (spot and its perpetual on {PERP_EXCHANGE})" if spec.perp else ""
        out[name] = Scenario(
            f"[sim {spec.kind}, {minutes:.0f} min] {spec.description}{perp}",
            "binance",
            "spot",
            ("BTCUSDT",),
            "sim",
            SIM_SPEED,
            PERP_EXCHANGE if spec.perp else None,
        )
    return out


SCENARIOS: Mapping[str, Scenario] = {
    **_sim_scenarios(),
    "btcusdt-spot": Scenario(
        "[capture] real Binance spot BTCUSDT (2024-08-08, 6 min), looped", "binance", "spot",
        ("BTCUSDT",),
    ),
    "btcusdt-usdm": Scenario(
        "[capture] real Binance USD-M BTCUSDT (2024-08-08, 6 min), looped", "binance-usdm",
        "usdm", ("BTCUSDT",),
    ),
}  # fmt: skip
"""Scenario name -> what it plays: every :data:`mmradar.sim.SCENARIOS` entry, then captures."""


def _firing(service: Service) -> tuple[list[str], int]:
    """``symptom/side`` pairs firing now, and episodes started so far (all books)."""
    firing: list[str] = []
    started = 0.0
    for metric in service.registry.collect():
        if metric.name == "mmradar_symptom_active":
            firing += [
                f"{s.labels['symptom']}/{s.labels['side']}" for s in metric.samples if s.value
            ]
        elif metric.name == "mmradar_symptom_episodes":
            started += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return sorted(set(firing)), int(started)


def render_summary(service: Service) -> str:
    """A compact, human-readable state of every book (used by the live terminal summary)."""
    lines = []
    registry = service.registry
    for pipeline in service.pipelines:
        for inst in pipeline.instruments.values():
            labels = {"exchange": inst.exchange, "symbol": inst.symbol}
            book = inst.book
            resyncs = sum(
                registry.get_sample_value("mmradar_book_resyncs_total", {**labels, "reason": r})
                or 0.0
                for r in RESYNC_REASONS
            )
            reconnects = sum(
                s.value
                for metric in registry.collect()
                if metric.name == "mmradar_feed_reconnects"
                for s in metric.samples
                if s.name.endswith("_total") and s.labels.get("exchange") == inst.exchange
            )
            msgs = registry.get_sample_value(
                "mmradar_feed_messages_total", {"exchange": inst.exchange}
            )
            head = f"{inst.exchange} {inst.symbol}"
            if not inst.valid:
                lines.append(
                    f"{head:22} SYNCING   msgs {msgs or 0:>8.0f}  resyncs {resyncs:.0f}  "
                    f"reconnects {reconnects:.0f}"
                )
                continue
            bids, asks = book.depth_notional()
            imbalance = book.depth_imbalance()
            rv = inst.market.realized_volatility_bps()
            bands = "  ".join(
                f"{band}bp {b / 1e3:.0f}k/{a / 1e3:.0f}k ({imb:+.2f})"
                for band, b, a, imb in zip(BAND_BPS[:2], bids, asks, imbalance, strict=False)
            )
            lines.append(
                f"{head:22} VALID  bid {fmt_float(book.best_bid_price(), '.2f', '-')} "
                f"ask {fmt_float(book.best_ask_price(), '.2f', '-')} "
                f"spread {fmt_float(book.spread_bps(), '.3f', '-')}bp"
                f"  {bands}  rv30s {fmt_float(rv[0], '.2f', '-')}bp"
                f"  taker buy/sell {inst.market.taker_buy:.3f}/{inst.market.taker_sell:.3f}"
                f"  msgs {msgs or 0:.0f}  resyncs {resyncs:.0f}  reconnects {reconnects:.0f}"
            )
    for view in service.hedge:
        r = view.read()
        basis = "  ".join(
            f"basis {fmt_float(b.basis_bps, '+.2f', '-')}bp ({b.perp_venue} over {b.spot_venue})"
            for b in r.basis
        )
        # each ordered pair is read both ways: show it once, from its first leg
        leads = "  ".join(
            f"flow lead {fmt_float(ll.lead_seconds, '+.0f', '-')}s ({ll.leader} over {ll.follower})"
            f" (corr {fmt_float(ll.correlation, '+.2f', '-')})"
            for ll in r.lead_lag[::2]
        )
        lines.append(f"{'hedge ' + r.instrument:22} {basis}  {leads}")
    firing, started = _firing(service)
    lines.append(
        f"{'symptoms':22} firing: {', '.join(firing) if firing else 'none'}"
        f"  (episodes so far: {started})"
    )
    return "\n".join(lines)


class _RegimeClock:
    """Maps the venue's replay position to the simulated regime and dealer inventory."""

    def __init__(self, source: SimulatedSource) -> None:
        run = source.run
        assert run is not None
        self.start_ns = run.start_ns
        self.times = [s.ts_ns for s in run.truth]
        self.truth = run.truth

    def line(self, venue: EmbeddedBinance) -> str:
        pos = venue.position_ns
        if pos <= 0:
            return "simulation: waiting for a subscriber"
        i = max(0, bisect.bisect_right(self.times, pos) - 1)
        s = self.truth[i]
        t = (pos - self.start_ns) / 1e9
        quoted = sum(s.bid_quoted) + sum(s.ask_quoted)
        return (
            f"simulation: pass {venue.pass_number + 1}  t={t:6.0f}s  regime {s.regime:10}"
            f"  dealer inventory {s.total_inventory:+.3f} BTC"
            f"  dealer sides quoted {quoted}/{2 * len(s.bid_quoted)}"
        )


async def _print_summary(
    service: Service,
    out: TextIO,
    header: Callable[[], str] | None,
    clock: ShellClock,
    interval_s: float = 1.0,
) -> None:
    tty = out.isatty()
    previous_lines = 0
    while True:
        await clock.sleep(interval_s)
        text = render_summary(service)
        if header is not None:
            text = header() + "\n" + text
        if tty and previous_lines:
            out.write(f"\x1b[{previous_lines}F\x1b[J")
        out.write(text + "\n")
        out.flush()
        previous_lines = text.count("\n") + 1


def _source(name: str, chosen: Scenario, seed: int) -> FrameSource:
    if chosen.source == "sim":
        return SimulatedSource(name, seed)
    return CaptureSource(chosen.market)


def _feed(exchange: str, symbols: list[str], venue: EmbeddedBinance) -> dict[str, Any]:
    """A ``[[feeds]]`` entry pointing the service at an embedded venue."""
    return {
        "exchange": exchange,
        "symbols": symbols,
        "ws_url": venue.ws_base,
        "rest_url": venue.rest_base,
    }


async def run_demo(
    stop: asyncio.Event,
    *,
    scenario: str = DEFAULT_SCENARIO,
    speed: float | None = None,
    listen: str | None = None,
    summary: bool = True,
    duration_s: float | None = None,
    log_settings: LogSettings | None = None,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    seed: int = 1,
    clock: ShellClock | None = None,
) -> None:
    """Start the embedded venue(s) and the service against them; run until ``stop`` is set.

    A scenario with ``perp_exchange`` starts a second venue serving the simulated perpetual in
    lockstep with the first, and the service follows both.

    Args:
        stop: set to stop.
        scenario: a key of :data:`SCENARIOS`.
        speed: replay speed; default the scenario's (:data:`SIM_SPEED` for simulations, 1 for
            captures).
        listen: ``host:port`` of ``/metrics`` (default the configuration's).
        summary: print a live summary every second.
        duration_s: stop after this many wall-clock seconds.
        log_settings: unused; kept for callers.
        env: environment for configuration overrides (default ``os.environ``).
        out: where to print (default stdout).
        seed: seed of a simulated scenario.
        clock: the clock the venue, the service and the demo's own waits (summary interval,
            ``duration_s``) run on: :class:`~mmradar.clock.SystemClock` by default.
    """
    del log_settings
    out = out or sys.stdout
    # The embedded venue's per-connection chatter is not the demo's story.
    logging.getLogger("mmradar.embedded").setLevel(logging.WARNING)
    chosen = SCENARIOS[scenario]
    env = os.environ if env is None else env
    source = _source(scenario, chosen, seed)
    pace = chosen.default_speed if speed is None else speed
    clock = clock or SystemClock()
    async with contextlib.AsyncExitStack() as venues:

        async def start_venue(
            market: Literal["spot", "usdm"], src: FrameSource, leader: EmbeddedBinance | None
        ) -> EmbeddedBinance:
            return await venues.enter_async_context(
                EmbeddedBinance(
                    market,
                    source=src,
                    speed=pace,
                    loop=True,
                    clock=clock.wall_ns,
                    pace_clock=clock,
                    lockstep=leader,
                )
            )

        venue = await start_venue(chosen.market, source, None)
        feeds = [_feed(chosen.exchange, list(chosen.symbols), venue)]
        perp: EmbeddedBinance | None = None
        if chosen.perp_exchange is not None:
            assert isinstance(source, SimulatedSource)
            perp_source = SimulatedPerpSource(source)
            perp = await start_venue(perp_source.market, perp_source, venue)
            feeds.append(_feed(chosen.perp_exchange, [perp.symbol], perp))
        http = {"listen": listen} if listen else {}
        config: dict[str, Any] = {"http": http, "feeds": feeds}
        if chosen.source == "sim":
            config["signals"] = {"warmup_seconds": SIM_WARMUP_S}
        settings = parse_settings(
            config,
            env={k: v for k, v in env.items() if not (listen and k == "MMRADAR_HTTP_LISTEN")},
            supported=VENUE_NAMES,
            source="demo",
        )
        service = Service(settings, clock=clock)
        extra: list[Callable[[], Coroutine[Any, Any, None]]] = []
        header: Callable[[], str] | None = None
        if isinstance(source, SimulatedSource):
            regimes = _RegimeClock(source)

            def header() -> str:
                return f"scenario {scenario}  " + regimes.line(venue)

        async def announce() -> None:
            while service.server is not None and service.server.port == 0:
                await clock.sleep(0.05)
            assert service.server is not None
            warm = (
                f"  detectors arm after {SIM_WARMUP_S:.0f} s of event time "
                f"(~{SIM_WARMUP_S / pace:.0f} s at {pace:g}x)\n"
                if chosen.source == "sim"
                else ""
            )
            second = (
                f"  second venue       ws {perp.ws_base}  rest {perp.rest_base}"
                f"  ({chosen.perp_exchange} {perp.symbol}, in lockstep)\n"
                if perp is not None
                else ""
            )
            out.write(
                f"mmradar demo: {scenario} — {chosen.description}\n"
                f"  embedded exchange  ws {venue.ws_base}  rest {venue.rest_base}"
                f"  (speed {pace:g}x)\n"
                f"{second}"
                f"{warm}"
                f"  metrics            {service.server.url}/metrics"
                f"  (also /healthz, /readyz)\n  Ctrl-C to stop.\n"
            )
            out.flush()
            if summary:
                await _print_summary(service, out, header, clock)

        extra.append(announce)
        if duration_s is not None:

            async def stop_later() -> None:
                await clock.sleep(duration_s)
                stop.set()

            extra.append(stop_later)
        await service.run(stop, *extra)
