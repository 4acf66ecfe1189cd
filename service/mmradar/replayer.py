"""The pure core of ``mmradar replay``: recordings in, the live pipeline driven.

:class:`Replayer` is synchronous and pure: it routes :class:`~mmradar.record.Record` s
to the same :class:`~mmradar.pipeline.FeedPipeline` objects the live feed runner drives, the
way the runner would have handed them over — one frame parser per connection, frames with their
receive timestamps, REST snapshot bodies to the books that asked for one, and a ``reconnect``
invalidation when a connection closed. Commands the pipeline returns are not carried out: the
recording already shows what happened next (a ``FetchSnapshot`` only marks the book as waiting
for the next recorded snapshot of its symbol; ``Reconnect`` and ``Resubscribe`` are ignored).

:func:`probe_feeds` and :func:`build_pipelines` make the pipelines a set of files needs;
:mod:`mmradar.replay` is the asynchronous shell that reads the files through a :class:`Replayer`,
paces them and prints the summary.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .book.sync import FetchSnapshot
from .checkpoint import CheckpointError, restore_checkpoint
from .errors import ContractError, MalformedMessage
from .metrics import RECONNECT_REASONS, Metrics
from .model import RESYNC_REASONS
from .pipeline import BAD_MESSAGE_REASONS, Command, FeedObserver, FeedPipeline
from .record import Record, RecordedFeed, RecordingReader
from .reporting import NullShellObserver, ShellObserver
from .signals.market import MarketParams
from .signals.params import SignalSettings
from .venues import VENUES, make_venue
from .venues.base import FrameParser

__all__ = [
    "CountingObserver",
    "ReplayStats",
    "Replayer",
    "build_pipelines",
    "expand_paths",
    "merge_feeds",
    "probe_feeds",
]

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
        malformed_lines: lines of the files that could not be read (filled by
            :func:`~mmradar.replay.replay`).
        unknown_kinds: lines with an unknown record kind (filled by :func:`~mmradar.replay.replay`).
        foreign_streams: hftbacktest frames of streams the service does not use (filled by
            :func:`~mmradar.replay.replay`).
        truncated_files: files whose compressed stream ended early (filled by
            :func:`~mmradar.replay.replay`).
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
# Recordings in
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
