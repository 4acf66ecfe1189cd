"""Configuration: a TOML file (or the built-in default) plus environment overrides.

mmradar reads one TOML file (``mmradar run --config FILE``; without ``--config`` the file named
by ``MMRADAR_CONFIG``; without either, the built-in default shipped as
``defaults/default.toml`` inside the package). Validation is strict: an unknown key, a value of
the wrong type or out of range stops the service with exit code 2 and a message naming the key
path (``feeds[1].symbols: must not be empty``). ``mmradar check-config FILE`` validates a file
and prints the effective configuration.

The package has three parts:

* :mod:`mmradar.config.schema`: every table and key, declared once (type, default, bounds,
  unit, one-line description) as frozen msgspec structs; the ``[signals]`` table is
  :class:`~mmradar.signals.params.SignalSettings`. The key reference is docs/configuration.md,
  generated from these declarations.
* :mod:`mmradar.config.load`: reading, environment overrides, msgspec's conversion and the
  checks between tables (several ``[[feeds]]`` tables of one exchange run as one feed and must
  agree on their options: :func:`merge_feeds`).
* :mod:`mmradar.config.render`: the effective configuration (``tomli-w``) and the generated
  parts of docs/configuration.md and ``defaults/default.toml``
  (``python -m mmradar.config --write``).

Integers are accepted wherever a number is expected; booleans are not. Numbers must be finite.

Environment overrides (they beat the file): ``MMRADAR_<SECTION>_<KEY>`` for every key of the
``[http]``, ``[signals]``, ``[log]`` and ``[flight_recorder]`` tables (lists comma-separated:
``MMRADAR_SIGNALS_OFI_WINDOWS_SECONDS=1,10,60``; :func:`env_override_names` lists them), and
``MMRADAR_SHARD``. Feeds and webhooks (arrays of tables) have no overrides; use ``${NAME}`` in
webhook URLs for secrets. A variable set to the empty string counts as unset. Other
``MMRADAR_*`` variables are ignored, not rejected, because the environment is shared
(:func:`ignored_env_vars` lists them so the caller can warn about typos).
"""

from __future__ import annotations

from .load import (
    CONFIG_ENV_VAR,
    env_override_names,
    ignored_env_vars,
    load_settings,
    merge_feeds,
    parse_listen,
    parse_settings,
)
from .render import format_settings
from .schema import (
    DEFAULT_STALE_AFTER_SECONDS,
    DEFAULT_SUPPORTED_EXCHANGES,
    FALLBACK_STALE_AFTER_SECONDS,
    KNOWN_EXCHANGES,
    LOG_FORMATS,
    LOG_LEVELS,
    WEBHOOK_FORMATS,
    FeedSettings,
    FlightRecorderSettings,
    HttpSettings,
    LogSettings,
    Settings,
    SignalSettings,
    WebhookSettings,
    mask_url,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_STALE_AFTER_SECONDS",
    "DEFAULT_SUPPORTED_EXCHANGES",
    "FALLBACK_STALE_AFTER_SECONDS",
    "KNOWN_EXCHANGES",
    "LOG_FORMATS",
    "LOG_LEVELS",
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
