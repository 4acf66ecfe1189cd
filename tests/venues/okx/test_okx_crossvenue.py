"""The cross-venue view never nets contracts with coins.

The real OKX BTC-USDT-SWAP capture (sizes in contracts of 0.01 BTC) runs through the service's
OKX pipeline; the same market, re-encoded as Bybit linear frames with the sizes written in BTC
(what Bybit publishes), runs through its Bybit pipeline at the same event times. Both map to the
canonical instrument ``BTC-USD``: once the OKX sizes are converted, the two venues hold the same
book, so their depth samples agree and ``mmradar_consolidated_depth_notional`` is twice either.
Read as coins (the old behaviour), OKX's share was 100 times Bybit's.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.model import BAND_BPS
from mmradar.venues import VENUE_NAMES

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "okx"
CAPTURE = FIXTURES / "fastmm_okx_btc-usdt-swap_20260926.jsonl"
OKX, BYBIT = "BTC-USDT-SWAP", "BTCUSDT"
CT_VAL = Decimal("0.01")


def bybit_frame(msg: dict[str, Any], u: int) -> bytes:
    """An OKX books message as Bybit would publish the same book (sizes in BTC)."""
    (item,) = msg["data"]

    def side(levels: list[list[str]]) -> list[list[str]]:
        return [[px, str(Decimal(sz) * CT_VAL)] for px, sz, *_ in levels]

    return orjson.dumps(
        {
            "topic": f"orderbook.1000.{BYBIT}",
            "type": "snapshot" if msg["action"] == "snapshot" else "delta",
            "ts": int(item["ts"]),
            "data": {"s": BYBIT, "b": side(item["bids"]), "a": side(item["asks"]), "u": u,
                     "seq": item["seqId"]},
            "cts": int(item["ts"]),
        }
    )  # fmt: skip


def service() -> Service:
    settings = parse_settings(
        {
            "http": {"listen": "127.0.0.1:0"},
            "feeds": [
                {"exchange": "okx", "symbols": [OKX]},
                {"exchange": "bybit", "symbols": [BYBIT]},
            ],
        },
        env={},
        supported=VENUE_NAMES,
    )
    return Service(settings, serve_http=False)


def replay(convert: bool) -> tuple[Service, list[tuple[tuple[float, ...], ...]]]:
    svc = service()
    okx, bybit = svc.pipelines
    if convert:
        body = (FIXTURES / "instruments_swap.json").read_bytes()
        okx.use_contracts(okx.venue.parse_contracts([OKX], [body]))
    (view,) = svc.cross_venue
    okx_parser, bybit_parser = okx.new_parser(), bybit.new_parser()
    u = 1000
    evaluated: list[tuple[tuple[float, ...], ...]] = []
    for line in CAPTURE.read_bytes().splitlines():
        ts_text, frame = line.split(b"\t", 1)
        ts = int(ts_text)
        okx.on_frame(okx_parser, frame, ts)
        msg = orjson.loads(frame)
        if msg.get("arg", {}).get("channel") == "books" and "data" in msg:
            u += 1
            bybit.on_frame(bybit_parser, bybit_frame(msg, u), ts)
            if view.valid_venues == 2 and (not evaluated or evaluated[-1][0] != view.bids):
                members = {m.exchange: m for m in view.members}
                evaluated.append((view.bids, view.asks, members["okx"].bids, members["bybit"].bids))
    return svc, evaluated


def test_consolidated_depth_sums_quote_notional_of_converted_books() -> None:
    svc, evaluated = replay(convert=True)
    assert evaluated, "the view never compared the two venues"
    (view,) = svc.cross_venue
    assert view.instrument == "BTC-USD"
    for bids, _asks, okx_bids, bybit_bids in evaluated:
        for i, _ in enumerate(BAND_BPS):
            assert okx_bids[i] > 0
            assert math.isclose(okx_bids[i], bybit_bids[i], rel_tol=1e-9)
            assert math.isclose(bids[i], okx_bids[i] + bybit_bids[i], rel_tol=1e-12)
    # The exported series is the view's sum.
    value = svc.registry.get_sample_value(
        "mmradar_consolidated_depth_notional",
        {"instrument": "BTC-USD", "side": "bid", "band_bps": str(BAND_BPS[0])},
    )
    assert value == view.bids[0]


def test_without_contract_sizes_okx_depth_was_a_hundred_times_too_high() -> None:
    _, evaluated = replay(convert=False)
    assert evaluated
    for _bids, _asks, okx_bids, bybit_bids in evaluated:
        for i, _ in enumerate(BAND_BPS):
            assert math.isclose(okx_bids[i], 100 * bybit_bids[i], rel_tol=1e-9)
