"""The soak's short version (CI): three minutes of the whole harness (``make soak`` runs 60).

Every check of the long run applies except RSS growth, which a run shorter than 15 minutes
cannot judge (the flight recorder's rings and the detectors' baselines fill for minutes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .soak import run_soak


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_three_minute_soak(tmp_path: Path) -> None:
    lines: list[str] = []
    result = await run_soak(3.0, tmp_path, progress=lines.append, sample_interval_s=30.0)
    failed = {k: v for k, (ok, v) in result.verdict.checks.items() if not ok}
    assert result.verdict.ok, (failed, lines)
    assert len(result.samples) >= 5
    assert result.faults >= 8
    assert {"books", "tasks", "fds", "metrics_answered", "clean_exit"} <= set(result.verdict.checks)
    assert (tmp_path / "soak.png").stat().st_size > 10_000
    assert (tmp_path / "soak.json").exists()
