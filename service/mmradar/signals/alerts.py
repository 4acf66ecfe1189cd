"""The symptom alert state machine shared by every detector (docs/signals.md).

::

    IDLE ──on──► PENDING ──on held for T_on──► FIRING ──off held for T_off (and fired ≥ T_min)──►
      ▲             │ not on                      │                                     COOLDOWN
      └─────────────┘                             └ on/off alternating: stays FIRING        │
      ▲                                                                                     │
      └──────────────────────────────── T_cool elapsed ─────────────────────────────────────┘

The detector evaluates two conditions on each sample of its stat clock: ``on`` (the symptom
is present: e.g. ``z ≥ θ_on``) and ``off`` (it is clearly gone: ``z ≤ θ_off``). With
``θ_off < θ_on`` (hysteresis) a statistic between the two thresholds neither starts nor ends an
episode. "Held for T" means: true on every sample from the first one at ``t0`` through a sample
at ``t ≥ t0 + T`` — so on a 1-s clock ``on_s = 2`` needs three consecutive samples. An ``off``
that lapses before ``T_off`` resets the clock: dips shorter than ``T_off`` never end an episode.
After an episode ends nothing may start for ``T_cool`` (cooldown), so a symptom hovering at the
threshold cannot page every few seconds.

All times are venue event time (ns); the machine never reads a clock.
"""

from __future__ import annotations

import enum
import math
from typing import Literal

from mypy_extensions import mypyc_attr

__all__ = ["AlertMachine", "AlertState", "AlertTiming", "Transition"]

_NS = 1_000_000_000

Transition = Literal["firing", "resolved"]


class AlertState(enum.Enum):
    """Where an alert is in its life cycle."""

    IDLE = "idle"
    PENDING = "pending"
    FIRING = "firing"
    COOLDOWN = "cooldown"


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class AlertTiming:
    """Persistence parameters of one symptom, in seconds of event time.

    Args:
        on_s: ``T_on``, how long ``on`` must hold before an episode starts (≥ 0).
        off_s: ``T_off``, how long ``off`` must hold before it ends (≥ 0).
        min_firing_s: ``T_min``, the shortest episode (≥ 0).
        cooldown_s: ``T_cool``, the quiet time after an episode (≥ 0).
    """

    __slots__ = ("cooldown_ns", "min_firing_ns", "off_ns", "on_ns")

    def __init__(self, on_s: float, off_s: float, min_firing_s: float, cooldown_s: float) -> None:
        for name, value in (
            ("on_s", on_s),
            ("off_s", off_s),
            ("min_firing_s", min_firing_s),
            ("cooldown_s", cooldown_s),
        ):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.on_ns = round(on_s * _NS)
        self.off_ns = round(off_s * _NS)
        self.min_firing_ns = round(min_firing_s * _NS)
        self.cooldown_ns = round(cooldown_s * _NS)


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class AlertMachine:
    """One (symptom, side) alert: IDLE → PENDING → FIRING → COOLDOWN → IDLE.

    Attributes:
        state: the current state.
        score: the last score passed to :meth:`step` (NaN before any).
        peak: the highest score of the current (or last) episode.
        started_ns: event time the current (or last) episode started (0 if none yet).
        ended_ns: event time the last episode ended (0 if none yet).
        episodes: episodes started so far (``mmradar_symptom_episodes_total``).
    """

    __slots__ = (
        "_off_since",
        "_pending_since",
        "ended_ns",
        "episodes",
        "peak",
        "score",
        "started_ns",
        "state",
        "timing",
    )

    def __init__(self, timing: AlertTiming) -> None:
        self.timing = timing
        self.state = AlertState.IDLE
        self.score = math.nan
        self.peak = math.nan
        self.started_ns = 0
        self.ended_ns = 0
        self.episodes = 0
        self._pending_since = 0
        self._off_since: int | None = None

    @property
    def firing(self) -> bool:
        """True while an episode is in progress (``mmradar_symptom_active``)."""
        return self.state is AlertState.FIRING

    def step(self, ts_ns: int, on: bool, off: bool, score: float) -> Transition | None:
        """Advance with one sample of the stat clock.

        Args:
            ts_ns: the sample's event time (non-decreasing across calls).
            on: the symptom's start condition holds at this sample.
            off: its end condition holds at this sample.
            score: the detector's score (higher = more anomalous), for the episode's peak.

        Returns:
            ``"firing"`` when an episode starts at this sample, ``"resolved"`` when it ends,
            else None.
        """
        self.score = score
        t = self.timing
        state = self.state
        if state is AlertState.COOLDOWN:
            if ts_ns - self.ended_ns < t.cooldown_ns:
                return None
            state = self.state = AlertState.IDLE
        if state is AlertState.IDLE:
            if not on:
                return None
            self._pending_since = ts_ns
            state = self.state = AlertState.PENDING
        if state is AlertState.PENDING:
            if not on:
                self.state = AlertState.IDLE
                return None
            if ts_ns - self._pending_since < t.on_ns:
                return None
            self.state = AlertState.FIRING
            self.started_ns = ts_ns
            self.peak = score
            self._off_since = None
            self.episodes += 1
            return "firing"
        # FIRING
        if score > self.peak or self.peak != self.peak:
            self.peak = score
        if not off:
            self._off_since = None
            return None
        if self._off_since is None:
            self._off_since = ts_ns
        if ts_ns - self._off_since >= t.off_ns and ts_ns - self.started_ns >= t.min_firing_ns:
            self.state = AlertState.COOLDOWN
            self.ended_ns = ts_ns
            return "resolved"
        return None

    def force_resolve(self, ts_ns: int) -> bool:
        """End an episode now whatever the conditions (the book became invalid).

        The machine returns to IDLE (no cooldown: a warm-up follows a resync anyway).

        Returns:
            True if an episode was firing (the caller emits its ``resolved`` event).
        """
        was_firing = self.state is AlertState.FIRING
        if was_firing:
            self.ended_ns = max(ts_ns, self.started_ns)
        self.reset()
        return was_firing

    def reset(self) -> None:
        """Back to IDLE without an event (pending time forgotten); counters are kept."""
        self.state = AlertState.IDLE
        self._off_since = None
        self._pending_since = 0
