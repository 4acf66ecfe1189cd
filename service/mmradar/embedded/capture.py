"""Loader for hftbacktest's Binance collector captures (the files in ``service/mmradar/data/``).

Format (see ``service/mmradar/data/README.md``; lines are split by :mod:`mmradar.hftbacktest`,
which :mod:`mmradar.record` reads captures with too): gzip'd UTF-8 text, one record per line,
``<local receive time, ns since epoch> <json>``. Stream messages keep Binance's combined-stream
wrapper ``{"stream": "btcusdt@depth@100ms", "data": {...}}``; exactly one line is the unwrapped
REST depth snapshot ``{"lastUpdateId": ..., "bids": [[p, q], ...], "asks": [...]}`` (USD-M adds
``E`` and ``T``). Sample lines (trimmed)::

    1723161254036059768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate",
        "E":1723161255308,"s":"BTCUSDT","U":50093239203,"u":50093239207,"b":[...],"a":[...]}}
    1723161254087896568 {"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,
        "s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,
        "m":true,"M":true}}

The loader yields one typed, immutable record per line, keeping Binance's field names verbatim
and every price and quantity as the capture's exact text. It does no book logic at all.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import IO, Any, Literal

import orjson

from ..errors import CaptureError
from ..hftbacktest import decompressed, split_line

__all__ = [
    "BookTicker",
    "Capture",
    "CaptureError",
    "CaptureSource",
    "DepthDiff",
    "Level",
    "Market",
    "Record",
    "Snapshot",
    "Trade",
    "capture_path",
    "iter_records",
    "load_capture",
    "parse_record",
]

Market = Literal["spot", "usdm"]
"""Which Binance market a capture (and an embedded venue) is: spot or USD-M futures."""

Level = tuple[str, str]
"""One price level ``(price, quantity)`` exactly as the capture's text."""

CaptureSource = str | os.PathLike[str] | Traversable
"""A capture file: a filesystem path or an :mod:`importlib.resources` traversable."""

_PACKAGED: dict[str, str] = {
    "spot": "hftbacktest_binance_spot_btcusdt_20240808.gz",
    "usdm": "hftbacktest_binance_usdm_btcusdt_20240808.gz",
}


@dataclass(frozen=True, slots=True)
class DepthDiff:
    """A ``depthUpdate`` event of a diff-depth stream."""

    recv_ns: int  # local receive time of the recorder, ns since epoch
    stream: str  # combined-stream name it came on, e.g. "btcusdt@depth@100ms"
    E: int  # event time, ms
    T: int | None  # transaction time, ms (USD-M only)
    s: str  # symbol, e.g. "BTCUSDT"
    U: int  # first update id in event
    u: int  # final update id in event
    pu: int | None  # final update id of the previous event (USD-M only)
    b: tuple[Level, ...]  # bids to set, absolute quantity; zero removes
    a: tuple[Level, ...]  # asks to set, absolute quantity; zero removes


@dataclass(frozen=True, slots=True)
class Trade:
    """A ``trade`` event (one fill between a maker and a taker)."""

    recv_ns: int  # local receive time of the recorder, ns since epoch
    stream: str  # combined-stream name, e.g. "btcusdt@trade"
    E: int  # event time, ms
    T: int  # trade time, ms
    s: str  # symbol
    t: int  # trade id
    p: str  # price
    q: str  # quantity (base asset)
    m: bool  # is the buyer the maker? true => the seller was the aggressor
    M: bool | None  # "ignore" flag (spot only)
    X: str | None  # trade type, e.g. "MARKET" (USD-M only)


@dataclass(frozen=True, slots=True)
class BookTicker:
    """A ``bookTicker`` event: best bid/ask after order-book update ``u``."""

    recv_ns: int  # local receive time of the recorder, ns since epoch
    stream: str  # combined-stream name, e.g. "btcusdt@bookTicker"
    u: int  # order-book update id
    s: str  # symbol
    b: str  # best bid price
    B: str  # best bid quantity
    a: str  # best ask price
    A: str  # best ask quantity
    E: int | None  # event time, ms (USD-M only)
    T: int | None  # transaction time, ms (USD-M only)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The REST depth snapshot the recorder fetched (``/api/v3/depth`` or ``/fapi/v1/depth``)."""

    recv_ns: int  # local receive time of the recorder, ns since epoch
    lastUpdateId: int  # last update id contained in the snapshot
    bids: tuple[Level, ...]  # best first
    asks: tuple[Level, ...]  # best first
    E: int | None  # message output time, ms (USD-M only)
    T: int | None  # transaction time, ms (USD-M only)


Record = DepthDiff | Trade | BookTicker | Snapshot
"""One line of a capture."""


@dataclass(frozen=True, slots=True)
class Capture:
    """A whole capture, in file order.

    Attributes:
        records: every record in capture (receive) order, the snapshot included.
        snapshot: the one REST snapshot record (also present in ``records``).
        symbol: the symbol of the capture's streams, e.g. ``"BTCUSDT"``.
    """

    records: tuple[Record, ...]
    snapshot: Snapshot
    symbol: str


def capture_path(market: Market) -> Traversable:
    """Locate the packaged capture for a market through :mod:`importlib.resources`.

    Args:
        market: ``"spot"`` or ``"usdm"``.

    Returns:
        The packaged file (a :class:`pathlib.Path` for a regular install).

    Raises:
        ValueError: for an unknown market.
    """
    try:
        name = _PACKAGED[market]
    except KeyError:
        raise ValueError(f"unknown market {market!r}; expected 'spot' or 'usdm'") from None
    return resources.files("mmradar").joinpath("data", name)


