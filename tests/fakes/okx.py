"""An embedded OKX venue on loopback: today's public ``books``/``trades`` protocol, seeded.

:class:`EmbeddedOkx` is one asyncio server on ``127.0.0.1``: the same port answers websocket
upgrades on ``/ws/v5/public`` and plain HTTP GETs on ``/api/v5/market/books``. Its books are
driven by a small seeded random-walk generator (one per instrument, deterministic: the n-th
update of an instrument is the same on every run), and it keeps the ground truth so tests can
compare the service's book with what the venue actually published.

Reproduced (docs/venues/okx.md, OKX v5 docs as of 2026):

* Subscribe/unsubscribe ``{"id"?, "op", "args": [{"channel", "instId"}, ...]}``: one ack per
  argument ``{"id"?, "event": "subscribe", "arg": {...}, "connId": "…"}``; errors ``{"id"?,
  "event": "error", "code", "msg", "connId"}``: ``60012`` invalid request (not JSON, unknown
  ``op``, missing ``args``), ``60018`` unknown channel or instrument, ``60014`` more than 480
  subscribe/unsubscribe operations per hour on a connection.
* ``books``: incremental updates ``{"arg", "action": "update", "data": [{"asks", "bids", "ts",
  "checksum", "prevSeqId", "seqId"}]}``, levels ``[px, sz, "0", numOrders]`` (``sz "0"``
  removes), ``seqId`` per instrument advancing by irregular steps, ``prevSeqId`` = the previous
  update's ``seqId``. The initial websocket snapshot is delisted (books start from REST);
  ``ws_snapshot=True`` restores it (``action "snapshot"``, ``prevSeqId -1``). ``checksum`` is 0
  (deprecated since 2026-06-23) unless ``checksums=True``, which sends the real signed CRC32
  of the top 25 levels.
* ``trades``: ``{"arg", "data": [{"instId", "tradeId", "px", "sz", "side", "ts", "count",
  "source"}]}``, ``side`` = the taker's side; each trade takes liquidity from the touch, and the
  same generator step's book update reflects it.
* Text ``ping`` answered with text ``pong``; a connection with nothing pushed to it for
  ``idle_timeout_s`` (30 s at OKX) is closed.
* REST ``GET /api/v5/public/instruments?instType=SPOT|SWAP|FUTURES[&instId=][&instFamily=]``
  (OKX docs "Get instruments", https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments)
  → ``{"code": "0", "msg": "", "data": [{"instType", "instId", "ctVal", "ctMult", "ctValCcy",
  "ctType", "settleCcy", "instFamily", "uly", "lotSz", "tickSz", "state", …}]}`` listing every
  instrument of that type the venue serves (OKX's full field set; derivatives carry the contract
  value of :data:`CONTRACTS`, spot has ``baseCcy``/``quoteCcy`` and empty ``ct*`` fields).
  Errors: ``50014`` (missing ``instType``), ``51000`` (unknown ``instType``; ``OPTION`` without
  ``instFamily``/``uly``), ``51001`` (``instId`` not listed) with HTTP 400; more than 20 requests
  per 2 s → HTTP 429 ``50011``. ``instrument_overrides`` edits listed fields (an unusable
  ``ctVal``, a wrong ``ctValCcy``) to test the service's refusals.
* REST ``GET /api/v5/market/books?instId=&sz=`` (``sz`` default 1, at most 400) →
  ``{"code": "0", "msg": "", "data": [{"asks", "bids", "ts", "seqId"}]}`` cut from the truth;
  errors ``50014`` (missing ``instId``), ``51000`` (bad ``sz``), ``51001`` (unknown
  instrument) with HTTP 400; more than 40 requests per 2 s → HTTP 429 ``50011``.

Sizes: on ``-SWAP`` and futures instruments ``sz`` counts contracts (lot ``10**-size
decimals``), as at OKX; :meth:`trades` keeps every trade's text so tests can value it.

Fault injection: :meth:`skip_next_update` (a sequence gap), :meth:`corrupt_next_checksum`,
:meth:`reset_sequence` (a maintenance reset, ``seqId < prevSeqId``), :meth:`send_idle_update`
(``seqId == prevSeqId``, no levels), :meth:`drop_connections`, :meth:`send_upgrade_notice`
(``64008``), :meth:`send_raw`, :meth:`fail_next_rest`, :meth:`pause` / :meth:`resume`;
``stale_rest_answers`` serves the first REST snapshots from the book as it was before
``warmup_updates`` (older than anything streamed since), like OKX's cached endpoint lagging.

Not reproduced: TLS, login and private channels, the other book channels (``books5``,
``bbo-tbt``, ``*-l2-tbt``), the 3-connections-per-second limit, the 64 KB subscribe limit; the
idle update after ~60 s without change is sent only on request (:meth:`send_idle_update`). The
HTTP status of REST parameter errors (400) is this venue's choice; the OKX codes are OKX's.
"""

