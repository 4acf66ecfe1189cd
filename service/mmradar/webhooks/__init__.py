"""Direct webhooks: every symptom episode start and end POSTed to the configured URLs.

docs/webhooks.md. Two layers, in the house style of a pure core and a thin I/O shell, in three
modules:

* **Formatting** (pure): :func:`format_json` (:mod:`.payload`), :func:`format_slack` and
  :func:`format_discord` (:mod:`.rendering`) turn an
  :class:`~mmradar.signals.episodes.EpisodeEvent` into the request body of each
  ``[[webhooks]]`` ``format``. The ``json`` body has exactly these keys (docs/webhooks.md)::

      {"symptom", "exchange", "symbol", "side", "state": "firing" | "resolved",
       "started_at", "ended_at", "score", "context": {...}, "recording"}

  Times are ISO-8601 UTC with milliseconds (``2024-08-08T23:54:13.123Z``; ``ended_at`` is null
  while firing), ``score`` is rounded to 6 significant digits and NaN/±inf anywhere become
  ``null``. Slack and Discord carry the same facts as a readable message.

* **Delivery** (I/O, :mod:`.delivery`): one :class:`WebhookSender` per configured webhook, each
  with its own bounded queue and one worker task, so a dead endpoint never holds up another one
  and events of one webhook are delivered in order. :class:`Webhooks` fans one event out to
  every sender and runs them all (what the service wires in).

Delivery semantics (each counted in ``mmradar_webhook_deliveries_total{format,result}``):

* :meth:`WebhookSender.submit` is synchronous, O(1) and never blocks: it only appends the
  event to the queue (formatting happens in the worker). When the queue is full the **oldest**
  queued event is dropped (``dropped``) to make room: the newest events describe the market now.
* The worker POSTs each event (timeouts: 5 s to connect, 10 s in total). A 2xx answer is
  ``ok``. A connection error, a timeout, HTTP 408, 429 or 5xx is retried after an exponential
  back-off with jitter (:func:`mmradar.feed.backoff`: 0.5–1 s, 1–2 s, 2–4 s, ...), or after the
  ``Retry-After`` the server sent with a 429/503; each retry attempt counts
  ``retry`` (when it is made). After ``max_attempts`` (6) attempts, or when the event would be older
  than ``max_age_s`` (300 s), it is ``dropped``. Any other answer (3xx, 4xx) is ``dropped`` at
  once with a WARNING: a wrong URL or a rejected payload will not fix itself.
* On cancellation the worker spends at most ``flush_timeout_s`` (1 s) on one last attempt for
  the events still pending, then counts the rest ``dropped``: shutdown is never held up longer.

The resolved URL may hold a secret (``${NAME}`` in the config): it is only ever used to send.
Logs name a webhook by :attr:`~mmradar.config.WebhookSettings.display_url` and never print an
exception's text (aiohttp puts the URL in some of them).
"""

from __future__ import annotations

from .delivery import DEFAULT_QUEUE_SIZE, Webhooks, WebhookSender, encode
from .payload import format_json
from .rendering import (
    DISCORD_LIMITS,
    DepthRow,
    Facts,
    format_discord,
    format_slack,
    render,
    summary,
)

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "DISCORD_LIMITS",
    "DepthRow",
    "Facts",
    "WebhookSender",
    "Webhooks",
    "encode",
    "format_discord",
    "format_json",
    "format_slack",
    "render",
    "summary",
]
