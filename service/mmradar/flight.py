"""The flight recorder: the raw frames behind every alert, replayable with ``mmradar replay``.

Every feed keeps a bounded ring of its recent raw traffic (websocket frames, REST snapshot
bodies, connection opens and closes; :class:`FlightRecorder` implements the feed runner's
:class:`~mmradar.feed.FrameRecorder`). When a symptom episode starts, or a book is resynced
after an integrity failure (``gap``, ``checksum``, ``crossed``, ``venue_reset``), the frames from
before the event and for ``post_seconds`` after it are written to a file in the
:mod:`mmradar.record` format. Its name goes into the episode's log line, the webhook payload
(``recording``) and ``mmradar_flight_recordings_total{reason}``.

A ring of a couple of minutes cannot reproduce an episode by itself: the detectors' baselines
learn for tens of minutes. So the ring is a **checkpoint plus a journal**: every
``checkpoint_seconds`` (or when the ring's newest segment reaches half its byte bound) the
recorder takes a checkpoint of the feed's pipeline state — every instrument's book,
synchroniser, market state and signal engine, and every connection's frame parser — and starts
a new segment of frames after it. A recording starts with the checkpoint of the oldest segment
kept (at least ``pre_seconds`` before the event when the ring holds that much) followed by every
frame since, so ``mmradar replay FILE`` restores the checkpoint and then drives the very same
pipeline through the very same frames: the same episode start, the same book at the trigger.

Checkpoint format (record kind ``checkpoint``, format version 2 of :mod:`mmradar.record`): a
pickle (protocol 5) of the pure core's objects. The feed's venue object and the callbacks the
shell wires into the core (the resync observer, the episode sink) are not in it: they are
references resolved to the replaying pipeline's own. Loading it accepts only the classes of the
pure core (:data:`_ALLOWED_MODULES`) and a few builtins, never arbitrary callables. Classes
compiled with mypyc are saved through their ``__mypyc_attrs__`` (native classes do not pickle
by themselves) and restored into blank instances: those classes are marked
``allow_interpreted_subclasses``, the one mypyc setting under which ``cls.__new__(cls)`` does not
run ``__init__`` while calling the class still does. A venue object's own state is not in the
checkpoint: its contract sizes (OKX derivatives) come from the ``contracts`` record every
recording of such a feed carries after its header.

Bounds (``[flight_recorder]``, docs/reliability.md): the ring keeps at most
``ring_mib_per_instrument`` × the feed's instruments bytes of frames (the oldest segment is
dropped first; a frame may carry several instruments, so the ring is per feed); a recording
holds at most twice that; at most :data:`MAX_PENDING_WRITES` recordings wait to be written
(more are counted ``skipped``); the directory keeps at most ``max_files`` files and
``max_total_mib`` MiB of them, the oldest deleted first. Files are encoded, compressed and
written on a worker thread (``asyncio.to_thread``), never on the event loop; the only work on
the loop is the checkpoint (a pickle of the feed's state: a few milliseconds) and appending
references to frames.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import functools
import gzip
import io
import logging
import os
import pickle
import re
import tempfile
import types
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import orjson

from .clock import ShellClock, SystemClock
from .config import FlightRecorderSettings
from .errors import CheckpointError
from .pipeline import FeedPipeline
from .record import FORMAT_VERSION, contracts_obj, open_obj
from .venues.base import ConnectionPlan, FrameParser, SnapshotSource

__all__ = [
    "CHECKPOINT_VERSION",
    "MAX_PENDING_WRITES",
    "RECORDED_RESYNC_REASONS",
    "CheckpointError",
    "FlightRecorder",
    "Restored",
    "flight_directory",
    "restore_checkpoint",
    "take_checkpoint",
]

log = logging.getLogger(__name__)

#: Version of the checkpoint payload (inside a ``checkpoint`` record). 2: the flow state bins
#: signed taker notional (``FlowState.signed_notional_at_tick``).
CHECKPOINT_VERSION: Final = 2
#: Resync reasons that trigger a recording (a reconnect or a stale book does not).
RECORDED_RESYNC_REASONS: Final = frozenset({"gap", "checksum", "crossed", "venue_reset"})
#: Recordings waiting for the writer beyond which a trigger is counted ``skipped``.
MAX_PENDING_WRITES: Final = 4
#: How often the recorder closes recordings whose feed went silent (seconds).
_TICK_S: Final = 1.0
_NS: Final = 1_000_000_000
_MIB: Final = 1024 * 1024
_SLUG = re.compile(r"[^A-Za-z0-9]+")

#: Modules whose classes a checkpoint may contain: the pure core only (no I/O in their code).
_ALLOWED_MODULES: Final = (
    "mmradar.book.",
    "mmradar.signals.",
    "mmradar.venues.",
    "mmradar.model",
    "mmradar.pipeline",
    "mmradar.histograms",
    "mmradar.contracts",
    "mmradar.instruments",
    "mmradar.flight",
)
_ALLOWED_BUILTINS: Final = {
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytearray"),
    ("builtins", "complex"),
    ("builtins", "slice"),
    ("builtins", "object"),
    ("collections", "deque"),
    ("collections", "OrderedDict"),
    ("collections", "Counter"),
    ("copyreg", "_reconstructor"),
    ("array", "array"),
    ("array", "_array_reconstructor"),
    ("decimal", "Decimal"),
}


def flight_directory(settings: FlightRecorderSettings) -> Path:
    """The directory recordings go to (``directory``, or ``<temp dir>/mmradar-flight``)."""
    if settings.directory:
        return Path(settings.directory)
    return Path(tempfile.gettempdir()) / "mmradar-flight"


# --------------------------------------------------------------------------------------------
# Checkpoints (pure: no I/O, no clock)
# --------------------------------------------------------------------------------------------


def _new(cls: Any) -> Any:
    return cls.__new__(cls)


def _set_state(obj: object, state: Mapping[str, Any]) -> None:
    for name, value in state.items():
        object.__setattr__(obj, name, value)  # frozen dataclasses too


_CALLABLES: Final = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    functools.partial,
)


#: The references of the checkpoint being restored (:func:`_ref` reads them).
_RESTORING: contextvars.ContextVar[Mapping[tuple[str, ...], object]] = contextvars.ContextVar(
    "mmradar_flight_restoring"
)


def _ref(*key: str) -> object:
    """The restoring pipeline's own object for a reference a checkpoint holds (see _refs)."""
    refs = _RESTORING.get()
    try:
        return refs[key]
    except KeyError:
        raise CheckpointError(f"the checkpoint refers to {key!r}, unknown here") from None


