"""Sequential change detection: the detectors' on/off decision (docs/signals.md).

Every detector reduces one second of the book to a standardized feature ``z`` whose pre-change
model comes from its robust baseline (median and MAD of one-minute buckets): in calm ``z`` is
centred on 0 with unit robust scale. A change (the symptom) shifts its mean by about ``μ``
(``*_shift``). The decision is Page's CUSUM (Page 1954), which for a given false-alarm rate
minimises the worst-case detection delay (Lorden 1971; Moustakides 1986)::

    S_t = max(0, S_{t−1} + min(z_t, c) − k),    k = μ/2,   alarm when S_t ≥ h

and, while the episode fires, the same test in the other direction detects the return to
the pre-change model (the symptom is over)::

    R_t = max(0, R_{t−1} + k − clip(z_t, 0, 2k)),    end when R_t ≥ k·r

``c = min(CLIP_SHIFTS·μ, k + h/MIN_SAMPLES)`` winsorises a single sample, so that one wild
second cannot start an episode on its own. A second back at the baseline (``z ≤ 0``) is worth
``k`` of release evidence, a second still half-way (``z = k/2``) half as much, a stressed one
(``z > k``) takes evidence back (``k`` at most): the episode ends after about ``r``
(``release_seconds``) seconds of the feature back at its baseline — the hysteresis of the old
off-threshold and release timer in one statistic.

**Threshold from the average run length to false alarm (ARL0).** ``h`` is set so that the
expected number of calm samples between false alarms is ``ARL0`` (``arl0_hours``), with
Siegmund's approximation for a random walk of increments ``z − k`` (Siegmund 1985, eq. 2.56)::

    ARL0 ≈ (exp(2k'b) − 2k'b − 1) / (2k'²),    k' = k/√v,   b = h/√v + 1.166

where ``v`` is the long-run variance of ``z`` (1 for independent samples). The features are
mildly autocorrelated (a skew averaged over a second, a depth that is low this second is
likely low the next), which shortens the real ARL0 of a test tuned for independent samples;
every threshold is computed with ``v = VARIANCE_FACTOR`` (2: an AR(1) with ``φ = 1/3``), the
upper range of what the positive parts that drive the onset statistics show in calm simulated
hours, and the winsorisation (``c``) lengthens it again. The real ARL0 of each detector is
measured (docs/scorecard.md), not assumed. The expected detection delay of a shift of ``δ``
(in z units) follows from the same approximation with the drift ``δ − k``
(:func:`cusum_delay`).

Everything here is pure arithmetic on the 1-s stat clock: O(1) per sample.
"""

from __future__ import annotations

import math

from mypy_extensions import mypyc_attr

__all__ = [
    "CLIP_SHIFTS",
    "MIN_SAMPLES",
    "SIEGMUND_OVERSHOOT",
    "VARIANCE_FACTOR",
    "CusumPair",
    "arl0_threshold",
    "cusum_arl",
    "cusum_delay",
]

#: Siegmund's overshoot correction for Gaussian increments (ρ ≈ 0.583·2).
SIEGMUND_OVERSHOOT = 1.166
#: A single sample is winsorised at this many design shifts (``c = CLIP_SHIFTS·μ``) ...
CLIP_SHIFTS = 2.0
#: ... and at most at ``k + h/MIN_SAMPLES``: an onset needs evidence from this many seconds.
MIN_SAMPLES = 3.0
#: The long-run variance factor ``v`` every threshold is computed with: ``(1 + φ)/(1 − φ)`` of
#: an AR(1) with lag-1 autocorrelation ``φ = 1/3``. Measured on calm simulated hours, the
#: winsorised positive parts that drive the onset statistics have ``v`` between 1.0 and 3.1
#: (docs/signals.md); the real ARL0 of each detector is measured, not assumed (docs/scorecard.md).
VARIANCE_FACTOR = 2.0


def cusum_arl(h: float, k: float, drift: float, variance: float = 1.0) -> float:
    """Siegmund's approximation of a CUSUM's average run length, in samples.

    Args:
        h: the threshold.
        k: the reference value subtracted from every increment.
        drift: the mean of the raw increments ``z`` (0 before the change).
        variance: the long-run variance of ``z``.

    Returns:
        The expected number of samples until ``S ≥ h`` (ARL0 for ``drift = 0``; the
        detection delay plus one for ``drift`` = the shift).
    """
    sd = math.sqrt(variance)
    mu = (drift - k) / sd  # per-sample drift of the standardized increments
    b = h / sd + SIEGMUND_OVERSHOOT
    if abs(mu) < 1e-9:
        return b * b
    x = -2.0 * mu * b
    if x > 700.0:
        return math.inf
    return (math.exp(x) + 2.0 * mu * b - 1.0) / (2.0 * mu * mu)


