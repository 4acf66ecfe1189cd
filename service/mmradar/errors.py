"""The exception tree of mmradar. Every exception the service raises derives from one root.

::

    MMRadarError
    ├── ConfigError                 bad configuration (exit code 2); carries the key path
    │   └── ContractError           a derivative whose contract size cannot be known (exit code 2)
    ├── ParseError                  a venue frame could not be turned into events (counted, dropped)
    │   ├── MalformedMessage        not JSON, or JSON of the wrong shape
    │   └── UnknownMessage          well-formed, but of a kind the venue module does not know
    ├── SnapshotError               a REST snapshot request failed
    │   └── RateLimited             HTTP 429/418 from the venue; carries the back-off in seconds
    └── FeedError                   a connection-level failure the feed runner reconnects on
        ├── StaleFeed               nothing at all arrived within the venue's heartbeat window
        └── VenueClosing            the venue announced a disconnect (Binance ``serverShutdown``)

Sequence gaps, checksum failures and crossed books are *not* exceptions: they are transitions of
the book synchroniser (:mod:`mmradar.book.sync`) counted in ``mmradar_book_resyncs_total``.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ContractError",
    "FeedError",
    "MMRadarError",
    "MalformedMessage",
    "ParseError",
    "RateLimited",
    "SnapshotError",
    "StaleFeed",
    "UnknownMessage",
    "VenueClosing",
]

_MAX_PAYLOAD_CHARS = 200


def truncate(payload: bytes | str, limit: int = _MAX_PAYLOAD_CHARS) -> str:
    """Return a printable, bounded excerpt of a payload for error messages and logs."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return text if len(text) <= limit else text[:limit] + f"...(+{len(text) - limit} chars)"


class MMRadarError(Exception):
    """Root of every exception raised by mmradar."""


class ConfigError(MMRadarError):
    """A configuration value is missing, unknown or invalid.

    Attributes:
        path: dotted key path of the offending key, e.g. ``feeds[0].ws_url``.
        reason: short lowercase explanation.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


class ContractError(ConfigError):
    """A configured derivative whose venue quantities cannot be converted to base units.

    Raised before any connection: when the service is built (a symbol of a kind the venue module
    refuses, e.g. an option or an inverse Bybit contract) or by the start-up fetch of the venue's
    instrument metadata (the venue does not list the symbol, or lists no contract value). The
    service refuses to run rather than read contracts as coins (exit code 2, like any
    configuration error; docs/venues/okx.md "Contract sizes").
    """

    def __init__(self, exchange: str, symbol: str, reason: str) -> None:
        super().__init__(f"{exchange} {symbol}", reason)
        self.exchange = exchange
        self.symbol = symbol


class ParseError(MMRadarError):
    """A venue frame could not be parsed. ``reason`` is a short label used as a metric label."""

    reason = "malformed"

    def __init__(
        self,
        venue: str,
        message: str,
        payload: bytes | str = b"",
        *,
        symbols: tuple[str, ...] = (),
    ) -> None:
        excerpt = truncate(payload) if payload else ""
        super().__init__(f"{venue}: {message}" + (f": {excerpt}" if excerpt else ""))
        self.venue = venue
        #: the books whose depth update the frame carried (lost with it: they are resynced)
        self.symbols = symbols


class MalformedMessage(ParseError):
    """Not JSON, or JSON whose shape does not match the venue's wire format."""

    reason = "malformed"


class UnknownMessage(ParseError):
    """Well-formed JSON of a message kind the venue module does not handle."""

    reason = "unknown"


class SnapshotError(MMRadarError):
    """A REST depth snapshot could not be fetched or parsed."""


class RateLimited(SnapshotError):
    """The venue answered 429 (rate limited) or 418 (IP banned); wait ``retry_after_s``."""

    def __init__(self, status: int, retry_after_s: float) -> None:
        super().__init__(f"rate limited (HTTP {status}); retry after {retry_after_s:.0f} s")
        self.status = status
        self.retry_after_s = retry_after_s


class FeedError(MMRadarError):
    """A connection-level failure; the feed runner reconnects with back-off."""

    reason = "error"


class StaleFeed(FeedError):
    """Nothing at all (data or pings) arrived on a connection for too long."""

    reason = "stale"


class VenueClosing(FeedError):
    """The venue announced that it will close the connection."""

    reason = "venue_closing"
