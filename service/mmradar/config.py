"""Configuration: a TOML file (or the built-in default) plus environment overrides.

mmradar reads one TOML file (``mmradar run --config FILE``; without ``--config`` the file named
by ``MMRADAR_CONFIG``; without either, the built-in default shipped as
``defaults/default.toml`` inside the package, which watches BTC and ETH on all six venues,
plus SOLUSDT on ``binance``). Validation is strict: an unknown key, a value of the
wrong type or out of range stops the service with exit code 2 and a message naming the key path
(``feeds[1].symbols: must not be empty``). ``mmradar check-config FILE`` validates a file and
prints the effective configuration.

Keys (default in brackets)::

    shard = "0/1"               # ["0/1"] this replica's share "i/n" of the configured
                                # (exchange, symbol) pairs: n replicas with the same file and
                                # shards 0/n .. (n-1)/n watch every pair exactly once, every
                                # venue of an instrument on one replica (see mmradar/shard.py);
                                # env MMRADAR_SHARD beats the file

    [http]
    listen = "127.0.0.1:9464"   # ["127.0.0.1:9464"] host:port serving /metrics, /healthz and
                                # /readyz; IPv6 as "[::1]:9464"; "0.0.0.0:9464" for all
                                # interfaces; port 0 picks a free port

    [[feeds]]                   # one or more (required); several tables of one exchange are
                                # one feed (see "Several tables of one exchange" below)
    exchange = "binance"        # (required) binance | binance-usdm | coinbase | kraken | okx |
                                # bybit; only the venues implemented in this build are accepted
    symbols = ["BTCUSDT"]       # (required) non-empty list, in the venue's own spelling
                                # (BTCUSDT, BTC-USD, BTC/USD, ...); a symbol may appear only once
                                # per exchange across all feeds (compared case-insensitively)
    trades = true               # [true] also subscribe to the venue's trade stream
    stale_after_seconds = 120   # [the exchange's, DEFAULT_STALE_AFTER_SECONDS: 120 on every
                                # venue] a book with no depth message for this long is stale:
                                # mmradar_book_valid 0 and no signals, but not resynced; the next
                                # depth message that continues the venue's sequence (or passes
                                # its checksum) makes it valid again without a snapshot
    ws_url = "wss://host:port"  # [the venue's] base URL replacing the venue's websocket host;
                                # scheme ws or wss, no path, query or fragment; the venue's own
                                # paths and queries are appended
    rest_url = "https://host"   # [the venue's] the same for the REST snapshot host (http or https)

    Several tables of one exchange: they run as ONE feed of that exchange (:func:`merge_feeds`):
    one pipeline, one set of websocket connections, one REST weight budget, one watchdog, so
    that the exchange-keyed metrics (``mmradar_feed_messages_total{exchange}``,
    ``mmradar_feed_connected``, ``mmradar_rest_weight_used``, ...) and the venue's per-IP limits
    cover all of them. Their symbols are united; their options (``trades``,
    ``stale_after_seconds``, ``ws_url``, ``rest_url``; defaults included) must be equal, else the
    file is refused at the key that differs (``feeds[2].trades: false here, but feeds[0] does
    not set trades (default true) ...``): one connection set cannot carry per-symbol options.

    [[webhooks]]                # zero or more: direct alerts on every episode start and end
    url = "https://hooks.example/..."   # (required) http or https; "${NAME}" (the whole value or
                                # a part of it) is replaced by the environment variable NAME at
                                # load time, so secrets need not be written in the file; an unset
                                # or empty variable is an error
    format = "json"             # ["json"] json | slack | discord

    [signals]                   # detector parameters; all times are venue event time
    # -- market state
    inventory_half_life_seconds = 60        # [60] half-life of the decayed signed taker volume
                                            # behind mmradar_dealer_inventory_proxy (> 0)
    volatility_windows_seconds = [30, 300]  # [[30, 300]] windows of
                                            # mmradar_realized_volatility_bps (window="30s","5m"):
                                            # positive, strictly increasing whole seconds, each at
                                            # least two samples long
    volatility_sample_seconds = 1           # [1] mid-price sampling interval for volatility (> 0)
    # -- every detector (1-s stat clock; the on/off decision is a CUSUM, signals/sequential.py)
    warmup_seconds = 600        # [600] no episode starts until this long after start-up and
                                # after every resync (baselines fill meanwhile; >= 0)
    baseline_minutes = 30       # [30] robust baselines: median/MAD of this many 1-minute
                                # medians of 1-s samples (integer > 0)
    min_firing_seconds = 5      # [5] shortest episode (>= 0)
    cooldown_seconds = 0        # [0] quiet time after an episode ends (>= 0)
    thin_book_notional = 5000   # [5000] quote notional within 10 bps (both sides) under which
                                # a book is thin: no imbalance, skew or evaporation alert (> 0)
    arl0_hours = 8              # [8] every (symptom, side)'s CUSUM threshold gives this
                                # average run length to a false alarm, hours of calm (> 0)
    release_seconds = 3         # [3] an episode ends after this many seconds' worth of
                                # evidence that its feature is back at the baseline (> 0)
    near_touch_levels = 10      # [10] near-touch depth: the best this many levels per side ...
    near_touch_bps = 5          # [5] ... within this many bps of mid (at least two ticks)
    depth_log_floor = 0.1       # [0.1] floor of the robust scale of log depth
    # -- spread_widening: z of log time-averaged spread; in the one-tick regime also the z of
    #    the share of time the spread is wider than one tick
    spread_shift = 8            # [8] the z shift the CUSUM is tuned to
    spread_z_floor = 0.1        # [0.1] floor of the log-spread scale (also >= log(1+tick/median))
    spread_wide_window_seconds = 10  # [10] window of the "wider than one tick" share
    spread_wide_floor = 0.1     # [0.1] floor of that share's scale
    # -- liquidity_evaporation (per side): z of the log near-touch depth; the other side must
    #    hold and the side must have lost resting size (removals not replaced)
    evaporation_shift = 9       # [9] the z drop the CUSUM is tuned to
    evaporation_other_ratio = 0.8      # [0.8] the other side keeps this share of its baseline
    # -- depth_asymmetry (side = heavy side): z of the near-touch imbalance (bid-ask)/(bid+ask)
    asymmetry_shift = 6         # [6] the z shift the CUSUM is tuned to
    asymmetry_z_floor = 0.05    # [0.05] floor of the imbalance's scale
    # -- liquidity_pull (both sides): R = total depth / total baseline at one band
    pull_band_bps = 10          # [10] band (10, 50, 100 or 200)
    pull_shift = 4              # [4] the z drop of log R the CUSUM is tuned to, while ...
    pull_total_ratio_on = 0.3   # [0.3] ... R <= this (0 < x <= 1) ...
    pull_side_ratio_on = 0.5    # [0.5] ... each side's rho <= this ...
    pull_spread_z_on = 3        # [3] ... and spread score >= this ...
    pull_fill_ratio_on = 3      # [3] ... or depth-to-fill >= this times its baseline
    fill_notional = 50000       # [50000] quote notional of the depth-to-fill measure
    # -- quote_skew (side = heavy side at the touch): skew = (microprice - mid)/spread
    skew_shift = 3              # [3] the z shift the CUSUM is tuned to (not while the spread
                                # score is >= spread_shift: the touch is not the makers')
    skew_window_seconds = 1     # [1] time-average window of the skew
    skew_z_floor = 0.05         # [0.05] floor of the skew's scale
    # -- volatility_spike: z of the log bounce-corrected realized variance of each second
    volatility_ratio = 5        # [5] the volatility jump (sigma ratio, > 1) the CUSUM is tuned to
    volatility_z_floor = 0.1    # [0.1] floor of that log variance's scale
    volatility_fast_half_life_seconds = 15  # [15] the score's fast EWMA (display only)
    volatility_floor_bps = 0.1  # [0.1] floor of the realized volatility, bps per sqrt(second)
    # -- pulled versus traded (mmradar_depth_removed_notional_total; signals/removal.py)
    removal_window_seconds = 10 # [10] window of the cancel share (integer > 0)
    removal_match_seconds = 1   # [1] a print waits this long for the depth update showing it
    # -- flow measures and mmradar_dealer_pressure
    ofi_windows_seconds = [1, 10, 60]        # [[1, 10, 60]] order-flow imbalance windows
    trade_flow_windows_seconds = [10, 60]    # [[10, 60]] trade-flow imbalance windows
    inventory_half_lives_seconds = [10, 60, 600]  # [[10, 60, 600]] half-lives of
                                # mmradar_signed_taker_volume_decayed{half_life}
    flow_baseline_half_life_seconds = 1800   # [1800] EWMA scale of the OFI and proxy z-scores
    flow_warmup_seconds = 120   # [120] those z-scores read NaN until this long (>= 0)
    pressure_clip = 5           # [5] each composite component is clipped to +-this ...
    pressure_scale = 2.5        # [2.5] ... pressure = tanh(mean of components / this)
    # -- venue_withdrawal (instruments watched on two or more venues; see crossvenue.py)
    withdrawal_band_bps = 10    # [10] near-touch band (both sides summed) compared with baseline
    withdrawal_ratio_on = 0.3   # [0.3] fire when one venue's depth/baseline falls to this ...
    withdrawal_others_ratio = 0.7  # [0.7] ... while the other venues' median keeps this
    withdrawal_on_seconds = 3   # [3]
    withdrawal_ratio_off = 0.6  # [0.6] end when the venue's depth/baseline is back to this
    withdrawal_off_seconds = 10 # [10]

    Units: ``*_seconds`` are seconds of venue event time, ``*_bps`` basis points of mid,
    ``*_notional`` quote currency. Numbers are > 0 unless marked ``>= 0``; pairs of
    thresholds must keep their hysteresis order (the off threshold on the calm side of the on
    threshold), else the second key of the pair is reported. The detector definitions are in
    :mod:`mmradar.signals.detectors`, the composite in :mod:`mmradar.signals.engine`.

    [log]
    level = "info"              # ["info"] debug | info | warning | error (case-insensitive)
    format = "text"             # ["text"] text | json (one JSON object per line)

    [flight_recorder]           # the raw frames behind every alert (mmradar/flight.py,
                                # docs/reliability.md "Flight recorder")
    directory = ""              # [""] where recordings go; "" = <temp dir>/mmradar-flight
    pre_seconds = 120           # [120] receive time recorded before an episode start or an
                                # integrity resync (> 0; the ring holds up to
                                # checkpoint_seconds more)
    post_seconds = 30           # [30] receive time recorded after it (>= 0)
    checkpoint_seconds = 60     # [60] a feed's state is checkpointed this often (> 0)
    ring_mib_per_instrument = 4 # [4] the ring's bound, MiB per instrument of the feed (> 0)
    max_files = 20              # [20] recordings kept, the oldest deleted first (0 = off)
    max_total_mib = 256         # [256] total MiB of recordings kept (> 0)

Integers are accepted wherever a number is expected; booleans are not. Numbers must be finite.

Environment overrides (they beat the file): ``MMRADAR_<SECTION>_<KEY>`` for the keys of the
``[http]``, ``[signals]``, ``[log]`` and ``[flight_recorder]`` tables, i.e. ``MMRADAR_HTTP_LISTEN``,
``MMRADAR_LOG_LEVEL``, ``MMRADAR_LOG_FORMAT``, ``MMRADAR_SIGNALS_INVENTORY_HALF_LIFE_SECONDS``,
``MMRADAR_SIGNALS_WARMUP_SECONDS``, ``MMRADAR_SIGNALS_OFI_WINDOWS_SECONDS`` (lists
comma-separated: ``1,10,60``), ... — one per ``[signals]`` key (:func:`env_override_names` lists
them). Feeds and
webhooks (arrays of tables) have no overrides; use ``${NAME}`` in webhook URLs for secrets. A
variable set to the empty string counts as unset. Other ``MMRADAR_*`` variables are ignored, not
rejected, because the environment is shared (:func:`ignored_env_vars` lists them so the caller
can warn about typos).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from ipaddress import IPv6Address
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import SplitResult, urlsplit

from .errors import ConfigError
from .model import BAND_BPS
from .shard import Shard, parse_shard, shard_pairs
from .signals.params import SignalSettings

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_STALE_AFTER_SECONDS",
    "DEFAULT_SUPPORTED_EXCHANGES",
    "FALLBACK_STALE_AFTER_SECONDS",
    "KNOWN_EXCHANGES",
    "WEBHOOK_FORMATS",
    "FeedSettings",
    "FlightRecorderSettings",
    "HttpSettings",
    "LogSettings",
    "Settings",
    "SignalSettings",
    "WebhookSettings",
    "env_override_names",
    "format_settings",
    "ignored_env_vars",
    "load_settings",
    "mask_url",
    "merge_feeds",
    "parse_listen",
    "parse_settings",
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

CONFIG_ENV_VAR: Final = "MMRADAR_CONFIG"
"""Names the config file used when no path is given."""

_ENV_PREFIX: Final = "MMRADAR_"
_DEFAULT_RESOURCE: Final = ("defaults", "default.toml")
_TOP_LEVEL_KEYS: Final = (
    "shard", "http", "feeds", "webhooks", "signals", "log", "flight_recorder",
)  # fmt: skip
_SHARD_ENV_VAR: Final = "MMRADAR_SHARD"
_FEED_KEYS: Final = ("exchange", "symbols", "trades", "stale_after_seconds", "ws_url", "rest_url")
#: The ``[[feeds]]`` options the tables of one exchange must agree on (:func:`merge_feeds`).
_FEED_OPTIONS: Final = ("trades", "stale_after_seconds", "ws_url", "rest_url")
_WEBHOOK_KEYS: Final = ("url", "format")
_ENV_REF: Final = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HOSTNAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_LISTEN_EXAMPLE: Final = "expected 'host:port', e.g. '127.0.0.1:9464' or '[::1]:9464'"


# --------------------------------------------------------------------------------------------
# The settings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The ``[http]`` table: where ``/metrics``, ``/healthz`` and ``/readyz`` are served.

    Attributes:
        host: interface to bind (an IPv6 address without brackets, e.g. ``::1``).
        port: TCP port; 0 asks the OS for a free one (tests).
    """

    host: str = "127.0.0.1"
    port: int = 9464

    @property
    def listen(self) -> str:
        """The ``host:port`` form of the configuration, IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """One ``[[feeds]]`` table: a set of symbols on one exchange.

    The tables of one exchange run as one feed: the service merges them with
    :func:`merge_feeds` (the configuration guarantees they agree on every option).

    Attributes:
        exchange: the venue name, one of :data:`KNOWN_EXCHANGES` (and implemented).
        symbols: the venue's own spelling, non-empty, without duplicates.
        trades: whether to subscribe to the venue's trade stream too.
        stale_after_seconds: silence (no depth message) after which a book is stale; ``0``
            (the default) means the exchange's :data:`DEFAULT_STALE_AFTER_SECONDS`, filled in
            at construction, so the attribute always holds the value in force.
        ws_url: ``scheme://host[:port]`` replacing the venue's websocket host, or None.
        rest_url: ``scheme://host[:port]`` replacing the venue's REST host, or None.
    """

    exchange: str
    symbols: tuple[str, ...]
    trades: bool = True
    stale_after_seconds: float = 0.0
    ws_url: str | None = None
    rest_url: str | None = None

    def __post_init__(self) -> None:
        if not self.stale_after_seconds:
            default = DEFAULT_STALE_AFTER_SECONDS.get(self.exchange, FALLBACK_STALE_AFTER_SECONDS)
            object.__setattr__(self, "stale_after_seconds", default)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """One ``[[webhooks]]`` table.

    Attributes:
        url: the resolved URL (``${NAME}`` references replaced). A secret: never print it; use
            :attr:`display_url`. It is left out of ``repr``.
        format: ``json``, ``slack`` or ``discord``.
        url_template: the URL as written, when it contains ``${NAME}`` references; else None.
    """

    url: str = field(repr=False)
    format: str = "json"
    url_template: str | None = None

    @property
    def display_url(self) -> str:
        """The URL safe to print: the template if there is one, else :func:`mask_url`."""
        return self.url_template if self.url_template is not None else mask_url(self.url)


@dataclass(frozen=True, slots=True)
class LogSettings:
    """The ``[log]`` table.

    Attributes:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        format: ``text`` or ``json``.
    """

    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class FlightRecorderSettings:
    """The ``[flight_recorder]`` table (:mod:`mmradar.flight`, docs/reliability.md).

    Attributes:
        directory: where recordings are written; "" = ``<temp dir>/mmradar-flight``.
        pre_seconds: receive time recorded before an event (at least, when the ring holds it).
        post_seconds: receive time recorded after it.
        checkpoint_seconds: interval between two checkpoints of a feed's state.
        ring_mib_per_instrument: the ring's byte bound per instrument of a feed (MiB).
        max_files: recordings kept on disk, the oldest deleted first; 0 turns the recorder off.
        max_total_mib: total size of the recordings kept on disk (MiB).
    """

    directory: str = ""
    pre_seconds: float = 120.0
    post_seconds: float = 30.0
    checkpoint_seconds: float = 60.0
    ring_mib_per_instrument: float = 4.0
    max_files: int = 20
    max_total_mib: float = 256.0

    @property
    def enabled(self) -> bool:
        """False when ``max_files`` is 0."""
        return self.max_files > 0


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole, validated configuration.

    Attributes:
        feeds: the ``[[feeds]]`` tables this replica runs: the configured ones restricted to
            the pairs its ``shard`` owns (all of them with the default shard ``0/1``); tables
            left without a symbol are dropped. Several tables of one exchange agree on every
            option and run as one feed (:func:`merge_feeds`).
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


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_settings(
    path: str | os.PathLike[str] | None,
    *,
    env: Mapping[str, str] | None = None,
    supported: Collection[str] = DEFAULT_SUPPORTED_EXCHANGES,
) -> Settings:
    """Read, validate and return the configuration.

    Args:
        path: the TOML file. None means the file named by ``MMRADAR_CONFIG`` if that is set
            (and not empty), else the built-in default.
        env: the environment, for ``MMRADAR_*`` overrides and ``${NAME}`` references;
            defaults to ``os.environ``.
        supported: the exchanges implemented by this build.

    Returns:
        The validated settings, environment overrides applied.

    Raises:
        ConfigError: the file cannot be read or is not valid TOML (``path`` is the file name),
            or a key is missing, unknown or invalid (``path`` is the key path, or the
            environment variable's name for a bad override).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if path is None and environ.get(CONFIG_ENV_VAR):
        path = environ[CONFIG_ENV_VAR]
    if path is None:
        source = "<built-in default>"
        resource = resources.files("mmradar")
        for part in _DEFAULT_RESOURCE:
            resource = resource / part
        text = resource.read_text(encoding="utf-8")
    else:
        source = os.fspath(path)
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise ConfigError(source, f"cannot read file: {exc.strerror or exc}") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(source, "invalid TOML: the file is not UTF-8 text") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"invalid TOML: {exc}") from exc
    return parse_settings(data, env=environ, supported=supported, source=source)


