"""``mmradar score``: run the detectors over simulated scenarios × seeds and write a scorecard.

Every run is simulated and driven in-process (:func:`mmradar.score.runner.score_task`), in a
pool of worker processes; results are collected in ``(scenario, seed)`` order whatever order
the workers finish in, so the scorecard is deterministic. Progress goes to stderr.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import msgspec

from ..errors import OutputError
from ..signals.params import SignalSettings
from .matching import DEFAULT_TOLERANCE, Tolerance
from .runner import RunResult, RunTask, score_task
from .scorecard import (
    Scorecard,
    SignalQuality,
    build_scorecard,
    format_markdown,
    scorecard_json,
    signal_quality,
)

__all__ = [
    "CALIBRATION_SEEDS",
    "EVALUATION_SEEDS",
    "QUICK_EXCLUDE",
    "QUICK_SEEDS",
    "SCORE_WARMUP_SECONDS",
    "ScoreOptions",
    "parse_seeds",
    "run_score",
]

#: Held-out seeds the published scorecard is measured on.
EVALUATION_SEEDS: tuple[int, ...] = tuple(range(1, 11))
#: Seeds the detector defaults were calibrated on (never the evaluation seeds).
CALIBRATION_SEEDS: tuple[int, ...] = tuple(range(101, 106))
#: ``--quick``: one seed, every scenario but the two longest (the demo cycle, the calm hour).
QUICK_SEEDS: tuple[int, ...] = (1,)
QUICK_EXCLUDE: tuple[str, ...] = ("cycle", "calm")
#: Detector warm-up used for scoring. The scenarios open with 360 s of calm (enough for the
#: baselines' first minutes), shorter than the production default of 600 s; every other
#: ``[signals]`` parameter keeps its default.
SCORE_WARMUP_SECONDS = 300.0


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"1-10"``, ``"1,2,3"`` or a mix (``"1-3,7"``) → sorted unique seeds.

    Raises:
        ValueError: malformed text or an empty range.
    """
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"empty item in {text!r}")
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError(f"empty range {part!r}")
                seeds.update(range(a, b + 1))
            else:
                seeds.add(int(part))
        except ValueError as exc:
            raise ValueError(f"bad seeds {text!r}: {exc}") from exc
    return tuple(sorted(seeds))


@dataclass(frozen=True, slots=True)
class ScoreOptions:
    """What ``mmradar score`` runs.

    Attributes:
        scenarios: scenario names, in scorecard order.
        seeds: simulator seeds.
        out: output directory (``scorecard.md``, ``timeline.png``).
        params: detector parameters.
        duration_s: override every scenario's length (None: their own).
        jobs: worker processes (1: in this process).
        tolerance: the matching window.
        validate: also run the validation against published results.
        plot: draw ``timeline.png``.
        progress: show progress on stderr.
        label: what the seeds are (``evaluation``, ``calibration``, ``quick``, ``custom``).
    """

    scenarios: tuple[str, ...]
    seeds: tuple[int, ...]
    out: Path
    params: SignalSettings
    duration_s: float | None = None
    jobs: int = 2
    tolerance: Tolerance = DEFAULT_TOLERANCE
    validate: bool = False
    plot: bool = True
    progress: bool = True
    label: str = "evaluation"


def _work(task: RunTask) -> tuple[RunResult, tuple[SignalQuality, SignalQuality]]:
    """Worker: simulate, drive, and compute the proxy figures (the costly part) in parallel."""
    result = score_task(task)
    s = result.series
    quality = (
        signal_quality(s.proxy, s.q_true, s.armed),
        signal_quality(s.pressure, s.q_true, s.armed),
    )
    return result, quality


