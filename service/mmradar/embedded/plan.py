"""The static part of a replay: which capture records are served, in which order, at which times.

Everything here is computed once per capture and is the same on every pass of a looping venue;
the embedded venue (:mod:`.binance`) adds the per-pass shifts of times and ids and the dynamic
parts (subscribers, fault injection, the ground-truth book).

Serving starts at the first depth diff that applies to the capture's REST snapshot, following
Binance's own book procedure (docs/venues/binance.md, "Sync method"):

* spot: drop ``u <= lastUpdateId``; the first kept event must satisfy ``U <= lastUpdateId+1 <= u``;
* USD-M: drop ``u < lastUpdateId``; the first kept event must satisfy ``U <= lastUpdateId <= u``.

Records before it (older diffs, trades, book tickers) are never served. Book tickers and the
snapshot line are not served as stream events at all.

Two kinds of synthetic steps are interleaved with the served records:

* :class:`FlushTick` closes a window of a *slower* diff-depth stream than the capture's native
  one (spot ``@depth`` = 1000 ms over the native ``@depth@100ms``; USD-M ``@depth@100ms``,
  ``@depth`` = 250 ms and ``@depth@500ms`` over the native real-time ``@depth@0ms``). Windows are
  buckets of the recorder's receive time measured from the first served record.
* :class:`AggTradeEnd` closes an aggregate trade: consecutive capture trades with the same trade
  time, price and aggressor side (Binance aggregates fills "for a single taker order").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from .capture import Capture, CaptureError, DepthDiff, Market, Snapshot, Trade

__all__ = [
    "AggTradeEnd",
    "AggTradeGroup",
    "FaultStep",
    "FlushTick",
    "ReplayPlan",
    "Step",
    "build_plan",
    "depth_intervals",
    "with_faults",
]

_NS_PER_MS = 1_000_000


def depth_intervals(market: Market) -> dict[str, int]:
    """Map each diff-depth stream suffix to its aggregation window in ms (0 = the capture's own).

    Args:
        market: ``"spot"`` or ``"usdm"``.

    Returns:
        e.g. spot ``{"@depth@100ms": 0, "@depth": 1000}``.
    """
    if market == "spot":
        return {"@depth@100ms": 0, "@depth": 1000}
    return {"@depth@0ms": 0, "@depth@100ms": 100, "@depth": 250, "@depth@500ms": 500}


@dataclass(frozen=True, slots=True)
class FlushTick:
    """Close the open window of every aggregated depth stream with this interval."""

    recv_ns: int  # replay position on the recorder's receive-time axis
    interval_ms: int  # which aggregated streams to flush


@dataclass(frozen=True, slots=True)
class AggTradeGroup:
    """One synthesized aggregate trade."""

    index: int  # 0-based position among the capture's aggregate trades
    E: int  # event time of the last fill, ms (capture time base)
    T: int  # trade time, ms (capture time base)
    p: str  # price
    q: str  # summed quantity, exact decimal text
    f: int  # first trade id (capture ids)
    l: int  # last trade id (capture ids)  # noqa: E741
    m: bool  # is the buyer the maker?


@dataclass(frozen=True, slots=True)
class AggTradeEnd:
    """Emit an aggregate trade (placed right after its last fill)."""

    recv_ns: int  # replay position on the recorder's receive-time axis
    group: AggTradeGroup


@dataclass(frozen=True, slots=True)
class FaultStep:
    """A transport fault scheduled on the timeline (simulated sources; captures have none)."""

    recv_ns: int  # replay position on the source's receive-time axis
    kind: Literal["gap", "drop"]  # skip the next depth diff / abort every connection


Step = DepthDiff | Trade | FlushTick | AggTradeEnd | FaultStep
"""One item of the replay timeline."""


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """The served timeline of a capture and the constants the per-pass shifts are built from.

    Attributes:
        market: ``"spot"`` or ``"usdm"``.
        symbol: the capture's symbol, e.g. ``"BTCUSDT"``.
        snapshot: the capture's REST snapshot (the truth book before the first served diff).
        steps: the timeline, ordered by ``recv_ns`` (capture order for records).
        recv_first_ns: receive time of the first served record (the pacing origin).
        first_event_ms: ``E`` of the first served diff (the event-time origin ``E0``).
        time_lo_ms: smallest event/trade/snapshot time among served items.
        time_hi_ms: largest event/trade/snapshot time among served items.
        id_lo: smallest update id (snapshot ``lastUpdateId``, ``U``, ``pu``) served.
        id_hi: largest update id ``u`` served.
        trade_id_lo: smallest trade id served (0 without trades).
        trade_id_hi: largest trade id served (-1 without trades).
        agg_trade_count: number of aggregate trades per pass.
        dropped_diffs: diffs before the first applicable one (never served).
    """

    market: Market
    symbol: str
    snapshot: Snapshot
    steps: tuple[Step, ...]
    recv_first_ns: int
    first_event_ms: int
    time_lo_ms: int
    time_hi_ms: int
    id_lo: int
    id_hi: int
    trade_id_lo: int
    trade_id_hi: int
    agg_trade_count: int
    dropped_diffs: int

    @property
    def time_shift_ms(self) -> int:
        """Event-time shift between two consecutive passes: capture span + 1 s."""
        return self.time_hi_ms - self.time_lo_ms + 1000

    @property
    def id_shift(self) -> int:
        """Update-id shift between two consecutive passes: id span + 1."""
        return self.id_hi - self.id_lo + 1

    @property
    def trade_id_shift(self) -> int:
        """Trade-id shift between two consecutive passes: trade-id span + 1."""
        return self.trade_id_hi - self.trade_id_lo + 1


def _first_applicable(diffs: Sequence[tuple[int, DepthDiff]], market: Market, last_id: int) -> int:
    """Return the position (into ``diffs``) of the first diff that applies to the snapshot."""
    for pos, (_, diff) in enumerate(diffs):
        first_id, final_id = diff.U, diff.u
        if market == "spot":
            if final_id <= last_id:
                continue
            if first_id <= last_id + 1:
                return pos
        else:
            if final_id < last_id:
                continue
            if first_id <= last_id:
                return pos
        raise CaptureError(
            0,
            f"snapshot lastUpdateId={last_id} is older than the first kept diff "
            f"[{diff.U};{diff.u}]: the capture cannot be served",
        )
    raise CaptureError(0, f"no diff event applies to snapshot lastUpdateId={last_id}")


def _check_market(diffs: Sequence[tuple[int, DepthDiff]], market: Market) -> None:
    for _, diff in diffs:
        if market == "usdm" and (diff.pu is None or diff.T is None):
            raise CaptureError(0, "a USD-M capture needs 'pu' and 'T' on every diff")
        if market == "spot" and diff.pu is not None:
            raise CaptureError(0, "a spot capture must not carry 'pu' (is it a USD-M capture?)")


def _agg_groups(trades: Sequence[Trade]) -> dict[int, AggTradeEnd]:
    """Group consecutive trades with the same (T, p, m).

    Returns:
        One :class:`AggTradeEnd` per group, keyed by the position of its last trade in ``trades``.
    """
    ends: dict[int, AggTradeEnd] = {}
    start = 0
    for i, trade in enumerate(trades):
        nxt = trades[i + 1] if i + 1 < len(trades) else None
        if nxt is not None and (nxt.T, nxt.p, nxt.m) == (trade.T, trade.p, trade.m):
            continue
        fills = trades[start : i + 1]
        qty = sum((Decimal(f.q) for f in fills), Decimal(0))
        group = AggTradeGroup(
            index=len(ends),
            E=trade.E,
            T=trade.T,
            p=trade.p,
            q=format(qty, "f"),
            f=fills[0].t,
            l=trade.t,
            m=trade.m,
        )
        ends[i] = AggTradeEnd(recv_ns=trade.recv_ns, group=group)
        start = i + 1
    return ends


def build_plan(capture: Capture, market: Market) -> ReplayPlan:
    """Compute the served timeline of a capture.

    Args:
        capture: a loaded capture (see :func:`.capture.load_capture`).
        market: ``"spot"`` or ``"usdm"``; selects the snapshot rule and the stream set.

    Returns:
        The replay plan.

    Raises:
        CaptureError: no diff applies to the snapshot, or the capture does not fit the market.
    """
    snap = capture.snapshot
    indexed = [(i, r) for i, r in enumerate(capture.records) if isinstance(r, DepthDiff)]
    _check_market(indexed, market)
    pos = _first_applicable(indexed, market, snap.lastUpdateId)
    start_index = indexed[pos][0]
    served = [r for r in capture.records[start_index:] if isinstance(r, DepthDiff | Trade)]
    recv_first = served[0].recv_ns

    trades = [r for r in served if isinstance(r, Trade)]
    agg_ends = _agg_groups(trades)
    # id() of a group's last trade -> the step emitting the aggregate right after it
    agg_after = {id(trades[i]): end for i, end in agg_ends.items()}

    intervals = sorted({iv for iv in depth_intervals(market).values() if iv > 0})
    open_bucket: dict[int, int | None] = dict.fromkeys(intervals)
    steps: list[Step] = []
    for record in served:
        due: list[FlushTick] = []
        for iv in intervals:
            bucket = open_bucket[iv]
            if bucket is None:
                continue
            end_ns = recv_first + (bucket + 1) * iv * _NS_PER_MS
            if record.recv_ns >= end_ns:
                due.append(FlushTick(recv_ns=end_ns, interval_ms=iv))
                open_bucket[iv] = None
        steps.extend(sorted(due, key=lambda tick: tick.recv_ns))
        steps.append(record)
        if isinstance(record, DepthDiff):
            for iv in intervals:
                if open_bucket[iv] is None:
                    open_bucket[iv] = (record.recv_ns - recv_first) // (iv * _NS_PER_MS)
        elif id(record) in agg_after:
            steps.append(agg_after[id(record)])
    last_recv = served[-1].recv_ns
    steps.extend(
        FlushTick(recv_ns=last_recv, interval_ms=iv)
        for iv in intervals
        if open_bucket[iv] is not None
    )

    served_diffs = [r for r in served if isinstance(r, DepthDiff)]
    times = [t for r in served for t in (r.E, r.T) if t is not None]
    times += [t for t in (snap.E, snap.T) if t is not None]
    first = served_diffs[0]
    ids = [snap.lastUpdateId, first.U] + ([first.pu] if first.pu is not None else [])
    trade_ids = [t.t for t in trades]
    return ReplayPlan(
        market=market,
        symbol=capture.symbol,
        snapshot=snap,
        steps=tuple(steps),
        recv_first_ns=recv_first,
        first_event_ms=first.E,
        time_lo_ms=min(times),
        time_hi_ms=max(times),
        id_lo=min(ids),
        id_hi=max(d.u for d in served_diffs),
        trade_id_lo=min(trade_ids, default=0),
        trade_id_hi=max(trade_ids, default=-1),
        agg_trade_count=len(agg_ends),
        dropped_diffs=pos,
    )


def with_faults(plan: ReplayPlan, faults: Sequence[FaultStep]) -> ReplayPlan:
    """Insert fault steps into a plan's timeline (each before the first step at or after it).

    Args:
        plan: a plan from :func:`build_plan`.
        faults: the faults, any order.

    Returns:
        A new plan with the same constants and the merged timeline.
    """
    if not faults:
        return plan
    pending = sorted(faults, key=lambda f: f.recv_ns)
    steps: list[Step] = []
    i = 0
    for step in plan.steps:
        while i < len(pending) and pending[i].recv_ns <= step.recv_ns:
            steps.append(pending[i])
            i += 1
        steps.append(step)
    return replace(plan, steps=(*steps, *pending[i:]))
