"""Binance wire encoding of the simulator's books and trades (docs/venues/binance.md).

Prices and quantities are integers on the book (ticks, lots) and exact fixed-decimal text on
the wire, as Binance prints them for BTCUSDT (``"60000.01000000"``, ``"0.04000000"``). The
spot venue speaks Binance spot; the second venue (a perpetual) speaks Binance USD-M futures:
``depthUpdate`` events add the transaction time ``T`` and ``pu`` (the previous event's ``u``;
a client chains events on ``pu == previous u``), the first event after a snapshot straddles
its ``lastUpdateId`` (``U ≤ lastUpdateId ≤ u``: each event's ``U`` is the previous event's
``u``, so the id ranges overlap by one), trades are ``aggTrade`` events, and the REST
snapshot (``GET /fapi/v1/depth``) carries at most 1000 levels a side and the times ``E``/``T``.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable
from decimal import Decimal

import orjson

from .types import SimRun

__all__ = [
    "Decimals",
    "agg_trade_frame",
    "depth_frame",
    "snapshot_body",
    "trade_frame",
    "usdm_depth_frame",
    "usdm_snapshot_body",
    "write_capture",
]


class Decimals:
    """Integer → fixed-decimal text for one grid step (``tick`` or ``lot``)."""

    __slots__ = ("_cache", "_decimals", "_scale", "_step")

    def __init__(self, step: str, decimals: int) -> None:
        scaled = Decimal(step).scaleb(decimals)
        if scaled != scaled.to_integral_value() or scaled <= 0:
            raise ValueError(f"step {step} does not fit {decimals} decimals")
        self._step = int(scaled)
        self._decimals = decimals
        self._scale = 10**decimals
        self._cache: dict[int, str] = {}

    def text(self, n: int) -> str:
        """The exact text of ``n`` steps."""
        out = self._cache.get(n)
        if out is None:
            if len(self._cache) > 200_000:
                self._cache.clear()
            whole, frac = divmod(n * self._step, self._scale)
            out = self._cache[n] = f"{whole}.{frac:0{self._decimals}d}"
        return out

    def value(self, n: int) -> float:
        """``n`` steps as a float."""
        return float(n * self._step) / float(self._scale)


def _levels(levels: Iterable[tuple[int, int]], px: Decimals, qx: Decimals) -> list[list[str]]:
    return [[px.text(p), qx.text(q)] for p, q in levels]


def depth_frame(
    symbol: str,
    ts_ms: int,
    first_id: int,
    final_id: int,
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    px: Decimals,
    qx: Decimals,
) -> tuple[str, bytes]:
    """A combined-stream ``depthUpdate`` frame of ``<symbol>@depth@100ms``.

    Returns:
        ``(stream name, frame bytes)``.
    """
    stream = f"{symbol.lower()}@depth@100ms"
    data = {
        "e": "depthUpdate",
        "E": ts_ms,
        "s": symbol,
        "U": first_id,
        "u": final_id,
        "b": _levels(bids, px, qx),
        "a": _levels(asks, px, qx),
    }
    return stream, orjson.dumps({"stream": stream, "data": data})


def trade_frame(
    symbol: str,
    ts_ms: int,
    trade_id: int,
    price: int,
    qty: int,
    buyer_is_maker: bool,
    px: Decimals,
    qx: Decimals,
) -> tuple[str, bytes]:
    """A combined-stream ``trade`` frame of ``<symbol>@trade`` (``m``: the buyer is the maker).

    Returns:
        ``(stream name, frame bytes)``.
    """
    stream = f"{symbol.lower()}@trade"
    data = {
        "e": "trade",
        "E": ts_ms,
        "s": symbol,
        "t": trade_id,
        "p": px.text(price),
        "q": qx.text(qty),
        "T": ts_ms,
        "m": buyer_is_maker,
        "M": True,
    }
    return stream, orjson.dumps({"stream": stream, "data": data})


def usdm_depth_frame(
    symbol: str,
    ts_ms: int,
    first_id: int,
    final_id: int,
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    px: Decimals,
    qx: Decimals,
) -> tuple[str, bytes]:
    """A Binance USD-M ``depthUpdate`` frame of ``<symbol>@depth@100ms``.

    ``first_id``/``final_id`` are the book's update ids of the window (contiguous from one
    window to the next): the frame carries ``U = first_id − 1`` (the previous event's ``u``),
    ``u = final_id`` and ``pu = first_id − 1``.

    Returns:
        ``(stream name, frame bytes)``.
    """
    stream = f"{symbol.lower()}@depth@100ms"
    data = {
        "e": "depthUpdate",
        "E": ts_ms,
        "T": ts_ms,
        "s": symbol,
        "U": first_id - 1,
        "u": final_id,
        "pu": first_id - 1,
        "b": _levels(bids, px, qx),
        "a": _levels(asks, px, qx),
    }
    return stream, orjson.dumps({"stream": stream, "data": data})


def agg_trade_frame(
    symbol: str,
    ts_ms: int,
    agg_id: int,
    price: int,
    qty: int,
    buyer_is_maker: bool,
    px: Decimals,
    qx: Decimals,
) -> tuple[str, bytes]:
    """A Binance USD-M ``aggTrade`` frame of ``<symbol>@aggTrade`` (one fill per event).

    Returns:
        ``(stream name, frame bytes)``.
    """
    stream = f"{symbol.lower()}@aggTrade"
    data = {
        "e": "aggTrade",
        "E": ts_ms,
        "s": symbol,
        "a": agg_id,
        "p": px.text(price),
        "q": qx.text(qty),
        "f": agg_id,
        "l": agg_id,
        "T": ts_ms,
        "m": buyer_is_maker,
    }
    return stream, orjson.dumps({"stream": stream, "data": data})


def usdm_snapshot_body(
    last_update_id: int,
    ts_ms: int,
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    px: Decimals,
    qx: Decimals,
    limit: int = 1000,
) -> bytes:
    """``GET /fapi/v1/depth`` body: the best ``limit`` levels per side, best first."""
    return orjson.dumps(
        {
            "lastUpdateId": last_update_id,
            "E": ts_ms,
            "T": ts_ms,
            "bids": _levels(list(bids)[:limit], px, qx),
            "asks": _levels(list(asks)[:limit], px, qx),
        }
    )


def snapshot_body(
    last_update_id: int,
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    px: Decimals,
    qx: Decimals,
    limit: int = 5000,
) -> bytes:
    """``GET /api/v3/depth`` body: the best ``limit`` levels per side, best first."""
    return orjson.dumps(
        {
            "lastUpdateId": last_update_id,
            "bids": _levels(list(bids)[:limit], px, qx),
            "asks": _levels(list(asks)[:limit], px, qx),
        }
    )


def write_capture(run: SimRun, path: str | os.PathLike[str]) -> None:
    """Write a run in the hftbacktest collector format ``mmradar replay`` reads.

    Gzip'd lines ``<ns> <json>`` in time order, like a recorder that subscribed first and then
    fetched the REST snapshot: the first depth frame, then the snapshot as of that frame
    (``lastUpdateId`` = its ``u``), then every later frame. ``mmradar replay --exchange binance
    FILE`` drives the service's pipeline from it.
    """
    frames = list(run.frames)
    first = next((i for i, f in enumerate(frames) if "@depth" in f.stream), None)
    with gzip.open(path, "wb") as fh:
        if first is None:
            fh.write(b"%d %s\n" % (run.start_ns, run.snapshot))
            for frame in frames:
                fh.write(b"%d %s\n" % (frame.ts_ns, frame.payload))
            return
        for frame in frames[: first + 1]:
            fh.write(b"%d %s\n" % (frame.ts_ns, frame.payload))
        snap = orjson.loads(run.snapshot)
        data = orjson.loads(frames[first].payload)["data"]
        book = []
        for key, field, best_first in (("bids", "b", True), ("asks", "a", False)):
            levels = {Decimal(p): q for p, q in snap[key]}
            for p, q in data[field]:
                if Decimal(q) == 0:
                    levels.pop(Decimal(p), None)
                else:
                    levels[Decimal(p)] = q
            book.append([[format(p, "f"), levels[p]] for p in sorted(levels, reverse=best_first)])
        body = orjson.dumps({"lastUpdateId": data["u"], "bids": book[0], "asks": book[1]})
        fh.write(b"%d %s\n" % (frames[first].ts_ns + 1, body))
        for frame in frames[first + 1 :]:
            fh.write(b"%d %s\n" % (frame.ts_ns, frame.payload))
