"""Drive the detectors over one simulated run, in-process, and keep what scoring needs.

:func:`drive` feeds a simulator run's frames through the production path — the Binance spot
frame parser, :class:`~mmradar.book.sync.BookSync`, the L2 book and the
:class:`~mmradar.signals.engine.SignalEngine` inside a :class:`~mmradar.pipeline.FeedPipeline` —
exactly as the live feed runner would, with no sockets and no pacing: the REST snapshot the
synchroniser asks for is the run's start snapshot. Symptom episodes are collected from the
engine's ``on_episode`` hook.

A run with a second venue (``run.perp``: the simulator's perpetual, on the Binance USD-M wire)
is driven through a second pipeline of its own (exchange ``binance-usdm``), the two venues'
frames merged in event-time order (spot first at equal times). The two engines feed the
``hedge_pressure`` view (:func:`mmradar.signals.hedge.build_hedge_views`, spot and perpetual
members of one instrument) purely through their per-second ticks, as in the service; its
episodes are collected with the spot engine's. The perpetual engine's own symptoms are not
collected: the simulator labels the spot venue's dealers only.

On a 1-s event-time grid it samples, for the proxy evaluation and the timeline plot:

* ``mid`` — the book's mid (what the detectors see);
* ``q_true`` — the simulator's true total dealer inventory (positive = dealers long);
* ``proxy`` — ``mmradar_dealer_inventory_proxy`` at that instant (decayed to the grid time,
  every trade up to it counted, none after; positive = dealers short);
* ``pressure`` — ``mmradar_dealer_pressure`` computed on the stat tick of that second;
* ``armed`` — the detectors were past their warm-up on a valid book;
* ``regime`` — the simulator's regime label.

:func:`score_task` is the process-pool entry point: it simulates one ``(scenario, seed)`` and
drives it.
"""

from __future__ import annotations

import bisect
import heapq
import importlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..book.sync import FetchSnapshot
from ..embedded.truth import TruthBook
from ..pipeline import FeedPipeline, SymbolState
from ..signals.episodes import HEDGE_SYMPTOM_SIDES, SYMPTOM_SIDES, EpisodeEvent
from ..signals.hedge import build_hedge_views
from ..signals.params import SignalSettings
from ..venues import make_venue
from .matching import Episode

__all__ = [
    "HEDGE_SYMPTOM_SIDES",
    "HedgeViewBuilder",
    "RunResult",
    "RunTask",
    "Series",
    "SimFrameLike",
    "SimRunLike",
    "TruthEpisode",
    "TruthEpisodeLike",
    "TruthSampleLike",
    "VenueRunLike",
    "drive",
    "score_task",
]

_NS = 1_000_000_000
_NAN = math.nan
#: The venue whose wire format the simulator emits.
SIM_EXCHANGE = "binance"

#: ``build_hedge_views(members, params, on_episode)``: members are ``(exchange, symbol,
#: instrument, kind, engine)`` with kind ``"spot"`` or ``"perp"``.
HedgeViewBuilder = Callable[
    [
        Iterable[tuple[str, str, str | None, str, Any]],
        SignalSettings,
        Callable[[EpisodeEvent], None],
    ],
    Sequence[object],
]


# --------------------------------------------------------------------------------------------
# What the simulator hands over (service.sim; duck-typed so tests can build small runs)
# --------------------------------------------------------------------------------------------


class SimFrameLike(Protocol):
    """One websocket frame: ``ts_ns`` receive time, combined-stream ``payload``."""

    @property
    def ts_ns(self) -> int: ...
    @property
    def payload(self) -> bytes: ...


class TruthSampleLike(Protocol):
    """The simulator's state every 100 ms."""

    @property
    def ts_ns(self) -> int: ...
    @property
    def mid(self) -> float: ...
    @property
    def total_inventory(self) -> float: ...
    @property
    def regime(self) -> str: ...


class TruthEpisodeLike(Protocol):
    """A ground-truth symptom episode."""

    @property
    def symptom(self) -> str: ...
    @property
    def side(self) -> str: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def end_ns(self) -> int: ...
    @property
    def regime(self) -> str: ...


