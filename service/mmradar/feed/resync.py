"""Spacing resyncs (pure; time passed in): the per-symbol back-off and parking policy, the
per-connection message pacer and the rate-limited resync log lines."""

from __future__ import annotations

import math
import random
from collections import Counter, deque
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ResyncPolicy:
    """How a feed spaces the resyncs of one symbol (README "Staleness, resyncs and
    back-off").

    The n-th resync request of a symbol in a row (a request counts as "in a row" when the
    previous attempt for the symbol was less than :attr:`reset_after_s` ago) waits: none for
    n = 1, ``min(backoff_max_s, backoff_initial_s * 2**(n-2))`` with equal jitter for
    1 < n < :attr:`park_after`, and :attr:`park_s` (parked) from n = :attr:`park_after` on. A
    parked symbol thus costs the venue one attempt per :attr:`park_s` until it heals.

    Attributes:
        backoff_initial_s: delay before the second attempt in a row (then doubling).
        backoff_max_s: longest back-off delay before parking.
        park_after: failures in a row after which the symbol is parked.
        park_s: how long a parked symbol waits before its next attempt.
        reset_after_s: an attempt this long ago no longer counts: the streak starts afresh.
        log_interval_s: at most one resync log line per symbol per this many seconds.
    """

    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    park_after: int = 6
    park_s: float = 300.0
    reset_after_s: float = 30.0
    log_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.park_after < 2:
            raise ValueError("park_after must be >= 2")
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        if self.park_s <= 0 or self.reset_after_s <= 0 or self.log_interval_s < 0:
            raise ValueError("park_s and reset_after_s must be > 0, log_interval_s >= 0")


@dataclass(frozen=True, slots=True)
class ResyncSlot:
    """When a resync request may be carried out.

    Attributes:
        due_at: monotonic time of the attempt (``<= now``: at once).
        streak: this request's place in the symbol's run of failures (1 = the first).
        parked: the symbol failed :attr:`ResyncPolicy.park_after` times in a row.
    """

    due_at: float
    streak: int
    parked: bool


class ResyncBackoff:
    """Per-symbol back-off of resync requests (pure; time passed in).

    Args:
        policy: the schedule.
        rng: jitter source (seeded in tests).
    """

    def __init__(self, policy: ResyncPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()
        self._streak: dict[str, int] = {}
        self._attempt_at: dict[str, float] = {}

    def request(self, symbol: str, now: float) -> ResyncSlot:
        """A resync of ``symbol`` is asked for at ``now``: when may it be carried out?"""
        p = self.policy
        last = self._attempt_at.get(symbol)
        streak = 1
        if last is not None and now - last < p.reset_after_s:
            streak = self._streak.get(symbol, 0) + 1
        self._streak[symbol] = streak
        if streak >= p.park_after:
            return ResyncSlot(now + p.park_s, streak, True)
        if streak == 1:
            return ResyncSlot(now, streak, False)
        delay = min(p.backoff_max_s, p.backoff_initial_s * 2.0 ** (streak - 2))
        return ResyncSlot(now + delay / 2 + self._rng.uniform(0.0, delay / 2), streak, False)

    def attempted(self, symbol: str, now: float) -> None:
        """The resync of ``symbol`` was carried out at ``now`` (a request was sent)."""
        self._attempt_at[symbol] = now

    def streak(self, symbol: str) -> int:
        """The symbol's current run of resync requests (0 before the first)."""
        return self._streak.get(symbol, 0)


class MessagePacer:
    """At most ``rate`` client frames per second on one connection, in any rolling window
    (pure): ``floor(rate)`` frames per second, or one frame per ``1 / rate`` seconds below one
    a second, each window widened by :attr:`MARGIN` so that the venue, which counts frames when
    they arrive, never sees one too many when the network delays some frames more than others.

    Args:
        rate: frames per second; ``None`` (or 0) = unpaced.
    """

    #: how much wider than the nominal second (or ``1 / rate``) each window is.
    MARGIN: Final = 0.1

    def __init__(self, rate: float | None) -> None:
        if not rate:
            self.limit, self.window_s = 0, 0.0
        elif rate >= 1.0:
            self.limit, self.window_s = int(rate), 1.0 + self.MARGIN
        else:
            self.limit, self.window_s = 1, (1.0 + self.MARGIN) / rate
        self._sent: deque[float] = deque()

    def delay(self, now: float) -> float:
        """Seconds to wait before the next frame may go (0: now)."""
        if not self.limit:
            return 0.0
        sent = self._sent
        while sent and sent[0] <= now - self.window_s:
            sent.popleft()
        if len(sent) < self.limit:
            return 0.0
        return sent[0] + self.window_s - now

    def sent(self, now: float) -> None:
        """A frame was sent at ``now``."""
        if self.limit:
            self._sent.append(now)


class LogLimiter:
    """At most one log line per key per ``interval_s``; the lines left out are counted (pure).

    Args:
        interval_s: least time between two lines of one key.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._left_out: dict[str, Counter[str]] = {}

    def admit(self, key: str, what: str, now: float) -> Counter[str] | None:
        """May a line about ``key`` (``what`` happened) be logged at ``now``?

        Returns:
            None: leave it out (it is counted); else the lines left out since the last one,
            counted by ``what`` (empty if none).
        """
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._left_out.setdefault(key, Counter())[what] += 1
            return None
        self._last[key] = now
        return self._left_out.pop(key, Counter())

    def overdue(self, now: float) -> list[tuple[str, Counter[str]]]:
        """Keys with lines left out whose interval has passed (their summary may be logged)."""
        out = []
        for key in list(self._left_out):
            if now - self._last.get(key, -math.inf) >= self.interval_s:
                self._last[key] = now
                out.append((key, self._left_out.pop(key)))
        return out


def _count_text(counts: Counter[str]) -> str:
    """``"12 more resyncs (checksum 10, gap 2)"``."""
    parts = ", ".join(f"{what} {n}" for what, n in sorted(counts.items()))
    return f"{sum(counts.values())} more resyncs ({parts})"


def _left_out(counts: Counter[str]) -> str:
    return f" [{_count_text(counts)} since the last line]" if counts else ""
