"""The configuration schema: every table and key of the TOML file, declared once.

Each key is an annotated field of a :class:`~mmradar.table.Table` (a frozen msgspec ``Struct``
refusing unknown keys): type, default, bounds (``Meta(gt=..., ge=..., le=...)``), unit and a
one-line description. The ``[signals]`` table is :class:`~mmradar.signals.params.SignalSettings`.
:mod:`mmradar.config.load` converts a document into :class:`ConfigFile`;
:mod:`mmradar.config.render` generates the key reference (docs/configuration.md), the commented
reference of ``defaults/default.toml`` and the effective configuration from the same classes.

The runtime views that differ from the file's shape are here too: :class:`HttpSettings` (the
``listen`` address split into host and port), :class:`WebhookSettings` (the URL with its
``${NAME}`` references resolved) and :class:`Settings` (the whole configuration, sharded).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from types import MappingProxyType
from typing import Annotated, Final
from urllib.parse import SplitResult, urlsplit

import msgspec
from msgspec import Meta

from ..shard import Shard
from ..signals.params import SignalSettings
from ..table import FieldError, Table

__all__ = [
    "DEFAULT_STALE_AFTER_SECONDS",
    "DEFAULT_SUPPORTED_EXCHANGES",
    "FALLBACK_STALE_AFTER_SECONDS",
    "KNOWN_EXCHANGES",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "WEBHOOK_FORMATS",
    "ConfigFile",
    "FeedSettings",
    "FlightRecorderSettings",
    "HttpSettings",
    "HttpTable",
    "LogSettings",
    "Settings",
    "SignalSettings",
    "WebhookSettings",
    "WebhookTable",
    "mask_url",
    "split_listen",
    "split_url",
]

KNOWN_EXCHANGES: Final = ("binance", "binance-usdm", "coinbase", "kraken", "okx", "bybit")
"""Every exchange name of the contract, implemented or not."""

DEFAULT_STALE_AFTER_SECONDS: Final[Mapping[str, float]] = MappingProxyType(
    {
        # Publish-on-change depth streams: a quiet pair is silent for as long as its book does
        # not change (tens of seconds routinely); two minutes without a change of a
        # 1000-5000-level book is not routine.
        "binance": 120.0,  # <symbol>@depth@100ms: sent only when the book changed
        "binance-usdm": 120.0,  # <symbol>@depth@100ms: likewise
        "coinbase": 120.0,  # level2: on change (the heartbeats channel is per connection)
        "kraken": 120.0,  # book: on change (heartbeats ~1 s are per connection)
        "bybit": 120.0,  # orderbook.1000: deltas on change, every 200 ms at most
        # OKX sends every book an update even when nothing changed, about every 60 s: two of
        # those periods.
        "okx": 120.0,
    }
)
"""``[[feeds]] stale_after_seconds`` when a table does not set it, per exchange (README
"Staleness, resyncs and back-off"). A stale book is not resynced, so the value only decides how
long a silent book keeps reading valid; connection liveness is the venue's heartbeat window."""

FALLBACK_STALE_AFTER_SECONDS: Final = 120.0
"""The default for an exchange missing from :data:`DEFAULT_STALE_AFTER_SECONDS`."""

DEFAULT_SUPPORTED_EXCHANGES: Final = KNOWN_EXCHANGES
"""Venues accepted when the caller does not pass ``supported`` (the CLI passes the real list)."""

WEBHOOK_FORMATS: Final = ("json", "slack", "discord")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("text", "json")

_HOSTNAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_LISTEN_EXAMPLE: Final = "expected 'host:port', e.g. '127.0.0.1:9464' or '[::1]:9464'"


# --------------------------------------------------------------------------------------------
# Value checks shared by the tables and the loader (they raise ValueError with the reason)
# --------------------------------------------------------------------------------------------


