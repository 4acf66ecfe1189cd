"""The reference Binance book: the venue's own book, rebuilt as text, plain and independent.

Two ``dict``s keyed by the exact price text of the venue, values the exact quantity text. It
shares no code with the service's book (:mod:`mmradar.book`) so that end-to-end tests can compare
one against the other. Sorting happens only when a REST snapshot is cut, by :class:`Decimal`.

It is the ground truth of the embedded venue (:mod:`.binance`) and the venue-side book of the
scorer (:mod:`mmradar.score.runner`), which answers resync snapshot requests from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import orjson

from .capture import Level, Snapshot

__all__ = ["TruthBook"]


def _is_zero(qty: str) -> bool:
    return Decimal(qty).is_zero()


class TruthBook:
    """An L2 book as ``{price text: quantity text}`` per side, plus its last update id.

    Attributes:
        bids: bid levels, price text -> quantity text (unordered).
        asks: ask levels, price text -> quantity text (unordered).
        last_update_id: ``u`` of the last applied diff (the snapshot's ``lastUpdateId`` before).
    """

    def __init__(self, snapshot: Snapshot, *, id_offset: int = 0) -> None:
        """Start from a REST snapshot.

        Args:
            snapshot: the capture's REST snapshot.
            id_offset: added to ``lastUpdateId`` (the per-pass id shift of a looping venue).
        """
        self.bids: dict[str, str] = {p: q for p, q in snapshot.bids if not _is_zero(q)}
        self.asks: dict[str, str] = {p: q for p, q in snapshot.asks if not _is_zero(q)}
        self.last_update_id = snapshot.lastUpdateId + id_offset

    @classmethod
    def from_rest(cls, body: bytes | str) -> TruthBook:
        """Start from a ``GET /api/v3/depth`` body (``{"lastUpdateId", "bids", "asks"}``).

        Raises:
            orjson.JSONDecodeError, KeyError, TypeError, ValueError: not such a body.
        """
        obj = orjson.loads(body)
        snapshot = Snapshot(
            recv_ns=0,
            lastUpdateId=int(obj["lastUpdateId"]),
            bids=tuple((p, q) for p, q, *_ in obj["bids"]),
            asks=tuple((p, q) for p, q, *_ in obj["asks"]),
            E=None,
            T=None,
        )
        return cls(snapshot)

    def apply(self, bids: Iterable[Level], asks: Iterable[Level], final_update_id: int) -> None:
        """Apply one diff: set each level to its absolute quantity, zero removes.

        Args:
            bids: bid levels of the diff.
            asks: ask levels of the diff.
            final_update_id: the diff's (shifted) ``u``.
        """
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, qty in levels:
                if _is_zero(qty):
                    side.pop(price, None)
                else:
                    side[price] = qty
        self.last_update_id = final_update_id

    def apply_frame(self, payload: bytes) -> bool:
        """Apply a combined-stream frame if it is a ``depthUpdate``; True if it was one.

        Raises:
            orjson.JSONDecodeError, KeyError, TypeError, ValueError: a malformed depth frame.
        """
        if b"depthUpdate" not in payload:
            return False
        data = orjson.loads(payload)["data"]
        self.apply(
            ((p, q) for p, q, *_ in data["b"]), ((p, q) for p, q, *_ in data["a"]), int(data["u"])
        )
        return True

    def rest_body(self) -> bytes:
        """A ``GET /api/v3/depth`` body of the whole book now (best levels first)."""
        bids, asks = self.top(max(len(self.bids), len(self.asks)))
        return orjson.dumps(
            {
                "lastUpdateId": self.last_update_id,
                "bids": [list(level) for level in bids],
                "asks": [list(level) for level in asks],
            }
        )

    def top(self, limit: int) -> tuple[list[Level], list[Level]]:
        """Return the best ``limit`` levels of each side, best first.

        Args:
            limit: levels per side.

        Returns:
            ``(bids descending, asks ascending)`` as ``(price, qty)`` text pairs.
        """
        bid_prices = sorted(self.bids, key=Decimal, reverse=True)[:limit]
        ask_prices = sorted(self.asks, key=Decimal)[:limit]
        return (
            [(p, self.bids[p]) for p in bid_prices],
            [(p, self.asks[p]) for p in ask_prices],
        )
