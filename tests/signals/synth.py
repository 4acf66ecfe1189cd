"""A deterministic synthetic Binance spot market for the signal tests.

:class:`SyntheticMarket` (seeded :class:`random.Random`) keeps an integer-tick L2 book and emits
**protocol-exact Binance spot frames**: combined-stream ``depthUpdate`` diffs every 100 ms of
event time (``U``/``u`` contiguous, absolute quantities, ``0`` deletes, only changed levels) and
``trade`` frames (``m`` = buyer is maker ⇒ taker sold), plus REST snapshot bodies of the
current book on request. :class:`Feed` feeds them through the **real**
:class:`~mmradar.pipeline.FeedPipeline` (``on_frame``, and ``on_snapshot`` whenever the
pipeline asks for a snapshot), so everything from JSON parsing to the alert state machines runs
as in production. Nothing sleeps: an hour of event time takes seconds.

The calm regime is noisy on purpose:

* an efficient price random walk (≈ 1 tick = 1 bp per √s at price 100.00, tick 0.01);
* a market maker that re-quotes a 5-level ladder at the touch each step with probability 0.7
  (so a touch eaten by a trade leaves a wider spread for a few hundred ms), and widens its
  spread by 1–2 ticks for 0.1–0.5 s about once every 10 s (one-tick spread changes);
* level churn (updates, deletes, inserts at geometric distances from the touch);
* flicker: big orders 5–20 ticks away that live 100–500 ms;
* Poisson taker trades (≈ 3/s), random side, lognormal size, eating the touch.

Symptoms are injected over event-time intervals (:class:`Injection`): ``spread`` (the maker
quotes ``spread_ticks`` wide), ``evaporation`` (one side's sizes within 50 ticks × 0.1),
``asymmetry`` (one side's sizes 1–10 ticks from the touch × 6 by default), ``pull`` (both sides
within 12 ticks × 0.05 and the spread 5 ticks wider), ``skew`` (touch size × 10 on one side, ×
0.1 on the other), ``volatility`` (price volatility × 5), ``buying`` / ``selling`` (aggressive
taker flow × 8 on one side).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson

from mmradar.book.sync import FetchSnapshot
from mmradar.pipeline import FeedPipeline

__all__ = ["SYMBOL", "Feed", "Injection", "MarketParams", "SyntheticMarket", "price_text"]

SYMBOL = "TESTUSDT"
_DEPTH_STREAM = "testusdt@depth@100ms"
_TRADE_STREAM = "testusdt@trade"
_STEP_MS = 100
_LOT = 1_000  # quantities are integers in units of 1e-3 base (3-decimal text)
T0_MS = 1_723_161_600_000  # 2024-08-09T00:00:00Z


def price_text(tick: int) -> str:
    """``10001`` → ``"100.01"`` (tick 0.01)."""
    return f"{tick // 100}.{tick % 100:02d}"


def _qty_text(lots: int) -> str:
    return f"{lots // _LOT}.{lots % _LOT:03d}"


@dataclass(frozen=True, slots=True)
class Injection:
    """A symptom injected over ``[start_s, end_s)`` seconds of event time from the start.

    Attributes:
        kind: spread, evaporation, asymmetry, pull, skew, volatility, buying, selling.
        start_s: start, seconds after the market's first step.
        end_s: end (exclusive).
        side: ``bid`` or ``ask`` for one-sided kinds (the evaporated / heavy side).
        spread_ticks: the quoted spread during a ``spread`` injection.
        depth_factor: the heavy side's size multiplier during an ``asymmetry`` injection.
    """

    kind: str
    start_s: float
    end_s: float
    side: str = "bid"
    spread_ticks: int = 10
    depth_factor: float = 6.0


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Shape of the calm market (defaults: a liquid one-tick book)."""

    start_tick: int = 10_000  # 100.00
    base_spread: int = 1  # ticks; > 1 for a multi-tick (non one-tick) regime
    spread_walk: bool = False  # base spread random-walks in [base_spread, 2·base_spread]
    sigma_ticks: float = 1.0  # efficient-price volatility, ticks per √s
    depth_ticks: int = 300  # levels kept this far from the touch
    occupancy: float = 0.85
    base_lots: int = 50 * _LOT  # 50 base units ≈ $5000 per level
    size_sigma: float = 0.5
    ladder: int = 5
    requote_prob: float = 0.7
    churn: int = 6  # level changes per step
    wide_prob: float = 0.01  # per step
    flicker_prob: float = 0.02  # per step
    trade_rate: float = 3.0  # per second
    trade_lots: float = 1.5 * _LOT  # median taker size