from __future__ import annotations

import asyncio
import email.utils
import heapq
import http
import ipaddress
import logging
import random
import time
import urllib.parse
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from mmradar.embedded.loopback import Connection, LoopbackVenue

__all__ = ["EmbeddedOkx", "OkxVenueStats"]

logger = logging.getLogger(__name__)

Clock = Callable[[], int]
"""Wall clock in ns since the epoch (``time.time_ns``)."""

WS_PATH = "/ws/v5/public"
BOOKS_PATH = "/api/v5/market/books"
INSTRUMENTS_PATH = "/api/v5/public/instruments"
_INSTRUMENTS_LIMIT = 20  # requests per window per IP and instrument type
_INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")
_MAX_SZ = 400
_CHECKSUM_DEPTH = 25
_REST_LIMIT = 40  # requests per window per IP
_REST_WINDOW_S = 2.0
_OPS_PER_HOUR = 480
_INSTRUMENTS: dict[str, tuple[int, int, int]] = {
    # instId: (initial mid in ticks, price decimals, size decimals)
    "BTC-USDT": (600_000, 1, 8),  # 60000.0, tick 0.1
    "ETH-USDT": (300_000, 2, 6),  # 3000.00, tick 0.01
    "SOL-USDT": (15_000, 2, 4),  # 150.00, tick 0.01
    "BTC-USDT-SWAP": (600_000, 1, 2),  # contracts, lot 0.01
    "ETH-USDT-SWAP": (300_000, 2, 2),  # contracts, lot 0.01
    "BTC-USD-SWAP": (600_000, 1, 0),  # contracts of 100 USD, lot 1
    "BTC-USD-260626": (600_500, 1, 0),  # contracts of 100 USD, lot 1
}
#: Contract value of the derivatives served: instId -> (ctType, ctVal, ctValCcy, settleCcy).
CONTRACTS: dict[str, tuple[str, str, str, str]] = {
    "BTC-USDT-SWAP": ("linear", "0.01", "BTC", "USDT"),
    "ETH-USDT-SWAP": ("linear", "0.1", "ETH", "USDT"),
    "BTC-USD-SWAP": ("inverse", "100", "USD", "BTC"),
    "BTC-USD-260626": ("inverse", "100", "USD", "BTC"),
}
_DEFAULT_INSTRUMENT = (100_000, 3, 4)
_BAND_TICKS = 80  # levels further than this from the touch are removed
_RESET_SEQ = 1  # seqId the first reset restarts from


def _fmt(n: int, decimals: int) -> str:
    """Integer ``n`` in units of ``10**-decimals`` as OKX prints it (no trailing zeros)."""
    whole, frac = divmod(n, 10**decimals)
    if frac == 0 or decimals == 0:
        return str(whole)
    return f"{whole}.{frac:0{decimals}d}".rstrip("0")


def _signed_crc32(text: str) -> int:
    crc = zlib.crc32(text.encode())
    return crc - 0x1_0000_0000 if crc >= 0x8000_0000 else crc


@dataclass(frozen=True, slots=True)
class OkxVenueStats:
    """Counters of an :class:`EmbeddedOkx` (cumulative since construction).

    Attributes:
        connections_accepted: websocket connections that completed the handshake.
        connections_open: websocket connections currently open.
        subscriptions: live (connection, channel, instrument) subscriptions.
        frames_sent: websocket text frames queued to clients.
        updates: book updates generated (sent or skipped), all instruments.
        updates_skipped: updates applied to the truth but sent nowhere (:meth:`skip_next_update`).
        trades: trades generated.
        pongs: ``pong`` replies sent.
        rest_requests: HTTP requests answered, errors included.
        instrument_requests: of which ``/api/v5/public/instruments`` requests.
        rest_rejected: REST answers with status 429 (rate limit or forced).
    """

    connections_accepted: int
    connections_open: int
    subscriptions: int
    frames_sent: int
    updates: int
    updates_skipped: int
    trades: int
    pongs: int
    rest_requests: int
    rest_rejected: int
    instrument_requests: int


