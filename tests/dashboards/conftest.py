"""Fixtures for the dashboard tests: one live stack per module, stopped by PID at its end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .live import LiveStack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveStack]:
    """The demo service scraped by Prometheus, with everything the dashboards show already
    in Prometheus (:meth:`LiveStack.wait_until_exercised`)."""
    stack = LiveStack(tmp_path_factory.mktemp("dashboards-live"))
    try:
        await stack.start()
        await stack.wait_until_exercised()
        yield stack
    finally:
        await stack.stop()
