"""Tests of :mod:`mmradar.record` (format, writer, reader) and :mod:`mmradar.replay`."""

from __future__ import annotations

import gzip
import io
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from fake_clock import FakeClock
from mmradar.book.sync import FetchSnapshot
from mmradar.embedded.capture import capture_path
from mmradar.model import Side
from mmradar.pipeline import FeedPipeline
from mmradar.record import (
    FORMAT_VERSION,
    Recorder,
    RecordingReader,
    open_recording,
    recording_name,
)
from mmradar.replay import ReplayResult, format_summary, replay
from mmradar.replayer import CountingObserver, Replayer, build_pipelines
from mmradar.venues import make_venue
from mmradar.venues.base import ConnectionPlan

ROOT = Path(__file__).resolve().parents[2]
SYM = "BTCUSDT"
SEC = 1_000_000_000
T0 = 1_723_161_253_000_000_000  # 2024-08-08 23:54:13 UTC


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


def _capture(market: str) -> Path:
    path = Path(str(capture_path(market)))  # packaged with mmradar (MIT notice beside it)
    assert path.is_file(), f"capture {path.name} missing from mmradar/data"
    return path


@pytest.fixture(params=["spot", "usdm"])
def capture(request: pytest.FixtureRequest) -> tuple[str, Path]:
    market: str = request.param
    return ("binance" if market == "spot" else "binance-usdm"), _capture(market)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], str]:
    """Every sample of the registry, NaN-comparable.

    Left out: ``_created`` timestamps and the process collector's ``process_*`` samples (CPU
    seconds, resident memory), which describe the test process rather than the replay.
    """
    out = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created") or sample.name.startswith("process_"):
                continue
            out[(sample.name, tuple(sorted(sample.labels.items())))] = repr(sample.value)
    return out


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def _depth(U: int, u: int, t: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    data = {"e": "depthUpdate", "E": t // 1_000_000, "s": SYM, "U": U, "u": u, "b": bids, "a": asks}
    return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data}).decode()


def _trade(n: int, t: int, price: str, qty: str, seller_aggressed: bool) -> dict[str, Any]:
    data = {
        "e": "trade",
        "E": t // 1_000_000,
        "s": SYM,
        "t": n,
        "p": price,
        "q": qty,
        "T": t // 1_000_000,
        "m": seller_aggressed,
        "M": True,
    }
    return {"stream": "btcusdt@trade", "data": data}


def _snapshot(last_id: int, mid: int) -> bytes:
    bids = [[f"{mid - i}.00", f"{1 + i}.5"] for i in range(1, 30)]
    asks = [[f"{mid + i}.00", f"{2 + i}.25"] for i in range(1, 30)]
    return orjson.dumps({"lastUpdateId": last_id, "bids": bids, "asks": asks})


PLAN = make_venue("binance").connections([SYM], trades=True)[0]


def _script(step_ns: int = 2 * SEC) -> list[tuple[str, int, Any]]:
    """A protocol-exact Binance spot session: ``(op, t, payload)``, with one reconnect."""
    ops: list[tuple[str, int, Any]] = []
    t = T0

    def add(op: str, payload: Any = None) -> None:
        nonlocal t
        t += step_ns
        ops.append((op, t, payload))

    add("open")
    add("ws", _depth(95, 99, t, [["1000.00", "9"]], []))  # older than the snapshot: dropped
    add("ws", _depth(100, 102, t, [["999.00", "7"]], [["1001.00", "3"]]))  # straddles: applied
    add("ws", orjson.dumps(_trade(1, t, "1001.00", "0.5", False)).decode())
    add("rest", _snapshot(100, 1000))
    add("ws", _depth(103, 105, t, [["998.00", "0"]], [["1002.00", "4.5"]]))
    add("ws", orjson.dumps(_trade(2, t, "999.00", "0.25", True)))  # a binary frame
    for k in range(6):
        first = 106 + 3 * k
        add("ws", _depth(first, first + 2, t, [[f"99{k}.50", "1"]], [[f"100{k + 1}.50", "2"]]))
    add("close", "error")
    add("rest", _snapshot(120, 1000))  # nobody is waiting for it: skipped
    add("open")
    add("ws", _depth(150, 152, t, [["995.00", "3"]], [["1005.00", "0"]]))
    add("rest", _snapshot(151, 1001))
    add("ws", orjson.dumps(_trade(3, t, "1002.00", "1.125", False)).decode())
    for k in range(6):
        first = 153 + 2 * k
        add("ws", _depth(first, first + 1, t, [[f"99{k}.25", "0.5"]], [[f"101{k}.75", "1.5"]]))
    add("ws", '{"result":null,"id":1}')
    return ops