def _levels(raw: Any, line: int) -> tuple[Level, ...]:
    if not isinstance(raw, list):
        raise CaptureError(line, "price levels must be a list")
    out: list[Level] = []
    for level in raw:
        if (
            not isinstance(level, list)
            or len(level) < 2
            or not isinstance(level[0], str)
            or not isinstance(level[1], str)
        ):
            raise CaptureError(line, f"bad price level {level!r}")
        out.append((level[0], level[1]))
    return tuple(out)


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) else None


def parse_record(recv_ns: int, obj: Any, line: int = 0) -> Record | None:
    """Type one decoded capture line (a REST snapshot or a combined-stream frame).

    Args:
        recv_ns: the line's receive time, ns.
        obj: the line's decoded JSON.
        line: its 1-based line number, for errors (0 when not from a file).

    Returns:
        The record, or None for a stream kind that is not modelled.

    Raises:
        CaptureError: the JSON has the wrong shape.
    """
    if not isinstance(obj, dict):
        raise CaptureError(line, "record is not a JSON object")
    if "lastUpdateId" in obj:
        return Snapshot(
            recv_ns=recv_ns,
            lastUpdateId=int(obj["lastUpdateId"]),
            bids=_levels(obj.get("bids"), line),
            asks=_levels(obj.get("asks"), line),
            E=_opt_int(obj, "E"),
            T=_opt_int(obj, "T"),
        )
    stream = obj.get("stream")
    data = obj.get("data")
    if not isinstance(stream, str) or not isinstance(data, dict):
        raise CaptureError(line, "neither a snapshot nor a combined-stream wrapper")
    try:
        if "@depth" in stream and data.get("e") == "depthUpdate":
            return DepthDiff(
                recv_ns=recv_ns,
                stream=stream,
                E=int(data["E"]),
                T=_opt_int(data, "T"),
                s=str(data["s"]),
                U=int(data["U"]),
                u=int(data["u"]),
                pu=_opt_int(data, "pu"),
                b=_levels(data["b"], line),
                a=_levels(data["a"], line),
            )
        if stream.endswith("@trade") and data.get("e") == "trade":
            m = data.get("M")
            x = data.get("X")
            return Trade(
                recv_ns=recv_ns,
                stream=stream,
                E=int(data["E"]),
                T=int(data["T"]),
                s=str(data["s"]),
                t=int(data["t"]),
                p=str(data["p"]),
                q=str(data["q"]),
                m=bool(data["m"]),
                M=m if isinstance(m, bool) else None,
                X=x if isinstance(x, str) else None,
            )
        if stream.endswith("@bookTicker"):
            return BookTicker(
                recv_ns=recv_ns,
                stream=stream,
                u=int(data["u"]),
                s=str(data["s"]),
                b=str(data["b"]),
                B=str(data["B"]),
                a=str(data["a"]),
                A=str(data["A"]),
                E=_opt_int(data, "E"),
                T=_opt_int(data, "T"),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise CaptureError(line, f"bad {stream} event: {exc!r}") from exc
    return None  # another stream kind: not modelled, skipped


def iter_records(source: CaptureSource) -> Iterator[Record]:
    """Read a capture (gzip or plain) lazily, one typed record per line.

    Lines of stream kinds this module does not model are skipped; blank lines are ignored.

    Args:
        source: path of the ``.gz`` file, or a traversable from :func:`capture_path`.

    Yields:
        :class:`DepthDiff`, :class:`Trade`, :class:`BookTicker` or :class:`Snapshot` records in
        file order.

    Raises:
        CaptureError: a line is not ``<int> <json>`` or its JSON has the wrong shape.
    """
    with contextlib.ExitStack() as stack:
        raw: IO[bytes]
        if isinstance(source, str | os.PathLike):
            raw = stack.enter_context(open(source, "rb"))
        else:
            raw = stack.enter_context(source.open("rb"))
        fh = stack.enter_context(decompressed(raw))
        for number, raw_line in enumerate(fh, start=1):
            line = raw_line.strip()
            if not line:
                continue
            split = split_line(line)
            if split is None:
                raise CaptureError(number, "expected '<recv_ns> <json>'")
            try:
                obj = orjson.loads(split[1])
            except orjson.JSONDecodeError as exc:
                raise CaptureError(number, f"invalid JSON: {exc}") from exc
            record = parse_record(split[0], obj, number)
            if record is not None:
                yield record


def load_capture(source: CaptureSource) -> Capture:
    """Read a whole capture into memory.

    Args:
        source: path of the ``.gz`` file, or a traversable from :func:`capture_path`.

    Returns:
        The records in file order, the snapshot and the symbol.

    Raises:
        CaptureError: the file is malformed, has no or several snapshots, no depth diffs, or
            mixes symbols.
    """
    records = tuple(iter_records(source))
    snapshots = [r for r in records if isinstance(r, Snapshot)]
    if len(snapshots) != 1:
        raise CaptureError(0, f"expected exactly one REST snapshot, found {len(snapshots)}")
    symbols = {r.s for r in records if not isinstance(r, Snapshot)}
    if not any(isinstance(r, DepthDiff) for r in records):
        raise CaptureError(0, "no depth diff events")
    if len(symbols) != 1:
        raise CaptureError(0, f"expected one symbol, found {sorted(symbols)}")
    return Capture(records=records, snapshot=snapshots[0], symbol=symbols.pop())
