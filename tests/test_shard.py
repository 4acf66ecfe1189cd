"""Sharding: n replicas with one configuration watch every (exchange, symbol) pair exactly once."""

from __future__ import annotations

import tomllib
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmradar.config import format_settings, parse_settings
from mmradar.errors import ConfigError
from mmradar.shard import Shard, parse_shard, shard_pairs

EXCHANGES = ("binance", "binance-usdm")


def document(feeds: list[tuple[str, list[str]]], shard: str | None = None) -> dict[str, object]:
    doc: dict[str, object] = {"feeds": [{"exchange": x, "symbols": s} for x, s in feeds]}
    if shard is not None:
        doc["shard"] = shard
    return doc


FEEDS = [
    ("binance", ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT"]),
    ("binance-usdm", ["BTCUSDT", "ETHUSDT"]),
    ("binance", ["ADAUSDT", "BNBUSDT"]),
]
ALL_PAIRS = {(x, s) for x, symbols in FEEDS for s in symbols}


def owned(shard: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    settings = parse_settings(document(FEEDS, shard), env=env or {}, supported=EXCHANGES)
    assert settings.shard == parse_shard((env or {}).get("MMRADAR_SHARD", shard))
    assert settings.configured_feeds and len(settings.configured_feeds) == len(FEEDS)
    return [(f.exchange, s) for f in settings.feeds for s in f.symbols]


@pytest.mark.parametrize("n", range(1, 9))
def test_shards_of_the_configuration_are_disjoint_and_cover_it(n: int) -> None:
    shares = [owned(f"{i}/{n}") for i in range(n)]
    counts = Counter(pair for share in shares for pair in share)
    assert set(counts) == ALL_PAIRS  # no gap
    assert max(counts.values()) == 1  # no overlap
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 2  # balanced to within the largest group (BTC on 2 venues)
    # every venue of an instrument is on one replica: the cross-venue view sees them all
    for symbol in ("BTCUSDT", "ETHUSDT"):
        holders = [i for i, share in enumerate(shares) if ("binance", symbol) in share]
        assert [i for i, share in enumerate(shares) if ("binance-usdm", symbol) in share] == holders


@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(("a", "b", "c")), st.text("XYZxyz", min_size=1, max_size=4)),
        max_size=40,
    ),
    n=st.integers(1, 12),
)
def test_shard_pairs_partitions_any_list(pairs: list[tuple[str, str]], n: int) -> None:
    def group(pair: tuple[str, str]) -> str | None:
        return pair[1][0].upper() if pair[1][0] != "x" else None  # instrument: the first letter

    shares = [shard_pairs(pairs, Shard(i, n), group) for i in range(n)]
    flat = [pair for share in shares for pair in share]
    assert sorted(flat) == sorted(set(pairs))
    assert len(flat) == len(set(flat))
    for share in shares:  # groups are never split
        for other in shares:
            if other is not share:
                assert not {group(p) for p in share if group(p)} & {
                    group(p) for p in other if group(p)
                }
    # Independent of the order the configuration lists the pairs in.
    assert shares == [shard_pairs(list(reversed(pairs)), Shard(i, n), group) for i in range(n)]


def test_groups_go_largest_first_to_the_least_loaded_replica() -> None:
    # Groups: BTC-USD and ETH-USD (two venues each), then ADA, BNB, DOGE, SOL, XRP alone;
    # replica 0 gets BTC, ADA, DOGE, XRP; replica 1 gets ETH, BNB, SOL (configuration order).
    assert owned("0/2") == [
        ("binance", "BTCUSDT"),
        ("binance", "XRPUSDT"),
        ("binance", "DOGEUSDT"),
        ("binance-usdm", "BTCUSDT"),
        ("binance", "ADAUSDT"),
    ]
    assert owned("1/2") == [
        ("binance", "ETHUSDT"),
        ("binance", "SOLUSDT"),
        ("binance-usdm", "ETHUSDT"),
        ("binance", "BNBUSDT"),
    ]


def test_environment_beats_the_file_and_more_replicas_than_pairs_leaves_some_idle() -> None:
    assert owned("0/1", env={"MMRADAR_SHARD": "1/2"}) == owned("1/2")
    one = [("binance", ["BTCUSDT"])]
    replicas = [
        parse_settings(document(one, f"{i}/3"), env={}, supported=EXCHANGES) for i in range(3)
    ]
    assert sorted(len(r.feeds) for r in replicas) == [0, 0, 1]
    assert all(len(r.configured_feeds) == 1 for r in replicas)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("2/2", "less than the count"), ("0/0", "at least 1"), ("1", "index/count"), ("a/b", "")],
)
def test_bad_shard_names_the_key(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(document(FEEDS, text), env={}, supported=EXCHANGES)
    assert info.value.path == "shard"
    assert fragment in info.value.reason
    with pytest.raises(ConfigError) as info:
        parse_settings(document(FEEDS), env={"MMRADAR_SHARD": text}, supported=EXCHANGES)
    assert info.value.path == "MMRADAR_SHARD"


def test_effective_config_round_trips_with_the_shard() -> None:
    settings = parse_settings(document(FEEDS, "1/3"), env={}, supported=EXCHANGES)
    text = format_settings(settings)
    assert 'shard = "1/3"' in text
    again = parse_settings(tomllib.loads(text), env={}, supported=EXCHANGES)
    assert again.feeds == settings.feeds
    assert again.configured_feeds == settings.configured_feeds
