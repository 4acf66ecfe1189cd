"""The reference Binance text book: REST bodies and combined-stream depth frames in and out."""

from __future__ import annotations

import orjson

from mmradar.embedded.truth import TruthBook

SNAPSHOT = orjson.dumps(
    {
        "lastUpdateId": 100,
        "bids": [["99.50", "1.000"], ["100.00", "2.000"], ["9.75", "0.000"]],
        "asks": [["100.50", "3.000"], ["101.25", "4.000"]],
    }
)


def depth(u: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": u, "u": u, "b": bids, "a": asks}
    return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data})


def test_rest_body_in_and_out() -> None:
    book = TruthBook.from_rest(SNAPSHOT)
    assert book.last_update_id == 100
    assert book.bids == {"99.50": "1.000", "100.00": "2.000"}  # a zero level is no level
    assert orjson.loads(book.rest_body()) == {
        "lastUpdateId": 100,
        "bids": [["100.00", "2.000"], ["99.50", "1.000"]],
        "asks": [["100.50", "3.000"], ["101.25", "4.000"]],
    }


def test_depth_frames_apply_and_others_do_not() -> None:
    book = TruthBook.from_rest(SNAPSHOT)
    trade = b'{"stream":"btcusdt@trade","data":{"e":"trade","p":"100.00","q":"1.0"}}'
    assert book.apply_frame(trade) is False
    assert book.apply_frame(depth(101, [["100.00", "0.00000000"], ["100.25", "5.0"]], [])) is True
    assert book.last_update_id == 101
    assert book.top(1) == ([("100.25", "5.0")], [("100.50", "3.000")])
    assert "100.00" not in book.bids