def parse_settings(
    data: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    supported: Collection[str] = DEFAULT_SUPPORTED_EXCHANGES,
    source: str = "<config>",
) -> Settings:
    """Validate an already-parsed TOML document.

    Args:
        data: the document, as returned by ``tomllib``.
        env: the environment, for ``MMRADAR_*`` overrides and ``${NAME}`` references;
            defaults to ``os.environ``.
        supported: the exchanges implemented by this build.
        source: where the document came from; added to a raised error as a note.

    Returns:
        The validated settings, environment overrides applied.

    Raises:
        ConfigError: a key is missing, unknown or invalid.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    try:
        return _parse(data, environ, supported)
    except ConfigError as exc:
        exc.add_note(f"in {source}")
        raise


def format_settings(settings: Settings) -> str:
    """Render the effective configuration as TOML that :func:`load_settings` accepts.

    Secrets are never printed: a webhook URL written with ``${NAME}`` is printed as written;
    any other webhook URL is masked after the host (``https://hooks.slack.com/***``), so such a
    webhook does not survive a round trip. Everything else does: loading the output gives
    equal settings.

    Args:
        settings: the settings to render.

    Returns:
        TOML text, ending in a newline.
    """
    lines = [
        "# mmradar effective configuration (environment overrides applied; webhook secrets masked)",
        "",
    ]
    if settings.shard.count > 1:
        owned = [f"{f.exchange} {s}" for f in settings.feeds for s in f.symbols]
        lines += [
            f"shard = {_toml(str(settings.shard))}",
            f"# this replica owns {len(owned)} of the configured pairs: "
            + (", ".join(owned) if owned else "none"),
            "",
        ]
    lines += ["[http]", f"listen = {_toml(settings.http.listen)}"]
    for feed in settings.configured_feeds or settings.feeds:
        lines += [
            "",
            "[[feeds]]",
            f"exchange = {_toml(feed.exchange)}",
            f"symbols = {_toml(feed.symbols)}",
            f"trades = {_toml(feed.trades)}",
            f"stale_after_seconds = {_toml(feed.stale_after_seconds)}",
        ]
        if feed.ws_url is not None:
            lines.append(f"ws_url = {_toml(feed.ws_url)}")
        if feed.rest_url is not None:
            lines.append(f"rest_url = {_toml(feed.rest_url)}")
    for hook in settings.webhooks:
        lines += [
            "",
            "[[webhooks]]",
            f"url = {_toml(hook.display_url)}",
            f"format = {_toml(hook.format)}",
        ]
    lines += ["", "[signals]"]
    for key in _SIGNAL_KEYS:
        lines.append(f"{key.name} = {_toml(getattr(settings.signals, key.name))}")
    lines += [
        "",
        "[log]",
        f"level = {_toml(settings.log.level)}",
        f"format = {_toml(settings.log.format)}",
        "",
        "[flight_recorder]",
    ]
    for key in _FLIGHT_KEYS:
        lines.append(f"{key.name} = {_toml(getattr(settings.flight_recorder, key.name))}")
    return "\n".join(lines) + "\n"


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


def env_override_names() -> tuple[str, ...]:
    """Every ``MMRADAR_<SECTION>_<KEY>`` variable that overrides a config key."""
    return (
        _SHARD_ENV_VAR,
        *(_env_var(section, key.name) for section, keys in _SECTIONS for key in keys),
    )


def ignored_env_vars(env: Mapping[str, str] | None = None) -> list[str]:
    """The ``MMRADAR_*`` variables that mmradar does not know (possible typos), sorted.

    Args:
        env: the environment; defaults to ``os.environ``.

    Returns:
        Names starting with ``MMRADAR_`` that are neither ``MMRADAR_CONFIG`` nor an override.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    known = {CONFIG_ENV_VAR, *env_override_names()}
    return sorted(name for name in environ if name.startswith(_ENV_PREFIX) and name not in known)


# --------------------------------------------------------------------------------------------
# Scalar validators: each takes a raw TOML value and the key path, returns the field value
# --------------------------------------------------------------------------------------------


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def _expect_table(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(path, f"expected a table, got {_type_name(value)}")
    return value


def _check_keys(table: Mapping[str, Any], allowed: Collection[str], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            path = f"{prefix}.{key}" if prefix else key
            raise ConfigError(path, f"unknown key (expected one of: {', '.join(allowed)})")


def _string(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(path, f"expected a string, got {_type_name(value)}")
    return value


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(path, f"expected a boolean (true or false), got {_type_name(value)}")
    return value


def _positive_float(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, f"expected a number, got {_type_name(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(path, f"must be a finite number, got {number}")
    if number <= 0:
        raise ConfigError(path, f"must be greater than 0, got {value}")
    return number


def _number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(path, f"expected a number, got {_type_name(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(path, f"must be a finite number, got {number}")
    return number


def _greater_than_one(value: object, path: str) -> float:
    number = _number(value, path)
    if not number > 1:
        raise ConfigError(path, f"must be greater than 1, got {number:g}")
    return number


def _non_negative_float(value: object, path: str) -> float:
    number = _number(value, path)
    if number < 0:
        raise ConfigError(path, f"must be 0 or greater, got {value}")
    return number


def _float_in(high: float) -> Callable[[object, str], float]:
    """A number in ``(0, high]``."""

    def check(value: object, path: str) -> float:
        number = _number(value, path)
        if not 0 < number <= high:
            raise ConfigError(path, f"must be greater than 0 and at most {high:g}, got {value}")
        return number

    return check


def _positive_int(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"expected an integer, got {_type_name(value)}")
    if value <= 0:
        raise ConfigError(path, f"must be greater than 0, got {value}")
    return value


def _non_negative_int(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(path, f"expected an integer, got {_type_name(value)}")
    if value < 0:
        raise ConfigError(path, f"must be 0 or greater, got {value}")
    return value


def _any_string(value: object, path: str) -> str:
    return _string(value, path)


def _band(value: object, path: str) -> int:
    band = _positive_int(value, path)
    if band not in BAND_BPS:
        raise ConfigError(path, f"must be one of the depth bands {list(BAND_BPS)}, got {band}")
    return band


def _increasing_positive_ints(value: object, path: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(path, f"expected a list of integers, got {_type_name(value)}")
    if not value:
        raise ConfigError(path, "must not be empty")
    result: list[int] = []
    for i, item in enumerate(value):
        item_path = f"{path}[{i}]"
        if isinstance(item, bool) or not isinstance(item, int):
            raise ConfigError(item_path, f"expected an integer, got {_type_name(item)}")
        if item <= 0:
            raise ConfigError(item_path, f"must be greater than 0, got {item}")
        if result and item <= result[-1]:
            raise ConfigError(
                item_path, f"must be strictly increasing, got {item} after {result[-1]}"
            )
        result.append(item)
    return tuple(result)


def _choice(options: tuple[str, ...], *, fold_case: bool = False) -> Callable[[object, str], str]:
    def check(value: object, path: str) -> str:
        text = _string(value, path)
        key = text.lower() if fold_case else text
        if key not in options:
            raise ConfigError(path, f"expected one of: {', '.join(options)} (got {text!r})")
        return key

    return check


def _listen(value: object, path: str) -> tuple[str, int]:
    text = _string(value, path)
    bad = f"invalid listen address {text!r}"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ConfigError(path, f"{bad}: missing ']' ({_LISTEN_EXAMPLE})")
        try:
            IPv6Address(host)
        except ValueError:
            raise ConfigError(path, f"{bad}: {host!r} is not an IPv6 address") from None
        if not rest.startswith(":"):
            raise ConfigError(path, f"{bad}: missing port ({_LISTEN_EXAMPLE})")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ConfigError(path, f"{bad}: {_LISTEN_EXAMPLE}")
        if ":" in host:
            raise ConfigError(path, f"{bad}: an IPv6 host must be in brackets, e.g. '[::1]:9464'")
        if not host:
            raise ConfigError(path, f"{bad}: missing host (use 0.0.0.0 for all interfaces)")
        if not _HOSTNAME.fullmatch(host):
            raise ConfigError(path, f"{bad}: {host!r} is not a host name or address")
    if not (port_text.isascii() and port_text.isdigit()):
        raise ConfigError(path, f"{bad}: port must be an integer 0-65535")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(path, f"{bad}: port {port} is out of range 0-65535")
    return host, port


def parse_listen(text: str, path: str = "--listen") -> HttpSettings:
    """Parse a ``host:port`` listen address given outside a config file (``--listen``).

    Raises:
        ConfigError: named ``path``, if the address is invalid.
    """
    host, port = _listen(text, path)
    return HttpSettings(host=host, port=port)


def _split_url(text: str, path: str, schemes: tuple[str, ...], shown: str) -> SplitResult:
    """Check the parts common to every URL; ``shown`` is how the URL appears in messages."""
    bad = f"invalid URL {shown}"
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ConfigError(path, f"{bad}: {exc}") from None
    if not parts.scheme or not parts.netloc:
        raise ConfigError(path, f"{bad}: expected {schemes[-1]}://host[:port]")
    if any(ch.isspace() for ch in text):
        raise ConfigError(path, f"{bad}: must not contain whitespace")
    try:
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        raise ConfigError(path, f"{bad}: {exc}") from None
    if parts.scheme not in schemes:
        raise ConfigError(path, f"{bad}: scheme must be {' or '.join(schemes)}")
    if not parts.hostname:
        raise ConfigError(path, f"{bad}: missing host")
    return parts


def _base_url(schemes: tuple[str, ...]) -> Callable[[object, str], str]:
    def check(value: object, path: str) -> str:
        text = _string(value, path)
        parts = _split_url(text, path, schemes, repr(text))
        bad = f"invalid URL {text!r}"
        if "@" in parts.netloc:
            raise ConfigError(path, f"{bad}: must not contain user info")
        if parts.path not in ("", "/"):
            raise ConfigError(
                path,
                f"{bad}: expected a base URL {schemes[-1]}://host[:port] without a path "
                f"(got {parts.path!r}); the venue's own paths are appended",
            )
        if "?" in text or "#" in text:
            raise ConfigError(path, f"{bad}: must not have a query or fragment")
        return f"{parts.scheme}://{parts.netloc}"

    return check


def _resolve_env_refs(template: str, path: str, env: Mapping[str, str]) -> str:
    if "${" in _ENV_REF.sub("", template):
        raise ConfigError(path, "unclosed '${' (expected '${NAME}')")

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _ENV_NAME.fullmatch(name):
            raise ConfigError(path, f"invalid environment variable name {name!r} in '${{...}}'")
        value = env.get(name)
        if value is None:
            raise ConfigError(path, f"environment variable {name!r} is not set")
        if not value:
            raise ConfigError(path, f"environment variable {name!r} is empty")
        return value

    return _ENV_REF.sub(substitute, template)


# --------------------------------------------------------------------------------------------
# Table sections with environment overrides
# --------------------------------------------------------------------------------------------

_Kind = Literal["str", "float", "int", "ints"]


@dataclass(frozen=True, slots=True)
class _Key:
    """A key of a table section: its name, how to read it from the environment, its check."""

    name: str
    kind: _Kind
    check: Callable[[object, str], Any]


_HTTP_KEYS: Final = (_Key("listen", "str", _listen),)
_SIGNAL_KEYS: Final = (
    _Key("inventory_half_life_seconds", "float", _positive_float),
    _Key("volatility_windows_seconds", "ints", _increasing_positive_ints),
    _Key("volatility_sample_seconds", "float", _positive_float),
    _Key("warmup_seconds", "float", _non_negative_float),
    _Key("baseline_minutes", "int", _positive_int),
    _Key("min_firing_seconds", "float", _non_negative_float),
    _Key("cooldown_seconds", "float", _non_negative_float),
    _Key("thin_book_notional", "float", _positive_float),
    _Key("arl0_hours", "float", _positive_float),
    _Key("release_seconds", "float", _positive_float),
    _Key("near_touch_levels", "int", _positive_int),
    _Key("near_touch_bps", "float", _positive_float),
    _Key("depth_log_floor", "float", _positive_float),
    _Key("spread_shift", "float", _positive_float),
    _Key("spread_z_floor", "float", _positive_float),
    _Key("spread_wide_window_seconds", "int", _positive_int),
    _Key("spread_wide_floor", "float", _positive_float),
    _Key("evaporation_shift", "float", _positive_float),
    _Key("evaporation_other_ratio", "float", _positive_float),
    _Key("asymmetry_shift", "float", _positive_float),
    _Key("asymmetry_z_floor", "float", _positive_float),
    _Key("pull_band_bps", "int", _band),
    _Key("pull_shift", "float", _positive_float),
    _Key("pull_total_ratio_on", "float", _float_in(1.0)),
    _Key("pull_side_ratio_on", "float", _float_in(1.0)),
    _Key("pull_spread_z_on", "float", _positive_float),
    _Key("pull_fill_ratio_on", "float", _positive_float),
    _Key("fill_notional", "float", _positive_float),
    _Key("skew_shift", "float", _positive_float),
    _Key("skew_z_floor", "float", _positive_float),
    _Key("skew_window_seconds", "int", _positive_int),
    _Key("volatility_ratio", "float", _greater_than_one),
    _Key("volatility_z_floor", "float", _positive_float),
    _Key("volatility_fast_half_life_seconds", "float", _positive_float),
    _Key("volatility_floor_bps", "float", _positive_float),
    _Key("removal_window_seconds", "int", _positive_int),
    _Key("removal_match_seconds", "float", _positive_float),
    _Key("ofi_windows_seconds", "ints", _increasing_positive_ints),
    _Key("trade_flow_windows_seconds", "ints", _increasing_positive_ints),
    _Key("inventory_half_lives_seconds", "ints", _increasing_positive_ints),
    _Key("flow_baseline_half_life_seconds", "float", _positive_float),
    _Key("flow_warmup_seconds", "float", _non_negative_float),
    _Key("pressure_clip", "float", _positive_float),
    _Key("pressure_scale", "float", _positive_float),
    _Key("withdrawal_band_bps", "int", _band),
    _Key("withdrawal_ratio_on", "float", _float_in(1.0)),
    _Key("withdrawal_ratio_off", "float", _positive_float),
    _Key("withdrawal_others_ratio", "float", _positive_float),
    _Key("withdrawal_on_seconds", "float", _non_negative_float),
    _Key("withdrawal_off_seconds", "float", _non_negative_float),
)

#: ``(lower key, higher key)``: hysteresis pairs whose thresholds must be strictly ordered.
_SIGNAL_ORDER: Final = (("withdrawal_ratio_on", "withdrawal_ratio_off"),)
_LOG_KEYS: Final = (
    _Key("level", "str", _choice(LOG_LEVELS, fold_case=True)),
    _Key("format", "str", _choice(LOG_FORMATS)),
)
_FLIGHT_KEYS: Final = (
    _Key("directory", "str", _any_string),
    _Key("pre_seconds", "float", _positive_float),
    _Key("post_seconds", "float", _non_negative_float),
    _Key("checkpoint_seconds", "float", _positive_float),
    _Key("ring_mib_per_instrument", "float", _positive_float),
    _Key("max_files", "int", _non_negative_int),
    _Key("max_total_mib", "float", _positive_float),
)
_SECTIONS: Final = (
    ("http", _HTTP_KEYS),
    ("signals", _SIGNAL_KEYS),
    ("log", _LOG_KEYS),
    ("flight_recorder", _FLIGHT_KEYS),
)


def _env_var(section: str, key: str) -> str:
    return f"{_ENV_PREFIX}{section.upper()}_{key.upper()}"


def _from_env(text: str, kind: _Kind, var: str) -> object:
    """Turn an environment string into the TOML value the key's check expects."""
    text = text.strip()
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ConfigError(var, f"expected a number, got {text!r}") from None
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ConfigError(var, f"expected an integer, got {text!r}") from None
    if kind == "ints":
        try:
            return [int(part) for part in text.split(",")]
        except ValueError:
            raise ConfigError(
                var, f"expected comma-separated integers, e.g. '30,300', got {text!r}"
            ) from None
    return text


def _section(
    data: Mapping[str, Any], name: str, keys: tuple[_Key, ...], env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Validate a table section and apply its overrides.

    Returns:
        The validated values of the keys present (file or environment), and for each the path
        its value came from (``signals.x`` or ``MMRADAR_SIGNALS_X``), for cross-key checks.
    """
    table = _expect_table(data.get(name, {}), name)
    _check_keys(table, [key.name for key in keys], name)
    values: dict[str, Any] = {}
    paths: dict[str, str] = {}
    for key in keys:
        if key.name in table:
            path = f"{name}.{key.name}"
            values[key.name] = key.check(table[key.name], path)
            paths[key.name] = path
        var = _env_var(name, key.name)
        text = env.get(var)
        if text:
            values[key.name] = key.check(_from_env(text, key.kind, var), var)
            paths[key.name] = var
    return values, paths


# --------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------


def _parse(data: Mapping[str, Any], env: Mapping[str, str], supported: Collection[str]) -> Settings:
    _check_keys(_expect_table(data, ""), _TOP_LEVEL_KEYS, "")

    http_values, _ = _section(data, "http", _HTTP_KEYS, env)
    http = HttpSettings(*http_values["listen"]) if "listen" in http_values else HttpSettings()

    configured = _feeds(data, supported)
    shard = Shard()
    if env.get(_SHARD_ENV_VAR):
        shard = parse_shard(env[_SHARD_ENV_VAR], _SHARD_ENV_VAR)
    elif "shard" in data:
        shard = parse_shard(_string(data["shard"], "shard"), "shard")
    feeds = _own_feeds(configured, shard)
    webhooks = _webhooks(data, env)

    signal_values, signal_paths = _section(data, "signals", _SIGNAL_KEYS, env)
    signals = SignalSettings(**signal_values)
    for low, high in _SIGNAL_ORDER:
        if not getattr(signals, low) < getattr(signals, high):
            key = high if high in signal_paths else low
            raise ConfigError(
                signal_paths.get(key, f"signals.{key}"),
                f"{low} ({getattr(signals, low):g}) must be less than "
                f"{high} ({getattr(signals, high):g}) (hysteresis)",
            )
    shortest = 2 * signals.volatility_sample_seconds
    if signals.volatility_windows_seconds[0] < shortest:
        raise ConfigError(
            signal_paths.get("volatility_windows_seconds", "signals.volatility_windows_seconds"),
            f"each window must span at least two samples of volatility_sample_seconds "
            f"(at least {shortest:g} s), got {signals.volatility_windows_seconds[0]}",
        )

    log_values, _ = _section(data, "log", _LOG_KEYS, env)
    log = LogSettings(**log_values)
    flight_values, _ = _section(data, "flight_recorder", _FLIGHT_KEYS, env)
    flight_recorder = FlightRecorderSettings(**flight_values)

    return Settings(
        http=http,
        feeds=feeds,
        webhooks=webhooks,
        signals=signals,
        log=log,
        flight_recorder=flight_recorder,
        shard=shard,
        configured_feeds=configured,
    )


def _own_feeds(feeds: tuple[FeedSettings, ...], shard: Shard) -> tuple[FeedSettings, ...]:
    """The feeds restricted to the pairs ``shard`` owns, in configuration order."""
    if shard.count == 1:
        return feeds
    from .venues import VENUES  # the venue modules know their symbols' instruments

    def instrument(pair: tuple[str, str]) -> str | None:
        venue = VENUES.get(pair[0])
        return venue().instrument(pair[1]) if venue is not None else None

    pairs = [(f.exchange, s) for f in feeds for s in f.symbols]
    owned = set(shard_pairs(pairs, shard, instrument))
    out = []
    for feed in feeds:
        symbols = tuple(s for s in feed.symbols if (feed.exchange, s) in owned)
        if symbols:
            out.append(replace(feed, symbols=symbols))
    return tuple(out)


def _array_of_tables(data: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    raw = data.get(name, [])
    if isinstance(raw, Mapping):
        raise ConfigError(name, f"expected an array of tables ([[{name}]]), got a single table")
    if not isinstance(raw, list):
        raise ConfigError(name, f"expected an array of tables ([[{name}]]), got {_type_name(raw)}")
    return [_expect_table(item, f"{name}[{i}]") for i, item in enumerate(raw)]


def _require(table: Mapping[str, Any], key: str, prefix: str) -> Any:
    if key not in table:
        raise ConfigError(f"{prefix}.{key}", "missing required key")
    return table[key]


def _exchange(value: object, path: str, supported: Collection[str]) -> str:
    name = _string(value, path)
    if name in supported:
        return name
    if name in KNOWN_EXCHANGES:
        listed = ", ".join(sorted(supported))
        raise ConfigError(path, f"exchange {name!r} is not supported yet (supported: {listed})")
    known = [*KNOWN_EXCHANGES, *(s for s in sorted(supported) if s not in KNOWN_EXCHANGES)]
    hint = f"; did you mean {name.lower()!r}?" if name.lower() in known else ""
    raise ConfigError(
        path, f"unknown exchange {name!r} (expected one of: {', '.join(known)}){hint}"
    )


def _symbols(value: object, path: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(path, f"expected a list of strings, got {_type_name(value)}")
    if not value:
        raise ConfigError(path, "must not be empty")
    symbols: list[str] = []
    for i, item in enumerate(value):
        item_path = f"{path}[{i}]"
        symbol = _string(item, item_path)
        if not symbol:
            raise ConfigError(item_path, "must not be empty")
        if any(ch.isspace() for ch in symbol):
            raise ConfigError(item_path, f"must not contain whitespace, got {symbol!r}")
        symbols.append(symbol)
    return tuple(symbols)


def _symbol_problem(exchange: str, symbol: str) -> str | None:
    """The venue module's objection to ``symbol`` (``Venue.symbol_problem``), if any."""
    from .venues import VENUES  # the venue modules know which symbols they can follow

    venue = VENUES.get(exchange)
    return venue().symbol_problem(symbol) if venue is not None else None


def _feeds(data: Mapping[str, Any], supported: Collection[str]) -> tuple[FeedSettings, ...]:
    if "feeds" not in data:
        raise ConfigError("feeds", "missing required key")
    tables = _array_of_tables(data, "feeds")
    if not tables:
        raise ConfigError("feeds", "must not be empty")
    optional: dict[str, Callable[[object, str], Any]] = {
        "trades": _boolean,
        "stale_after_seconds": _positive_float,
        "ws_url": _base_url(("ws", "wss")),
        "rest_url": _base_url(("http", "https")),
    }
    seen: dict[tuple[str, str], str] = {}  # (exchange, symbol folded) -> where first seen
    feeds: list[FeedSettings] = []
    explicit: list[frozenset[str]] = []  # the options each table writes
    for i, table in enumerate(tables):
        prefix = f"feeds[{i}]"
        _check_keys(table, _FEED_KEYS, prefix)
        exchange = _exchange(_require(table, "exchange", prefix), f"{prefix}.exchange", supported)
        symbols = _symbols(_require(table, "symbols", prefix), f"{prefix}.symbols")
        for j, symbol in enumerate(symbols):
            here = f"{prefix}.symbols[{j}]"
            first = seen.setdefault((exchange, symbol.casefold()), here)
            if first != here:
                where = "" if first.startswith(f"{prefix}.") else f" on {exchange} (in {first})"
                raise ConfigError(here, f"duplicate symbol {symbol!r}{where}")
            problem = _symbol_problem(exchange, symbol)
            if problem is not None:
                raise ConfigError(here, problem)
        options = {
            key: check(table[key], f"{prefix}.{key}")
            for key, check in optional.items()
            if key in table
        }
        feeds.append(FeedSettings(exchange=exchange, symbols=symbols, **options))
        explicit.append(frozenset(options))
    _merge(feeds, explicit)  # the tables of one exchange must agree on their options
    return tuple(feeds)


def merge_feeds(feeds: Iterable[FeedSettings]) -> tuple[FeedSettings, ...]:
    """One feed per exchange: the ``[[feeds]]`` tables of each exchange merged into one.

    The tables of one exchange run as one feed — one pipeline, one set of websocket
    connections, one REST weight budget, one watchdog — so that every exchange-keyed metric and
    every per-IP limit of the venue covers all of them. The symbols are united in configuration
    order; the options (``trades``, ``stale_after_seconds``, ``ws_url``, ``rest_url``) must be
    equal (a configuration file whose tables differ is refused when it is loaded).

    Args:
        feeds: ``[[feeds]]`` tables, e.g. :attr:`Settings.feeds`.

    Returns:
        One :class:`FeedSettings` per exchange, in the order the exchanges first appear.

    Raises:
        ConfigError: two tables of one exchange differ in an option (path
            ``feeds[i].<key>``, ``i`` the index in ``feeds``) or list the same symbol.
    """
    tables = list(feeds)
    return _merge(tables, [frozenset(_FEED_OPTIONS)] * len(tables))


def _merge(
    feeds: Sequence[FeedSettings], explicit: Sequence[Collection[str]]
) -> tuple[FeedSettings, ...]:
    """:func:`merge_feeds`; ``explicit[i]``: the options table ``i`` sets (error paths)."""
    first: dict[str, int] = {}  # exchange -> index of its first table
    symbols: dict[str, dict[str, str]] = {}  # exchange -> symbol folded -> symbol
    for i, feed in enumerate(feeds):
        j = first.setdefault(feed.exchange, i)
        known = symbols.setdefault(feed.exchange, {})
        for k, symbol in enumerate(feed.symbols):
            if symbol.casefold() in known:
                raise ConfigError(
                    f"feeds[{i}].symbols[{k}]", f"duplicate symbol {symbol!r} on {feed.exchange}"
                )
            known[symbol.casefold()] = symbol
        for key in _FEED_OPTIONS:
            if getattr(feed, key) == getattr(feeds[j], key):
                continue
            # Report the table that writes the key: this one if it does, else the first one.
            here, there = (i, j) if key in explicit[i] or key not in explicit[j] else (j, i)
            if key in explicit[there]:
                other = f"feeds[{there}].{key} = {_option_text(feeds[there], key)}"
            else:
                default = _option_text(replace(feeds[there], **{key: _UNSET[key]}), key)
                other = f"feeds[{there}] does not set {key} (default {default})"
            raise ConfigError(
                f"feeds[{here}].{key}",
                f"{_option_text(feeds[here], key)} here, but {other}: the [[feeds]] tables of "
                f"one exchange ({feed.exchange}) run as one feed and must agree on "
                f"{', '.join(_FEED_OPTIONS[:-1])} and {_FEED_OPTIONS[-1]}",
            )
    return tuple(replace(feeds[j], symbols=tuple(symbols[x].values())) for x, j in first.items())


#: what a ``[[feeds]]`` option holds when a table does not set it (before defaults are filled).
_UNSET: Final[Mapping[str, Any]] = MappingProxyType(
    {key: FeedSettings.__dataclass_fields__[key].default for key in _FEED_OPTIONS}
)


def _option_text(feed: FeedSettings, key: str) -> str:
    """A feed option as TOML; an unset URL is the venue's own."""
    value = getattr(feed, key)
    return "the venue's own" if value is None else _toml(value)


def _webhooks(data: Mapping[str, Any], env: Mapping[str, str]) -> tuple[WebhookSettings, ...]:
    hooks: list[WebhookSettings] = []
    check_format = _choice(WEBHOOK_FORMATS)
    for i, table in enumerate(_array_of_tables(data, "webhooks")):
        prefix = f"webhooks[{i}]"
        _check_keys(table, _WEBHOOK_KEYS, prefix)
        path = f"{prefix}.url"
        template = _string(_require(table, "url", prefix), path)
        if not template:
            raise ConfigError(path, "must not be empty")
        templated = "${" in template
        url = _resolve_env_refs(template, path, env) if templated else template
        # The resolved URL may hold a secret: messages show the template or a masked URL.
        shown = f"from {template!r}" if templated else repr(mask_url(url))
        _split_url(url, path, ("http", "https"), shown)
        fmt = check_format(table["format"], f"{prefix}.format") if "format" in table else "json"
        hook = WebhookSettings(url=url, format=fmt, url_template=template if templated else None)
        for j, other in enumerate(hooks):
            if (other.url, other.format) == (hook.url, hook.format):
                raise ConfigError(
                    prefix, f"duplicate webhook (same url and format as webhooks[{j}])"
                )
        hooks.append(hook)
    return tuple(hooks)


# --------------------------------------------------------------------------------------------
# TOML output
# --------------------------------------------------------------------------------------------

_TOML_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _toml_string(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # finite (validated); repr is valid TOML: 60.0, 1e-05, 1e+16
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} as TOML")
