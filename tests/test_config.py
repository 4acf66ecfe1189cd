"""Tests of :mod:`mmradar.config`: loading, validation messages, overrides and printing."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mmradar.config import (
    DEFAULT_STALE_AFTER_SECONDS,
    KNOWN_EXCHANGES,
    FeedSettings,
    FlightRecorderSettings,
    HttpSettings,
    LogSettings,
    Settings,
    SignalSettings,
    WebhookSettings,
    env_override_names,
    format_settings,
    ignored_env_vars,
    load_settings,
    mask_url,
    merge_feeds,
    parse_settings,
)
from mmradar.errors import ConfigError

ALL = KNOWN_EXCHANGES

FULL_TOML = """\
[http]
listen = "[::1]:0"

[[feeds]]
exchange = "binance"
symbols = ["BTCUSDT", "ETHUSDT"]
trades = false
stale_after_seconds = 12.5
ws_url = "ws://127.0.0.1:8765"
rest_url = "http://127.0.0.1:8766/"

[[feeds]]
exchange = "kraken"
symbols = ["BTC/USD", "ETH/USD"]

[[feeds]]
exchange = "binance"
symbols = ["SOLUSDT"]
trades = false
stale_after_seconds = 12.5
ws_url = "ws://127.0.0.1:8765"
rest_url = "http://127.0.0.1:8766"

[[webhooks]]
url = "${HOOK_SECRET}"
format = "slack"

[[webhooks]]
url = "https://example.com"

[[webhooks]]
url = "https://hooks.example/${HOOK_PATH}?x=1"
format = "discord"

[signals]
inventory_half_life_seconds = 45
volatility_windows_seconds = [10, 60, 900]
volatility_sample_seconds = 0.5

[log]
level = "DEBUG"
format = "json"
"""

FULL_ENV = {"HOOK_SECRET": "https://hooks.slack.com/services/T0/B0/SECRET", "HOOK_PATH": "abc"}


def minimal(**feed: Any) -> dict[str, Any]:
    """A valid document with one feed; keyword arguments replace keys of that feed."""
    return {"feeds": [{"exchange": "binance", "symbols": ["BTCUSDT"], **feed}]}


def config_error(data: dict[str, Any], **kwargs: Any) -> ConfigError:
    """Parse ``data`` (empty environment unless given), expecting a ConfigError."""
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        parse_settings(data, **kwargs)
    return info.value


def assert_error(err: ConfigError, path: str, *fragments: str) -> None:
    assert err.path == path, str(err)
    for fragment in fragments:
        assert fragment in err.reason, str(err)
    assert str(err) == f"{path}: {err.reason}"


# --------------------------------------------------------------------------------------------
# The built-in default and valid files
# --------------------------------------------------------------------------------------------


def test_default_config_watches_btc_and_eth_on_all_six_venues() -> None:
    settings = load_settings(None, env={})
    assert settings.http == HttpSettings("127.0.0.1", 9464)
    assert [(f.exchange, f.symbols, f.trades) for f in settings.feeds] == [
        ("binance", ("BTCUSDT", "ETHUSDT", "SOLUSDT"), True),
        ("binance-usdm", ("BTCUSDT", "ETHUSDT"), True),
        ("coinbase", ("BTC-USD", "ETH-USD"), True),
        ("kraken", ("BTC/USD", "ETH/USD"), True),
        ("okx", ("BTC-USDT", "ETH-USDT"), True),
        ("bybit", ("BTCUSDT", "ETHUSDT"), True),
    ]
    # every venue's BTC and ETH are one instrument each in the cross-venue view
    from mmradar.venues import make_venue

    ids = {
        (f.exchange, s): make_venue(f.exchange).instrument(s)
        for f in settings.feeds
        for s in f.symbols
    }
    assert {v for (x, s), v in ids.items() if s.startswith("BTC")} == {"BTC-USD"}
    assert {v for (x, s), v in ids.items() if s.startswith("ETH")} == {"ETH-USD"}
    # the per-exchange stale default, not written in the file
    assert [f.stale_after_seconds for f in settings.feeds] == [
        DEFAULT_STALE_AFTER_SECONDS[f.exchange] for f in settings.feeds
    ]
    assert settings.webhooks == ()
    assert settings.signals == SignalSettings()
    assert settings.log == LogSettings()


def test_default_config_comments_show_the_defaults() -> None:
    """The commented-out values of default.toml's reference are the real defaults."""
    text = resources.files("mmradar").joinpath("defaults", "default.toml").read_text()
    tables = {
        "signals": SignalSettings,
        "log": LogSettings,
        "flight_recorder": FlightRecorderSettings,
    }
    for section, table in tables.items():
        block = text.split(f"# >>> generated: {section}\n", 1)[1].split("# <<< generated", 1)[0]
        lines = [line[2:] for line in block.splitlines() if re.match(r"# \w+ = ", line)]
        shown = tomllib.loads("\n".join(lines))
        assert parse_settings({**minimal(), section: shown}, env={}) == parse_settings(
            minimal(), env={}
        )
        assert set(shown) == {f.name for f in msgspec.structs.fields(table)}


