"""``mmradar replay``: drive the live pipeline from recordings.

The core, :class:`~mmradar.replayer.Replayer` (:mod:`mmradar.replayer`), is synchronous and
pure: it routes recorded records to the same pipeline objects the live feed runner drives.

:func:`replay` is the asynchronous shell around it: reads files, builds the pipelines from their
headers, registers the metrics (so ``/metrics`` reads as live would), paces the records by their
receive time divided by ``speed`` (or not at all), shows progress and prints a summary. Every
detector runs on venue event time, so the results are identical at any speed.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from . import __version__
from .clock import ShellClock, SystemClock
from .errors import RecordingError
from .fmt import fmt_clock_duration as _duration
from .fmt import fmt_float
from .fmt import utc_text as _utc
from .metrics import Metrics, window_label
from .pipeline import FeedObserver, FeedPipeline, SymbolState
from .record import RecordingReader
from .replayer import (
    CountingObserver,
    Replayer,
    ReplayStats,
    build_pipelines,
    expand_paths,
    merge_feeds,
    probe_feeds,
)
from .signals.episodes import EpisodeEvent
from .signals.market import MarketParams
from .signals.params import SignalSettings
from .signals.reading import EpisodeRecord
from .venues import VENUES
from .views import instrument_views

__all__ = [
    "FeedSummary",
    "InstrumentSummary",
    "ReplayResult",
    "ViewEpisode",
    "format_summary",
    "replay",
    "summarize",
]

_NS = 1_000_000_000
#: Records between progress updates / event-loop yields.
_BATCH = 2048
#: Never sleep longer than this at once, so Ctrl-C (and a /metrics server) stay responsive.
_MAX_SLEEP_S = 1.0
#: Pacing delays shorter than this are accumulated rather than slept.
_MIN_SLEEP_S = 0.001


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedSummary:
    """What one exchange's feed saw during a replay.

    Attributes:
        exchange: config ``exchange``.
        frames: websocket frames processed (``mmradar_feed_messages_total``).
        bad_messages: frames dropped, by reason (``mmradar_feed_bad_messages_total``).
    """

    exchange: str
    frames: int
    bad_messages: dict[str, int]


@dataclass(frozen=True, slots=True)
class InstrumentSummary:
    """The final state of one (exchange, symbol) after a replay.

    Prices and depth are NaN when the book is not valid at the end.

    Attributes:
        exchange: config ``exchange``.
        symbol: venue spelling.
        valid: the book is in sync at the end (``mmradar_book_valid``).
        depth_updates: depth messages applied to the book.
        resyncs: book invalidations, by reason (``mmradar_book_resyncs_total``).
        last_event_ns: venue event time of the last applied depth message (0 if none).
        best_bid: best bid price.
        best_ask: best ask price.
        spread_bps: quoted spread in bps of mid.
        bands_bps: the depth bands.
        depth_bid: bid notional within each band.
        depth_ask: ask notional within each band.
        taker_buy: base volume bought by takers.
        taker_sell: base volume sold by takers.
        volatility_bps: realized volatility per window label (``"30s"``, ``"5m"``).
        episodes: symptom episodes found (finished, then those still firing at the end, with
            ``ended_ns`` None), by start time.
        warmup_s: the detectors' warm-up (``[signals] warmup_seconds``).
        signals_warm: the detectors were armed (warm-up over) at the end.
        book_since_ns: event time the book's current life started (0 if it never was valid).
        signals_armed_ns: event time the detectors armed in the current life (0 if not yet).
    """

    exchange: str
    symbol: str
    valid: bool
    depth_updates: int
    resyncs: dict[str, int]
    last_event_ns: int
    best_bid: float
    best_ask: float
    spread_bps: float
    bands_bps: tuple[int, ...]
    depth_bid: tuple[float, ...]
    depth_ask: tuple[float, ...]
    taker_buy: float
    taker_sell: float
    volatility_bps: dict[str, float]
    episodes: tuple[EpisodeRecord, ...] = ()
    warmup_s: float = 0.0
    signals_warm: bool = False
    book_since_ns: int = 0
    signals_armed_ns: int = 0


def _summarize_instrument(inst: SymbolState, observer: FeedObserver) -> InstrumentSummary:
    nan = math.nan
    book = inst.book
    valid = inst.valid
    resyncs = (
        dict(observer.resyncs.get(inst.symbol, {}))
        if isinstance(observer, CountingObserver)
        else {}
    )
    windows = [window_label(w) for w in inst.market.params.volatility_windows_s]
    rv = inst.market.realized_volatility_bps() if valid else [nan] * len(windows)
    if valid:
        depth_bid, depth_ask = book.depth_notional()
        best_bid, best_ask, spread = book.best_bid_price(), book.best_ask_price(), book.spread_bps()
    else:
        depth_bid = depth_ask = tuple(nan for _ in book.bands_bps)
        best_bid = best_ask = spread = nan
    return InstrumentSummary(
        exchange=inst.exchange,
        symbol=inst.symbol,
        valid=valid,
        depth_updates=inst.sync.updates_applied,
        resyncs=resyncs,
        last_event_ns=inst.sync.last_event_ns,
        best_bid=best_bid,
        best_ask=best_ask,
        spread_bps=spread,
        bands_bps=tuple(book.bands_bps),
        depth_bid=tuple(depth_bid),
        depth_ask=tuple(depth_ask),
        taker_buy=inst.market.taker_buy,
        taker_sell=inst.market.taker_sell,
        volatility_bps=dict(zip(windows, rv, strict=True)),
        episodes=tuple(inst.engine.all_episodes()),
        warmup_s=inst.engine.params.warmup_seconds,
        signals_warm=inst.engine.warm,
        book_since_ns=inst.engine.life_start_ns if inst.engine.live else 0,
        signals_armed_ns=inst.engine.warm_at_ns if inst.engine.warm else 0,
    )


def summarize(
    pipelines: Mapping[str, FeedPipeline],
) -> tuple[list[FeedSummary], list[InstrumentSummary]]:
    """Read the final state of every feed and instrument (pure; for :class:`ReplayResult`)."""
    feeds: list[FeedSummary] = []
    instruments: list[InstrumentSummary] = []
    for exchange, pipeline in pipelines.items():
        observer = pipeline.observer
        if isinstance(observer, CountingObserver):
            feeds.append(FeedSummary(exchange, pipeline.frames, dict(observer.bad)))
        else:
            feeds.append(FeedSummary(exchange, pipeline.frames, {}))
        for inst in pipeline.instruments.values():
            instruments.append(_summarize_instrument(inst, observer))
    return feeds, instruments


@dataclass(slots=True)
class ViewEpisode:
    """An episode of a view spanning several instruments (``venue_withdrawal``,
    ``hedge_pressure``), as its events reported it.

    Attributes:
        symptom: the symptom.
        exchange: the venue it is reported on.
        symbol: its symbol there.
        side: its side label.
        started_ns: event time it started.
        ended_ns: event time it ended (None while firing).
        peak: the highest score during the episode (NaN while firing).
    """

    symptom: str
    exchange: str
    symbol: str
    side: str
    started_ns: int
    ended_ns: int | None = None
    peak: float = math.nan


class _ViewEpisodes:
    """Collects the views' episode events into :class:`ViewEpisode` rows."""

    def __init__(self) -> None:
        self.episodes: list[ViewEpisode] = []
        self._open: dict[tuple[str, str, str, str], ViewEpisode] = {}

    def __call__(self, event: EpisodeEvent) -> None:
        key = (event.symptom, event.exchange, event.symbol, event.side)
        if event.state == "firing":
            episode = ViewEpisode(
                event.symptom, event.exchange, event.symbol, event.side, event.started_at_ns
            )
            self._open[key] = episode
            self.episodes.append(episode)
            return
        if key in self._open:
            episode = self._open.pop(key)
            episode.ended_ns = event.ended_at_ns
            peak = event.context.get("peak_score")
            episode.peak = float(peak) if isinstance(peak, (int, float)) else math.nan


