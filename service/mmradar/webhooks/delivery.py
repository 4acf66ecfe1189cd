"""Delivery (I/O): one bounded queue and one worker per configured webhook.

See the package docstring (:mod:`mmradar.webhooks`) for the delivery semantics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import aiohttp
import orjson
from prometheus_client import Counter

from ..clock import ShellClock, SystemClock
from ..config import WebhookSettings
from ..errors import truncate
from ..feed import backoff
from ..fmt import fmt_num
from ..retry_after import parse_retry_after
from ..signals.episodes import EpisodeEvent
from .payload import format_json
from .rendering import format_discord, format_slack

__all__ = ["DEFAULT_QUEUE_SIZE", "WebhookSender", "Webhooks", "encode"]

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE: Final = 1000
"""Events a webhook may have waiting before the oldest is dropped."""

_USER_AGENT: Final = "mmradar-webhooks/0.1"
_RETRYABLE_STATUS: Final = frozenset({408, 429})
_MAX_BODY_EXCERPT: Final = 200

_FORMATTERS: Final[Mapping[str, Callable[[EpisodeEvent], dict[str, Any]]]] = {
    "json": format_json,
    "slack": format_slack,
    "discord": format_discord,
}


def encode(event: EpisodeEvent, fmt: str) -> bytes:
    """The request body of ``event`` in webhook format ``fmt`` (``json``, ``slack``, ``discord``).

    Raises:
        KeyError: unknown format.
        TypeError: the payload cannot be serialised (never for JSON-safe context values).
    """
    return orjson.dumps(_FORMATTERS[fmt](event), default=str)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one POST attempt came to."""

    kind: Literal["ok", "retry", "fatal"]
    reason: str
    retry_after_s: float | None = None


_OK: Final = _Outcome("ok", "ok")