def _record(directory: Path, script: list[tuple[str, int, Any]], **kwargs: Any) -> list[Path]:
    with Recorder(
        directory, [("binance", [SYM], True)], version="test", start_ns=T0, **kwargs
    ) as rec:
        for op, t, payload in script:
            if op == "open":
                rec.opened("binance", PLAN, t)
            elif op == "ws":
                rec.frame("binance", PLAN.name, t, payload)
            elif op == "rest":
                rec.snapshot("binance", SYM, t, payload)
            elif op == "close":
                rec.closed("binance", PLAN.name, t, payload)
        return list(rec.paths)


def _feed_directly(script: list[tuple[str, int, Any]]) -> FeedPipeline:
    """The same session fed to a FeedPipeline by hand, as the live runner would."""
    observer = CountingObserver([SYM])
    pipeline = FeedPipeline(make_venue("binance"), [SYM], observer)
    parser = pipeline.new_parser()
    waiting = False
    for op, t, payload in script:
        if op == "open":
            parser = pipeline.new_parser()
        elif op == "ws":
            commands = pipeline.on_frame(parser, payload, t)
            waiting = waiting or FetchSnapshot(SYM) in commands
        elif op == "rest" and waiting:
            waiting = False
            commands = pipeline.on_snapshot(SYM, payload, t)
            waiting = FetchSnapshot(SYM) in commands
        elif op == "close":
            pipeline.invalidate([SYM], "reconnect")
            waiting = False
    return pipeline


async def _replay(paths: list[Path], **kwargs: Any) -> tuple[ReplayResult, CollectorRegistry]:
    registry = CollectorRegistry()
    result = await replay(paths, registry=registry, progress=False, out=None, **kwargs)
    return result, registry


# --------------------------------------------------------------------------------------------
# Real captures
# --------------------------------------------------------------------------------------------


@dataclass
class _Oracle:
    """What the capture itself says, computed without mmradar code."""

    path: Path  # the capture cut right after the last depth update a bookTicker confirms
    last_u: int
    ticker: dict[str, Any]
    applied: int
    buy: Decimal
    sell: Decimal


def _oracle(path: Path, tmp_path: Path, usdm: bool) -> _Oracle:
    """Cut the capture at the last depth ``u`` that a bookTicker also carries; sum the trades.

    The bookTicker with ``u`` equal to a depth update's final ``u`` is the exchange's own best
    bid/ask after that update, so the replayed book must end exactly on it.
    """
    with gzip.open(path, "rb") as fh:
        lines = fh.read().splitlines(keepends=True)
    tickers: dict[int, dict[str, Any]] = {}
    trades: list[tuple[int, dict[str, Any]]] = []
    depth_at: list[tuple[int, int]] = []  # (line index, final update id u)
    snapshot_id = -1
    for i, line in enumerate(lines):
        body = line.split(b" ", 1)[1]
        if b"@depth" in body[:40]:  # big messages: read only their final update id
            match = re.search(rb'"u":(\d+)', body)
            assert match is not None
            depth_at.append((i, int(match[1])))
        elif b"@bookTicker" in body[:40]:
            data = orjson.loads(body)["data"]
            tickers[data["u"]] = data  # the last one at each u wins
        elif b"@trade" in body[:40]:
            trades.append((i, orjson.loads(body)["data"]))
        elif body.startswith(b'{"lastUpdateId":'):
            match = re.match(rb'\{"lastUpdateId":(\d+)', body)
            assert match is not None
            snapshot_id = int(match[1])
    assert snapshot_id > 0
    end, last_u = next((i, u) for i, u in reversed(depth_at) if u in tickers)
    applied = sum(
        1 for i, u in depth_at if i <= end and (u >= snapshot_id if usdm else u > snapshot_id)
    )
    buy = sum((Decimal(d["q"]) for i, d in trades if i <= end and not d["m"]), Decimal(0))
    sell = sum((Decimal(d["q"]) for i, d in trades if i <= end and d["m"]), Decimal(0))
    cut = tmp_path / path.name
    cut.write_bytes(gzip.compress(b"".join(lines[: end + 1]), compresslevel=1))
    return _Oracle(cut, last_u, tickers[last_u], applied, buy, sell)


