"""Event-level matching of detected symptom episodes to ground-truth episodes.

The rule of docs/scorecard.md ("Event-level matching"), one-to-one:

* Only episodes of the same ``(symptom, side)`` are compared.
* A detected episode starting at ``a`` is **eligible** for a truth episode ``[s, e]`` when
  ``s − pre ≤ a ≤ e + post`` (``pre`` allows an anticipatory detection, ``post`` a late one).
* Detected episodes are taken in start order. Each is matched to an eligible truth episode not
  matched yet; when several are, to the one whose window ``[s − pre, e + post]`` closes first
  (then the earliest start). This greedy rule gives the largest possible number of matched
  pairs, and every truth episode is matched by the first detection eligible for it that is
  not needed by another episode.
* A detected episode with eligible truth episodes that are all matched already is
  **redundant** (a re-fire inside an episode): reported, but neither a true nor a false
  positive. A detected episode with no eligible truth episode is a **false** alert.
* Truth episodes never matched are **missed**.

Latency of a matched pair: ``a − s`` in seconds of event time (negative = anticipatory); its
end latency: ``b − e`` (the detection's end minus the truth episode's end; negative = it ended
early).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_TOLERANCE",
    "Episode",
    "MatchResult",
    "Tolerance",
    "group_by_key",
    "match_episodes",
    "merge_close",
    "time_outside",
]

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Episode:
    """A symptom episode, ground truth or detected.

    Attributes:
        symptom: the symptom name (docs/metrics.md).
        side: ``both``, ``bid`` or ``ask``.
        start_ns: event time it started.
        end_ns: event time it ended (the end of the run for one still firing).
        cause: what the detector said removed the liquidity (``liquidity_evaporation``:
            ``cancel``, ``trade`` or ``mixed``; empty otherwise). Not used for matching.
    """

    symptom: str
    side: str
    start_ns: int
    end_ns: int
    cause: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """``(symptom, side)``."""
        return (self.symptom, self.side)


@dataclass(frozen=True, slots=True)
class Tolerance:
    """The matching window around a truth episode, in seconds of event time.

    Attributes:
        pre_s: a detection may start this long before the truth episode (design: 5 s).
        post_s: or this long after it ended (design: 10 s).
        merge_s: truth episodes of one ``(symptom, side)`` separated by less than this are one
            episode (:func:`merge_close`): an alert that must stay clear for its release time
            (10–30 s) before it ends cannot, and should not, resolve shorter gaps.
    """

    pre_s: float = 5.0
    post_s: float = 10.0
    merge_s: float = 10.0


DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True, slots=True)
class MatchResult:
    """How the detected episodes of one ``(symptom, side)`` matched the truth episodes.

    Indices refer to the sequences given to :func:`match_episodes`.

    Attributes:
        pairs: ``(truth index, detected index)`` of every match, in detection order.
        redundant: detected episodes eligible only for truth episodes already matched.
        false: detected episodes eligible for no truth episode.
        missed: truth episodes never matched, in index order.
        latencies_s: ``detected start − truth start`` of each pair, in seconds.
        end_latencies_s: ``detected end − truth end`` of each pair, in seconds.
    """

    pairs: tuple[tuple[int, int], ...]
    redundant: tuple[int, ...]
    false: tuple[int, ...]
    missed: tuple[int, ...]
    latencies_s: tuple[float, ...]
    end_latencies_s: tuple[float, ...] = ()


def match_episodes(
    truth: Sequence[Episode],
    detected: Sequence[Episode],
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> MatchResult:
    """Match detected to truth episodes one-to-one (see the module docstring).

    All episodes are assumed to share one ``(symptom, side)``; use :func:`group_by_key` first.

    Args:
        truth: ground-truth episodes.
        detected: detected episodes.
        tolerance: the matching window.

    Returns:
        The matching.
    """
    pre = round(tolerance.pre_s * _NS)
    post = round(tolerance.post_s * _NS)
    windows = [(t.start_ns - pre, t.end_ns + post) for t in truth]
    matched = [False] * len(truth)
    pairs: list[tuple[int, int]] = []
    redundant: list[int] = []
    false: list[int] = []
    latencies: list[float] = []
    end_latencies: list[float] = []
    order = sorted(range(len(detected)), key=lambda j: (detected[j].start_ns, j))
    for j in order:
        a = detected[j].start_ns
        best: int | None = None
        eligible = False
        for i, (lo, hi) in enumerate(windows):
            if not lo <= a <= hi:
                continue
            eligible = True
            if matched[i]:
                continue
            if best is None or (hi, truth[i].start_ns) < (windows[best][1], truth[best].start_ns):
                best = i
        if best is not None:
            matched[best] = True
            pairs.append((best, j))
            latencies.append((a - truth[best].start_ns) / _NS)
            end_latencies.append((detected[j].end_ns - truth[best].end_ns) / _NS)
        elif eligible:
            redundant.append(j)
        else:
            false.append(j)
    missed = tuple(i for i, m in enumerate(matched) if not m)
    return MatchResult(
        tuple(pairs),
        tuple(redundant),
        tuple(false),
        missed,
        tuple(latencies),
        tuple(end_latencies),
    )


def group_by_key(episodes: Iterable[Episode]) -> dict[tuple[str, str], list[Episode]]:
    """Episodes by ``(symptom, side)``, each list in start order."""
    out: dict[tuple[str, str], list[Episode]] = {}
    for e in episodes:
        out.setdefault(e.key, []).append(e)
    for lst in out.values():
        lst.sort(key=lambda e: (e.start_ns, e.end_ns))
    return out


def time_outside(detected: Sequence[Episode], truth: Sequence[Episode]) -> tuple[int, int]:
    """``(firing ns, firing ns outside every truth episode)`` of the detections (one key).

    Truth episodes are taken as they are (no matching tolerance): a detection that starts
    early or ends late accrues the difference.
    """
    spans = sorted((t.start_ns, t.end_ns) for t in truth)
    total = outside = 0
    for d in detected:
        a, b = d.start_ns, d.end_ns
        if b <= a:
            continue
        total += b - a
        covered = 0
        for s, e in spans:
            lo, hi = max(a, s), min(b, e)
            if hi > lo:
                covered += hi - lo
        outside += (b - a) - covered
    return total, outside


def merge_close(episodes: Sequence[Episode], gap_s: float) -> list[Episode]:
    """Merge episodes (of one key) whose gap ``next start − previous end`` is below ``gap_s``.

    Returns:
        The merged episodes in start order (a merged episode spans its parts).
    """
    gap = round(gap_s * _NS)
    out: list[Episode] = []
    for e in sorted(episodes, key=lambda e: (e.start_ns, e.end_ns)):
        if out and e.start_ns - out[-1].end_ns < gap:
            last = out[-1]
            out[-1] = Episode(
                last.symptom, last.side, last.start_ns, max(last.end_ns, e.end_ns), last.cause
            )
        else:
            out.append(e)
    return out
