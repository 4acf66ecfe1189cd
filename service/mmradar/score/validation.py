"""Validation against published microstructure results (docs/signals.md).

Three checks, each on the same book path the detectors use (frames → parser → BookSync →
L2 book; the top of book is read after every applied depth message):

Cont–Kukanov–Stoikov (2014) price impact of order-flow imbalance
    Per depth message ``n`` the CKS contribution ``e_n`` of the L1 change
    (:func:`mmradar.signals.flow.ofi_event`, the function the engine uses). Over consecutive
    event-time intervals of ``Δt`` seconds: ``OFI_k = Σ e_n`` and ``ΔP_k = (M_k − M_{k−1})/tick``
    (mid at the interval ends, in ticks). OLS ``ΔP_k = α + β·OFI_k``: slope, R², t(β). With
    depth ``D`` (mean touch size, ``(q_b + q_a)/2``) the stylised book predicts ``β ≈ c/D`` with
    ``c ≈ ½`` (CKS: ``c`` about 40 % lower when ``D`` is the plain average). Also the same
    regression on trade imbalance ``TI_k`` (signed taker volume), which CKS found much weaker.
    Long series are also cut into windows (CKS: 30 min) for the per-window R² distribution and
    the depth elasticity ``λ`` of ``log β_w = a − λ·log D_w``.

Gould–Bonart (2016) queue imbalance
    At every L1 state, ``QI = (q_b − q_a)/(q_b + q_a)`` and the direction of the next mid
    change. ``P(up | QI bucket)``, the hit rate of the sign rule (up when QI > 0), and the
    logistic fit ``P(up) = 1/(1 + exp(−(x0 + x1·QI)))``.

Avellaneda–Stoikov (2008) inventory control
    The paper's own experiment (AS-mode, no book): binomial mid, Poisson fills
    ``λ(δ) = A·e^(−kδ)``, the inventory strategy (quotes around the reservation price
    ``r = s − qγσ²(T − t)``) against the symmetric one (the same spread around ``s``);
    the standard deviations of final profit and inventory.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..book.sync import FetchSnapshot
from ..model import Trade
from ..pipeline import FeedPipeline
from ..signals.flow import ofi_event
from ..venues import make_venue
from .stats import LogitFit, OlsFit, logistic_fit, mean, ols, quantile

__all__ = [
    "AsStrategyStats",
    "CksResult",
    "GbResult",
    "L1Path",
    "as_benchmark",
    "cks_regression",
    "l1_path_from_frames",
    "queue_imbalance",
]

_NS = 1_000_000_000


# --------------------------------------------------------------------------------------------
# The top-of-book path
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class L1Path:
    """The top of book after every applied depth message, and the trades.

    Attributes:
        ts_ns: event time of each L1 state (a change of best price or size).
        bid: best bid price.
        bid_qty: best bid size.
        ask: best ask price.
        ask_qty: best ask size.
        trades: ``(event time, signed base quantity)``, + = the taker bought.
        tick: the price tick (estimated when not given: the smallest touch step or spread).
    """

    ts_ns: list[int] = field(default_factory=list)
    bid: list[float] = field(default_factory=list)
    bid_qty: list[float] = field(default_factory=list)
    ask: list[float] = field(default_factory=list)
    ask_qty: list[float] = field(default_factory=list)
    trades: list[tuple[int, float]] = field(default_factory=list)
    tick: float = math.nan

    def __len__(self) -> int:
        return len(self.ts_ns)

    def append(self, ts_ns: int, bp: float, bq: float, ap: float, aq: float) -> None:
        """Add a state (ignored when it equals the previous one)."""
        if (
            self.ts_ns
            and bp == self.bid[-1]
            and bq == self.bid_qty[-1]
            and ap == self.ask[-1]
            and aq == self.ask_qty[-1]
        ):
            return
        self.ts_ns.append(ts_ns)
        self.bid.append(bp)
        self.bid_qty.append(bq)
        self.ask.append(ap)
        self.ask_qty.append(aq)

    def estimate_tick(self) -> float:
        """The smallest positive touch price step or spread seen (NaN without one)."""
        best = math.inf
        for prices in (self.bid, self.ask):
            for a, b in itertools.pairwise(prices):
                d = abs(b - a)
                if 0.0 < d < best:
                    best = d
        for b, a in zip(self.bid, self.ask, strict=True):
            d = a - b
            if 0.0 < d < best:
                best = d
        # snap to a decimal tick (floats of prices differ in the last bits)
        return float(f"{best:.2g}") if best < math.inf else math.nan


class _Tap:
    """Feeds frames through a pipeline and records the L1 path of one symbol."""

    def __init__(self, exchange: str, symbol: str) -> None:
        self.pipeline = FeedPipeline(make_venue(exchange), [symbol])
        self.inst = self.pipeline.instruments[symbol]
        self.trade_parser = make_venue(exchange).new_parser()
        self.path = L1Path()

    def after_frame(self, raw: bytes | str, ts_ns: int) -> None:
        inst = self.inst
        if b"@trade" in (raw if isinstance(raw, bytes) else raw.encode()):
            for ev in self.trade_parser.parse(raw, ts_ns):
                if type(ev) is Trade:
                    self.path.trades.append(
                        (ev.ts_event_ns, ev.qty if ev.taker.value == "buy" else -ev.qty)
                    )
            return
        if not inst.valid:
            return
        bb = inst.book.best_bid()
        ba = inst.book.best_ask()
        if bb is None or ba is None:
            return
        self.path.append(inst.sync.last_event_ns, bb[0], bb[1], ba[0], ba[1])


def l1_path_from_frames(
    symbol: str,
    snapshot: bytes,
    frames: Iterable[tuple[int, bytes]],
    *,
    tick: float | None = None,
    exchange: str = "binance",
) -> L1Path:
    """Drive simulator frames through the pipeline and record the top of book.

    Args:
        symbol: the venue symbol.
        snapshot: the REST snapshot body served when the book asks for one (once).
        frames: ``(receive time, payload)`` in order.
        tick: the price tick (estimated from the path if None).
        exchange: the venue whose wire format the frames are in.

    Returns:
        The L1 path.
    """
    tap = _Tap(exchange, symbol)
    pipeline = tap.pipeline
    parser = pipeline.new_parser()
    used = False
    for ts, raw in frames:
        for command in pipeline.on_frame(parser, raw, ts):
            if type(command) is FetchSnapshot and not used:
                used = True
                pipeline.on_snapshot(symbol, snapshot, ts)
        tap.after_frame(raw, ts)
    path = tap.path
    path.tick = tick if tick is not None else path.estimate_tick()
    return path


def l1_path_from_recording(path: str, *, exchange: str | None = None) -> L1Path:
    """Replay a recording (mmradar or hftbacktest capture) and record the top of book.

    Uses the replayer's routing (:class:`mmradar.replay.Replayer`): snapshots, reconnects and
    resyncs are handled as ``mmradar replay`` handles them.
    """
    from ..record import RecordingReader
    from ..replayer import Replayer, build_pipelines, probe_feeds

    feeds = probe_feeds(path, exchange=exchange)
    pipelines = build_pipelines(feeds)
    replayer = Replayer(pipelines)
    (feed_exchange, pipeline), *_ = pipelines.items()
    symbol = next(iter(pipeline.instruments))
    inst = pipeline.instruments[symbol]
    trade_parser = make_venue(feed_exchange).new_parser()
    out = L1Path()
    with RecordingReader(path, exchange=exchange) as reader:
        for record in reader:
            replayer.feed(record)
            if record.kind != "ws":
                continue
            raw = record.data
            data = raw if isinstance(raw, bytes) else raw.encode()
            if b"@trade" in data[:64] or b'"e":"trade"' in data:
                for ev in trade_parser.parse(raw, record.t):
                    if type(ev) is Trade and ev.symbol == symbol:
                        out.trades.append(
                            (ev.ts_event_ns, ev.qty if ev.taker.value == "buy" else -ev.qty)
                        )
                continue
            if not inst.valid:
                continue
            bb = inst.book.best_bid()
            ba = inst.book.best_ask()
            if bb is not None and ba is not None:
                out.append(inst.sync.last_event_ns, bb[0], bb[1], ba[0], ba[1])
    out.tick = out.estimate_tick()
    return out


# --------------------------------------------------------------------------------------------
# Cont–Kukanov–Stoikov
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CksResult:
    """The CKS regressions of one L1 path at one interval.

    Attributes:
        interval_s: Δt.
        fit: OLS of ΔP (ticks) on OFI (base units), over the whole path.
        ti_fit: OLS of ΔP on trade imbalance TI.
        depth: mean touch size ``(q_b + q_a)/2`` (base units).
        c_hat: ``β·depth`` (stylised book: ≈ ½).
        window_s: window length for the per-window figures (None: not windowed).
        window_r2: R² of each window's regression.
        window_beta_pos_sig: share of windows with β > 0 and t(β) > 2.
        lambda_hat: depth elasticity λ from ``log β_w`` on ``log D_w`` across windows.
    """

    interval_s: float
    fit: OlsFit
    ti_fit: OlsFit
    depth: float
    c_hat: float
    window_s: float | None = None
    window_r2: tuple[float, ...] = ()
    window_beta_pos_sig: float = math.nan
    lambda_hat: float = math.nan

    @property
    def window_r2_median(self) -> float:
        """Median per-window R²."""
        return quantile(self.window_r2, 0.5)


def _bins(
    path: L1Path, interval_s: float
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Per interval: ΔP (ticks), OFI, TI, mean touch depth (NaN without a state)."""
    n = len(path)
    step = round(interval_s * _NS)
    if n < 2 or not path.tick > 0:
        return [], [], [], []
    k0 = path.ts_ns[0] // step
    k_end = path.ts_ns[-1] // step
    nb = k_end - k0  # complete intervals after the first state's
    ofi = [0.0] * nb
    ti = [0.0] * nb
    dsum = [0.0] * nb
    dcount = [0] * nb
    mids_end = [math.nan] * (nb + 1)  # mid at the end of interval k0 + i
    bid, ask, bq, aq, ts = path.bid, path.ask, path.bid_qty, path.ask_qty, path.ts_ns
    mids_end[0] = 0.5 * (bid[0] + ask[0])
    for i in range(1, n):
        k = ts[i] // step - k0
        e = ofi_event(bid[i - 1], bq[i - 1], ask[i - 1], aq[i - 1], bid[i], bq[i], ask[i], aq[i])
        if 1 <= k <= nb:
            ofi[k - 1] += e
            dsum[k - 1] += 0.5 * (bq[i] + aq[i])
            dcount[k - 1] += 1
    # mid in force at each interval end: the last state at or before it
    j = 0
    for i in range(nb + 1):
        end = (k0 + i + 1) * step
        while j + 1 < n and ts[j + 1] < end:
            j += 1
        mids_end[i] = 0.5 * (bid[j] + ask[j])
    for t, q in path.trades:
        k = t // step - k0
        if 1 <= k <= nb:
            ti[k - 1] += q
    dp = [(mids_end[i + 1] - mids_end[i]) / path.tick for i in range(nb)]
    depth = [s / c if c else math.nan for s, c in zip(dsum, dcount, strict=True)]
    return dp, ofi, ti, depth


