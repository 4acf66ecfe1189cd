"""Loading: read the TOML file, apply the environment, convert it with msgspec, check the rest.

The schema (:mod:`mmradar.config.schema`) does the per-key work: msgspec converts the document
into :class:`~mmradar.config.schema.ConfigFile` (types, bounds, unknown and missing keys) and
each table's checks run as it is built. What is left here needs more than one table or the
world outside the file: the environment overrides, the exchanges this build implements, symbols
listed twice, the ``[[feeds]]`` tables of one exchange agreeing on their options, the venue
modules' objections to a symbol, ``${NAME}`` references in webhook URLs, and the shard.

Every error is a :class:`~mmradar.errors.ConfigError` naming the key path and the reason
(:func:`_config_error` turns msgspec's messages into the project's wording), or the
environment variable when the bad value came from one.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import typing
from collections.abc import Collection, Iterable, Mapping, Sequence
from importlib import resources
from types import MappingProxyType, NoneType
from typing import Any, Final

import msgspec
import tomli_w

from ..errors import ConfigError
from ..shard import Shard, parse_shard, shard_pairs
from ..table import FieldError, FieldSpec, Table, field_specs
from .schema import (
    DEFAULT_SUPPORTED_EXCHANGES,
    KNOWN_EXCHANGES,
    ConfigFile,
    FeedSettings,
    FlightRecorderSettings,
    HttpSettings,
    HttpTable,
    LogSettings,
    Settings,
    SignalSettings,
    WebhookSettings,
    mask_url,
    split_listen,
    split_url,
)

__all__ = [
    "CONFIG_ENV_VAR",
    "ENV_SECTIONS",
    "SHARD_ENV_VAR",
    "env_override_names",
    "env_var",
    "ignored_env_vars",
    "load_settings",
    "merge_feeds",
    "parse_listen",
    "parse_settings",
]

CONFIG_ENV_VAR: Final = "MMRADAR_CONFIG"
"""Names the config file used when no path is given."""

SHARD_ENV_VAR: Final = "MMRADAR_SHARD"
"""Overrides the top-level ``shard`` key."""

ENV_SECTIONS: Final[Mapping[str, type[Table]]] = MappingProxyType(
    {
        "http": HttpTable,
        "signals": SignalSettings,
        "log": LogSettings,
        "flight_recorder": FlightRecorderSettings,
    }
)
"""The tables whose every key has an environment override ``MMRADAR_<SECTION>_<KEY>``."""

_ENV_PREFIX: Final = "MMRADAR_"
_DEFAULT_RESOURCE: Final = ("defaults", "default.toml")
#: The ``[[feeds]]`` options the tables of one exchange must agree on (:func:`merge_feeds`).
_FEED_OPTIONS: Final = ("trades", "stale_after_seconds", "ws_url", "rest_url")
_ENV_REF: Final = re.compile(r"\$\{([^}]*)\}")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


def parse_listen(text: str, path: str = "--listen") -> HttpSettings:
    """Parse a ``host:port`` listen address given outside a config file (``--listen``).

    Raises:
        ConfigError: named ``path``, if the address is invalid.
    """
    try:
        host, port = split_listen(text)
    except ValueError as exc:
        raise ConfigError(path, str(exc)) from None
    return HttpSettings(host=host, port=port)


def env_var(section: str, key: str) -> str:
    """The environment variable overriding ``[section] key``."""
    return f"{_ENV_PREFIX}{section.upper()}_{key.upper()}"


def env_override_names() -> tuple[str, ...]:
    """Every ``MMRADAR_<SECTION>_<KEY>`` variable that overrides a config key."""
    return (
        SHARD_ENV_VAR,
        *(
            env_var(section, spec.name)
            for section, table in ENV_SECTIONS.items()
            for spec in field_specs(table)
        ),
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
# msgspec's errors in the project's words
# --------------------------------------------------------------------------------------------

_SEGMENT: Final = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_EXPECTED: Final = re.compile(r"Expected `([^`]+)`(?:, got `([^`]+)`)?")
_GOT: Final = {"array": "list", "object": "table"}


def _segments(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _SEGMENT.findall(path)]


def _join(segments: Sequence[str | int]) -> str:
    out = ""
    for part in segments:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _spec_at(root: type[Table], segments: Sequence[str | int]) -> FieldSpec | None:
    """The declaration of the key at ``segments`` (items of a list: the list's)."""
    tp: Any = root
    spec: FieldSpec | None = None
    for part in segments:
        if isinstance(part, int):
            continue
        if not (isinstance(tp, type) and issubclass(tp, Table)):
            return None
        spec = next((s for s in field_specs(tp) if s.name == part), None)
        if spec is None:
            return None
        tp = spec.item_type if spec.item_type is not None else spec.type
    return spec


def _type_text(tp: Any) -> str:
    """What a value of type ``tp`` is called in messages ("a number", "a list of strings")."""
    args = [a for a in typing.get_args(tp) if a is not NoneType]
    if len(args) == 1 and typing.get_origin(tp) is not tuple:
        return _type_text(args[0])
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        if typing.get_origin(item) is typing.Annotated:
            item = typing.get_args(item)[0]
        return {int: "a list of integers", str: "a list of strings"}.get(item, "a list")
    if isinstance(tp, type) and issubclass(tp, Table):
        return "a table"
    return {
        bool: "a boolean (true or false)",
        int: "an integer",
        float: "a number",
        str: "a string",
    }.get(tp, str(tp))


def _bounds_text(meta: msgspec.Meta) -> str:
    """``Meta(gt=0, le=1)`` as "must be greater than 0 and at most 1"."""
    parts = []
    if meta.gt is not None:
        parts.append(f"greater than {meta.gt:g}")
    if meta.ge is not None:
        parts.append("0 or greater" if meta.ge == 0 else f"at least {meta.ge:g}")
    if meta.lt is not None:
        parts.append(f"less than {meta.lt:g}")
    if meta.le is not None:
        parts.append(f"at most {meta.le:g}")
    return "must be " + " and ".join(parts)


def _value_at(data: Any, segments: Sequence[str | int]) -> Any:
    for part in segments:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _config_error(
    exc: msgspec.ValidationError,
    root: type[Table],
    data: Mapping[str, Any],
    prefix: Sequence[str | int] = (),
    given: Collection[str] = (),
    sources: Mapping[str, str] | None = None,
) -> ConfigError:
    """The :class:`ConfigError` for msgspec's error converting ``data`` into ``root``.

    Args:
        prefix: where ``data`` sits in the document (``["signals"]`` for a table alone).
        given: the key paths (``signals.x``) the file or the environment sets; a check between
            keys blames the first of its keys that is given.
        sources: key path -> the environment variable its value came from.
    """
    message, _, at = str(exc).partition(" - at `$")
    where = _segments(at.rstrip("`"))
    cause = exc.__cause__
    if isinstance(cause, FieldError):
        keys = [[*prefix, *where, *_segments("." + key)] for key in cause.keys]
        chosen = next((k for k in keys if _join(k).partition("[")[0] in given), keys[0])
        return _named(chosen, cause.reason, sources)
    path = [*prefix, *where]
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", message)
    if unknown:
        spec = _spec_at(root, where)
        table = root if spec is None else (spec.item_type or spec.type)
        names = ", ".join(s.name for s in field_specs(table))
        return _named([*path, unknown[1]], f"unknown key (expected one of: {names})", sources)
    missing = re.fullmatch(r"Object missing required field `(.+)`", message)
    if missing:
        return _named([*path, missing[1]], "missing required key", sources)
    expected = _EXPECTED.match(message)
    spec = _spec_at(root, where)
    if expected is None or spec is None:
        return _named(path, message[:1].lower() + message[1:], sources)
    item = bool(where) and isinstance(where[-1], int)
    if expected[2] is not None:  # a wrong type
        got = _GOT.get(expected[2], expected[2])
        tp = spec.item_type if item else spec.type
        if not item and isinstance(spec.item_type, type) and issubclass(spec.item_type, Table):
            shape = "a single table" if got == "table" else got
            reason = f"expected an array of tables ([[{spec.name}]]), got {shape}"
        else:
            reason = f"expected {_type_text(tp)}, got {got}"
        return _named(path, reason, sources)
    meta = spec.item_meta if item else spec.meta
    if meta.min_length:
        return _named(path, "must not be empty", sources)
    value = _value_at(data, where)
    if isinstance(value, float) and not math.isfinite(value):
        return _named(path, f"must be a finite number, got {value}", sources)
    return _named(path, f"{_bounds_text(meta)}, got {value}", sources)


def _named(
    segments: Sequence[str | int], reason: str, sources: Mapping[str, str] | None
) -> ConfigError:
    """The error at ``segments``, named by the environment variable when one set the key."""
    path = _join(segments)
    head, bracket, rest = path.partition("[")
    if sources and head in sources:
        path = sources[head] + bracket + rest
    return ConfigError(path, reason)


def _convert(
    data: Mapping[str, Any],
    root: type[Table],
    *,
    prefix: Sequence[str | int] = (),
    given: Collection[str] = (),
    sources: Mapping[str, str] | None = None,
) -> Any:
    try:
        return msgspec.convert(data, type=root, strict=True)
    except msgspec.ValidationError as exc:
        raise _config_error(exc, root, data, prefix, given, sources) from None


# --------------------------------------------------------------------------------------------
# Environment overrides
# --------------------------------------------------------------------------------------------


def _from_env(text: str, spec: FieldSpec, var: str) -> object:
    """Turn an environment string into the TOML value the key expects."""
    text = text.strip()
    tp = spec.type
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(var, f"expected a number, got {text!r}") from None
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(var, f"expected an integer, got {text!r}") from None
    if spec.item_type is int:
        try:
            return [int(part) for part in text.split(",")]
        except ValueError:
            raise ConfigError(
                var, f"expected comma-separated integers, e.g. '30,300', got {text!r}"
            ) from None
    return text


def _apply_env(doc: dict[str, Any], env: Mapping[str, str]) -> tuple[dict[str, str], set[str]]:
    """Write the ``MMRADAR_<SECTION>_<KEY>`` overrides into ``doc``.

    Each overridden table is first checked as the file writes it (a bad value in the file is
    reported even when the environment overrides it), except for the checks between keys,
    which apply to the values in force.

    Returns:
        Key path -> the variable that set it; the key paths the file or the environment sets.
    """
    sources: dict[str, str] = {}
    given: set[str] = set()
    for section, table in ENV_SECTIONS.items():
        written = doc.get(section, {})
        if isinstance(written, Mapping):
            given.update(f"{section}.{key}" for key in written)
        overrides: dict[str, tuple[FieldSpec, str, str]] = {}
        for spec in field_specs(table):
            var = env_var(section, spec.name)
            text = env.get(var)
            if text:
                overrides[spec.name] = (spec, text, var)
        if not overrides or not isinstance(written, Mapping):
            continue  # a section that is not a table is reported by the conversion
        try:
            msgspec.convert(written, type=table, strict=True)
        except msgspec.ValidationError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, FieldError) and cause.cross):
                given_here = {f"{section}.{key}" for key in written}
                raise _config_error(exc, table, written, [section], given_here) from None
        merged = dict(written)
        for name, (spec, text, var) in overrides.items():
            merged[name] = _from_env(text, spec, var)
            sources[f"{section}.{name}"] = var
            given.add(f"{section}.{name}")
        doc[section] = merged
    return sources, given