async def test_real_capture_replays_to_the_exchange_book(
    capture: tuple[str, Path], tmp_path: Path
) -> None:
    exchange, path = capture
    oracle = _oracle(path, tmp_path, usdm=exchange == "binance-usdm")
    ticker = oracle.ticker
    out = io.StringIO()
    registry = CollectorRegistry()
    result = await replay([oracle.path], speed=None, registry=registry, progress=False, out=out)

    inst = result.instruments[(exchange, SYM)]
    assert inst.valid
    assert inst.sync.updates_applied == oracle.applied
    assert inst.book.best_bid() == (float(ticker["b"]), float(ticker["B"]))
    assert inst.book.best_ask() == (float(ticker["a"]), float(ticker["A"]))
    (summary,) = result.summaries
    assert summary.valid and sum(summary.resyncs.values()) == 0
    assert summary.best_bid == float(ticker["b"]) and summary.best_ask == float(ticker["a"])
    assert summary.taker_buy == pytest.approx(float(oracle.buy), rel=1e-12)
    assert summary.taker_sell == pytest.approx(float(oracle.sell), rel=1e-12)
    assert result.stats.snapshots_used == 1 and result.stats.orphan_frames == 0

    labels = {"exchange": exchange, "symbol": SYM}
    assert _value(registry, "mmradar_book_valid", **labels) == 1.0
    for reason in ("gap", "checksum", "crossed", "stale", "reconnect", "venue_reset"):
        assert _value(registry, "mmradar_book_resyncs_total", reason=reason, **labels) == 0.0
    for reason in ("malformed", "unknown", "unknown_symbol", "venue_error"):
        bad = _value(registry, "mmradar_feed_bad_messages_total", exchange=exchange, reason=reason)
        assert bad == 0.0
    taker_buy = _value(registry, "mmradar_taker_volume_total", side="buy", **labels)
    assert taker_buy == pytest.approx(float(oracle.buy), rel=1e-12)
    assert _value(registry, "mmradar_best_ask_price", **labels) == float(ticker["a"])
    text = out.getvalue()
    assert f"{exchange}:" in text and "BTCUSDT: valid" in text and "resyncs: none" in text


def test_hftbacktest_reader_plain_text_and_exchange_override(tmp_path: Path) -> None:
    with gzip.open(_capture("spot"), "rb") as fh:
        head = [next(fh) for _ in range(40)]
    plain = tmp_path / "head.txt"
    plain.write_bytes(b"".join(head))

    records = list(open_recording(plain))
    assert [r.kind for r in records[:2]] == ["header", "open"]
    assert records[0].feeds[0].exchange == "binance" and records[0].feeds[0].symbols == (SYM,)
    assert records[1].depth == (SYM,) and records[1].trades == (SYM,)
    assert sum(r.kind == "rest" for r in records) == 1
    assert all("bookTicker" not in r.data for r in records if r.kind == "ws")
    assert all(r.t >= records[0].t for r in records)

    with RecordingReader(plain, exchange="binance-usdm") as reader:
        kinds = {(r.kind, r.exchange) for r in reader}
        assert reader.format == "hftbacktest" and reader.stats.foreign_streams > 0
    assert ("ws", "binance-usdm") in kinds


# --------------------------------------------------------------------------------------------
# Record → replay
# --------------------------------------------------------------------------------------------


async def test_record_then_replay_equals_feeding_the_pipeline(tmp_path: Path) -> None:
    script = _script()
    paths = _record(tmp_path, script)
    assert [p.name for p in paths] == [recording_name(T0)]

    records = list(open_recording(paths[0]))
    assert records[0].kind == "header" and records[0].data == "test"
    assert [r.kind for r in records[1:]] == [op for op, _, _ in script]
    binary = [r for r in records if r.kind == "ws" and isinstance(r.data, bytes)]
    assert len(binary) == 1
    with gzip.open(paths[0], "rb") as fh:
        header = orjson.loads(fh.readline())
    assert header["version"] == FORMAT_VERSION
    assert header["feeds"] == [{"exchange": "binance", "symbols": [SYM], "trades": True}]

    result, registry = await _replay(paths)
    direct = _feed_directly(script)
    got = result.instruments[("binance", SYM)]
    want = direct.instruments[SYM]
    assert got.valid and want.valid
    assert got.book.items(Side.BID) == want.book.items(Side.BID)
    assert got.book.items(Side.ASK) == want.book.items(Side.ASK)
    assert got.sync.updates_applied == want.sync.updates_applied > 0
    assert (got.market.taker_buy, got.market.taker_sell) == (1.625, 0.25)
    assert (got.market.taker_buy, got.market.taker_sell) == (
        want.market.taker_buy,
        want.market.taker_sell,
    )
    assert isinstance(direct.observer, CountingObserver)
    assert result.summaries[0].resyncs == direct.observer.resyncs[SYM]
    assert result.summaries[0].resyncs["reconnect"] == 1
    assert sum(result.summaries[0].resyncs.values()) == 1

    stats = result.stats
    assert (stats.snapshots_used, stats.snapshots_skipped) == (2, 1)
    assert (stats.connections_opened, stats.connections_closed) == (2, 1)
    labels = {"exchange": "binance", "symbol": SYM}
    assert _value(registry, "mmradar_book_resyncs_total", reason="reconnect", **labels) == 1
    assert (
        _value(registry, "mmradar_feed_reconnects_total", exchange="binance", reason="error") == 1
    )
    assert _value(registry, "mmradar_feed_connected", exchange="binance") == 1
    frames = sum(op == "ws" for op, _, _ in script)
    assert _value(registry, "mmradar_feed_messages_total", exchange="binance") == frames
    assert _value(registry, "mmradar_best_bid_price", **labels) == want.book.best_bid_price()