@dataclass
class _Flicker:
    side: int
    tick: int
    expires: int  # step
    restore: int  # lots to restore (0 = delete)


@dataclass
class SyntheticMarket:
    """The generator. Call :meth:`step` for each 100 ms; :meth:`snapshot` at any time."""

    seed: int = 1
    params: MarketParams = field(default_factory=MarketParams)
    injections: tuple[Injection, ...] = ()
    latency_ms: int = 20

    def __post_init__(self) -> None:
        p = self.params
        self.rng = random.Random(self.seed)
        self.n = 0  # steps done
        self.price = float(p.start_tick) + 0.5
        self.books: tuple[dict[int, int], dict[int, int]] = ({}, {})  # bids, asks
        self.best = [p.start_tick, p.start_tick + p.base_spread]
        self.base_spread = p.base_spread
        self.wide_left = 0
        self.wide_extra = 0
        self.update_id = 1_000
        self.trade_id = 1
        self.flickers: list[_Flicker] = []
        self.active: set[Injection] = set()
        self.taker_buy = 0.0
        self.taker_sell = 0.0
        self._changes: tuple[dict[int, int], dict[int, int]] = ({}, {})
        bids, asks = self.books
        for d in range(p.depth_ticks):
            if d < p.ladder or self.rng.random() < p.occupancy:
                bids[self.best[0] - d] = self._size(0, d)
            if d < p.ladder or self.rng.random() < p.occupancy:
                asks[self.best[1] + d] = self._size(1, d)

    # -- sizes and injections ------------------------------------------------------------------

    def _mult(self, side: int, d: int) -> float:
        m = 1.0 + d / 50.0
        for inj in self.active:
            s = 0 if inj.side == "bid" else 1
            if inj.kind == "evaporation" and s == side and d < 50:
                m *= 0.1
            elif inj.kind == "asymmetry" and s == side and 1 <= d <= 10:
                m *= inj.depth_factor
            elif inj.kind == "pull" and d < 12:
                m *= 0.05
        return m

    def _size(self, side: int, d: int) -> int:
        p = self.params
        x = p.base_lots * self._mult(side, d) * math.exp(self.rng.gauss(0.0, p.size_sigma))
        return max(1, round(x))

    def _set(self, side: int, tick: int, lots: int) -> None:
        book = self.books[side]
        if lots <= 0:
            if tick in book:
                del book[tick]
                self._changes[side][tick] = 0
        elif book.get(tick) != lots:
            book[tick] = lots
            self._changes[side][tick] = lots

    def _touch(self, side: int) -> int:
        """Best price of ``side`` (scans from the remembered best)."""
        book = self.books[side]
        t = self.best[side]
        step = -1 if side == 0 else 1
        if t in book:
            # a better level may have been inserted
            while (t - step) in book:
                t -= step
            self.best[side] = t
            return t
        for _ in range(10 * self.params.depth_ticks):
            t += step
            if t in book:
                self.best[side] = t
                return t
        raise AssertionError("a side of the synthetic book is empty")

    def _rescale(self, inj: Injection) -> None:
        """Apply (or undo) an injection's size change: redraw the sizes it covers."""
        sides = (0, 1) if inj.kind == "pull" else ((0,) if inj.side == "bid" else (1,))
        for side in sides:
            touch = self._touch(side)
            for tick in list(self.books[side]):
                d = abs(tick - touch)
                if d > 60:
                    continue
                self._set(side, tick, self._size(side, d))

    # -- one step --------------------------------------------------------------------------------

    def step(self) -> list[tuple[int, bytes]]:
        """Advance 100 ms; return ``(recv_ns, frame)`` of the trades and the depth diff."""
        p = self.params
        rng = self.rng
        n = self.n
        self.n += 1
        t_s = n * _STEP_MS / 1000
        now = {i for i in self.injections if i.start_s <= t_s < i.end_s}
        for inj in now - self.active:
            self.active.add(inj)
            if inj.kind in ("evaporation", "asymmetry", "pull"):
                self._rescale(inj)
        for inj in self.active - now:
            self.active.discard(inj)
            if inj.kind in ("evaporation", "asymmetry", "pull"):
                self._rescale(inj)
        kinds = {i.kind: i for i in self.active}
        # efficient price
        vol = 5.0 if "volatility" in kinds else 1.0
        self.price += rng.gauss(0.0, p.sigma_ticks * vol * math.sqrt(_STEP_MS / 1000))
        # spread the maker wants
        if p.spread_walk and rng.random() < 0.02:
            self.base_spread = min(
                2 * p.base_spread, max(p.base_spread, self.base_spread + rng.choice((-1, 1)))
            )
        if self.wide_left > 0:
            self.wide_left -= 1
        elif rng.random() < p.wide_prob:
            self.wide_left = rng.randint(1, 5)
            self.wide_extra = rng.randint(1, 2)
        spread = self.base_spread + (self.wide_extra if self.wide_left else 0)
        if "spread" in kinds:
            spread = kinds["spread"].spread_ticks
        if "pull" in kinds:
            spread += 5
        # re-quote the ladder
        if rng.random() < p.requote_prob or "spread" in kinds or "pull" in kinds:
            bid = math.floor(self.price - spread / 2)
            ask = bid + spread
            for tick in range(bid + 1, self._touch(0) + 1):
                self._set(0, tick, 0)
            for tick in range(self._touch(1), ask):
                self._set(1, tick, 0)
            for d in range(p.ladder):
                if bid - d not in self.books[0]:
                    self._set(0, bid - d, self._size(0, d))
                if ask + d not in self.books[1]:
                    self._set(1, ask + d, self._size(1, d))
            self.best[0], self.best[1] = bid, ask
            if n % 50 == 0:  # trim the far ends
                for tick in [t for t in self.books[0] if t < bid - p.depth_ticks - 20]:
                    self._set(0, tick, 0)
                for tick in [t for t in self.books[1] if t > ask + p.depth_ticks + 20]:
                    self._set(1, tick, 0)
        # skew: touch sizes lopsided
        if "skew" in kinds:
            heavy = 0 if kinds["skew"].side == "bid" else 1
            for side in (0, 1):
                touch = self._touch(side)
                lots = 10 * p.base_lots if side == heavy else max(1, p.base_lots // 10)
                self._set(side, touch, lots)
        # churn
        for _ in range(p.churn):
            side = rng.randrange(2)
            touch = self._touch(side)
            d = min(p.depth_ticks - 1, int(rng.expovariate(1 / 15)))
            tick = touch - d if side == 0 else touch + d
            book = self.books[side]
            if tick in book:
                if d > 0 and rng.random() < 0.4:
                    self._set(side, tick, 0)
                else:
                    self._set(side, tick, self._size(side, d))
            elif rng.random() < p.occupancy:
                self._set(side, tick, self._size(side, d))
        # flicker
        for f in [f for f in self.flickers if f.expires <= n]:
            self.flickers.remove(f)
            if f.tick in self.books[f.side]:
                self._set(f.side, f.tick, f.restore)
        if rng.random() < p.flicker_prob:
            side = rng.randrange(2)
            d = rng.randint(5, 20)
            touch = self._touch(side)
            tick = touch - d if side == 0 else touch + d
            restore = self.books[side].get(tick, 0)
            self._set(side, tick, 20 * p.base_lots)
            self.flickers.append(_Flicker(side, tick, n + rng.randint(1, 5), restore))
        # trades
        frames: list[tuple[int, bytes]] = []
        base_ms = T0_MS + n * _STEP_MS
        rate = p.trade_rate * _STEP_MS / 1000
        trades: list[tuple[int, bool]] = []
        for _ in range(_poisson(rng, rate)):
            trades.append((rng.randint(0, _STEP_MS - 1), rng.random() < 0.5))
        for kind, buy in (("buying", True), ("selling", False)):
            if kind in kinds:
                for _ in range(_poisson(rng, 8 * rate)):
                    trades.append((rng.randint(0, _STEP_MS - 1), buy))
        trades.sort()
        for offset, buy in trades:
            lots = max(1, round(p.trade_lots * math.exp(rng.gauss(0.0, 0.7))))
            frames.extend(self._trade(base_ms + offset, buy, lots))
        # depth diff at the end of the step
        e_ms = base_ms + _STEP_MS
        bids, asks = self._changes
        if bids or asks:
            first = self.update_id + 1
            self.update_id += len(bids) + len(asks)
            data = {
                "e": "depthUpdate",
                "E": e_ms,
                "s": SYMBOL,
                "U": first,
                "u": self.update_id,
                "b": [[price_text(t), _qty_text(q)] for t, q in sorted(bids.items(), reverse=True)],
                "a": [[price_text(t), _qty_text(q)] for t, q in sorted(asks.items())],
            }
            frames.append(
                (
                    (e_ms + self.latency_ms) * 1_000_000,
                    orjson.dumps({"stream": _DEPTH_STREAM, "data": data}),
                )
            )
            self._changes = ({}, {})
        return frames

    def _trade(self, t_ms: int, buy: bool, lots: int) -> list[tuple[int, bytes]]:
        """A taker order of ``lots``: eats the opposite touch (maybe several levels)."""
        side = 1 if buy else 0
        out: list[tuple[int, bytes]] = []
        book = self.books[side]
        while lots > 0 and len(book) > self.params.ladder:
            touch = self._touch(side)
            have = book[touch]
            take = min(have, lots)
            self._set(side, touch, have - take)
            lots -= take
            qty = take / _LOT
            if buy:
                self.taker_buy += qty
            else:
                self.taker_sell += qty
            data = {
                "e": "trade",
                "E": t_ms,
                "s": SYMBOL,
                "t": self.trade_id,
                "p": price_text(touch),
                "q": _qty_text(take),
                "T": t_ms,
                "m": not buy,
                "M": True,
            }
            self.trade_id += 1
            raw = orjson.dumps({"stream": _TRADE_STREAM, "data": data})
            out.append(((t_ms + self.latency_ms) * 1_000_000, raw))
        return out

    def snapshot(self) -> bytes:
        """A REST ``/api/v3/depth`` body of the current book (``lastUpdateId`` = last ``u``)."""
        bids, asks = self.books
        return orjson.dumps(
            {
                "lastUpdateId": self.update_id,
                "bids": [
                    [price_text(t), _qty_text(q)] for t, q in sorted(bids.items(), reverse=True)
                ],
                "asks": [[price_text(t), _qty_text(q)] for t, q in sorted(asks.items())],
            }
        )

    @property
    def event_ns(self) -> int:
        """Event time at the end of the last step."""
        return (T0_MS + self.n * _STEP_MS) * 1_000_000


def _poisson(rng: random.Random, lam: float) -> int:
    limit = math.exp(-lam)
    k = 0
    prod = rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


class Feed:
    """A pipeline fed by a market over one connection (one frame parser).

    Args:
        pipeline: configured for :data:`SYMBOL`.
        market: the generator.
    """

    def __init__(self, pipeline: FeedPipeline, market: SyntheticMarket) -> None:
        self.pipeline = pipeline
        self.market = market
        self.parser = pipeline.new_parser()

    def run(
        self,
        seconds: float,
        *,
        drop_depth_at_s: tuple[float, ...] = (),
        each_second: Callable[[int], None] | None = None,
    ) -> None:
        """Generate ``seconds`` more of event time and feed every frame.

        Args:
            seconds: event time to generate.
            drop_depth_at_s: times (seconds from the market's start) at which one depth frame
                is lost: a sequence gap, so the book resyncs from a fresh snapshot.
            each_second: called with the market's step count at every whole second.
        """
        pipeline, market, parser = self.pipeline, self.market, self.parser
        drops = sorted(drop_depth_at_s)
        for _ in range(round(seconds * 1000 / _STEP_MS)):
            frames = market.step()
            t_s = market.n * _STEP_MS / 1000
            for recv_ns, raw in frames:
                if drops and t_s >= drops[0] and b"depthUpdate" in raw:
                    drops.pop(0)
                    continue
                for command in pipeline.on_frame(parser, raw, recv_ns):
                    if type(command) is FetchSnapshot:
                        body = market.snapshot()
                        pipeline.on_snapshot(command.symbol, body, recv_ns + 5_000_000)
            if each_second is not None and market.n % 10 == 0:
                each_second(market.n)


def steps_of(market: SyntheticMarket, seconds: float) -> Iterator[list[tuple[int, bytes]]]:
    """Raw frames of each step for ``seconds`` (without a pipeline)."""
    for _ in range(round(seconds * 1000 / _STEP_MS)):
        yield market.step()