def split_listen(text: str) -> tuple[str, int]:
    """Split a ``host:port`` listen address (IPv6 hosts in brackets).

    Raises:
        ValueError: the reason the address is invalid.
    """
    bad = f"invalid listen address {text!r}"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ValueError(f"{bad}: missing ']' ({_LISTEN_EXAMPLE})")
        try:
            IPv6Address(host)
        except ValueError:
            raise ValueError(f"{bad}: {host!r} is not an IPv6 address") from None
        if not rest.startswith(":"):
            raise ValueError(f"{bad}: missing port ({_LISTEN_EXAMPLE})")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ValueError(f"{bad}: {_LISTEN_EXAMPLE}")
        if ":" in host:
            raise ValueError(f"{bad}: an IPv6 host must be in brackets, e.g. '[::1]:9464'")
        if not host:
            raise ValueError(f"{bad}: missing host (use 0.0.0.0 for all interfaces)")
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"{bad}: {host!r} is not a host name or address")
    if not (port_text.isascii() and port_text.isdigit()):
        raise ValueError(f"{bad}: port must be an integer 0-65535")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"{bad}: port {port} is out of range 0-65535")
    return host, port


def split_url(text: str, schemes: tuple[str, ...], shown: str) -> SplitResult:
    """Check the parts common to every URL; ``shown`` is how the URL appears in messages.

    Raises:
        ValueError: the reason the URL is invalid.
    """
    bad = f"invalid URL {shown}"
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"{bad}: {exc}") from None
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"{bad}: expected {schemes[-1]}://host[:port]")
    if any(ch.isspace() for ch in text):
        raise ValueError(f"{bad}: must not contain whitespace")
    try:
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        raise ValueError(f"{bad}: {exc}") from None
    if parts.scheme not in schemes:
        raise ValueError(f"{bad}: scheme must be {' or '.join(schemes)}")
    if not parts.hostname:
        raise ValueError(f"{bad}: missing host")
    return parts


def _base_url(text: str, schemes: tuple[str, ...]) -> str:
    """``scheme://host[:port]`` of a base URL; ValueError when it has more (or less)."""
    parts = split_url(text, schemes, repr(text))
    bad = f"invalid URL {text!r}"
    if "@" in parts.netloc:
        raise ValueError(f"{bad}: must not contain user info")
    if parts.path not in ("", "/"):
        raise ValueError(
            f"{bad}: expected a base URL {schemes[-1]}://host[:port] without a path "
            f"(got {parts.path!r}); the venue's own paths are appended"
        )
    if "?" in text or "#" in text:
        raise ValueError(f"{bad}: must not have a query or fragment")
    return f"{parts.scheme}://{parts.netloc}"