def cks_regression(
    path: L1Path, interval_s: float = 10.0, *, window_s: float | None = None
) -> CksResult:
    """The CKS regression of mid changes on OFI (see the module docstring).

    Args:
        path: the L1 path.
        interval_s: Δt in seconds (CKS: 10 s).
        window_s: cut the intervals into windows this long for per-window figures (CKS:
            1800 s); None for the pooled fit only.

    Returns:
        The fits.
    """
    dp, ofi, ti, dep = _bins(path, interval_s)
    fit = ols(ofi, dp)
    ti_fit = ols(ti, dp)
    depth = mean([0.5 * (b + a) for b, a in zip(path.bid_qty, path.ask_qty, strict=True)])
    c_hat = fit.beta * depth if fit.beta == fit.beta else math.nan
    if window_s is None:
        return CksResult(interval_s, fit, ti_fit, depth, c_hat)
    per = max(3, round(window_s / interval_s))
    r2s: list[float] = []
    pos_sig = 0
    log_beta: list[float] = []
    log_depth: list[float] = []
    nwin = 0
    for w in range(0, len(dp) - per + 1, per):
        f = ols(ofi[w : w + per], dp[w : w + per])
        if f.r2 != f.r2:
            continue
        nwin += 1
        r2s.append(f.r2)
        if f.beta > 0 and f.t_beta > 2:
            pos_sig += 1
        d = mean(dep[w : w + per])
        if f.beta > 0 and d > 0:
            log_beta.append(math.log(f.beta))
            log_depth.append(math.log(d))
    lam = -ols(log_depth, log_beta).beta if len(log_beta) >= 3 else math.nan
    return CksResult(
        interval_s,
        fit,
        ti_fit,
        depth,
        c_hat,
        window_s=window_s,
        window_r2=tuple(r2s),
        window_beta_pos_sig=pos_sig / nwin if nwin else math.nan,
        lambda_hat=lam,
    )