def test_mmradar_config_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[feeds]]\nexchange = "binance-usdm"\nsymbols = ["XRPUSDT"]\n')
    settings = load_settings(None, env={"MMRADAR_CONFIG": str(path)})
    assert settings.feeds == (FeedSettings("binance-usdm", ("XRPUSDT",)),)
    # An explicit path wins over MMRADAR_CONFIG; an empty MMRADAR_CONFIG counts as unset.
    other = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(other, env={"MMRADAR_CONFIG": str(path)})
    assert_error(info.value, str(other), "cannot read file")
    assert len(load_settings(None, env={"MMRADAR_CONFIG": ""}).feeds) == 6


def test_full_file_parses(tmp_path: Path) -> None:
    path = tmp_path / "full.toml"
    path.write_text(FULL_TOML)
    settings = load_settings(path, env=FULL_ENV, supported=ALL)
    assert settings.http == HttpSettings("::1", 0)
    assert settings.http.listen == "[::1]:0"
    assert settings.feeds == (
        FeedSettings(
            "binance",
            ("BTCUSDT", "ETHUSDT"),
            trades=False,
            stale_after_seconds=12.5,
            ws_url="ws://127.0.0.1:8765",
            rest_url="http://127.0.0.1:8766",
        ),
        FeedSettings("kraken", ("BTC/USD", "ETH/USD")),
        FeedSettings(
            "binance",
            ("SOLUSDT",),
            trades=False,
            stale_after_seconds=12.5,
            ws_url="ws://127.0.0.1:8765",
            rest_url="http://127.0.0.1:8766",
        ),
    )
    assert settings.webhooks == (
        WebhookSettings(FULL_ENV["HOOK_SECRET"], "slack", "${HOOK_SECRET}"),
        WebhookSettings("https://example.com", "json", None),
        WebhookSettings(
            "https://hooks.example/abc?x=1", "discord", "https://hooks.example/${HOOK_PATH}?x=1"
        ),
    )
    assert settings.signals == SignalSettings(45.0, (10, 60, 900), 0.5)
    assert isinstance(settings.signals.inventory_half_life_seconds, float)
    assert settings.log == LogSettings("debug", "json")


def test_full_file_round_trips_through_format_settings() -> None:
    settings = parse_settings(tomllib.loads(FULL_TOML), env=FULL_ENV, supported=ALL)
    text = format_settings(settings)
    assert parse_settings(tomllib.loads(text), env=FULL_ENV, supported=ALL) == settings
    default = load_settings(None, env={})
    assert parse_settings(tomllib.loads(format_settings(default)), env={}) == default


def test_format_settings_never_prints_secrets() -> None:
    data = {
        **minimal(),
        "webhooks": [
            {"url": "${HOOK_SECRET}"},
            {"url": "https://hooks.slack.com/services/T0/B0/PLAINSECRET"},
            {"url": "https://user:pw@example.com"},
        ],
    }
    settings = parse_settings(data, env=FULL_ENV)
    text = format_settings(settings)
    assert "SECRET" not in text.replace("${HOOK_SECRET}", "")
    assert "pw" not in text
    assert 'url = "${HOOK_SECRET}"' in text
    assert 'url = "https://hooks.slack.com/***"' in text
    assert 'url = "https://example.com/***"' in text
    assert "SECRET" not in repr(settings).replace("${HOOK_SECRET}", "")


