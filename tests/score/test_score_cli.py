"""``mmradar score --quick`` end to end: simulator → pipeline → scorecard, PNG and JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmradar.cli import main

ROOT = Path(__file__).resolve().parents[2]

# Floors a little below what the quick run measures on the single-venue scenarios (seed 1,
# eight scenarios: precision 1.00, recall 0.94 over 18 truth episodes, median latency 3.1 s,
# median end latency 7.0 s, proxy ρ 0.87 — the sweep control's hedged dealers stay flat under
# one-sided flow, which no flow-based proxy can see), so that a detector regression fails here;
# the four two-venue scenarios run too and their hedge_pressure rows are checked to be there
# (their figures miss the targets: docs/scorecard.md). The published figures are in
# docs/scorecard.md.
MIN_PRECISION = 0.9
MIN_RECALL = 0.9
MAX_MEDIAN_LATENCY_S = 5.0
MAX_MEDIAN_END_LATENCY_S = 10.0
MIN_PROXY_SPEARMAN = 0.8


@pytest.mark.slow
def test_score_quick_writes_a_scorecard_meeting_the_floors(tmp_path: Path) -> None:
    out = tmp_path / "card"
    proc = subprocess.run(
        [sys.executable, "-m", "mmradar", "score", "--quick", "--out", str(out), "--jobs", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "score: [" in proc.stderr  # progress, one line per run when not on a terminal
    text = (out / "scorecard.md").read_text(encoding="utf-8")
    assert text == proc.stdout
    assert "| `liquidity_pull` | both |" in text
    png = (out / "timeline.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 20_000
    assert "| `hedge_pressure` | buy |" in text and "| `hedge_pressure` | sell |" in text
    assert (out / "timeline-hedge.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    card = json.loads((out / "scorecard.json").read_text(encoding="utf-8"))
    # the floors hold for the single-venue symptoms; hedge_pressure is reported, and its
    # figures are in docs/scorecard.md
    single = [r for r in card["symptoms"] if r["symptom"] != "hedge_pressure"]
    tp = sum(r["tp"] for r in single)
    assert tp > 10
    assert tp / (tp + sum(r["fp"] for r in single)) >= MIN_PRECISION
    assert tp / sum(r["truth"] for r in single) >= MIN_RECALL
    hedge = [r for r in card["symptoms"] if r["symptom"] == "hedge_pressure"]
    assert [r["side"] for r in hedge] == ["buy", "sell"] and sum(r["truth"] for r in hedge) > 0
    assert card["all"]["latency_median_s"] <= MAX_MEDIAN_LATENCY_S
    assert card["all"]["end_latency_median_s"] <= MAX_MEDIAN_END_LATENCY_S
    assert set(card["controls"]) == {
        "spoof",
        "refresh",
        "sweep",
        "feed-gap",
        "common-shock",
        "unhedged-burst",
    }
    for control in card["controls"].values():
        assert control["inventory_firings"] == 0
    # the proxy floor is on the single-venue runs: a hedging dealer's spot inventory stays
    # away from zero long after the flow that built it (its net position is what reverts)
    line = next(x for x in text.splitlines() if x.startswith("Per scenario (mean ρ"))
    rho = {
        name: float(value)
        for name, value in (part.rsplit(" ", 1) for part in line.split(": ", 1)[1][:-1].split("; "))
    }
    single_rho = [
        v for k, v in rho.items() if not k.startswith(("hedged-", "common-", "unhedged-"))
    ]
    assert len(single_rho) == 8
    assert sum(single_rho) / len(single_rho) >= MIN_PROXY_SPEARMAN
    assert card["calm_hours"] > 0


def test_score_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--seeds", "5-1"]) == 2
    assert "--seeds" in capsys.readouterr().err
    assert main(["score", "--scenarios", "no-such-scenario"]) == 2
    assert "no-such-scenario" in capsys.readouterr().err
