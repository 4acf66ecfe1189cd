"""The soak: the real service process against every fake venue, under faults, for an hour.

``make soak`` (default 60 minutes; ``MINUTES=N``) or ``PYTHONPATH=tests python -m soak
--minutes N``. It starts, on 127.0.0.1:

* the fake venues of all six exchanges, at :data:`SPEED` × a real rate (the capture venues at
  most :data:`CAPTURE_SPEED_MAX` ×, so that a pass outlasts the back-off reset): Binance spot (the
  embedded venue playing the simulator's ``cycle`` scenario, so symptom episodes fire and the
  webhooks have traffic), Binance USD-M (the real capture, looped), Coinbase and OKX (their
  seeded generators, two products each), Kraken (both packaged captures re-encoded as
  ``BTC/USDT`` and ``BTC/USD``) and Bybit (the USD-M capture as a linear perpetual). The capture
  venues play their six minutes once; each is restarted on the same port when it is done (a
  venue restart: the service reconnects and takes fresh snapshots);
* a webhook endpoint that fails (HTTP 500) and recovers in turns;
* the service itself, as a separate process (``mmradar run --config …``), so its RSS, descriptors
  and loop lag are its own;
* a real Prometheus (``/usr/bin/prometheus`` when installed) scraping ``/metrics`` every 5 s.

Every :data:`FAULT_INTERVAL_S` the harness injects the next fault of :func:`_faults` (gaps,
checksum mismatches, dropped connections, maintenance closes, REST 429s) round-robin, and every
minute it prints the service's RSS, open descriptors, asyncio task count and event-loop lag
(read from its ``/metrics``: ``process_open_fds``, ``mmradar_asyncio_tasks``,
``mmradar_event_loop_lag_seconds``). RSS is read from ``/proc/<pid>/status`` every
:data:`RSS_READ_INTERVAL_S` and each minute's figure is the median of that minute's readings:
the service hands freed heap pages back every few seconds (``mmradar.memory``), so single
readings saw-tooth by several MiB and one reading at the end of the warm-up and one at the end
of the run would judge the phase of the saw-tooth, not the growth (Linux; elsewhere the
``process_resident_memory_bytes`` of each minute's scrape is used).

At the end it pauses every venue and checks (:func:`verdict`):

* RSS at the end is at most 5 % above RSS after the warm-up (5 minutes, or a third of a short
  run);
* the task and descriptor counts do not grow: the largest value in the second half of the
  run after the warm-up is at most the largest of the first half plus a small slack;
* every book is valid and equals its venue's truth book (touch, level counts, depth bands);
* ``/metrics`` answered every scrape (the harness's and Prometheus's ``up``);
* the service stops cleanly on SIGTERM (exit code 0).

It writes ``soak.json`` (every sample and the verdict), ``soak.png`` (RSS and loop lag over
time) and the service's log into ``--out``, and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
if str(TESTS) not in sys.path:  # run as a script: the fakes live under tests/
    sys.path.insert(0, str(TESTS))

from e2e.harness import Samples, market_reference, parse_metrics  # noqa: E402
from fakes.bybit import EmbeddedBybit  # noqa: E402
from fakes.coinbase import EmbeddedCoinbase  # noqa: E402
from fakes.kraken import EmbeddedKraken  # noqa: E402
from fakes.okx import EmbeddedOkx  # noqa: E402
from mmradar.embedded.binance import EmbeddedBinance  # noqa: E402
from mmradar.embedded.source import SimulatedSource  # noqa: E402
from mmradar.model import BAND_BPS  # noqa: E402
from support import free_port, wait_until  # noqa: E402

#: Every venue runs this many times faster than the real one it imitates.
SPEED = 20.0
#: The capture venues (Binance USD-M, Kraken, Bybit) run at most this fast: a capture lasts
#: about 346 s, so a pass lasts at least 46 s, longer than the 30 s a connection must hold before
#: the service resets its reconnect back-off. At 20x a pass (and so every connection) lasted
#: 17 s, the back-off never reset and stayed near its cap.
CAPTURE_SPEED_MAX = 7.5
#: Seconds between two injected faults.
FAULT_INTERVAL_S = 20.0
#: Prometheus scrape interval.
SCRAPE_INTERVAL_S = 5
#: Seconds between two readings of the service's RSS (a minute's figure is their median).
RSS_READ_INTERVAL_S = 2.0
#: Allowed RSS growth from the end of the warm-up to the end of the run.
RSS_GROWTH_MAX = 0.05
#: Warm-up excluded from the growth checks (capped at a third of the run).
WARMUP_S = 300.0
#: Slack of the "no unbounded growth" checks (reconnect churn moves both counts a little).
TASK_SLACK = 25
FD_SLACK = 25
PROMETHEUS = "/usr/bin/prometheus"

# Real rates the generators imitate (20x of these): Coinbase level2 about 10 updates/s per
# product, OKX books 10 pushes/s per instrument (100 ms).
_COINBASE_REAL_HZ = 10.0
_OKX_REAL_INTERVAL_S = 0.1


@dataclass
class Sample:
    """One minute's reading of the service's ``/metrics``."""

    t_s: float
    rss_bytes: float
    open_fds: float
    tasks: float
    lag_mean_s: float
    lag_p99_s: float
    lag_max_bucket_s: float
    messages: float
    resyncs: float
    reconnects: float
    valid_books: int
    books: int
    episodes: float
    webhooks: dict[str, float] = field(default_factory=dict)
    bad_messages: float = 0.0
    cpu_s: float = 0.0
    recordings: float = 0.0
    #: what the resident pages are at the minute mark (one reading; Linux only): the C heap
    #: (``[heap]``), other anonymous mappings (Python's arenas, mapped blocks, any thread
    #: arena), file-backed mappings, and the OS thread count.
    memory: dict[str, float] = field(default_factory=dict)


@dataclass
class Verdict:
    ok: bool
    checks: dict[str, tuple[bool, str]]


def _sum(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lv), v in samples.items() if n == name and want <= lv)


def _rss_bytes(pid: int) -> float | None:
    """The resident size of process ``pid`` (``VmRSS``), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _memory_map(pid: int) -> dict[str, float]:
    """Resident bytes of process ``pid`` by kind of mapping, and its thread count ({} where
    ``/proc`` cannot be read)."""
    out = {"heap_bytes": 0.0, "anon_bytes": 0.0, "file_bytes": 0.0}
    kind = "anon_bytes"
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split(maxsplit=6)
                if "-" in head[0] and len(head) >= 5:  # a mapping's header line
                    name = head[5].strip() if len(head) > 5 else ""
                    kind = (
                        "heap_bytes"
                        if name == "[heap]"
                        else "file_bytes"
                        if name.startswith("/")
                        else "anon_bytes"
                    )
                elif head[0] == "Rss:":
                    out[kind] += float(head[1]) * 1024
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    out["threads"] = float(line.split()[1])
    except (OSError, IndexError, ValueError):
        return {}
    return out


