"""A price-time-priority limit order book on an integer tick grid (the simulator's exchange).

Prices are integer ticks, quantities integer lots, so every level's quantity is exact. Each
price level is a FIFO list of resting orders; fills walk the best levels first and, within a
level, the oldest order first.

Every change of a level's total quantity is one *update*: it takes the next update id and marks
the level as changed in the current depth window. :meth:`Book.take_window` returns the window's
changed levels with their final quantities (0 = the level is gone) and the id range ``[U, u]``,
exactly what one Binance ``depthUpdate`` event carries.
"""

from __future__ import annotations

from dataclasses import dataclass

from sortedcontainers import SortedDict

__all__ = ["ASK", "BID", "Book", "Fill", "Order"]

BID = 0
ASK = 1


class Order:
    """A resting limit order (mutable: its quantity shrinks as it fills)."""

    __slots__ = ("oid", "owner", "price", "qty", "side")

    def __init__(self, oid: int, owner: int, side: int, price: int, qty: int) -> None:
        self.oid = oid
        self.owner = owner  # >= 0 a dealer's index; negative: background / spoofer
        self.side = side
        self.price = price
        self.qty = qty


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution against one resting order."""

    maker_owner: int
    maker_oid: int
    maker_side: int  # the resting order's side: BID means the taker sold
    price: int
    qty: int


class Book:
    """The order book.

    Attributes:
        update_id: the last update id handed out.
    """

    def __init__(self, first_update_id: int = 1) -> None:
        self._levels: tuple[SortedDict, SortedDict] = (SortedDict(), SortedDict())
        self._qty: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.orders: dict[int, Order] = {}
        self._next_oid = 1
        self.update_id = first_update_id - 1
        self._window_first = first_update_id
        self._changed: tuple[set[int], set[int]] = (set(), set())

    # -- reads ------------------------------------------------------------------------------

    def best(self, side: int) -> int | None:
        """Best price of a side (ticks), None if empty."""
        levels = self._levels[side]
        if not levels:
            return None
        return int(levels.peekitem(-1 if side == BID else 0)[0])

    def level_qty(self, side: int, price: int) -> int:
        """Total resting quantity at a price (0 if none)."""
        return self._qty[side].get(price, 0)

    def levels(self, side: int) -> list[tuple[int, int]]:
        """``(price, qty)`` of a side, best first."""
        qty = self._qty[side]
        keys = self._levels[side].keys()
        ordered = reversed(keys) if side == BID else iter(keys)
        return [(int(p), qty[p]) for p in ordered]

    def orders_through(self, side: int, price: int) -> list[Order]:
        """Resting orders of ``side`` priced at ``price`` or better (bids ≥, asks ≤)."""
        levels = self._levels[side]
        keys = levels.irange(minimum=price) if side == BID else levels.irange(maximum=price)
        return [order for p in keys for order in levels[p]]

    def is_crossed(self) -> bool:
        """True if the best bid is at or above the best ask."""
        b, a = self.best(BID), self.best(ASK)
        return b is not None and a is not None and b >= a

    # -- changes ----------------------------------------------------------------------------

    def _touch(self, side: int, price: int, delta: int) -> None:
        qty = self._qty[side]
        new = qty.get(price, 0) + delta
        if new:
            qty[price] = new
        else:
            del qty[price]
        self.update_id += 1
        self._changed[side].add(price)

    def add(self, owner: int, side: int, price: int, qty: int) -> Order:
        """Rest a limit order (post-only: it must not cross the opposite side).

        Raises:
            ValueError: the order would cross, or its quantity is not positive.
        """
        if qty <= 0:
            raise ValueError("order quantity must be positive")
        opposite = self.best(1 - side)
        if opposite is not None and (price >= opposite if side == BID else price <= opposite):
            raise ValueError("a resting order must not cross the book")
        order = Order(self._next_oid, owner, side, price, qty)
        self._next_oid += 1
        self.orders[order.oid] = order
        queue = self._levels[side].get(price)
        if queue is None:
            self._levels[side][price] = [order]
        else:
            queue.append(order)
        self._touch(side, price, qty)
        return order

    def cancel(self, oid: int) -> Order | None:
        """Cancel a resting order; None if it is gone (filled or cancelled)."""
        order = self.orders.pop(oid, None)
        if order is None:
            return None
        levels = self._levels[order.side]
        queue = levels[order.price]
        queue.remove(order)
        if not queue:
            del levels[order.price]
        self._touch(order.side, order.price, -order.qty)
        return order

    def take(self, taker_side: int, limit: int | None, qty: int) -> list[Fill]:
        """Execute an aggressive order against the opposite side.

        Args:
            taker_side: ``BID`` for a buyer (lifts asks), ``ASK`` for a seller (hits bids).
            limit: worst price the taker accepts (None: a market order).
            qty: quantity to execute at most.

        Returns:
            The fills, in execution order; the rest of ``qty`` is not executed (IOC).
        """
        maker_side = 1 - taker_side
        levels = self._levels[maker_side]
        fills: list[Fill] = []
        while qty > 0 and levels:
            price, queue = levels.peekitem(0 if maker_side == ASK else -1)
            if limit is not None and (price > limit if maker_side == ASK else price < limit):
                break
            while qty > 0 and queue:
                order = queue[0]
                n = min(qty, order.qty)
                fills.append(Fill(order.owner, order.oid, maker_side, int(price), n))
                order.qty -= n
                qty -= n
                if order.qty == 0:
                    queue.pop(0)
                    del self.orders[order.oid]
                self._touch(maker_side, price, -n)
            if not queue:
                del levels[price]
        return fills

    def take_window(self) -> tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]] | None:
        """Close the depth window: ``(U, u, bids, asks)`` of the changed levels, or None.

        Bids are best (highest) first, asks best (lowest) first; a quantity of 0 removes the
        level.
        """
        if self.update_id < self._window_first:
            return None
        bids = [(p, self._qty[BID].get(p, 0)) for p in sorted(self._changed[BID], reverse=True)]
        asks = [(p, self._qty[ASK].get(p, 0)) for p in sorted(self._changed[ASK])]
        out = (self._window_first, self.update_id, bids, asks)
        self._window_first = self.update_id + 1
        self._changed[BID].clear()
        self._changed[ASK].clear()
        return out