# --------------------------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------------------------


def _parse(data: Mapping[str, Any], env: Mapping[str, str], supported: Collection[str]) -> Settings:
    if not isinstance(data, Mapping):
        raise ConfigError("", f"expected a table, got {type(data).__name__}")
    doc = dict(data)
    sources, given = _apply_env(doc, env)
    config: ConfigFile = _convert(doc, ConfigFile, given=given, sources=sources)

    host, port = split_listen(config.http.listen)
    configured = _feeds(config.feeds, doc["feeds"], supported)
    shard = Shard()
    if env.get(SHARD_ENV_VAR):
        shard = parse_shard(env[SHARD_ENV_VAR], SHARD_ENV_VAR)
    elif "shard" in data:
        shard = parse_shard(config.shard, "shard")
    return Settings(
        http=HttpSettings(host, port),
        feeds=_own_feeds(configured, shard),
        webhooks=_webhooks(config, env),
        signals=config.signals,
        log=config.log,
        flight_recorder=config.flight_recorder,
        shard=shard,
        configured_feeds=configured,
    )


def _own_feeds(feeds: tuple[FeedSettings, ...], shard: Shard) -> tuple[FeedSettings, ...]:
    """The feeds restricted to the pairs ``shard`` owns, in configuration order."""
    if shard.count == 1:
        return feeds
    from ..venues import VENUES  # the venue modules know their symbols' instruments

    def instrument(pair: tuple[str, str]) -> str | None:
        venue = VENUES.get(pair[0])
        return venue().instrument(pair[1]) if venue is not None else None

    pairs = [(f.exchange, s) for f in feeds for s in f.symbols]
    owned = set(shard_pairs(pairs, shard, instrument))
    out = []
    for feed in feeds:
        symbols = tuple(s for s in feed.symbols if (feed.exchange, s) in owned)
        if symbols:
            out.append(msgspec.structs.replace(feed, symbols=symbols))
    return tuple(out)


