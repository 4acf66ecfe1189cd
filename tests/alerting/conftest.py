"""Fixtures for the alerting tests: the real Prometheus/Alertmanager stack, stopped by PID."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from .harness import AlertStack


@pytest.fixture
async def alert_stack(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[AlertStack]]]:
    """``await alert_stack(target)`` starts Prometheus (scraping ``target``; None = no
    Prometheus), Alertmanager and a webhook receiver; all stopped when the test ends."""
    stacks: list[AlertStack] = []

    async def start(target: str | None) -> AlertStack:
        workdir = tmp_path / f"stack{len(stacks)}"
        workdir.mkdir()
        stack = AlertStack(workdir, target)
        stacks.append(stack)  # before start: a partial start is stopped too
        await stack.start()
        await stack.wait_ready()
        return stack

    try:
        yield start
    finally:
        for stack in stacks:
            await stack.stop()
