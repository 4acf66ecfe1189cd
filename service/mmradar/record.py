"""Recordings of raw feed traffic: the file format, a writer and a reader (no event loop).

``mmradar record`` writes every websocket frame and REST snapshot body it receives, with its
local receive time, so that ``mmradar replay`` can later drive the very same pipeline
(:class:`mmradar.pipeline.FeedPipeline`) from the file. Detectors run on venue event time, so a
replay at any speed gives what live gave.

Format (version 2)
------------------
gzip-compressed UTF-8 JSON lines, one record per line. Every record has ``"t"`` (local receive
time, integer ns since the Unix epoch) and ``"k"`` (its kind)::

    {"k":"header","t":..,"version":1,"feeds":[{"exchange":"binance","symbols":["BTCUSDT"],
     "trades":true}],"mmradar":"0.1.0"}                                    first line of a file
    {"k":"open","t":..,"x":"binance","c":"binance/#0","depth":["BTCUSDT"],
     "trades":["BTCUSDT"],"url":"wss://…"}                          a websocket connection opened
    {"k":"ws","t":..,"x":"binance","c":"binance/#0","d":"<frame text>"}    one received frame
    {"k":"close","t":..,"x":"binance","c":"binance/#0","r":"closed"}       the connection closed
    {"k":"rest","t":..,"x":"binance","s":"BTCUSDT","d":"<body text>"}      a REST snapshot body
    {"k":"checkpoint","t":..,"x":"binance","d":"<base64>","b64":true}     the feed's state (v2)
    {"k":"contracts","t":..,"x":"okx","d":["<body text>",…]}       instrument metadata (v2)

* ``x`` is the config ``exchange``, ``c`` the connection's :attr:`ConnectionPlan.name`, ``depth``
  / ``trades`` the symbols whose depth / trade streams the connection carries.
* A binary frame (or a REST body that is not UTF-8) is stored base64-encoded with ``"b64":true``.
* Files are rotated every ``rotate_bytes`` of uncompressed data. A new file starts with its own
  header and repeats an ``open`` record (marked ``"cont":true``) for every connection still open,
  so each file replays on its own; replayed in sequence, the repeated opens are no-ops.
* A ``close`` record means the connection really went down (the replayer invalidates its
  books with reason ``reconnect``); its ``r`` is the feed runner's reconnect reason (``error``,
  ``closed``, ``stale``, ``venue_closing``, ``gap``), counted in ``mmradar_feed_reconnects_total``
  on replay. A recorder that stops writes no ``close`` records: the end of a recording is not a
  disconnect (an ``open`` without ``cont`` reusing the name of a connection never seen closing,
  e.g. in the next session's file, counts as one).
* A file cut short by a crash is readable up to its last flush (readers count the truncation
  and stop there).
* ``checkpoint`` (version 2; written by the flight recorder, :mod:`mmradar.flight`): the state
  of the feed's pipeline (books, synchronisers, signal engines, frame parsers) at ``t``; the
  records after it continue from that state. It comes right after the header, followed by an
  ``open`` (``"cont":true``) for every connection open at that time. A flight recording's header
  also has a ``"flight"`` object: what triggered it (reason, exchange, symbol, event time).
* ``contracts``: the venue's instrument-metadata answers the service read its contract sizes
  from at start-up (OKX derivatives publish sizes in contracts; :mod:`mmradar.contracts`), so
  that a replay reads quantities in the same units as live did. Written once per exchange
  before its first connection, and repeated after the header of every later file (rotated or
  flight recording). A replay refuses a feed whose venue needs contract sizes and whose
  recording has none.

:func:`open_recording` also reads hftbacktest collector captures (``<recv_ns> <json>`` lines,
gzip or plain, e.g. ``service/mmradar/data/hftbacktest_*.gz``), presenting them as the same records.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import io
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, NamedTuple, Self

import orjson

from .clock import Clock, SystemClock
from .errors import RecordingError
from .hftbacktest import decompressed, parse_line, split_line, stream_data
from .venues.base import ConnectionPlan

__all__ = [
    "DEFAULT_FLUSH_INTERVAL_S",
    "DEFAULT_ROTATE_BYTES",
    "FORMAT_VERSION",
    "RECORD_KINDS",
    "ReaderStats",
    "Record",
    "RecordedFeed",
    "Recorder",
    "RecordingError",
    "RecordingFormat",
    "RecordingReader",
    "contracts_obj",
    "open_obj",
    "open_recording",
    "recording_name",
]

#: Version written in (and the newest accepted from) a recording header. Version 2 added the
#: ``checkpoint`` record (flight recordings, :mod:`mmradar.flight`); a version-1 file is a
#: version-2 file without one.
FORMAT_VERSION = 2
#: The record kinds of the format, in the order they are documented.
RECORD_KINDS: tuple[str, ...] = (
    "header", "open", "ws", "close", "rest", "checkpoint", "contracts"
)  # fmt: skip
#: Rotate to a new file after this many uncompressed bytes.
DEFAULT_ROTATE_BYTES = 256 * 1024 * 1024
#: Flush the compressed stream to the OS after this much receive time (no fsync).
DEFAULT_FLUSH_INTERVAL_S = 5.0

RecordingFormat = Literal["mmradar", "hftbacktest"]

_NS = 1_000_000_000
_WRITE_BUFFER = 64 * 1024
_HFT_TRADE_STREAMS = ("@trade", "@aggTrade")
_STREAM_PREFIX = b'{"stream":"'
_UNPARSED: Any = object()


class RecordedFeed(NamedTuple):
    """One ``[[feeds]]`` entry as a recording header lists it."""

    exchange: str
    symbols: tuple[str, ...]
    trades: bool


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a recording (see the module docstring for the fields of each kind).

    Attributes:
        kind: ``header``, ``open``, ``ws``, ``close``, ``rest``, ``checkpoint`` or
            ``contracts``.
        t: local receive time, ns since the Unix epoch.
        exchange: config ``exchange`` (``open``, ``ws``, ``close``, ``rest``).
        conn: connection name (``open``, ``ws``, ``close``).
        symbol: the snapshot's symbol (``rest``).
        data: the frame (``ws``: ``str`` for a text frame, ``bytes`` for a binary one), the
            snapshot body (``rest``: always ``bytes``), the checkpoint payload (``checkpoint``:
            ``bytes``), or the writer's mmradar version (``header``).
        depth: symbols whose depth stream the connection carries (``open``).
        trades: symbols whose trade stream the connection carries (``open``).
        reason: why the connection closed (``close``).
        url: the connection's URL (``open``).
        feeds: the recorded feeds (``header``).
        cont: an ``open`` repeated at the start of a rotated file for a connection that was
            already open: a no-op when the previous file was replayed first.
        bodies: the instrument-metadata answers (``contracts``).
    """

    kind: str
    t: int
    exchange: str = ""
    conn: str = ""
    symbol: str = ""
    data: str | bytes = ""
    depth: tuple[str, ...] = ()
    trades: tuple[str, ...] = ()
    reason: str = ""
    url: str = ""
    feeds: tuple[RecordedFeed, ...] = ()
    cont: bool = False
    bodies: tuple[bytes, ...] = ()


