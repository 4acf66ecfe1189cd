"""The feed runner: the thin asyncio shell around one feed's pure pipeline.

One :class:`FeedRunner` per exchange (its ``[[feeds]]`` tables merged into one feed by
:func:`mmradar.config.merge_feeds`, so the venue's per-IP limits and the exchange-keyed metrics
cover all of them) runs, under one ``TaskGroup``:

* one supervisor task per websocket connection the venue plans (reconnect with exponential
  back-off and jitter, reset after every successful connection);
* one REST snapshot worker (one request at a time, within the venue's request-weight budget,
  honouring 429/418 ``Retry-After``);
* a resync scheduler: every resubscribe and snapshot refetch goes through a per-symbol
  exponential back-off with jitter (:class:`ResyncBackoff`; a symbol failing
  :attr:`ResyncPolicy.park_after` times in a row is *parked* for :attr:`ResyncPolicy.park_s`,
  with one log line and ``mmradar_book_parked``), and every frame sent on a connection through
  the connection's pacer (:class:`MessagePacer`: its share of the venue's
  ``max_messages_per_s``), so a failing symbol never floods the venue while the others on its
  connection keep working;
* a watchdog: books with no depth message for ``stale_after_seconds`` are marked stale (not
  valid, not resynced: the next in-sequence message revalidates them), and a connection from
  which nothing at all — pings included — arrived within the venue's ``heartbeat_window_s`` is
  dropped and reopened; connections are also renewed before the venue's age limit (Binance:
  24 h).

Every resync is logged once (symbol, reason, what happens next), at most one line per symbol
per :attr:`ResyncPolicy.log_interval_s` (:class:`LogLimiter`; the lines left out are counted in
the next one). On shutdown the connections are closed with 1000 (normal closure).

Every frame is handed to :meth:`FeedPipeline.on_frame` inline, in the connection's task: the
core is synchronous and takes microseconds, so there is no queue to grow and no blocking call
on the event loop. Transport failures are classified by :func:`classify`; anything else is a
bug and propagates (the service exits 1 rather than spin).
"""

from .connection import FrameRecorder, backoff, classify
from .rest import WeightBudget
from .resync import LogLimiter, MessagePacer, ResyncBackoff, ResyncPolicy, ResyncSlot
from .runner import FeedRunner

__all__ = [
    "FeedRunner",
    "FrameRecorder",
    "LogLimiter",
    "MessagePacer",
    "ResyncBackoff",
    "ResyncPolicy",
    "ResyncSlot",
    "WeightBudget",
    "backoff",
    "classify",
]
