"""The per-instrument signal engine: books and trades in, symptom episodes and measures out.

:class:`SignalEngine` is pure and synchronous: it never reads a clock and does no I/O. The
pipeline (:mod:`mmradar.pipeline`) drives it with venue event times:

* :meth:`~SignalEngine.advance` *before* applying a depth message whose event time reached the
  next whole second: it runs the 1-s stat clock up to that time on the book **in force** there
  (the book before the message), so what a sample sees does not depend on how the venue
  batches messages. Gaps are caught up tick by tick (the book did not change meanwhile).
* :meth:`~SignalEngine.on_depth` *after* every applied depth message while the book is valid:
  O(1) — reads the touch, adds the CKS order-flow contribution of the L1 change
  (:func:`~mmradar.signals.flow.ofi_event`), integrates the L1 features (spread, "spread wider
  than one tick", microprice skew) exactly over time, and feeds the mid to the
  realized-volatility windows. This is the design's 100 ms internal clock (docs/signals.md)
  taken to its limit: every L1 state is weighted by how long it was in force, so nothing
  between samples is aliased away and nothing is computed per message beyond a few
  arithmetic operations.
* :meth:`~SignalEngine.on_trade` for every trade (O(1): decayed flows, TFI bins).
* :meth:`~SignalEngine.on_invalid` when the book is invalidated.

On each tick (one per second of event time, O(bands + a few touch levels)) the engine reads
band depth and depth-to-fill once, updates the robust baselines, evaluates every detector of
:mod:`mmradar.signals.detectors`, steps their alert state machines and recomputes the composite
pressure. Per-message cost stays O(1); the per-second work is independent of the message rate.

Warm-up
    No episode starts before ``warmup_seconds`` of valid book after start-up **and after every
    resync** (the machines are not stepped; statistics and baselines are computed meanwhile).
    Baselines survive a resync (the minute being filled is dropped); short windows (OFI/TFI
    sums, spread/skew averages, drop maxima, fast smoothers, the return grid) are emptied, so
    no window spans an invalid period.

Invalid book
    While the book is not valid nothing is computed from it: the stat clock stops and every
    book-derived read is NaN. Episodes firing when the book goes invalid **end at once** with a
    ``resolved`` event whose ``ended_at`` is the event time of the last message of the book's
    life and whose context says ``book_valid: false`` (the webhook receiver learns the episode
    can no longer be tracked; a symptom still present fires again after the warm-up). The
    decayed trade flow keeps counting trades (it never reads the book).

Composite ``mmradar_dealer_pressure`` ∈ [−1, 1] (docs/signals.md)
    ``IPI = mean(clip(c_i, ±pressure_clip))`` over the available components (NaN ones are
    dropped), ``pressure = tanh(IPI / pressure_scale)``, each component signed
    positive = dealers short = upward pressure:

    * ``inventory`` — the dealer-inventory proxy z (decayed net taker buying);
    * ``depth_imbalance`` — the robust z of the near-touch depth imbalance
      (``depth_asymmetry``'s feature), EWMA-smoothed with a 5-s half-life;
    * ``skew`` — the robust z of the touch skew (``quote_skew``'s feature), EWMA-smoothed with
      a 5-s half-life (microprice above mid = positive);
    * ``ofi`` — ``OFI_z`` over the longest OFI window (60 s).

    With the defaults, IPI at the design's alert level 2.5 reads 0.76; ±1 is never reached.
    Cross-venue dislocation (the design's fifth component) needs several venues per symbol
    and is not computed.

Episode context (``EpisodeEvent.context``, JSON-serialisable, NaN as None)
    ``book_valid``, ``best_bid``, ``best_ask``, ``mid``, ``spread_bps`` (now),
    ``spread_baseline_bps``, ``depth`` and ``depth_baseline`` (``{"10": {"bid": notional,
    "ask": notional}, ...}`` for every band of ``BAND_BPS``, now and baseline median),
    ``peak_score`` (resolved events), ``detector`` (the detector's statistics) and
    ``dealer_pressure``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Final

from mypy_extensions import mypyc_attr

from ..book.l2book import L2Book
from ..model import BAND_BPS, BookEvent, BookKind, Side, TakerSide
from .alerts import AlertMachine, AlertState, Transition
from .baselines import Ewma, RollingSum
from .detectors import (
    DepthAsymmetry,
    DepthBaselines,
    Detector,
    LiquidityEvaporation,
    LiquidityPull,
    QuoteSkew,
    Sample,
    SpreadWidening,
    VolatilitySpike,
)
from .episodes import SYMPTOM_SIDES, EpisodeEvent
from .flow import FlowState, ofi_event
from .market import MarketState
from .params import SignalSettings
from .reading import (
    PRESSURE_COMPONENTS,
    EngineReading,
    EpisodeRecord,
    SymptomReading,
    base_context,
)
from .removal import RemovalAttribution

__all__ = ["SignalEngine"]

_NS = 1_000_000_000

# Enum members as native constants: an enum attribute lookup is a slow generic getattr
# in compiled code, and these are read for every message.
_BUY: Final = TakerSide.BUY
_DELTA: Final = BookKind.DELTA
_NAN = math.nan
_NEVER = 1 << 62
_IDLE = AlertState.IDLE
#: Half-life of the EWMA smoothing the composite's depth-imbalance and skew components.
COMPONENT_HALF_LIFE_S = 5.0
#: Finished episodes kept per instrument (for summaries).
MAX_EPISODES_KEPT = 1000
#: At most this many stat ticks are caught up after a gap in the depth stream (the book did not
#: change meanwhile; older ticks of a longer gap are skipped, so a bogus far-future event time
#: cannot stall the pipeline).
MAX_CATCH_UP_TICKS = 900
#: Touch levels walked for depth-to-fill before walking deeper.
_FILL_LEVELS = (4, 32, 1024)


def _json_num(x: float) -> float | None:
    return x if math.isfinite(x) else None


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class SignalEngine:
    """Symptom detectors, flow measures and the composite pressure of one instrument.

    Args:
        exchange: config ``exchange`` (episode labels).
        symbol: venue spelling.
        book: the instrument's book (read only).
        market: the instrument's market state (mids for realized volatility).
        params: the ``[signals]`` settings.
        on_episode: called synchronously with every episode start and end. It must not raise
            and must not block (the shell hands events to a bounded queue).
    """

    __slots__ = (
        "_ask",
        "_ask_qty",
        "_bid",
        "_bid_qty",
        "_book",
        "_di_smooth",
        "_dur_ring",
        "_i_dur",
        "_i_rv",
        "_i_rvac",
        "_i_skew",
        "_i_spread",
        "_i_wide",
        "_l1_ok",
        "_l1_ts",
        "_last_dmid",
        "_last_ns",
        "_market",
        "_prev_mid",
        "_skew_now",
        "_skew_ring",
        "_skew_smooth",
        "_spread_now",
        "_tick",
        "_wide_now",
        "_wide_ring",
        "active",
        "asymmetry",
        "components",
        "depth_baselines",
        "detectors",
        "episodes",
        "evaporation",
        "exchange",
        "flow",
        "life_start_ns",
        "live",
        "next_tick_ns",
        "on_episode",
        "on_tick",
        "params",
        "pressure",
        "pull",
        "removal",
        "sample",
        "skew",
        "spread",
        "symbol",
        "volatility",
        "warm_at_ns",
    )

    def __init__(
        self,
        exchange: str,
        symbol: str,
        book: L2Book,
        market: MarketState,
        params: SignalSettings | None = None,
        on_episode: Callable[[EpisodeEvent], None] | None = None,
    ) -> None:
        p = self.params = params or SignalSettings()
        self.exchange = exchange
        self.symbol = symbol
        self._book = book
        self._market = market
        self.on_episode = on_episode
        #: called after every stat tick (warm-up included) with this engine: the cross-venue
        #: and hedge views (:mod:`.crossvenue`, :mod:`.hedge`) sample each venue's engine on
        #: its own event-time clock. Several listeners share it through
        #: :func:`mmradar.signals.ticks.add_tick_listener`.
        self.on_tick: Callable[[SignalEngine], None] | None = None
        self.flow = FlowState(p)
        #: Pulled versus traded: why near-touch resting size disappeared.
        self.removal = RemovalAttribution(p.removal_window_seconds, p.removal_match_seconds)
        self.depth_baselines = DepthBaselines(p.baseline_minutes)
        self.sample = Sample()
        self.spread = SpreadWidening(p)
        self.evaporation = LiquidityEvaporation(p)
        self.asymmetry = DepthAsymmetry(p)
        self.pull = LiquidityPull(p)
        self.skew = QuoteSkew(p)
        self.volatility = VolatilitySpike(p)
        self.detectors: dict[str, Detector] = {
            d.symptom: d
            for d in (
                self.spread,
                self.evaporation,
                self.asymmetry,
                self.pull,
                self.skew,
                self.volatility,
            )
        }
        assert tuple(self.detectors) == tuple(SYMPTOM_SIDES)
        #: True while the book is valid and the engine follows it.
        self.live = False
        #: Event time of the next stat tick (far future while not live).
        self.next_tick_ns = _NEVER
        self.life_start_ns = 0
        self.warm_at_ns = _NEVER
        self._last_ns = 0
        # the touch and its time integrals since the last tick
        self._l1_ok = False
        self._l1_ts = 0
        self._bid = self._bid_qty = self._ask = self._ask_qty = _NAN
        self._spread_now = self._wide_now = self._skew_now = _NAN
        self._i_dur = 0
        self._i_spread = self._i_wide = self._i_skew = 0.0
        self._i_rv = 0.0  # Σ squared mid log-changes since the last tick
        self._i_rvac = 0.0  # ... plus twice the products of consecutive changes
        self._last_dmid = 0.0
        self._tick = math.inf
        self._prev_mid = _NAN
        self._wide_ring = RollingSum((p.spread_wide_window_seconds,))
        self._skew_ring = RollingSum((p.skew_window_seconds,))
        self._dur_ring = RollingSum((p.spread_wide_window_seconds, p.skew_window_seconds))
        self._di_smooth = Ewma(COMPONENT_HALF_LIFE_S)
        self._skew_smooth = Ewma(COMPONENT_HALF_LIFE_S)
        #: The composite in [−1, 1] (NaN while the book is not valid or nothing is known).
        self.pressure = _NAN
        #: The composite's components (unclipped), by :data:`PRESSURE_COMPONENTS` name.
        self.components: dict[str, float] = dict.fromkeys(PRESSURE_COMPONENTS, _NAN)
        #: Episodes in progress, by (symptom, side).
        self.active: dict[tuple[str, str], EpisodeRecord] = {}
        #: Finished episodes, oldest first (the last :data:`MAX_EPISODES_KEPT`).
        self.episodes: deque[EpisodeRecord] = deque(maxlen=MAX_EPISODES_KEPT)

    # -- reads ---------------------------------------------------------------------------------

    @property
    def warm(self) -> bool:
        """True once the warm-up of the current book life is over (``mmradar_signals_warm``)."""
        return self.live and self.sample.ts_ns >= self.warm_at_ns

    @property
    def last_event_ns(self) -> int:
        """The latest venue event time seen (depth or trade; 0 before any)."""
        return self._last_ns

    @property
    def tick_size(self) -> float:
        """The estimated price tick (NaN until a touch step or spread was seen)."""
        return self._tick if self._tick < math.inf else _NAN

    def machines(self) -> Iterator[tuple[str, str, AlertMachine]]:
        """Every ``(symptom, side, machine)`` in :data:`SYMPTOM_SIDES` order."""
        for symptom, det in self.detectors.items():
            for side, machine in det.machines.items():
                yield symptom, side, machine

    def score(self, symptom: str, side: str) -> float:
        """``mmradar_symptom_score``: the detector's current score (NaN while not live)."""
        if not self.live:
            return _NAN
        return self.detectors[symptom].scores[side]

    def removed_notional(self, bid: bool, band: int) -> tuple[float, float]:
        """``mmradar_depth_removed_notional_total``: ``(traded, cancelled)`` quote notional
        removed from one side within band index ``band`` of ``BAND_BPS`` since start."""
        return self.removal.removed_total(self._book, bid, band)

    def removed_cancel_share(self, bid: bool, band: int) -> float:
        """``mmradar_depth_removed_cancel_share`` (NaN while not live or nothing went missing)."""
        return self.removal.cancel_share(bid, band) if self.live else _NAN

    def inventory_proxy(self) -> float:
        """``mmradar_dealer_inventory_proxy`` decayed to the latest event time seen."""
        return self.flow.proxy_z(self._last_ns)

    def read(self, settle: bool = True) -> EngineReading:
        """Everything the engine shows now, as one :class:`EngineReading` (O(bands + windows);
        for scrapes and episode events, not for the per-message path).

        Args:
            settle: the removed-notional totals read count as reported (the scrape's read:
                the counters never decrease from one scrape to the next); False leaves that
                memory alone (an episode context's read).
        """
        live = self.live
        flow = self.flow
        s = self.sample
        n = len(BAND_BPS)
        book = self._book
        removal = self.removal
        removed = [
            removal.removed_total(book, bid, i, settle) for bid in (True, False) for i in range(n)
        ]
        return EngineReading(
            live=live,
            warm=self.warm,
            last_event_ns=self._last_ns,
            symptoms=tuple(
                SymptomReading(
                    symptom, side, machine.firing, self.score(symptom, side), machine.episodes
                )
                for symptom, side, machine in self.machines()
            ),
            dealer_pressure=self.pressure if live else _NAN,
            pressure_components_z=tuple(
                self.components[name] if live else _NAN for name in PRESSURE_COMPONENTS
            ),
            inventory_proxy_z=self.inventory_proxy(),
            ofi_windows_s=flow.ofi_windows_s,
            ofi_base=tuple(
                flow.ofi_sum(i) if live else _NAN for i in range(len(flow.ofi_windows_s))
            ),
            ofi_z=tuple(flow.ofi_z(i) if live else _NAN for i in range(len(flow.ofi_windows_s))),
            tfi_windows_s=flow.tfi_windows_s,
            trade_flow_imbalance=tuple(
                flow.tfi(i) if live else _NAN for i in range(len(flow.tfi_windows_s))
            ),
            half_lives_s=flow.half_lives_s,
            signed_taker_volume_decayed_base=tuple(flow.decayed(self._last_ns)),
            depth_baseline_bid_notional=self.depth_baselines.bids,
            depth_baseline_ask_notional=self.depth_baselines.asks,
            spread_baseline_bps=math.exp(self.spread.log_spread.median),
            quote_skew=self.skew.skew if live else _NAN,
            depth_imbalance_smoothed=self.asymmetry.fast.value if live else _NAN,
            volatility_ratio=self.volatility.ratio if live else _NAN,
            depth_to_fill_bid_bps=s.fill_bid_bps if live else _NAN,
            depth_to_fill_ask_bps=s.fill_ask_bps if live else _NAN,
            tick_size_price=self.tick_size,
            removed_traded_bid_notional=tuple(t for t, _ in removed[:n]),
            removed_cancelled_bid_notional=tuple(c for _, c in removed[:n]),
            removed_traded_ask_notional=tuple(t for t, _ in removed[n:]),
            removed_cancelled_ask_notional=tuple(c for _, c in removed[n:]),
            removed_cancel_share_bid=tuple(self.removed_cancel_share(True, i) for i in range(n)),
            removed_cancel_share_ask=tuple(self.removed_cancel_share(False, i) for i in range(n)),
            tick_best_bid_price=s.best_bid,
            tick_best_ask_price=s.best_ask,
            tick_mid_price=s.mid,
            tick_depth_bid_notional=s.bids,
            tick_depth_ask_notional=s.asks,
            tick_signed_taker_notional=s.signed_notional,
        )

    def all_episodes(self) -> list[EpisodeRecord]:
        """Finished episodes then those still firing (peaks updated), by start time."""
        out = list(self.episodes)
        for (symptom, side), rec in self.active.items():
            machine = self.detectors[symptom].machines[side]
            out.append(EpisodeRecord(symptom, side, rec.started_ns, None, machine.peak))
        out.sort(key=lambda r: (r.started_ns, r.symptom, r.side))
        return out

    # -- inputs --------------------------------------------------------------------------------

    def before_delta(self, event: BookEvent) -> None:
        """A depth message is about to be applied to the valid book.

        When prints wait for the depth update that shows them, note the sizes resting at their
        prices (:mod:`.removal`); :meth:`on_depth` then matches them against what the message
        removed (if the synchroniser applied it).
        """
        removal = self.removal
        if removal.waiting and event.kind is _DELTA:
            removal.before(self._book, event.ts_event_ns)

    def on_depth(self, ts_ns: int, applied: bool = True) -> None:
        """The book applied a depth message (or loaded a snapshot) at ``ts_ns`` and is valid.

        Args:
            ts_ns: the message's event time.
            applied: False when the synchroniser dropped the message (a duplicate): the removal
                attribution made by :meth:`before_delta` is undone.
        """
        removal = self.removal
        if removal.matching:
            removal.after(self._book, applied, self.sample.mid)
        book = self._book
        bb = book.best_bid()
        ba = book.best_ask()
        if not self.live:
            self._start(ts_ns)
        if ts_ns > self._last_ns:
            self._last_ns = ts_ns
        if bb is None or ba is None:  # one side empty: no touch, no mid
            self._integrate(ts_ns)
            self._l1_ok = False
            return
        bp, bq = bb
        ap, aq = ba
        mid = 0.5 * (ap + bp)
        self._market.on_mid(mid, ts_ns)
        if self._l1_ok:
            # integrate the touch in force since the last L1 time (inlined _integrate)
            dt = ts_ns - self._l1_ts
            if dt > 0:
                self._i_dur += dt
                self._i_spread += self._spread_now * dt
                self._i_wide += self._wide_now * dt
                self._i_skew += self._skew_now * dt
                self._l1_ts = ts_ns
            pbp, pbq, pap, paq = self._bid, self._bid_qty, self._ask, self._ask_qty
            if bp == pbp and bq == pbq and ap == pap and aq == paq:
                return
            self.flow.ofi_acc += ofi_event(pbp, pbq, pap, paq, bp, bq, ap, aq)
            if bp != pbp or ap != pap:  # the mid moved: its squared log-change
                d = math.log(mid / (0.5 * (pbp + pap)))
                self._i_rv += d * d
                self._i_rvac += d * (d + 2.0 * self._last_dmid)
                self._last_dmid = d
            if bp != pbp:
                d = abs(bp - pbp)
                if d < self._tick:
                    self._tick = d
            if ap != pap:
                d = abs(ap - pap)
                if d < self._tick:
                    self._tick = d
        elif ts_ns > self._l1_ts:
            self._l1_ts = ts_ns
        self._l1_ok = True
        self._bid, self._bid_qty, self._ask, self._ask_qty = bp, bq, ap, aq
        spread = ap - bp
        if 0.0 < spread < self._tick:
            self._tick = spread
        self._spread_now = 1e4 * spread / mid
        self._wide_now = 1.0 if spread > 1.5 * self._tick else 0.0
        total = bq + aq
        self._skew_now = 0.5 * (bq - aq) / total if total > 0.0 else 0.0

    def _integrate(self, ts_ns: int) -> None:
        """Add the touch state in force since the last L1 time up to ``ts_ns``."""
        dt = ts_ns - self._l1_ts
        if dt <= 0:
            return
        if self._l1_ok:
            self._i_dur += dt
            self._i_spread += self._spread_now * dt
            self._i_wide += self._wide_now * dt
            self._i_skew += self._skew_now * dt
        self._l1_ts = ts_ns

    def on_trade(self, qty: float, taker: TakerSide, ts_ns: int, price: float = _NAN) -> None:
        """A trade at ``ts_ns`` (counted whether or not the book is valid).

        Args:
            qty: base quantity.
            taker: the aggressor side.
            ts_ns: the trade's event time.
            price: its price (for the removal attribution; NaN if unknown).
        """
        self._market.on_trade(qty, taker, ts_ns)  # taker volume by side
        buy = taker is _BUY
        px = price if price > 0.0 else self.sample.mid  # unknown price: the last tick's mid
        self.flow.on_trade(qty, buy, ts_ns, self.live, qty * px if px > 0.0 else 0.0)
        if self.live:
            self.removal.on_print(price, qty, buy, ts_ns)
        if ts_ns > self._last_ns:
            self._last_ns = ts_ns

    def advance(self, ts_ns: int) -> None:
        """Run every stat tick at or before ``ts_ns`` on the book as it is now.

        Called before a depth message at ``ts_ns`` is applied (only while live). Ticks of a gap
        reuse the first tick's book reads: the book did not change in between. Of a gap longer
        than :data:`MAX_CATCH_UP_TICKS` seconds only the last that many ticks are run.
        """
        if ts_ns - self.next_tick_ns > MAX_CATCH_UP_TICKS * _NS:
            self.next_tick_ns = (ts_ns // _NS - MAX_CATCH_UP_TICKS + 1) * _NS
        first = True
        while self.live and self.next_tick_ns <= ts_ns:
            t = self.next_tick_ns
            self._stat_tick(t, reread=first)
            first = False
            self.next_tick_ns = t + _NS

    def on_invalid(self, ts_ns: int | None = None) -> None:
        """The book was invalidated (resync): end episodes, drop short windows, stop the clock.

        Args:
            ts_ns: event time of the last message of the book's life (defaults to the latest
                event time seen); firing episodes end there.
        """
        if not self.live:
            return
        end = ts_ns if ts_ns else self._last_ns
        for symptom, side, machine in self.machines():
            if machine.force_resolve(end):
                self._emit(self.detectors[symptom], side, "resolved", valid=False)
        for det in self.detectors.values():
            det.sync_firing()
        self.live = False
        self.next_tick_ns = _NEVER
        self.warm_at_ns = _NEVER
        self._l1_ok = False
        self._i_dur = 0
        self._i_spread = self._i_wide = self._i_skew = 0.0
        self._i_rv = 0.0
        self._prev_mid = _NAN
        self._wide_ring.clear()
        self._skew_ring.clear()
        self._dur_ring.clear()
        self.flow.reset_windows()
        self.removal.reset_window(self._book)
        self.depth_baselines.drop_current()
        for det in self.detectors.values():
            det.reset_short()
        self.pressure = _NAN
        self.components = dict.fromkeys(PRESSURE_COMPONENTS, _NAN)
        self._di_smooth.reset()
        self._skew_smooth.reset()

    # -- internals -----------------------------------------------------------------------------

    def _start(self, ts_ns: int) -> None:
        """A new book life starts at ``ts_ns``: the warm-up restarts."""
        self.live = True
        self.life_start_ns = ts_ns
        self.warm_at_ns = ts_ns + round(self.params.warmup_seconds * _NS)
        self.next_tick_ns = (ts_ns // _NS + 1) * _NS
        self._l1_ts = ts_ns
        self._l1_ok = False
        self.flow.ofi_acc = 0.0
        self.removal.start(self._book)

    def _stat_tick(self, t: int, reread: bool) -> None:
        p = self.params
        s = self.sample
        s.ts_ns = t
        # -- L1 averages over the second ending at t
        self._integrate(t)
        dur = self._i_dur
        if dur > 0:
            s.spread_bps = self._i_spread / dur
        else:
            s.spread_bps = self._spread_now if self._l1_ok else _NAN
        self._wide_ring.push(self._i_wide)
        self._skew_ring.push(self._i_skew)
        self._dur_ring.push(float(dur))
        self._i_dur = 0
        self._i_spread = self._i_wide = self._i_skew = 0.0
        s.rv = self._i_rv
        s.rvac = self._i_rvac
        self._i_rv = 0.0
        self._i_rvac = 0.0
        durs = self._dur_ring.sums
        wide_full = self._wide_ring.filled >= p.spread_wide_window_seconds
        s.wide_fraction = self._wide_ring.sums[0] / durs[0] if wide_full and durs[0] > 0 else _NAN
        skew_full = self._skew_ring.filled >= p.skew_window_seconds
        s.skew = self._skew_ring.sums[0] / durs[1] if skew_full and durs[1] > 0 else _NAN
        # -- the book in force at t
        if reread:
            self._read_book(s)
        mid = s.mid
        prev = self._prev_mid
        s.ret = math.log(mid / prev) if prev > 0.0 and mid > 0.0 else _NAN
        self._prev_mid = mid
        self.flow.tick(t // _NS, t)
        s.signed_notional = self.flow.signed_notional_at_tick
        self.removal.tick(self._book)
        # -- baselines (frozen while a symptom that reads them fires) and detectors
        spread, evap, pull = self.spread, self.evaporation, self.pull
        depth_frozen = evap.firing or pull.firing
        self.depth_baselines.add(s, frozen=depth_frozen)
        spread.observe(s, frozen=spread.firing or pull.firing)
        evap.observe(s, depth_frozen, self.removal)
        pull.observe(s, depth_frozen, self._fills, self.depth_baselines)
        self.asymmetry.observe(s, frozen=self.asymmetry.firing)
        self.skew.observe(s, frozen=self.skew.firing)
        self.volatility.observe(s, frozen=self.volatility.firing)
        self._composite(t)
        if self.on_tick is not None:
            self.on_tick(self)
        if t < self.warm_at_ns:
            return
        for det in self.detectors.values():
            on, off, scores = det.on, det.off, det.scores
            changed = False
            for side, machine in det.machines.items():
                if machine.state is _IDLE and not on[side]:
                    continue  # what step() would do, without the call
                transition = machine.step(t, on[side], off[side], scores[side])
                if transition is not None:
                    changed = True
                    self._emit(det, side, transition, valid=True)
            if changed:
                det.sync_firing()

    def _read_book(self, s: Sample) -> None:
        book = self._book
        if self._l1_ok:
            s.best_bid, s.best_ask = self._bid, self._ask
            mid = s.mid = 0.5 * (self._bid + self._ask)
            tick = self._tick
            s.tick = tick if tick < math.inf else _NAN
            s.tick_bps = 1e4 * s.tick / mid
            s.bids, s.asks = book.depth_notional()
            # near-touch depth: the best levels within the near-touch window of the mid
            p = self.params
            n = p.near_touch_levels
            half = mid * p.near_touch_bps * 1e-4
            if tick < math.inf and half < 2.0 * tick:
                half = 2.0 * tick  # a large-tick book: at least two ticks
            s.near_bid = book.near_notional(True, n, mid - half)
            s.near_ask = book.near_notional(False, n, mid + half)
        else:
            n = len(BAND_BPS)
            s.best_bid = s.best_ask = s.mid = s.tick = s.tick_bps = _NAN
            s.near_bid = s.near_ask = _NAN
            s.bids = s.asks = (_NAN,) * n
            s.fill_bid_bps = s.fill_ask_bps = _NAN

    def _fills(self) -> tuple[float, float]:
        """Depth-to-fill ``(G_bid, G_ask)`` of the book now, in bps (NaN without a touch)."""
        mid = self.sample.mid
        if not mid > 0.0:
            return _NAN, _NAN
        return self._fill_bps(Side.BID, mid), self._fill_bps(Side.ASK, mid)

    def _fill_bps(self, side: Side, mid: float) -> float:
        """Depth-to-fill: bps from mid to the level where cumulative notional ≥ fill_notional.

        If the known book cannot fill it, the distance of the deepest level walked (a lower
        bound).
        """
        target = self.params.fill_notional
        book = self._book
        levels: list[tuple[float, float]] = []
        for n in _FILL_LEVELS:
            levels = book.top(side, n)
            acc = 0.0
            for price, qty in levels:
                acc += price * qty
                if acc >= target:
                    return 1e4 * abs(price - mid) / mid
            if len(levels) < n:
                break
        return 1e4 * abs(levels[-1][0] - mid) / mid if levels else _NAN

    def _composite(self, t: int) -> None:
        p = self.params
        c = self.components
        c["inventory"] = self.flow.proxy_z_at_tick
        # the book-shape components are smoothed (their detectors read 1-s values)
        c["depth_imbalance"] = self._di_smooth.update(self.asymmetry.z, t)
        c["skew"] = self._skew_smooth.update(self.skew.z, t)
        c["ofi"] = self.flow.ofi_z(len(self.flow.ofi_windows_s) - 1)
        clip = p.pressure_clip
        values = [max(-clip, min(clip, v)) for v in c.values() if v == v]
        if not values:
            self.pressure = _NAN
            return
        ipi = sum(values) / len(values)
        self.pressure = math.tanh(ipi / p.pressure_scale)

    def _emit(self, det: Detector, side: str, transition: Transition, *, valid: bool) -> None:
        machine = det.machines[side]
        key = (det.symptom, side)
        context = self._context(det, side, valid)
        if transition == "firing":
            self.active[key] = EpisodeRecord(det.symptom, side, machine.started_ns, None, _NAN)
            ended: int | None = None
        else:
            context["peak_score"] = _json_num(machine.peak)
            rec = self.active.pop(key, None)
            if rec is None:
                rec = EpisodeRecord(det.symptom, side, machine.started_ns, None, _NAN)
            rec.ended_ns = ended = machine.ended_ns
            rec.peak = machine.peak
            rec.book_invalidated = not valid
            self.episodes.append(rec)
        if self.on_episode is not None:
            self.on_episode(
                EpisodeEvent(
                    symptom=det.symptom,
                    exchange=self.exchange,
                    symbol=self.symbol,
                    side=side,
                    state=transition,
                    started_at_ns=machine.started_ns,
                    ended_at_ns=ended,
                    score=machine.score,
                    context=context,
                )
            )

    def _context(self, det: Detector, side: str, valid: bool) -> dict[str, Any]:
        """The episode context (module docstring): the market values from one
        :class:`EngineReading`, the detector's statistics from the detector itself."""
        ctx = base_context(self.read(settle=False), valid)
        if det is self.evaporation:
            # pulled versus traded: what removed the side's near-touch depth
            ctx["cause"] = self.evaporation.cause(side) or None
        details = det.details()
        details.update(det.sequential())
        ctx["detector"] = {k: _json_num(v) for k, v in details.items()}
        return ctx
