"""The scorecard's timeline plot: one run's price, true inventory vs the proxy, and episodes.

Drawn with matplotlib's object-oriented API on the Agg canvas (no pyplot, no GUI backend, no
global state), so it works headless and in worker processes. matplotlib is imported on first
use: scoring itself does not need it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from ..signals.episodes import SYMPTOM_SIDES
from .matching import Episode
from .runner import HEDGE_SYMPTOM_SIDES, RunResult

__all__ = ["choose_run", "plot_timeline"]

_NS = 1_000_000_000
_TRUTH_COLOR = "#9ecae1"
_DETECTED_COLOR = "#d62728"
_WARMUP_COLOR = "#eeeeee"


def choose_run(results: Sequence[RunResult], *, hedge: bool = False) -> RunResult | None:
    """The run to plot: the symptom run with the most scored truth episodes (first on ties).

    Args:
        results: the runs.
        hedge: choose among the runs with a second venue, by their scored ``hedge_pressure``
            truth episodes (None if there is none); otherwise among the single-venue runs
            (any run if there is none).
    """
    best: RunResult | None = None
    best_n = -1
    for r in results:
        if (r.perp_frames > 0) != hedge:
            continue
        n = sum(
            1
            for t in r.truth
            if r.armed_at(t.episode.start_ns)
            and (not hedge or t.episode.symptom in HEDGE_SYMPTOM_SIDES)
        )
        if r.kind == "symptom" and n > best_n:
            best, best_n = r, n
    if best is None and results and not hedge:
        best = results[0]
    return best


def _minutes(t_ns: int, t0: int) -> float:
    return (t_ns - t0) / _NS / 60.0


def plot_timeline(result: RunResult, path: str | os.PathLike[str], *, dpi: int = 110) -> None:
    """Write the timeline PNG of one run.

    Panels (shared event-time axis, minutes from the run's start; grey = detectors not armed):

    1. the book's mid, with truth episodes shaded;
    2. true dealer shortness ``−q_true`` (left axis) and ``mmradar_dealer_inventory_proxy``
       (right axis), both positive = dealers short;
    3. ``mmradar_dealer_pressure``;
    4. one lane per symptom/side: truth episodes (upper bar) and detected episodes (lower bar).

    Args:
        result: the run.
        path: the PNG file to write.
        dpi: resolution.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    s = result.series
    t0 = result.start_ns
    x = [_minutes(t, t0) for t in s.t_ns]
    keys = _lanes(result)
    fig = Figure(figsize=(12, 9.5), layout="constrained")
    FigureCanvasAgg(fig)
    heights = [2.2, 2.2, 1.2, max(1.6, 0.32 * len(keys) + 0.4)]
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": heights})
    ax_price, ax_inv, ax_press, ax_ep = axes
    fig.suptitle(
        f"{result.scenario} (seed {result.seed}, {result.symbol}): "
        f"{sum(1 for _ in result.truth)} truth episodes, {len(result.detected)} detected",
        fontsize=11,
    )
    for ax in axes:
        for lo, hi in _unarmed_spans(s.t_ns, s.armed):
            ax.axvspan(_minutes(lo, t0), _minutes(hi, t0), color=_WARMUP_COLOR, lw=0, zorder=0)

    ax_price.plot(x, s.mid, color="black", lw=0.7)
    for t in result.truth:
        ax_price.axvspan(
            _minutes(t.episode.start_ns, t0),
            _minutes(t.episode.end_ns, t0),
            color=_TRUTH_COLOR,
            alpha=0.45,
            lw=0,
        )
    ax_price.set_ylabel("mid price")
    ax_price.ticklabel_format(axis="y", useOffset=False, style="plain")

    short = [-q for q in s.q_true]
    ax_inv.plot(x, short, color="#1f77b4", lw=0.9, label="true dealer shortness −q (base units)")
    ax_inv.axhline(0.0, color="grey", lw=0.5)
    ax_inv.set_ylabel("−q_true")
    ax_proxy = ax_inv.twinx()
    ax_proxy.plot(x, s.proxy, color="#ff7f0e", lw=0.8, label="inventory proxy (z)")
    ax_proxy.set_ylabel("proxy z")
    _align_zero(ax_inv, short)
    _align_zero(ax_proxy, s.proxy)
    lines = ax_inv.get_lines()[:1] + ax_proxy.get_lines()
    ax_inv.legend(lines, [ln.get_label() for ln in lines], loc="upper left", fontsize=8)

    ax_press.plot(x, s.pressure, color="#2ca02c", lw=0.8)
    ax_press.axhline(0.0, color="grey", lw=0.5)
    ax_press.set_ylim(-1.05, 1.05)
    ax_press.set_ylabel("pressure")

    for row, key in enumerate(keys):
        y = len(keys) - 1 - row
        truth = [t.episode for t in result.truth if t.episode.key == key]
        det = [e for e in result.detected if e.key == key]
        ax_ep.broken_barh(_bars(truth, t0), (y + 0.5, 0.38), color=_TRUTH_COLOR)
        ax_ep.broken_barh(_bars(det, t0), (y + 0.1, 0.38), color=_DETECTED_COLOR)
    ax_ep.set_yticks([len(keys) - 1 - i + 0.5 for i in range(len(keys))])
    ax_ep.set_yticklabels([f"{k[0]}/{k[1]}" for k in keys], fontsize=8)
    ax_ep.set_ylim(0, max(1, len(keys)))
    ax_ep.set_xlabel("event time, minutes from start")
    ax_ep.legend(
        handles=[
            Patch(color=_TRUTH_COLOR, label="truth"),
            Patch(color=_DETECTED_COLOR, label="detected"),
            Patch(color=_WARMUP_COLOR, label="detectors not armed"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.32),
        fontsize=8,
        ncols=3,
        frameon=False,
    )
    fig.savefig(os.fspath(path), dpi=dpi, metadata={"Software": None})


def _lanes(result: RunResult) -> list[tuple[str, str]]:
    """Symptom/side lanes with any episode, in ``SYMPTOM_SIDES`` order then ``hedge_pressure``
    (unknown labels last)."""
    present = {t.episode.key for t in result.truth} | {e.key for e in result.detected}
    known = [
        (sym, side)
        for sym, sides in (*SYMPTOM_SIDES.items(), *HEDGE_SYMPTOM_SIDES.items())
        for side in sides
    ]
    lanes = [k for k in known if k in present]
    lanes += sorted(present - set(known))
    return lanes


def _bars(episodes: Sequence[Episode], t0: int) -> list[tuple[float, float]]:
    # at least ~1 s wide so a short episode stays visible
    return [
        (_minutes(e.start_ns, t0), max(_minutes(e.end_ns, t0) - _minutes(e.start_ns, t0), 1 / 60))
        for e in episodes
    ]


def _unarmed_spans(t_ns: Sequence[int], armed: Sequence[bool]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for t, a in zip(t_ns, armed, strict=True):
        if not a and start is None:
            start = t
        elif a and start is not None:
            spans.append((start, t))
            start = None
    if start is not None and t_ns:
        spans.append((start, t_ns[-1]))
    return spans


def _align_zero(ax: object, values: Sequence[float]) -> None:
    """Symmetric y-limits around 0 so both inventory axes share their zero line."""
    finite = [abs(v) for v in values if v == v and math.isfinite(v)]
    m = max(finite) if finite else 1.0
    m = m * 1.1 if m > 0 else 1.0
    ax.set_ylim(-m, m)  # type: ignore[attr-defined]
