"""Embedded venues on loopback (see :mod:`.binance`): a real capture or a simulated market.

``mmradar demo`` runs the whole service against one (two in lockstep for a simulated scenario
with a perpetual); end-to-end tests use them as the fake exchange. :mod:`.source` holds the
pluggable frame sources of the Binance venue.
"""

from .binance import EmbeddedBinance, VenueStats
from .capture import CaptureError, capture_path, load_capture
from .source import (
    CaptureSource,
    FrameSource,
    SimulatedPerpSource,
    SimulatedSource,
    capture_from_run,
)

__all__ = [
    "CaptureError",
    "CaptureSource",
    "EmbeddedBinance",
    "FrameSource",
    "SimulatedPerpSource",
    "SimulatedSource",
    "VenueStats",
    "capture_from_run",
    "capture_path",
    "load_capture",
]