class _Instrument:
    """One instrument's truth book and its seeded generator."""

    def __init__(self, inst_id: str, seed: int) -> None:
        self.inst_id = inst_id
        mid, self.px_dec, self.sz_dec = _INSTRUMENTS.get(inst_id, _DEFAULT_INSTRUMENT)
        self.rng = random.Random(f"{seed}:{inst_id}")
        rng = self.rng
        self.bids: dict[int, tuple[int, int]] = {}  # price ticks -> (size lots, orders)
        self.asks: dict[int, tuple[int, int]] = {}
        for i in range(60):
            if i == 0 or rng.random() < 0.8:
                self.bids[mid - 1 - i] = self._new_level()
            if i == 0 or rng.random() < 0.8:
                self.asks[mid + 1 + i] = self._new_level()
        self.seq = rng.randrange(10**6, 10**7)
        self.trade_id = rng.randrange(10**8, 10**9)
        self.resets = 0
        self.taker = {"buy": Decimal(0), "sell": Decimal(0)}
        self.trades: list[tuple[str, str, str]] = []  # (side, px, sz) as published
        self.initial = (self.seq, dict(self.bids), dict(self.asks))
        self.initial_ts_ms = 0
        self.stale_answers = 0
        self.ts_ms = 0
        # fault injection
        self.skip = 0
        self.corrupt = 0
        self.reset_next = False

    def _new_level(self) -> tuple[int, int]:
        lots = int(self.rng.lognormvariate(0, 1.2) * 10**self.sz_dec * 0.05) + 1
        return lots, self.rng.randint(1, 30)

    # -- text ---------------------------------------------------------------------------------

    def px(self, ticks: int) -> str:
        return _fmt(ticks, self.px_dec)

    def sz(self, lots: int) -> str:
        return _fmt(lots, self.sz_dec)

    def level(self, ticks: int, entry: tuple[int, int] | None) -> list[str]:
        if entry is None:
            return [self.px(ticks), "0", "0", "0"]
        return [self.px(ticks), self.sz(entry[0]), "0", str(entry[1])]

    def top(self, n: int) -> tuple[list[list[str]], list[list[str]]]:
        """Best ``n`` levels per side, best first, as wire levels."""
        return self.top_of(self.bids, self.asks, n)

    def top_of(
        self, bids: dict[int, tuple[int, int]], asks: dict[int, tuple[int, int]], n: int
    ) -> tuple[list[list[str]], list[list[str]]]:
        return (
            [self.level(p, bids[p]) for p in heapq.nlargest(n, bids)],
            [self.level(p, asks[p]) for p in heapq.nsmallest(n, asks)],
        )

    def checksum(self) -> int:
        bids, asks = self.top(_CHECKSUM_DEPTH)
        parts: list[str] = []
        for i in range(max(len(bids), len(asks))):
            if i < len(bids):
                parts += bids[i][:2]
            if i < len(asks):
                parts += asks[i][:2]
        return _signed_crc32(":".join(parts))

    # -- generator ----------------------------------------------------------------------------

    def step(self) -> tuple[list[list[str]], list[list[str]], list[dict[str, str]]]:
        """Advance the book by one update; returns its (bid, ask) wire levels and trades."""
        rng = self.rng
        changed_bids: dict[int, tuple[int, int] | None] = {}
        changed_asks: dict[int, tuple[int, int] | None] = {}
        trades: list[dict[str, str]] = []
        if rng.random() < 0.35:  # a taker order against the touch
            buy = rng.random() < 0.5
            book, changed = (self.asks, changed_asks) if buy else (self.bids, changed_bids)
            price = min(book) if buy else max(book)
            lots, orders = book[price]
            take = min(lots, int(rng.random() * lots * 1.3) + 1)
            if take < lots:
                book[price] = (lots - take, orders)
                changed[price] = book[price]
            elif len(book) > 1:
                del book[price]
                changed[price] = None
            elif lots > 1:  # never empty a side
                take = lots - 1
                book[price] = (1, orders)
                changed[price] = book[price]
            else:
                take = 0
            if take:
                self.trade_id += rng.randint(1, 3)
                side = "buy" if buy else "sell"
                self.taker[side] += Decimal(self.sz(take))
                self.trades.append((side, self.px(price), self.sz(take)))
                trades.append(
                    {
                        "instId": self.inst_id,
                        "tradeId": str(self.trade_id),
                        "px": self.px(price),
                        "sz": self.sz(take),
                        "side": side,
                        "ts": "",  # set by the caller
                        "count": "1",
                        "source": "0",
                    }
                )
        for _ in range(rng.randint(1, 4)):  # makers adding, amending and cancelling
            is_bid = rng.random() < 0.5
            best_bid, best_ask = max(self.bids), min(self.asks)
            if rng.random() < 0.08 and best_ask - best_bid > 1:
                price = best_bid + 1 if is_bid else best_ask - 1  # improve the touch
            else:
                distance = min(int(rng.expovariate(1 / 8)), _BAND_TICKS - 1)
                price = best_bid - distance if is_bid else best_ask + distance
            book, changed = (self.bids, changed_bids) if is_bid else (self.asks, changed_asks)
            if price in book and rng.random() < 0.3 and len(book) > 1:
                del book[price]
                changed[price] = None
            else:
                book[price] = self._new_level()
                changed[price] = book[price]
        # Keep the book within a band of the touch (bounded, as a depth-limited feed is).
        best_bid, best_ask = max(self.bids), min(self.asks)
        for price in [p for p in self.bids if p < best_bid - _BAND_TICKS]:
            del self.bids[price]
            changed_bids[price] = None
        for price in [p for p in self.asks if p > best_ask + _BAND_TICKS]:
            del self.asks[price]
            changed_asks[price] = None
        return (
            [self.level(p, e) for p, e in changed_bids.items()],
            [self.level(p, e) for p, e in changed_asks.items()],
            trades,
        )

    def next_seq(self) -> tuple[int, int]:
        """``(prevSeqId, seqId)`` of the next update (a reset restarts low, as OKX's does)."""
        prev = self.seq
        if self.reset_next:
            self.reset_next = False
            self.resets += 1
            self.seq = _RESET_SEQ + self.rng.randint(0, 9)
        else:
            self.seq += self.rng.randint(1, 20)
        return prev, self.seq


