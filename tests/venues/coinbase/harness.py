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

__all__ = ["EXCHANGE", "Running", "Samples", "fast_backoff", "parse_metrics", "sample"]

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


def in_sync(venue: EmbeddedCoinbase) -> Callable[[Samples], bool]:
    """Every product's book valid, its touch and level counts and taker volumes exact."""

    def check(samples: Samples) -> bool:
        for product in venue.products:
            if not valid(samples, product):
                return False
            ref, got = reference(venue, product), observed(samples, product)
            if any(got[k] != ref[k] for k in ("bid", "ask", "levels_bid", "levels_ask")):
                return False
            if any(
                not math.isclose(got[k], ref[k], rel_tol=1e-12, abs_tol=1e-12)
                for k in ("taker_buy", "taker_sell")
            ):
                return False
        return True

    return check


def assert_matches(samples: Samples, venue: EmbeddedCoinbase) -> None:
    """Every market-state value of every product equals the one computed from the truth.

    Coinbase's snapshot is the whole book, so every depth band is complete (no lower bounds).
    """
    for product in venue.products:
        assert valid(samples, product), product
        complete = min(
            sample(
                samples, "mmradar_book_complete_within_bps",
                exchange=EXCHANGE, symbol=product, side=side,
            )
            for side in ("bid", "ask")
        )  # fmt: skip
        assert complete > max(BAND_BPS), (product, complete)
        ref, got = reference(venue, product), observed(samples, product)
        for key in ("bid", "ask", "levels_bid", "levels_ask"):
            assert got[key] == ref[key], (product, key, got[key], ref[key])
        for key, want in ref.items():
            assert math.isclose(got[key], want, rel_tol=1e-9, abs_tol=1e-9), (
                product, key, got[key], want,
            )  # fmt: skip