class SimRunLike(Protocol):
    """One simulated run (``mmradar.sim.simulate``)."""

    @property
    def symbol(self) -> str: ...
    @property
    def snapshot(self) -> bytes: ...
    @property
    def frames(self) -> Sequence[SimFrameLike]: ...
    @property
    def truth(self) -> Sequence[TruthSampleLike]: ...
    @property
    def episodes(self) -> Sequence[TruthEpisodeLike]: ...


class VenueRunLike(Protocol):
    """The second venue of a run (``mmradar.sim.VenueRun``)."""

    @property
    def exchange(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def snapshot(self) -> bytes: ...
    @property
    def frames(self) -> Sequence[SimFrameLike]: ...


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TruthEpisode:
    """A ground-truth episode as scored: the episode and the regime it belongs to."""

    episode: Episode
    regime: str


@dataclass(slots=True)
class Series:
    """Per-second samples of one run (see the module docstring); all lists equally long.

    Attributes:
        t_ns: the grid times (whole seconds of event time).
    """

    t_ns: list[int] = field(default_factory=list)
    mid: list[float] = field(default_factory=list)
    q_true: list[float] = field(default_factory=list)
    proxy: list[float] = field(default_factory=list)
    pressure: list[float] = field(default_factory=list)
    armed: list[bool] = field(default_factory=list)
    regime: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.t_ns)


@dataclass(slots=True)
class RunResult:
    """Everything scoring needs from one ``(scenario, seed)`` run.

    Attributes:
        scenario: scenario name.
        kind: ``symptom``, ``calm`` or ``control``.
        seed: the simulator seed.
        symbol: the simulated symbol.
        expected: the scenario's expected ``(symptom, side)`` pairs.
        truth: ground-truth episodes.
        detected: detected episodes (one still firing at the end ends at the last event).
        series: the 1-s samples.
        start_ns: event time of the first frame.
        end_ns: event time of the last frame.
        frames: frames fed.
        resyncs: book invalidations (only runs with feed faults have any).
        snapshots: REST snapshots served (the start snapshot, then one per resync).
        wall_s: wall-clock seconds spent simulating and driving (not part of the scorecard).
        silent: for a control, the symptoms it must not fire (empty: the inventory symptoms
            and ``hedge_pressure``).
        perp_frames: frames of the second venue fed (0 without one).
        hedge_exchange: the venue ``hedge_pressure`` is true on (the perpetual's exchange;
            empty without a second venue).
    """

    scenario: str
    kind: str
    seed: int
    symbol: str
    expected: tuple[tuple[str, str], ...]
    truth: list[TruthEpisode]
    detected: list[Episode]
    series: Series
    start_ns: int
    end_ns: int
    frames: int = 0
    resyncs: int = 0
    snapshots: int = 0
    wall_s: float = 0.0
    silent: tuple[str, ...] = ()
    perp_frames: int = 0
    hedge_exchange: str = ""

    @property
    def duration_s(self) -> float:
        """Event time covered by the frames, in seconds."""
        return (self.end_ns - self.start_ns) / _NS

    @property
    def armed_s(self) -> int:
        """Seconds of the grid with the detectors armed."""
        return sum(self.series.armed)

    @property
    def calm_armed_s(self) -> int:
        """Seconds of the grid with the detectors armed in the ``calm`` regime."""
        s = self.series
        return sum(1 for a, r in zip(s.armed, s.regime, strict=True) if a and r == "calm")

    def armed_at(self, ts_ns: int) -> bool:
        """Were the detectors armed at the grid second at or before ``ts_ns``?"""
        s = self.series
        i = bisect.bisect_right(s.t_ns, ts_ns) - 1
        return 0 <= i < len(s.armed) and s.armed[i]

    def regime_at(self, ts_ns: int) -> str:
        """The regime at the grid second at or before ``ts_ns`` (``""`` before the grid)."""
        s = self.series
        i = bisect.bisect_right(s.t_ns, ts_ns) - 1
        return s.regime[i] if 0 <= i < len(s.regime) else ""


