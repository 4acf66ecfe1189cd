"""Tests of :mod:`mmradar.demo` on a fake clock: the embedded venue, the service and the demo's
own waits (the summary every second, ``duration_s``) all run on it."""

from __future__ import annotations

import asyncio
import io
import re
import time

from fake_clock import FakeClock
from mmradar.demo import SIM_SPEED, run_demo
from support import wait_until


async def test_the_demo_summarises_every_second_and_stops_after_its_duration() -> None:
    """Three fake seconds of the default (simulated) scenario: the demo stops at exactly 3 s,
    after a summary each second, and the simulation it shows ran at ``SIM_SPEED`` × that
    time: the venue was paced on the same clock."""
    clock = FakeClock(wall_ns=time.time_ns())
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_demo(stop, listen="127.0.0.1:0", duration_s=3.0, env={}, out=out, clock=clock)
    )
    # the venue loads its simulation on a worker thread before anything waits on the clock
    await wait_until(lambda: clock.next_wake() is not None, "the demo to start", timeout_s=60)
    await clock.run_until(stop.is_set, within_s=5.0)
    assert clock.now == 3.0
    await asyncio.wait_for(task, 10)
    text = out.getvalue()
    assert "metrics            http://127.0.0.1:" in text
    shown = [int(t) for t in re.findall(r"simulation: pass 1  t=\s*(\d+)s", text)]
    assert shown == [round(SIM_SPEED * s) for s in (1, 2, 3)]
    assert text.count("binance BTCUSDT        VALID") == 3
