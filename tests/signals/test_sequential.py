"""The sequential decision layer (mmradar.signals.sequential): CUSUM thresholds from ARL0."""

from __future__ import annotations

import math
import random

import pytest

from mmradar.signals.sequential import (
    MIN_SAMPLES,
    VARIANCE_FACTOR,
    CusumPair,
    arl0_threshold,
    cusum_arl,
    cusum_delay,
)


def test_siegmund_arl_matches_the_tabulated_cusum() -> None:
    # k = 0.5, h = 5 is the textbook CUSUM: ARL0 ≈ 930 (Montgomery's table: 938), and a
    # one-sigma shift is caught in ≈ 10 samples (table: 10.4)
    assert cusum_arl(5.0, 0.5, 0.0) == pytest.approx(930, rel=0.02)
    assert cusum_arl(5.0, 0.5, 1.0) == pytest.approx(10.4, rel=0.05)
    # a larger variance factor shortens the ARL0 of a given h
    assert cusum_arl(5.0, 0.5, 0.0, variance=2.0) < cusum_arl(5.0, 0.5, 0.0)


@pytest.mark.parametrize(("arl0", "k"), [(1000.0, 0.5), (28_800.0, 2.0), (28_800.0, 4.5)])
def test_threshold_inverts_the_arl(arl0: float, k: float) -> None:
    h = arl0_threshold(arl0, k, VARIANCE_FACTOR)
    assert cusum_arl(h, k, 0.0, VARIANCE_FACTOR) == pytest.approx(arl0, rel=1e-6)
    assert arl0_threshold(arl0 * 10, k, VARIANCE_FACTOR) > h  # rarer alarms need more evidence
    assert cusum_delay(h, k, 2 * k, VARIANCE_FACTOR) < cusum_delay(h, k, 1.5 * k, VARIANCE_FACTOR)


def test_empirical_arl0_of_independent_samples_is_at_least_the_stated_one() -> None:
    """On i.i.d. N(0, 1) samples the winsorised test alarms no more often than ARL0 says."""
    rng = random.Random(7)
    shift, arl0 = 2.0, 400.0
    h = arl0_threshold(arl0, shift / 2, 1.0)
    test = CusumPair(shift, h)
    alarms, n = 0, 200_000
    for _ in range(n):
        test.update(rng.gauss(0.0, 1.0), True, False)
        if test.onset:
            alarms += 1
            test.reset()
    assert alarms > 0
    assert n / alarms >= 0.8 * arl0  # the clip makes alarms rarer, never more frequent


def test_onset_needs_evidence_from_several_seconds() -> None:
    test = CusumPair(4.0, 3.0)
    test.update(1e9, True, False)  # one absurd second carries h/MIN_SAMPLES at most
    assert test.onset_stat == pytest.approx(3.0 / MIN_SAMPLES)
    assert not test.onset
    for _ in range(int(MIN_SAMPLES) - 1):
        test.update(1e9, True, False)
    assert test.onset
    # a calm second takes evidence back, never below zero
    quiet = CusumPair(4.0, 3.0)
    quiet.update(-5.0, True, False)
    assert quiet.onset_stat == 0.0


def test_gate_empties_the_onset_and_an_uninformative_sample_holds_it() -> None:
    test = CusumPair(4.0, 10.0)
    test.update(5.0, True, False)
    held = test.onset_stat
    assert held > 0
    test.update(-30.0, True, False, informative=False)
    assert test.onset_stat == held
    test.update(5.0, False, False)
    assert test.onset_stat == 0.0
    test.update(math.nan, True, False)  # no evidence either way
    assert test.onset_stat == 0.0


def test_release_needs_release_seconds_at_the_baseline_and_resets_after_the_episode() -> None:
    test = CusumPair(6.0, 2.0, release_s=3.0)  # k = 3: release at 9
    assert test.h_release == pytest.approx(9.0)
    test.update(0.0, True, True)
    test.update(0.0, True, True)
    assert not test.release  # two seconds at the baseline: 6 of 9
    test.update(10.0, True, True)  # the symptom again takes one second's evidence back
    assert test.release_stat == pytest.approx(3.0)
    test.update(-50.0, True, True)  # far below the baseline counts as at the baseline
    test.update(1.5, True, True)  # half-way: half the evidence
    assert test.release_stat == pytest.approx(3 + 3 + 1.5)
    assert not test.release
    test.update(0.0, True, True)
    assert test.release
    # the first sample after the episode starts both statistics afresh
    test.update(0.0, True, False)
    assert test.onset_stat == 0.0 and test.release_stat == 0.0


def test_a_moving_scale_retunes_the_shift_and_keeps_the_release_seconds() -> None:
    test = CusumPair(6.0, 2.0, release_s=3.0)
    test.set_shift(2.0, 5.0)
    assert test.k == 1.0 and test.h == 5.0 and test.h_release == pytest.approx(3.0)
    with pytest.raises(ValueError):
        CusumPair(0.0, 1.0)
