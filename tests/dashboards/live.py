"""A demo service scraped by a real Prometheus, for running the dashboards' queries.

:class:`LiveStack` starts, on 127.0.0.1:

* two embedded Binance venues, spot (exchange ``binance``, what ``mmradar demo`` plays) and
  USD-M futures (exchange ``binance-usdm``), each replaying its packaged BTCUSDT capture, looped,
  faster than real time so that minutes of venue event time — and the disconnect at the end of
  every pass, with its reconnect and resync — fit in seconds. Both symbols are the canonical
  instrument ``BTC-USD``, so the service compares them across venues and the cross-venue
  series (mid dislocation, consolidated depth, valid venues, ``venue_withdrawal``) carry real
  values;
* a lockstep task that keeps the two replays on one event-time clock, as real venues are (see
  :meth:`LiveStack._lockstep`);
* the real :class:`mmradar.app.Service` against them (in-process, metrics on a free port), with
  a ``[[webhooks]]`` entry pointing at a local receiver, so webhook deliveries are real, and a
  short detector warm-up (the demo's default of 10 min of event time restarts at every resync,
  i.e. at every pass of the 6-min capture, so no episode could ever start);
* Prometheus (the Debian binary) scraping it every second.

:meth:`LiveStack.wait_until_exercised` then waits — polling, never sleeping blindly — until
Prometheus holds what the dashboards show: a valid book and trades, a symptom episode, a
reconnect and a resync, a delivered webhook and a malformed frame, two valid venues with a
finite mid dislocation, over enough scrapes for ``rate()`` windows. Everything is stopped by
:meth:`LiveStack.stop` (processes by PID).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from alerting.harness import Process, require_binary
from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.embedded.binance import EmbeddedBinance
from mmradar.venues import VENUE_NAMES
from support import free_port, wait_until

#: The demo instrument: the one single-value variables are set to.
EXCHANGE = "binance"
SYMBOL = "BTCUSDT"
#: Every venue of the stack: exchange → embedded Binance market. Both serve ``SYMBOL``.
VENUES = {EXCHANGE: "spot", "binance-usdm": "usdm"}
#: The canonical instrument ``SYMBOL`` is on both venues (:mod:`mmradar.instruments`).
INSTRUMENT = "BTC-USD"
#: Replay speed: one 6-min pass of the capture takes about 9 s, so passes (reconnect, resync)
#: come every few seconds and a volatility episode starts within about 20 s.
SPEED = 40.0
#: How often the lockstep task compares the venues' event-time clocks. At ``SPEED`` one poll is
#: well under a second of event time.
LOCKSTEP_POLL_S = 0.005
#: ``[signals]`` for the test: warm-ups short enough for one pass of the capture.
SIGNALS = {"warmup_seconds": 30, "flow_warmup_seconds": 10}
#: What a scrape interval of 1 s makes of Grafana's ``$__rate_interval`` (4 x scrape).
RATE_INTERVAL = "4s"
#: Scraped history needed before rate()/increase() over ``RATE_INTERVAL`` and quantiles have
#: several points.
MIN_HISTORY_S = 15.0


def _fast_backoff() -> Iterator[float]:
    while True:
        yield 0.05


def _finite(value: str) -> bool:
    return math.isfinite(float(value))


class LiveStack:
    """The demo venue, the service and Prometheus; see the module docstring.

    Args:
        workdir: configs, TSDB and logs (a temporary directory).
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.venues: dict[str, EmbeddedBinance] = {}
        self.service: Service | None = None
        self.prometheus: Process | None = None
        self.prometheus_url = ""
        self.webhook_posts: list[dict[str, Any]] = []
        self.first_scrape_s = math.nan  # epoch seconds of the first scrape Prometheus made
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lockstep_task: asyncio.Task[None] | None = None
        self._hook_runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def venue(self) -> EmbeddedBinance:
        """The demo venue (exchange :data:`EXCHANGE`)."""
        return self.venues[EXCHANGE]

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "stack not started"
        return self._session

    async def start(self) -> None:
        prometheus = require_binary("prometheus")
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        hook_url = await self._start_webhook_receiver()

        for exchange, market in VENUES.items():
            venue = EmbeddedBinance(market, speed=SPEED, loop=True)
            self.venues[exchange] = venue  # stopped by stop() even if start() fails
            await venue.start()
        settings = parse_settings(
            {
                "http": {"listen": "127.0.0.1:0"},
                "feeds": [
                    {
                        "exchange": exchange,
                        "symbols": [SYMBOL],
                        "ws_url": venue.ws_base,
                        "rest_url": venue.rest_base,
                    }
                    for exchange, venue in self.venues.items()
                ],
                "webhooks": [{"url": hook_url, "format": "json"}],
                "signals": SIGNALS,
            },
            env={},
            supported=VENUE_NAMES,
        )
        self.service = Service(settings, backoff_factory=_fast_backoff)
        self._task = asyncio.create_task(self.service.run(self._stop))
        self._lockstep_task = asyncio.create_task(self._lockstep())
        server = self.service.server
        assert server is not None
        task = self._task

        def serving() -> bool:
            assert not task.done(), "service stopped before serving /metrics"
            return server.port != 0

        await wait_until(serving, "the metrics server to start", timeout_s=10)

        port = free_port()
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "mmradar",
                            "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
                        }
                    ],
                }
            )
        )
        (self.workdir / "tsdb").mkdir()
        self.prometheus_url = f"http://127.0.0.1:{port}"
        self.prometheus = Process(
            "prometheus",
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            self.workdir / "prometheus.log",
        )

    async def _lockstep(self) -> None:
        """Hold the replay of a venue that is ahead in event time until the others catch up.

        Real venues stamp their events with clocks that agree to a few milliseconds. Two
        replays do not share a clock: each pass starts when the service subscribes, and
        at ``SPEED`` a 0.1-s difference in subscription time is 4 s of event time (the spot
        and USD-M captures also differ in length, so the passes drift further apart). The
        cross-venue view compares only samples at most 2 s apart
        (:data:`mmradar.signals.crossvenue.MAX_SAMPLE_AGE_NS`), so without this the two
        venues would never count together. The clock compared is each venue's latest
        once-a-second sample in the view; the venue that is behind always runs, so the
        replays never both stand still.
        """
        assert self.service is not None
        (view,) = [v for v in self.service.cross_venue if v.instrument == INSTRUMENT]
        members = {m.exchange: m for m in view.members}
        assert set(members) == set(self.venues), members
        while True:
            ts = {exchange: members[exchange].ts_ns for exchange in self.venues}
            if all(ts.values()):  # every venue has sampled at least once
                behind = min(ts.values())
                for exchange, venue in self.venues.items():
                    if ts[exchange] > behind:
                        venue.pause()
                    else:
                        venue.resume()
            # The controller's period, not synchronisation: it runs until the harness stops.
            await asyncio.sleep(LOCKSTEP_POLL_S)

    async def _start_webhook_receiver(self) -> str:
        async def post(request: web.Request) -> web.Response:
            self.webhook_posts.append(await request.json())
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/hook", post)
        self._hook_runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._hook_runner.setup()
        site = web.TCPSite(self._hook_runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._hook_runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        """Stop Prometheus (by PID), the service, the venues and the receiver; idempotent."""
        try:
            if self.prometheus is not None:
                self.prometheus.stop()
        finally:
            if self._lockstep_task is not None:
                self._lockstep_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._lockstep_task
            self._stop.set()
            if self._task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(self._task, 10)
            for venue in self.venues.values():
                await venue.stop()
            if self._hook_runner is not None:
                await self._hook_runner.cleanup()
            if self._session is not None:
                await self._session.close()

    # -- Prometheus HTTP API -------------------------------------------------------------

    async def _api(self, path: str, **params: str) -> Any:
        async with self.session.get(f"{self.prometheus_url}{path}", params=params) as resp:
            body = await resp.json()
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    async def instant(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """``/api/v1/query``: the result vector (or scalar, as a one-element list)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = await self._api("/api/v1/query", **params)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    async def range(
        self, expr: str, start: float, end: float, step: str = "1s"
    ) -> list[dict[str, Any]]:
        """``/api/v1/query_range``: the result matrix."""
        data = await self._api(
            "/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step
        )
        return list(data["result"])

    async def label_values(self, label: str, selector: str) -> list[str]:
        """``/api/v1/label/<label>/values``, what Grafana's ``label_values()`` calls."""
        return list(await self._api(f"/api/v1/label/{label}/values", **{"match[]": selector}))

    @staticmethod
    def has_finite_sample(result: list[dict[str, Any]]) -> bool:
        """Whether a vector or matrix holds at least one finite value."""
        for series in result:
            values = series.get("values") or [series["value"]]
            if any(_finite(v) for _, v in values):
                return True
        return False

    # -- readiness ------------------------------------------------------------------------

    def check_running(self) -> None:
        if self.prometheus is not None:
            self.prometheus.check_running()
        if self._task is not None and self._task.done():
            self._task.result()  # re-raises what stopped the service
            raise AssertionError("the service stopped")
        if self._lockstep_task is not None and self._lockstep_task.done():
            self._lockstep_task.result()  # re-raises what stopped it
            raise AssertionError("the lockstep task stopped")

    async def wait_until_exercised(self, timeout_s: float = 75.0) -> float:
        """Until Prometheus holds everything the dashboards show; returns the epoch time of
        the first scrape (the start of the window to query).

        Raises:
            AssertionError: not within ``timeout_s``, naming what was still missing.
        """
        assert self.venues, "stack not started"
        sel = f'exchange="{EXCHANGE}",symbol="{SYMBOL}"'
        dislocation = f'mmradar_cross_venue_mid_dislocation_bps{{instrument="{INSTRUMENT}"}}'
        conditions = {
            "scraped": 'up{job="mmradar"} == 1',
            "book valid": f"mmradar_book_valid{{{sel}}} == 1",
            "trades counted": f"sum(mmradar_taker_volume_total{{{sel}}}) > 0",
            "a symptom episode": f"max_over_time(mmradar_symptom_active{{{sel}}}[5m]) == 1",
            "a reconnect": "sum(mmradar_feed_reconnects_total) > 0",
            "a resync": f"sum(mmradar_book_resyncs_total{{{sel}}}) > 0",
            "a webhook delivered": 'sum(mmradar_webhook_deliveries_total{result="ok"}) > 0',
            "a malformed frame": ('sum(mmradar_feed_bad_messages_total{reason="malformed"}) > 0'),
            # Every venue with a finite dislocation at some second (NaN compares false, so
            # "> -Inf" drops the seconds with fewer than two valid venues).
            "two valid venues, finite dislocations": (
                f"count(count_over_time(({dislocation} > -Inf)[5m:1s])) == {len(VENUES)}"
            ),
        }
        missing = list(conditions)
        injected = False

        async def exercised() -> bool:
            nonlocal missing, injected
            self.check_running()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, AssertionError):
                missing = [
                    what for what, expr in conditions.items() if not await self.instant(expr)
                ]
                if math.isnan(self.first_scrape_s) and "scraped" not in missing:
                    self.first_scrape_s = time.time()  # a little after the first scrape
                if (
                    "a symptom episode" not in missing
                    and not math.isnan(self.first_scrape_s)
                    and not await self.range(
                        f"mmradar_symptom_active{{{sel}}} == 1", self.first_scrape_s, time.time()
                    )
                ):
                    # Within the last 5 min, but before the window the tests query (the first
                    # scrape is noticed a little late): wait for one inside it.
                    missing.append("a symptom episode")
            if not injected and "book valid" not in missing:
                # A frame the venue never sends: bad-message counters get real data.
                self.venue.send_raw("{not json")
                injected = True
            return not missing and time.time() - self.first_scrape_s >= MIN_HISTORY_S

        def lacking() -> str:
            log = self.prometheus.log_tail() if self.prometheus else ""
            return (
                f"Prometheus still lacked: {missing} "
                f"(history {time.time() - self.first_scrape_s:.1f} s)\n"
                f"--- prometheus log ---\n{log}"
            )

        await wait_until(
            exercised,
            "Prometheus to hold everything the dashboards show",
            timeout_s=timeout_s,
            interval_s=0.5,
            detail=lacking,
        )
        return self.first_scrape_s
