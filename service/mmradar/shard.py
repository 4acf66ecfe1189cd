"""Splitting the configured (exchange, symbol) pairs between replicas (``shard = "i/n"``).

Every replica reads the same configuration and keeps only its own share of the pairs, so n
replicas together watch every pair exactly once, with no coordination between them:

* the pairs are grouped by canonical instrument (:mod:`mmradar.instruments`: BTCUSDT on Binance,
  BTC-USD on Coinbase and BTC/USD on Kraken are one group), so that every venue of an
  instrument lands on the same replica and the cross-venue view
  (:mod:`mmradar.signals.crossvenue`) still compares all of them; a pair whose symbol names no
  recognizable instrument is a group of its own;
* the groups are dealt out largest first (ties in canonical order: instrument id), each to the
  replica holding the fewest pairs so far (ties: the lowest index).

The result depends only on the set of pairs, not on how the file lists them. Replicas are
balanced to within the size of the largest group (one instrument on six venues: six pairs).
Adding a pair can move other groups to another replica — harmless, since a configuration
change restarts every replica anyway (a StatefulSet rolls them all).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from .errors import ConfigError

__all__ = ["Shard", "parse_shard", "shard_pairs"]

_SHARD: Final = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")

Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Shard:
    """Replica ``index`` of ``count`` (``0 <= index < count``)."""

    index: int = 0
    count: int = 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, path: str = "shard") -> Shard:
    """Parse ``"i/n"``.

    Raises:
        ConfigError: not of the form ``i/n`` with ``n >= 1`` and ``0 <= i < n``.
    """
    match = _SHARD.fullmatch(text)
    if match is None:
        raise ConfigError(path, f"expected 'index/count', e.g. '0/2', got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise ConfigError(path, f"the count must be at least 1, got {text!r}")
    if index >= count:
        raise ConfigError(
            path, f"the index counts from 0 and must be less than the count, got {text!r}"
        )
    return Shard(index, count)


def _pair_key(pair: Pair) -> tuple[str, str, str]:
    return (pair[0], pair[1].casefold(), pair[1])


def shard_pairs(
    pairs: Sequence[Pair], shard: Shard, group: Callable[[Pair], str | None] | None = None
) -> list[Pair]:
    """The pairs replica ``shard`` owns, in canonical order (see the module docstring).

    Args:
        pairs: the configured ``(exchange, symbol)`` pairs.
        shard: this replica.
        group: the pair's canonical instrument id (``None``: a group of its own); without it,
            every pair is a group of its own.
    """
    groups: dict[str, list[Pair]] = {}
    for pair in sorted(set(pairs), key=_pair_key):
        instrument = group(pair) if group is not None else None
        key = f"i:{instrument}" if instrument is not None else f"p:{pair[0]}:{pair[1]}"
        groups.setdefault(key, []).append(pair)
    loads = [0] * shard.count
    owned: list[Pair] = []
    for _, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        target = min(range(shard.count), key=lambda i: (loads[i], i))
        loads[target] += len(members)
        if target == shard.index:
            owned.extend(members)
    return sorted(owned, key=_pair_key)