def test_format_settings_escapes_strings() -> None:
    settings = parse_settings(minimal(symbols=['A"B\\C', "é€"]), env={})
    assert parse_settings(tomllib.loads(format_settings(settings)), env={}) == settings


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://hooks.slack.com/services/x", "https://hooks.slack.com/***"),
        ("http://h:8080/a?b=c", "http://h:8080/***"),
        ("https://example.com", "https://example.com"),
        ("https://example.com/", "https://example.com/"),
        ("https://u:p@example.com", "https://example.com/***"),
        ("not a url", "***"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_int_accepted_for_float_and_listen_forms() -> None:
    settings = parse_settings(
        {**minimal(stale_after_seconds=5), "http": {"listen": "0.0.0.0:80"}}, env={}
    )
    assert settings.feeds[0].stale_after_seconds == 5.0
    assert settings.http == HttpSettings("0.0.0.0", 80)
    assert parse_settings({**minimal(), "http": {"listen": "localhost:1"}}, env={}).http == (
        HttpSettings("localhost", 1)
    )


def test_same_symbol_on_different_exchanges_is_fine() -> None:
    data = {
        "feeds": [
            {"exchange": "binance", "symbols": ["BTCUSDT"]},
            {"exchange": "binance-usdm", "symbols": ["BTCUSDT"]},
        ]
    }
    assert len(parse_settings(data, env={}).feeds) == 2


# --------------------------------------------------------------------------------------------
# Errors: exact key path and a helpful reason
# --------------------------------------------------------------------------------------------


def test_unknown_top_level_key() -> None:
    err = config_error({**minimal(), "feed": []})
    expected = "expected one of: shard, http, feeds, webhooks, signals, log"
    assert_error(err, "feed", "unknown key", expected)


def test_unknown_key_in_feed() -> None:
    err = config_error({"feeds": [minimal()["feeds"][0], minimal(trade=True)["feeds"][0]]})
    assert_error(err, "feeds[1].trade", "unknown key (expected one of: exchange, symbols, trades, ")


def test_unknown_key_in_sections() -> None:
    assert_error(config_error({**minimal(), "signals": {"foo": 1}}), "signals.foo", "unknown key")
    assert_error(config_error({**minimal(), "http": {"port": 1}}), "http.port", "listen")
    err = config_error({**minimal(), "webhooks": [{"url": "https://x", "secret": "s"}]})
    assert_error(err, "webhooks[0].secret", "unknown key (expected one of: url, format)")


@pytest.mark.parametrize(
    ("feed", "path", "reason"),
    [
        ({"symbols": "BTCUSDT"}, "feeds[0].symbols", "expected a list of strings, got str"),
        ({"symbols": ["BTCUSDT", 5]}, "feeds[0].symbols[1]", "expected a string, got int"),
        ({"symbols": []}, "feeds[0].symbols", "must not be empty"),
        ({"symbols": ["BTCUSDT", ""]}, "feeds[0].symbols[1]", "must not be empty"),
        ({"symbols": ["BTC USDT"]}, "feeds[0].symbols[0]", "must not contain whitespace"),
        (
            {"symbols": ["BTCUSDT", "ETHUSDT", "BTCUSDT"]},
            "feeds[0].symbols[2]",
            "duplicate symbol 'BTCUSDT'",
        ),
        ({"symbols": ["BTCUSDT", "btcusdt"]}, "feeds[0].symbols[1]", "duplicate symbol"),
        ({"trades": "yes"}, "feeds[0].trades", "expected a boolean (true or false), got str"),
        ({"stale_after_seconds": True}, "feeds[0].stale_after_seconds", "expected a number"),
        ({"stale_after_seconds": "60"}, "feeds[0].stale_after_seconds", "got str"),
        ({"stale_after_seconds": 0}, "feeds[0].stale_after_seconds", "must be greater than 0"),
        ({"stale_after_seconds": float("inf")}, "feeds[0].stale_after_seconds", "finite"),
        ({"exchange": 3}, "feeds[0].exchange", "expected a string, got int"),
    ],
)
def test_bad_feed_values(feed: dict[str, Any], path: str, reason: str) -> None:
    assert_error(config_error(minimal(**feed)), path, reason)


def test_bool_is_not_a_number_message() -> None:
    err = config_error(minimal(stale_after_seconds=True))
    assert err.reason == "expected a number, got bool"


@pytest.mark.parametrize(
    ("key", "url", "reason"),
    [
        ("ws_url", "http://x", "invalid URL 'http://x': scheme must be ws or wss"),
        ("ws_url", "wss://x:443/ws", "without a path (got '/ws')"),
        ("ws_url", "wss://x?a=1", "must not have a query or fragment"),
        ("ws_url", "wss://x:99999", "invalid URL 'wss://x:99999'"),
        ("ws_url", "wss://", "invalid URL 'wss://'"),
        ("rest_url", "ftp://x", "invalid URL 'ftp://x': scheme must be http or https"),
        ("rest_url", "not a url", "invalid URL 'not a url': expected https://host[:port]"),
        ("rest_url", "https://u:p@x", "must not contain user info"),
        ("ws_url", 5, "expected a string, got int"),
    ],
)
def test_bad_base_urls(key: str, url: object, reason: str) -> None:
    assert_error(config_error(minimal(**{key: url})), f"feeds[0].{key}", reason)


def test_missing_required_keys() -> None:
    assert_error(config_error({}), "feeds", "missing required key")
    err = config_error({"feeds": [{"symbols": ["BTCUSDT"]}]})
    assert_error(err, "feeds[0].exchange", "missing required key")
    assert_error(config_error({"feeds": [{"exchange": "binance"}]}), "feeds[0].symbols", "missing")
    err = config_error({**minimal(), "webhooks": [{"format": "json"}]})
    assert err.reason == "missing required key"
    assert err.path == "webhooks[0].url"


def test_feeds_shapes() -> None:
    assert_error(config_error({"feeds": []}), "feeds", "must not be empty")
    err = config_error({"feeds": {"exchange": "binance", "symbols": ["X"]}})
    assert_error(err, "feeds", "expected an array of tables ([[feeds]])")
    assert_error(config_error({"feeds": [1]}), "feeds[0]", "expected a table, got int")
    assert_error(config_error({**minimal(), "http": "x"}), "http", "expected a table, got str")


def test_duplicate_symbol_across_feeds() -> None:
    data = {
        "feeds": [
            {"exchange": "binance", "symbols": ["BTCUSDT", "ETHUSDT"]},
            {"exchange": "binance-usdm", "symbols": ["ETHUSDT"]},
            {"exchange": "binance", "symbols": ["ETHUSDT"]},
        ]
    }
    err = config_error(data)
    assert_error(err, "feeds[2].symbols[0]", "duplicate symbol 'ETHUSDT'", "feeds[0].symbols[1]")


# Several [[feeds]] tables of one exchange run as one feed: they must agree on every option.


def test_tables_of_one_exchange_merge_into_one_feed() -> None:
    data = {
        "feeds": [
            {"exchange": "binance", "symbols": ["BTCUSDT", "ETHUSDT"], "trades": False},
            {"exchange": "kraken", "symbols": ["BTC/USD"]},
            {"exchange": "binance", "symbols": ["SOLUSDT"], "trades": False},
            {"exchange": "binance", "symbols": ["XRPUSDT"], "trades": False},
        ]
    }
    settings = parse_settings(data, env={}, supported=ALL)
    assert len(settings.feeds) == 4  # the tables as written (check-config prints them so)
    assert merge_feeds(settings.feeds) == (
        FeedSettings("binance", ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"), trades=False),
        FeedSettings("kraken", ("BTC/USD",)),
    )
    assert merge_feeds(merge_feeds(settings.feeds)) == merge_feeds(settings.feeds)


@pytest.mark.parametrize(
    ("key", "first", "second"),
    [
        ("trades", False, True),
        ("stale_after_seconds", 60, 30),
        ("ws_url", "ws://127.0.0.1:1", "ws://127.0.0.1:2"),
        ("rest_url", "http://127.0.0.1:1", "http://127.0.0.1:2"),
    ],
)
def test_tables_of_one_exchange_must_agree_on_options(key: str, first: Any, second: Any) -> None:
    def document(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        return {
            "feeds": [
                {"exchange": "binance", "symbols": ["BTCUSDT"], **a},
                {"exchange": "binance-usdm", "symbols": ["BTCUSDT"], key: second},
                {"exchange": "binance", "symbols": ["ETHUSDT"], **b},
            ]
        }

    # Both tables write the key: the later one is reported, naming the first.
    err = config_error(document({key: first}, {key: second}))
    assert_error(
        err, f"feeds[2].{key}", f"feeds[0].{key} = ", "one exchange (binance) run as one feed"
    )
    # Only one writes it (the other has the default): the one that writes it is reported.
    default = getattr(FeedSettings("x", ("y",)), key)
    if first != default:
        err = config_error(document({key: first}, {}))
        assert_error(err, f"feeds[0].{key}", f"feeds[2] does not set {key} (default ")
    if second != default:
        err = config_error(document({}, {key: second}))
        assert_error(err, f"feeds[2].{key}", f"feeds[0] does not set {key} (default ")
    # Writing the default explicitly agrees with leaving it out; other exchanges do not count.
    parse_settings(document({key: default} if default is not None else {}, {}), env={})
    parse_settings(document({key: second}, {key: second}), env={})


def test_merge_feeds_refuses_tables_that_disagree() -> None:
    feeds = [
        FeedSettings("binance", ("BTCUSDT",)),
        FeedSettings("binance", ("ETHUSDT",), stale_after_seconds=5.0),
    ]
    with pytest.raises(ConfigError) as info:
        merge_feeds(feeds)
    assert info.value.path == "feeds[1].stale_after_seconds"
    default = DEFAULT_STALE_AFTER_SECONDS["binance"]
    assert f"5.0 here, but feeds[0].stale_after_seconds = {default}" in info.value.reason
    with pytest.raises(ConfigError) as info:
        merge_feeds([FeedSettings("binance", ("BTCUSDT",)), FeedSettings("binance", ("btcusdt",))])
    assert info.value.path == "feeds[1].symbols[0]"


def test_unknown_exchange() -> None:
    err = config_error(minimal(exchange="foo"))
    assert_error(
        err,
        "feeds[0].exchange",
        "unknown exchange 'foo' (expected one of: binance, binance-usdm, coinbase, kraken, okx, "
        "bybit)",
    )
    assert "did you mean 'binance'" in config_error(minimal(exchange="Binance")).reason


def test_known_but_unsupported_exchange() -> None:
    err = config_error(
        minimal(exchange="kraken", symbols=["BTC/USD"]), supported=("binance", "binance-usdm")
    )
    assert_error(
        err,
        "feeds[0].exchange",
        "exchange 'kraken' is not supported yet (supported: binance, binance-usdm)",
    )
    data = minimal(exchange="kraken", symbols=["BTC/USD"])
    assert parse_settings(data, env={}, supported=["kraken"]).feeds[0].exchange == "kraken"


@pytest.mark.parametrize(
    ("listen", "reason"),
    [
        ("9464", "invalid listen address '9464': expected 'host:port'"),
        ("host:notaport", "invalid listen address 'host:notaport': port must be an integer"),
        ("127.0.0.1:70000", "port 70000 is out of range 0-65535"),
        ("127.0.0.1:", "port must be an integer"),
        (":9464", "missing host"),
        ("::1:9464", "IPv6 host must be in brackets"),
        ("[::1:9464", "missing ']'"),
        ("[nothost]:1", "'nothost' is not an IPv6 address"),
        ("[::1]9464", "missing port"),
        ("bad host:1", "'bad host' is not a host name or address"),
        (9464, "expected a string, got int"),
    ],
)
def test_bad_http_listen(listen: object, reason: str) -> None:
    assert_error(config_error({**minimal(), "http": {"listen": listen}}), "http.listen", reason)


def test_bad_webhooks() -> None:
    def hook_error(**hook: Any) -> ConfigError:
        return config_error({**minimal(), "webhooks": [{"url": "https://h/x", **hook}]})

    err = hook_error(format="teams")
    assert_error(err, "webhooks[0].format", "expected one of: json, slack, discord (got 'teams')")
    err = hook_error(url="${MISSING}")
    assert_error(err, "webhooks[0].url", "environment variable 'MISSING' is not set")
    err = config_error(
        {**minimal(), "webhooks": [{"url": "https://h/${EMPTY}"}]}, env={"EMPTY": ""}
    )
    assert_error(err, "webhooks[0].url", "environment variable 'EMPTY' is empty")
    assert_error(hook_error(url="https://h/${X"), "webhooks[0].url", "unclosed '${'")
    assert_error(hook_error(url="${a-b}"), "webhooks[0].url", "invalid environment variable")
    assert_error(hook_error(url=""), "webhooks[0].url", "must not be empty")
    err = hook_error(url="ftp://h/secret-path")
    assert_error(err, "webhooks[0].url", "invalid URL 'ftp://h/***': scheme must be http or https")
    err = config_error({**minimal(), "webhooks": [{"url": "https://a/1"}, {"url": "https://a/1"}]})
    assert_error(err, "webhooks[1]", "duplicate webhook", "webhooks[0]")


def test_bad_resolved_webhook_url_does_not_leak_the_secret() -> None:
    data = {**minimal(), "webhooks": [{"url": "${HOOK}"}]}
    err = config_error(data, env={"HOOK": "htp://hooks/SECRET"})
    assert_error(err, "webhooks[0].url", "invalid URL from '${HOOK}': scheme must be http")
    assert "SECRET" not in str(err)


@pytest.mark.parametrize(
    ("signals", "path", "reason"),
    [
        ({"inventory_half_life_seconds": 0}, "signals.inventory_half_life_seconds", "> 0"),
        ({"inventory_half_life_seconds": -1.5}, "signals.inventory_half_life_seconds", "> 0"),
        ({"volatility_sample_seconds": False}, "signals.volatility_sample_seconds", "got bool"),
        ({"volatility_windows_seconds": []}, "signals.volatility_windows_seconds", "empty"),
        ({"volatility_windows_seconds": 30}, "signals.volatility_windows_seconds", "got int"),
        (
            {"volatility_windows_seconds": [30, 30]},
            "signals.volatility_windows_seconds[1]",
            "must be strictly increasing, got 30 after 30",
        ),
        ({"volatility_windows_seconds": [0]}, "signals.volatility_windows_seconds[0]", "> 0"),
        (
            {"volatility_windows_seconds": [30.0]},
            "signals.volatility_windows_seconds[0]",
            "expected an integer, got float",
        ),
        (
            {"volatility_windows_seconds": [5], "volatility_sample_seconds": 3},
            "signals.volatility_windows_seconds",
            "at least two samples",
        ),
    ],
)
def test_bad_signals(signals: dict[str, Any], path: str, reason: str) -> None:
    reason = reason.replace("> 0", "must be greater than 0")
    assert_error(config_error({**minimal(), "signals": signals}), path, reason)


def test_bad_log() -> None:
    err = config_error({**minimal(), "log": {"level": "verbose"}})
    assert_error(err, "log.level", "expected one of: debug, info, warning, error (got 'verbose')")
    err = config_error({**minimal(), "log": {"format": "JSON"}})
    assert_error(err, "log.format", "expected one of: text, json")


# --------------------------------------------------------------------------------------------
# Environment overrides
# --------------------------------------------------------------------------------------------


def test_env_overrides_beat_the_file() -> None:
    data = {
        **minimal(),
        "http": {"listen": "127.0.0.1:1"},
        "signals": {"volatility_sample_seconds": 2},
    }
    env = {
        "MMRADAR_HTTP_LISTEN": "0.0.0.0:9999",
        "MMRADAR_SIGNALS_INVENTORY_HALF_LIFE_SECONDS": "30",
        "MMRADAR_SIGNALS_VOLATILITY_WINDOWS_SECONDS": " 15, 120 ",
        "MMRADAR_LOG_LEVEL": "WARNING",
        "MMRADAR_LOG_FORMAT": "json",
        "MMRADAR_CONFIG": "/nonexistent",  # ignored by parse_settings
        "MMRADAR_SOMETHING_ELSE": "x",  # unknown: ignored
    }
    settings = parse_settings(data, env=env)
    assert settings.http == HttpSettings("0.0.0.0", 9999)
    assert settings.signals == SignalSettings(30.0, (15, 120), 2.0)
    assert settings.log == LogSettings("warning", "json")


def test_env_overrides_apply_to_the_default() -> None:
    settings = load_settings(None, env={"MMRADAR_HTTP_LISTEN": "[::]:0"})
    assert settings.http == HttpSettings("::", 0)


def test_empty_env_override_counts_as_unset() -> None:
    settings = parse_settings(minimal(), env={"MMRADAR_HTTP_LISTEN": "", "MMRADAR_LOG_LEVEL": ""})
    assert settings.http == HttpSettings()
    assert settings.log == LogSettings()


LISTEN = "MMRADAR_HTTP_LISTEN"
HALF_LIFE = "MMRADAR_SIGNALS_INVENTORY_HALF_LIFE_SECONDS"
SAMPLE = "MMRADAR_SIGNALS_VOLATILITY_SAMPLE_SECONDS"
WINDOWS = "MMRADAR_SIGNALS_VOLATILITY_WINDOWS_SECONDS"


@pytest.mark.parametrize(
    ("var", "value", "path", "reason"),
    [
        (LISTEN, "9464", LISTEN, "invalid listen address '9464'"),
        (LISTEN, "h:99999", LISTEN, "out of range"),
        (HALF_LIFE, "abc", HALF_LIFE, "expected a number, got 'abc'"),
        (HALF_LIFE, "true", HALF_LIFE, "expected a number, got 'true'"),
        (HALF_LIFE, "-1", HALF_LIFE, "must be greater than 0"),
        (SAMPLE, "nan", SAMPLE, "finite"),
        (WINDOWS, "30,x", WINDOWS, "comma-separated integers"),
        (WINDOWS, "30,", WINDOWS, "comma-separated integers"),
        (WINDOWS, "300,30", f"{WINDOWS}[1]", "strictly increasing"),
        (WINDOWS, "1,10", WINDOWS, "at least two samples"),
        ("MMRADAR_LOG_LEVEL", "loud", "MMRADAR_LOG_LEVEL", "expected one of: debug, info"),
        ("MMRADAR_LOG_FORMAT", "xml", "MMRADAR_LOG_FORMAT", "expected one of: text, json"),
    ],
)
def test_bad_env_value_names_the_variable(var: str, value: str, path: str, reason: str) -> None:
    assert_error(config_error(minimal(), env={var: value}), path, reason)


def test_bad_file_value_is_reported_even_when_overridden() -> None:
    data = {**minimal(), "http": {"listen": "nope"}}
    err = config_error(data, env={"MMRADAR_HTTP_LISTEN": "127.0.0.1:1"})
    assert err.path == "http.listen"


def test_env_override_names_and_ignored_vars() -> None:
    names = env_override_names()
    assert "MMRADAR_HTTP_LISTEN" in names
    assert "MMRADAR_LOG_LEVEL" in names
    assert "MMRADAR_LOG_FORMAT" in names
    for f in msgspec.structs.fields(SignalSettings):
        assert f"MMRADAR_SIGNALS_{f.name.upper()}" in names
    env = {"MMRADAR_CONFIG": "x", "MMRADAR_HTTP_LISTEN": "x", "MMRADAR_LOG_LEVLE": "x", "PATH": ""}
    assert ignored_env_vars(env) == ["MMRADAR_LOG_LEVLE"]


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[http]\nlisten = "127.0.0.1:9464\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.path == str(path)
    assert info.value.reason.startswith("invalid TOML: ")
    assert "line 2" in info.value.reason


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml", env={})
    assert_error(info.value, str(tmp_path / "nope.toml"), "cannot read file", "No such file")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path, env={})
    assert info.value.path == str(tmp_path)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError) as info:
        load_settings(binary, env={})
    assert_error(info.value, str(binary), "not UTF-8")


def test_key_errors_in_a_file_carry_the_file_as_a_note(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[[feeds]]\nexchange = "binance"\nsymbols = []\n')
    with pytest.raises(ConfigError) as info:
        load_settings(str(path), env={})
    assert_error(info.value, "feeds[0].symbols", "must not be empty")
    assert f"in {path}" in info.value.__notes__


def test_settings_are_frozen_and_slotted() -> None:
    settings = load_settings(None, env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.http.port = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        settings.signals.warmup_seconds = 1.0  # type: ignore[misc]
    for cls in (HttpSettings, FeedSettings, WebhookSettings, SignalSettings, LogSettings, Settings):
        assert "__slots__" in cls.__dict__


# --------------------------------------------------------------------------------------------
# [signals]: detector parameters
# --------------------------------------------------------------------------------------------

#: A value for every [signals] key, each different from its default.
SIGNALS_CHANGED: dict[str, Any] = {
    "inventory_half_life_seconds": 45,
    "volatility_windows_seconds": [10, 60],
    "volatility_sample_seconds": 0.5,
    "warmup_seconds": 0,
    "baseline_minutes": 15,
    "min_firing_seconds": 8,
    "cooldown_seconds": 2,
    "thin_book_notional": 1e6,
    "arl0_hours": 24,
    "release_seconds": 5,
    "near_touch_levels": 20,
    "near_touch_bps": 3,
    "depth_log_floor": 0.2,
    "spread_shift": 6,
    "spread_z_floor": 0.2,
    "spread_wide_window_seconds": 20,
    "spread_wide_floor": 0.05,
    "evaporation_shift": 6,
    "evaporation_other_ratio": 0.9,
    "asymmetry_shift": 3,
    "asymmetry_z_floor": 0.1,
    "pull_band_bps": 50,
    "pull_shift": 3,
    "pull_total_ratio_on": 0.2,
    "pull_side_ratio_on": 0.4,
    "pull_spread_z_on": 2,
    "pull_fill_ratio_on": 4,
    "fill_notional": 100000,
    "skew_shift": 4,
    "skew_z_floor": 0.1,
    "skew_window_seconds": 3,
    "volatility_ratio": 3,
    "volatility_z_floor": 0.2,
    "volatility_fast_half_life_seconds": 20,
    "volatility_floor_bps": 0.2,
    "removal_window_seconds": 30,
    "removal_match_seconds": 0.5,
    "ofi_windows_seconds": [5, 30],
    "trade_flow_windows_seconds": [30],
    "inventory_half_lives_seconds": [5, 300],
    "flow_baseline_half_life_seconds": 900,
    "flow_warmup_seconds": 60,
    "pressure_clip": 3,
    "pressure_scale": 2,
    "withdrawal_band_bps": 50,
    "withdrawal_ratio_on": 0.25,
    "withdrawal_ratio_off": 0.5,
    "withdrawal_others_ratio": 0.8,
    "withdrawal_on_seconds": 5,
    "withdrawal_off_seconds": 20,
    "basis_change_seconds": 30,
    "basis_z_floor_bps": 1.5,
    "leadlag_window_seconds": 600,
    "leadlag_max_lag_seconds": 5,
    "leadlag_min_active_seconds": 40,
    "hedge_burst_seconds": 3,
    "hedge_flow_z": 4.0,
    "hedge_follower_z": 2.0,
    "hedge_gap_seconds": 3,
    "hedge_min_lag_seconds": 1,
    "hedge_reversal_seconds": 30,
    "hedge_flow_floor_notional": 5000,
    "hedge_scale_seconds": 600,
    "hedge_flow_clip": 6.0,
    "hedge_cusum_drift": 1.0,
    "hedge_follower_cusum": 15.0,
    "hedge_common_shock": 5.0,
    "hedge_basis_move_z": 2.0,
    "hedge_basis_level_z": 1.0,
    "hedge_on_seconds": 3,
    "hedge_off_seconds": 20,
}


def test_every_signal_key_is_settable_and_round_trips() -> None:
    assert set(SIGNALS_CHANGED) == {f.name for f in msgspec.structs.fields(SignalSettings)}
    settings = parse_settings({**minimal(), "signals": SIGNALS_CHANGED}, env={})
    for key, value in SIGNALS_CHANGED.items():
        got = getattr(settings.signals, key)
        assert got == (tuple(value) if isinstance(value, list) else value), key
        assert got != getattr(SignalSettings(), key), key
    assert isinstance(settings.signals.baseline_minutes, int)
    assert isinstance(settings.signals.warmup_seconds, float)
    text = format_settings(settings)
    assert parse_settings(tomllib.loads(text), env={}) == settings


@pytest.mark.parametrize(
    ("signals", "path", "reason"),
    [
        ({"warmup_seconds": -1}, "signals.warmup_seconds", "must be 0 or greater"),
        ({"baseline_minutes": 0}, "signals.baseline_minutes", "must be greater than 0"),
        ({"baseline_minutes": 1.5}, "signals.baseline_minutes", "expected an integer, got float"),
        ({"pull_band_bps": 5}, "signals.pull_band_bps", "one of the depth bands"),
        ({"pull_total_ratio_on": 1.5}, "signals.pull_total_ratio_on", "at most 1"),
        ({"spread_shift": "4"}, "signals.spread_shift", "expected a number, got str"),
        ({"cooldown_seconds": math.inf}, "signals.cooldown_seconds", "finite"),
        ({"arl0_hours": 0}, "signals.arl0_hours", "must be greater than 0"),
        ({"near_touch_levels": 2.5}, "signals.near_touch_levels", "expected an integer"),
        ({"volatility_ratio": 1}, "signals.volatility_ratio", "must be greater than 1"),
        ({"withdrawal_ratio_off": 0.2}, "signals.withdrawal_ratio_off", "hysteresis"),
    ],
)
def test_bad_detector_parameters(signals: dict[str, Any], path: str, reason: str) -> None:
    assert_error(config_error({**minimal(), "signals": signals}), path, reason)


def test_signal_env_overrides_cover_ints_and_lists() -> None:
    env = {
        "MMRADAR_SIGNALS_WARMUP_SECONDS": "60",
        "MMRADAR_SIGNALS_BASELINE_MINUTES": "10",
        "MMRADAR_SIGNALS_OFI_WINDOWS_SECONDS": "5,30,120",
        "MMRADAR_SIGNALS_ARL0_HOURS": "24",
    }
    signals = parse_settings(minimal(), env=env).signals
    assert signals.warmup_seconds == 60.0
    assert signals.baseline_minutes == 10
    assert signals.ofi_windows_seconds == (5, 30, 120)
    assert signals.arl0_hours == 24.0
    err = config_error(minimal(), env={"MMRADAR_SIGNALS_BASELINE_MINUTES": "1.5"})
    assert_error(err, "MMRADAR_SIGNALS_BASELINE_MINUTES", "expected an integer, got '1.5'")
    err = config_error(minimal(), env={"MMRADAR_SIGNALS_WITHDRAWAL_RATIO_OFF": "0.2"})
    assert_error(err, "MMRADAR_SIGNALS_WITHDRAWAL_RATIO_OFF", "hysteresis")