class _Client(Connection):
    """One websocket connection: its id and subscriptions."""

    def __init__(self, ws: ServerConnection, conn_id: str, max_frames: int) -> None:
        super().__init__(ws, max_frames)
        self.conn_id = conn_id
        self.subscriptions: set[tuple[str, str]] = set()
        self.ops: deque[float] = deque()

    def forget(self) -> None:
        self.subscriptions.clear()


class EmbeddedOkx(LoopbackVenue[_Client]):
    """An OKX public venue on 127.0.0.1 with seeded books, ground truth and fault injection.

    The generator advances every instrument by one update each ``interval_s`` (in
    deterministic order), but only while some connection subscribes to the instrument's
    ``books`` and the venue is not :meth:`pause` d; so a test can connect at leisure. Every
    update is applied to the truth book whether it is sent or skipped.

    Args:
        symbols: instrument ids served (``"BTC-USDT"``, ...).
        seed: generator seed.
        interval_s: seconds between updates of an instrument.
        checksums: send the real checksum instead of 0.
        ws_snapshot: push an ``action: "snapshot"`` on subscribe (OKX before the delisting).
        warmup_updates: updates generated into the truth at :meth:`start`, before anyone
            can subscribe (sent nowhere).
        stale_rest_answers: the first this many REST snapshots of each instrument show the
            book as it was before the warm-up (an older ``seqId`` than the stream's).
        idle_timeout_s: close a connection nothing was pushed to for this long.
        host: listen address; must be an IPv4 loopback address.
        port: listen port; 0 picks a free one.
        clock: wall clock in ns (``ts`` fields).
        max_queue_frames: per-connection send-queue bound; overflowing clients are dropped.
        instrument_overrides: ``{instId: {field: value}}`` applied to the instruments listing.
    """

    def __init__(
        self,
        symbols: Iterable[str] = ("BTC-USDT",),
        *,
        seed: int = 1,
        interval_s: float = 0.02,
        checksums: bool = False,
        ws_snapshot: bool = False,
        warmup_updates: int = 0,
        stale_rest_answers: int = 0,
        idle_timeout_s: float = 30.0,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.time_ns,
        max_queue_frames: int = 10_000,
        instrument_overrides: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback or ":" in host:
            raise ValueError(f"host must be an IPv4 loopback address, not {host!r}")
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self._instruments = {s: _Instrument(s, seed) for s in symbols}
        if not self._instruments:
            raise ValueError("at least one symbol is needed")
        for inst in self._instruments.values():
            inst.stale_answers = stale_rest_answers
        self._warmup_updates = warmup_updates
        self._interval_s = interval_s
        self._checksums = checksums
        self._ws_snapshot = ws_snapshot
        self._idle_timeout_s = idle_timeout_s
        super().__init__(host, port, "okx")
        self._clock = clock
        self._max_queue_frames = max_queue_frames
        self._conn_seq = 0
        self._rest_times: deque[float] = deque()
        self._instrument_times: dict[str, deque[float]] = {}
        self._instrument_overrides = instrument_overrides or {}
        self._forced: deque[int] = deque()
        # counters
        self._n_updates = 0
        self._n_skipped = 0
        self._n_trades = 0
        self._n_pongs = 0
        self._n_rest = 0
        self._n_rest_rejected = 0
        self._n_instrument_requests = 0

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start the generator.

        Raises:
            RuntimeError: already started.
        """
        if self._server is not None:
            raise RuntimeError("an EmbeddedOkx can be started only once")
        await self._bind(
            self._handle,
            process_request=self._process_request,
            ping_interval=None,  # OKX relies on the text ping/pong
            close_timeout=1.0,
        )
        for inst in self._instruments.values():
            inst.ts_ms = self._clock() // 1_000_000
            inst.initial_ts_ms = inst.ts_ms
            for _ in range(self._warmup_updates):
                self._advance(inst)  # nobody can have subscribed yet: truth only
            inst.taker = {"buy": Decimal(0), "sell": Decimal(0)}  # warm-up trades: unseen
            inst.trades.clear()
        self._refresh_gate()
        self._tasks = [
            asyncio.create_task(self._generate(), name="embedded-okx-generator"),
            asyncio.create_task(self._idle_watch(), name="embedded-okx-idle"),
        ]
        logger.info("embedded okx serving %s at %s", ", ".join(self._instruments), self.ws_base)

    # -- addresses, truth, counters --------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        """The instruments served."""
        return tuple(self._instruments)

    @property
    def stats(self) -> OkxVenueStats:
        """A snapshot of the venue's counters."""
        return OkxVenueStats(
            connections_accepted=self._n_accepted,
            connections_open=len(self._clients),
            subscriptions=sum(len(c.subscriptions) for c in self._clients),
            frames_sent=self._n_frames,
            updates=self._n_updates,
            updates_skipped=self._n_skipped,
            trades=self._n_trades,
            pongs=self._n_pongs,
            rest_requests=self._n_rest,
            rest_rejected=self._n_rest_rejected,
            instrument_requests=self._n_instrument_requests,
        )

    def truth_book(self, symbol: str) -> tuple[dict[str, str], dict[str, str]]:
        """The ground-truth book: ``({price text: size text}, {…})`` for bids and asks."""
        inst = self._instruments[symbol]
        return (
            {inst.px(p): inst.sz(e[0]) for p, e in inst.bids.items()},
            {inst.px(p): inst.sz(e[0]) for p, e in inst.asks.items()},
        )

    def taker_volume(self, symbol: str) -> dict[str, Decimal]:
        """Total traded size by taker side (``"buy"``, ``"sell"``) of ``symbol``, as published
        (contracts on derivatives)."""
        return dict(self._instruments[symbol].taker)

    def trades(self, symbol: str) -> list[tuple[str, str, str]]:
        """Every trade of ``symbol`` sent since :meth:`start`: ``(side, px, sz)`` text."""
        return list(self._instruments[symbol].trades)

    def instrument_records(self, inst_type: str) -> list[dict[str, str]]:
        """What ``GET /api/v5/public/instruments?instType=`` lists (overrides applied)."""
        return [
            {**_instrument_record(inst_id), **self._instrument_overrides.get(inst_id, {})}
            for inst_id in self._instruments
            if _inst_type(inst_id) == inst_type
        ]

    def seq_id(self, symbol: str) -> int:
        """``seqId`` of the last update of ``symbol``."""
        return self._instruments[symbol].seq

    def subscribed(self, channel: str, symbol: str) -> int:
        """How many connections subscribe ``channel`` of ``symbol``."""
        return sum((channel, symbol) in c.subscriptions for c in self._clients)

    # -- fault injection -------------------------------------------------------------------

    def skip_next_update(self, symbol: str) -> None:
        """Apply the next update of ``symbol`` to the truth but send it nowhere (a gap)."""
        self._instruments[symbol].skip += 1

    def corrupt_next_checksum(self, symbol: str) -> None:
        """Send the next update of ``symbol`` with a wrong, non-zero checksum."""
        self._instruments[symbol].corrupt += 1

    def reset_sequence(self, symbol: str) -> None:
        """Restart ``symbol``'s ``seqId`` low on its next update (``seqId < prevSeqId``)."""
        self._instruments[symbol].reset_next = True

    def send_idle_update(self, symbol: str) -> None:
        """Push the "no change for a while" update: no levels, ``seqId == prevSeqId``."""
        inst = self._instruments[symbol]
        item = {
            "asks": [],
            "bids": [],
            "ts": str(self._clock() // 1_000_000),
            "checksum": inst.checksum() if self._checksums else 0,
            "prevSeqId": inst.seq,
            "seqId": inst.seq,
        }
        self._publish_books(symbol, "update", item)

    def send_upgrade_notice(self) -> None:
        """Tell every connection it will be closed for a service upgrade (code 64008)."""
        for client in list(self._clients):
            self._send(
                client,
                {
                    "event": "notice",
                    "code": "64008",
                    "msg": "The connection will soon be closed for a service upgrade. "
                    "Please reconnect.",
                    "connId": client.conn_id,
                },
            )

    def fail_next_rest(self, count: int = 1) -> None:
        """Answer the next ``count`` book or instruments requests with HTTP 429 (``50011``)."""
        self._forced.extend([429] * count)

    # -- generator -------------------------------------------------------------------------

    async def _generate(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            if not self._may_run.is_set():
                await self._may_run.wait()
                next_at = loop.time()
            active = [
                inst
                for inst in self._instruments.values()
                if self.subscribed("books", inst.inst_id)
            ]
            for inst in active:
                self._advance(inst)
            next_at += self._interval_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if not active:
                next_at = loop.time()

    def _advance(self, inst: _Instrument) -> None:
        bids, asks, trades = inst.step()
        prev, seq = inst.next_seq()
        inst.ts_ms = max(inst.ts_ms, self._clock() // 1_000_000)
        ts = str(inst.ts_ms)
        self._n_updates += 1
        for trade in trades:
            trade["ts"] = ts
            self._n_trades += 1
            self._publish("trades", inst.inst_id, {"arg": _arg("trades", inst.inst_id),
                                                   "data": [trade]})  # fmt: skip
        if inst.skip:
            inst.skip -= 1
            self._n_skipped += 1
            return
        checksum = inst.checksum() if self._checksums else 0
        if inst.corrupt:
            inst.corrupt -= 1
            checksum = (checksum ^ 0x5A5A) or 1
        item = {
            "asks": asks,
            "bids": bids,
            "ts": ts,
            "checksum": checksum,
            "prevSeqId": prev,
            "seqId": seq,
        }
        self._publish_books(inst.inst_id, "update", item)

    def _publish_books(self, symbol: str, action: str, item: dict[str, Any]) -> None:
        self._publish(
            "books", symbol, {"arg": _arg("books", symbol), "action": action, "data": [item]}
        )

    def _publish(self, channel: str, symbol: str, message: dict[str, Any]) -> None:
        payload = orjson.dumps(message)
        for client in list(self._clients):
            if (channel, symbol) in client.subscriptions:
                self._push(client, payload)

    def _send(self, client: _Client, message: dict[str, Any]) -> None:
        self._push(client, orjson.dumps(message))

    def _active(self) -> bool:
        return True  # the generator runs unless paused, for whichever books are subscribed

    # -- websocket connections ---------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        self._conn_seq += 1
        client = _Client(ws, f"{self._conn_seq:08x}", self._max_queue_frames)
        await self._serve(client, self._on_message)

    async def _idle_watch(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._idle_timeout_s / 4))
            now = time.monotonic()
            for client in list(self._clients):
                if now - client.last_push > self._idle_timeout_s:
                    logger.info("embedded okx: closing idle connection %s", client.conn_id)
                    self._close(client, 4001, "idle")

    def _error(self, client: _Client, code: str, msg: str, rid: Any = None) -> None:
        reply: dict[str, Any] = {} if rid is None else {"id": rid}
        reply.update({"event": "error", "code": code, "msg": msg, "connId": client.conn_id})
        self._send(client, reply)

    def _on_message(self, client: _Client, message: str | bytes) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        if text == "ping":
            self._n_pongs += 1
            self._push(client, b"pong")
            return
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._error(client, "60012", f"Invalid request: {text[:200]}")
            return
        if not isinstance(request, dict):
            self._error(client, "60012", f"Invalid request: {text[:200]}")
            return
        rid = request.get("id")
        op = request.get("op")
        args = request.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            self._error(client, "60012", f"Invalid request: {text[:200]}", rid)
            return
        now = time.monotonic()
        client.ops.append(now)
        while client.ops and client.ops[0] <= now - 3600.0:
            client.ops.popleft()
        if len(client.ops) > _OPS_PER_HOUR:
            self._error(client, "60014", "Requests too frequent.", rid)
            return
        for arg in args:
            channel = arg.get("channel") if isinstance(arg, dict) else None
            inst_id = arg.get("instId") if isinstance(arg, dict) else None
            if channel not in ("books", "trades") or inst_id not in self._instruments:
                self._error(
                    client,
                    "60018",
                    f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. Please use "
                    "the correct URL, channel and parameters referring to API document.",
                    rid,
                )
                continue
            assert isinstance(channel, str) and isinstance(inst_id, str)
            key = (channel, inst_id)
            reply: dict[str, Any] = {} if rid is None else {"id": rid}
            reply.update({"event": op, "arg": _arg(channel, inst_id), "connId": client.conn_id})
            self._send(client, reply)
            if op == "unsubscribe":
                client.subscriptions.discard(key)
                continue
            fresh = key not in client.subscriptions
            client.subscriptions.add(key)
            if fresh and channel == "books" and self._ws_snapshot:
                inst = self._instruments[inst_id]
                bids, asks = inst.top(_MAX_SZ)
                item = {
                    "asks": asks,
                    "bids": bids,
                    "ts": str(max(inst.ts_ms, self._clock() // 1_000_000)),
                    "checksum": inst.checksum() if self._checksums else 0,
                    "prevSeqId": -1,
                    "seqId": inst.seq,
                }
                self._send(
                    client,
                    {"arg": _arg("books", inst_id), "action": "snapshot", "data": [item]},
                )

    # -- REST --------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if path != WS_PATH:
                return self._json(404, {"code": "404", "msg": f"Not found: {path}"})
            return None
        return self._rest(path, query)

    def _json(self, status: int, body: Any) -> Response:
        content = orjson.dumps(body)
        headers = Headers(
            [
                ("Date", email.utils.formatdate(usegmt=True)),
                ("Connection", "close"),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(content))),
            ]
        )
        return Response(status, http.HTTPStatus(status).phrase, headers, content)

    def _rest(self, path: str, query: str) -> Response:
        self._n_rest += 1
        if path == INSTRUMENTS_PATH:
            return self._instruments_answer(query)
        if path != BOOKS_PATH:
            return self._json(404, {"code": "404", "msg": f"Not found: {path}"})
        now = time.monotonic()
        self._rest_times.append(now)
        while self._rest_times and self._rest_times[0] <= now - _REST_WINDOW_S:
            self._rest_times.popleft()
        if self._forced or len(self._rest_times) > _REST_LIMIT:
            if self._forced:
                self._forced.popleft()
            self._n_rest_rejected += 1
            return self._json(429, {"msg": "Too Many Requests", "code": "50011"})
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        inst_id = params.get("instId", "")
        if not inst_id:
            return self._json(
                400, {"code": "50014", "msg": "Parameter instId can not be empty.", "data": []}
            )
        raw_sz = params.get("sz", "1")
        if not raw_sz.isdigit() or not 1 <= int(raw_sz) <= _MAX_SZ:
            return self._json(400, {"code": "51000", "msg": "Parameter sz error", "data": []})
        inst = self._instruments.get(inst_id)
        if inst is None:
            return self._json(
                400, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
            )
        if inst.stale_answers:
            inst.stale_answers -= 1
            seq, bids_state, asks_state = inst.initial
            ts_ms = inst.initial_ts_ms
        else:
            seq, bids_state, asks_state = inst.seq, inst.bids, inst.asks
            ts_ms = inst.ts_ms  # "order book generation time": the last update's
        bids, asks = inst.top_of(bids_state, asks_state, int(raw_sz))
        item = {"asks": asks, "bids": bids, "ts": str(ts_ms), "seqId": seq}
        return self._json(200, {"code": "0", "msg": "", "data": [item]})

    def _instruments_answer(self, query: str) -> Response:
        self._n_instrument_requests += 1
        params = {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}
        inst_type = params.get("instType", "")
        if not inst_type:
            return self._json(
                400, {"code": "50014", "msg": "Parameter instType can not be empty.", "data": []}
            )
        if inst_type not in _INST_TYPES:
            return self._json(400, {"code": "51000", "msg": "Parameter instType error", "data": []})
        family = params.get("instFamily") or params.get("uly") or ""
        if inst_type == "OPTION" and not family:
            return self._json(
                400, {"code": "51000", "msg": "Parameter instFamily error", "data": []}
            )
        now = time.monotonic()
        times = self._instrument_times.setdefault(inst_type, deque())
        times.append(now)
        while times and times[0] <= now - _REST_WINDOW_S:
            times.popleft()
        if self._forced or len(times) > _INSTRUMENTS_LIMIT:
            if self._forced:
                self._forced.popleft()
            self._n_rest_rejected += 1
            return self._json(429, {"msg": "Too Many Requests", "code": "50011"})
        records = self.instrument_records("SPOT" if inst_type == "MARGIN" else inst_type)
        if family:
            records = [r for r in records if family in (r["instFamily"], r["uly"])]
        inst_id = params.get("instId")
        if inst_id:
            records = [r for r in records if r["instId"] == inst_id]
            if not records:
                return self._json(
                    400, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
                )
        for record in records:
            record["instType"] = inst_type
        return self._json(200, {"code": "0", "msg": "", "data": records})


def _inst_type(inst_id: str) -> str:
    parts = inst_id.split("-")
    if len(parts) == 2:
        return "SPOT"
    return "SWAP" if parts[-1] == "SWAP" else "FUTURES"


def _instrument_record(inst_id: str) -> dict[str, str]:
    """One instrument as OKX's "Get instruments" lists it (every field, OKX's spelling)."""
    _, px_dec, sz_dec = _INSTRUMENTS.get(inst_id, _DEFAULT_INSTRUMENT)
    base, quote = inst_id.split("-")[:2]
    kind = _inst_type(inst_id)
    lot, tick = _fmt(1, sz_dec), _fmt(1, px_dec)
    record = {
        "alias": "", "auctionEndTime": "", "baseCcy": "", "category": "1", "ctMult": "",
        "ctType": "", "ctVal": "", "ctValCcy": "", "expTime": "", "instFamily": "",
        "instId": inst_id, "instType": kind, "lever": "10", "listTime": "1606468572000",
        "lotSz": lot, "maxIcebergSz": "9999999999.0000000000000000", "maxLmtAmt": "20000000",
        "maxLmtSz": "9999999999", "maxMktAmt": "1000000", "maxMktSz": "1000000",
        "maxStopSz": "1000000", "maxTriggerSz": "9999999999.0000000000000000",
        "maxTwapSz": "9999999999.0000000000000000", "minSz": lot, "optType": "", "quoteCcy": "",
        "ruleType": "normal", "settleCcy": "", "state": "live", "stk": "", "tickSz": tick,
        "uly": "",
    }  # fmt: skip
    if kind == "SPOT":
        record.update(baseCcy=base, quoteCcy=quote)
        return record
    ct_type, ct_val, ct_ccy, settle = CONTRACTS[inst_id]
    record.update(
        ctMult="1", ctType=ct_type, ctVal=ct_val, ctValCcy=ct_ccy, settleCcy=settle,
        instFamily=f"{base}-{quote}", uly=f"{base}-{quote}", lever="100", maxMktAmt="",
    )  # fmt: skip
    if kind == "FUTURES":
        record.update(alias="quarter", expTime="1782460800000")
    return record


def _arg(channel: str, inst_id: str) -> dict[str, str]:
    return {"channel": channel, "instId": inst_id}
