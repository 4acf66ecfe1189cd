"""Contract sizes: how a symbol's venue quantities become base-currency units.

Every measure the service exports is in base-currency units (sizes, taker volume) or quote
notional (depth, ``Σ price·qty``; docs/metrics.md). Spot venues and Binance USD-M and Bybit
linear already publish quantities in the base currency. OKX derivatives publish **contracts**
(``sz`` in ``books`` and ``trades``), whose value the venue lists in its instrument metadata
(docs/venues/okx.md "Contract sizes"):

* **linear** (``BTC-USDT-SWAP``: ``ctVal`` 0.01 BTC): one contract is ``ctVal × ctMult`` of
  the base currency, so ``base = sz × multiplier``;
* **inverse** (``BTC-USD-SWAP``: ``ctVal`` 100 USD): one contract is ``ctVal × ctMult`` of the
  quote currency, so its quote notional is ``sz × multiplier`` and ``base = sz × multiplier /
  price``.

Where the conversion happens (docs/architecture.md "Units"): the book converts each level's
quantity once, on apply (:meth:`mmradar.book.l2book.L2Book.set_contract`), and keeps the
venue's own text beside it for checksums; the venue's frame parser converts trade sizes. The
sizes are fetched once at start-up, before any connection opens (:meth:`Venue.contract_requests
<mmradar.venues.base.Venue.contract_requests>`), and handed to the pipeline
(:meth:`mmradar.pipeline.FeedPipeline.use_contracts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["BASE_UNITS", "ContractSize"]


@dataclass(frozen=True, slots=True)
class ContractSize:
    """How one symbol's venue quantities convert to base-currency units.

    Attributes:
        multiplier: linear: base units per venue unit (OKX ``ctVal × ctMult``, 0.01 for
            ``BTC-USDT-SWAP``); inverse: quote units per venue unit (100 for ``BTC-USD-SWAP``).
        inverse: the venue unit is worth ``multiplier`` of the **quote** currency: base units
            are ``qty × multiplier / price``.
        source: where the size comes from, for logs (``"ctVal 0.01 BTC × ctMult 1, linear"``).
    """

    multiplier: float = 1.0
    inverse: bool = False
    source: str = "quantities in base units"

    def __post_init__(self) -> None:
        if not (self.multiplier > 0.0 and self.multiplier < float("inf")):
            raise ValueError(f"a contract multiplier must be finite and > 0, not {self.multiplier}")

    def base_qty(self, qty: float, price: float) -> float:
        """``qty`` venue units at ``price`` in base-currency units.

        Raises:
            ValueError: an inverse contract at a price that is not > 0.
        """
        if self.inverse:
            if not price > 0.0:
                raise ValueError(f"inverse contract at price {price}")
            return qty * self.multiplier / price
        return qty * self.multiplier

    @classmethod
    def of(cls, value: Decimal, mult: Decimal, *, inverse: bool, source: str) -> ContractSize:
        """The size of a contract worth ``value × mult`` (exact product, rounded once)."""
        return cls(float(value * mult), inverse, source)


#: Quantities already in base units (spot, Binance USD-M, Bybit linear).
BASE_UNITS = ContractSize()