# --------------------------------------------------------------------------------------------
# Gould–Bonart
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GbResult:
    """Queue imbalance vs the next mid move.

    Attributes:
        n: L1 states with a later mid change.
        buckets: ``(lower edge, upper edge, states, P(up))`` for equal-width QI buckets.
        hit_rate: share of states with QI ≠ 0 whose sign matches the next move.
        hit_rate_one_tick: the same, only states with a one-tick spread.
        n_one_tick: states with a one-tick spread and QI ≠ 0.
        logit: the logistic fit of up/down on QI.
    """

    n: int
    buckets: tuple[tuple[float, float, int, float], ...]
    hit_rate: float
    hit_rate_one_tick: float
    n_one_tick: int
    logit: LogitFit

    @property
    def monotone(self) -> bool:
        """P(up) is non-decreasing across the buckets that have states."""
        ps = [p for _, _, n, p in self.buckets if n]
        return all(b >= a for a, b in itertools.pairwise(ps))


def queue_imbalance(path: L1Path, *, buckets: int = 10, max_fit: int = 200_000) -> GbResult:
    """Gould–Bonart: P(next mid move up | queue imbalance) on an L1 path.

    Args:
        path: the L1 path.
        buckets: number of equal-width QI buckets on [−1, 1].
        max_fit: the logistic fit uses at most this many states (evenly thinned).

    Returns:
        The buckets, hit rates and logistic fit.
    """
    n = len(path)
    mids = [0.5 * (b + a) for b, a in zip(path.bid, path.ask, strict=True)]
    nxt: list[int] = [0] * n  # +1 / −1: direction of the next mid change after state i
    d = 0
    for i in range(n - 2, -1, -1):
        if mids[i + 1] != mids[i]:
            d = 1 if mids[i + 1] > mids[i] else -1
        nxt[i] = d
    qis: list[float] = []
    ups: list[bool] = []
    one_tick: list[bool] = []
    tick = path.tick
    for i in range(n - 1):
        if not nxt[i]:
            continue
        tot = path.bid_qty[i] + path.ask_qty[i]
        if not tot > 0:
            continue
        qis.append((path.bid_qty[i] - path.ask_qty[i]) / tot)
        ups.append(nxt[i] > 0)
        one_tick.append(abs(path.ask[i] - path.bid[i] - tick) < 0.5 * tick)
    counts = [0] * buckets
    up_counts = [0] * buckets
    for q, u in zip(qis, ups, strict=True):
        b = min(buckets - 1, int((q + 1.0) / 2.0 * buckets))
        counts[b] += 1
        up_counts[b] += u
    table = tuple(
        (
            -1.0 + 2.0 * b / buckets,
            -1.0 + 2.0 * (b + 1) / buckets,
            counts[b],
            up_counts[b] / counts[b] if counts[b] else math.nan,
        )
        for b in range(buckets)
    )
    hits = [(q > 0) == u for q, u in zip(qis, ups, strict=True) if q != 0]
    hits1 = [(q > 0) == u for q, u, o in zip(qis, ups, one_tick, strict=True) if q != 0 and o]
    stride = max(1, math.ceil(len(qis) / max_fit))
    logit = logistic_fit(qis[::stride], ups[::stride])
    return GbResult(
        n=len(qis),
        buckets=table,
        hit_rate=sum(hits) / len(hits) if hits else math.nan,
        hit_rate_one_tick=sum(hits1) / len(hits1) if hits1 else math.nan,
        n_one_tick=len(hits1),
        logit=logit,
    )