def test_replayer_is_pure_and_counts_orphans(tmp_path: Path) -> None:
    (path,) = _record(tmp_path, _script())
    records = list(open_recording(path))
    pipelines = build_pipelines(records[0].feeds)
    replayer = Replayer(pipelines)
    # Drop the first open: every frame until the reconnect is an orphan.
    first_open = next(i for i, r in enumerate(records) if r.kind == "open")
    replayer.run(records[:first_open] + records[first_open + 1 :])
    assert replayer.stats.orphan_frames == 11 + 1  # 11 frames and the close
    assert replayer.stats.snapshots_skipped == 2 and replayer.stats.snapshots_used == 1
    assert pipelines["binance"].instruments[SYM].valid
    assert replayer.open_connections == [("binance", PLAN.name)]


async def test_results_do_not_depend_on_speed(tmp_path: Path) -> None:
    paths = _record(tmp_path, _script(step_ns=2 * SEC))
    fast, fast_registry = await _replay(paths, speed=None)
    clock = FakeClock(auto=True)  # its sleep moves the fake time on: nothing waits
    paced, paced_registry = await _replay(paths, speed=1000.0, clock=clock)
    assert paced.first_ns is not None and paced.last_ns is not None
    span_s = (paced.last_ns - paced.first_ns) / SEC
    # ×1000: every record waits its recorded spacing (2 s) / 1000, and the replay took the
    # recording's span / 1000 on the replay's clock
    assert clock.slept == pytest.approx([2.0 / 1000] * round(span_s / 2.0), abs=1e-12)
    assert paced.wall_seconds == pytest.approx(span_s / 1000, abs=1e-12)
    assert format_summary(fast) == format_summary(paced)
    assert _samples(fast_registry) == _samples(paced_registry)
    labels = {"exchange": "binance", "symbol": SYM}
    for name in ("mmradar_spread_bps", "mmradar_mid_price", "mmradar_microprice"):
        assert _value(fast_registry, name, **labels) == _value(paced_registry, name, **labels)
    assert not math.isnan(_value(fast_registry, "mmradar_spread_bps", **labels))


# --------------------------------------------------------------------------------------------
# Rotation and robustness
# --------------------------------------------------------------------------------------------


async def test_rotated_files_each_replay_on_their_own(tmp_path: Path) -> None:
    script = _script()
    whole = _record(tmp_path / "whole", script)
    parts = _record(tmp_path / "parts", script, rotate_bytes=1500)
    assert len(whole) == 1 and len(parts) >= 4
    assert parts == sorted(parts)

    ws_total = 0
    for path in parts:
        records = list(open_recording(path))
        assert records[0].kind == "header"
        ws_total += sum(r.kind == "ws" for r in records)
        alone, _ = await _replay([path])
        assert alone.stats.orphan_frames == 0, path.name
        assert alone.stats.malformed_lines == 0
    assert ws_total == sum(op == "ws" for op, _, _ in script)
    # Files opened mid-connection repeat the open, marked as a continuation.
    assert any(r.kind == "open" and r.cont for p in parts[1:] for r in open_recording(p))

    together, _ = await _replay(parts)
    one, _ = await _replay(whole)
    assert repr(together.summaries) == repr(one.summaries)
    assert together.stats.connections_opened == one.stats.connections_opened == 2
    assert format_summary(together).splitlines()[1:] == format_summary(one).splitlines()[1:]


