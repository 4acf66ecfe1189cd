"""REST snapshots: the venue's request-weight budget and reading a 429/418 ``Retry-After``
(the snapshot worker itself is :meth:`mmradar.feed.FeedRunner._snapshot_worker`)."""

from __future__ import annotations

from collections import deque

from ..retry_after import parse_retry_after


class WeightBudget:
    """A venue's REST request-weight budget over a rolling window (pure; time passed in).

    One per exchange: the exchange's one :class:`FeedRunner` owns it.

    Args:
        per_minute: the venue's limit per IP and window.
        share: the fraction of it this process allows itself (others may share the IP).
        window_s: the venue's counting window (a minute for Binance, 2 s for OKX's books).
    """

    def __init__(self, per_minute: int, share: float = 0.5, window_s: float = 60.0) -> None:
        self.cap = max(1, int(per_minute * share)) if per_minute else 0
        self.window_s = window_s
        self._spent: deque[tuple[float, int]] = deque()
        self._blocked_until = 0.0
        self._venue_used = 0
        self._venue_used_at = -1e18

    def _used(self, now: float) -> int:
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self._spent.popleft()
        own = sum(w for _, w in self._spent)
        venue = self._venue_used if now - self._venue_used_at < self.window_s else 0
        return max(own, venue)

    def used(self, now: float) -> int:
        """Weight spent within the window, by our count or the venue's, whichever is more."""
        return self._used(now)

    def delay(self, weight: int, now: float) -> float:
        """Seconds to wait before a request of ``weight`` fits the budget (0: go now)."""
        if now < self._blocked_until:
            return self._blocked_until - now
        if not self.cap or self._used(now) + weight <= self.cap or not self._spent:
            return 0.0
        # Wait until enough of the oldest spending leaves the window.
        need = self._used(now) + weight - self.cap
        freed = 0
        for at, w in self._spent:
            freed += w
            if freed >= need:
                return max(0.0, at + self.window_s - now)
        return self.window_s

    def spend(self, weight: int, now: float) -> None:
        """Record a request of ``weight`` sent at ``now``."""
        self._spent.append((now, weight))

    def venue_reports(self, used: int, now: float) -> None:
        """The venue said how much weight this IP has used this minute."""
        self._venue_used = used
        self._venue_used_at = now

    def block(self, seconds: float, now: float) -> None:
        """The venue said stop (429/418 with ``Retry-After``)."""
        self._blocked_until = max(self._blocked_until, now + seconds)


def _failure(exc: BaseException, timeout_s: float) -> str:
    """Why a REST request failed, never empty (a timeout's text is)."""
    if isinstance(exc, TimeoutError):
        return f"timed out (no complete answer within {timeout_s:g} s)"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _retry_after(value: str | None, now_ns: int, default_s: float = 60.0) -> float:
    """The pause a 429/418 asks for (seconds or an HTTP date), at least 1 s; 60 s if unsaid."""
    seconds = parse_retry_after(value, now_ns)
    return default_s if seconds is None else max(1.0, seconds)