def _check_exchange(name: str, path: str, supported: Collection[str]) -> None:
    if name in supported:
        return
    if name in KNOWN_EXCHANGES:
        listed = ", ".join(sorted(supported))
        raise ConfigError(path, f"exchange {name!r} is not supported yet (supported: {listed})")
    known = [*KNOWN_EXCHANGES, *(s for s in sorted(supported) if s not in KNOWN_EXCHANGES)]
    hint = f"; did you mean {name.lower()!r}?" if name.lower() in known else ""
    raise ConfigError(
        path, f"unknown exchange {name!r} (expected one of: {', '.join(known)}){hint}"
    )


def _symbol_problem(exchange: str, symbol: str) -> str | None:
    """The venue module's objection to ``symbol`` (``Venue.symbol_problem``), if any."""
    from ..venues import VENUES  # the venue modules know which symbols they can follow

    venue = VENUES.get(exchange)
    return venue().symbol_problem(symbol) if venue is not None else None


def _feeds(
    feeds: tuple[FeedSettings, ...],
    tables: Sequence[Mapping[str, Any]],
    supported: Collection[str],
) -> tuple[FeedSettings, ...]:
    """The checks between feeds; ``tables``: the ``[[feeds]]`` tables as written."""
    seen: dict[tuple[str, str], str] = {}  # (exchange, symbol folded) -> where first seen
    for i, feed in enumerate(feeds):
        prefix = f"feeds[{i}]"
        _check_exchange(feed.exchange, f"{prefix}.exchange", supported)
        for j, symbol in enumerate(feed.symbols):
            here = f"{prefix}.symbols[{j}]"
            first = seen.setdefault((feed.exchange, symbol.casefold()), here)
            if first != here:
                where = (
                    "" if first.startswith(f"{prefix}.") else f" on {feed.exchange} (in {first})"
                )
                raise ConfigError(here, f"duplicate symbol {symbol!r}{where}")
            problem = _symbol_problem(feed.exchange, symbol)
            if problem is not None:
                raise ConfigError(here, problem)
    explicit = [frozenset(k for k in _FEED_OPTIONS if k in table) for table in tables]
    _merge(feeds, explicit)  # the tables of one exchange must agree on their options
    return feeds


