"""The Kraken end-to-end reference: every exported measure recomputed from the venue's truth.

The embedded venue's truth is the book a depth-1000 subscriber holds (its own integer-unit book,
written independently of the service's), printed as the wire's text. The reference below
recomputes every market-state measure from it with the definitions of docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from e2e.harness import (
    Running,
    Samples,
    fast_backoff,
    market_observed,
    market_reference,
    parse_metrics,
    sample,
)
from fakes.kraken import EmbeddedKraken

__all__ = ["DEPTH", "EXCHANGE", "KrakenRunning", "Samples", "fast_backoff", "parse_metrics"]

EXCHANGE = "kraken"
DEPTH = 1000

#: the service against the embedded Kraken venue
KrakenRunning = Running[EmbeddedKraken]


def reference(venue: EmbeddedKraken, symbol: str) -> dict[str, float]:
    return market_reference(*venue.truth_book(symbol, DEPTH), venue.taker_volume(symbol))


def observed(samples: Samples, symbol: str) -> dict[str, float]:
    return market_observed(samples, EXCHANGE, symbol)


def valid(samples: Samples, symbol: str) -> bool:
    return sample(samples, "mmradar_book_valid", exchange=EXCHANGE, symbol=symbol) == 1


def resyncs(samples: Samples, symbol: str, reason: str) -> float:
    return sample(
        samples, "mmradar_book_resyncs_total", exchange=EXCHANGE, symbol=symbol, reason=reason
    )


def in_sync(venue: EmbeddedKraken, symbol: str) -> Callable[[Samples], bool]:
    """Every exported measure equals the venue's truth (as :func:`assert_matches` judges it):
    a frame still in flight after a pause may change a level inside a band without moving the
    touch or the level counts, so waiting on those alone races the last update."""

    def check(samples: Samples) -> bool:
        if not valid(samples, symbol):
            return False
        ref = reference(venue, symbol)
        got = observed(samples, symbol)
        return all(got[k] == ref[k] for k in ("bid", "ask", "levels_bid", "levels_ask")) and all(
            math.isclose(got[k], want, rel_tol=1e-9, abs_tol=1e-9) for k, want in ref.items()
        )

    return check


def assert_matches(venue: EmbeddedKraken, samples: Samples, symbol: str) -> None:
    """Every exported measure equals the reference (exactly where it is not a float sum)."""
    ref = reference(venue, symbol)
    got = observed(samples, symbol)
    assert valid(samples, symbol)
    for key in ("bid", "ask", "levels_bid", "levels_ask"):
        assert got[key] == ref[key], key
    for key, want in ref.items():
        assert math.isclose(got[key], want, rel_tol=1e-9, abs_tol=1e-9), (key, got[key], want)
