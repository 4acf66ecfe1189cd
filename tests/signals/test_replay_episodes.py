"""``mmradar replay`` reports the symptom episodes found (real Binance captures)."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import msgspec
import pytest

from mmradar.cli import main
from mmradar.embedded.capture import capture_path
from mmradar.replay import format_summary, replay
from mmradar.signals.params import SignalSettings

# The real captures are packaged with mmradar (one copy; read through importlib.resources).
USDM = Path(str(capture_path("usdm")))
SPOT = Path(str(capture_path("spot")))
EPISODE_LINE = re.compile(
    r"^      (?P<symptom>[a-z_]+)/(?P<side>both|bid|ask)  "
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC → "
    r"(\(still firing\)|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \([\dms.]+\))"
    r"  peak score [-\d.e+]+"
)


async def test_default_warm_up_is_longer_than_the_capture_and_the_summary_says_so() -> None:
    result = await replay([SPOT], out=None, progress=False)
    (summary,) = result.summaries
    assert summary.episodes == () and not summary.signals_warm
    text = format_summary(result)
    assert "symptom episodes: none; detectors NOT armed at the end" in text
    assert "less than the 10m00s warm-up" in text and "--warmup" in text


@pytest.mark.parametrize("path", [SPOT, USDM], ids=["spot", "usdm"])
async def test_a_short_warm_up_lists_the_episodes(path: Path) -> None:
    params = msgspec.structs.replace(SignalSettings(), warmup_seconds=60)
    result = await replay([path], out=None, progress=False, signal_params=params)
    (summary,) = result.summaries
    assert summary.signals_warm
    text = format_summary(result)
    assert "detectors armed since" in text
    lines = [line for line in text.splitlines() if line.startswith("      ")]
    assert len(lines) == len(summary.episodes)
    for line, episode in zip(lines, summary.episodes, strict=True):
        match = EPISODE_LINE.match(line)
        assert match, line
        assert (match["symptom"], match["side"]) == (episode.symptom, episode.side)
    # few or none on six calm minutes; many would be a false-alert problem
    assert len(summary.episodes) <= 3


def test_cli_warmup_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(USDM), "--fast", "--no-progress", "--warmup", "60"]) == 0
    out = capsys.readouterr().out
    assert "detectors armed since" in out and "(1m00s warm-up)" in out
    assert main(["replay", str(USDM), "--fast", "--no-progress", "--warmup", "-1"]) == 2


def test_replay_reads_signals_from_a_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[feeds]]\nexchange = "binance"\nsymbols = ["BTCUSDT"]\n\n[signals]\nwarmup_seconds = 90\n'
    )
    assert main(["replay", str(SPOT), "--fast", "--no-progress", "--config", str(config)]) == 0
    assert "(1m30s warm-up)" in capsys.readouterr().out


def test_summary_is_identical_at_any_pace() -> None:
    """Episodes are found on event time: the printed summary does not depend on pacing."""
    out_fast, out_paced = io.StringIO(), io.StringIO()
    params = msgspec.structs.replace(SignalSettings(), warmup_seconds=60)
    fast = asyncio.run(replay([USDM], out=out_fast, progress=False, signal_params=params))
    paced = asyncio.run(
        replay([USDM], speed=1e6, out=out_paced, progress=False, signal_params=params)
    )
    assert format_summary(fast) == format_summary(paced)