class _Pickler(pickle.Pickler):
    """Pickles the pure core: references for the venue and the shell's callbacks, mypyc native
    classes through their attributes (only objects that are not plain data get here)."""

    def __init__(self, file: io.BytesIO, refs: Mapping[int, tuple[str, ...]]) -> None:
        super().__init__(file, protocol=5)
        self._refs = refs

    def reducer_override(self, obj: Any) -> Any:
        ref = self._refs.get(id(obj))
        if ref is not None:
            return (_ref, ref)
        if isinstance(obj, _CALLABLES) and obj not in _OWN:
            raise CheckpointError(f"the pipeline state refers to {obj!r}, which has no checkpoint")
        cls = type(obj)
        attrs = getattr(cls, "__mypyc_attrs__", None)
        if attrs is None or isinstance(obj, type):
            return NotImplemented
        # A mypyc native class: saved as its attributes, restored without __init__.
        state = {a: getattr(obj, a) for a in attrs if a != "__dict__" and hasattr(obj, a)}
        return (_new, (cls,), state, None, None, _set_state)


_OWN: Final = (_ref, _new, _set_state)


class _Unpickler(pickle.Unpickler):
    """Loads only the pure core's classes and a few builtins (never arbitrary callables)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_BUILTINS:
            return super().find_class(module, name)
        if module.startswith(_ALLOWED_MODULES):
            obj = super().find_class(module, name)
            if isinstance(obj, type) or obj in _OWN:
                return obj
        raise CheckpointError(f"a checkpoint may not contain {module}.{name}")


def _refs(pipeline: FeedPipeline) -> dict[tuple[str, ...], object]:
    """What a checkpoint refers to instead of containing: the venue and the callbacks the shell
    wires into each instrument (resync observer, episode sink, cross-venue tick)."""
    refs: dict[tuple[str, ...], object] = {("venue",): pipeline.venue}
    for symbol, inst in pipeline.instruments.items():
        refs[("on_resync", symbol)] = inst.sync._on_resync
        refs[("on_episode", symbol)] = inst.engine.on_episode
        refs[("on_tick", symbol)] = inst.engine.on_tick
    return refs


def take_checkpoint(
    pipeline: FeedPipeline,
    connections: Sequence[tuple[ConnectionPlan, FrameParser | None]],
) -> bytes:
    """The state of ``pipeline`` now, as a checkpoint payload.

    Args:
        pipeline: the feed's pipeline.
        connections: every open connection with its frame parser (None: no frame read on it
            yet; the replay makes a fresh one, as live will).

    Raises:
        CheckpointError: some state cannot be saved.
    """
    instruments = {
        s: (inst.book, inst.sync, inst.market, inst.engine, inst.last_depth_recv_ns)
        for s, inst in pipeline.instruments.items()
    }
    state = {
        "version": CHECKPOINT_VERSION,
        "exchange": pipeline.venue.name,
        "instruments": instruments,
        "connections": [
            (plan.name, plan.depth_symbols, plan.trade_symbols, plan.url, parser)
            for plan, parser in connections
        ],
        "carriers": dict(pipeline._carriers),
    }
    refs = {id(obj): key for key, obj in _refs(pipeline).items() if obj is not None}
    out = io.BytesIO()
    try:
        _Pickler(out, refs).dump(state)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        raise CheckpointError(f"{pipeline.venue.name}: cannot checkpoint: {exc!r}") from exc
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class Restored:
    """What :func:`restore_checkpoint` put back.

    Attributes:
        connections: ``(name, depth symbols, trade symbols, parser)`` of every connection that
            was open (parser None: make a fresh one).
        awaiting: symbols whose book was waiting for a REST snapshot.
    """

    connections: tuple[tuple[str, tuple[str, ...], tuple[str, ...], FrameParser | None], ...]
    awaiting: frozenset[str]


def restore_checkpoint(pipeline: FeedPipeline, payload: bytes) -> Restored:
    """Put the state of a checkpoint into ``pipeline`` (same exchange, any symbols).

    Instruments of the checkpoint the pipeline does not have are left out; the pipeline's
    own venue and callbacks stay wired in.

    Raises:
        CheckpointError: the payload is not a checkpoint this mmradar can restore.
    """
    token = _RESTORING.set(_refs(pipeline))
    try:
        state = _Unpickler(io.BytesIO(payload)).load()
    except CheckpointError:
        raise
    except Exception as exc:  # any corruption of the payload
        raise CheckpointError(f"unreadable checkpoint: {exc!r}") from exc
    finally:
        _RESTORING.reset(token)
    if type(state) is not dict or state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError("not a checkpoint of this version")
    if state.get("exchange") != pipeline.venue.name:
        raise CheckpointError(f"a checkpoint of {state.get('exchange')!r}")
    awaiting: set[str] = set()
    for symbol, (book, sync, market, signals, recv_ns) in state["instruments"].items():
        inst = pipeline.instruments.get(symbol)
        if inst is None:
            continue
        inst.book, inst.sync, inst.market, inst.engine = book, sync, market, signals
        inst.last_depth_recv_ns = recv_ns
        if pipeline.venue.snapshot_source is SnapshotSource.REST and getattr(
            sync, "_awaiting_snapshot", False
        ):
            awaiting.add(symbol)
    pipeline._carriers = {s: p for s, p in state["carriers"].items() if s in pipeline.instruments}
    connections = tuple(
        (str(name), tuple(depth), tuple(trades), parser)
        for name, depth, trades, _url, parser in state["connections"]
    )
    return Restored(connections, frozenset(awaiting))


# --------------------------------------------------------------------------------------------
# Rings and recordings (the recorder runs on the event loop; files on a worker thread)
# --------------------------------------------------------------------------------------------

# A ring entry: (kind, receive time ns, connection or symbol, payload, size in bytes)
#   ("ws", t, conn, raw) · ("rest", t, symbol, body) · ("open", t, plan) · ("close", t, conn, r)
_Entry = tuple[str, int, Any, Any]


@dataclass(slots=True)
class _Segment:
    start_ns: int
    checkpoint: bytes | None  # None: the feed's start (a fresh pipeline)
    open_plans: tuple[ConnectionPlan, ...]  # connections open when the segment started
    entries: list[_Entry] = field(default_factory=list)
    size: int = 0  # the checkpoint and the entries (the ring's bound)
    journal: int = 0  # the entries only (when to start the next segment)


@dataclass(slots=True)
class _Recording:
    """A recording in progress: its file is written by the worker as it goes (in chunks)."""

    path: Path
    reason: str
    exchange: str
    chunk: list[_Entry]  # entries not yet handed to the writer
    size: int
    end_ns: int
    last_ns: int
    count: int


# Writer jobs, carried out in order on a worker thread:
#   ("open", recording, header, contracts record or None, checkpoint, open plans, entries)
#   · ("append", recording, entries)
#   · ("close", recording)
_Job = tuple[Any, ...]
#: Entries handed to the writer at once while a recording goes on.
_CHUNK: Final = 1024
#: Writer jobs waiting beyond which recordings in progress are closed early (a slow disk).
_MAX_QUEUED_JOBS: Final = 64


class _Feed:
    """One feed's ring, wiring and recording in progress."""

    def __init__(self, exchange: str, symbols: Sequence[str], trades: bool) -> None:
        self.exchange = exchange
        self.symbols = tuple(symbols)
        self.trades = trades
        self.pipeline: FeedPipeline | None = None
        self.parsers: Mapping[str, FrameParser] = {}
        self.open: dict[str, ConnectionPlan] = {}
        self.fresh: set[str] = set()  # open connections no frame was read on yet
        self.segments: deque[_Segment] = deque()
        self.size = 0
        self.recording: _Recording | None = None
        self.disabled = False  # a checkpoint failed: no ring for this feed
        self.contracts: dict[str, Any] | None = None  # the feed's contracts record, if any


