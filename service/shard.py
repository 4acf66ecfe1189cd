"""Splitting the configured (exchange, symbol) pairs between replicas (``shard = "i/n"``).

Every replica reads the same configuration and keeps only its own share of the pairs, so n
replicas together watch every pair exactly once, with no coordination between them:

* the pairs are put in one canonical order — exchange name, then the symbol folded to lower
  case — independent of how the file lists them;
* that list is cut into n contiguous blocks whose sizes differ by at most one, and replica i
  (counting from 0) owns block i.

Contiguous blocks (rather than round-robin or hashing) keep one venue's symbols together, so a
replica opens as few venue connections as possible, and the load is balanced to within one
pair. The price is that adding a pair can move its neighbours to another replica — harmless,
since a configuration change restarts every replica anyway (a StatefulSet rolls them all).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import ConfigError

__all__ = ["Shard", "parse_shard", "shard_pairs"]

_SHARD: Final = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


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


def shard_pairs(pairs: Sequence[tuple[str, str]], shard: Shard) -> list[tuple[str, str]]:
    """The pairs replica ``shard`` owns, in canonical order (see the module docstring)."""
    ordered = sorted(set(pairs), key=lambda pair: (pair[0], pair[1].casefold(), pair[1]))
    n = len(ordered)
    start = shard.index * n // shard.count
    stop = (shard.index + 1) * n // shard.count
    return ordered[start:stop]
