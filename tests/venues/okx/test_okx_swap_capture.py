"""Oracle: a real 2026 OKX perpetual capture, whose sizes are contracts.

``tests/fixtures/okx/fastmm_okx_btc-usdt-swap_20260926.jsonl`` (provenance in
``tests/fixtures/okx/SOURCES.md``): BTC-USDT-SWAP ``books`` (a 400-level websocket snapshot and
24 updates chained by ``seqId``/``prevSeqId``, ``checksum`` 0 on every frame), ``bbo-tbt`` and
``trades``. OKX lists BTC-USDT-SWAP as a linear contract of ``ctVal`` 0.01 BTC, so a size of
667.19 is 6.6719 BTC.

Everything goes through the production parser, synchroniser, book, signal engine and metric
collector; the oracles are the venue's own ``bbo-tbt`` stream (best bid/ask price and size at the
same ``seqId``) and an independent ``Decimal`` book built here from the raw frames.
"""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from mmradar.book.l2book import L2Book
from mmradar.contracts import ContractSize
from mmradar.metrics import Metrics
from mmradar.model import BAND_BPS, BookEvent, Side
from mmradar.pipeline import FeedPipeline
from mmradar.venues.okx import Okx

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "okx"
CAPTURE = FIXTURES / "fastmm_okx_btc-usdt-swap_20260926.jsonl"
SYMBOL = "BTC-USDT-SWAP"
CT_VAL = Decimal("0.01")  # BTC per contract (tests/fixtures/okx/instruments_swap.json)
LABELS = {"exchange": "okx", "symbol": SYMBOL}


def frames() -> list[tuple[int, bytes]]:
    """``(receive time ns, frame)``: one ``<monotonic ns>\\t<frame>`` record per line."""
    out = []
    for line in CAPTURE.read_bytes().splitlines():
        stamp, frame = line.split(b"\t", 1)
        out.append((int(stamp), frame))
    return out


def channel(frame: bytes) -> tuple[str | None, dict[str, Any]]:
    msg = orjson.loads(frame)
    return (msg.get("arg", {}).get("channel") if "data" in msg else None), msg


class RecordingOkx(Okx):
    """The real venue, counting the checksum verdicts the synchroniser asks for."""

    def __init__(self) -> None:
        super().__init__()
        self.verdicts: Counter[bool | None] = Counter()

    def verify_checksum(self, book: L2Book, event: BookEvent) -> bool | None:
        verdict = super().verify_checksum(book, event)
        self.verdicts[verdict] += 1
        return verdict


class DecimalBook:
    """The independent reference: ``Decimal`` price → ``Decimal`` size in contracts."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def apply(self, item: dict[str, Any], snapshot: bool) -> None:
        if snapshot:
            self.bids.clear()
            self.asks.clear()
        for side, levels in ((self.bids, item["bids"]), (self.asks, item["asks"])):
            for px, sz, *_ in levels:
                if Decimal(sz) == 0:
                    side.pop(Decimal(px), None)
                else:
                    side[Decimal(px)] = Decimal(sz)

    def depth_btc_terms(self, band_bps: int) -> tuple[Decimal, Decimal]:
        """Σ price × size × ctVal within the band, with the book's own float band edges."""
        mid = (float(max(self.bids)) + float(min(self.asks))) / 2.0
        x = band_bps / 1e4
        bids = sum(
            (p * q * CT_VAL for p, q in self.bids.items() if float(p) >= mid * (1.0 - x)),
            Decimal(0),
        )
        asks = sum(
            (p * q * CT_VAL for p, q in self.asks.items() if float(p) <= mid * (1.0 + x)),
            Decimal(0),
        )
        return bids, asks


def test_contract_size_comes_from_okx_instrument_metadata() -> None:
    sizes = Okx().parse_contracts([SYMBOL], [(FIXTURES / "instruments_swap.json").read_bytes()])
    assert sizes == {
        SYMBOL: ContractSize(0.01, False, "ctVal 0.01 BTC x ctMult 1, linear"),
    }