def _unset(feed: FeedSettings) -> FeedSettings:
    """``feed`` with its options as a table that does not write them."""
    return FeedSettings(feed.exchange, feed.symbols)


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
                default = _option_text(_unset(feeds[there]), key)
                other = f"feeds[{there}] does not set {key} (default {default})"
            raise ConfigError(
                f"feeds[{here}].{key}",
                f"{_option_text(feeds[here], key)} here, but {other}: the [[feeds]] tables of "
                f"one exchange ({feed.exchange}) run as one feed and must agree on "
                f"{', '.join(_FEED_OPTIONS[:-1])} and {_FEED_OPTIONS[-1]}",
            )
    return tuple(
        msgspec.structs.replace(feeds[j], symbols=tuple(symbols[x].values()))
        for x, j in first.items()
    )


def _option_text(feed: FeedSettings, key: str) -> str:
    """A feed option as TOML; an unset URL is the venue's own."""
    value = getattr(feed, key)
    if value is None:
        return "the venue's own"
    return tomli_w.dumps({"v": value}).removeprefix("v = ").rstrip("\n")


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


def _webhooks(config: ConfigFile, env: Mapping[str, str]) -> tuple[WebhookSettings, ...]:
    hooks: list[WebhookSettings] = []
    for i, table in enumerate(config.webhooks):
        prefix = f"webhooks[{i}]"
        path = f"{prefix}.url"
        template = table.url
        templated = "${" in template
        url = _resolve_env_refs(template, path, env) if templated else template
        # The resolved URL may hold a secret: messages show the template or a masked URL.
        shown = f"from {template!r}" if templated else repr(mask_url(url))
        try:
            split_url(url, ("http", "https"), shown)
        except ValueError as exc:
            raise ConfigError(path, str(exc)) from None
        hook = WebhookSettings(
            url=url, format=table.format, url_template=template if templated else None
        )
        for j, other in enumerate(hooks):
            if (other.url, other.format) == (hook.url, hook.format):
                raise ConfigError(
                    prefix, f"duplicate webhook (same url and format as webhooks[{j}])"
                )
        hooks.append(hook)
    return tuple(hooks)