def arl0_threshold(arl0: float, k: float, variance: float = 1.0) -> float:
    """The threshold ``h`` whose ARL0 (:func:`cusum_arl` at drift 0) is ``arl0`` samples.

    Args:
        arl0: the wanted average run length to false alarm, in samples (≥ 1).
        k: the reference value (> 0).
        variance: the long-run variance of the feature.

    Returns:
        ``h`` (≥ 0), by bisection (the ARL is increasing in ``h``).
    """
    if not k > 0.0:
        raise ValueError("k must be > 0")
    if not arl0 > 1.0:
        return 0.0
    lo, hi = 0.0, 1.0
    while cusum_arl(hi, k, 0.0, variance) < arl0:
        hi *= 2.0
        if hi > 1e6:
            return hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if cusum_arl(mid, k, 0.0, variance) < arl0:
            lo = mid
        else:
            hi = mid
    return hi


def cusum_delay(h: float, k: float, shift: float, variance: float = 1.0) -> float:
    """Expected samples from a change of ``shift`` (z units) to the alarm (ARL − 1, ≥ 0)."""
    return max(0.0, cusum_arl(h, k, shift, variance) - 1.0)


@mypyc_attr(allow_interpreted_subclasses=True)  # blank instances for checkpoints (checkpoint.py)
class CusumPair:
    """The CUSUM decision of one ``(symptom, side)``: onset test and release test.

    ``update`` takes the standardized feature oriented so that the symptom is *positive*
    (for a drop, pass ``−z``). While not firing, the onset statistic ``S`` accumulates
    ``min(z, c) − k``; ``onset`` is ``S ≥ h``. While firing, the release statistic ``R``
    accumulates ``k − clip(z, 0, 2k)``; ``release`` is ``R ≥ k·release_s``. A gate that does
    not hold (the symptom's context is absent, e.g. the other side of the book is gone too)
    empties ``S``: evidence gathered under another symptom does not carry over.

    Args:
        shift: the design shift ``μ`` (z units, > 0): ``k = μ/2``, ``c = CLIP_SHIFTS·μ``.
        h: the onset threshold (set with :meth:`set_threshold`).
        release_s: seconds at the baseline the release test needs (its threshold is
            ``k·release_s``).

    Attributes:
        onset_stat: ``S``.
        release_stat: ``R``.
    """

    __slots__ = ("_c", "h", "h_release", "k", "onset_stat", "release_stat")

    def __init__(self, shift: float, h: float, release_s: float = 5.0) -> None:
        if not shift > 0.0:
            raise ValueError("shift must be > 0")
        self.k = 0.5 * shift
        self.h_release = self.k * release_s
        self._c = 0.0
        self.h = 0.0
        self.onset_stat = 0.0
        self.release_stat = 0.0
        self.set_threshold(h)

    def set_shift(self, shift: float, h: float) -> None:
        """Re-tune to a new design shift (a feature whose z scale moves; statistics kept)."""
        if not shift > 0.0:
            raise ValueError("shift must be > 0")
        release_s = self.h_release / self.k
        self.k = 0.5 * shift
        self.h_release = self.k * release_s
        self.set_threshold(h)

    def set_threshold(self, h: float) -> None:
        """Use ``h`` from now on (recomputed when the variance factor moves).

        The winsorisation follows: ``c = min(CLIP_SHIFTS·μ, k + h/MIN_SAMPLES)``, so that no
        single sample carries more than ``h/MIN_SAMPLES`` of evidence.
        """
        self.h = h
        self._c = min(CLIP_SHIFTS * 2.0 * self.k, self.k + h / MIN_SAMPLES)

    def update(self, z: float, gate: bool, firing: bool, informative: bool = True) -> None:
        """One sample of the oriented standardized feature (NaN: no evidence either way).

        Args:
            z: the feature, oriented so that the symptom is positive.
            gate: the symptom's context holds (else the onset statistic empties).
            firing: an episode is in progress (the release test runs instead of the onset).
            informative: the sample says something about the symptom at all (a blown-out
                touch says nothing about the makers' skew): when False, both statistics hold.
        """
        if z != z or not informative:
            return
        c = self._c
        if firing:
            k = self.k
            x = 0.0 if z < 0.0 else (2.0 * k if z > 2.0 * k else z)
            r = self.release_stat + k - x
            self.release_stat = r if r > 0.0 else 0.0
            return
        if self.release_stat > 0.0:  # the episode just ended: start afresh
            self.release_stat = 0.0
            self.onset_stat = 0.0
        if not gate:
            self.onset_stat = 0.0
            return
        x = c if z > c else z
        s = self.onset_stat + x - self.k
        self.onset_stat = s if s > 0.0 else 0.0

    @property
    def onset(self) -> bool:
        """The onset test has alarmed."""
        return self.onset_stat >= self.h

    @property
    def release(self) -> bool:
        """The release test has alarmed (the symptom is over)."""
        return self.release_stat >= self.h_release

    def reset(self) -> None:
        """Empty both statistics (after an episode ends, after a resync)."""
        self.onset_stat = 0.0
        self.release_stat = 0.0