def recording_name(ts_ns: int) -> str:
    """The file name of a recording started at ``ts_ns``: ``mmradar-<yyyymmddTHHMMSSZ>.jsonl.gz``.

    The time is UTC, to the second.
    """
    stamp = datetime.fromtimestamp(ts_ns / _NS, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"mmradar-{stamp}.jsonl.gz"


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


class Recorder:
    """Writes a recording into a directory, rotating files by size.

    Every method takes the receive timestamp of what it records; nothing here reads a clock
    except the default start time of the first file (``clock``'s wall time). A write is an
    ``orjson`` encode plus an append to an in-memory buffer (a few µs); compression happens
    when the buffer fills (64 KiB: about 0.4 ms at gzip level 1, 1.4 ms at level 6, for ~5.5×
    vs ~7× on Binance JSON), and the stream is flushed to the OS every ``flush_interval_s`` of
    receive time (never fsynced). Rotation closes one file and opens the next inline.

    Args:
        path: directory the files are written to (created if missing).
        feeds: ``(exchange, symbols, trades)`` of every recorded feed, for the header.
        version: the writer's mmradar version, for the header.
        rotate_bytes: start a new file after this many uncompressed bytes.
        flush_interval_s: flush the compressed stream at least this often (receive time).
        compresslevel: gzip level (1 fastest, the default … 9 smallest).
        start_ns: names the first file and timestamps its header (default: now on ``clock``).
        clock: the clock the default start time is read on (the shell's; default
            :class:`~mmradar.clock.SystemClock`).
    """

    def __init__(
        self,
        path: Path,
        feeds: Sequence[tuple[str, Sequence[str], bool]],
        *,
        version: str,
        rotate_bytes: int = DEFAULT_ROTATE_BYTES,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        compresslevel: int = 1,
        start_ns: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        if rotate_bytes <= 0:
            raise ValueError("rotate_bytes must be positive")
        self.directory = Path(path)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.feeds = tuple(RecordedFeed(x, tuple(s), bool(tr)) for x, s, tr in feeds)
        self.version = version
        self.rotate_bytes = rotate_bytes
        self.compresslevel = compresslevel
        self._flush_ns = round(flush_interval_s * _NS)
        #: every file written so far, in order (the current one last).
        self.paths: list[Path] = []
        self._open: dict[tuple[str, str], ConnectionPlan] = {}
        self._contracts: dict[str, dict[str, Any]] = {}  # exchange → its contracts record
        self._raw: IO[bytes] | None = None
        self._gz: gzip.GzipFile | None = None
        self._out: io.BufferedWriter | None = None
        self._bytes = 0
        self._last_flush_ns = 0
        self._closed = False
        if start_ns is None:
            start_ns = (clock or SystemClock()).wall_ns()
        self._start_file(start_ns)

    # -- records ---------------------------------------------------------------------------

    def opened(self, exchange: str, plan: ConnectionPlan, ts_ns: int) -> None:
        """Record that the websocket connection ``plan`` of ``exchange`` opened."""
        self._before(ts_ns)
        self._open[(exchange, plan.name)] = plan
        self._write(open_obj(exchange, plan, ts_ns, cont=False), ts_ns)

    def frame(self, exchange: str, conn_name: str, ts_ns: int, raw: bytes | str) -> None:
        """Record one frame received on connection ``conn_name`` (text verbatim, bytes base64)."""
        self._before(ts_ns)
        if isinstance(raw, str):
            obj: dict[str, Any] = {"k": "ws", "t": ts_ns, "x": exchange, "c": conn_name, "d": raw}
        else:
            obj = {
                "k": "ws",
                "t": ts_ns,
                "x": exchange,
                "c": conn_name,
                "d": base64.b64encode(raw).decode("ascii"),
                "b64": True,
            }
        self._write(obj, ts_ns)

    def closed(self, exchange: str, conn_name: str, ts_ns: int, reason: str) -> None:
        """Record that connection ``conn_name`` closed, and why (e.g. a reconnect reason)."""
        self._before(ts_ns)
        self._open.pop((exchange, conn_name), None)
        self._write({"k": "close", "t": ts_ns, "x": exchange, "c": conn_name, "r": reason}, ts_ns)

    def contracts(self, exchange: str, ts_ns: int, bodies: Sequence[bytes]) -> None:
        """Record the instrument-metadata answers ``exchange``'s contract sizes came from
        (repeated at the start of every later file)."""
        self._before(ts_ns)
        obj = contracts_obj(exchange, bodies, ts_ns)
        self._contracts[exchange] = obj
        self._write(obj, ts_ns)

    def snapshot(self, exchange: str, symbol: str, ts_ns: int, body: bytes) -> None:
        """Record a REST depth-snapshot body received for ``symbol``."""
        self._before(ts_ns)
        obj: dict[str, Any] = {"k": "rest", "t": ts_ns, "x": exchange, "s": symbol}
        try:
            obj["d"] = body.decode("utf-8")
        except UnicodeDecodeError:
            obj["d"] = base64.b64encode(body).decode("ascii")
            obj["b64"] = True
        self._write(obj, ts_ns)

    @property
    def open_connections(self) -> list[tuple[str, str]]:
        """``(exchange, connection name)`` of the connections recorded as open."""
        return list(self._open)

    # -- flushing and closing -------------------------------------------------------------

    def maybe_flush(self, ts_ns: int) -> None:
        """Flush to the OS if ``flush_interval_s`` of receive time passed since the last flush."""
        if ts_ns - self._last_flush_ns >= self._flush_ns:
            self.flush(ts_ns)

    def flush(self, ts_ns: int | None = None) -> None:
        """Push everything written so far to the OS (a sync point readers can decode up to)."""
        if self._out is None or self._gz is None or self._raw is None:
            return
        self._out.flush()
        self._gz.flush(zlib.Z_SYNC_FLUSH)
        self._raw.flush()
        if ts_ns is not None:
            self._last_flush_ns = ts_ns

    def close(self) -> None:
        """Flush and close the current file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._finish_file()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    def _before(self, ts_ns: int) -> None:
        if self._closed:
            raise ValueError("the recorder is closed")
        if self._bytes >= self.rotate_bytes:
            self._rotate(ts_ns)

    def _write(self, obj: dict[str, Any], ts_ns: int) -> None:
        line = orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
        assert self._out is not None
        self._out.write(line)
        self._bytes += len(line)
        if ts_ns - self._last_flush_ns >= self._flush_ns:
            self.flush(ts_ns)

    def _start_file(self, ts_ns: int) -> None:
        path = self._free_path(ts_ns)
        raw = open(path, "xb")  # noqa: SIM115 - owned by the recorder, closed in _finish_file
        self._raw = raw
        self._gz = gzip.GzipFile(
            filename=path.name, fileobj=raw, mode="wb", compresslevel=self.compresslevel, mtime=0
        )
        self._out = io.BufferedWriter(self._gz, buffer_size=_WRITE_BUFFER)
        self.paths.append(path)
        self._bytes = 0
        self._last_flush_ns = ts_ns
        header = {
            "k": "header",
            "t": ts_ns,
            "version": FORMAT_VERSION,
            "feeds": [
                {"exchange": f.exchange, "symbols": list(f.symbols), "trades": f.trades}
                for f in self.feeds
            ],
            "mmradar": self.version,
        }
        self._write(header, ts_ns)
        for obj in self._contracts.values():
            self._write({**obj, "t": ts_ns}, ts_ns)
        for (exchange, _), plan in self._open.items():
            self._write(open_obj(exchange, plan, ts_ns, cont=True), ts_ns)

    def _free_path(self, ts_ns: int) -> Path:
        name = recording_name(ts_ns)
        path = self.directory / name
        stem = name.removesuffix(".jsonl.gz")
        n = 0
        while path.exists():  # several files in one second: _001, _002, … sort after the first
            n += 1
            path = self.directory / f"{stem}_{n:03d}.jsonl.gz"
        return path

    def _finish_file(self) -> None:
        out, gz, raw = self._out, self._gz, self._raw
        self._out = self._gz = self._raw = None
        try:
            if out is not None:
                out.flush()
            if gz is not None:
                gz.close()
        finally:
            if raw is not None:
                raw.close()

    def _rotate(self, ts_ns: int) -> None:
        self._finish_file()
        self._start_file(ts_ns)


def contracts_obj(exchange: str, bodies: Sequence[bytes], ts_ns: int) -> dict[str, Any]:
    """A ``contracts`` record (bodies as text; a body that is not UTF-8 is replaced)."""
    text = [b.decode("utf-8", errors="replace") for b in bodies]
    return {"k": "contracts", "t": ts_ns, "x": exchange, "d": text}


def open_obj(exchange: str, plan: ConnectionPlan, ts_ns: int, *, cont: bool) -> dict[str, Any]:
    """The ``open`` record of a connection (``cont``: repeated at the start of a new file)."""
    obj: dict[str, Any] = {
        "k": "open",
        "t": ts_ns,
        "x": exchange,
        "c": plan.name,
        "depth": list(plan.depth_symbols),
        "trades": list(plan.trade_symbols),
        "url": plan.url,
    }
    if cont:
        obj["cont"] = True
    return obj


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ReaderStats:
    """What a :class:`RecordingReader` met on its way through a file.

    Attributes:
        lines: non-blank lines read.
        records: records yielded (synthesized ``header``/``open`` of hftbacktest files included).
        malformed: lines skipped because they are not valid JSON / not the expected shape.
        unknown_kind: lines skipped because their ``"k"`` is not a known record kind.
        foreign_streams: hftbacktest frames skipped because they belong to a stream the service
            does not subscribe to (``@bookTicker`` …).
        truncated: the compressed stream ended early (a file cut short by a crash).
    """

    lines: int = 0
    records: int = 0
    malformed: int = 0
    unknown_kind: int = 0
    foreign_streams: int = 0
    truncated: bool = False
    by_kind: dict[str, int] = field(default_factory=dict)


class RecordingReader:
    """Reads one recording file (mmradar format or hftbacktest capture), gzip or plain.

    The format is detected from the first non-blank line: a digit starts an hftbacktest line
    (``<recv_ns> <json>``), anything else is the mmradar format. Bad lines are counted in
    :attr:`stats` and skipped; they never raise.

    Args:
        path: the file.
        exchange: for hftbacktest captures, the ``exchange`` to present the frames as; by
            default detected from the first ``depthUpdate`` (``"pu"`` ⇒ ``binance-usdm``, else
            ``binance``). Ignored for mmradar recordings (they name their exchanges).

    Raises:
        RecordingError: the file cannot be opened (chained to the :class:`OSError`), or (when
            iterating) it declares a newer format version.
    """

    def __init__(self, path: str | os.PathLike[str], *, exchange: str | None = None) -> None:
        self.path = Path(path)
        self.exchange = exchange
        self.stats = ReaderStats()
        self.format: RecordingFormat | None = None
        try:
            self.size = self.path.stat().st_size
            self._raw: IO[bytes] = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot open: {exc.strerror or exc}") from exc
        self._stream = decompressed(self._raw)

    @property
    def position(self) -> int:
        """Bytes of the file (compressed, for gzip files) consumed so far."""
        try:
            return self._raw.tell()
        except (ValueError, OSError):
            return self.size

    def close(self) -> None:
        """Close the file."""
        with contextlib.suppress(Exception):
            if self._stream is not self._raw:
                self._stream.close()
        self._raw.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[Record]:
        lines = self._lines()
        for line in lines:
            if line[:1].isdigit():
                self.format = "hftbacktest"
                records = self._hftbacktest(line, lines)
            else:
                self.format = "mmradar"
                records = self._mmradar(line, lines)
            for record in records:
                self.stats.records += 1
                by_kind = self.stats.by_kind
                by_kind[record.kind] = by_kind.get(record.kind, 0) + 1
                yield record
            return

    def _lines(self) -> Iterator[bytes]:
        stats = self.stats
        try:
            for raw_line in self._stream:
                line = raw_line.strip()
                if line:
                    stats.lines += 1
                    yield line
        except (EOFError, gzip.BadGzipFile, zlib.error):
            stats.truncated = True

    # -- mmradar format --------------------------------------------------------------------

    def _mmradar(self, first: bytes, rest: Iterator[bytes]) -> Iterator[Record]:
        stats = self.stats
        for line in _chain(first, rest):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                stats.malformed += 1
                continue
            if type(obj) is not dict:
                stats.malformed += 1
                continue
            kind = obj.get("k")
            if kind not in _DECODERS:
                stats.unknown_kind += 1
                continue
            version = obj.get("version")
            if kind == "header" and type(version) is int and version > FORMAT_VERSION:
                raise RecordingError(
                    f"{self.path}: recording format version {version} is newer than "
                    f"this mmradar reads ({FORMAT_VERSION})"
                )
            try:
                record = _DECODERS[kind](obj)
            except (KeyError, TypeError, ValueError, binascii.Error):
                stats.malformed += 1
                continue
            yield record

    # -- hftbacktest captures --------------------------------------------------------------

    def _hftbacktest(self, first: bytes, rest: Iterator[bytes]) -> Iterator[Record]:
        stats = self.stats
        # Look ahead to the first depthUpdate for the symbol (and the exchange); the lines read
        # on the way are kept and replayed in order.
        pending: list[tuple[int, bytes, Any]] = []
        symbol: str | None = None
        exchange = self.exchange
        lines = _chain(first, rest)
        for line in lines:
            parsed = parse_line(line)
            if parsed is None:
                stats.malformed += 1
                continue
            pending.append(parsed)
            data = stream_data(parsed[2])
            if (
                data is not None
                and data.get("e") == "depthUpdate"
                and isinstance(data.get("s"), str)
            ):
                symbol = data["s"]
                if exchange is None:
                    exchange = "binance-usdm" if "pu" in data else "binance"
                break
        if symbol is None:  # no depth at all: fall back to any stream's symbol
            for _, _, obj in pending:
                data = stream_data(obj)
                if data is not None and isinstance(data.get("s"), str):
                    symbol = data["s"]
                    break
        if symbol is None or not pending:
            return
        exchange = exchange or "binance"
        conn = f"{exchange}/hftbacktest#0"
        t0 = pending[0][0]
        yield Record(
            "header", t0, feeds=(RecordedFeed(exchange, (symbol,), True),), data="hftbacktest"
        )
        yield Record(
            "open",
            t0,
            exchange=exchange,
            conn=conn,
            depth=(symbol,),
            trades=(symbol,),
            url=f"hftbacktest:{self.path.name}",
        )
        for t, body, obj in pending:
            record = self._hft_record(t, body, obj, exchange, conn, symbol)
            if record is not None:
                yield record
        for line in lines:
            split = split_line(line)
            if split is None:
                stats.malformed += 1
                continue
            record = self._hft_record(split[0], split[1], _UNPARSED, exchange, conn, symbol)
            if record is not None:
                yield record

    def _hft_record(
        self, t: int, body: bytes, obj: Any, exchange: str, conn: str, symbol: str
    ) -> Record | None:
        """The record of one hftbacktest line, or None when it is skipped (and counted)."""
        if body.startswith(_STREAM_PREFIX):  # fast path: no JSON parse for stream frames
            end = body.find(b'"', len(_STREAM_PREFIX))
            stream: object = body[len(_STREAM_PREFIX) : end].decode("utf-8", "replace")
        else:
            if obj is _UNPARSED:
                try:
                    obj = orjson.loads(body)
                except orjson.JSONDecodeError:
                    self.stats.malformed += 1
                    return None
            if type(obj) is dict and "lastUpdateId" in obj:
                return Record("rest", t, exchange=exchange, symbol=symbol, data=body)
            stream = obj.get("stream") if type(obj) is dict else None
        if isinstance(stream, str) and not (
            "@depth" in stream or stream.endswith(_HFT_TRADE_STREAMS)
        ):
            self.stats.foreign_streams += 1
            return None
        return Record("ws", t, exchange=exchange, conn=conn, data=body.decode("utf-8", "replace"))


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if type(value) is not str:
        raise TypeError(f"{key} is not a string")
    return value


def _t(obj: dict[str, Any]) -> int:
    value = obj["t"]
    if type(value) is not int:
        raise TypeError("t is not an integer")
    return value


def _strs(obj: dict[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key, [])
    if type(value) is not list or any(type(v) is not str for v in value):
        raise TypeError(f"{key} is not a list of strings")
    return tuple(value)


def _payload(obj: dict[str, Any]) -> str | bytes:
    text = _str(obj, "d")
    if obj.get("b64"):
        return base64.b64decode(text, validate=True)
    return text


def _decode_header(obj: dict[str, Any]) -> Record:
    feeds = obj["feeds"]
    if type(feeds) is not list:
        raise TypeError("feeds is not a list")
    out = []
    for feed in feeds:
        if type(feed) is not dict:
            raise TypeError("feed is not an object")
        out.append(
            RecordedFeed(_str(feed, "exchange"), _strs(feed, "symbols"), bool(feed.get("trades")))
        )
    if type(obj.get("version")) is not int:
        raise TypeError("version is not an integer")
    version = obj.get("mmradar", "")
    return Record("header", _t(obj), feeds=tuple(out), data=version if type(version) is str else "")


def _decode_open(obj: dict[str, Any]) -> Record:
    url = obj.get("url", "")
    return Record(
        "open",
        _t(obj),
        exchange=_str(obj, "x"),
        conn=_str(obj, "c"),
        depth=_strs(obj, "depth"),
        trades=_strs(obj, "trades"),
        url=url if type(url) is str else "",
        cont=obj.get("cont") is True,
    )


def _decode_ws(obj: dict[str, Any]) -> Record:
    return Record("ws", _t(obj), exchange=_str(obj, "x"), conn=_str(obj, "c"), data=_payload(obj))


def _decode_close(obj: dict[str, Any]) -> Record:
    reason = obj.get("r", "")
    return Record(
        "close",
        _t(obj),
        exchange=_str(obj, "x"),
        conn=_str(obj, "c"),
        reason=reason if type(reason) is str else "",
    )


def _decode_checkpoint(obj: dict[str, Any]) -> Record:
    payload = base64.b64decode(_str(obj, "d"), validate=True)  # always base64
    return Record("checkpoint", _t(obj), exchange=_str(obj, "x"), data=payload)


def _decode_rest(obj: dict[str, Any]) -> Record:
    body = _payload(obj)
    return Record(
        "rest",
        _t(obj),
        exchange=_str(obj, "x"),
        symbol=_str(obj, "s"),
        data=body.encode("utf-8") if isinstance(body, str) else body,
    )


def _decode_contracts(obj: dict[str, Any]) -> Record:
    bodies = obj["d"]
    if type(bodies) is not list or not all(type(b) is str for b in bodies):
        raise ValueError("contracts: d is not a list of texts")
    return Record(
        "contracts", _t(obj), exchange=_str(obj, "x"), bodies=tuple(b.encode() for b in bodies)
    )


_DECODERS = {
    "header": _decode_header,
    "open": _decode_open,
    "ws": _decode_ws,
    "close": _decode_close,
    "rest": _decode_rest,
    "checkpoint": _decode_checkpoint,
    "contracts": _decode_contracts,
}


def open_recording(path: str | os.PathLike[str], exchange: str | None = None) -> Iterator[Record]:
    """Iterate over the records of one recording (mmradar format or hftbacktest capture).

    A convenience over :class:`RecordingReader` (use that for counters and progress). For an
    hftbacktest capture the iterator yields a synthesized ``header`` and one ``open`` for a
    single connection carrying the symbol's depth and trades, each stream frame as a ``ws``
    record (frames of streams the service does not subscribe to, like ``@bookTicker``, are
    skipped), and the unwrapped REST snapshot line as a ``rest`` record.

    Args:
        path: the file (gzip or plain).
        exchange: hftbacktest only: the exchange to present the capture as (default: detected).

    Yields:
        The records in file order.
    """
    with RecordingReader(path, exchange=exchange) as reader:
        yield from reader
