"""Helpers for the Coinbase end-to-end tests: the service against the embedded venue, scraped."""

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
from fakes.coinbase import EmbeddedCoinbase
from mmradar.model import BAND_BPS

__all__ = [
    "EXCHANGE",
    "Running",
    "Samples",
    "assert_matches",
    "fast_backoff",
    "in_sync",
    "mismatches",
    "parse_metrics",
    "sample",
    "wait_in_sync",
]

EXCHANGE = "coinbase"


def reference(venue: EmbeddedCoinbase, product: str) -> dict[str, float]:
    """Every expected market-state value of ``product``, from the venue's ground truth."""
    return market_reference(*venue.truth_book(product), venue.taker_volume(product))


def observed(samples: Samples, product: str) -> dict[str, float]:
    return market_observed(samples, EXCHANGE, product)


def valid(samples: Samples, product: str) -> bool:
    return sample(samples, "mmradar_book_valid", exchange=EXCHANGE, symbol=product) == 1


def resyncs(samples: Samples, product: str, reason: str) -> float:
    return sample(
        samples, "mmradar_book_resyncs_total", exchange=EXCHANGE, symbol=product, reason=reason
    )


def mismatches(samples: Samples, venue: EmbeddedCoinbase) -> list[tuple[object, ...]]:
    """Every exported market-state value of every product that differs from the truth.

    Books must be valid and complete beyond the widest band (Coinbase's snapshot is the whole
    book, so no band is a lower bound); the touch and level counts must be exact, every other
    value equal within 1e-9.
    """
    bad: list[tuple[object, ...]] = []
    for product in venue.products:
        if not valid(samples, product):
            bad.append((product, "valid", 0.0, 1.0))
            continue
        complete = min(
            sample(
                samples, "mmradar_book_complete_within_bps",
                exchange=EXCHANGE, symbol=product, side=side,
            )
            for side in ("bid", "ask")
        )  # fmt: skip
        if not complete > max(BAND_BPS):
            bad.append((product, "complete_within_bps", complete, max(BAND_BPS)))
        ref, got = reference(venue, product), observed(samples, product)
        for key, want in ref.items():
            if key in ("bid", "ask", "levels_bid", "levels_ask"):
                same = got[key] == want
            else:
                same = math.isclose(got[key], want, rel_tol=1e-9, abs_tol=1e-9)
            if not same:
                bad.append((product, key, got[key], want))
    return bad


def in_sync(venue: EmbeddedCoinbase) -> Callable[[Samples], bool]:
    """Every product's book valid and every exported value equal to the truth.

    The whole comparison, not a part of it: a scrape can be served while the venue's last
    frames are still on their way to the service, and a partial check (touch and level counts)
    passes on a book one size change behind (a resize near the touch moves a depth band but
    neither the touch nor the level count).
    """
    return lambda samples: not mismatches(samples, venue)


def assert_matches(samples: Samples, venue: EmbeddedCoinbase) -> None:
    """Every market-state value of every product equals the one computed from the truth."""
    bad = mismatches(samples, venue)
    assert not bad, bad


async def wait_in_sync(running: Running[EmbeddedCoinbase], what: str) -> Samples:
    """Wait until the service's exports equal the (paused) venue's truth.

    Raises:
        AssertionError: they never did; the message lists the values that differ.
    """
    try:
        return await running.wait_for(in_sync(running.venue), what=what)
    except AssertionError:
        assert_matches(await running.scrape(), running.venue)
        raise
