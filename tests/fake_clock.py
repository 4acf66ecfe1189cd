"""A fake :class:`~mmradar.clock.ShellClock` for tests of the asyncio shell: time moves only
when the test moves it, and ``sleep`` waits for fake time, not for the wall clock.

The test drives the time: :meth:`FakeClock.advance` runs every sleeper due within a stretch of
fake time, in deadline order, and :meth:`FakeClock.run_until` jumps from one sleeper's deadline
to the next until a condition holds. Between two jumps the event loop is run until it has
nothing left to do (:meth:`FakeClock.settle`), so frames on a loopback socket are delivered
before the clock moves on: every time a test reads is the exact fake time of the event.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

__all__ = ["FakeClock"]

#: Loop passes in a row with nothing ready that count as "the loop is idle".
_QUIET_PASSES = 5
#: Give up settling after this many passes (a task that never stops yielding).
_MAX_PASSES = 100_000


class FakeClock:
    """Wall and monotonic time that move together, only when told to.

    Args:
        wall_ns: the wall time at monotonic 0.
        start_s: the monotonic time to start at.
        auto: ``sleep`` itself moves the time on by what it was asked (one pass of the loop,
            no waiting): for a single task that paces itself, with no test driving the clock.
    """

    def __init__(
        self, wall_ns: int = 1_700_000_000_000_000_000, start_s: float = 0.0, *, auto: bool = False
    ) -> None:
        self.now = start_s
        self.auto = auto
        #: every positive ``sleep`` asked for, in order
        self.slept: list[float] = []
        self._wall0_ns = wall_ns
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    # -- the ShellClock interface ------------------------------------------------------------

    def wall_ns(self) -> int:
        return self._wall0_ns + round(self.now * 1e9)

    def monotonic(self) -> float:
        return self.now

    def perf_counter(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        self.slept.append(seconds)
        if self.auto:
            self.now += seconds
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    # -- driving it ------------------------------------------------------------------------

    def next_wake(self) -> float | None:
        """The earliest deadline of a task asleep on this clock (None: nobody sleeps)."""
        sleepers = self._sleepers
        while sleepers and sleepers[0][2].done():
            heapq.heappop(sleepers)  # cancelled meanwhile
        return sleepers[0][0] if sleepers else None

    async def settle(self) -> None:
        """Run the event loop until it is idle: no callback ready for a few passes in a row
        (each pass polls the sockets, so loopback frames already sent are read)."""
        loop = asyncio.get_running_loop()
        quiet = 0
        for _ in range(_MAX_PASSES):
            await asyncio.sleep(0)
            ready = getattr(loop, "_ready", None)
            quiet = quiet + 1 if ready is not None and not ready else 0
            if quiet >= _QUIET_PASSES:
                return
        raise AssertionError("the event loop never went idle")

    async def _wake(self, until: float) -> None:
        """Move to every sleeper's deadline up to ``until`` in turn, waking it and settling."""
        while (at := self.next_wake()) is not None and at <= until:
            self.now = max(self.now, at)
            while (at := self.next_wake()) is not None and at <= self.now:
                _, _, future = heapq.heappop(self._sleepers)
                future.set_result(None)
            await self.settle()

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` of fake time pass, waking every sleeper due on the way."""
        target = self.now + seconds
        await self.settle()
        await self._wake(target)
        self.now = target
        await self.settle()

    async def run_until(self, predicate: Callable[[], bool], within_s: float = 60.0) -> None:
        """Move from one sleeper's deadline to the next until ``predicate()`` holds.

        Raises:
            AssertionError: it does not hold within ``within_s`` of fake time.
        """
        limit = self.now + within_s
        await self.settle()
        while not predicate():
            at = self.next_wake()
            assert at is not None, "nothing is asleep: the condition can never become true"
            assert at <= limit, f"not within {within_s} s of fake time"
            await self._wake(at)
