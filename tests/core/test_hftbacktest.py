"""The one reader of hftbacktest capture lines, and both readers built on it agreeing."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from mmradar.embedded.capture import capture_path, iter_records
from mmradar.hftbacktest import decompressed, parse_line, split_line, stream_data
from mmradar.record import RecordingReader

LINE = b'1723161254036059768 {"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"X"}}'


def test_split_and_parse_a_line() -> None:
    assert split_line(LINE) == (1723161254036059768, LINE[20:])
    parsed = parse_line(LINE)
    assert parsed is not None
    assert parsed[0] == 1723161254036059768
    assert stream_data(parsed[2]) == {"e": "depthUpdate", "s": "X"}
    assert stream_data({"lastUpdateId": 1}) == {"lastUpdateId": 1}  # a snapshot is unwrapped


def test_bad_lines() -> None:
    for line in (b"", b"abc {}", b"12", b"-1 {}", b"12{}"):
        assert split_line(line) is None
    assert parse_line(b"12 {not json") is None
    assert stream_data([1]) is None
    assert stream_data({"stream": "x", "data": 3}) is None


def test_gzip_or_plain() -> None:
    assert decompressed(io.BytesIO(gzip.compress(LINE))).read() == LINE
    assert decompressed(io.BytesIO(LINE)).read() == LINE


def test_a_plain_capture_reads_as_the_gzip_one(tmp_path: Path) -> None:
    packaged = capture_path("spot")
    plain = tmp_path / "capture.txt"
    plain.write_bytes(gzip.decompress(packaged.read_bytes()))
    assert list(iter_records(plain)) == list(iter_records(packaged))
    kinds = []
    for path in (plain, Path(str(packaged))):
        with RecordingReader(path) as reader:
            kinds.append([r.kind for r in reader])
            assert reader.format == "hftbacktest"
            assert reader.stats.malformed == 0
    assert kinds[0] == kinds[1]
    assert kinds[0][:3] == ["header", "open", "ws"]
