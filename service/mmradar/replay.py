"""``mmradar replay``: drive the live pipeline from recordings.

The core, :class:`Replayer`, is synchronous and pure: it routes :class:`~mmradar.record.Record` s
to the same :class:`~mmradar.pipeline.FeedPipeline` objects the live feed runner drives, the
way the runner would have handed them over — one frame parser per connection, frames with their
receive timestamps, REST snapshot bodies to the books that asked for one, and a ``reconnect``
invalidation when a connection closed. Commands the pipeline returns are not carried out: the
recording already shows what happened next (a ``FetchSnapshot`` only marks the book as waiting
for the next recorded snapshot of its symbol; ``Reconnect`` and ``Resubscribe`` are ignored).

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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from . import __version__
from .book.sync import FetchSnapshot
from .checkpoint import CheckpointError, restore_checkpoint
from .clock import ShellClock, SystemClock
from .errors import ContractError, MalformedMessage, RecordingError
from .fmt import fmt_clock_duration as _duration
from .fmt import fmt_float
from .fmt import utc_text as _utc
from .metrics import RECONNECT_REASONS, Metrics, window_label
from .model import RESYNC_REASONS
from .pipeline import BAD_MESSAGE_REASONS, Command, FeedObserver, FeedPipeline, SymbolState
from .record import Record, RecordedFeed, RecordingReader
from .reporting import NullShellObserver, ShellObserver
from .signals.engine import EpisodeRecord
from .signals.market import MarketParams
from .signals.params import SignalSettings
from .venues import VENUES, make_venue
from .venues.base import FrameParser

__all__ = [
    "CountingObserver",
    "FeedSummary",
    "InstrumentSummary",
    "ReplayResult",
    "ReplayStats",
    "Replayer",
    "build_pipelines",
    "expand_paths",
    "format_summary",
    "merge_feeds",
    "probe_feeds",
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
#: Records scanned for ``open`` records when a file has no header.
_PROBE_RECORDS = 10_000


# --------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------


class CountingObserver:
    """A :class:`~mmradar.pipeline.FeedObserver` that counts locally and forwards to ``inner``.

    Args:
        symbols: the feed's symbols (resync counters exist for each from the start).
        inner: the observer to forward to (the feed's ``FeedMetrics``), or None.
    """

    __slots__ = ("bad", "inner", "resyncs")

    def __init__(self, symbols: Iterable[str], inner: FeedObserver | None = None) -> None:
        self.inner = inner
        self.bad: dict[str, int] = dict.fromkeys(BAD_MESSAGE_REASONS, 0)
        self.resyncs: dict[str, dict[str, int]] = {
            s: dict.fromkeys(RESYNC_REASONS, 0) for s in symbols
        }

    def bad_message(self, reason: str) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + 1
        if self.inner is not None:
            self.inner.bad_message(reason)

    def resync(self, symbol: str, reason: str) -> None:
        per = self.resyncs.setdefault(symbol, dict.fromkeys(RESYNC_REASONS, 0))
        per[reason] = per.get(reason, 0) + 1
        if self.inner is not None:
            self.inner.resync(symbol, reason)


def merge_feeds(feeds: Iterable[RecordedFeed]) -> list[RecordedFeed]:
    """Merge feeds per exchange (symbols in first-seen order; trades if any entry has them)."""
    merged: dict[str, tuple[dict[str, None], bool]] = {}
    for feed in feeds:
        symbols, trades = merged.get(feed.exchange, ({}, False))
        symbols.update(dict.fromkeys(feed.symbols))
        merged[feed.exchange] = (symbols, trades or feed.trades)
    return [RecordedFeed(x, tuple(s), tr) for x, (s, tr) in merged.items()]


def build_pipelines(
    feeds: Iterable[RecordedFeed],
    *,
    metrics: Metrics | None = None,
    params: MarketParams | None = None,
    signal_params: SignalSettings | None = None,
) -> dict[str, FeedPipeline]:
    """One pipeline per exchange of ``feeds``, observed by a :class:`CountingObserver`.

    Feeds of the same exchange are merged; exchanges this mmradar does not implement are left
    out (their records are counted as ``unknown_exchange`` by the :class:`Replayer`).

    Args:
        feeds: the recorded feeds (from the files' headers).
        metrics: when given, each observer forwards to ``metrics.feed(exchange, symbols)``, so
            the Prometheus counters read as they would live.
        params: market-state parameters (``[signals]``).
        signal_params: detector parameters (``[signals]``); defaults if None.

    Returns:
        ``exchange → pipeline``.
    """
    pipelines: dict[str, FeedPipeline] = {}
    for feed in merge_feeds(feeds):
        if feed.exchange not in VENUES:
            continue
        inner = metrics.feed(feed.exchange, feed.symbols) if metrics is not None else None
        observer = CountingObserver(feed.symbols, inner)
        pipelines[feed.exchange] = FeedPipeline(
            make_venue(feed.exchange), feed.symbols, observer, params, signal_params
        )
    return pipelines


@dataclass(slots=True)
class ReplayStats:
    """Counters of a replay.

    Attributes:
        records: records fed, by kind.
        snapshots_used: ``rest`` records handed to a book that was waiting for one.
        snapshots_skipped: ``rest`` records no book was waiting for.
        snapshots_bad: ``rest`` records whose body is not a depth snapshot.
        orphan_frames: ``ws``/``close`` records for a connection never opened (skipped).
        unknown_exchange: records for an exchange without a pipeline (skipped).
        connections_opened: ``open`` records that opened a connection (repeats excluded).
        connections_closed: connections closed (``close`` records, and an ``open`` reusing the
            name of a connection never seen closing).
        commands_ignored: ``Reconnect`` / ``Resubscribe`` commands (the recording shows what
            happened next).
        malformed_lines: lines of the files that could not be read (filled by :func:`replay`).
        unknown_kinds: lines with an unknown record kind (filled by :func:`replay`).
        foreign_streams: hftbacktest frames of streams the service does not use (filled by
            :func:`replay`).
        truncated_files: files whose compressed stream ended early (filled by :func:`replay`).
        checkpoints: ``checkpoint`` records restored (flight recordings: the pipeline resumes
            from the live service's state).
        checkpoints_bad: ``checkpoint`` records that could not be restored (skipped).
    """

    records: dict[str, int] = field(default_factory=dict)
    snapshots_used: int = 0
    snapshots_skipped: int = 0
    snapshots_bad: int = 0
    orphan_frames: int = 0
    unknown_exchange: int = 0
    connections_opened: int = 0
    connections_closed: int = 0
    commands_ignored: int = 0
    malformed_lines: int = 0
    unknown_kinds: int = 0
    foreign_streams: int = 0
    truncated_files: int = 0
    checkpoints: int = 0
    checkpoints_bad: int = 0


@dataclass(slots=True)
class _Conn:
    parser: FrameParser
    depth: tuple[str, ...]
    trades: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# The pure core
# --------------------------------------------------------------------------------------------


class Replayer:
    """Routes recorded records to the pipelines, as the live feed runner would.

    Args:
        pipelines: ``exchange → pipeline`` (see :func:`build_pipelines`).
        observers: ``exchange → observer`` of the connections, reconnects and snapshots, as
            live reports them (:meth:`Metrics.shell <mmradar.metrics.Metrics.shell>`); an
            exchange without one reports nothing.
    """

    def __init__(
        self,
        pipelines: Mapping[str, FeedPipeline],
        *,
        observers: Mapping[str, ShellObserver] | None = None,
    ) -> None:
        self.pipelines = dict(pipelines)
        given = observers or {}
        null = NullShellObserver()
        self.observers: dict[str, ShellObserver] = {x: given.get(x, null) for x in self.pipelines}
        self.stats = ReplayStats()
        #: ``(exchange, symbol)`` of the books waiting for a REST snapshot.
        self.awaiting: set[tuple[str, str]] = set()
        self._units_known: set[str] = set()  # exchanges whose quantity units are settled
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self._conns: dict[tuple[str, str], _Conn] = {}

    @property
    def open_connections(self) -> list[tuple[str, str]]:
        """``(exchange, connection name)`` of the connections currently open."""
        return list(self._conns)

    def run(self, records: Iterable[Record]) -> None:
        """Feed every record of ``records`` (no pacing)."""
        for record in records:
            self.feed(record)

    def feed(self, record: Record) -> None:
        """Process one record."""
        stats = self.stats
        kind = record.kind
        stats.records[kind] = stats.records.get(kind, 0) + 1
        t = record.t
        if self.first_ns is None or t < self.first_ns:
            self.first_ns = t
        if self.last_ns is None or t > self.last_ns:
            self.last_ns = t
        if kind == "ws":
            if record.exchange not in self._units_known:
                self._check_units(record.exchange)
            conn = self._conns.get((record.exchange, record.conn))
            if conn is None:
                if record.exchange in self.pipelines:
                    stats.orphan_frames += 1
                else:
                    stats.unknown_exchange += 1
                return
            pipeline = self.pipelines[record.exchange]
            commands = pipeline.on_frame(conn.parser, record.data, record.t)
            if commands:
                self._commands(record.exchange, commands)
        elif kind == "rest":
            self._rest(record)
        elif kind == "open":
            self._open(record)
        elif kind == "checkpoint":
            self._checkpoint(record)
        elif kind == "contracts":
            self._contracts(record)
        elif kind == "close":
            key = (record.exchange, record.conn)
            conn = self._conns.get(key)
            if conn is None:
                if record.exchange in self.pipelines:
                    stats.orphan_frames += 1
                else:
                    stats.unknown_exchange += 1
                return
            self._close(key, conn, record.reason)
        # "header": the pipelines were built from the headers upfront

    # -- internals -------------------------------------------------------------------------

    def _contracts(self, record: Record) -> None:
        """The contract sizes live read at start-up (``contracts`` record): the books and the
        trade parsers read quantities in the same units as live did."""
        pipeline = self.pipelines.get(record.exchange)
        if pipeline is None:
            self.stats.unknown_exchange += 1
            return
        sizes = pipeline.venue.parse_contracts(list(pipeline.instruments), record.bodies)
        pipeline.use_contracts(sizes)
        self._units_known.add(record.exchange)

    def _check_units(self, exchange: str) -> None:
        """Refuse frames of a venue that publishes contracts when the recording does not say
        their size (recordings made before ``contracts`` records were written)."""
        pipeline = self.pipelines.get(exchange)
        if pipeline is None:
            return
        symbols = list(pipeline.instruments)
        if pipeline.venue.contract_requests(symbols) and not pipeline.venue.contract_sizes:
            raise ContractError(
                exchange,
                "/".join(symbols),
                "the venue publishes these quantities in contracts and the recording does not "
                "carry their size (no 'contracts' record: recorded by an mmradar that did not "
                "write them); replaying it would read contracts as coins",
            )
        self._units_known.add(exchange)

    def _checkpoint(self, record: Record) -> None:
        """Resume from a flight recording's checkpoint: the feed's state, its connections (with
        their frame parsers) and the books waiting for a REST snapshot, as live had them."""
        exchange = record.exchange
        pipeline = self.pipelines.get(exchange)
        if pipeline is None:
            self.stats.unknown_exchange += 1
            return
        payload = record.data if isinstance(record.data, bytes) else record.data.encode()
        try:
            restored = restore_checkpoint(pipeline, payload)
        except CheckpointError:
            self.stats.checkpoints_bad += 1
            return
        self.stats.checkpoints += 1
        for key in [k for k in self._conns if k[0] == exchange]:
            del self._conns[key]
        for name, depth, trades, parser in restored.connections:
            self._conns[(exchange, name)] = _Conn(
                parser if parser is not None else pipeline.new_parser(), depth, trades
            )
        self.awaiting = {k for k in self.awaiting if k[0] != exchange}
        self.awaiting.update((exchange, s) for s in restored.awaiting)
        self._connection_gauges(exchange)

    def _open(self, record: Record) -> None:
        pipeline = self.pipelines.get(record.exchange)
        if pipeline is None:
            self.stats.unknown_exchange += 1
            return
        key = (record.exchange, record.conn)
        conn = self._conns.get(key)
        if conn is not None:
            if record.cont:
                return  # repeated at the top of a rotated file: the connection continues
            # A new connection under the name of one never seen closing (a new session).
            self._close(key, conn, "")
        self._conns[key] = _Conn(pipeline.new_parser(), record.depth, record.trades)
        self.stats.connections_opened += 1
        self._connection_gauges(record.exchange)

    def _close(self, key: tuple[str, str], conn: _Conn, reason: str) -> None:
        exchange = key[0]
        del self._conns[key]
        self.stats.connections_closed += 1
        pipeline = self.pipelines[exchange]
        symbols = [s for s in conn.depth if s in pipeline.instruments]
        for symbol in symbols:
            self.awaiting.discard((exchange, symbol))
        commands = pipeline.invalidate(symbols, "reconnect")
        if commands:
            self._commands(exchange, commands)
        if reason in RECONNECT_REASONS:
            self.observers[exchange].reconnect(reason)
        self._connection_gauges(exchange)

    def _rest(self, record: Record) -> None:
        stats = self.stats
        exchange, symbol = record.exchange, record.symbol
        pipeline = self.pipelines.get(exchange)
        if pipeline is None:
            stats.unknown_exchange += 1
            return
        key = (exchange, symbol)
        if key not in self.awaiting:
            stats.snapshots_skipped += 1
            return
        self.awaiting.discard(key)
        body = record.data if isinstance(record.data, bytes) else record.data.encode("utf-8")
        try:
            commands = pipeline.on_snapshot(symbol, body, record.t)
        except MalformedMessage:
            stats.snapshots_bad += 1
            pipeline.snapshot_failed(symbol)
            self.observers[exchange].snapshot_request("error")
            return
        stats.snapshots_used += 1
        self.observers[exchange].snapshot_request("ok")
        if commands:
            self._commands(exchange, commands)

    def _commands(self, exchange: str, commands: Sequence[Command]) -> None:
        for command in commands:
            if type(command) is FetchSnapshot:
                self.awaiting.add((exchange, command.symbol))
            else:
                self.stats.commands_ignored += 1

    def _connection_gauges(self, exchange: str) -> None:
        n = sum(1 for x, _ in self._conns if x == exchange)
        self.observers[exchange].connections(n, all_up=n > 0)


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
    return "\n".join(lines)


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
        start = _utc(e.started_ns)
        if e.ended_ns is None:
            span = f"{start} → (still firing)"
        else:
            span = f"{start} → {_utc(e.ended_ns)} ({_duration((e.ended_ns - e.started_ns) / _NS)})"
        note = "; ended by book invalidation" if e.book_invalidated else ""
        peak = "n/a" if math.isnan(e.peak) else f"{e.peak:.3g}"
        lines.append(f"      {e.symptom}/{e.side}  {span}  peak score {peak}{note}")
    return lines


# --------------------------------------------------------------------------------------------
# The shell
# --------------------------------------------------------------------------------------------


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The files to replay: files as given, directories as their recordings sorted by name."""
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(sorted(path.glob("mmradar-*.jsonl*")))
        else:
            out.append(path)
    return out


def probe_feeds(path: str | os.PathLike[str], *, exchange: str | None = None) -> list[RecordedFeed]:
    """The feeds a file records: its header's, or (without one) those its ``open`` records name.

    Args:
        path: the file.
        exchange: for hftbacktest captures, the exchange to present them as.

    Returns:
        The feeds; empty for an empty file.
    """
    found: dict[str, tuple[dict[str, None], bool]] = {}
    with RecordingReader(path, exchange=exchange) as reader:
        for n, record in enumerate(reader):
            if record.kind == "header":
                return list(record.feeds)
            if record.kind == "open":
                symbols, trades = found.get(record.exchange, ({}, False))
                symbols.update(dict.fromkeys(record.depth + record.trades))
                found[record.exchange] = (symbols, trades or bool(record.trades))
            if n >= _PROBE_RECORDS:
                break
    return [RecordedFeed(x, tuple(s), tr) for x, (s, tr) in found.items()]


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
    metrics.register_pipelines(list(pipelines.values()))
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