def _lag(prev: Samples | None, cur: Samples) -> tuple[float, float, float]:
    """Mean, p99 and maximum (bucket upper bounds) of the loop lag between two scrapes."""

    def buckets(s: Samples | None) -> dict[float, float]:
        if s is None:
            return {}
        return {
            float(dict(lv)["le"]): v
            for (n, lv), v in s.items()
            if n == "mmradar_event_loop_lag_seconds_bucket"
        }

    b0, b1 = buckets(prev), buckets(cur)
    name_sum = "mmradar_event_loop_lag_seconds_sum"
    name_count = "mmradar_event_loop_lag_seconds_count"
    d_sum = _sum(cur, name_sum) - (_sum(prev, name_sum) if prev else 0.0)
    d_count = _sum(cur, name_count) - (_sum(prev, name_count) if prev else 0.0)
    if d_count <= 0:
        return math.nan, math.nan, math.nan
    bounds = sorted(b1)
    delta = [b1[b] - b0.get(b, 0.0) for b in bounds]  # cumulative counts since prev
    p99 = next((b for b, c in zip(bounds, delta, strict=True) if c >= 0.99 * d_count), math.inf)
    top, below = 0.0, 0.0
    for b, c in zip(bounds, delta, strict=True):
        if c > below:
            top = b  # some sample in (previous bound, b]
        below = c
    return d_sum / d_count, p99, top


class WebhookSink:
    """A webhook endpoint on 127.0.0.1 that answers 500 while :attr:`failing`."""

    def __init__(self) -> None:
        self.failing = False
        self.received = 0
        self.refused = 0
        self.recordings: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.failing:
            self.refused += 1
            return web.Response(status=500, text="down for the soak")
        self.received += 1
        with contextlib.suppress(ValueError):
            recording = json.loads(body).get("recording")
            if recording:
                self.recordings.append(str(recording))
        return web.Response(status=200)


