"""The alert state machine: exact transitions on scripted 1-s sample sequences."""

from __future__ import annotations

import pytest

from mmradar.signals.alerts import AlertMachine, AlertState, AlertTiming

S = 1_000_000_000


def run(
    machine: AlertMachine, scores: list[float], on_at: float = 4.0, off_at: float = 2.0
) -> list[tuple[int, str]]:
    """Feed one score per second (t = 0, 1, ...); return (second, transition) pairs."""
    out = []
    for t, score in enumerate(scores):
        transition = machine.step(t * S, score >= on_at, score <= off_at, score)
        if transition is not None:
            out.append((t, transition))
    return out


def machine(
    on: float = 2, off: float = 3, min_firing: float = 0, cooldown: float = 0
) -> AlertMachine:
    return AlertMachine(AlertTiming(on, off, min_firing, cooldown))


def test_fires_after_on_held_for_t_on_and_resolves_after_off_held_for_t_off() -> None:
    m = machine(on=2, off=3, cooldown=30)
    #         t: 0  1  2  3  4  5  6  7  8  9
    scores = [0, 5, 5, 5, 5, 1, 1, 1, 1, 0]
    assert run(m, scores) == [(3, "firing"), (8, "resolved")]
    assert m.started_ns == 3 * S and m.ended_ns == 8 * S
    assert m.peak == 5 and m.episodes == 1
    assert m.state is AlertState.COOLDOWN


def test_pending_resets_when_on_lapses() -> None:
    m = machine(on=2)
    assert run(m, [5, 5, 0, 5, 5, 0, 5, 5, 5]) == [(8, "firing")]


def test_hysteresis_band_neither_starts_nor_ends() -> None:
    m = machine(on=1, off=1)
    # 3 is between θ_off = 2 and θ_on = 4
    assert run(m, [3, 3, 3, 5, 5, 3, 3, 3, 3, 3]) == [(4, "firing")]
    assert m.firing


def test_dips_shorter_than_t_off_do_not_end_an_episode() -> None:
    m = machine(on=0, off=3)
    #         t: 0  1  2  3  4  5  6  7  8  9  10
    scores = [5, 1, 1, 5, 1, 1, 5, 1, 1, 1, 1]
    # the off clock restarts after every return above θ_off: only t = 7..10 is 3 s long
    assert run(m, scores) == [(0, "firing"), (10, "resolved")]


def test_minimum_firing_time() -> None:
    m = machine(on=0, off=0, min_firing=5)
    assert run(m, [5, 0, 0, 0, 0, 0, 0]) == [(0, "firing"), (5, "resolved")]


def test_cooldown_blocks_a_new_episode() -> None:
    m = machine(on=0, off=0, cooldown=4)
    #         t: 0  1  2  3  4  5  6
    scores = [5, 0, 5, 5, 5, 5, 5]
    assert run(m, scores) == [(0, "firing"), (1, "resolved"), (5, "firing")]
    assert m.episodes == 2


def test_zero_t_on_fires_on_the_first_sample() -> None:
    m = machine(on=0, off=0)
    assert m.step(7 * S, True, False, 9.0) == "firing"
    assert m.firing and m.started_ns == 7 * S


def test_force_resolve_ends_a_firing_episode_without_cooldown() -> None:
    m = machine(on=0, off=100, cooldown=100)
    m.step(0, True, False, 5.0)
    assert m.force_resolve(3 * S) is True
    assert m.ended_ns == 3 * S and m.state is AlertState.IDLE
    assert m.step(4 * S, True, False, 5.0) == "firing"  # no cooldown after a forced end
    assert machine().force_resolve(S) is False  # nothing was firing


def test_reset_forgets_a_pending_episode() -> None:
    m = machine(on=2)
    m.step(0, True, False, 5.0)
    m.step(S, True, False, 5.0)
    m.reset()
    assert m.state is AlertState.IDLE
    assert m.step(2 * S, True, False, 5.0) is None  # pending starts again


def test_timing_rejects_negative_durations() -> None:
    with pytest.raises(ValueError):
        AlertTiming(-1, 0, 0, 0)
