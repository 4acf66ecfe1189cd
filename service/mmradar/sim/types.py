"""The simulator's public value types: scenarios, wire frames, ground truth.

Everything here is immutable. Times are integer nanoseconds since the epoch (``ts_ns``, the
simulated venue's event time); durations are seconds (``_s``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DealerFill",
    "FeedFault",
    "HedgeOrder",
    "Phase",
    "ScenarioKind",
    "ScenarioSpec",
    "SimFrame",
    "SimRun",
    "TruthEpisode",
    "TruthSample",
    "VenueRun",
]

ScenarioKind = Literal["symptom", "calm", "control"]
"""``symptom``: stress episodes that must fire; ``calm``: none; ``control``: none either, but
the scenario contains a confounder (spoofing, a symmetric refresh, a feed fault)."""


@dataclass(frozen=True, slots=True)
class Phase:
    """One stretch of a scenario's regime schedule.

    Attributes:
        regime: a key of :data:`mmradar.sim.regimes.REGIMES` (``"calm"``, ``"buy_burst"``, ...).
        duration_s: length of the stretch in simulated seconds.
    """

    regime: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class FeedFault:
    """A transport fault the *venue* injects; the simulated market itself is unaffected.

    Attributes:
        offset_s: seconds after the start of the run.
        kind: ``"gap"`` (one depth diff is applied to the venue's book but not sent: a sequence
            gap the client must resync from) or ``"drop"`` (every connection is aborted without
            a close frame: the client reconnects and resyncs).
    """

    offset_s: float
    kind: Literal["gap", "drop"]


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    """A named, seedable scenario.

    Attributes:
        name: the scenario's name (the key in :data:`mmradar.sim.SCENARIOS`).
        kind: ``"symptom"``, ``"calm"`` or ``"control"``.
        description: one line for ``mmradar demo --list-scenarios``.
        phases: the regime schedule, in order.
        expected: the ``(symptom, side)`` pairs the scenario is built to produce (empty for
            calm and control scenarios).
        faults: transport faults the venue injects while serving the scenario.
        perp: the run also simulates the second venue, a perpetual on the same efficient price
            (:class:`mmradar.sim.params.PerpParams`), published as :attr:`SimRun.perp`.
        hedged: the spot dealers hedge on the perpetual
            (:class:`mmradar.sim.params.HedgeParams`); needs ``perp``.
        silent: for a control, the symptoms it must not fire (empty: the inventory symptoms,
            and ``hedge_pressure``); a control of the second venue names ``hedge_pressure``
            only, the spot symptoms of its flow being scored like any other.
    """

    name: str
    kind: ScenarioKind
    description: str
    phases: tuple[Phase, ...]
    expected: tuple[tuple[str, str], ...] = ()
    faults: tuple[FeedFault, ...] = ()
    perp: bool = False
    hedged: bool = False
    silent: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        """Total simulated seconds of the schedule."""
        return sum(p.duration_s for p in self.phases)


@dataclass(frozen=True, slots=True)
class SimFrame:
    """One websocket text frame of a Binance spot combined stream.

    Attributes:
        ts_ns: simulated event time of the frame (a depth window's end, a trade's time).
        stream: the combined-stream name, e.g. ``"btcusdt@depth@100ms"``.
        payload: the frame exactly as the websocket carries it:
            ``{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate",...}}``.
    """

    ts_ns: int
    stream: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class TruthSample:
    """The simulator's state every 100 ms (after the window's last event).

    Per-dealer tuples are indexed by dealer number. Inventories are in base units (BTC),
    positive = long. A side counts as quoted while the dealer has at least one order on it.

    Attributes:
        ts_ns: sample time (the end of a 100 ms depth window).
        mid: the book's mid price, ``(best bid + best ask)/2`` (NaN if a side is empty).
        inventory: each dealer's inventory.
        total_inventory: their sum.
        bid_quoted: whether each dealer has a bid resting.
        ask_quoted: whether each dealer has an ask resting.
        quotes: each dealer's best ``(bid, ask)``; NaN for an unquoted side.
        regime: the regime in force.
        efficient_price: the efficient price ``S_t`` the agents anchor on.
        sigma_bps: the regime's volatility of ``S``, bps/√s.
        bid_size: each dealer's resting bid size (all ladder levels), base units.
        ask_size: each dealer's resting ask size, base units.
        spread: the book's best ask − best bid (NaN if a side is empty).
        dealer_spread: best dealer ask − best dealer bid (inf if no dealer quotes a side).
        hedge_position: the dealers' total position on the perpetual (hedged runs; 0
            otherwise), base units: their net position is ``total_inventory + hedge_position``.
    """

    ts_ns: int
    mid: float
    inventory: tuple[float, ...]
    total_inventory: float
    bid_quoted: tuple[bool, ...]
    ask_quoted: tuple[bool, ...]
    quotes: tuple[tuple[float, float], ...]
    regime: str
    efficient_price: float = float("nan")
    sigma_bps: float = float("nan")
    bid_size: tuple[float, ...] = ()
    ask_size: tuple[float, ...] = ()
    spread: float = float("nan")
    dealer_spread: float = float("nan")
    hedge_position: float = 0.0


@dataclass(frozen=True, slots=True)
class TruthEpisode:
    """An interval during which a symptom is truly present (labelling rule: see ``mmradar.sim``).

    Attributes:
        symptom: an mmradar symptom name, e.g. ``"quote_skew"``.
        side: ``"bid"``, ``"ask"`` or ``"both"`` (mmradar's side label).
        start_ns: first 100 ms sample at which the condition holds.
        end_ns: last sample at which it holds (inclusive).
        regime: the regime in force at ``start_ns``.
        exchange: the venue the symptom is on (``"binance"``: spot; ``hedge_pressure`` is
            on the perpetual's ``"binance-usdm"``).
        symbol: its symbol there (empty: the run's spot symbol).
    """

    symptom: str
    side: str
    start_ns: int
    end_ns: int
    regime: str
    exchange: str = "binance"
    symbol: str = ""


@dataclass(frozen=True, slots=True)
class DealerFill:
    """A passive fill of one of a dealer's orders (the simulator's L3 truth).

    Attributes:
        dealer: the dealer's number.
        ts_ns: time of the fill.
        lots: signed quantity in lots of the run's ``lot`` (positive: the dealer bought).
        price_ticks: price in ticks of the run's ``tick``.
    """

    dealer: int
    ts_ns: int
    lots: int
    price_ticks: int


@dataclass(frozen=True, slots=True)
class HedgeOrder:
    """A spot dealer's hedge on the perpetual: one taker order (the simulator's truth).

    Attributes:
        dealer: the spot dealer's number.
        ts_ns: time the order was sent.
        side: ``"buy"`` or ``"sell"``.
        qty: quantity sent, base units.
        filled: quantity executed, base units (the rest was beyond the order's limit).
    """

    dealer: int
    ts_ns: int
    side: str
    qty: float
    filled: float


@dataclass(frozen=True, slots=True)
class VenueRun:
    """What the second venue (the perpetual) published during a run.

    Attributes:
        exchange: the venue's mmradar name (``"binance-usdm"``: its wire format).
        symbol: its spelling, e.g. ``"BTCUSDT"``.
        tick: the price tick as decimal text, e.g. ``"0.10"``.
        snapshot: body of ``GET /fapi/v1/depth`` at the run's ``start_ns``.
        frames: the combined-stream frames in time order (``@depth@100ms`` with ``pu``,
            ``@aggTrade``).
        mid: the perpetual's book mid every 100 ms (the spot truth samples' times).
        hedges: every hedge order of the spot dealers, in time order.
        hedge_position: each spot dealer's perpetual position at the end, base units.
    """

    exchange: str
    symbol: str
    tick: str
    snapshot: bytes
    frames: Sequence[SimFrame]
    mid: tuple[float, ...] = field(default=(), repr=False)
    hedges: tuple[HedgeOrder, ...] = field(default=(), repr=False)
    hedge_position: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class SimRun:
    """One deterministic simulation: what the venue publishes and what was really going on.

    Attributes:
        scenario: the scenario's name.
        seed: the seed it ran with.
        symbol: Binance spelling, e.g. ``"BTCUSDT"``.
        tick: the price tick as decimal text, e.g. ``"0.01"``.
        start_ns: event time of the snapshot; the first depth window ends 100 ms later.
        end_ns: event time of the last depth window's end.
        snapshot: body of ``GET /api/v3/depth`` at ``start_ns`` (all levels).
        frames: the combined-stream frames in time order (depth windows and trades).
        truth: the 100 ms ground-truth samples.
        episodes: the labelled episodes, by start time.
        faults: transport faults for the venue to inject (not reflected in ``frames``).
        params: the parameters it ran with (a :class:`mmradar.sim.params.SimParams`).
        fills: every dealer fill, in time order.
        final_bids: the simulator's book at ``end_ns``, ``(price text, qty text)`` best first.
        final_asks: likewise for asks.
        perp: the second venue's output (scenarios with ``perp``; None otherwise).
    """

    scenario: str
    seed: int
    symbol: str
    tick: str
    start_ns: int
    end_ns: int
    snapshot: bytes
    frames: Sequence[SimFrame]
    truth: Sequence[TruthSample]
    episodes: Sequence[TruthEpisode]
    faults: tuple[FeedFault, ...] = ()
    params: object = field(default=None, compare=False, repr=False)
    fills: tuple[DealerFill, ...] = field(default=(), repr=False)
    final_bids: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    final_asks: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    perp: VenueRun | None = field(default=None, repr=False)

    def regime_at(self, ts_ns: int) -> str:
        """The regime in force at ``ts_ns`` (the last sample at or before it)."""
        import bisect

        if not self.truth:
            return ""
        i = bisect.bisect_right([s.ts_ns for s in self.truth], ts_ns) - 1
        return self.truth[max(i, 0)].regime
