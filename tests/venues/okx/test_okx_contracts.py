"""OKX contract sizes: the instrument-metadata request and answer, the refusals, and the
conversion of books and trades from contracts to base units (docs/venues/okx.md
"Contract sizes").

``instruments_swap.json`` / ``instruments_futures.json`` follow OKX's "Get instruments" answer
(sources in ``tests/fixtures/okx/SOURCES.md``).
"""

from __future__ import annotations

import math
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from mmradar.book.l2book import L2Book
from mmradar.book.sync import BookSync
from mmradar.contracts import ContractSize
from mmradar.errors import ConfigError, ContractError, MalformedMessage, UnknownMessage
from mmradar.model import BookEvent, Side, TakerSide, Trade
from mmradar.pipeline import FeedPipeline
from mmradar.venues.base import SnapshotRequest
from mmradar.venues.okx import INSTRUMENTS_PATH, Okx, instrument_type, okx_checksum

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "okx"
SWAP = (FIXTURES / "instruments_swap.json").read_bytes()
FUTURES = (FIXTURES / "instruments_futures.json").read_bytes()
TS = 1_700_000_000_000_000_000


@pytest.mark.parametrize(
    ("symbol", "kind"),
    [
        ("BTC-USDT", "SPOT"),
        ("BTC-USDT-SWAP", "SWAP"),
        ("BTC-USD-SWAP", "SWAP"),
        ("BTC-USD-260626", "FUTURES"),
        ("BTC-USDT-260626", "FUTURES"),
    ],
)
def test_instrument_types(symbol: str, kind: str) -> None:
    assert instrument_type(symbol) == kind


@pytest.mark.parametrize(
    ("symbol", "why"),
    [
        ("BTC-USD-260626-100000-C", "options are not supported"),
        ("BTC-USD-260626-100000-P", "options are not supported"),
        ("BTC-USDT-PERP", "not an OKX spot"),
        ("BTCUSDT", "not an OKX spot"),
        ("BTC-USD-2606", "not an OKX spot"),
    ],
)
def test_unsupported_instrument_ids_are_refused_before_any_io(symbol: str, why: str) -> None:
    with pytest.raises(ContractError, match=why) as caught:
        Okx().contract_requests(["BTC-USDT", symbol])
    assert isinstance(caught.value, ConfigError)  # exit code 2, like any config error
    assert (caught.value.exchange, caught.value.symbol) == ("okx", symbol)


def test_contract_requests_one_per_derivative_type() -> None:
    venue = Okx(rest_base="http://127.0.0.1:9")
    assert venue.contract_requests(["BTC-USDT", "ETH-USDT"]) == []  # spot: nothing to fetch
    base = f"http://127.0.0.1:9{INSTRUMENTS_PATH}"
    assert venue.contract_requests(["BTC-USD-260626", "BTC-USDT-SWAP", "ETH-USDT-SWAP"]) == [
        SnapshotRequest(f"{base}?instType=SWAP", 1),
        SnapshotRequest(f"{base}?instType=FUTURES", 1),
    ]
    assert Okx().contract_requests(["BTC-USDT-SWAP"]) == [
        SnapshotRequest(f"https://www.okx.com{INSTRUMENTS_PATH}?instType=SWAP", 1)
    ]


def test_parse_contracts_linear_and_inverse() -> None:
    symbols = ["BTC-USDT", "BTC-USDT-SWAP", "BTC-USD-SWAP", "BTC-USD-260626", "BTC-USDT-260626"]
    sizes = Okx().parse_contracts(symbols, [SWAP, FUTURES])
    assert sizes == {
        "BTC-USDT-SWAP": ContractSize(0.01, False, "ctVal 0.01 BTC x ctMult 1, linear"),
        "BTC-USD-SWAP": ContractSize(100.0, True, "ctVal 100 USD x ctMult 1, inverse"),
        "BTC-USD-260626": ContractSize(100.0, True, "ctVal 100 USD x ctMult 1, inverse"),
        "BTC-USDT-260626": ContractSize(0.01, False, "ctVal 0.01 BTC x ctMult 1, linear"),
    }


def edited(body: bytes, inst_id: str, **fields: Any) -> bytes:
    msg = orjson.loads(body)
    for item in msg["data"]:
        if item["instId"] == inst_id:
            item.update(fields)
    return orjson.dumps(msg)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"ctVal": ""}, "no usable contract value"),
        ({"ctVal": "0"}, "no usable contract value"),
        ({"ctVal": "NaN"}, "no usable contract value"),
        ({"ctMult": ""}, "no usable contract value"),
        ({"ctVal": None}, "no usable contract value"),
        ({"ctValCcy": "USDT"}, "valued in 'USDT', not in 'BTC'"),
        ({"ctType": ""}, "unknown contract type"),
        ({"instType": "FUTURES"}, "lists no SWAP instrument"),
    ],
)
def test_an_unknowable_contract_value_is_refused(fields: dict[str, Any], why: str) -> None:
    with pytest.raises(ContractError, match=why):
        Okx().parse_contracts(["BTC-USDT-SWAP"], [edited(SWAP, "BTC-USDT-SWAP", **fields)])


def test_a_derivative_okx_does_not_list_is_refused() -> None:
    with pytest.raises(ContractError, match="lists no SWAP instrument 'SOL-USDT-SWAP'"):
        Okx().parse_contracts(["BTC-USDT-SWAP", "SOL-USDT-SWAP"], [SWAP])


