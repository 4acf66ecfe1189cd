"""The flight recorder: a checkpoint plus a journal that ``mmradar replay`` resumes from.

* Unit: a checkpoint taken half-way through the real Binance capture, restored into a fresh
  pipeline, continues exactly as the uninterrupted pipeline does (book, trades, detector
  state); a checkpoint refuses to load anything but the pure core's classes.
* End to end: the service against the embedded Binance venue playing a simulated buy burst
  fires an episode; the recording named in its log line, webhook event and counter, replayed
  with ``mmradar replay``'s default flags, starts the same episode at the same event time with
  the same book at the trigger — although the recording starts long after the detectors'
  warm-up began.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import io
import logging
import os
import pickle
import tomllib
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from mmradar import checkpoint, flight
from mmradar.app import Service
from mmradar.checkpoint import CheckpointError, restore_checkpoint, take_checkpoint
from mmradar.config import FlightRecorderSettings, format_settings, parse_settings
from mmradar.embedded.binance import EmbeddedBinance
from mmradar.embedded.source import SimulatedSource
from mmradar.errors import ConfigError
from mmradar.flight import FlightRecorder
from mmradar.model import Side
from mmradar.pipeline import FeedPipeline
from mmradar.record import Record, open_recording
from mmradar.replay import replay, summarize
from mmradar.replayer import Replayer, build_pipelines, probe_feeds
from mmradar.signals.episodes import EpisodeEvent
from mmradar.signals.params import SignalSettings
from mmradar.venues import VENUE_NAMES, make_venue
from mmradar.venues.base import ConnectionPlan
from support import wait_until

CAPTURE = Path(__file__).resolve().parents[2] / (
    "service/mmradar/data/hftbacktest_binance_spot_btcusdt_20240808.gz"
)


def _book(pipeline: FeedPipeline, symbol: str) -> tuple[list[tuple[float, float]], ...]:
    book = pipeline.instruments[symbol].book
    return sorted(book.items(Side.BID)), sorted(book.items(Side.ASK))


def test_every_class_in_a_checkpoint_restores_without_its_init() -> None:
    """A checkpoint restores objects without calling ``__init__``: under mypyc a native class's
    ``__new__`` runs ``__init__`` unless the class allows interpreted subclasses, so a class
    added to the core without that mark would make every checkpoint unreadable (compiled only)."""
    feeds = probe_feeds(CAPTURE)
    records = list(open_recording(CAPTURE))
    pipelines = build_pipelines(feeds)
    Replayer(pipelines).run(records[: len(records) // 4])
    pipeline = pipelines["binance"]
    payload = take_checkpoint(pipeline, [])
    classes: set[type] = set()

    class Recording(checkpoint._Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            obj = super().find_class(module, name)
            if isinstance(obj, type) and module.startswith("mmradar."):
                classes.add(obj)
            return obj

    token = checkpoint._RESTORING.set(checkpoint._refs(pipeline))
    try:
        Recording(io.BytesIO(payload)).load()
    finally:
        checkpoint._RESTORING.reset(token)
    assert len(classes) >= 8, classes  # book, sync, market, engine, detectors, baselines, ...
    for cls in classes:
        # pickled by value (a msgspec Struct: its fields, through its constructor), not as a
        # blank instance
        if issubclass(cls, (Enum, tuple, msgspec.Struct)):
            continue
        blank = cls.__new__(cls)
        assert type(blank) is cls


def test_checkpoint_resumes_exactly_where_the_pipeline_was() -> None:
    feeds = probe_feeds(CAPTURE)
    records = list(open_recording(CAPTURE))
    cut = len(records) // 2
    params = SignalSettings(warmup_seconds=60)
    whole = build_pipelines(feeds, signal_params=params)
    live = Replayer(whole)
    live.run(records[:cut])
    pipeline = whole["binance"]
    ((exchange, name), conn) = next(iter(live._conns.items()))
    plan = ConnectionPlan(name, "ws://x", conn.depth, conn.trades, ())
    payload = take_checkpoint(pipeline, [(plan, conn.parser)])

    # A fresh pipeline with the replay's default parameters: the checkpoint brings the live
    # ones (the detectors' warm-up of 60 s instead of 600 s) with the state.
    resumed = build_pipelines(feeds)
    replayer = Replayer(resumed)
    replayer.feed(records[0])  # the header
    replayer.feed(Record("checkpoint", records[cut].t, exchange=exchange, data=payload))
    assert replayer.stats.checkpoints == 1
    assert replayer.open_connections == [(exchange, name)]
    for record in records[cut:]:
        live.feed(record)
        replayer.feed(record)
    (a,), (b,) = summarize(whole)[1], summarize(resumed)[1]
    assert a.valid and b.valid
    assert (a.depth_updates, a.best_bid, a.best_ask, a.depth_bid, a.depth_ask) == (
        b.depth_updates, b.best_bid, b.best_ask, b.depth_bid, b.depth_ask,
    )  # fmt: skip
    assert (a.taker_buy, a.taker_sell, a.signals_warm) == (b.taker_buy, b.taker_sell, True)
    assert b.warmup_s == 60
    assert _book(pipeline, "BTCUSDT") == _book(resumed["binance"], "BTCUSDT")
    ea = whole["binance"].instruments["BTCUSDT"].engine
    eb = resumed["binance"].instruments["BTCUSDT"].engine
    assert (ea.pressure, ea.tick_size, ea.warm_at_ns) == (eb.pressure, eb.tick_size, eb.warm_at_ns)


def test_a_checkpoint_naming_the_helpers_former_module_still_loads() -> None:
    """Recordings written before the checkpoint code left :mod:`mmradar.flight` name its three
    helper functions there: they load as :mod:`mmradar.checkpoint`'s, and nothing else of that
    module does."""
    unpickler = checkpoint._Unpickler(io.BytesIO(b""))
    for fn in (checkpoint._ref, checkpoint._new, checkpoint._set_state):
        assert unpickler.find_class("mmradar.flight", fn.__name__) is fn
        assert unpickler.find_class("mmradar.checkpoint", fn.__name__) is fn
    with pytest.raises(CheckpointError):
        unpickler.find_class("mmradar.flight", "flight_directory")


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.getenv, ("HOME",))


def test_checkpoint_refuses_anything_but_the_pure_core() -> None:
    pipeline = FeedPipeline(make_venue("binance"), ["BTCUSDT"])
    evil = pickle.dumps({"version": 1, "exchange": "binance", "x": _Evil()}, protocol=5)
    with pytest.raises(CheckpointError, match=r"may not contain os\.getenv"):
        restore_checkpoint(pipeline, evil)
    with pytest.raises(CheckpointError, match="unreadable"):
        restore_checkpoint(pipeline, b"not a pickle")
    other = FeedPipeline(make_venue("okx"), ["BTC-USDT"])
    with pytest.raises(CheckpointError, match=r"BTC-USDT'\), unknown here"):
        restore_checkpoint(pipeline, take_checkpoint(other, []))


def _fast() -> Iterator[float]:
    while True:
        yield 0.05


def _records(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh]


async def test_a_flight_recording_replays_the_episode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mmradar")
    source = SimulatedSource("buy-burst", 3)
    fired: list[EpisodeEvent] = []
    books: dict[tuple[str, str, int], tuple[list[tuple[float, float]], ...]] = {}
    async with EmbeddedBinance("spot", source=source, speed=20.0, loop=False) as venue:
        settings = parse_settings(
            {
                "http": {"listen": "127.0.0.1:0"},
                "feeds": [
                    {
                        "exchange": "binance",
                        "symbols": ["BTCUSDT"],
                        "ws_url": venue.ws_base,
                        "rest_url": venue.rest_base,
                    }
                ],
                "signals": {"warmup_seconds": 180},
                "flight_recorder": {
                    "directory": str(tmp_path),
                    "pre_seconds": 3,
                    "post_seconds": 2,
                    "checkpoint_seconds": 1,
                },
            },
            env={},
            supported=VENUE_NAMES,
        )
        service: Service

        def on_episode(event: EpisodeEvent) -> None:
            if event.state == "firing" and event.recording is not None:
                pipeline = service.pipelines[0]
                books[(event.symptom, event.side, event.started_at_ns)] = _book(
                    pipeline, event.symbol
                )
                fired.append(event)

        service = Service(settings, backoff_factory=_fast, on_episode=on_episode)
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop))
        try:
            await wait_until(lambda: fired, "an episode", timeout_s=120, interval_s=0.1)
            first = fired[0]
            assert first.recording is not None
            path = tmp_path / first.recording
            await wait_until(path.exists, "the recording written", timeout_s=60, interval_s=0.1)
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
    value = service.registry.get_sample_value(
        "mmradar_flight_recordings_total", {"reason": "episode"}
    )
    assert value is not None and value >= 1
    # the ring's gauge reads the recorder's own count of what it holds, within its bound
    ring = service.registry.get_sample_value("mmradar_flight_ring_bytes", {"exchange": "binance"})
    assert service.flight is not None
    assert ring == service.flight.ring_bytes("binance")
    assert 0 < ring <= settings.flight_recorder.ring_mib_per_instrument * 2**20
    started = [r.getMessage() for r in caplog.records if "episode started" in r.getMessage()]
    assert any(first.recording in line and first.symptom in line for line in started), started

    # The file: a header naming the trigger, then a checkpoint (the recording starts seconds
    # before the episode, long after the detectors' 180 s warm-up of event time began).
    lines = _records(path)
    assert lines[0]["k"] == "header" and lines[1]["k"] == "checkpoint"
    flight = lines[0]["flight"]
    assert isinstance(flight, dict)
    assert (flight["reason"], flight["symbol"], flight["at_ns"]) == (
        "episode", "BTCUSDT", first.started_at_ns,
    )  # fmt: skip
    span_ns = int(lines[-1]["t"]) - int(lines[0]["t"])  # type: ignore[call-overload]
    assert 3e9 <= span_ns < 60e9

    # `mmradar replay FILE` with its default flags (speed 1, the built-in [signals]).
    out = io.StringIO()
    result = await replay([path], speed=1.0, progress=False, out=out)
    assert result.stats.checkpoints == 1 and result.stats.checkpoints_bad == 0
    (summary,) = result.summaries
    starts = {(e.symptom, e.side, e.started_ns) for e in summary.episodes}
    assert (first.symptom, first.side, first.started_at_ns) in starts
    assert f"{first.symptom}/{first.side}" in out.getvalue()

    # The book at the trigger: the same pipeline path, with an episode hook.
    replayed: dict[tuple[str, str, int], tuple[list[tuple[float, float]], ...]] = {}
    pipeline: FeedPipeline

    def on_replayed(event: EpisodeEvent) -> None:
        if event.state == "firing":
            key = (event.symptom, event.side, event.started_at_ns)
            replayed.setdefault(key, _book(pipeline, event.symbol))

    pipeline = FeedPipeline(make_venue("binance"), ["BTCUSDT"], on_episode=on_replayed)
    Replayer({"binance": pipeline}).run(open_recording(path))
    key = (first.symptom, first.side, first.started_at_ns)
    assert key in replayed, (key, sorted(replayed))
    assert replayed[key] == books[key]
    assert len(books[key][0]) > 10


def test_the_checkpoint_record_round_trips_through_the_reader(tmp_path: Path) -> None:
    payload = take_checkpoint(FeedPipeline(make_venue("binance"), ["BTCUSDT"]), [])
    path = tmp_path / "x.jsonl.gz"
    body = [
        {"k": "header", "t": 1, "version": 2, "feeds": []},
        {
            "k": "checkpoint",
            "t": 2,
            "x": "binance",
            "d": base64.b64encode(payload).decode(),
            "b64": True,
        },
    ]
    path.write_bytes(gzip.compress(b"\n".join(orjson.dumps(o) for o in body)))
    records = list(open_recording(path))
    assert [r.kind for r in records] == ["header", "checkpoint"]
    assert records[1].data == payload and records[1].exchange == "binance"


def test_flight_recorder_settings_are_validated_and_round_trip() -> None:
    feeds = [{"exchange": "binance", "symbols": ["BTCUSDT"]}]
    default = parse_settings({"feeds": feeds}, env={}, supported=VENUE_NAMES)
    assert default.flight_recorder == FlightRecorderSettings() and default.flight_recorder.enabled
    for key, value, reason in (
        ("max_files", -1, "must be 0 or greater"),
        ("pre_seconds", 0, "must be greater than 0"),
        ("ring_mib_per_instrument", "4", "expected a number"),
        ("bogus", 1, "unknown key"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_settings(
                {"feeds": feeds, "flight_recorder": {key: value}}, env={}, supported=VENUE_NAMES
            )
        assert info.value.path == f"flight_recorder.{key}", info.value
        assert reason in info.value.reason, info.value.reason
    env = {"MMRADAR_FLIGHT_RECORDER_POST_SECONDS": "5", "MMRADAR_FLIGHT_RECORDER_MAX_FILES": "0"}
    settings = parse_settings(
        {"feeds": feeds, "flight_recorder": {"directory": "/var/tmp/x"}},
        env=env,
        supported=VENUE_NAMES,
    )
    assert settings.flight_recorder.post_seconds == 5.0
    assert not settings.flight_recorder.enabled
    text = format_settings(settings)
    assert "[flight_recorder]" in text
    again = parse_settings(tomllib.loads(text), env={}, supported=VENUE_NAMES)
    assert again.flight_recorder == settings.flight_recorder


def test_a_big_checkpoint_does_not_start_a_segment_per_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A checkpoint larger than half the ring (a full resync buffer) once made every frame
    take another checkpoint: the service spent its time pickling. Segments start by journal
    bytes and time only."""
    pipeline = FeedPipeline(make_venue("binance"), ["BTCUSDT"])
    book = pipeline.instruments["BTCUSDT"].book
    book.load(
        [[str(60000 - i), "1"] for i in range(1, 3000)],
        [[str(60000 + i), "1"] for i in range(3000)],
    )
    settings = FlightRecorderSettings(ring_mib_per_instrument=0.05, checkpoint_seconds=3600)
    recorder = FlightRecorder(settings, [("binance", ["BTCUSDT"], True)], version="test")
    recorder.attach(pipeline, {})
    calls = 0

    def counting(*args: Any) -> bytes:
        nonlocal calls
        calls += 1
        return take_checkpoint(*args)

    monkeypatch.setattr(flight, "take_checkpoint", counting)
    frame = "x" * 1000
    for i in range(200):  # 200 kB of frames; half the ring is ~26 kB: about 8 segments
        recorder.frame("binance", "c", 1_000_000_000 + i, frame)
    assert len(take_checkpoint(pipeline, [])) > 52_000  # the checkpoint alone is over the bound
    assert 4 <= calls <= 12, calls