@dataclass(slots=True)
class ReplayResult:
    """Everything a replay produced.

    Attributes:
        files: the files replayed, in order.
        stats: replay counters.
        feeds: per-exchange summary.
        summaries: per-(exchange, symbol) summary, in configuration order.
        pipelines: ``exchange → pipeline`` as left at the end.
        instruments: ``(exchange, symbol) → SymbolState`` as left at the end — the hook for
            anything summarized from the detectors' state (symptom episodes).
        first_ns: earliest receive time of any record (None if there was none).
        last_ns: latest receive time of any record.
        wall_seconds: how long the replay took.
        speed: the pacing factor, None for ``--fast``.
        view_episodes: episodes of the cross-venue and hedge views (instruments on several
            venues, or as spot and perpetual), in start order.
    """

    files: list[Path]
    stats: ReplayStats
    feeds: list[FeedSummary]
    summaries: list[InstrumentSummary]
    pipelines: dict[str, FeedPipeline]
    instruments: dict[tuple[str, str], SymbolState]
    first_ns: int | None
    last_ns: int | None
    wall_seconds: float = 0.0
    speed: float | None = None
    view_episodes: list[ViewEpisode] = field(default_factory=list)


def _num(x: float) -> str:
    return fmt_float(x, ",.10g", "n/a")