class _Observer:
    """Counts resyncs (the pipeline's :class:`~mmradar.pipeline.FeedObserver`)."""

    def __init__(self) -> None:
        self.resyncs = 0
        self.bad = 0

    def bad_message(self, reason: str) -> None:
        self.bad += 1

    def resync(self, symbol: str, reason: str) -> None:
        self.resyncs += 1


class _EpisodeCollector:
    """The detected episodes, from the engine's ``on_episode`` hook (:meth:`on_episode`).

    A ``hedge_pressure`` episode's ``cause`` is the exchange it was reported on (the follower
    venue), so the scorecard can tell a hedge found on the wrong venue.
    """

    def __init__(self) -> None:
        self._opened: dict[tuple[str, str, str], tuple[int, str]] = {}
        self._detected: list[Episode] = []

    def on_episode(self, event: EpisodeEvent) -> None:
        hedge = event.symptom in HEDGE_SYMPTOM_SIDES
        key = (event.symptom, event.side, event.exchange if hedge else "")
        if event.state == "firing":
            # the cause as the episode starts (liquidity_evaporation: pulled versus traded)
            cause = event.exchange if hedge else str(event.context.get("cause") or "")
            self._opened[key] = (event.started_at_ns, cause)
        else:
            start, cause = self._opened.pop(key, (event.started_at_ns, key[2]))
            end = event.ended_at_ns if event.ended_at_ns is not None else start
            self._detected.append(Episode(event.symptom, event.side, start, end, cause))

    def finish(self, end_ns: int) -> list[Episode]:
        """Every episode, by start; one still firing ends at ``end_ns`` (the last event)."""
        detected = self._detected
        for (symptom, side, _), (started, cause) in self._opened.items():
            detected.append(Episode(symptom, side, started, max(started, end_ns), cause))
        detected.sort(key=lambda e: (e.start_ns, e.symptom, e.side))
        return detected


