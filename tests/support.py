"""The test suite's shared helpers: waiting for a condition, picking a free port, time budgets.

Every test, harness and tool under ``tests/`` (the soak included) waits through
:func:`wait_until` and takes ports from :func:`free_port`, so a timeout always reads the same way
("timed out after 5 s waiting for <what>") and there is one place to change how polling works.

Wall-clock bounds (a stop within 5 s, an alert within 10 s) are asserted only by tests marked
``perf`` (``make perf``; the default run deselects them): a loaded machine can break a time limit
without anything being wrong. A test that checks both what happens and how fast is parametrized
with :data:`timed`; :func:`limit` gives it the documented budget in its perf-marked copy and
:data:`HANG_S` (only a hang fails) in the default one.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

__all__ = [
    "HANG_S",
    "free_port",
    "free_ports",
    "limit",
    "read_to_marker",
    "timed",
    "wait_until",
]

T = TypeVar("T")

#: How long the default run waits for something a perf-marked run holds to a budget.
HANG_S = 120.0

#: Runs a test twice over ``timed``: ``False`` in the default run (what happens, with
#: hang-guard timeouts), ``True`` marked ``perf`` (the same, within the documented budgets).
timed = pytest.mark.parametrize(
    "timed",
    [pytest.param(False, id="untimed"), pytest.param(True, id="timed", marks=pytest.mark.perf)],
)


def limit(budget_s: float, timed: bool) -> float:
    """The time a test allows: ``budget_s`` when ``timed``, else a hang guard (:data:`HANG_S`,
    or four budgets if that is longer)."""
    return budget_s if timed else max(HANG_S, 4 * budget_s)


async def wait_until(
    condition: Callable[[], T | Awaitable[T]],
    what: str,
    *,
    timeout_s: float = 10.0,
    interval_s: float = 0.02,
    ignore: tuple[type[BaseException], ...] = (),
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns a true value, and return that value.

    Args:
        condition: a function or coroutine function of no arguments; a true result ends the
            wait. It is called at once, then every ``interval_s`` seconds.
        what: what is awaited, in words ("the service's /readyz to answer 200"); the timeout
            message names it.
        timeout_s: how long to poll (event-loop time) before giving up.
        interval_s: the pause between two calls.
        ignore: exceptions that count as "not yet" (a connection refused while a server
            starts); the last one is shown in the timeout message.
        detail: called on timeout; its text (logs, the last state seen) ends the message.

    Raises:
        AssertionError: ``condition`` was not true within ``timeout_s``.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: object = None
    while True:
        try:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
        except ignore as exc:
            last = exc
        else:
            if result:
                return result  # type: ignore[return-value]
            last = result
        if loop.time() >= deadline:
            message = f"timed out after {timeout_s:g} s waiting for {what} (last: {last!r})"
            if detail is not None:
                message += "\n" + detail()
            raise AssertionError(message)
        await asyncio.sleep(interval_s)


async def read_to_marker(
    read: Coroutine[Any, Any, None],
    drained: Awaitable[object],
    mark: Callable[[], Awaitable[object]],
    *,
    timeout_s: float = 60.0,
) -> None:
    """Read everything a venue sent, up to a marker, instead of up to a silence.

    ``read`` consumes the stream until the answer to the marker request; ``drained`` returns
    once the venue has sent what the test waits for; then ``mark`` sends the marker request
    (a ping, a subscribe), whose answer the venue queues after every frame it sent before.
    ``read`` runs throughout (a venue waits for a client that does not read), and its failure
    is raised at once.

    Raises:
        AssertionError: the venue did not drain, or the marker was not read, within
            ``timeout_s``.
    """
    reader = asyncio.ensure_future(read)
    waiting = asyncio.ensure_future(drained)
    try:
        await asyncio.wait({reader, waiting}, timeout=timeout_s, return_when="FIRST_COMPLETED")
        if reader.done():
            reader.result()  # the reader's failure
            raise AssertionError("the stream reached the marker before the marker was sent")
        assert waiting.done(), f"the venue did not drain within {timeout_s:g} s"
        await mark()
        try:
            await asyncio.wait_for(reader, timeout_s)
        except TimeoutError:
            raise AssertionError(f"the marker was not read within {timeout_s:g} s") from None
    finally:
        reader.cancel()
        waiting.cancel()


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports on ``host`` that were free a moment ago."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in socks:
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    return free_ports(1, host)[0]
