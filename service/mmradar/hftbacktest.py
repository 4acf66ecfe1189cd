"""hftbacktest collector captures: the line format, read in one place.

A capture is UTF-8 text, gzip-compressed or plain, one record per line:
``<local receive time, ns since epoch> <json>``. Stream messages keep Binance's
combined-stream wrapper ``{"stream": "btcusdt@depth@100ms", "data": {...}}``; a REST depth
snapshot is unwrapped (``{"lastUpdateId": ..., "bids": [...], "asks": [...]}``).

Two readers build on this module: :mod:`mmradar.embedded.capture` types every line strictly
(the embedded venue's source), and :class:`mmradar.record.RecordingReader` presents a capture
as a recording for ``mmradar replay`` (lenient: it counts bad lines and goes on).
"""

from __future__ import annotations

import gzip
from typing import IO, Any

import orjson

__all__ = ["GZIP_MAGIC", "decompressed", "parse_line", "split_line", "stream_data"]

#: The first two bytes of a gzip file.
GZIP_MAGIC = b"\x1f\x8b"


def decompressed(raw: IO[bytes]) -> IO[bytes]:
    """The text stream of a capture file opened in binary mode: gunzipped when gzip, else as is.

    Reads the first two bytes to tell, and rewinds: ``raw`` must be seekable.
    """
    magic = raw.read(2)
    raw.seek(0)
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def split_line(line: bytes) -> tuple[int, bytes] | None:
    """``(receive time ns, JSON text)`` of one stripped line, or None if not ``<int> <json>``."""
    head, sep, body = line.partition(b" ")
    if not sep or not head.isdigit():
        return None
    return int(head), body


def parse_line(line: bytes) -> tuple[int, bytes, Any] | None:
    """``(receive time ns, JSON text, decoded JSON)`` of one stripped line, or None if bad."""
    split = split_line(line)
    if split is None:
        return None
    try:
        obj = orjson.loads(split[1])
    except orjson.JSONDecodeError:
        return None
    return split[0], split[1], obj


def stream_data(obj: Any) -> dict[str, Any] | None:
    """The message of a decoded line: the ``data`` of a combined-stream wrapper, else itself."""
    if type(obj) is not dict:
        return None
    data = obj.get("data") if "stream" in obj else obj
    return data if type(data) is dict else None