class _GridSampler:
    """The 1-s samples of the module docstring, taken as event time passes each grid second."""

    def __init__(self, inst: SymbolState, truth: Sequence[TruthSampleLike], start_ns: int) -> None:
        self._inst = inst
        self._engine = inst.engine
        self._truth = truth
        self._truth_ts = [s.ts_ns for s in truth]
        self._grid = (start_ns // _NS + 1) * _NS
        self._pressure_at: dict[int, float] = {}
        self.series = Series()

    def advance(self, ts_ns: int) -> None:
        """Sample every grid second before ``ts_ns`` (call before the event at ``ts_ns``)."""
        while ts_ns > self._grid:
            self._sample(self._grid)
            self._grid += _NS

    def _note_pressure(self) -> None:
        # the stat tick of second k ran before the first depth message at or after k: the
        # latest tick done is next_tick_ns − 1 s.
        engine = self._engine
        if engine.live:
            self._pressure_at[engine.next_tick_ns - _NS] = engine.pressure

    def _sample(self, g: int) -> None:
        self._note_pressure()
        inst, engine, series = self._inst, self._engine, self.series
        book = inst.book
        bb = book.best_bid()
        ba = book.best_ask()
        mid = 0.5 * (bb[0] + ba[0]) if inst.valid and bb is not None and ba is not None else _NAN
        i = bisect.bisect_right(self._truth_ts, g) - 1
        if i >= 0:
            ts = self._truth[i]
            q, regime = float(ts.total_inventory), ts.regime
        else:
            q, regime = _NAN, ""
        series.t_ns.append(g)
        series.mid.append(mid)
        series.q_true.append(q)
        series.proxy.append(engine.flow.proxy_z(g) if engine.live else _NAN)
        series.armed.append(inst.valid and engine.warm)
        series.regime.append(regime)

    def finish(self) -> Series:
        """The samples, with the pressure of each grid second's tick (carried over a gap)."""
        self._note_pressure()
        last = _NAN
        for g in self.series.t_ns:
            last = self._pressure_at.get(g, last)
            self.series.pressure.append(last)
        return self.series


class _FaultInjector:
    """The run's feed faults, and the venue's own book that answers the resyncs they cause.

    The faults are transport faults (``gap``: one depth frame is not delivered; ``drop``: the
    connection is lost): the venue's book is unaffected, so a REST snapshot taken during the
    run is :attr:`venue_book`'s state. A run without faults has no venue book.
    """

    def __init__(self, run: SimRunLike, start_ns: int) -> None:
        self._pending = sorted(
            (round(start_ns + f.offset_s * _NS), f.kind) for f in getattr(run, "faults", ())
        )
        self.venue_book = TruthBook.from_rest(run.snapshot) if self._pending else None

    def at(self, payload: bytes, ts_ns: int) -> tuple[bool, int]:
        """The faults due at a frame: ``(skip the frame, connections dropped before it)``."""
        book = self.venue_book
        if book is None:
            return False, 0
        is_depth = book.apply_frame(payload)
        pending = self._pending
        skip = False
        drops = 0
        while pending and ts_ns >= pending[0][0]:
            fault = pending[0][1]
            if fault == "gap" and not is_depth:
                break  # a gap loses a depth message
            pending.pop(0)
            if fault == "gap":
                skip = True
            else:  # "drop": the connection is lost; a new one resyncs the book
                drops += 1
        return skip, drops


class _SimFeed:
    """The pipeline fed as the feed runner would, its snapshot requests answered at once.

    Without a venue book only the run's start snapshot exists: a later request goes unanswered
    and the book stays invalid.
    """

    def __init__(
        self, pipeline: FeedPipeline, symbol: str, snapshot: bytes, venue_book: TruthBook | None
    ) -> None:
        self._pipeline = pipeline
        self._symbol = symbol
        self._snapshot = snapshot
        self._venue_book = venue_book
        self._parser = pipeline.new_parser()
        self.snapshots = 0

    def deliver(self, payload: bytes, ts_ns: int) -> None:
        self._carry_out(self._pipeline.on_frame(self._parser, payload, ts_ns), ts_ns)

    def reconnect(self, ts_ns: int) -> None:
        self._carry_out(self._pipeline.invalidate([self._symbol], "reconnect"), ts_ns)
        self._parser = self._pipeline.new_parser()

    def _carry_out(self, commands: Sequence[object], ts_ns: int) -> None:
        venue_book = self._venue_book
        for command in commands:
            if type(command) is FetchSnapshot:
                if self.snapshots and venue_book is None:
                    continue
                body = self._snapshot if venue_book is None else venue_book.rest_body()
                self.snapshots += 1
                self._carry_out(self._pipeline.on_snapshot(self._symbol, body, ts_ns), ts_ns)


def drive(
    run: SimRunLike,
    *,
    scenario: str,
    kind: str,
    seed: int,
    expected: Sequence[tuple[str, str]] = (),
    params: SignalSettings | None = None,
    silent: Sequence[str] = (),
    hedge_views: HedgeViewBuilder | None = None,
) -> RunResult:
    """Feed one simulated run through the production pipeline and collect the results.

    Args:
        run: the simulator's output.
        scenario: its scenario name (labels only).
        kind: the scenario kind (``symptom``, ``calm``, ``control``).
        seed: its seed (labels only).
        expected: the scenario's expected ``(symptom, side)`` pairs.
        params: detector parameters (``[signals]`` defaults if None).
        silent: for a control, the symptoms it must not fire.
        hedge_views: builds the ``hedge_pressure`` views of a run with a second venue
            (:func:`mmradar.signals.hedge.build_hedge_views` if None).

    Returns:
        The run's episodes and 1-s samples (the spot venue's).
    """
    symbol = run.symbol
    settings = params or SignalSettings()
    observer = _Observer()
    episodes = _EpisodeCollector()
    spot_venue = make_venue(SIM_EXCHANGE)
    pipeline = FeedPipeline(
        spot_venue,
        [symbol],
        observer,
        signal_params=settings,
        on_episode=episodes.on_episode,
    )
    frames = run.frames
    start_ns = frames[0].ts_ns if frames else 0
    end_ns = start_ns
    sampler = _GridSampler(pipeline.instruments[symbol], run.truth, start_ns)
    faults = _FaultInjector(run, start_ns)
    feed = _SimFeed(pipeline, symbol, run.snapshot, faults.venue_book)
    perp: VenueRunLike | None = getattr(run, "perp", None)
    perp_feed: _SimFeed | None = None
    if perp is not None:
        perp_venue = make_venue(perp.exchange)
        perp_pipeline = FeedPipeline(
            perp_venue, [perp.symbol], _Observer(), signal_params=settings, on_episode=None
        )
        perp_feed = _SimFeed(perp_pipeline, perp.symbol, perp.snapshot, None)
        build = hedge_views if hedge_views is not None else build_hedge_views
        build(
            [
                (
                    SIM_EXCHANGE,
                    symbol,
                    spot_venue.instrument(symbol),
                    "spot",
                    pipeline.instruments[symbol].engine,
                ),
                (
                    perp.exchange,
                    perp.symbol,
                    perp_venue.instrument(perp.symbol),
                    "perp",
                    perp_pipeline.instruments[perp.symbol].engine,
                ),
            ],
            settings,
            episodes.on_episode,
        )
    merged: Iterable[tuple[SimFrameLike, int]] = (
        heapq.merge(
            ((f, 0) for f in frames), ((f, 1) for f in perp.frames), key=lambda x: x[0].ts_ns
        )
        if perp is not None
        else ((f, 0) for f in frames)
    )
    for frame, venue in merged:
        ts = frame.ts_ns
        if venue:
            assert perp_feed is not None
            perp_feed.deliver(frame.payload, ts)
            continue
        sampler.advance(ts)
        payload = frame.payload
        skip, drops = faults.at(payload, ts)
        for _ in range(drops):
            feed.reconnect(ts)
        if not skip:
            feed.deliver(payload, ts)
        end_ns = ts

    truths = [
        TruthEpisode(Episode(e.symptom, e.side, int(e.start_ns), int(e.end_ns)), str(e.regime))
        for e in run.episodes
    ]
    truths.sort(key=lambda t: (t.episode.start_ns, t.episode.symptom, t.episode.side))
    return RunResult(
        scenario=scenario,
        kind=kind,
        seed=seed,
        symbol=symbol,
        expected=tuple(expected),
        truth=truths,
        detected=episodes.finish(end_ns),
        series=sampler.finish(),
        start_ns=start_ns,
        end_ns=end_ns,
        frames=len(frames),
        resyncs=observer.resyncs,
        snapshots=feed.snapshots,
        silent=tuple(silent),
        perp_frames=len(perp.frames) if perp is not None else 0,
        hedge_exchange=perp.exchange if perp is not None else "",
    )


@dataclass(frozen=True, slots=True)
class RunTask:
    """One unit of work for the process pool.

    Attributes:
        scenario: scenario name (a key of ``mmradar.sim.SCENARIOS``).
        seed: simulator seed.
        duration_s: simulated event time (the scenario's own if None).
        params: detector parameters.
    """

    scenario: str
    seed: int
    duration_s: float | None
    params: SignalSettings


def _sim() -> Any:
    """The simulator package (imported on first use)."""
    return importlib.import_module("mmradar.sim")


def score_task(task: RunTask) -> RunResult:
    """Simulate ``task.scenario`` with ``task.seed`` and drive the detectors over it."""
    started = time.perf_counter()
    sim = _sim()
    spec = sim.SCENARIOS[task.scenario]
    run = sim.simulate(task.scenario, task.seed, duration_s=task.duration_s)
    result = drive(
        run,
        scenario=task.scenario,
        kind=str(spec.kind),
        seed=task.seed,
        expected=tuple((str(s), str(d)) for s, d in spec.expected),
        params=task.params,
        silent=tuple(str(x) for x in getattr(spec, "silent", ())),
    )
    result.wall_s = time.perf_counter() - started
    return result


def known_symptom(symptom: str, side: str) -> bool:
    """Is ``(symptom, side)`` one the detectors report (docs/metrics.md)?"""
    return side in SYMPTOM_SIDES.get(symptom, ()) or side in HEDGE_SYMPTOM_SIDES.get(symptom, ())