async def test_malformed_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl.gz"
    header = {"k": "header", "t": T0, "version": 1, "feeds": [{"exchange": "binance",
              "symbols": [SYM], "trades": True}], "mmradar": "x"}  # fmt: skip
    lines = [
        orjson.dumps(header),
        b"this is not json",
        b'{"k":"bogus","t":1}',
        b'{"k":"ws","t":"soon","x":"binance","c":"c","d":"{}"}',
        b"[1,2,3]",
        b'{"k":"ws","t":2,"x":"binance","c":"c","d":"!!","b64":true}',
        orjson.dumps({"k": "open", "t": T0 + 1, "x": "binance", "c": "c", "depth": [SYM]}),
        orjson.dumps({"k": "ws", "t": T0 + 2, "x": "binance", "c": "c", "d": "{oops"}),
        orjson.dumps({"k": "ws", "t": T0 + 3, "x": "binance", "c": "nope", "d": "{}"}),
        orjson.dumps({"k": "ws", "t": T0 + 4, "x": "kraken", "c": "c", "d": "{}"}),
        orjson.dumps({"k": "rest", "t": T0 + 5, "x": "binance", "s": SYM, "d": "{}"}),
        b'{"k":"close","t":',  # cut short
    ]
    path.write_bytes(gzip.compress(b"\n".join(lines)))

    with RecordingReader(path) as reader:
        records = list(reader)
    assert reader.format == "mmradar"
    assert reader.stats.malformed == 5 and reader.stats.unknown_kind == 1
    assert [r.kind for r in records] == ["header", "open", "ws", "ws", "ws", "rest"]

    result, registry = await _replay([path])
    stats = result.stats
    assert (stats.malformed_lines, stats.unknown_kinds) == (5, 1)
    assert (stats.orphan_frames, stats.unknown_exchange, stats.snapshots_skipped) == (1, 1, 1)
    bad = _value(
        registry, "mmradar_feed_bad_messages_total", exchange="binance", reason="malformed"
    )
    assert bad == 1
    assert "malformed lines 5" in format_summary(result)


def test_a_file_cut_short_reads_up_to_its_last_flush(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, [("binance", [SYM], True)], version="t", start_ns=T0)
    try:
        rec.opened("binance", PLAN, T0 + 1)
        rec.frame("binance", PLAN.name, T0 + 2, "{}")
        rec.flush()
        rec.frame("binance", PLAN.name, T0 + 3, "{}")  # buffered, never flushed
        crashed = tmp_path / "crashed.jsonl.gz"
        crashed.write_bytes(rec.paths[0].read_bytes())
    finally:
        rec.close()
    with RecordingReader(crashed) as reader:
        kinds = [r.kind for r in reader]
    assert kinds == ["header", "open", "ws"]
    assert reader.stats.truncated


def test_recorder_starts_at_its_clocks_wall_time(tmp_path: Path) -> None:
    """Without ``start_ns`` the first file is named and its header timestamped from the clock
    the recorder is given (the shell's), not from the system's."""
    clock = FakeClock(wall_ns=T0)
    with Recorder(tmp_path, [("binance", [SYM], True)], version="t", clock=clock) as rec:
        pass
    assert rec.paths[0].name == recording_name(T0)
    with gzip.open(rec.paths[0], "rb") as fh:
        assert orjson.loads(fh.readline())["t"] == T0


def test_recorder_names_and_rejects_writes_after_close(tmp_path: Path) -> None:
    assert recording_name(T0) == "mmradar-20240808T235413Z.jsonl.gz"
    first = Recorder(tmp_path, [], version="t", start_ns=T0)
    second = Recorder(tmp_path, [], version="t", start_ns=T0)
    first.close()
    second.close()
    assert first.paths[0].name == "mmradar-20240808T235413Z.jsonl.gz"
    assert second.paths[0].name == "mmradar-20240808T235413Z_001.jsonl.gz"
    with pytest.raises(ValueError):
        first.frame("binance", "c", T0, "{}")
    plan = ConnectionPlan("x#0", "wss://x", (SYM,), ())
    with Recorder(tmp_path / "r", [("binance", [SYM], False)], version="t") as rec:
        rec.opened("binance", plan, T0)
        assert rec.open_connections == [("binance", "x#0")]
        rec.closed("binance", "x#0", T0 + 1, "closed")
        assert rec.open_connections == []
