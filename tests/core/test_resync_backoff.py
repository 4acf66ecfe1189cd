"""The feed's resync back-off, message pacer and log limiter: pure, time passed in."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from mmradar.feed import LogLimiter, MessagePacer, ResyncBackoff, ResyncPolicy


def test_default_schedule_backs_off_then_parks() -> None:
    policy = ResyncPolicy()
    backoff = ResyncBackoff(policy, random.Random(1))
    now = 1000.0
    waits, parked = [], []
    for _ in range(9):
        slot = backoff.request("X", now)
        waits.append(slot.due_at - now)
        parked.append(slot.parked)
        now = slot.due_at
        backoff.attempted("X", now)
        now += 0.1  # the attempt fails at once
    assert waits[0] == 0.0  # the first resync goes at once
    for n, wait in enumerate(waits[1:5], start=2):  # 1, 2, 4, 8 s, equal jitter
        full = policy.backoff_initial_s * 2 ** (n - 2)
        assert full / 2 <= wait <= full, (n, wait)
    assert parked == [False] * 5 + [True] * 4  # failure 6 in a row parks it ...
    assert waits[5:] == pytest.approx([policy.park_s] * 4)  # ... and each later one parks again


def test_a_streak_ends_when_the_last_attempt_is_old() -> None:
    policy = ResyncPolicy()
    backoff = ResyncBackoff(policy, random.Random(2))
    backoff.request("X", 0.0)
    backoff.attempted("X", 0.0)
    assert backoff.request("X", 1.0).streak == 2  # failed again within reset_after_s
    backoff.attempted("X", 2.0)
    slot = backoff.request("X", 2.0 + policy.reset_after_s)  # the book held meanwhile
    assert slot.streak == 1 and slot.due_at == 2.0 + policy.reset_after_s
    assert backoff.request("Y", 3.0).streak == 1  # symbols are independent
    assert backoff.streak("X") == 1 and backoff.streak("Z") == 0


def test_the_cap_bounds_the_delay_before_parking() -> None:
    policy = ResyncPolicy(backoff_initial_s=1.0, backoff_max_s=3.0, park_after=10)
    backoff = ResyncBackoff(policy, random.Random(3))
    now = 0.0
    for n in range(1, 10):
        slot = backoff.request("X", now)
        assert slot.due_at - now <= 3.0 and not slot.parked, n
        backoff.attempted("X", slot.due_at)
        now = slot.due_at
    assert backoff.request("X", now).parked


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        ResyncPolicy(park_after=1)
    with pytest.raises(ValueError):
        ResyncPolicy(backoff_initial_s=2.0, backoff_max_s=1.0)
    with pytest.raises(ValueError):
        ResyncPolicy(park_s=0.0)


def test_pacer_allows_n_frames_in_any_rolling_second() -> None:
    pacer = MessagePacer(5.0)
    assert pacer.window_s == pytest.approx(1.1)  # a second and a margin for network jitter
    for i in range(5):
        assert pacer.delay(10.0 + i * 0.01) == 0.0
        pacer.sent(10.0 + i * 0.01)
    assert pacer.delay(10.5) == pytest.approx(0.6)  # the first frame leaves the window at 11.1
    assert pacer.delay(11.1) == 0.0


def test_pacer_with_a_fractional_rate_stays_below_it_in_every_second() -> None:
    # 8/s shared by three connections: 2.67/s each. Two frames per second, never three (a
    # window of 2/2.67 s would let two bursts of two into one second).
    pacer = MessagePacer(8.0 / 3)
    assert pacer.limit == 2
    times: list[float] = []
    now = 0.0
    for _ in range(40):
        now += pacer.delay(now)
        pacer.sent(now)
        times.append(now)
    assert max(sum(1 for u in times if t <= u < t + 1.0) for t in times) == 2
    unpaced = MessagePacer(None)
    for _ in range(100):
        unpaced.sent(0.0)
    assert unpaced.delay(0.0) == 0.0


def test_log_limiter_keeps_one_line_per_interval_and_counts_the_rest() -> None:
    limit = LogLimiter(10.0)
    assert limit.admit("A", "gap", 0.0) == Counter()
    assert limit.admit("A", "gap", 1.0) is None
    assert limit.admit("A", "checksum", 2.0) is None
    assert limit.admit("B", "gap", 2.0) == Counter()  # keys are independent
    assert limit.overdue(5.0) == []
    # the next admitted line reports what was left out
    assert limit.admit("A", "gap", 10.0) == Counter({"gap": 1, "checksum": 1})
    assert limit.admit("A", "gap", 11.0) is None
    # with no further line, the summary comes due after the interval
    assert limit.overdue(19.0) == []
    assert limit.overdue(20.0) == [("A", Counter({"gap": 1}))]
    assert limit.overdue(40.0) == []


def test_pacer_below_one_frame_per_second_widens_its_window() -> None:
    pacer = MessagePacer(8.0 / 16)  # one connection's share of 8/s over 16 connections
    assert (pacer.limit, pacer.window_s) == (1, pytest.approx(2.2))
    pacer.sent(0.0)
    assert pacer.delay(1.0) == pytest.approx(1.2)
    assert pacer.delay(2.2) == 0.0