class Venues:
    """The six fake venues, with restarts of the capture venues when their capture is done."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.capture_speed = min(speed, CAPTURE_SPEED_MAX)
        self.spot = EmbeddedBinance(
            "spot", source=SimulatedSource("cycle", 1), speed=speed, loop=True
        )
        self.usdm = EmbeddedBinance("usdm", speed=self.capture_speed, loop=True)
        self.coinbase = EmbeddedCoinbase(("BTC-USD", "ETH-USD"), rate_hz=_COINBASE_REAL_HZ * speed)
        self.okx = EmbeddedOkx(
            ("BTC-USDT", "ETH-USDT"), interval_s=_OKX_REAL_INTERVAL_S / speed, checksums=True
        )
        self.kraken = EmbeddedKraken(("BTC/USDT", "BTC/USD"), speed=self.capture_speed)
        self.bybit = EmbeddedBybit("linear", speed=self.capture_speed)
        self.restarts = {"kraken": 0, "bybit": 0}
        self._frozen = False
        self._busy: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for venue in self.all():
            await venue.start()
        self._tasks = [
            asyncio.create_task(self._restarting("kraken")),
            asyncio.create_task(self._restarting("bybit")),
        ]

    def all(self) -> list[Any]:
        return [self.spot, self.usdm, self.coinbase, self.okx, self.kraken, self.bybit]

    async def _restarting(self, name: str) -> None:
        while not self._frozen:
            venue = getattr(self, name)
            await venue.wait_drained()  # the one point freeze() cancels
            if self._frozen:
                return
            self._busy.add(name)
            try:
                port = int(venue.ws_base.rsplit(":", 1)[1])
                await venue.stop()
                if name == "kraken":
                    fresh: Any = EmbeddedKraken(
                        ("BTC/USDT", "BTC/USD"), speed=self.capture_speed, port=port
                    )
                else:
                    fresh = EmbeddedBybit("linear", speed=self.capture_speed, port=port)
                for attempt in range(50):
                    try:
                        await fresh.start()
                        break
                    except OSError:
                        if attempt == 49:
                            raise
                        await asyncio.sleep(0.1)
                setattr(self, name, fresh)
                self.restarts[name] += 1
            finally:
                self._busy.discard(name)

    def by_exchange(self) -> dict[str, Any]:
        """The venue serving each exchange."""
        return {
            "binance": self.spot,
            "binance-usdm": self.usdm,
            "coinbase": self.coinbase,
            "okx": self.okx,
            "kraken": self.kraken,
            "bybit": self.bybit,
        }

    async def freeze(self) -> None:
        """Stop the restarts and hold every venue (truth books stop moving)."""
        self._frozen = True
        for name, task in zip(("kraken", "bybit"), self._tasks, strict=False):
            if name not in self._busy:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for venue in self.all():
            venue.pause()

    async def stop(self) -> None:
        await self.freeze()
        for venue in self.all():
            await venue.stop()

    def feeds(self) -> list[dict[str, Any]]:
        def urls(venue: Any) -> dict[str, str]:
            out = {"ws_url": venue.ws_base}
            rest = getattr(venue, "rest_base", None)
            if rest:
                out["rest_url"] = rest
            return out

        return [
            {"exchange": "binance", "symbols": ["BTCUSDT"], **urls(self.spot)},
            {"exchange": "binance-usdm", "symbols": ["BTCUSDT"], **urls(self.usdm)},
            {"exchange": "coinbase", "symbols": ["BTC-USD", "ETH-USD"], **urls(self.coinbase)},
            {"exchange": "okx", "symbols": ["BTC-USDT", "ETH-USDT"], **urls(self.okx)},
            {"exchange": "kraken", "symbols": ["BTC/USDT", "BTC/USD"], **urls(self.kraken)},
            {"exchange": "bybit", "symbols": ["BTCUSDT"], **urls(self.bybit)},
        ]

    def truth(self) -> dict[tuple[str, str], tuple[dict[str, str], dict[str, str]]]:
        """``{(exchange, symbol): (bids, asks)}`` of every venue's truth book now."""
        return {
            ("binance", "BTCUSDT"): self.spot.truth_book("BTCUSDT"),
            ("binance-usdm", "BTCUSDT"): self.usdm.truth_book("BTCUSDT"),
            ("coinbase", "BTC-USD"): self.coinbase.truth_book("BTC-USD"),
            ("coinbase", "ETH-USD"): self.coinbase.truth_book("ETH-USD"),
            ("okx", "BTC-USDT"): self.okx.truth_book("BTC-USDT"),
            ("okx", "ETH-USDT"): self.okx.truth_book("ETH-USDT"),
            ("kraken", "BTC/USDT"): self.kraken.truth_book("BTC/USDT", 1000),
            ("kraken", "BTC/USD"): self.kraken.truth_book("BTC/USD", 1000),
            ("bybit", "BTCUSDT"): self.bybit.truth_book("BTCUSDT"),
        }


