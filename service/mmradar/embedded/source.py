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
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import orjson

from .capture import (
    Capture,
    CaptureError,
    Market,
    Record,
    Snapshot,
    capture_path,
    load_capture,
    parse_record,
)
from .capture import (
    CaptureSource as CaptureFile,
)
from .plan import FaultStep, ReplayPlan, build_plan, with_faults

if TYPE_CHECKING:
    from ..sim import ScenarioSpec

__all__ = ["CaptureSource", "FrameSource", "SimulatedSource", "capture_from_run"]


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


def capture_from_run(run: object) -> Capture:
    """Convert a :class:`mmradar.sim.SimRun` into typed capture records.

    The REST snapshot becomes the :class:`~.capture.Snapshot` record at ``run.start_ns``; each
    frame is decoded and typed by the capture loader's own parser, so the venue serves exactly
    the simulator's bytes' content.

    Raises:
        CaptureError: a frame is not a Binance spot depth or trade frame.
    """
    from ..sim import SimRun

    if not isinstance(run, SimRun):
        raise TypeError("expected a service.sim.SimRun")
    snap = orjson.loads(run.snapshot)
    snapshot = Snapshot(
        recv_ns=run.start_ns,
        lastUpdateId=int(snap["lastUpdateId"]),
        bids=tuple((p, q) for p, q in snap["bids"]),
        asks=tuple((p, q) for p, q in snap["asks"]),
        E=None,
        T=None,
    )
    records: list[Record] = [snapshot]
    for i, frame in enumerate(run.frames, start=1):
        record = parse_record(frame.ts_ns, orjson.loads(frame.payload), i)
        if record is None:
            raise CaptureError(i, f"unexpected stream {frame.stream!r}")
        records.append(record)
    return Capture(records=tuple(records), snapshot=snapshot, symbol=run.symbol)


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
        from ..sim import SCENARIOS, SimRun

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

    @property
    def market(self) -> Market:
        return "spot"

    @property
    def description(self) -> str:
        return f"simulated {self.scenario} (seed {self.seed}): {self.spec.description}"

    def load(self) -> ReplayPlan:
        """Simulate, convert and plan (the run is kept in :attr:`run`)."""
        from ..sim import SimParams, simulate

        params = self.params if isinstance(self.params, SimParams) else None
        run = simulate(self.spec, self.seed, duration_s=self.duration_s, params=params)
        self.run = run
        plan = build_plan(capture_from_run(run), "spot")
        if not self.faults:
            return plan
        steps = [
            FaultStep(run.start_ns + round(f.offset_s * 1e9), f.kind)
            for f in run.faults
            if run.start_ns + f.offset_s * 1e9 < run.end_ns
        ]
        return with_faults(plan, steps)
