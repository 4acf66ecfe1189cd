"""The exception tree of mmradar. Every exception the service raises derives from one root.

::

    MMRadarError
    ├── ConfigError                 bad configuration (exit code 2); carries the key path
    │   └── ContractError           a derivative whose contract size cannot be known (exit code 2)
    ├── ParseError                  a venue frame could not be turned into events (counted, dropped)
    │   ├── MalformedMessage        not JSON, or JSON of the wrong shape
    │   └── UnknownMessage          well-formed, but of a kind the venue module does not know
    ├── SnapshotError               a REST request (depth snapshot, instrument metadata) failed
    │   └── RateLimited             HTTP 429/418 from the venue; carries the back-off in seconds
    ├── RecordingError              a recording cannot be read (not one, newer format, unreadable)
    │   └── CaptureError            an hftbacktest capture the embedded venue cannot serve
    ├── CheckpointError             a pipeline state cannot be checkpointed or restored
    └── OutputError                 a result file (the scorecard) cannot be written

Every class is raised by the core; the command line (:func:`mmradar.cli.main`) turns any of them
into one line on stderr and an exit code (2 for :class:`ConfigError`, else 1). A builtin
exception that would escape a command (a file that cannot be opened or written) is wrapped at
the boundary where it leaves the core, chained with ``raise ... from``. Connection-level
failures are not exceptions of this tree: the feed runner (:mod:`mmradar.feed`) turns them into
reconnects, counted by reason in ``mmradar_feed_reconnects_total``.

Sequence gaps, checksum failures and crossed books are *not* exceptions: they are transitions of
the book synchroniser (:mod:`mmradar.book.sync`) counted in ``mmradar_book_resyncs_total``.
"""

from __future__ import annotations

__all__ = [
    "CaptureError",
    "CheckpointError",
    "ConfigError",
    "ContractError",
    "MMRadarError",
    "MalformedMessage",
    "OutputError",
    "ParseError",
    "RateLimited",
    "RecordingError",
    "SnapshotError",
    "UnitsError",
    "UnknownMessage",
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


class UnitsError(ContractError):
    """A leg of a cross-venue comparison (basis, flow lead–lag, ``hedge_pressure``) whose sizes
    are not known to be in base units.

    Flows of several venues are netted and compared only in base units (quote notional of
    base-unit sizes); a venue publishing contracts must have its contract value loaded first.
    The service refuses to start the comparison (exit code 2) rather than mix contracts with
    coins (docs/signals.md "Basis, flow lead–lag and hedge_pressure").
    """


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


class RecordingError(MMRadarError):
    """A recording cannot be read at all (not a recording, a newer format version, or a file
    that cannot be opened)."""


class CaptureError(RecordingError):
    """A capture file is not in the expected format (:mod:`mmradar.embedded.capture`).

    Attributes:
        line: 1-based line number of the offending record (0 when not about one line).
        reason: short lowercase explanation.
    """

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line else reason)
        self.line = line
        self.reason = reason


class CheckpointError(MMRadarError):
    """A pipeline's state cannot be checkpointed, or a checkpoint cannot be restored."""


class OutputError(MMRadarError):
    """A result file or directory cannot be written (``mmradar score --out``)."""
