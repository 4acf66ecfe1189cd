"""An embedded Binance venue on loopback, replaying a real capture (see :mod:`.binance`).

``mmradar demo`` runs the whole service against it; end-to-end tests use it as the fake exchange.
"""

from .binance import EmbeddedBinance, VenueStats
from .capture import CaptureError, capture_path, load_capture

__all__ = ["CaptureError", "EmbeddedBinance", "VenueStats", "capture_path", "load_capture"]
