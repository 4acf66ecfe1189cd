"""Where an embedded Binance venue's frames come from: a recorded capture or the simulator.

The venue (:mod:`.binance`) is the protocol layer: routes, combined streams, control frames,
REST depth with limits and weights, pings, slower depth windows, aggregate trades, looping,
fault injection and its own ground-truth book. A *source* only supplies the timeline it
serves, as a :class:`~.plan.ReplayPlan`:

* :class:`CaptureSource` — a recorded hftbacktest capture (spot or USD-M; the packaged real
  BTCUSDT captures by default);
* :class:`SimulatedSource` — a run of :func:`mmradar.sim.simulate` (spot), converted record by
  record into the same typed capture records the loader produces, plus the scenario's feed
  faults as :class:`~.plan.FaultStep`\\ s. Its receive-time axis is the simulated event time.
* :class:`SimulatedPerpSource` — the second venue of the same run (``run.perp``, the
  simulator's perpetual on the Binance USD-M wire), on the same receive-time axis: a venue
  serving it in lockstep with the spot one (``EmbeddedBinance(lockstep=...)``) plays both
  markets of one simulation.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import orjson

from .capture import (
    Capture,
    CaptureError,
    Market,
    Record,
    Snapshot,
    Trade,
    capture_path,
    load_capture,
    parse_record,
)
from .capture import (
    CaptureSource as CaptureFile,
)
from .plan import FaultStep, ReplayPlan, build_plan, with_faults

if TYPE_CHECKING:
    from ..sim import ScenarioSpec, SimFrame, SimRun

__all__ = [
    "CaptureSource",
    "FrameSource",
    "SimulatedPerpSource",
    "SimulatedSource",
    "capture_from_run",
]


@runtime_checkable
class FrameSource(Protocol):
    """What an :class:`~.binance.EmbeddedBinance` replays."""

    @property
    def market(self) -> Market:
        """``"spot"`` or ``"usdm"``: which protocol variant serves it."""
        ...

    @property
    def description(self) -> str:
        """One human-readable line."""
        ...

    def load(self) -> ReplayPlan:
        """Build the timeline (blocking; the venue calls it in a worker thread once)."""
        ...


def _file_key(source: CaptureFile) -> tuple[str, int, int] | None:
    """Cache key of a capture file on disk, None if it is not a plain file."""
    if not isinstance(source, str | os.PathLike):
        return None
    path = os.path.realpath(os.fspath(source))
    st = os.stat(path)
    return (path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _cached_plan(key: tuple[str, int, int], market: Market) -> ReplayPlan:
    return build_plan(load_capture(key[0]), market)


class CaptureSource:
    """A recorded capture file.

    Args:
        market: ``"spot"`` or ``"usdm"``.
        path: the capture; default the packaged real capture of ``market``.
    """

    def __init__(self, market: Market, path: CaptureFile | None = None) -> None:
        self._market: Market = market
        self.path: CaptureFile = path if path is not None else capture_path(market)

    @property
    def market(self) -> Market:
        return self._market

    @property
    def description(self) -> str:
        return f"capture {os.path.basename(str(self.path))} ({self._market})"

    def load(self) -> ReplayPlan:
        """Load and plan the capture (plans of files on disk are cached)."""
        key = _file_key(self.path)
        if key is None:
            return build_plan(load_capture(self.path), self._market)
        return _cached_plan(key, self._market)


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _agg_trade_record(recv_ns: int, obj: object, line: int) -> Trade | None:
    """A one-fill ``aggTrade`` frame as the fill itself (the venue re-aggregates fills).

    Returns:
        None if the frame is not an ``@aggTrade`` combined-stream frame.

    Raises:
        CaptureError: it aggregates several fills (their sizes are not recoverable).
    """
    if not isinstance(obj, dict):
        return None
    stream, data = obj.get("stream"), obj.get("data")
    if not (isinstance(stream, str) and stream.endswith("@aggTrade") and isinstance(data, dict)):
        return None
    if data.get("f") != data.get("l"):
        raise CaptureError(line, f"aggTrade {data.get('a')} aggregates several fills")
    try:
        symbol = str(data["s"])
        return Trade(
            recv_ns=recv_ns,
            stream=f"{symbol.lower()}@trade",
            E=int(data["E"]),
            T=int(data["T"]),
            s=symbol,
            t=int(data["f"]),
            p=str(data["p"]),
            q=str(data["q"]),
            m=bool(data["m"]),
            M=None,
            X=None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CaptureError(line, f"bad {stream} event: {exc!r}") from exc


def _capture(symbol: str, start_ns: int, body: bytes, frames: Sequence[SimFrame]) -> Capture:
    """A simulated venue's REST snapshot body and frames as a typed capture."""
    snap = orjson.loads(body)
    snapshot = Snapshot(
        recv_ns=start_ns,
        lastUpdateId=int(snap["lastUpdateId"]),
        bids=tuple((p, q) for p, q in snap["bids"]),
        asks=tuple((p, q) for p, q in snap["asks"]),
        E=_opt_int(snap.get("E")),
        T=_opt_int(snap.get("T")),
    )
    records: list[Record] = [snapshot]
    for i, frame in enumerate(frames, start=1):
        obj = orjson.loads(frame.payload)
        record = parse_record(frame.ts_ns, obj, i) or _agg_trade_record(frame.ts_ns, obj, i)
        if record is None:
            raise CaptureError(i, f"unexpected stream {frame.stream!r}")
        records.append(record)
    return Capture(records=tuple(records), snapshot=snapshot, symbol=symbol)


