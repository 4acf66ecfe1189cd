"""A deterministic synthetic Binance spot ``BTCUSDT`` stream and the reference book it implies.

What it produces (everything from one seeded :class:`random.Random`, so a seed gives the same
bytes on every machine and Python version):

* a REST snapshot body ``{"lastUpdateId":..,"bids":[[p,q],..],"asks":[..]}`` with ``levels``
  levels per side (5000 by default, Binance's largest snapshot), tick 0.01 around 60000.00. The
  spacing follows a real BTCUSDT snapshot: runs of adjacent ticks near the touch and gaps of a
  few tens of ticks further out (~20 ticks on average), so 5000 levels span ~$1000, i.e. every
  depth band up to 200 bps is populated;
* ``depth_frames`` combined-stream ``depthUpdate`` frames (``U``/``u`` contiguous, the first
  ``U == lastUpdateId + 1``, ``E`` 100 ms apart), each with a uniform 1–``max_changes`` level
  changes, at most one per price and side, bids best-first and asks best-first like Binance:

  - a *touch move* in ~30 % of the frames: the touch of one side is swept (its levels within
    a geometric distance, mean 41 ticks, are deleted) and the other side quotes into the gap
    with a short ladder, so the mid walks (weakly mean-reverting around the start price);
  - a spread-tightening quote when the spread is wider than one tick;
  - then deletes of existing levels, inserts of new levels and quantity updates at a geometric
    distance from the touch (deletes/updates: in levels, mean ~9; inserts: in ticks, mean ~30).
    Insert and delete odds lean against the side's size drifting away from ``levels``.

  With the default parameters the changes are ~30 % deletes (``"0.00000000"``), ~30 % inserts
  and ~40 % quantity updates, 20.5 per frame on average (:class:`StreamStats` has the figures);

* a ``trade`` frame after ~1 in 3 depth frames, at the touch, aggressor side uniform.

Prices are exact 2-decimal text, quantities exact 8-decimal text on a 0.00001 lot, log-normal
and heavier near the touch (median 0.05 BTC at the touch, 0.0005 BTC from 20 $ away), matching a
real BTCUSDT snapshot (and its deltas) well enough that $50k of depth is usually within the
first few levels. The generator keeps its own integer-tick reference book, asserts after every
change that it is never crossed, and hands the final book back
(:attr:`SyntheticStream.final_bids` / ``final_asks``) so a consumer can check it rebuilt exactly
the same book.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import orjson
from sortedcontainers import SortedList

__all__ = [
    "SYMBOL",
    "StreamParams",
    "StreamStats",
    "SyntheticStream",
    "generate_stream",
    "price_text",
    "qty_text",
]

SYMBOL = "BTCUSDT"
DEPTH_STREAM = "btcusdt@depth@100ms"
TRADE_STREAM = "btcusdt@trade"

_QTY_SCALE = 10**8  # quantities are integers in units of 1e-8 (8-decimal text)
_LOT = 1_000  # 0.00001 BTC, Binance's BTCUSDT lot size, in 1e-8 units
_MAX_LOTS = 5_000_000  # 50 BTC
_MU_TOUCH = math.log(0.05)  # median level quantity at the touch, BTC
_MU_DEEP = math.log(0.0005)  # ... 2000 ticks (20 $) and more from the touch
_MU_TRADE = math.log(0.003)
_BID, _ASK = 0, 1
_SIGN = (-1, 1)  # key = sign · tick: keys ascend away from the touch on both sides


def price_text(tick: int) -> str:
    """Exact 2-decimal text of a price given in ticks of 0.01 (``6000001`` → ``"60000.01"``)."""
    return f"{tick // 100}.{tick % 100:02d}"


def qty_text(units: int) -> str:
    """Exact 8-decimal text of a quantity given in units of 1e-8."""
    return f"{units // _QTY_SCALE}.{units % _QTY_SCALE:08d}"


@dataclass(frozen=True, slots=True)
class StreamParams:
    """Shape of the synthetic stream (defaults: the ``make bench`` stream)."""

    depth_frames: int = 50_000
    levels: int = 5_000
    seed: int = 1
    start_tick: int = 6_000_000  # best ask of the snapshot: 60000.00
    max_changes: int = 40
    #: odds of a delete / an insert among the random changes (touch moves add both on top)
    delete_share: float = 0.22
    insert_share: float = 0.26
    touch_move_prob: float = 0.30
    #: mean distance of a touch move, in ticks
    move_ticks: float = 40.0
    trade_prob: float = 1.0 / 3.0
    last_update_id: int = 50_093_239_202
    start_ms: int = 1_723_161_255_000
    depth_interval_ms: int = 100
    #: mean-reversion scale of the mid walk, in ticks (~$500)
    reversion_ticks: int = 50_000

    def __post_init__(self) -> None:
        if self.depth_frames < 1:
            raise ValueError("depth_frames must be >= 1")
        if self.levels < 50:
            raise ValueError("levels must be >= 50")
        if self.max_changes < 1:
            raise ValueError("max_changes must be >= 1")


@dataclass(slots=True)
class StreamStats:
    """What the generator put into the depth frames (for the report)."""

    level_changes: int = 0
    deletes: int = 0
    inserts: int = 0
    updates: int = 0
    touch_moves: int = 0
    min_mid: float = math.inf
    max_mid: float = -math.inf
    min_levels: int = 1 << 62
    max_levels: int = 0

    def as_dict(self) -> dict[str, float | int]:
        """The figures as a JSON-ready dict, with the change mix as shares."""
        n = max(1, self.level_changes)
        return {
            "level_changes": self.level_changes,
            "deletes": self.deletes,
            "inserts": self.inserts,
            "updates": self.updates,
            "delete_share": round(self.deletes / n, 4),
            "insert_share": round(self.inserts / n, 4),
            "update_share": round(self.updates / n, 4),
            "touch_moves": self.touch_moves,
            "min_mid": self.min_mid,
            "max_mid": self.max_mid,
            "min_levels_per_side": self.min_levels,
            "max_levels_per_side": self.max_levels,
        }


@dataclass(slots=True)
class SyntheticStream:
    """A generated stream: the snapshot body, the frames and the book they lead to.

    ``frames[0]`` is always a depth frame (the one that makes the pipeline ask for the
    snapshot); ``recv_ns[i]`` is the receive time of ``frames[i]``.
    """

    params: StreamParams
    snapshot_body: bytes
    frames: list[bytes]
    recv_ns: list[int]
    level_changes: list[int]  # per frame; 0 for trade frames
    depth_frames: int
    trade_frames: int
    final_bids: list[tuple[str, str]]  # best first, exact text
    final_asks: list[tuple[str, str]]
    taker_buy: float  # Σ float(q) of buyer-aggressed trades, in stream order
    taker_sell: float
    stats: StreamStats = field(default_factory=StreamStats)


class _Generator:
    """The reference book plus the random choices that mutate it."""

    def __init__(self, params: StreamParams) -> None:
        self.p = params
        self.rng = random.Random(params.seed)
        # per side: keys (sign · tick) ascending = best first, and key → quantity units
        self.keys: tuple[SortedList, SortedList] = (SortedList(), SortedList())
        self.qty: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.stats = StreamStats()

    # -- random helpers ----------------------------------------------------------------------

    def geometric(self, mean: float) -> int:
        """A geometric count ``>= 0`` with the given mean."""
        p = 1.0 / (1.0 + mean)
        return int(math.log(1.0 - self.rng.random()) / math.log(1.0 - p))

    def quantity(self, distance: int, old: int = 0) -> int:
        """A level quantity in 1e-8 units (a whole number of lots, different from ``old``).

        Log-normal, heavier near the touch, like a real BTCUSDT book: ``distance`` ticks from
        the touch sets the median from 0.05 BTC (at the touch) down to 0.0005 BTC (20 $ away
        and beyond) and the log-sd from 2.4 to 2.8, so the touch averages ~0.9 BTC and deep
        levels ~0.025 BTC.
        """
        x = min(1.0, distance / 2000.0)
        mu = _MU_TOUCH + (_MU_DEEP - _MU_TOUCH) * x
        sigma = 2.4 + 0.4 * x
        while True:
            lots = min(_MAX_LOTS, max(1, round(math.exp(self.rng.gauss(mu, sigma)) * 1e5)))
            units = lots * _LOT
            if units != old:
                return units

    def trade_quantity(self) -> int:
        """A trade size in 1e-8 units (median 0.003 BTC, heavy-tailed)."""
        return min(_MAX_LOTS, max(1, round(math.exp(self.rng.gauss(_MU_TRADE, 2.0)) * 1e5))) * _LOT

    # -- reference book ----------------------------------------------------------------------

    def best_tick(self, side: int) -> int:
        return _SIGN[side] * int(self.keys[side][0])

    def check_uncrossed(self) -> None:
        bid, ask = self.best_tick(_BID), self.best_tick(_ASK)
        if bid >= ask:  # a bug in this generator, never an input condition
            raise AssertionError(f"synthetic book crossed: {bid} >= {ask}")

    def set_level(self, side: int, key: int, units: int, frame: list[dict[int, int]]) -> None:
        qty = self.qty[side]
        if units == 0:
            del qty[key]
            self.keys[side].remove(key)
        else:
            if key not in qty:
                self.keys[side].add(key)
            qty[key] = units
        frame[side][key] = units

    # -- snapshot ----------------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """Fill the reference book and return the REST snapshot body."""
        best = {_BID: self.p.start_tick - 1, _ASK: self.p.start_tick}
        sides: list[list[list[str]]] = []
        for side in (_BID, _ASK):
            key = first = _SIGN[side] * best[side]
            out: list[list[str]] = []
            for _ in range(self.p.levels):
                units = self.quantity(key - first)
                self.qty[side][key] = units
                self.keys[side].add(key)
                out.append([price_text(_SIGN[side] * key), qty_text(units)])
                key += 1 if self.rng.random() < 0.3 else 1 + self.geometric(26.0)
            sides.append(out)
        self.check_uncrossed()
        body = {"lastUpdateId": self.p.last_update_id, "bids": sides[_BID], "asks": sides[_ASK]}
        return orjson.dumps(body)

    # -- one depth frame ---------------------------------------------------------------------

    def touch_move(self, budget: int, frame: list[dict[int, int]]) -> int:
        """Sweep one side's touch and quote the other side into the gap; returns changes made."""
        p, rng = self.p, self.rng
        mid2 = self.best_tick(_BID) + self.best_tick(_ASK)
        # mean-reverting walk: lean toward the start price
        lean = (mid2 / 2.0 - p.start_tick) / (2.0 * p.reversion_ticks)
        up = rng.random() < 0.5 - max(-0.25, min(0.25, lean))
        swept, advancing = (_ASK, _BID) if up else (_BID, _ASK)
        keys = self.keys[swept]
        distance = 1 + self.geometric(p.move_ticks)
        n_sweep: int = keys.bisect_left(keys[0] + distance)
        n_sweep = max(1, min(n_sweep, budget - 1 if budget > 1 else 1, len(keys) - 50))
        for key in list(keys.islice(0, n_sweep)):
            self.set_level(swept, key, 0, frame)
        self.stats.deletes += n_sweep
        made = n_sweep
        if made < budget:
            spread = 1 if rng.random() < 0.75 else 1 + self.geometric(1.0)
            # the advancing side's new best, ``spread`` ticks behind the swept side's new best
            new_key = -(int(keys[0]) - spread)  # keys of the two sides have opposite signs
            # ... and a short ladder behind it, as a market maker requotes after a move
            ladder = self.rng.randint(0, 4)
            qty, changed = self.qty[advancing], frame[advancing]
            while made < budget and new_key < self.keys[advancing][0] + distance and ladder >= 0:
                if new_key not in qty and new_key not in changed:
                    distance = new_key - int(self.keys[advancing][0])
                    self.set_level(advancing, new_key, self.quantity(max(0, distance)), frame)
                    self.stats.inserts += 1
                    made += 1
                new_key += 1 + self.geometric(2.0)
                ladder -= 1
        self.check_uncrossed()
        return made

    def tighten(self, frame: list[dict[int, int]]) -> int:
        """Quote inside a spread wider than one tick; returns changes made (0 or 1)."""
        bid, ask = self.best_tick(_BID), self.best_tick(_ASK)
        if ask - bid <= 1 or self.rng.random() < 0.5:
            return 0
        side = self.rng.getrandbits(1)
        tick = self.rng.randint(bid + 1, ask - 1)
        key = _SIGN[side] * tick
        if key in frame[side]:
            return 0
        self.set_level(side, key, self.quantity(0), frame)
        self.stats.inserts += 1
        self.check_uncrossed()
        return 1

    def random_change(self, frame: list[dict[int, int]]) -> int:
        """One delete, insert or quantity update near the touch; returns changes made (0/1)."""
        p, rng = self.p, self.rng
        side = rng.getrandbits(1)
        keys, qty, changed = self.keys[side], self.qty[side], frame[side]
        # lean against the side's size drifting away from ``levels``
        lean = max(-0.1, min(0.1, 2.0 * (len(keys) - p.levels) / p.levels))
        r = rng.random()
        if r < p.delete_share + lean:
            idx = self.geometric(9.0)
            if idx >= len(keys) or len(keys) <= 50:
                return 0
            key = int(keys[idx])
            if key in changed:
                return 0
            self.set_level(side, key, 0, frame)
            self.stats.deletes += 1
        elif r < p.delete_share + p.insert_share:
            for _ in range(4):
                key = int(keys[0]) + 1 + self.geometric(30.0)
                if key not in qty and key not in changed:
                    break
            else:
                return 0
            self.set_level(side, key, self.quantity(key - int(keys[0])), frame)
            self.stats.inserts += 1
        else:
            idx = self.geometric(9.0)
            if idx >= len(keys):
                return 0
            key = int(keys[idx])
            if key in changed:
                return 0
            self.set_level(side, key, self.quantity(key - int(keys[0]), qty[key]), frame)
            self.stats.updates += 1
        return 1

    def depth_frame(self) -> list[dict[int, int]]:
        """Mutate the reference book by one frame's changes; returns them per side."""
        p, rng = self.p, self.rng
        target = rng.randint(1, p.max_changes)
        frame: list[dict[int, int]] = [{}, {}]
        made = 0
        if rng.random() < p.touch_move_prob:
            made += self.touch_move(target, frame)
            self.stats.touch_moves += 1
        if made < target:
            made += self.tighten(frame)
        attempts = 0
        while made < target and attempts < 20 * p.max_changes:
            attempts += 1
            made += self.random_change(frame)
        if made == 0:  # pragma: no cover - needs ~800 unlucky draws in a row
            key = int(self.keys[_BID][0])
            self.set_level(_BID, key, self.quantity(0, self.qty[_BID][key]), frame)
            self.stats.updates += 1
        return frame

    # -- the whole stream --------------------------------------------------------------------

    def stream(self) -> SyntheticStream:
        p, rng, stats = self.p, self.rng, self.stats
        snapshot = self.snapshot()
        frames: list[bytes] = []
        recv_ns: list[int] = []
        changes_per_frame: list[int] = []
        last_id = p.last_update_id
        trade_id = 3_735_683_259
        taker_buy = taker_sell = 0.0
        trades = 0
        dumps = orjson.dumps
        for i in range(p.depth_frames):
            changed = self.depth_frame()
            bids = [[price_text(-k), qty_text(q)] for k, q in sorted(changed[_BID].items())]
            asks = [[price_text(k), qty_text(q)] for k, q in sorted(changed[_ASK].items())]
            n = len(bids) + len(asks)
            event_ms = p.start_ms + i * p.depth_interval_ms
            data = {
                "e": "depthUpdate",
                "E": event_ms,
                "s": SYMBOL,
                "U": last_id + 1,
                "u": last_id + n,
                "b": bids,
                "a": asks,
            }
            last_id += n
            frames.append(dumps({"stream": DEPTH_STREAM, "data": data}))
            recv_ns.append(event_ms * 1_000_000 + rng.randint(1_000_000, 5_000_000))
            changes_per_frame.append(n)
            stats.level_changes += n
            bid, ask = self.best_tick(_BID), self.best_tick(_ASK)
            mid = (bid + ask) / 200.0
            stats.min_mid = min(stats.min_mid, mid)
            stats.max_mid = max(stats.max_mid, mid)
            sizes = (len(self.keys[_BID]), len(self.keys[_ASK]))
            stats.min_levels = min(stats.min_levels, *sizes)
            stats.max_levels = max(stats.max_levels, *sizes)
            if rng.random() < p.trade_prob:
                seller = rng.random() < 0.5  # Binance "m": the buyer was the maker
                trade_ms = event_ms + rng.randint(1, p.depth_interval_ms - 1)
                qty = qty_text(self.trade_quantity())
                if seller:
                    taker_sell += float(qty)
                else:
                    taker_buy += float(qty)
                trade_id += 1
                trade = {
                    "e": "trade",
                    "E": trade_ms,
                    "s": SYMBOL,
                    "t": trade_id,
                    "p": price_text(bid if seller else ask),
                    "q": qty,
                    "T": trade_ms - 1,
                    "m": seller,
                    "M": True,
                }
                frames.append(dumps({"stream": TRADE_STREAM, "data": trade}))
                recv_ns.append(trade_ms * 1_000_000 + rng.randint(1_000_000, 5_000_000))
                changes_per_frame.append(0)
                trades += 1
        final = [
            [
                (price_text(_SIGN[side] * int(k)), qty_text(self.qty[side][k]))
                for k in self.keys[side]
            ]
            for side in (_BID, _ASK)
        ]
        return SyntheticStream(
            params=p,
            snapshot_body=snapshot,
            frames=frames,
            recv_ns=recv_ns,
            level_changes=changes_per_frame,
            depth_frames=p.depth_frames,
            trade_frames=trades,
            final_bids=final[_BID],
            final_asks=final[_ASK],
            taker_buy=taker_buy,
            taker_sell=taker_sell,
            stats=stats,
        )


def generate_stream(params: StreamParams | None = None) -> SyntheticStream:
    """Generate the stream described by ``params`` (deterministic for a given ``params``)."""
    return _Generator(params or StreamParams()).stream()