def _compact(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def _counts(counts: Mapping[str, int]) -> str:
    parts = [f"{reason} {n:,}" for reason, n in counts.items() if n]
    return ", ".join(parts) if parts else "none"


def format_summary(result: ReplayResult) -> str:
    """The human-readable summary of a replay (deterministic: no wall-clock figures).

    Args:
        result: what :func:`replay` returned.

    Returns:
        Several lines of text, without a trailing newline.
    """
    stats = result.stats
    lines: list[str] = []
    if result.first_ns is not None and result.last_ns is not None:
        span = (result.last_ns - result.first_ns) / _NS
        lines.append(
            f"{len(result.files)} file(s), {sum(stats.records.values()):,} records, "
            f"{_utc(result.first_ns)} → {_utc(result.last_ns)} ({_duration(span)} of data)"
        )
    else:
        lines.append(f"{len(result.files)} file(s), no records")
    skipped = {
        "malformed lines": stats.malformed_lines,
        "unknown kinds": stats.unknown_kinds,
        "orphan frames": stats.orphan_frames,
        "unknown exchange": stats.unknown_exchange,
        "truncated files": stats.truncated_files,
        "unused streams": stats.foreign_streams,
    }
    lines.append(
        f"snapshots: {stats.snapshots_used:,} used, {stats.snapshots_skipped:,} skipped"
        + (f", {stats.snapshots_bad:,} bad" if stats.snapshots_bad else "")
        + (f"; checkpoints: {stats.checkpoints:,} restored" if stats.checkpoints else "")
        + (f", {stats.checkpoints_bad:,} bad" if stats.checkpoints_bad else "")
        + f"; connections: {stats.connections_opened:,} opened, "
        f"{stats.connections_closed:,} closed; skipped: {_counts(skipped)}"
    )
    by_exchange = {f.exchange: f for f in result.feeds}
    for exchange in result.pipelines:
        feed = by_exchange.get(exchange)
        if feed is not None:
            lines.append(
                f"{exchange}: {feed.frames:,} frames; bad messages: {_counts(feed.bad_messages)}"
            )
        for s in (s for s in result.summaries if s.exchange == exchange):
            state = "valid" if s.valid else "NOT VALID"
            last = f", last update {_utc(s.last_event_ns)}" if s.last_event_ns else ""
            lines.append(
                f"  {s.symbol}: {state}; {s.depth_updates:,} depth updates{last}; "
                f"resyncs: {_counts(s.resyncs)}"
            )
            lines.append(
                f"    bid {_num(s.best_bid)}  ask {_num(s.best_ask)}  "
                f"spread {'n/a' if math.isnan(s.spread_bps) else f'{s.spread_bps:.3g}'} bps"
            )
            bands = "  ".join(
                f"±{band}bps {_compact(b)}/{_compact(a)}"
                for band, b, a in zip(s.bands_bps, s.depth_bid, s.depth_ask, strict=True)
            )
            lines.append(f"    depth bid/ask (quote notional): {bands}")
            lines.append(f"    taker volume: buy {_num(s.taker_buy)}  sell {_num(s.taker_sell)}")
            vol = "  ".join(
                f"{w} {'n/a' if math.isnan(v) else f'{v:.3g}'} bps"
                for w, v in s.volatility_bps.items()
            )
            lines.append(f"    realized volatility: {vol}")
            lines.extend(_episode_lines(s))
    if result.view_episodes:
        lines.append(
            f"episodes across instruments (venue_withdrawal, hedge_pressure): "
            f"{len(result.view_episodes)}"
        )
        for v in result.view_episodes:
            text = _episode_text(v.symptom, v.side, v.started_ns, v.ended_ns, v.peak)
            lines.append(f"  {v.exchange} {v.symbol}: {text}")
    return "\n".join(lines)


def _episode_text(
    symptom: str, side: str, started_ns: int, ended_ns: int | None, peak: float
) -> str:
    """One episode: ``symptom/side  start → end (duration)  peak score``."""
    start = _utc(started_ns)
    if ended_ns is None:
        span = f"{start} → (still firing)"
    else:
        span = f"{start} → {_utc(ended_ns)} ({_duration((ended_ns - started_ns) / _NS)})"
    top = "n/a" if math.isnan(peak) else f"{peak:.3g}"
    return f"{symptom}/{side}  {span}  peak score {top}"


def _episode_lines(s: InstrumentSummary) -> list[str]:
    """The symptom episodes of one instrument (and why there are none, if not armed)."""
    warmup = _duration(s.warmup_s)
    if s.signals_warm:
        armed = f"detectors armed since {_utc(s.signals_armed_ns)} ({warmup} warm-up)"
    elif s.book_since_ns and s.last_event_ns:
        valid_for = _duration((s.last_event_ns - s.book_since_ns) / _NS)
        armed = (
            f"detectors NOT armed at the end: the book was valid for {valid_for}, less than "
            f"the {warmup} warm-up (no episode can start before it ends); "
            f"use --warmup SECONDS to shorten it"
        )
    else:
        armed = "detectors NOT armed at the end: the book was not valid"
    episodes = s.episodes
    lines = [f"    symptom episodes: {len(episodes) if episodes else 'none'}; {armed}"]
    for e in episodes:
        note = "; ended by book invalidation" if e.book_invalidated else ""
        text = _episode_text(e.symptom, e.side, e.started_ns, e.ended_ns, e.peak)
        lines.append(f"      {text}{note}")
    return lines


def _progress_bar(total: int, enabled: bool) -> Any:
    """A tqdm bar over ``total`` bytes on stderr, or None when disabled or not on a TTY."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="replay", file=sys.stderr
    )


async def replay(
    paths: Sequence[str | os.PathLike[str]],
    *,
    speed: float | None = None,
    exchange: str | None = None,
    registry: CollectorRegistry | None = None,
    params: MarketParams | None = None,
    signal_params: SignalSettings | None = None,
    progress: bool = True,
    out: TextIO | None = sys.stdout,
    serve_until: Callable[[], Awaitable[None]] | None = None,
    on_pipelines: Callable[[Sequence[FeedPipeline]], None] | None = None,
    clock: ShellClock | None = None,
) -> ReplayResult:
    """Replay recordings through the live pipeline.

    Args:
        paths: recording files (mmradar format or hftbacktest captures), replayed in the order
            given; a directory stands for its ``mmradar-*.jsonl*`` files sorted by name.
        speed: pace the records at ``speed`` × their recorded receive-time spacing (sleeping
            at most a second at a time); None replays as fast as possible (``--fast``).
        exchange: for hftbacktest captures, the exchange to present them as (default: detected
            from the first depth message).
        registry: where the metrics are registered (``Metrics`` and the market collector); a
            fresh private registry if None. Pass the registry an HTTP server exposes for
            ``--serve``.
        params: market-state parameters (``[signals]``); defaults if None.
        signal_params: detector parameters (``[signals]``); defaults if None. The default
            ``warmup_seconds`` (600) is longer than a short capture: nothing is armed then
            (the summary says so); pass a shorter warm-up (``--warmup``) to see episodes.
        progress: show a progress bar over the bytes read on stderr (only if it is a TTY).
        out: where the summary is printed (None: not printed).
        on_pipelines: called with the pipelines as soon as they exist (``/readyz``).
        serve_until: awaited after the replay ended and the summary was printed (``--serve``:
            keep ``/metrics`` up until it returns).
        clock: paces ``speed`` and times the replay (``wall_seconds``):
            :class:`~mmradar.clock.SystemClock` by default.

    Returns:
        The result, with the final state of every instrument.

    Raises:
        ValueError: ``speed`` is not positive or ``exchange`` is not implemented.
        RecordingError: no file was given (or a directory holds no recording), a file cannot
            be opened, or it declares a newer format version.
    """
    if speed is not None and not speed > 0:
        raise ValueError(f"speed must be positive, got {speed}")
    if exchange is not None and exchange not in VENUES:
        raise ValueError(f"unknown exchange {exchange!r}; expected one of {', '.join(VENUES)}")
    files = expand_paths(paths)
    if not files:
        raise RecordingError(f"no recording to replay in {', '.join(map(str, paths))}")
    feeds = merge_feeds(f for path in files for f in probe_feeds(path, exchange=exchange))
    registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
    metrics = Metrics(registry, [(f.exchange, f.symbols) for f in feeds if f.exchange in VENUES])
    pipelines = build_pipelines(feeds, metrics=metrics, params=params, signal_params=signal_params)
    # the views over several instruments, as live builds them (the same frames, the same episodes)
    view_episodes = _ViewEpisodes()
    cross_venue, hedge = instrument_views(
        pipelines.values(), signal_params or SignalSettings(), view_episodes
    )
    metrics.register_pipelines(list(pipelines.values()), cross_venue, hedge=hedge)
    if on_pipelines is not None:
        on_pipelines(list(pipelines.values()))
    replayer = Replayer(
        pipelines,
        observers={x: metrics.shell(x, list(p.instruments)) for x, p in pipelines.items()},
    )
    stats = replayer.stats

    clock = clock or SystemClock()
    started = clock.monotonic()
    sizes = [path.stat().st_size for path in files]
    bar = _progress_bar(sum(sizes), progress)
    try:
        for path, size in zip(files, sizes, strict=True):
            with RecordingReader(path, exchange=exchange) as reader:
                anchor_t: int | None = None
                anchor_wall = 0.0
                read = 0
                for n, record in enumerate(reader, start=1):
                    if speed is not None:
                        if anchor_t is None:
                            anchor_t, anchor_wall = record.t, clock.monotonic()
                        else:
                            target = anchor_wall + (record.t - anchor_t) / _NS / speed
                            delay = target - clock.monotonic()
                            while delay > _MIN_SLEEP_S:
                                await clock.sleep(min(delay, _MAX_SLEEP_S))
                                delay = target - clock.monotonic()
                    replayer.feed(record)
                    if n % _BATCH == 0:
                        if bar is not None:
                            position = reader.position
                            bar.update(position - read)
                            read = position
                        await asyncio.sleep(0)  # let Ctrl-C and a /metrics server through
                if bar is not None:
                    bar.update(size - read)
                rs = reader.stats
                stats.malformed_lines += rs.malformed
                stats.unknown_kinds += rs.unknown_kind
                stats.foreign_streams += rs.foreign_streams
                stats.truncated_files += int(rs.truncated)
    finally:
        if bar is not None:
            bar.close()

    feed_summaries, summaries = summarize(pipelines)
    result = ReplayResult(
        files=files,
        stats=stats,
        feeds=feed_summaries,
        summaries=summaries,
        pipelines=pipelines,
        instruments={
            (x, s): inst for x, p in pipelines.items() for s, inst in p.instruments.items()
        },
        first_ns=replayer.first_ns,
        last_ns=replayer.last_ns,
        wall_seconds=clock.monotonic() - started,
        speed=speed,
        view_episodes=view_episodes.episodes,
    )
    if out is not None:
        pace = "fast" if speed is None else f"speed ×{speed:g}"
        print(
            f"mmradar {__version__} replay ({pace}) finished in {result.wall_seconds:.2f} s",
            file=out,
        )
        print(format_summary(result), file=out)
        out.flush()
    if serve_until is not None:
        await serve_until()
    return result