def _faults(v: Venues) -> list[tuple[str, Callable[[], None]]]:
    """The faults injected round-robin (the venues' own fault-injection hooks)."""

    def usdm_gap_429() -> None:
        v.usdm.fail_next_rest(1, status=429, retry_after_s=1)  # the resync's first fetch
        v.usdm.skip_next_depth("BTCUSDT")

    def spot_maintenance() -> None:
        v.spot.send_server_shutdown()
        v.spot.close_connections()

    return [
        ("binance BTCUSDT gap", lambda: v.spot.skip_next_depth("BTCUSDT")),
        ("coinbase BTC-USD update lost", lambda: v.coinbase.lose_next_update("BTC-USD")),
        ("kraken BTC/USDT checksum", lambda: v.kraken.corrupt_next_checksum("BTC/USDT")),
        ("okx BTC-USDT gap", lambda: v.okx.skip_next_update("BTC-USDT")),
        ("bybit BTCUSDT gap", lambda: v.bybit.skip_next_delta("BTCUSDT")),
        ("binance-usdm gap, snapshot 429", usdm_gap_429),
        ("okx ETH-USDT checksum", lambda: v.okx.corrupt_next_checksum("ETH-USDT")),
        ("coinbase drop (TCP reset)", v.coinbase.drop_connections),
        ("binance serverShutdown + close", spot_maintenance),
        ("okx drop (TCP reset)", v.okx.drop_connections),
        ("kraken drop (TCP reset)", lambda: v.kraken.drop_connections()),
        ("bybit drop (TCP reset)", lambda: v.bybit.drop_connections()),
        ("binance-usdm drop (TCP reset)", v.usdm.drop_connections),
        ("coinbase ETH-USD update lost", lambda: v.coinbase.lose_next_update("ETH-USD")),
    ]


def _config(
    venues: Venues, port: int, hook_port: int, recordings: Path, flight: bool = True
) -> str:
    lines = ["[http]", f'listen = "127.0.0.1:{port}"', ""]
    for feed in venues.feeds():
        lines.append("[[feeds]]")
        for key, value in feed.items():
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    lines += [
        "[[webhooks]]",
        f'url = "http://127.0.0.1:{hook_port}/hook"',
        'format = "json"',
        "",
        "[signals]",
        "warmup_seconds = 180",  # as `mmradar demo`: episodes within the first pass
        "",
        "[log]",
        'level = "info"',
        "",
        "[flight_recorder]",  # on, as by default; its files go with the soak's
        f"directory = {json.dumps(str(recordings))}",
        *(() if flight else ("max_files = 0",)),  # off: to see what the rings cost
        "",
    ]
    return "\n".join(lines)