def _describe(exc: BaseException) -> str:
    """A log-safe description of a transport failure: never the exception's text (URLs)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__} ({exc.strerror})"
    return type(exc).__name__


class _Pending:
    """A queued event, when it was submitted (monotonic s) and, once built, its body."""

    __slots__ = ("body", "event", "submitted_s")

    def __init__(self, event: EpisodeEvent, submitted_s: float) -> None:
        self.event = event
        self.submitted_s = submitted_s
        self.body: bytes | None = None


def _default_backoff() -> Iterator[float]:
    return backoff(initial_s=1.0, maximum_s=30.0)


class WebhookSender:
    """Delivers episodes to one configured webhook: a bounded queue and one worker.

    Call :meth:`submit` from the event loop (it is not thread-safe) and run :meth:`run` as a
    task; see the module docstring for the delivery semantics.

    Args:
        settings: the ``[[webhooks]]`` entry (URL, format, display URL).
        deliveries: the ``mmradar_webhook_deliveries_total`` family (``format``, ``result``
            labels), e.g. :attr:`mmradar.metrics.Metrics.webhook_deliveries`.
        queue_size: events that may wait; when full, the oldest is dropped.
        max_attempts: POST attempts per event before it is dropped.
        max_age_s: an event not delivered this long after :meth:`submit` is dropped (also
            when it would get that old while waiting for a retry).
        connect_timeout_s: time to get a connection.
        total_timeout_s: time for a whole attempt, connection and answer included.
        flush_timeout_s: at cancellation, time for one last attempt at the pending events.
        backoff_factory: a fresh iterator of retry delays per event (default: exponential
            from 0.5–1 s up to 15–30 s with jitter).
        session: an aiohttp session to use (not closed here); by default one is created.
        clock: monotonic time for ages, wall time for ``Retry-After`` dates.
    """

    def __init__(
        self,
        settings: WebhookSettings,
        deliveries: Counter,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_attempts: int = 6,
        max_age_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        total_timeout_s: float = 10.0,
        flush_timeout_s: float = 1.0,
        backoff_factory: Callable[[], Iterator[float]] = _default_backoff,
        session: aiohttp.ClientSession | None = None,
        clock: ShellClock | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if settings.format not in _FORMATTERS:
            raise ValueError(f"unknown webhook format {settings.format!r}")
        self.settings = settings
        self.format = settings.format
        self.display_url = settings.display_url
        self.max_attempts = max_attempts
        self.max_age_s = max_age_s
        self.flush_timeout_s = flush_timeout_s
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=queue_size)
        self._timeout = aiohttp.ClientTimeout(
            total=total_timeout_s, connect=connect_timeout_s, sock_connect=connect_timeout_s
        )
        self._backoff_factory = backoff_factory
        self._session = session
        self._clock: ShellClock = clock or SystemClock()
        self._ok = deliveries.labels(settings.format, "ok")
        self._retry = deliveries.labels(settings.format, "retry")
        self._dropped = deliveries.labels(settings.format, "dropped")
        self._current: _Pending | None = None
        self._failing = False  # a failed attempt since the last success (log once per streak)
        self._overflowed = 0  # events dropped on overflow, not yet logged (the worker logs)

    @property
    def pending(self) -> int:
        """Events waiting in the queue (the one being sent not included)."""
        return self._queue.qsize()

    def submit(self, event: EpisodeEvent) -> None:
        """Queue ``event`` for delivery; never blocks, never raises.

        When the queue is full the oldest queued event is dropped and counted ``dropped``.
        """
        item = _Pending(event, self._clock.monotonic())
        queue = self._queue
        if queue.full():
            queue.get_nowait()
            self._dropped.inc()
            self._overflowed += 1  # logged by the worker: no I/O on the caller's path
        queue.put_nowait(item)

    async def run(self) -> None:
        """Deliver queued events until cancelled, then flush for at most ``flush_timeout_s``."""
        session = self._session or aiohttp.ClientSession(headers={"User-Agent": _USER_AGENT})
        log.info("webhook %s (%s): started", self.display_url, self.format)
        try:
            while True:
                self._current = await self._queue.get()
                if self._overflowed:
                    log.warning(
                        "webhook %s: queue full (%d events); dropped the %d oldest",
                        self.display_url,
                        self._queue.maxsize,
                        self._overflowed,
                    )
                    self._overflowed = 0
                await self._deliver(session, self._current)
                self._current = None
        except asyncio.CancelledError:
            await self._flush(session)
            raise
        finally:
            if self._session is None:
                await session.close()
            log.info("webhook %s (%s): stopped", self.display_url, self.format)

    # -- internals -----------------------------------------------------------------------------

    def _body(self, item: _Pending) -> bytes | None:
        if item.body is None:
            try:
                item.body = encode(item.event, self.format)
            except (TypeError, ValueError) as exc:  # a context value orjson cannot take
                log.warning(
                    "webhook %s: cannot encode %s episode of %s %s (%s); dropped",
                    self.display_url,
                    item.event.symptom,
                    item.event.exchange,
                    item.event.symbol,
                    type(exc).__name__,
                )
                return None
        return item.body

    async def _deliver(self, session: aiohttp.ClientSession, item: _Pending) -> None:
        body = self._body(item)
        if body is None:
            self._dropped.inc()
            return
        delays = self._backoff_factory()
        attempt = 0
        while True:
            age = self._clock.monotonic() - item.submitted_s
            if age > self.max_age_s:
                self._drop(item, f"older than {fmt_num(self.max_age_s)} s")
                return
            if attempt:
                # Counted when the retry is made, not when it is planned: a back-off sleep that
                # overruns max_age (a loaded loop) drops the event above, uncounted as a retry.
                self._retry.inc()
            attempt += 1
            outcome = await self._attempt(session, body)
            if outcome.kind == "ok":
                self._ok.inc()
                if self._failing:
                    self._failing = False
                    log.info("webhook %s: delivering again", self.display_url)
                return
            if outcome.kind == "fatal":
                self._drop(item, outcome.reason)
                return
            if attempt >= self.max_attempts:
                self._drop(item, f"{outcome.reason}; gave up after {attempt} attempts")
                return
            delay = outcome.retry_after_s
            if delay is None:
                delay = next(delays)
            age = self._clock.monotonic() - item.submitted_s
            if age + delay > self.max_age_s:
                self._drop(item, f"{outcome.reason}; retry would exceed max age")
                return
            if not self._failing:
                self._failing = True
                log.warning(
                    "webhook %s: delivery failed (%s); retrying in %.3g s",
                    self.display_url,
                    outcome.reason,
                    delay,
                )
            elif log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "webhook %s: attempt %d failed (%s); retrying in %.3g s",
                    self.display_url,
                    attempt,
                    outcome.reason,
                    delay,
                )
            await self._clock.sleep(delay)

    async def _attempt(self, session: aiohttp.ClientSession, body: bytes) -> _Outcome:
        try:
            async with session.post(
                self.settings.url,
                data=body,
                headers={"Content-Type": "application/json"},
                allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                status = resp.status
                excerpt = await resp.content.read(_MAX_BODY_EXCERPT)
                if 200 <= status < 300:
                    return _OK
                reason = f"HTTP {status}"
                if status in _RETRYABLE_STATUS or status >= 500:
                    retry_after = None
                    if status in (429, 503):
                        retry_after = parse_retry_after(
                            resp.headers.get("Retry-After"), self._clock.wall_ns()
                        )
                    return _Outcome("retry", reason, retry_after)
                if excerpt:
                    reason += f": {truncate(excerpt, _MAX_BODY_EXCERPT)}"
                return _Outcome("fatal", reason)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return _Outcome("retry", _describe(exc))

    def _drop(self, item: _Pending, reason: str) -> None:
        self._dropped.inc()
        log.warning(
            "webhook %s: dropped %s %s episode of %s %s (%s)",
            self.display_url,
            item.event.state,
            item.event.symptom,
            item.event.exchange,
            item.event.symbol,
            reason,
        )

    async def _flush(self, session: aiohttp.ClientSession) -> None:
        """One last attempt per pending event, within ``flush_timeout_s``; drop the rest."""
        pending: list[_Pending] = [] if self._current is None else [self._current]
        self._current = None
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        if not pending:
            return
        delivered = 0
        try:
            if self.flush_timeout_s > 0:
                async with asyncio.timeout(self.flush_timeout_s):
                    for item in pending:
                        body = self._body(item)
                        if body is None:
                            continue
                        if (await self._attempt(session, body)).kind != "ok":
                            break  # the endpoint is failing: no time for the others either
                        self._ok.inc()
                        delivered += 1
        except TimeoutError:
            pass
        finally:
            lost = len(pending) - delivered
            if lost:
                self._dropped.inc(lost)
                log.warning(
                    "webhook %s: stopping with %d undelivered event(s); dropped",
                    self.display_url,
                    lost,
                )


class Webhooks:
    """Every configured webhook: one :class:`WebhookSender` each, fed the same events.

    Args:
        settings: the ``[[webhooks]]`` entries.
        deliveries: the ``mmradar_webhook_deliveries_total`` family.
        **options: passed to every :class:`WebhookSender` (queue size, timeouts, ...).
    """

    def __init__(
        self, settings: Iterable[WebhookSettings], deliveries: Counter, **options: Any
    ) -> None:
        self.senders: Sequence[WebhookSender] = tuple(
            WebhookSender(hook, deliveries, **options) for hook in settings
        )

    def submit(self, event: EpisodeEvent) -> None:
        """Queue ``event`` on every webhook (synchronous, never blocks)."""
        for sender in self.senders:
            sender.submit(event)

    async def run(self) -> None:
        """Run every sender until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for sender in self.senders:
                tg.create_task(sender.run(), name=f"webhook:{sender.display_url}")