def mask_url(url: str) -> str:
    """Hide everything after the host of a URL (path, query, fragment and user info).

    Args:
        url: any string.

    Returns:
        ``scheme://host[:port]`` unchanged when there is nothing to hide, else
        ``scheme://host[:port]/***``; ``***`` when the string is not a URL at all.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if not parts.scheme or not parts.netloc:
        return "***"
    netloc = parts.netloc.rpartition("@")[2]
    base = f"{parts.scheme}://{netloc}"
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc
    return f"{base}/***" if hidden else url


# --------------------------------------------------------------------------------------------
# The tables
# --------------------------------------------------------------------------------------------


class HttpTable(Table, frozen=True):
    """The ``[http]`` table as written (the service reads :class:`HttpSettings`)."""

    listen: Annotated[
        str,
        Meta(
            description="host:port serving /metrics, /healthz and /readyz; IPv6 as "
            '"[::1]:9464"; "0.0.0.0:9464" for all interfaces; port 0 picks a free port'
        ),
    ] = "127.0.0.1:9464"

    def check(self) -> None:
        try:
            split_listen(self.listen)
        except ValueError as exc:
            raise FieldError("listen", str(exc)) from None


_NonEmpty = Annotated[str, Meta(min_length=1)]
_STALE_DEFAULT_TEXT: Final = "per exchange: " + (
    f"{FALLBACK_STALE_AFTER_SECONDS:g} on every venue"
    if set(DEFAULT_STALE_AFTER_SECONDS.values()) == {FALLBACK_STALE_AFTER_SECONDS}
    else ", ".join(f"{k} {v:g}" for k, v in DEFAULT_STALE_AFTER_SECONDS.items())
)


class FeedSettings(Table, frozen=True):
    """One ``[[feeds]]`` table: a set of symbols on one exchange.

    The tables of one exchange run as one feed: the service merges them with
    :func:`~mmradar.config.merge_feeds` (the configuration guarantees they agree on every
    option). ``stale_after_seconds`` left at 0 is filled in with the exchange's
    :data:`DEFAULT_STALE_AFTER_SECONDS` at construction, so the attribute always holds the
    value in force; ``ws_url`` and ``rest_url`` are reduced to ``scheme://host[:port]``.
    """

    exchange: Annotated[
        str,
        Meta(
            description=f"{' | '.join(KNOWN_EXCHANGES)}; only the venues implemented in this "
            "build are accepted",
            extra={"default_text": "required"},
        ),
    ]
    symbols: Annotated[
        tuple[_NonEmpty, ...],
        Meta(
            min_length=1,
            description="the venue's own spelling (BTCUSDT, BTC-USD, BTC/USD, ...); a symbol "
            "may appear only once per exchange across all feeds (case-insensitively)",
            extra={"default_text": "required"},
        ),
    ]
    trades: Annotated[bool, Meta(description="also subscribe to the venue's trade stream")] = True
    stale_after_seconds: Annotated[
        float,
        Meta(
            gt=0,
            description="a book with no depth message for this long is stale: "
            "mmradar_book_valid 0 and no signals, but not resynced; the next depth message "
            "that continues the venue's sequence (or passes its checksum) makes it valid again",
            extra={"unit": "s", "default_text": _STALE_DEFAULT_TEXT},
        ),
    ] = 0.0
    ws_url: Annotated[
        str | None,
        Meta(
            description="base URL scheme://host[:port] (ws or wss, no path, query or fragment) "
            "replacing the venue's websocket host; the venue's own paths are appended",
            extra={"default_text": "the venue's"},
        ),
    ] = None
    rest_url: Annotated[
        str | None,
        Meta(
            description="the same for the REST snapshot host (http or https)",
            extra={"default_text": "the venue's"},
        ),
    ] = None

    def check(self) -> None:
        for j, symbol in enumerate(self.symbols):
            if any(ch.isspace() for ch in symbol):
                raise FieldError(f"symbols[{j}]", f"must not contain whitespace, got {symbol!r}")
        for key, schemes in (("ws_url", ("ws", "wss")), ("rest_url", ("http", "https"))):
            url = getattr(self, key)
            if url is not None:
                try:
                    msgspec.structs.force_setattr(self, key, _base_url(url, schemes))
                except ValueError as exc:
                    raise FieldError(key, str(exc)) from None
        if not self.stale_after_seconds:
            default = DEFAULT_STALE_AFTER_SECONDS.get(self.exchange, FALLBACK_STALE_AFTER_SECONDS)
            msgspec.structs.force_setattr(self, "stale_after_seconds", default)


class WebhookTable(Table, frozen=True):
    """One ``[[webhooks]]`` table as written (the service reads :class:`WebhookSettings`)."""

    url: Annotated[
        str,
        Meta(
            min_length=1,
            description='http or https; "${NAME}" (the whole value or a part of it) is replaced '
            "by the environment variable NAME at load time, so secrets need not be written in "
            "the file; an unset or empty variable is an error",
            extra={"default_text": "required"},
        ),
    ]
    format: Annotated[
        str, Meta(description="the payload's shape", extra={"choices": WEBHOOK_FORMATS})
    ] = "json"


class LogSettings(Table, frozen=True):
    """The ``[log]`` table."""

    level: Annotated[
        str,
        Meta(
            description="case-insensitive",
            extra={"choices": LOG_LEVELS, "fold_case": True},
        ),
    ] = "info"
    format: Annotated[
        str,
        Meta(description="json: one JSON object per line", extra={"choices": LOG_FORMATS}),
    ] = "text"


class FlightRecorderSettings(Table, frozen=True):
    """The ``[flight_recorder]`` table: the raw frames behind every alert (:mod:`mmradar.flight`,
    docs/reliability.md "Flight recorder")."""

    directory: Annotated[
        str,
        Meta(description='where recordings go; "" means <temp dir>/mmradar-flight'),
    ] = ""
    pre_seconds: Annotated[
        float,
        Meta(
            gt=0,
            description="receive time recorded before an episode start or an integrity resync "
            "(at least; the ring holds up to checkpoint_seconds more)",
            extra={"unit": "s"},
        ),
    ] = 120.0
    post_seconds: Annotated[
        float, Meta(ge=0, description="receive time recorded after it", extra={"unit": "s"})
    ] = 30.0
    checkpoint_seconds: Annotated[
        float,
        Meta(gt=0, description="a feed's state is checkpointed this often", extra={"unit": "s"}),
    ] = 60.0
    ring_mib_per_instrument: Annotated[
        float,
        Meta(
            gt=0,
            description="the ring's memory bound per instrument of the feed",
            extra={"unit": "MiB"},
        ),
    ] = 4.0
    max_files: Annotated[
        int,
        Meta(ge=0, description="recordings kept, the oldest deleted first; 0 turns it off"),
    ] = 20
    max_total_mib: Annotated[
        float, Meta(gt=0, description="total size of the recordings kept", extra={"unit": "MiB"})
    ] = 256.0

    @property
    def enabled(self) -> bool:
        """False when ``max_files`` is 0."""
        return self.max_files > 0


class ConfigFile(Table, frozen=True, kw_only=True):
    """The whole TOML document as written, before environment overrides are resolved into
    :class:`Settings`."""

    shard: Annotated[
        str,
        Meta(
            description='this replica\'s share "i/n" of the configured (exchange, symbol) '
            "pairs: n replicas with one file and shards 0/n .. (n-1)/n watch every pair exactly "
            "once, every venue of an instrument on one replica (docs/fleet.md); env "
            "MMRADAR_SHARD beats the file"
        ),
    ] = "0/1"
    http: HttpTable = msgspec.field(default_factory=HttpTable)
    feeds: Annotated[tuple[FeedSettings, ...], Meta(min_length=1)]
    webhooks: tuple[WebhookTable, ...] = ()
    signals: SignalSettings = msgspec.field(default_factory=SignalSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    flight_recorder: FlightRecorderSettings = msgspec.field(default_factory=FlightRecorderSettings)


# --------------------------------------------------------------------------------------------
# Runtime views
# --------------------------------------------------------------------------------------------

_DEFAULT_HOST, _DEFAULT_PORT = split_listen(HttpTable().listen)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Where ``/metrics``, ``/healthz`` and ``/readyz`` are served (``[http] listen``, split).

    Attributes:
        host: interface to bind (an IPv6 address without brackets, e.g. ``::1``).
        port: TCP port; 0 asks the OS for a free one (tests).
    """

    host: str = _DEFAULT_HOST
    port: int = _DEFAULT_PORT

    @property
    def listen(self) -> str:
        """The ``host:port`` form of the configuration, IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """One ``[[webhooks]]`` table, its URL resolved.

    Attributes:
        url: the resolved URL (``${NAME}`` references replaced). A secret: never print it; use
            :attr:`display_url`. It is left out of ``repr``.
        format: ``json``, ``slack`` or ``discord``.
        url_template: the URL as written, when it contains ``${NAME}`` references; else None.
    """

    url: str = field(repr=False)
    format: str = WEBHOOK_FORMATS[0]
    url_template: str | None = None

    @property
    def display_url(self) -> str:
        """The URL safe to print: the template if there is one, else :func:`mask_url`."""
        return self.url_template if self.url_template is not None else mask_url(self.url)


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole, validated configuration.

    Attributes:
        feeds: the ``[[feeds]]`` tables this replica runs: the configured ones restricted to
            the pairs its ``shard`` owns (all of them with the default shard ``0/1``); tables
            left without a symbol are dropped. Several tables of one exchange agree on every
            option and run as one feed (:func:`~mmradar.config.merge_feeds`).
        configured_feeds: every configured feed, before sharding.
        shard: which share of the configured (exchange, symbol) pairs this replica owns.
    """

    http: HttpSettings
    feeds: tuple[FeedSettings, ...]
    webhooks: tuple[WebhookSettings, ...]
    signals: SignalSettings
    log: LogSettings
    shard: Shard = field(default_factory=Shard)
    flight_recorder: FlightRecorderSettings = field(default_factory=FlightRecorderSettings)
    configured_feeds: tuple[FeedSettings, ...] = ()
