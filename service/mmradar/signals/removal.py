"""Pulled versus traded: why resting size disappeared from the book (docs/signals.md).

From the depth diffs and the trade stream of one instrument, every **decrease** of a level's
resting size within a band of the mid (``BAND_BPS``; band ``x`` holds the levels with
``|price − mid|/mid ≤ x/10⁴``, the mid before the message) is attributed, on event time:

* to **trades** — the part of the decrease at a price that printed, up to the printed size: a
  taker buying at ``p`` removes ask size at ``p``, a taker selling removes bid size;
* to **cancellation** — the rest (makers pulling or shrinking their quotes).

Prints wait for the depth update that shows them: a print is matched against the decrease at
its price made by the first depth message whose event time is at or after the print's (a
batched diff covers the trades of its window, and its depth message arrives after them); what
that message does not show as a decrease (the level was refilled in the same batch) is
forgotten, as is a print that waited longer than ``removal_match_seconds``. Bands are those of
the book's depth sums, placed around the mid of the last stat-clock second. A print that
arrives *after* the depth update showing its removal cannot be matched, so that removal counts
as a cancellation: the split is exact only where the venue publishes its trades no later than
the depth update that reflects them (docs/signals.md lists which venues do).

Exported (``mmradar_depth_removed_notional_total{side,band_bps,cause}``) as quote notional
``price × size``, cumulative.

**Cancel share.** Makers re-quote all the time: most cancelled size comes straight back as new
resting size, so the gross split says little about why a side *thinned*. Increases of resting
size (``A``, new levels included) are therefore counted too, and over the last
``removal_window_seconds`` the liquidity that went missing is attributed as traded ``T`` and
cancelled-and-not-replaced ``max(0, C − A)``; the **cancel share** (per side and band,
``mmradar_depth_removed_cancel_share``) is ``max(0, C − A)/(T + max(0, C − A))``, NaN when
nothing went missing. ``liquidity_evaporation`` names its episodes' cause from that share in
the innermost band: ``cancel`` (≥ :data:`CANCEL_LED_SHARE`), ``trade`` (≤
:data:`TRADE_LED_SHARE`) or ``mixed``.

Where the work happens: the book adds every level change inside the widest band to its gross
decrease or increase of that ring as it applies it (:attr:`L2Book.flows
<mmradar.book.l2book.L2Book.flows>`, one comparison per level it already visits); this module
reads those totals once per second, and, only for depth messages that follow prints, reads the
size resting at each printed price before and after the message (one dictionary read each). Per
trade one dictionary write. No per-level work of its own.
"""

from __future__ import annotations

import math
from collections import deque
from operator import add, sub

from mypy_extensions import mypyc_attr

from ..book.l2book import L2Book
from ..model import BAND_BPS

__all__ = [
    "CANCEL_LED_SHARE",
    "CAUSES",
    "TRADE_LED_SHARE",
    "RemovalAttribution",
    "cause_of",
]

_NS = 1_000_000_000
_NAN = math.nan
#: ``cause`` label values of ``mmradar_depth_removed_notional_total``.
CAUSES: tuple[str, ...] = ("trade", "cancel")
#: Removals whose cancelled share is at least this are ``cancel``-led.
CANCEL_LED_SHARE = 2.0 / 3.0
#: ... at most this, ``trade``-led; between the two, ``mixed``.
TRADE_LED_SHARE = 1.0 / 3.0