# --------------------------------------------------------------------------------------------
# Avellaneda–Stoikov
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AsStrategyStats:
    """Outcome of one AS strategy over many paths.

    Attributes:
        strategy: ``inventory`` or ``symmetric``.
        spread: the quoted spread.
        profit_mean: mean final profit (cash + q·S_T).
        profit_sd: its standard deviation.
        q_mean: mean final inventory.
        q_sd: its standard deviation.
    """

    strategy: str
    spread: float
    profit_mean: float
    profit_sd: float
    q_mean: float
    q_sd: float


def as_benchmark(
    *,
    paths: int = 1000,
    seed: int = 1,
    s0: float = 100.0,
    horizon: float = 1.0,
    sigma: float = 2.0,
    dt: float = 0.005,
    gamma: float = 0.1,
    k: float = 1.5,
    a: float = 140.0,
) -> tuple[AsStrategyStats, AsStrategyStats]:
    """The Avellaneda–Stoikov (2008) simulation, inventory vs symmetric strategy.

    Each step the mid moves ``±σ√dt`` with equal probability; a quote at distance ``δ`` from
    the mid is filled with probability ``A·e^(−kδ)·dt`` (one unit). The inventory strategy
    quotes ``r ± spread/2`` with ``r = s − qγσ²(T − t)``; the symmetric one ``s ± spread/2``;
    both with the constant spread ``(2/γ)·ln(1 + γ/k)``. Both strategies see the same price
    path and the same uniform draws for their fills.

    Returns:
        ``(inventory, symmetric)`` statistics.
    """
    rng = random.Random(seed)
    steps = round(horizon / dt)
    spread = 2.0 / gamma * math.log(1.0 + gamma / k)
    half = spread / 2.0
    dz = sigma * math.sqrt(dt)
    outcomes: dict[str, tuple[list[float], list[float]]] = {
        "inventory": ([], []),
        "symmetric": ([], []),
    }
    exp = math.exp
    for _ in range(paths):
        draws = [(rng.random() < 0.5, rng.random(), rng.random()) for _ in range(steps)]
        for strategy, (profits, qs) in outcomes.items():
            s = s0
            q = 0
            cash = 0.0
            for i, (up, u_bid, u_ask) in enumerate(draws):
                t = i * dt
                r = s - q * gamma * sigma * sigma * (horizon - t) if strategy == "inventory" else s
                bid = r - half
                ask = r + half
                if u_bid < a * exp(-k * (s - bid)) * dt:
                    q += 1
                    cash -= bid
                if u_ask < a * exp(-k * (ask - s)) * dt:
                    q -= 1
                    cash += ask
                s += dz if up else -dz
            profits.append(cash + q * s)
            qs.append(float(q))

    def stats(name: str) -> AsStrategyStats:
        profits, qs = outcomes[name]
        return AsStrategyStats(name, spread, mean(profits), _sd(profits), mean(qs), _sd(qs))

    return stats("inventory"), stats("symmetric")


def _sd(values: Sequence[float]) -> float:
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))