class FlightRecorder:
    """Keeps every feed's ring and writes recordings when triggered.

    Args:
        settings: the ``[flight_recorder]`` table.
        feeds: ``(exchange, symbols, trades)`` of every feed.
        version: the mmradar version, for the recordings' headers.
        on_recording: called with the reason of every recording started (``episode``,
            ``resync``) or trigger skipped (``skipped``): ``mmradar_flight_recordings_total``.
        clock: the wall clock for triggers that arrive with no frame, and the flush tick's
            waits (:class:`~mmradar.clock.SystemClock` by default).
    """

    def __init__(
        self,
        settings: FlightRecorderSettings,
        feeds: Iterable[tuple[str, Sequence[str], bool]],
        *,
        version: str,
        on_recording: Callable[[str], None] = lambda reason: None,
        clock: ShellClock | None = None,
    ) -> None:
        self.settings = settings
        self.directory = flight_directory(settings)
        self.version = version
        self._on_recording = on_recording
        self._clock: ShellClock = clock or SystemClock()
        self._feeds = {x: _Feed(x, s, tr) for x, s, tr in feeds}
        self._pre_ns = int(settings.pre_seconds * _NS)
        self._post_ns = int(settings.post_seconds * _NS)
        self._interval_ns = int(settings.checkpoint_seconds * _NS)
        self._queue: asyncio.Queue[_Job] | None = None
        self._pending = 0
        self._names: set[str] = set()
        #: paths of every recording written (or being written), oldest first
        self.written: list[Path] = []
        self._disabled = not settings.enabled

    # -- wiring ----------------------------------------------------------------------------

    def attach(self, pipeline: FeedPipeline, parsers: Mapping[str, FrameParser]) -> None:
        """The feed runner's pipeline and its ``{connection name: frame parser}`` (live map)."""
        feed = self._feeds.get(pipeline.venue.name)
        if feed is None or self._disabled:
            return
        feed.pipeline = pipeline
        feed.parsers = parsers
        # A build whose core cannot be checkpointed (mypyc native classes restore only when
        # they allow interpreted subclasses) records nothing rather than unreplayable files.
        try:
            probe = FeedPipeline(type(pipeline.venue)(), list(feed.symbols))
            restore_checkpoint(probe, take_checkpoint(pipeline, []))
        except (CheckpointError, TypeError) as exc:
            log.warning("flight recorder off for %s: checkpoints do not restore here (%s)",
                        feed.exchange, exc)  # fmt: skip
            feed.disabled = True

    def _cap(self, feed: _Feed) -> int:
        return int(self.settings.ring_mib_per_instrument * _MIB * max(1, len(feed.symbols)))

    # -- FrameRecorder ---------------------------------------------------------------------

    def opened(self, exchange: str, plan: ConnectionPlan, ts_ns: int) -> None:
        feed = self._feeds.get(exchange)
        if feed is None or self._disabled or feed.disabled:
            return
        feed.open[plan.name] = plan
        feed.fresh.add(plan.name)
        self._append(feed, ("open", ts_ns, plan, None), 256)

    def frame(self, exchange: str, conn_name: str, ts_ns: int, raw: bytes | str) -> None:
        feed = self._feeds.get(exchange)
        if feed is None or self._disabled or feed.disabled:
            return
        feed.fresh.discard(conn_name)
        self._append(feed, ("ws", ts_ns, conn_name, raw), len(raw) + 64)
        # After the pipeline took the frame: a checkpoint now is the state after it.
        last = feed.segments[-1] if feed.segments else None
        if last is None or (
            ts_ns - last.start_ns >= self._interval_ns or last.journal >= self._cap(feed) // 2
        ):
            self._new_segment(feed, ts_ns)

    def closed(self, exchange: str, conn_name: str, ts_ns: int, reason: str) -> None:
        feed = self._feeds.get(exchange)
        if feed is None or self._disabled or feed.disabled:
            return
        feed.open.pop(conn_name, None)
        feed.fresh.discard(conn_name)
        self._append(feed, ("close", ts_ns, conn_name, reason), 128)

    def snapshot(self, exchange: str, symbol: str, ts_ns: int, body: bytes) -> None:
        feed = self._feeds.get(exchange)
        if feed is None or self._disabled or feed.disabled:
            return
        self._append(feed, ("rest", ts_ns, symbol, body), len(body) + 64)

    def contracts(self, exchange: str, ts_ns: int, bodies: Sequence[bytes]) -> None:
        """Keep the feed's instrument-metadata answers: every recording repeats them."""
        feed = self._feeds.get(exchange)
        if feed is not None:
            feed.contracts = contracts_obj(exchange, bodies, ts_ns)

    # -- triggers --------------------------------------------------------------------------

    def trigger(
        self,
        exchange: str,
        reason: str,
        *,
        symbol: str,
        at_ns: int,
        detail: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Record the feed's ring and the next ``post_seconds``; returns the file name.

        A trigger while the feed's recording is in progress extends it (its file holds the
        frames before and after this event too, up to its size bound) and returns its name.

        Args:
            exchange: the feed.
            reason: ``episode`` or ``resync``.
            symbol: the instrument concerned.
            at_ns: the event's time (venue event time of an episode start), for the header.
            detail: more about the event, for the header (JSON values).

        Returns:
            The recording's file name, or None (recorder disabled, no ring yet, or skipped).
        """
        feed = self._feeds.get(exchange)
        if feed is None or self._disabled or feed.disabled or not feed.segments:
            return None
        now = self._now(feed)
        active = feed.recording
        if active is not None:
            # The file already holds the frames before this event; it now also runs on for
            # post_seconds after it (within its size bound).
            active.end_ns = max(active.end_ns, now + self._post_ns)
            return active.path.name
        if self._pending >= MAX_PENDING_WRITES or self._queue is None:
            self._on_recording("skipped")
            return None
        first = feed.segments[0]
        path = self._path(feed, reason, now)
        entries = [e for seg in feed.segments for e in seg.entries]
        header = {
            "k": "header",
            "t": first.start_ns,
            "version": FORMAT_VERSION,
            "feeds": [
                {"exchange": feed.exchange, "symbols": list(feed.symbols), "trades": feed.trades}
            ],
            "mmradar": self.version,
            "flight": {
                "reason": reason,
                "exchange": exchange,
                "symbol": symbol,
                "at_ns": at_ns,
                "recv_ns": now,
                "pre_seconds": self.settings.pre_seconds,
                "post_seconds": self.settings.post_seconds,
                **(detail or {}),
            },
        }
        rec = _Recording(path, reason, exchange, [], feed.size, now + self._post_ns, now, 0)
        feed.recording = rec
        self._queue.put_nowait(
            ("open", rec, header, feed.contracts, first.checkpoint, first.open_plans, entries)
        )
        rec.count = len(entries)
        self._pending += 1
        self._on_recording(reason)
        if self._post_ns == 0:
            self._finish(feed)
        return path.name

    # -- the shell -------------------------------------------------------------------------

    async def run(self) -> None:
        """Write recordings as they go, until cancelled (then finish what is in progress)."""
        if self._disabled:
            await asyncio.Event().wait()
        self._queue = asyncio.Queue()
        try:
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            log.warning(
                "flight recorder disabled: cannot create %s (%s)", self.directory, exc.strerror
            )
            self._disabled = True
            await asyncio.Event().wait()
        ticker = asyncio.create_task(self._tick())
        writer = _Writer(
            self.directory,
            self.settings.max_files,
            int(self.settings.max_total_mib * _MIB),
        )
        try:
            while True:
                await self._carry_out(writer, await self._queue.get())
        finally:
            ticker.cancel()
            # Shutting down: what is recorded so far is written, off the loop.
            for feed in self._feeds.values():
                if feed.recording is not None:
                    self._finish(feed)
            while not self._queue.empty():
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._carry_out(writer, self._queue.get_nowait()))

    async def _carry_out(self, writer: _Writer, job: _Job) -> None:
        rec: _Recording = job[1]
        try:
            done = await asyncio.to_thread(writer.do, job)
        except OSError as exc:
            log.warning("flight recording %s not written: %s", rec.path, exc)
            writer.discard(rec.path)
            if job[0] == "close":
                self._pending -= 1
            return
        if job[0] != "close":
            return
        self._pending -= 1
        if done is None:
            return  # its file failed earlier (logged then)
        size, removed = done
        self.written = [p for p in self.written if p not in removed]
        self.written.append(rec.path)
        log.info(
            "flight recording %s written (%s, %.1f MiB, %d records)",
            rec.path, rec.reason, size / _MIB, rec.count,
        )  # fmt: skip

    async def _tick(self) -> None:
        while True:
            await self._clock.sleep(_TICK_S)
            now = self._clock.wall_ns()
            for feed in self._feeds.values():
                rec = feed.recording
                if rec is None:
                    continue
                if now >= rec.end_ns and now - rec.last_ns >= _TICK_S * _NS:
                    self._finish(feed)  # the feed went silent after the event
                else:
                    self._flush(rec)

    # -- internals -------------------------------------------------------------------------

    def _now(self, feed: _Feed) -> int:
        last = feed.segments[-1] if feed.segments else None
        if last is not None and last.entries:
            return max(last.entries[-1][1], last.start_ns)
        return self._clock.wall_ns()

    def _path(self, feed: _Feed, reason: str, now_ns: int) -> Path:
        stamp = datetime.fromtimestamp(now_ns / _NS, tz=UTC).strftime("%Y%m%dT%H%M%S")
        ms = (now_ns // 1_000_000) % 1000
        stem = f"flight-{stamp}.{ms:03d}Z-{_SLUG.sub('_', feed.exchange)}-{reason}"
        name, n = f"{stem}.jsonl.gz", 0
        while name in self._names:
            n += 1
            name = f"{stem}-{n}.jsonl.gz"
        self._names.add(name)
        return self.directory / name

    def _append(self, feed: _Feed, entry: _Entry, size: int) -> None:
        if feed.disabled:
            return
        if not feed.segments:  # the feed's start: a fresh pipeline needs no checkpoint
            feed.segments.append(_Segment(entry[1], None, ()))
        seg = feed.segments[-1]
        seg.entries.append(entry)
        seg.size += size
        seg.journal += size
        feed.size += size
        rec = feed.recording
        if rec is not None:
            rec.chunk.append(entry)
            rec.count += 1
            rec.size += size
            rec.last_ns = entry[1]
            if entry[1] >= rec.end_ns or rec.size >= 2 * self._cap(feed):
                self._finish(feed)
            elif len(rec.chunk) >= _CHUNK:
                self._flush(rec)
        self._trim(feed, entry[1])

    def _new_segment(self, feed: _Feed, ts_ns: int) -> None:
        pipeline = feed.pipeline
        if pipeline is None:
            return
        connections = [(plan, None if name in feed.fresh else feed.parsers.get(name))
                       for name, plan in feed.open.items()]  # fmt: skip
        try:
            payload = take_checkpoint(pipeline, connections)
        except CheckpointError as exc:
            # Without checkpoints the ring could not be bounded and a recording could not be
            # replayed: this feed is not recorded from now on (said once).
            log.warning("flight recorder off for %s: %s", feed.exchange, exc)
            feed.disabled = True
            feed.segments.clear()
            feed.size = 0
            return
        feed.segments.append(_Segment(ts_ns, payload, tuple(feed.open.values())))
        feed.size += len(payload)
        feed.segments[-1].size += len(payload)
        self._trim(feed, ts_ns)

    def _trim(self, feed: _Feed, now_ns: int) -> None:
        """Drop the oldest segment while the next one alone covers ``pre_seconds``, or while
        the ring is over its byte bound (always keeping the newest)."""
        segments = feed.segments
        cap = self._cap(feed)
        while len(segments) > 1 and (
            segments[1].start_ns <= now_ns - self._pre_ns or feed.size > cap
        ):
            feed.size -= segments.popleft().size

    def _flush(self, rec: _Recording) -> None:
        """Hand the entries recorded since the last flush to the writer."""
        if rec.chunk:
            assert self._queue is not None
            self._queue.put_nowait(("append", rec, rec.chunk))
            rec.chunk = []
            if self._queue.qsize() > _MAX_QUEUED_JOBS:  # the disk is behind: stop here
                for feed in self._feeds.values():
                    if feed.recording is not None:
                        self._finish(feed)

    def _finish(self, feed: _Feed) -> None:
        rec, feed.recording = feed.recording, None
        if rec is None:
            return
        assert self._queue is not None
        if rec.chunk:
            self._queue.put_nowait(("append", rec, rec.chunk))
            rec.chunk = []
        self._queue.put_nowait(("close", rec))


# -- files (worker thread) ---------------------------------------------------------------------


class _Writer:
    """Writes recordings on a worker thread, one job at a time (jobs of one file in order)."""

    def __init__(self, directory: Path, max_files: int, max_bytes: int) -> None:
        self.directory = directory
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._open: dict[Path, tuple[IO[bytes], gzip.GzipFile, IO[bytes]]] = {}

    def do(self, job: _Job) -> tuple[int, set[Path]] | None:
        kind, rec = job[0], job[1]
        if kind == "open":
            _, _, header, contracts, checkpoint, open_plans, entries = job
            raw = open(rec.path.with_name(rec.path.name + ".part"), "wb")  # noqa: SIM115
            gz = gzip.GzipFile(
                filename=rec.path.name, fileobj=raw, mode="wb", compresslevel=1, mtime=0
            )
            out: IO[bytes] = io.BufferedWriter(gz, buffer_size=256 * 1024)
            self._open[rec.path] = (raw, gz, out)
            nl = orjson.OPT_APPEND_NEWLINE
            out.write(orjson.dumps(header, option=nl))
            if contracts is not None:
                out.write(orjson.dumps({**contracts, "t": header["t"]}, option=nl))
            if checkpoint is not None:
                t0 = header["t"]
                record = {
                    "k": "checkpoint",
                    "t": t0,
                    "x": rec.exchange,
                    "d": base64.b64encode(checkpoint).decode("ascii"),
                    "b64": True,
                }
                out.write(orjson.dumps(record, option=nl))
                for plan in open_plans:
                    out.write(orjson.dumps(open_obj(rec.exchange, plan, t0, cont=True), option=nl))
            _write_entries(out, rec.exchange, entries)
            return None
        handles = self._open.get(rec.path)
        if handles is None:
            return None
        handle, gz, buffered = handles
        if kind == "append":
            _write_entries(buffered, rec.exchange, job[2])
            return None
        del self._open[rec.path]
        try:
            buffered.flush()
            gz.close()
        finally:
            handle.close()
        os.replace(rec.path.with_name(rec.path.name + ".part"), rec.path)
        size = rec.path.stat().st_size
        return size, _prune(self.directory, self.max_files, self.max_bytes, rec.path)

    def discard(self, path: Path) -> None:
        handles = self._open.pop(path, None)
        if handles is not None:
            with contextlib.suppress(OSError):
                handles[0].close()
            with contextlib.suppress(OSError):
                path.with_name(path.name + ".part").unlink()


def _write_entries(out: IO[bytes], exchange: str, entries: Iterable[_Entry]) -> None:
    dumps = orjson.dumps
    nl = orjson.OPT_APPEND_NEWLINE
    for kind, t, key, payload in entries:
        if kind == "ws":
            obj: dict[str, Any] = {"k": "ws", "t": t, "x": exchange, "c": key}
            if isinstance(payload, str):
                obj["d"] = payload
            else:
                obj["d"] = base64.b64encode(payload).decode("ascii")
                obj["b64"] = True
        elif kind == "rest":
            obj = {"k": "rest", "t": t, "x": exchange, "s": key}
            try:
                obj["d"] = payload.decode("utf-8")
            except UnicodeDecodeError:
                obj["d"] = base64.b64encode(payload).decode("ascii")
                obj["b64"] = True
        elif kind == "open":
            obj = open_obj(exchange, key, t, cont=False)
        else:
            obj = {"k": "close", "t": t, "x": exchange, "c": key, "r": payload}
        out.write(dumps(obj, option=nl))


def _prune(directory: Path, max_files: int, max_bytes: int, keep: Path) -> set[Path]:
    """Delete the oldest recordings beyond ``max_files`` or ``max_bytes`` (never ``keep``)."""
    files = []
    for path in directory.glob("flight-*.jsonl.gz"):
        with contextlib.suppress(OSError):
            st = path.stat()
            files.append((st.st_mtime_ns, path.name, path, st.st_size))
    files.sort()
    total = sum(f[3] for f in files)
    removed: set[Path] = set()
    for _, _, path, size in files:
        if len(files) - len(removed) <= max_files and total <= max_bytes:
            break
        if path == keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.add(path)
            total -= size
    return removed


# -- wiring helpers (the composition root, app.py) ----------------------------------------------


class TeeRecorder:
    """A :class:`~mmradar.feed.FrameRecorder` handing every call to each of ``recorders``."""

    def __init__(self, *recorders: Any) -> None:
        self._recorders = recorders

    def opened(self, exchange: str, plan: ConnectionPlan, ts_ns: int) -> None:
        for r in self._recorders:
            r.opened(exchange, plan, ts_ns)

    def frame(self, exchange: str, conn_name: str, ts_ns: int, raw: bytes | str) -> None:
        for r in self._recorders:
            r.frame(exchange, conn_name, ts_ns, raw)

    def closed(self, exchange: str, conn_name: str, ts_ns: int, reason: str) -> None:
        for r in self._recorders:
            r.closed(exchange, conn_name, ts_ns, reason)

    def snapshot(self, exchange: str, symbol: str, ts_ns: int, body: bytes) -> None:
        for r in self._recorders:
            r.snapshot(exchange, symbol, ts_ns, body)

    def contracts(self, exchange: str, ts_ns: int, bodies: Sequence[bytes]) -> None:
        for r in self._recorders:
            r.contracts(exchange, ts_ns, bodies)


class ResyncTap:
    """A pipeline observer (:class:`~mmradar.pipeline.FeedObserver`) that passes everything on
    and triggers a recording on every integrity resync (:data:`RECORDED_RESYNC_REASONS`).

    Args:
        inner: the observer it wraps.
        recorder: the flight recorder.
        pipeline: the feed's pipeline (for the book's last event time).
    """

    def __init__(self, inner: Any, recorder: FlightRecorder, pipeline: FeedPipeline) -> None:
        self._inner = inner
        self._recorder = recorder
        self._pipeline = pipeline
        self.bad_message = inner.bad_message
        #: symbol → the file of its last resync recording (for the resync log line)
        self.last: dict[str, str] = {}

    def resync(self, symbol: str, reason: str) -> None:
        self._inner.resync(symbol, reason)
        if reason in RECORDED_RESYNC_REASONS:
            inst = self._pipeline.instruments.get(symbol)
            at = inst.sync.last_event_ns if inst is not None else 0
            name = self._recorder.trigger(
                self._pipeline.venue.name, "resync", symbol=symbol, at_ns=at,
                detail={"resync_reason": reason},
            )  # fmt: skip
            if name is not None:
                self.last[symbol] = name
                log.info(
                    "%s %s: resync (%s) recorded in %s",
                    self._pipeline.venue.name, symbol, reason, name,
                )  # fmt: skip