@pytest.mark.parametrize(
    "body",
    [
        b"<html>",
        b"[]",
        b'{"code":"50011","msg":"Too Many Requests","data":[]}',
        b'{"code":"0","msg":"","data":{}}',
    ],
)
def test_an_answer_that_is_not_an_instrument_list_is_malformed(body: bytes) -> None:
    # Malformed answers are retried by the shell; they say nothing about the contract.
    with pytest.raises(MalformedMessage):
        Okx().parse_contracts(["BTC-USDT-SWAP"], [body])


def test_trade_sizes_are_converted_to_base_units() -> None:
    venue = Okx()
    venue.use_contracts(venue.parse_contracts(["BTC-USDT-SWAP", "BTC-USD-SWAP"], [SWAP]))
    parser = venue.new_parser()
    frame = orjson.dumps(
        {
            "arg": {"channel": "trades", "instId": "X"},
            "data": [
                {"instId": "BTC-USDT-SWAP", "tradeId": "1", "px": "84093.4", "sz": "667.19",
                 "side": "buy", "ts": "1790439594782", "count": "1", "source": "0"},
                {"instId": "BTC-USD-SWAP", "tradeId": "2", "px": "80000", "sz": "3",
                 "side": "sell", "ts": "1790439594783", "count": "1", "source": "0"},
                {"instId": "BTC-USDT", "tradeId": "3", "px": "84000", "sz": "0.5",
                 "side": "buy", "ts": "1790439594784", "count": "1", "source": "0"},
            ],
        }
    )  # fmt: skip
    trades = parser.parse(frame, TS)
    assert [(t.symbol, t.price, t.taker) for t in trades if isinstance(t, Trade)] == [
        ("BTC-USDT-SWAP", 84093.4, TakerSide.BUY),
        ("BTC-USD-SWAP", 80000.0, TakerSide.SELL),
        ("BTC-USDT", 84000.0, TakerSide.BUY),
    ]
    qty = [t.qty for t in trades if isinstance(t, Trade)]
    assert math.isclose(qty[0], 6.6719, rel_tol=1e-15)  # 667.19 contracts x 0.01 BTC
    assert math.isclose(qty[1], 0.00375, rel_tol=1e-15)  # 3 x 100 USD / 80000 USD per BTC
    assert qty[2] == 0.5  # spot: base units as sent
    # Without the metadata (the old behaviour) contracts were read as coins.
    (raw, *_) = Okx().new_parser().parse(frame, TS)
    assert isinstance(raw, Trade) and raw.qty == 667.19


def test_pipeline_books_read_contracts_and_keep_the_venue_text() -> None:
    venue = Okx()
    pipeline = FeedPipeline(venue, ["BTC-USD-SWAP", "BTC-USDT-SWAP"])
    pipeline.use_contracts(venue.parse_contracts(list(pipeline.instruments), [SWAP]))
    inverse = pipeline.instruments["BTC-USD-SWAP"].book
    linear = pipeline.instruments["BTC-USDT-SWAP"].book
    assert inverse.contract == (100.0, True)
    assert linear.contract == (0.01, False)
    inverse.load([["80000", "5", "0", "1"]], [["80000.1", "20", "0", "2"]])
    linear.load([["84093.4", "570.27", "0", "83"]], [["84093.5", "667.19", "0", "70"]])
    # Inverse: 5 contracts of 100 USD at 80000 = 0.00625 BTC, whose notional is 500 USD.
    assert inverse.best_bid() == (80000.0, pytest.approx(0.00625, rel=1e-15))
    (bids, asks) = inverse.depth_notional()
    assert bids[0] == pytest.approx(500.0, rel=1e-12)
    assert asks[0] == pytest.approx(2000.0, rel=1e-12)
    assert linear.best_ask() == (84093.5, pytest.approx(6.6719, rel=1e-15))
    assert inverse.text_top(Side.BID, 1) == [("80000", "5")]
    assert linear.text_top(Side.ASK, 1) == [("84093.5", "667.19")]


def test_checksums_still_verify_on_contract_books() -> None:
    # The 2022 capture's derivatives with their contract sizes set: OKX's checksum is over the
    # level text, which the book keeps as sent, so all 290 checksums still verify.
    from .test_okx_capture import received, with_todays_chain

    sizes = {
        "BTC-USD-220527": ContractSize(100.0, True),  # inverse futures, 100 USD
        "UNI-USD-SWAP": ContractSize(10.0, True),  # inverse swap, 10 USD
    }
    venue = Okx()
    venue.use_contracts(sizes)
    parser = venue.new_parser()
    verdicts: Counter[bool] = Counter()
    syncs: dict[str, BookSync] = {}
    for ts, frame in with_todays_chain(received()):
        try:
            events = parser.parse(frame, ts)
        except UnknownMessage:  # tickers: not a channel of this service
            continue
        for event in events:
            if not isinstance(event, BookEvent):
                continue
            sync = syncs.get(event.symbol)
            if sync is None:
                book = L2Book(keep_text=True)
                size = sizes.get(event.symbol)
                if size is not None:
                    book.set_contract(size.multiplier, size.inverse)
                sync = syncs[event.symbol] = BookSync(venue, event.symbol, book)
            sync.on_event(event)
            verdicts[okx_checksum(sync.book) == event.checksum] += 1
    assert verdicts == {True: 290}
    uni = syncs["UNI-USD-SWAP"].book
    (price, size), (text_px, text_sz) = uni.top(Side.BID, 1)[0], uni.text_top(Side.BID, 1)[0]
    assert price == float(text_px)
    assert math.isclose(size, float(Decimal(text_sz) * 10 / Decimal(text_px)), rel_tol=1e-12)
