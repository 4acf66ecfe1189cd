"""Sans-I/O venue modules and the static registry of implemented venues."""

from __future__ import annotations

from types import MappingProxyType

from .base import ConnectionPlan, FrameParser, SnapshotRequest, SnapshotSource, Venue, Verdict
from .binance import BinanceSpot, BinanceUsdm
from .bybit import Bybit
from .coinbase import Coinbase
from .kraken import Kraken
from .okx import Okx

__all__ = [
    "VENUES",
    "VENUE_NAMES",
    "ConnectionPlan",
    "FrameParser",
    "SnapshotRequest",
    "SnapshotSource",
    "Venue",
    "Verdict",
    "make_venue",
]

#: config ``exchange`` value → venue class (read-only).
VENUES: MappingProxyType[str, type[Venue]] = MappingProxyType(
    {cls.name: cls for cls in (BinanceSpot, BinanceUsdm, Bybit, Coinbase, Kraken, Okx)}
)
VENUE_NAMES: tuple[str, ...] = tuple(VENUES)


def make_venue(name: str, ws_base: str | None = None, rest_base: str | None = None) -> Venue:
    """Build the venue for config ``exchange = name`` with optional base-URL overrides."""
    return VENUES[name](ws_base=ws_base, rest_base=rest_base)