class Prometheus:
    """A real Prometheus scraping the service every :data:`SCRAPE_INTERVAL_S`."""

    def __init__(self, target_port: int, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None
        self._log: Any = None
        (workdir / "prometheus.yml").write_text(
            "global:\n"
            f"  scrape_interval: {SCRAPE_INTERVAL_S}s\n"
            f"  scrape_timeout: {SCRAPE_INTERVAL_S - 1}s\n"
            "scrape_configs:\n"
            "  - job_name: mmradar\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target_port}']\n"
        )

    async def start(self) -> None:
        log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = await asyncio.create_subprocess_exec(
            PROMETHEUS,
            f"--config.file={self.workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            stdout=log,
            stderr=log,
        )

    async def query(self, session: aiohttp.ClientSession, expr: str) -> list[Any]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query"
        async with session.get(url, params={"query": expr}) as resp:
            body = await resp.json()
        return list(body.get("data", {}).get("result", []))

    async def query_range(
        self, session: aiohttp.ClientSession, expr: str, start: float, end: float, step: float
    ) -> list[tuple[float, float]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query_range"
        params = {"query": expr, "start": str(start), "end": str(end), "step": str(step)}
        async with session.get(url, params=params) as resp:
            body = await resp.json()
        result = body.get("data", {}).get("result", [])
        if not result:
            return []
        return [(float(t), float(v)) for t, v in result[0]["values"]]

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        if self._log is not None:
            self._log.close()


def compare_books(
    samples: Samples, truth: Mapping[tuple[str, str], tuple[dict[str, str], dict[str, str]]]
) -> dict[str, str]:
    """``{"exchange symbol": what differs}`` for every book that is not valid or not the truth."""
    wrong: dict[str, str] = {}
    for (exchange, symbol), (bids, asks) in truth.items():
        lv = {"exchange": exchange, "symbol": symbol}
        key = f"{exchange} {symbol}"

        def get(name: str, lv: dict[str, str] = lv, **extra: str) -> float:
            return samples.get((name, frozenset({**lv, **extra}.items())), math.nan)

        if get("mmradar_book_valid") != 1:
            wrong[key] = "not valid"
            continue
        if not bids or not asks:
            wrong[key] = "the venue's truth book is empty"
            continue
        ref = market_reference(bids, asks, {"buy": 0, "sell": 0})  # type: ignore[dict-item]
        got = {
            "bid": get("mmradar_best_bid_price"),
            "ask": get("mmradar_best_ask_price"),
            "levels_bid": get("mmradar_book_levels", side="bid"),
            "levels_ask": get("mmradar_book_levels", side="ask"),
        }
        for band in BAND_BPS:
            for side in ("bid", "ask"):
                got[f"depth_{side}_{band}"] = get(
                    "mmradar_depth_notional", side=side, band_bps=str(band)
                )
        # A depth-limited snapshot (USD-M: 1000 levels) cannot know deep levels that did not
        # change since it: beyond mmradar_book_complete_within_bps the book is a lower bound.
        complete = min(get("mmradar_book_complete_within_bps", side=x) for x in ("bid", "ask"))
        bounded = {f"depth_{x}_{b}" for b in BAND_BPS if b > complete for x in ("bid", "ask")}
        if bounded:
            bounded |= {"levels_bid", "levels_ask"}
        diffs = [
            f"{k} {got[k]!r} != {ref[k]!r}"
            for k in got
            if (
                not got[k] <= ref[k] * (1 + 1e-9) + 1e-9
                if k in bounded
                else not math.isclose(got[k], ref[k], rel_tol=1e-9, abs_tol=1e-9)
            )
        ]
        if diffs:
            wrong[key] = "; ".join(diffs[:4])
    return wrong


def _growth(values: list[float], slack: float) -> tuple[bool, str]:
    """No unbounded growth: max of the second half <= max of the first half + slack."""
    values = [v for v in values if not math.isnan(v)]
    if len(values) < 2:
        return True, "too few samples to judge"
    half = len(values) // 2
    first, second = max(values[:half]), max(values[half:])
    return second <= first + slack, f"max {first:.0f} then {second:.0f} (slack {slack})"


def verdict(
    samples: list[Sample],
    warmup_s: float,
    books_wrong: dict[str, str],
    scrape_failures: int,
    prometheus_up: tuple[float, float] | None,
    exit_code: int | None,
) -> Verdict:
    """Judge a run (see the module docstring)."""
    checks: dict[str, tuple[bool, str]] = {}
    after = [s for s in samples if s.t_s >= warmup_s]
    if after:
        base, end = after[0].rss_bytes, samples[-1].rss_bytes
        growth = end / base - 1.0
        text = (
            f"{base / 2**20:.1f} MiB at {after[0].t_s / 60:.0f} min → {end / 2**20:.1f} MiB at "
            f"the end ({growth:+.1%}; limit +{RSS_GROWTH_MAX:.0%})"
        )
        if warmup_s < WARMUP_S:
            # The rings and buffers fill for minutes: a short run cannot judge growth.
            checks["rss"] = (True, text + "; not judged: the run is shorter than 15 min")
        else:
            checks["rss"] = (growth <= RSS_GROWTH_MAX, text)
        checks["tasks"] = _growth([s.tasks for s in after], TASK_SLACK)
        checks["fds"] = _growth([s.open_fds for s in after], FD_SLACK)
    else:
        checks["rss"] = (False, "no sample after the warm-up")
    checks["books"] = (
        not books_wrong,
        "every book valid and equal to its venue's truth"
        if not books_wrong
        else json.dumps(books_wrong),
    )
    checks["metrics_answered"] = (
        scrape_failures == 0,
        f"{scrape_failures} failed harness scrapes",
    )
    if prometheus_up is not None:
        up, total = prometheus_up
        checks["prometheus_up"] = (
            total > 0 and up == total,
            f"{up:.0f} of {total:.0f} Prometheus scrapes up",
        )
    checks["clean_exit"] = (exit_code == 0, f"exit code {exit_code}")
    return Verdict(all(ok for ok, _ in checks.values()), checks)


def plot(samples: list[Sample], series: dict[str, list[tuple[float, float]]], path: Path) -> None:
    """RSS and event-loop lag over time (Prometheus series at 5 s when available)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    rss = series.get("rss") or [(s.t_s, s.rss_bytes) for s in samples]
    ax1.plot([t / 60 for t, _ in rss], [v / 2**20 for _, v in rss], color="tab:blue")
    ax1.set_ylabel("RSS (MiB)")
    ax1.set_title("mmradar soak: six venues at 20x, faults every 20 s")
    ax1.grid(alpha=0.3)
    lag = series.get("lag_p99")
    mean = series.get("lag_mean")
    if lag:
        ax2.plot([t / 60 for t, _ in lag], [v * 1e3 for _, v in lag], label="p99 (1 min)")
    else:
        ax2.plot([s.t_s / 60 for s in samples], [s.lag_p99_s * 1e3 for s in samples], label="p99")
    if mean:
        ax2.plot([t / 60 for t, _ in mean], [v * 1e3 for _, v in mean], label="mean (1 min)")
    else:
        ax2.plot([s.t_s / 60 for s in samples], [s.lag_mean_s * 1e3 for s in samples], label="mean")
    ax2.set_ylabel("event-loop lag (ms)")
    ax2.set_xlabel("minutes")
    ax2.grid(alpha=0.3)
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@dataclass
class SoakResult:
    verdict: Verdict
    samples: list[Sample]
    out: Path
    faults: int
    restarts: dict[str, int]
    webhooks: dict[str, int]


async def run_soak(
    minutes: float,
    out: Path,
    *,
    speed: float = SPEED,
    fault_interval_s: float = FAULT_INTERVAL_S,
    sample_interval_s: float = 60.0,
    use_prometheus: bool = True,
    flight: bool = True,
    progress: Callable[[str], None] = print,
    service_env: Mapping[str, str] | None = None,
) -> SoakResult:
    out.mkdir(parents=True, exist_ok=True)
    duration_s = minutes * 60.0
    warmup_s = min(WARMUP_S, duration_s / 3)
    venues = Venues(speed)
    sink = WebhookSink()
    await venues.start()
    await sink.start()
    port = free_port()
    config = out / "soak.toml"
    config.write_text(_config(venues, port, sink.port, out / "recordings", flight))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRADAR_")}
    env.update(service_env or {})
    log_file = open(out / "service.log", "wb")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmradar", "run", "--config", str(config),
        stdout=log_file, stderr=log_file, env=env,
    )  # fmt: skip
    prom: Prometheus | None = None
    if use_prometheus and shutil.which(PROMETHEUS):
        prom = Prometheus(port, Path(tempfile.mkdtemp(prefix="soak-prom-", dir=out)))
        await prom.start()
    samples: list[Sample] = []
    scrape_failures = 0
    n_faults = 0
    exit_code: int | None = None
    books_wrong: dict[str, str] = {"all": "never compared"}
    prometheus_up: tuple[float, float] | None = None
    series: dict[str, list[tuple[float, float]]] = {}
    url = f"http://127.0.0.1:{port}/metrics"
    t0 = time.monotonic()
    wall0 = time.time()
    faults = _faults(venues)

    async def inject() -> None:
        nonlocal n_faults
        i = 0
        while True:
            await asyncio.sleep(fault_interval_s)
            name, fault = faults[i % len(faults)]
            i += 1
            try:
                fault()
                n_faults += 1
            except (KeyError, RuntimeError) as exc:  # a venue between restarts
                progress(f"  fault {name!r} not injected: {exc}")

    async def webhook_weather() -> None:
        # The endpoint fails from early on (its queue's high-water mark is reached before the
        # RSS baseline), then recovers and fails again in turns.
        period = max(20.0, min(300.0, duration_s / 8))
        await asyncio.sleep(min(60.0, period))
        while True:
            sink.failing = not sink.failing
            await asyncio.sleep(period)

    async with aiohttp.ClientSession() as session:

        async def scrape() -> Samples | None:
            nonlocal scrape_failures
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    if resp.status != 200:
                        scrape_failures += 1
                        return None
                    return parse_metrics(await resp.text())
            except (aiohttp.ClientError, TimeoutError):
                scrape_failures += 1
                return None

        # Wait for the service to answer (not counted as failures).
        async def answers() -> bool:
            if proc.returncode is not None:
                raise RuntimeError(f"the service exited ({proc.returncode})")
            async with session.get(url) as resp:
                return resp.status == 200

        try:
            await wait_until(
                answers, "the service to answer", timeout_s=60, interval_s=0.2,
                ignore=(aiohttp.ClientError,),
            )  # fmt: skip
        except (AssertionError, RuntimeError) as exc:
            raise RuntimeError(f"the service did not start; see {out / 'service.log'}") from exc
        progress(
            f"soak: {minutes:g} min, venues at {speed:g}x, a fault every {fault_interval_s:g} s, "
            f"service pid {proc.pid} on :{port}"
            + (f", Prometheus on :{prom.port} every {SCRAPE_INTERVAL_S} s" if prom else "")
        )
        rss_readings: list[float] = []

        async def read_rss() -> None:
            while True:
                value = _rss_bytes(proc.pid)
                if value is not None:
                    rss_readings.append(value)
                await asyncio.sleep(RSS_READ_INTERVAL_S)

        tasks = [
            asyncio.create_task(inject()),
            asyncio.create_task(webhook_weather()),
            asyncio.create_task(read_rss()),
        ]
        prev: Samples | None = await scrape()
        try:
            next_at = t0 + sample_interval_s
            while True:
                now = time.monotonic()
                if now >= t0 + duration_s:
                    break
                await asyncio.sleep(min(next_at, t0 + duration_s) - now)
                if proc.returncode is not None:
                    raise RuntimeError(f"the service exited ({proc.returncode})")
                if time.monotonic() < next_at and time.monotonic() < t0 + duration_s:
                    continue
                next_at += sample_interval_s
                cur = await scrape()
                if cur is None:
                    continue
                mean, p99, top = _lag(prev, cur)
                prev = cur
                hooks = {
                    r: _sum(cur, "mmradar_webhook_deliveries_total", result=r)
                    for r in ("ok", "retry", "dropped")
                }
                valid = [v for (n, _), v in cur.items() if n == "mmradar_book_valid"]
                rss = (
                    statistics.median(rss_readings)
                    if rss_readings
                    else _sum(cur, "process_resident_memory_bytes")
                )
                rss_readings.clear()
                s = Sample(
                    t_s=time.monotonic() - t0,
                    rss_bytes=rss,
                    open_fds=_sum(cur, "process_open_fds"),
                    tasks=_sum(cur, "mmradar_asyncio_tasks"),
                    lag_mean_s=mean,
                    lag_p99_s=p99,
                    lag_max_bucket_s=top,
                    messages=_sum(cur, "mmradar_feed_messages_total"),
                    resyncs=_sum(cur, "mmradar_book_resyncs_total"),
                    reconnects=_sum(cur, "mmradar_feed_reconnects_total"),
                    valid_books=sum(1 for v in valid if v == 1),
                    books=len(valid),
                    episodes=_sum(cur, "mmradar_symptom_episodes_total"),
                    webhooks=hooks,
                    bad_messages=_sum(cur, "mmradar_feed_bad_messages_total"),
                    recordings=_sum(cur, "mmradar_flight_recordings_total"),
                    cpu_s=_sum(cur, "process_cpu_seconds_total"),
                    memory={
                        **_memory_map(proc.pid),
                        "flight_ring_bytes": _sum(cur, "mmradar_flight_ring_bytes"),
                    },
                )
                samples.append(s)
                rate = (s.messages - (samples[-2].messages if len(samples) > 1 else 0)) / (
                    s.t_s - (samples[-2].t_s if len(samples) > 1 else 0)
                )
                progress(
                    f"[{s.t_s / 60:5.1f} min] RSS {s.rss_bytes / 2**20:6.1f} MiB "
                    f"(heap {s.memory.get('heap_bytes', math.nan) / 2**20:5.1f} anon "
                    f"{s.memory.get('anon_bytes', math.nan) / 2**20:5.1f} threads "
                    f"{s.memory.get('threads', math.nan):2.0f} rings "
                    f"{s.memory.get('flight_ring_bytes', math.nan) / 2**20:4.1f})  fds "
                    f"{s.open_fds:3.0f}  tasks {s.tasks:3.0f}  loop lag mean "
                    f"{s.lag_mean_s * 1e3:5.1f} ms p99 ≤{p99 * 1e3:5.0f} ms  books valid "
                    f"{s.valid_books}/{s.books}  msgs/s {rate:6.0f}  resyncs {s.resyncs:4.0f}  "
                    f"reconnects {s.reconnects:4.0f}  episodes {s.episodes:3.0f}  webhooks ok/"
                    f"retry/dropped {hooks['ok']:.0f}/{hooks['retry']:.0f}/"
                    f"{hooks['dropped']:.0f}  recordings {s.recordings:.0f}  faults {n_faults}"
                )
            # The end: freeze the venues and compare every book with its venue's truth.
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await venues.freeze()
            # A venue frozen between a reconnect and the next update cannot resync (Binance
            # needs a diff after its snapshot), and one frozen at the end of its pass has reset
            # its truth before its connections closed: a venue whose books are not valid, or
            # differ from its truth, runs on while the others hold, until every book is valid
            # and equal to the truth with every venue held (a wrong book does not heal itself:
            # it stays wrong and is reported).
            deadline = time.monotonic() + 180
            by_exchange = venues.by_exchange()
            moving: set[str] = set()
            while True:
                for exchange, venue in by_exchange.items():
                    (venue.resume if exchange in moving else venue.pause)()
                await asyncio.sleep(1.0)
                cur = await scrape()
                if cur is not None:
                    invalid = {
                        dict(lv)["exchange"]
                        for (n, lv), v in cur.items()
                        if n == "mmradar_book_valid" and v != 1
                    }
                    if invalid:
                        moving = invalid
                        books_wrong = {x: "not valid" for x in sorted(invalid)}
                    elif moving:
                        moving = set()  # hold everything, then compare
                        continue
                    else:
                        books_wrong = compare_books(cur, venues.truth())
                        if not books_wrong:
                            break
                        moving = {key.split(" ")[0] for key in books_wrong}
                if time.monotonic() > deadline:
                    break
            progress(
                "books: every one valid and equal to its venue's truth"
                if not books_wrong
                else f"books WRONG: {books_wrong}"
            )
            if prom is not None:
                end = time.time()
                rng = f"{max(1, int(end - wall0))}s"
                up = await prom.query(session, f"sum_over_time(up[{rng}])")
                total = await prom.query(session, f"count_over_time(up[{rng}])")
                if up and total:
                    prometheus_up = (float(up[0]["value"][1]), float(total[0]["value"][1]))
                step = float(SCRAPE_INTERVAL_S)
                for key, expr in (
                    ("rss", "process_resident_memory_bytes"),
                    (
                        "lag_p99",
                        "histogram_quantile(0.99, rate(mmradar_event_loop_lag_seconds_bucket[1m]))",
                    ),
                    (
                        "lag_mean",
                        "rate(mmradar_event_loop_lag_seconds_sum[1m])"
                        " / rate(mmradar_event_loop_lag_seconds_count[1m])",
                    ),
                ):
                    points = await prom.query_range(session, expr, wall0, end, step)
                    series[key] = [(t - wall0, v) for t, v in points if not math.isnan(v)]
        finally:
            for task in tasks:
                task.cancel()
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    exit_code = await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
                    exit_code = None
            else:
                exit_code = proc.returncode
            log_file.close()
            if prom is not None:
                await prom.stop()
            await venues.stop()
            await sink.stop()
    result = verdict(samples, warmup_s, books_wrong, scrape_failures, prometheus_up, exit_code)
    try:
        plot(samples, series, out / "soak.png")
    except Exception as exc:  # the plot is a convenience; the verdict stands without it
        progress(f"plot failed: {exc!r}")
    webhooks = {"received": sink.received, "refused": sink.refused}
    (out / "soak.json").write_text(
        json.dumps(
            {
                "minutes": minutes,
                "speed": speed,
                "warmup_s": warmup_s,
                "faults_injected": n_faults,
                "venue_restarts": venues.restarts,
                "webhook_endpoint": webhooks,
                "samples": [asdict(s) for s in samples],
                "verdict": {"ok": result.ok, "checks": result.checks},
                "series": series,
            },
            indent=1,
        )
    )
    for name, (ok, text) in result.checks.items():
        progress(f"  {'PASS' if ok else 'FAIL'} {name}: {text}")
    progress(f"soak {'PASSED' if result.ok else 'FAILED'}; details in {out}")
    return SoakResult(result, samples, out, n_faults, dict(venues.restarts), webhooks)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=60.0, help="length of the run (default 60)")
    p.add_argument("--out", type=Path, default=Path("soak-out"), help="output directory")
    p.add_argument("--speed", type=float, default=SPEED, help="venue speed factor (default 20)")
    p.add_argument("--no-prometheus", action="store_true", help="scrape from the harness only")
    p.add_argument("--no-flight", action="store_true", help="flight recorder off (max_files = 0)")
    args = p.parse_args(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    runner: Callable[[], Awaitable[SoakResult]] = lambda: run_soak(  # noqa: E731
        args.minutes, args.out, speed=args.speed, use_prometheus=not args.no_prometheus,
        flight=not args.no_flight, progress=say,
    )  # fmt: skip

    async def guarded() -> SoakResult:
        # SIGTERM/SIGINT stop the run through its clean-up (the service, Prometheus, venues).
        task = asyncio.ensure_future(runner())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        return await task

    result = asyncio.run(guarded())
    return 0 if result.verdict.ok else 1