def cause_of(cancel_share: float) -> str:
    """``cancel``, ``trade`` or ``mixed`` for a cancelled share (``""`` when undefined)."""
    if cancel_share != cancel_share:
        return ""
    if cancel_share >= CANCEL_LED_SHARE:
        return "cancel"
    if cancel_share <= TRADE_LED_SHARE:
        return "trade"
    return "mixed"


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class RemovalAttribution:
    """Pulled-versus-traded bookkeeping of one instrument (module docstring).

    Everything is kept per *ring* (band ``i`` minus band ``i − 1``), as the book counts it,
    and cumulatively: a window's flows are the difference of two snapshots taken one per
    second, band figures ring sums, both formed only when read.

    Args:
        window_s: the rolling window of the cancel share, seconds (stat-clock bins).
        match_s: how long a print waits for the depth update showing it, seconds.
    """

    __slots__ = (
        "_before",
        "_done",
        "_match_ns",
        "_print_ask",
        "_print_bid",
        "_reported",
        "_snaps",
        "_start",
        "_traded",
        "_window",
    )

    def __init__(self, window_s: int, match_s: float) -> None:
        n = len(BAND_BPS)
        self._window = max(1, window_s)
        self._match_ns = round(match_s * _NS)
        # the book's gross flows when the current book life started (empty: no life)
        self._start: list[float] = []
        # traded notional matched during the current book life, per ring: bid, then ask
        self._traded = [0.0] * (2 * n)
        # book flows (4n: bid dec, bid inc, ask dec, ask inc) and traded (2n) of finished
        # book lives
        self._done = [0.0] * (6 * n)
        # one snapshot per second of (book flows, traded) for the rolling window
        self._snaps: deque[tuple[list[float], list[float]]] = deque()
        # totals last reported (counters never go down)
        self._reported: dict[tuple[bool, int], tuple[float, float]] = {}
        # prints not yet seen in the book: price → [remaining base quantity, event time]
        self._print_bid: dict[float, list[float]] = {}
        self._print_ask: dict[float, list[float]] = {}
        # sizes resting at the printed prices before the message being applied
        self._before: list[tuple[bool, float, float]] = []

    # -- per message -----------------------------------------------------------------------

    def start(self, book: L2Book) -> None:
        """A book life starts: flows are counted from the book's totals now."""
        self._start = list(book.flows)
        self._snaps.clear()

    def on_print(self, price: float, qty: float, taker_buy: bool, ts_ns: int) -> None:
        """A trade at ``price``: it removed ``qty`` from the ask side (taker bought) or bid."""
        if not (qty > 0.0 and price > 0.0):
            return
        book = self._print_ask if taker_buy else self._print_bid
        entry = book.get(price)
        if entry is None:
            book[price] = [qty, float(ts_ns)]
        else:
            entry[0] += qty
            entry[1] = float(ts_ns)

    @property
    def waiting(self) -> bool:
        """Prints wait for the depth update showing them."""
        return bool(self._print_bid or self._print_ask)

    @property
    def matching(self) -> bool:
        """:meth:`before` noted sizes that :meth:`after` must match."""
        return bool(self._before)

    def before(self, book: L2Book, ts_ns: int) -> None:
        """A depth message at ``ts_ns`` is about to be applied: note the sizes resting at the
        prices that printed at or before ``ts_ns`` (prints older than the match window are
        dropped first; later ones wait for a later message)."""
        limit = float(ts_ns - self._match_ns)
        now = float(ts_ns)
        before = self._before
        before.clear()
        for bid in (True, False):
            prints = self._print_bid if bid else self._print_ask
            if not prints:
                continue
            stale: list[float] = []
            for price, entry in prints.items():
                t = entry[1]
                if t < limit:
                    stale.append(price)
                elif t <= now:
                    before.append((bid, price, book.size_at(bid, price)))
            for price in stale:
                del prints[price]

    def after(self, book: L2Book, applied: bool, mid: float) -> None:
        """The message was applied (or dropped): match the prints against the decreases at
        their prices, up to the printed size, in the bands around ``mid`` (the mid the book
        placed its band edges at)."""
        before = self._before
        if not before:
            return
        if not applied or not mid > 0.0 or not self._start:
            before.clear()
            return
        n = len(BAND_BPS)
        traded = self._traded
        for bid, price, old in before:
            prints = self._print_bid if bid else self._print_ask
            # the first depth message at or after a print is the one that shows it: what
            # it does not show as a decrease at that price was refilled, and is forgotten
            entry = prints.pop(price, None)
            if entry is None:
                continue
            d = old - book.size_at(bid, price)
            if not d > 0.0:
                continue
            t = entry[0] if entry[0] < d else d
            x = abs(price - mid) / mid * 1e4
            i = 0
            while i < n and x > BAND_BPS[i]:
                i += 1
            if i < n:
                traded[(0 if bid else n) + i] += price * t
        before.clear()

    # -- stat clock --------------------------------------------------------------------------

    def tick(self, book: L2Book) -> None:
        """Close one second: snapshot the book's flows and the matched trades."""
        if not self._start:
            return
        snaps = self._snaps
        snaps.append((list(book.flows), list(self._traded)))
        if len(snaps) > self._window + 1:
            snaps.popleft()

    def reset_window(self, book: L2Book) -> None:
        """The book life ends (resync): keep its totals, forget the window and the prints."""
        if self._start:
            life = list(map(sub, book.flows, self._start))
            self._done = list(map(add, self._done, life + self._traded))
        self._start = []
        self._traded = [0.0] * len(self._traded)
        self._snaps.clear()
        self._print_bid.clear()
        self._print_ask.clear()
        self._before.clear()

    # -- reads -------------------------------------------------------------------------------

    def removed_total(
        self, book: L2Book, bid: bool, band: int, record: bool = True
    ) -> tuple[float, float]:
        """``(traded, cancelled)`` notional removed within band index ``band`` since start.

        Cumulative and never decreasing (``mmradar_depth_removed_notional_total``) over the
        reads that ``record`` (the scrapes); a read with ``record=False`` leaves that memory
        alone.
        """
        n = len(BAND_BPS)
        f = list(self._done[: 4 * n])
        tr = list(self._done[4 * n :])
        if self._start:
            f = list(map(add, f, map(sub, book.flows, self._start)))
            tr = list(map(add, tr, self._traded))
        dec0 = 0 if bid else 2 * n
        t0 = 0 if bid else n
        dec = sum(f[dec0 : dec0 + band + 1])
        traded = sum(tr[t0 : t0 + band + 1])
        if traded > dec:
            traded = dec
        cancelled = dec - traded
        key = (bid, band)
        last_t, last_c = self._reported.get(key, (0.0, 0.0))
        out = (max(traded, last_t), max(cancelled, last_c))
        if record:
            self._reported[key] = out
        return out

    def window_flows(self, bid: bool, band: int) -> tuple[float, float, float]:
        """``(traded, cancelled, added)`` notional of the rolling window (the seconds between
        its oldest and newest snapshot), side, band index."""
        snaps = self._snaps
        if len(snaps) < 2:
            return 0.0, 0.0, 0.0
        (f0, t0), (f1, t1) = snaps[0], snaps[-1]
        n = len(BAND_BPS)
        d = 0 if bid else 2 * n
        k = 0 if bid else n
        dec = inc = traded = 0.0
        for i in range(band + 1):
            dec += f1[d + i] - f0[d + i]
            inc += f1[d + n + i] - f0[d + n + i]
            traded += t1[k + i] - t0[k + i]
        if traded > dec:
            traded = dec
        return traded, dec - traded, inc

    def lost(self, bid: bool, band: int) -> bool:
        """Did the side lose resting size over the window: removals (traded + cancelled) not
        matched by additions?"""
        t, c, a = self.window_flows(bid, band)
        return t + c > a

    def cancel_share(self, bid: bool, band: int) -> float:
        """Cancelled-and-not-replaced share of what went missing (module docstring; NaN if
        nothing went missing over the window)."""
        t, c, a = self.window_flows(bid, band)
        pulled = c - a if c > a else 0.0
        total = t + pulled
        return pulled / total if total > 0.0 else _NAN