def capture_from_run(run: object, *, perp: bool = False) -> Capture:
    """Convert a :class:`mmradar.sim.SimRun` (or its perpetual) into typed capture records.

    The REST snapshot becomes the :class:`~.capture.Snapshot` record at ``run.start_ns``; each
    frame is decoded and typed by the capture loader's own parser, so the venue serves exactly
    the simulator's bytes' content. The perpetual's one-fill ``aggTrade`` frames become the
    fills they report (the venue serves ``@trade`` and re-aggregates ``@aggTrade``).

    Args:
        run: the simulator's output.
        perp: convert the run's second venue (``run.perp``) instead of the spot one.

    Raises:
        CaptureError: a frame is not a Binance depth, trade or one-fill aggregate trade frame.
        ValueError: ``perp`` and the run has no second venue.
    """
    from ..sim import SimRun

    if not isinstance(run, SimRun):
        raise TypeError("expected a service.sim.SimRun")
    if not perp:
        return _capture(run.symbol, run.start_ns, run.snapshot, run.frames)
    if run.perp is None:
        raise ValueError(f"scenario {run.scenario!r} has no second venue")
    return _capture(run.perp.symbol, run.start_ns, run.perp.snapshot, run.perp.frames)


class SimulatedSource:
    """A simulated scenario (Binance spot), simulated when the venue starts.

    Args:
        scenario: a key of :data:`mmradar.sim.SCENARIOS`, or a custom
            :class:`mmradar.sim.ScenarioSpec`.
        seed: the simulation seed.
        duration_s: override the scenario's length.
        params: simulator parameters (default :class:`mmradar.sim.SimParams`).
        faults: inject the scenario's feed faults (gaps, dropped connections).
    """

    def __init__(
        self,
        scenario: str | ScenarioSpec,
        seed: int = 1,
        *,
        duration_s: float | None = None,
        params: object | None = None,
        faults: bool = True,
    ) -> None:
        from ..sim import SCENARIOS

        if isinstance(scenario, str):
            if scenario not in SCENARIOS:
                raise KeyError(f"unknown scenario {scenario!r}")
            scenario = SCENARIOS[scenario]
        self.spec: ScenarioSpec = scenario
        self.scenario = scenario.name
        self.seed = seed
        self.duration_s = duration_s
        self.params = params
        self.faults = faults
        self.run: SimRun | None = None
        self._lock = threading.Lock()

    @property
    def market(self) -> Market:
        return "spot"

    @property
    def description(self) -> str:
        return f"simulated {self.scenario} (seed {self.seed}): {self.spec.description}"

    def simulated(self) -> SimRun:
        """The run (simulated on the first call, by whichever thread asks first)."""
        from ..sim import SimParams, simulate

        with self._lock:
            if self.run is None:
                params = self.params if isinstance(self.params, SimParams) else None
                self.run = simulate(self.spec, self.seed, duration_s=self.duration_s, params=params)
            return self.run

    def load(self) -> ReplayPlan:
        """Simulate, convert and plan (the run is kept in :attr:`run`)."""
        run = self.simulated()
        plan = build_plan(capture_from_run(run), "spot")
        if not self.faults:
            return plan
        steps = [
            FaultStep(run.start_ns + round(f.offset_s * 1e9), f.kind)
            for f in run.faults
            if run.start_ns + f.offset_s * 1e9 < run.end_ns
        ]
        return with_faults(plan, steps)


class SimulatedPerpSource:
    """The second venue of a simulated scenario: its perpetual, on the Binance USD-M wire.

    It serves the run of ``spot`` (simulated once, by whichever source loads first) on the same
    receive-time axis, with no faults of its own (the scenario's feed faults are the spot
    venue's).

    Args:
        spot: the scenario's spot source; its scenario must have a perpetual
            (``ScenarioSpec.perp``).

    Raises:
        ValueError: the scenario has no perpetual.
    """

    def __init__(self, spot: SimulatedSource) -> None:
        if not spot.spec.perp:
            raise ValueError(f"scenario {spot.scenario!r} has no second venue")
        self.spot = spot

    @property
    def market(self) -> Market:
        return "usdm"

    @property
    def description(self) -> str:
        spot = self.spot
        return f"simulated {spot.scenario} (seed {spot.seed}), its perpetual"

    def load(self) -> ReplayPlan:
        """Simulate (unless the spot source did), convert the perpetual and plan."""
        return build_plan(capture_from_run(self.spot.simulated(), perp=True), "usdm")
