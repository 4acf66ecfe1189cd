"""The fault matrix: every fault × every venue where it applies, over real websockets on 127.0.0.1.

Each cell starts a fake venue (tests/fakes, or the embedded Binance venue), the fault proxy in
front of it (:mod:`.proxy`) and the real service configured against the proxy, waits until every
book is valid and equal to the venue's truth book, injects the fault, and then checks:

* the evidence: the counter named in the row moved, with the row's reason (and no resync with
  any other reason);
* the book is never reported valid while wrong: a sampler reads ``/metrics`` every 50 ms during
  the fault and fails on a valid book that is crossed, empty, or has a non-finite or negative
  depth; at the end the book must equal the venue's truth (touch, level counts, every band);
* recovery: every book valid and equal to the truth within the row's deadline (the time is
  recorded: docs/reliability.md);
* ``/metrics`` answered every scrape, the service did not crash, the other symbol of the feed
  (where the venue serves two) was not resynced by a symbol-specific fault.

:data:`FAULTS` is the table (docs/reliability.md renders it with the measured recovery times);
a cell that does not apply says why. Set ``MMRADAR_FAULT_RESULTS=FILE`` to append each cell's
measurements to FILE (JSON lines).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from e2e.harness import Samples, market_reference, parse_metrics
from fakes.bybit import EmbeddedBybit
from fakes.coinbase import EmbeddedCoinbase
from fakes.kraken import EmbeddedKraken
from fakes.okx import EmbeddedOkx
from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.embedded.binance import EmbeddedBinance
from mmradar.feed import ResyncPolicy
from mmradar.model import BAND_BPS
from mmradar.venues import VENUE_NAMES
from support import limit, timed, wait_until

from .proxy import FaultProxy, RestFault

VENUES = ("binance", "binance-usdm", "coinbase", "kraken", "okx", "bybit")
_SENTINEL = "__mmradar_fault__"


# --------------------------------------------------------------------------------------------
# The venues: how to start each fake, read its truth and find/rewrite its depth frames
# --------------------------------------------------------------------------------------------


def _levels_binance(msg: Any) -> list[Any] | None:
    data = msg.get("data", msg) if isinstance(msg, dict) else None
    if not isinstance(data, dict) or data.get("e") != "depthUpdate":
        return None
    return data["b"] or data["a"] or None


def _levels_coinbase(msg: Any) -> list[Any] | None:
    if msg.get("channel") != "l2_data":
        return None
    events = [e for e in msg.get("events", []) if e.get("type") == "update" and e.get("updates")]
    return events[0]["updates"] if events else None


def _levels_kraken(msg: Any) -> list[Any] | None:
    if msg.get("channel") != "book" or msg.get("type") != "update":
        return None
    data = msg["data"][0]
    return data.get("bids") or data.get("asks") or None


def _levels_okx(msg: Any) -> list[Any] | None:
    arg = msg.get("arg", {})
    if arg.get("channel") != "books" or msg.get("action") != "update":
        return None
    data = msg["data"][0]
    return data.get("bids") or data.get("asks") or None


def _levels_bybit(msg: Any) -> list[Any] | None:
    if not str(msg.get("topic", "")).startswith("orderbook.") or msg.get("type") != "delta":
        return None
    return msg["data"]["b"] or msg["data"]["a"] or None


@dataclass(frozen=True)
class Kit:
    """One venue as the matrix drives it."""

    exchange: str
    symbols: tuple[str, ...]
    make: Callable[[bool], Any]  # fast → the fake venue (not started)
    truth: Callable[[Any, str], tuple[dict[str, str], dict[str, str]]]
    levels: Callable[[Any], list[Any] | None]  # a depth update's first non-empty level list
    level_keys: tuple[Any, Any]  # (price key, quantity key) inside one level
    numeric: bool = False  # levels are JSON numbers (Kraken), not strings
    rest: bool = False  # REST snapshots

    def symbol_of(self, msg: Any) -> str | None:
        if self.exchange.startswith("binance"):
            return str(msg.get("data", msg).get("s"))
        if self.exchange == "coinbase":
            return str(msg["events"][0].get("product_id"))
        if self.exchange == "kraken":
            return str(msg["data"][0].get("symbol"))
        if self.exchange == "okx":
            return str(msg["arg"].get("instId"))
        return str(msg["data"].get("s"))


KITS: dict[str, Kit] = {
    "binance": Kit(
        "binance", ("BTCUSDT",),
        lambda fast: EmbeddedBinance("spot", speed=math.inf if fast else 4.0, loop=False),
        lambda v, s: v.truth_book(s), _levels_binance, (0, 1), rest=True,
    ),
    "binance-usdm": Kit(
        "binance-usdm", ("BTCUSDT",),
        lambda fast: EmbeddedBinance("usdm", speed=math.inf if fast else 4.0, loop=False),
        lambda v, s: v.truth_book(s), _levels_binance, (0, 1), rest=True,
    ),
    "coinbase": Kit(
        "coinbase", ("BTC-USD", "ETH-USD"),
        lambda fast: EmbeddedCoinbase(("BTC-USD", "ETH-USD"), rate_hz=0 if fast else 100.0),
        lambda v, s: v.truth_book(s), _levels_coinbase, ("price_level", "new_quantity"),
    ),
    "kraken": Kit(
        "kraken", ("BTC/USDT", "BTC/USD"),
        lambda fast: EmbeddedKraken(("BTC/USDT", "BTC/USD"), speed=math.inf if fast else 4.0),
        lambda v, s: v.truth_book(s, 1000), _levels_kraken, ("price", "qty"), numeric=True,
    ),
    "okx": Kit(
        "okx", ("BTC-USDT", "ETH-USDT"),
        lambda fast: EmbeddedOkx(
            ("BTC-USDT", "ETH-USDT"), interval_s=0.0005 if fast else 0.02, checksums=True
        ),
        lambda v, s: v.truth_book(s), _levels_okx, (0, 1), rest=True,
    ),
    "bybit": Kit(
        "bybit", ("BTCUSDT",),
        lambda fast: EmbeddedBybit("linear", speed=math.inf if fast else 4.0),
        lambda v, s: v.truth_book(s), _levels_bybit, (0, 1),
    ),
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# One cell: the venue, the proxy, the service, and what the checks read
# --------------------------------------------------------------------------------------------


def _fast_backoff() -> Iterator[float]:
    while True:
        yield 0.05


@dataclass
class Cell:
    kit: Kit
    venue: Any
    proxy: FaultProxy
    service: Service
    url: str
    session: aiohttp.ClientSession
    scrape_failures: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def symbol(self) -> str:
        return self.kit.symbols[0]

    async def scrape(self) -> Samples:
        async with self.session.get(f"{self.url}/metrics") as resp:
            if resp.status != 200:
                self.scrape_failures += 1
            assert resp.status == 200
            return parse_metrics(await resp.text())

    def get(self, s: Samples, name: str, **labels: str) -> float:
        labels = {"exchange": self.kit.exchange, **labels}
        return s.get((name, frozenset(labels.items())), math.nan)

    def valid(self, s: Samples, symbols: tuple[str, ...] | None = None) -> bool:
        return all(
            self.get(s, "mmradar_book_valid", symbol=x) == 1 for x in symbols or self.kit.symbols
        )

    def wrong(self, s: Samples, symbol: str) -> str | None:
        """What differs between the service's book and the venue's truth (None: equal)."""
        bids, asks = self.kit.truth(self.venue, symbol)
        if not bids or not asks:
            return "the truth is empty"
        ref = market_reference(bids, asks, {"buy": 0, "sell": 0})  # type: ignore[dict-item]
        got = {
            "bid": self.get(s, "mmradar_best_bid_price", symbol=symbol),
            "ask": self.get(s, "mmradar_best_ask_price", symbol=symbol),
            "levels_bid": self.get(s, "mmradar_book_levels", symbol=symbol, side="bid"),
            "levels_ask": self.get(s, "mmradar_book_levels", symbol=symbol, side="ask"),
        }
        for band in BAND_BPS:
            for side in ("bid", "ask"):
                got[f"depth_{side}_{band}"] = self.get(
                    s, "mmradar_depth_notional", symbol=symbol, side=side, band_bps=str(band)
                )
        # A depth-limited snapshot (USD-M: 1000 levels) cannot know deep levels that did not
        # change since: beyond mmradar_book_complete_within_bps the book is a lower bound.
        complete = min(
            self.get(s, "mmradar_book_complete_within_bps", symbol=symbol, side=side)
            for side in ("bid", "ask")
        )
        bounded = {f"depth_{x}_{b}" for b in BAND_BPS if b > complete for x in ("bid", "ask")}
        if bounded:
            bounded |= {"levels_bid", "levels_ask"}
        for key, value in got.items():
            if key in bounded:
                if not value <= ref[key] * (1 + 1e-9) + 1e-9:
                    return f"{key}: {value!r} > {ref[key]!r} (a lower bound)"
            elif not math.isclose(value, ref[key], rel_tol=1e-9, abs_tol=1e-9):
                return f"{key}: {value!r} != {ref[key]!r}"
        return None

    def sane(self, s: Samples) -> None:
        """A valid book must look like a book (the sampler's check during the fault)."""
        for symbol in self.kit.symbols:
            if self.get(s, "mmradar_book_valid", symbol=symbol) != 1:
                continue
            bid = self.get(s, "mmradar_best_bid_price", symbol=symbol)
            ask = self.get(s, "mmradar_best_ask_price", symbol=symbol)
            depths = [
                self.get(s, "mmradar_depth_notional", symbol=symbol, side=side, band_bps=str(b))
                for b in BAND_BPS
                for side in ("bid", "ask")
            ]
            if not (bid < ask) or not all(math.isfinite(d) and d >= 0 for d in depths):
                self.violations.append(f"{symbol} valid but bid {bid} ask {ask} depth {depths}")

    async def settle(
        self, deadline_s: float, symbols: tuple[str, ...] | None = None
    ) -> tuple[float, Samples]:
        """Wait until every book is valid and equal to the truth; returns (seconds, samples).

        While books are valid the venue is paused for the comparison (its truth then stands
        still), and resumed if they differ or are not valid (a stream needs to move on).
        """
        symbols = symbols or self.kit.symbols
        t0 = time.monotonic()
        first_valid: float | None = None
        last = "never valid"

        async def settled() -> Samples | None:
            nonlocal first_valid, last
            s = await self.scrape()
            if not self.valid(s, symbols):
                return None
            if first_valid is None:
                first_valid = time.monotonic() - t0
            self.venue.pause()
            wrong: dict[str, Any] = {}

            async def landed() -> bool:
                # Frames in flight have landed once the books equal the (still) truth.
                nonlocal s, wrong
                s = await self.scrape()
                wrong = (
                    {x: self.wrong(s, x) for x in symbols}
                    if self.valid(s, symbols)
                    else {"": "not valid"}
                )
                return not any(wrong.values())

            with contextlib.suppress(AssertionError):  # still wrong: resume, and poll again
                await wait_until(landed, "frames in flight to land", timeout_s=0.3, interval_s=0.05)
            self.venue.resume()
            if not any(wrong.values()):
                return s
            last = str(wrong)
            first_valid = None
            return None

        s = await wait_until(
            settled,
            f"{self.kit.exchange}: every book valid and equal to the truth",
            timeout_s=deadline_s,
            interval_s=0.1,
            detail=lambda: last,
        )
        assert first_valid is not None
        return first_valid, s


@contextlib.asynccontextmanager
async def _cell(
    kit: Kit,
    *,
    fast: bool = False,
    symbols: tuple[str, ...] | None = None,
    prepare: Callable[[FaultProxy], None] | None = None,
    **options: Any,
) -> AsyncIterator[Cell]:
    venue = kit.make(fast)
    await venue.start()
    proxy = FaultProxy(venue.ws_base, venue.rest_base)
    await proxy.start()
    if prepare is not None:
        prepare(proxy)
    settings = parse_settings(
        {
            "http": {"listen": "127.0.0.1:0"},
            "feeds": [
                {
                    "exchange": kit.exchange,
                    "symbols": list(symbols or kit.symbols),
                    "ws_url": proxy.url_ws,
                    "rest_url": proxy.url_rest,
                }
            ],
            "flight_recorder": {"max_files": 0},
        },
        env={},
        supported=VENUE_NAMES,
    )
    policy = ResyncPolicy(backoff_initial_s=0.05, backoff_max_s=0.2, park_after=1000)
    options = {"resync_policy": policy, "rest_timeout_s": 1.0, **options}
    service = Service(settings, backoff_factory=_fast_backoff, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        server = service.server
        assert server is not None
        await wait_until(lambda: server.port != 0, "the metrics server to start", timeout_s=30)
        async with aiohttp.ClientSession() as session:
            yield Cell(kit, venue, proxy, service, service.server.url, session)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await proxy.stop()
        await venue.stop()


# --------------------------------------------------------------------------------------------
# The faults
# --------------------------------------------------------------------------------------------


def _rewrite_level(kit: Kit, symbol: str, where: int, token: str) -> Callable[[str], str | None]:
    """Rewrite the next depth update of ``symbol``: its first level's price (``where`` 0) or
    quantity (1) becomes the raw JSON ``token``; the frame keeps its place in the sequence."""

    def rewrite(text: str) -> str | None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(msg, dict):
            return None
        levels = kit.levels(msg)
        if not levels or kit.symbol_of(msg) != symbol:
            return None
        levels[0][kit.level_keys[where]] = _SENTINEL
        return orjson.dumps(msg).decode().replace(f'"{_SENTINEL}"', token)

    return rewrite


def _rewrite_crossed(kit: Kit, cell: Cell) -> Callable[[str], str | None]:
    """Rewrite the next depth update of the symbol so that it adds a bid above the best ask."""
    symbol = cell.symbol

    def rewrite(text: str) -> str | None:
        msg = orjson.loads(text)
        levels = kit.levels(msg) if isinstance(msg, dict) else None
        if not levels or kit.symbol_of(msg) != symbol:
            return None
        _, asks = kit.truth(cell.venue, symbol)
        best_ask = min(float(p) for p in asks)
        level = levels[0]
        price_text = str(level[kit.level_keys[0]])
        decimals = len(price_text.split(".")[1]) if "." in price_text else 0
        crossed = f"{best_ask * 1.002:.{decimals}f}"
        new = dict(level) if isinstance(level, dict) else list(level)
        new[kit.level_keys[0]] = float(crossed) if kit.numeric else crossed
        new[kit.level_keys[1]] = 1.0 if kit.numeric else "1"  # a resting level, not a removal
        if kit.exchange == "coinbase":
            new["side"] = "bid"
            levels.insert(0, new)
        else:
            data = (
                msg.get("data", msg)
                if kit.exchange.startswith("binance")
                else (msg["data"][0] if kit.exchange in ("kraken", "okx") else msg["data"])
            )
            key = "b" if "b" in data else "bids"
            data.setdefault(key, []).insert(0, new)
        return orjson.dumps(msg).decode()

    return rewrite


async def _gap(cell: Cell) -> None:
    v, s = cell.venue, cell.symbol
    {"binance": lambda: v.skip_next_depth(s), "binance-usdm": lambda: v.skip_next_depth(s),
     "coinbase": lambda: v.lose_next_update(s), "okx": lambda: v.skip_next_update(s),
     "bybit": lambda: v.skip_next_delta(s)}[cell.kit.exchange]()  # fmt: skip


async def _checksum(cell: Cell) -> None:
    cell.venue.corrupt_next_checksum(cell.symbol)


async def _depth_frames(cell: Cell, at_least: int = 6) -> list[str]:
    """The depth updates of the cell's symbol forwarded so far (oldest first); waits for
    ``at_least`` of them."""
    with contextlib.suppress(AssertionError):  # fewer after 10 s: the test goes on with them
        await wait_until(
            lambda: len(_depth_updates(cell)) >= at_least,
            f"{at_least} depth updates through the proxy",
            timeout_s=10,
            interval_s=0.05,
        )
    out = _depth_updates(cell)
    assert out, "no depth update of the symbol went through the proxy"
    return out


def _depth_updates(cell: Cell) -> list[str]:
    out = []
    for text in cell.proxy.history(""):
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError, KeyError, IndexError):
            msg = orjson.loads(text)
            if (
                isinstance(msg, dict)
                and cell.kit.levels(msg)
                and cell.kit.symbol_of(msg) == cell.symbol
            ):
                out.append(text)
    return out


async def _duplicate(cell: Cell) -> None:
    cell.proxy.inject((await _depth_frames(cell))[-1])


async def _out_of_order(cell: Cell) -> None:
    frames = await _depth_frames(cell)
    cell.proxy.inject(frames[max(0, len(frames) - 6)])  # an older update arrives late


async def _garbage(cell: Cell) -> None:
    cell.proxy.inject('{"this is": not json')


async def _unknown(cell: Cell) -> None:
    cell.proxy.inject('{"surprise": {"from": "the venue"}, "n": 1}')


def _malformed(where: int, token_text: str, token_number: str) -> Callable[[Cell], Awaitable[None]]:
    async def inject(cell: Cell) -> None:
        token = token_number if cell.kit.numeric else token_text
        cell.proxy.rewrites.append(_rewrite_level(cell.kit, cell.symbol, where, token))

    return inject


async def _crossed(cell: Cell) -> None:
    cell.proxy.rewrites.append(_rewrite_crossed(cell.kit, cell))


async def _oversized(cell: Cell) -> None:
    cell.proxy.inject("x" * (24 * 1024 * 1024))


async def _half_open(cell: Cell) -> None:
    cell.proxy.half_open = True

    async def reconnected() -> bool:
        return cell.get(await cell.scrape(), "mmradar_feed_reconnects_total", reason="stale") >= 1

    # Open again after a stale reconnect, or after 10 s whatever happened (the row's checks
    # then tell).
    with contextlib.suppress(AssertionError):
        await wait_until(reconnected, "a stale reconnect", timeout_s=10, interval_s=0.05)
    cell.proxy.half_open = False


async def _reset(cell: Cell) -> None:
    cell.proxy.abort()


async def _maintenance(cell: Cell) -> None:
    v = cell.venue
    x = cell.kit.exchange
    if x.startswith("binance"):
        v.send_server_shutdown()
        v.close_connections()
    elif x == "okx":
        v.send_upgrade_notice()
    elif x == "kraken":
        cell.proxy.inject(
            '{"channel":"status","type":"update","data":[{"version":"2.0.0",'
            '"system":"maintenance","api_version":"v2","connection_id":1}]}'
        )
        v.close_connections(1001, "maintenance")
    elif x == "coinbase":
        v.close_connections(1001, "going away")
    else:
        for conn in list(cell.proxy.conns):
            await conn.client.close(code=1001, message=b"maintenance")


def _rest(fault: RestFault) -> Callable[[Cell], Awaitable[None]]:
    async def inject(cell: Cell) -> None:
        cell.proxy.rest_faults.append(fault)
        await _gap(cell)  # the book resyncs: its snapshot request meets the fault

    return inject


async def _rest_http_date(cell: Cell) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    cell.proxy.rest_faults.append(RestFault("status", 418, {"Retry-After": when}))
    await _gap(cell)


async def _burst(cell: Cell) -> None:
    cell.proxy.holding = True
    # The fault itself, not synchronisation: 2.5 s of frames are held, then sent at once.
    await asyncio.sleep(2.5)
    cell.burst = cell.proxy.release()  # type: ignore[attr-defined]


async def _subscription_error(cell: Cell) -> None:
    pass  # the rewrite is in place from the start (see FAULTS)


@dataclass(frozen=True)
class Expect:
    """What a fault must leave behind.

    Attributes:
        resync: resync reasons allowed; at least one must be counted (empty: none may be).
        bad: the ``mmradar_feed_bad_messages_total`` reason that must move.
        reconnect: ``mmradar_feed_reconnects_total`` reasons, one of which must move.
        snapshot: the ``mmradar_snapshot_requests_total`` result that must move.
        others_unaffected: the feed's other symbol is not resynced.
    """

    resync: frozenset[str] = frozenset()
    bad: str | None = None
    reconnect: frozenset[str] = frozenset()
    snapshot: str | None = None
    others_unaffected: bool = False


def _e(
    resync: tuple[str, ...] = (),
    bad: str | None = None,
    reconnect: tuple[str, ...] = (),
    snapshot: str | None = None,
    others: bool = False,
) -> Expect:
    return Expect(frozenset(resync), bad, frozenset(reconnect), snapshot, others)


@dataclass(frozen=True)
class Fault:
    """A row of the matrix: the fault, how it is injected, what each venue must do."""

    name: str
    inject: Callable[[Cell], Awaitable[None]]
    expect: Expect | Mapping[str, Expect]
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    deadline_s: float = 15.0
    options: Mapping[str, Any] = field(default_factory=dict)
    fast: bool = False

    def expected(self, exchange: str) -> Expect:
        if isinstance(self.expect, Expect):
            return self.expect
        return self.expect[exchange]


_NO_REST = "no REST snapshots: the venue pushes its snapshot on the socket"
_NO_CHECKSUM = "the venue publishes no checksum"
_MALFORMED = _e(("gap",), bad="malformed", others=True)
_STREAM_ONLY = {x: _NO_REST for x in ("coinbase", "kraken", "bybit")}

#: The matrix (docs/reliability.md renders it with the measured recovery times).
FAULTS: tuple[Fault, ...] = (
    Fault("sequence gap", _gap,
          {"binance": _e(("gap",)), "binance-usdm": _e(("gap",)),
           # one sequence per connection: every book it carries is resynced
           "coinbase": _e(("gap",)), "okx": _e(("gap",), others=True),
           "bybit": _e(("gap",))},
          {"kraken": "Kraken v2 books carry no sequence: a lost update fails the checksum "
                     "(row 'checksum mismatch')"}),
    Fault("duplicate message", _duplicate,
          {"binance": _e(), "binance-usdm": _e(), "coinbase": _e(("gap",)),
           "kraken": _e(), "okx": _e(("gap",), others=True), "bybit": _e()}),
    Fault("out-of-order message", _out_of_order,
          {"binance": _e(), "binance-usdm": _e(), "coinbase": _e(("gap",)),
           # an old update re-applied: caught by the checksum or as a crossed book (Kraken has
           # no sequence: one touching only levels below the top 10 could not be caught)
           "kraken": _e(("checksum", "crossed")), "okx": _e(("gap",), others=True),
           "bybit": _e()}),
    Fault("checksum mismatch", _checksum, _e(("checksum",), others=True),
          {"binance": _NO_CHECKSUM, "binance-usdm": _NO_CHECKSUM, "coinbase": _NO_CHECKSUM,
           "bybit": _NO_CHECKSUM}),
    Fault("garbage frame", _garbage, _e(bad="malformed")),
    Fault("JSON of unknown shape", _unknown,
          # Coinbase: an object without its envelope ("channel") counts as malformed
          {x: _e(bad="malformed" if x == "coinbase" else "unknown") for x in VENUES}),
    Fault("level quantity -1", _malformed(1, '"-1"', "-1"), _MALFORMED),
    Fault("level quantity NaN", _malformed(1, '"NaN"', "NaN"), _MALFORMED),
    Fault("level quantity infinite", _malformed(1, '"inf"', "Infinity"), _MALFORMED),
    Fault("level quantity not a number", _malformed(1, '"abc"', '"abc"'), _MALFORMED),
    Fault("level price absurdly long", _malformed(0, '"' + "9" * 5000 + '"', "9" * 5000),
          _MALFORMED),
    Fault("oversized frame (24 MiB)", _oversized,
          _e(("reconnect",), reconnect=("closed", "error"))),
    Fault("half-open connection", _half_open, _e(("reconnect", "stale"), reconnect=("stale",)),
          options={"heartbeat_window_s": 1.0}),
    Fault("TCP reset mid-stream", _reset, _e(("reconnect",), reconnect=("closed", "error"))),
    Fault("maintenance close", _maintenance,
          {"binance": _e(("reconnect",), reconnect=("venue_closing",)),
           "binance-usdm": _e(("reconnect",), reconnect=("venue_closing",)),
           "okx": _e(("reconnect",), reconnect=("venue_closing",)),
           "kraken": _e(("reconnect",), reconnect=("closed",)),
           "coinbase": _e(("reconnect",), reconnect=("closed",)),
           "bybit": _e(("reconnect",), reconnect=("closed",))}),
    Fault("REST 500", _rest(RestFault("status", 500)), _e(("gap",), snapshot="error"),
          {x: _NO_REST for x in ("coinbase", "kraken", "bybit")}),
    Fault("REST 429, Retry-After seconds", _rest(RestFault("status", 429, {"Retry-After": "1"})),
          _e(("gap",), snapshot="rate_limited"), _STREAM_ONLY),
    Fault("REST 418, Retry-After HTTP-date", _rest_http_date,
          _e(("gap",), snapshot="rate_limited"), _STREAM_ONLY),
    Fault("REST call hangs", _rest(RestFault("hang", seconds=5.0)), _e(("gap",), snapshot="error"),
          {x: _NO_REST for x in ("coinbase", "kraken", "bybit")}),
    Fault("REST snapshot older than the stream", _rest(RestFault("stale")), _e(("gap",)),
          {x: _NO_REST for x in ("coinbase", "kraken", "bybit")}),
    Fault("book crossed by the venue's own updates", _crossed,
          {"binance": _e(("crossed",), others=True), "binance-usdm": _e(("crossed",)),
           "coinbase": _e(("crossed",), others=True), "kraken": _e(("checksum", "crossed")),
           "okx": _e(("checksum", "crossed"), others=True), "bybit": _e(("crossed",))}),
    Fault("burst after a pause", _burst, _e(), fast=True),
)  # fmt: skip


def _cells() -> Iterator[Any]:
    """Every (fault, venue) cell that applies; the others are not generated at all (a suite
    that reports skips hides what did not run), their reasons are in the table and in
    docs/reliability.md (test_the_table_names_every_venue checks both)."""
    for fault in FAULTS:
        for exchange in VENUES:
            if exchange not in fault.not_applicable:
                yield pytest.param(fault, exchange, id=f"{fault.name}-{exchange}")


def _counts(cell: Cell, s: Samples) -> dict[str, float]:
    out: dict[str, float] = {}
    for (name, labels), value in s.items():
        lv = dict(labels)
        if lv.get("exchange") != cell.kit.exchange:
            continue
        if name == "mmradar_book_resyncs_total":
            out[f"resync:{lv['symbol']}:{lv['reason']}"] = value
        elif name == "mmradar_feed_bad_messages_total":
            out[f"bad:{lv['reason']}"] = value
        elif name == "mmradar_feed_reconnects_total":
            out[f"reconnect:{lv['reason']}"] = value
        elif name == "mmradar_snapshot_requests_total":
            out[f"snapshot:{lv['result']}"] = value
    return out


def _moved(before: Mapping[str, float], after: Mapping[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def _evidence(cell: Cell, expect: Expect, before: dict[str, float], s: Samples) -> bool:
    after = _counts(cell, s)
    sym = cell.symbol
    ok = True
    if expect.resync:
        ok &= any(_moved(before, after, f"resync:{sym}:{r}") > 0 for r in expect.resync)
    if expect.bad:
        ok &= _moved(before, after, f"bad:{expect.bad}") > 0
    if expect.reconnect:
        ok &= any(_moved(before, after, f"reconnect:{r}") > 0 for r in expect.reconnect)
    if expect.snapshot:
        ok &= _moved(before, after, f"snapshot:{expect.snapshot}") > 0
    return ok


def _record(row: dict[str, Any]) -> None:
    path = os.environ.get("MMRADAR_FAULT_RESULTS")
    if path:
        with open(path, "ab") as fh:
            fh.write(orjson.dumps(row) + b"\n")


@timed
@pytest.mark.parametrize(("fault", "exchange"), list(_cells()))
async def test_fault(
    fault: Fault, exchange: str, caplog: pytest.LogCaptureFixture, timed: bool
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar")
    kit = KITS[exchange]
    expect = fault.expected(exchange)
    async with _cell(kit, fast=fault.fast, **fault.options) as cell:
        await cell.settle(30.0)
        before = _counts(cell, await cell.scrape())
        stop_sampling = asyncio.Event()

        async def sampler() -> None:
            while not stop_sampling.is_set():
                cell.sane(await cell.scrape())
                await asyncio.sleep(0.05)  # the sampling period (not a wait for anything)

        sampling = asyncio.create_task(sampler())
        t0 = time.monotonic()
        try:
            await fault.inject(cell)
            # The evidence first, then recovery to the exact book.
            deadline_s = limit(fault.deadline_s, timed)
            deadline = t0 + deadline_s
            s = await cell.scrape()

            async def evident() -> bool:
                nonlocal s
                s = await cell.scrape()
                return _evidence(cell, expect, before, s)

            def moved() -> str:
                counts = _counts(cell, s)
                return f"counters moved: { {k: v - before.get(k, 0) for k, v in counts.items() if v != before.get(k, 0)} }"  # noqa: E501

            await wait_until(
                evident,
                f"evidence of {fault.name}: {expect}",
                timeout_s=deadline_s,
                interval_s=0.05,
                detail=moved,
            )
            detected_s = time.monotonic() - t0
            remaining = max(1.0, deadline - time.monotonic())
            _, s = await cell.settle(remaining)
            recovered_s = time.monotonic() - t0
        finally:
            stop_sampling.set()
            await sampling
        after = _counts(cell, s)
        # No resync with a reason the row does not name.
        allowed = expect.resync
        for symbol in kit.symbols:
            for key in after:
                if key.startswith(f"resync:{symbol}:") and _moved(before, after, key) > 0:
                    reason = key.rsplit(":", 1)[1]
                    if symbol != cell.symbol and expect.others_unaffected:
                        raise AssertionError(f"{symbol} (not the faulty symbol) resynced: {key}")
                    assert reason in allowed, f"unexpected resync {key} for {fault.name}"
        assert not cell.violations, cell.violations[:3]
        assert cell.scrape_failures == 0
        _record(
            {
                "fault": fault.name,
                "exchange": exchange,
                "detected_s": round(detected_s, 2),
                "recovered_s": round(recovered_s, 2),
                "burst": getattr(cell, "burst", None),
            }
        )


# --------------------------------------------------------------------------------------------
# Faults before any connection: DNS failure, geo-blocks (every venue takes the same path)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exchange", VENUES)
async def test_dns_failure_is_logged_once_and_retried_slowly(
    exchange: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar")
    settings = parse_settings(
        {
            "http": {"listen": "127.0.0.1:0"},
            "feeds": [
                {
                    "exchange": exchange,
                    "symbols": list(KITS[exchange].symbols),
                    "ws_url": "ws://mmradar-fault-matrix.invalid:9",
                    "rest_url": "http://mmradar-fault-matrix.invalid:9",
                }
            ],
            "flight_recorder": {"max_files": 0},
        },
        env={},
        supported=VENUE_NAMES,
    )
    service = Service(settings, backoff_factory=_fast_backoff)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:

        def reconnects() -> float | None:
            return service.registry.get_sample_value(
                "mmradar_feed_reconnects_total", {"exchange": exchange, "reason": "error"}
            )

        plans = len(service.pipelines[0].venue.connections(KITS[exchange].symbols, trades=True))
        await wait_until(lambda: (reconnects() or 0) >= plans, "a first attempt per connection")
        # A negative check: no second attempt within 2 s (the fast back-off's 0.05 s forty times).
        await asyncio.sleep(2.0)
        # One attempt per connection: the next is a minute away (fast back-off notwithstanding).
        assert reconnects() == plans, reconnects()
        lines = [r.getMessage() for r in caplog.records if "DNS lookup failed" in r.getMessage()]
        assert len(lines) == plans and all(exchange in line for line in lines), lines
        assert "retrying every 60 s" in lines[0]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("status", [451, 403])
@pytest.mark.parametrize("exchange", VENUES)
async def test_geo_block_is_logged_once_and_retried_slowly(
    exchange: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar")
    kit = KITS[exchange]
    venue = kit.make(False)
    await venue.start()
    proxy = FaultProxy(venue.ws_base, venue.rest_base)
    await proxy.start()
    proxy.refuse_status = status
    try:
        async with _cell_on(kit, proxy) as cell:
            plans = len(cell.service.pipelines[0].venue.connections(kit.symbols, trades=True))
            await wait_until(lambda: proxy.refused >= plans, "a first refusal per connection")
            # A negative check: no second attempt within 2 s (the fast back-off's 0.05 s forty
            # times), and no book valid.
            await asyncio.sleep(2.0)
            s = await cell.scrape()
            assert not cell.valid(s)
            assert proxy.refused == plans
            lines = [r.getMessage() for r in caplog.records if f"HTTP {status}" in r.getMessage()]
            assert len(lines) == plans and exchange in lines[0], lines
            assert "retrying every 60 s" in lines[0]
    finally:
        await proxy.stop()
        await venue.stop()


@contextlib.asynccontextmanager
async def _cell_on(kit: Kit, proxy: FaultProxy) -> AsyncIterator[Cell]:
    settings = parse_settings(
        {
            "http": {"listen": "127.0.0.1:0"},
            "feeds": [
                {
                    "exchange": kit.exchange,
                    "symbols": list(kit.symbols),
                    "ws_url": proxy.url_ws,
                    "rest_url": proxy.url_rest,
                }
            ],
            "flight_recorder": {"max_files": 0},
        },
        env={},
        supported=VENUE_NAMES,
    )
    service = Service(settings, backoff_factory=_fast_backoff)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        server = service.server
        assert server is not None
        await wait_until(lambda: server.port != 0, "the metrics server to start", timeout_s=30)
        async with aiohttp.ClientSession() as session:
            yield Cell(kit, None, proxy, service, service.server.url, session)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


# --------------------------------------------------------------------------------------------
# A subscription error for one symbol: the other keeps going
# --------------------------------------------------------------------------------------------

_BOGUS = {"coinbase": "NOPE-USD", "kraken": "NOPE/USD", "okx": "NOPE-USDT", "bybit": "NOPEUSDT"}


# Not applicable to Binance: streams are named in the URL; an unknown stream is accepted and
# silent (the staleness rules cover it). Coinbase and Bybit refuse a whole subscribe request that
# names an unknown symbol: the service subscribes symbol by symbol there, so only the bad one
# is refused.
@pytest.mark.parametrize("exchange", [x for x in VENUES if not x.startswith("binance")])
async def test_subscription_error_for_one_symbol(exchange: str) -> None:
    kit = KITS[exchange]
    bad_symbol = kit.symbols[-1] if len(kit.symbols) > 1 else None
    extra = () if bad_symbol else (_BOGUS[exchange],)
    symbols = (*kit.symbols, *extra)
    target = bad_symbol or _BOGUS[exchange]

    def rewrite(text: str) -> str | None:
        if bad_symbol and f'"{bad_symbol}"' in text:
            return text.replace(f'"{bad_symbol}"', f'"{_BOGUS[exchange]}"')
        return None

    def prepare(proxy: FaultProxy) -> None:
        proxy.client_rewrite = rewrite

    async with _cell(kit, symbols=symbols, prepare=prepare) as cell:
        good = tuple(s for s in symbols if s != target)
        t0 = time.monotonic()
        s = await cell.scrape()

        async def refused_and_others_valid() -> bool:
            nonlocal s
            s = await cell.scrape()
            errors = cell.get(s, "mmradar_feed_bad_messages_total", reason="venue_error")
            return errors >= 1 and cell.valid(s, good)

        await wait_until(
            refused_and_others_valid,
            f"a venue error for {target} and every other book valid",
            timeout_s=20,
            interval_s=0.05,
            detail=lambda: str([cell.valid(s, (x,)) for x in symbols]),
        )
        assert not cell.valid(s, (target,))
        await cell.settle(15.0, good)
        _record(
            {
                "fault": "subscription error for one symbol",
                "exchange": exchange,
                "detected_s": round(time.monotonic() - t0, 2),
                "recovered_s": None,
            }
        )


def test_the_table_names_every_venue() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    for fault in FAULTS:
        assert set(fault.not_applicable) <= set(VENUES), fault.name
        for exchange in VENUES:
            if exchange in fault.not_applicable:
                assert fault.not_applicable[exchange].strip(), (fault.name, exchange)
            else:
                fault.expected(exchange)  # raises KeyError if a cell is missing
        assert fault.name in doc, f"docs/reliability.md has no row for {fault.name!r}"
    assert Path(__file__).name == "test_fault_matrix.py"


# --------------------------------------------------------------------------------------------
# Reconnects are the connection's failures, not the book's
# --------------------------------------------------------------------------------------------


async def test_repeated_reconnects_do_not_park_a_healthy_book() -> None:
    """Eight TCP resets in a row, each followed by a good resync: the book's resync back-off
    must not count them (the connection's back-off spaces them) and never parks it. Before,
    six reconnects within 30 s parked a REST venue's book for 5 minutes."""
    kit = KITS["binance"]
    async with _cell(kit, resync_policy=ResyncPolicy()) as cell:
        await cell.settle(30.0)
        for _ in range(8):
            reopened = cell.proxy.accepted + len(cell.proxy.conns)
            cell.proxy.abort()
            await wait_until(
                lambda: cell.proxy.accepted >= reopened,  # noqa: B023 (awaited in the loop)
                "every connection reopened after a reset",
                timeout_s=10,
            )

            async def resynced() -> bool:
                return bool(cell.valid(await cell.scrape()) and cell.proxy.conns)

            await wait_until(resynced, "a resync after a reset", timeout_s=10, interval_s=0.05)
        s = await cell.scrape()
        assert cell.get(s, "mmradar_book_parks_total", symbol=cell.symbol) == 0
        assert (
            cell.get(s, "mmradar_book_resyncs_total", symbol=cell.symbol, reason="reconnect") >= 8
        )
        await cell.settle(15.0)