def replay() -> dict[str, Any]:
    """The whole capture through the production path, with the oracles collected on the way."""
    venue = RecordingOkx()
    registry = CollectorRegistry()
    metrics = Metrics(registry, [("okx", [SYMBOL])])
    pipeline = FeedPipeline(venue, [SYMBOL], metrics.feed("okx", [SYMBOL]))
    metrics.register_pipelines([pipeline])
    body = (FIXTURES / "instruments_swap.json").read_bytes()
    pipeline.use_contracts(venue.parse_contracts([SYMBOL], [body]))
    parser = pipeline.new_parser()
    inst = pipeline.instruments[SYMBOL]
    book = inst.book
    reference = DecimalBook()
    states: dict[int, dict[str, Any]] = {}  # seqId -> the book after that message
    bbo: list[dict[str, Any]] = []
    chain: list[tuple[int, int]] = []
    trades: list[dict[str, Any]] = []
    checksums: list[int | None] = []
    commands = []
    for ts, frame in frames():
        kind, msg = channel(frame)
        if kind == "books":
            for event in parser.parse(frame, ts):
                assert isinstance(event, BookEvent)
                checksums.append(event.checksum)
        commands += pipeline.on_frame(parser, frame, ts)
        if kind == "books":
            (item,) = msg["data"]
            reference.apply(item, msg["action"] == "snapshot")
            chain.append((item["prevSeqId"], item["seqId"]))
            assert inst.valid
            states[item["seqId"]] = {
                "bid": book.best_bid(),
                "ask": book.best_ask(),
                "bid_text": book.text_top(Side.BID, 1)[0],
                "ask_text": book.text_top(Side.ASK, 1)[0],
            }
        elif kind == "bbo-tbt":
            bbo += msg["data"]
        elif kind == "trades":
            trades += msg["data"]
    return {
        "venue": venue,
        "registry": registry,
        "pipeline": pipeline,
        "reference": reference,
        "states": states,
        "bbo": bbo,
        "chain": chain,
        "trades": trades,
        "checksums": checksums,
        "commands": commands,
    }


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, {**LABELS, **labels})
    assert value is not None, (name, labels)
    return value


def test_sequence_chain_holds_and_checksum_zero_means_not_published() -> None:
    run = replay()
    chain = run["chain"]
    # The capture: one websocket snapshot (prevSeqId -1), then 24 updates, each naming the last.
    assert chain[0][0] == -1 and len(chain) == 25
    assert all(prev == chain[i][1] for i, (prev, _) in enumerate(chain[1:]))
    inst = run["pipeline"].instruments[SYMBOL]
    assert inst.valid
    assert inst.sync.updates_applied == 24
    assert run["commands"] == []  # no gap, no snapshot fetch: the pushed snapshot was used
    registry = run["registry"]
    for reason in ("gap", "checksum", "crossed", "stale", "reconnect", "venue_reset"):
        assert sample(registry, "mmradar_book_resyncs_total", reason=reason) == 0, reason
    # checksum 0 on every frame: parsed as "not published", so never verified.
    assert run["checksums"] == [None] * 25
    assert run["venue"].verdicts == {}
    assert inst.book.levels(Side.BID) == len(run["reference"].bids) == 400
    assert inst.book.levels(Side.ASK) == len(run["reference"].asks) == 400


def test_top_of_book_equals_every_bbo_tbt_on_the_same_seq_id() -> None:
    run = replay()
    states, bbo = run["states"], run["bbo"]
    compared = 0
    for item in bbo:
        state = states.get(item["seqId"])
        if state is None:
            continue  # bbo-tbt ticks between two books messages: no book state to compare
        compared += 1
        (bid_px, bid_sz, *_), (ask_px, ask_sz, *_) = item["bids"][0], item["asks"][0]
        # The venue's own text, exactly (what the checksum would read).
        assert state["bid_text"] == (bid_px, bid_sz)
        assert state["ask_text"] == (ask_px, ask_sz)
        # The book's numbers: price as sent, size in BTC (contracts × ctVal).
        for (price, size), px, sz in (
            (state["bid"], bid_px, bid_sz),
            (state["ask"], ask_px, ask_sz),
        ):
            assert price == float(px)
            assert math.isclose(size, float(Decimal(sz) * CT_VAL), rel_tol=1e-12), (size, sz)
    assert compared == 7  # of 78 bbo-tbt messages, 7 share a books seqId; all 7 match


def test_exported_depth_and_taker_volume_are_in_btc_terms() -> None:
    run = replay()
    registry, reference = run["registry"], run["reference"]
    for band in BAND_BPS:
        want_bid, want_ask = reference.depth_btc_terms(band)
        assert want_bid > 0 and want_ask > 0
        for side, want in (("bid", want_bid), ("ask", want_ask)):
            got = sample(registry, "mmradar_depth_notional", side=side, band_bps=str(band))
            assert math.isclose(got, float(want), rel_tol=1e-9), (band, side, got, want)
    trades = run["trades"]
    assert len(trades) == 36
    for side in ("buy", "sell"):
        want = sum((Decimal(t["sz"]) * CT_VAL for t in trades if t["side"] == side), Decimal(0))
        got = sample(registry, "mmradar_taker_volume_total", side=side)
        assert math.isclose(got, float(want), rel_tol=1e-12), (side, got, want)
    # The figures (contracts × 0.01): buys 151.55 contracts = 1.5155 BTC, sells 3.4 = 0.034 BTC.
    assert math.isclose(sample(registry, "mmradar_taker_volume_total", side="buy"), 1.5155)
    assert math.isclose(sample(registry, "mmradar_taker_volume_total", side="sell"), 0.034)
    # bbo-tbt is not a channel this service subscribes: counted as unknown, nothing else.
    bad = registry.get_sample_value(
        "mmradar_feed_bad_messages_total", {"exchange": "okx", "reason": "unknown"}
    )
    assert bad == 78  # the 78 bbo-tbt pushes (their subscribe ack is a plain notice)