class _Progress:
    """tqdm on a terminal; one line per finished run otherwise (CI logs)."""

    def __init__(self, total: int, enabled: bool, err: TextIO) -> None:
        self.total = total
        self.done = 0
        self.err = err
        self.enabled = enabled
        self.bar: Any = None
        if enabled and err.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="run", desc="score", file=err)

    def update(self, result: RunResult) -> None:
        self.done += 1
        if not self.enabled:
            return
        text = f"{result.scenario} seed {result.seed}"
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        else:
            print(
                f"score: [{self.done}/{self.total}] {text}: {len(result.detected)} detected, "
                f"{len(result.truth)} truth episodes ({result.wall_s:.1f} s)",
                file=self.err,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_tasks(
    tasks: Sequence[RunTask], jobs: int, progress: _Progress
) -> list[tuple[RunResult, tuple[SignalQuality, SignalQuality]]]:
    out: list[tuple[RunResult, tuple[SignalQuality, SignalQuality]] | None] = [None] * len(tasks)
    if jobs <= 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            out[i] = _work(task)
            progress.update(out[i][0])  # type: ignore[index]
    else:
        # spawn: fresh interpreters (no fork of a process that may hold threads or an event loop)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(_work, task): i for i, task in enumerate(tasks)}
            for fut in as_completed(futures):
                i = futures[fut]
                out[i] = fut.result()
                progress.update(out[i][0])  # type: ignore[index]
    return [r for r in out if r is not None]


def run_score(
    options: ScoreOptions,
    *,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    validation: Callable[[Sequence[RunResult], ScoreOptions, TextIO], str] | None = None,
) -> Scorecard:
    """Run every ``(scenario, seed)``, write ``scorecard.md`` (and ``timeline.png``), print it.

    Args:
        options: what to run.
        out: where the scorecard Markdown is printed.
        err: where progress goes.
        validation: computes the validation section (Markdown) when ``options.validate``
            (default :func:`mmradar.score.report.validation_markdown`).

    Returns:
        The scorecard.

    Raises:
        OutputError: ``options.out`` cannot be created or written (checked before any run).
    """
    started = time.perf_counter()
    _writable(options.out)
    tasks = [
        RunTask(scenario, seed, options.duration_s, options.params)
        for scenario in options.scenarios
        for seed in options.seeds
    ]
    progress = _Progress(len(tasks), options.progress, err)
    try:
        done = _run_tasks(tasks, options.jobs, progress)
    finally:
        progress.close()
    results = [r for r, _ in done]
    qualities = {(r.scenario, r.seed): q for r, q in done}
    card = build_scorecard(results, tolerance=options.tolerance, qualities=qualities)
    text = format_markdown(card)
    text = text.replace(
        "\n\nMatching:",
        f"\n\nSeeds are {options.label} seeds. Detectors: `[signals]` defaults "
        f"(mmradar/signals/params.py) except `warmup_seconds = {options.params.warmup_seconds:g}`"
        + _non_default(options.params)
        + ".\n\nMatching:",
        1,
    )
    if options.plot:
        from .plot import choose_run, plot_timeline

        chosen = choose_run(results)
        if chosen is not None:
            plot_timeline(chosen, options.out / "timeline.png")
            text += (
                f"\n## Timeline\n\n![timeline](timeline.png)\n\n{chosen.scenario}, seed "
                f"{chosen.seed}: price; true dealer shortness −q vs the inventory proxy; the "
                f"pressure composite; truth (blue) and detected (red) episodes per symptom.\n"
            )
        hedged = choose_run(results, hedge=True)
        if hedged is not None:
            plot_timeline(hedged, options.out / "timeline-hedge.png")
            text += (
                f"\n![timeline with a second venue](timeline-hedge.png)\n\n{hedged.scenario}, "
                f"seed {hedged.seed}: the spot venue's lanes and `hedge_pressure` (reported on "
                f"the perpetual) in one timeline.\n"
            )
    if options.validate:
        if validation is None:
            from .report import validation_markdown

            validation = validation_markdown
        text += "\n" + validation(results, options, err)
    _write(options.out / "scorecard.md", text)
    _write(
        options.out / "scorecard.json",
        json.dumps(scorecard_json(card), indent=2, ensure_ascii=False) + "\n",
    )
    out.write(text)
    out.flush()
    print(
        f"score: {len(results)} runs in {time.perf_counter() - started:.1f} s; "
        f"wrote {options.out / 'scorecard.md'}",
        file=err,
        flush=True,
    )
    return card


def _writable(directory: Path) -> None:
    """Create the output directory (if need be); OutputError if that fails."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"{directory}: cannot create the directory: {exc.strerror or exc}"
        ) from exc


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc


def _non_default(params: SignalSettings) -> str:
    """``; also x = 1, y = 2`` for fields differing from the defaults (besides the warm-up)."""
    default = SignalSettings()
    diffs = [
        f"`{f.name} = {getattr(params, f.name)!r}`"
        for f in msgspec.structs.fields(params)
        if f.name != "warmup_seconds" and getattr(params, f.name) != getattr(default, f.name)
    ]
    return ("; also " + ", ".join(diffs)) if diffs else ""


def scenario_names() -> tuple[str, ...]:
    """Every scenario the simulator defines, in its order."""
    sim = importlib.import_module("mmradar.sim")
    return tuple(sim.SCENARIOS)


def default_jobs() -> int:
    """Worker processes: the CPUs available, at most 2 (and at least 1)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(2, n))
