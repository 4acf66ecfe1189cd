"""Canonical instrument ids: one name for an asset pair across venues' spellings.

``BTCUSDT`` (Binance, Bybit), ``BTC-USDT`` (OKX), ``BTC-USD`` (Coinbase), ``BTC/USD`` (Kraken
v2) and ``XBT/USD`` (Kraken v1, REST) all name bitcoin against a US-dollar quote, and
``BTC-USDT-SWAP`` (OKX) its perpetual. The cross-venue view (:mod:`mmradar.signals.crossvenue`)
compares venues per canonical instrument ``BASE-FAMILY``:

* the base asset, with legacy aliases folded (``XBT`` → ``BTC``, ``XDG`` → ``DOGE``);
* the quote's **currency family**: USD and the dollar stablecoins (USDT, USDC, FDUSD, ...)
  form the family ``USD``; any other quote is its own family (``EUR``, ``BTC``, ...).

Spot and perpetual contracts of a pair map to the same instrument: the mid dislocation between
them is the basis (and, for USDT against USD, the stablecoin's premium), a few bps in calm
markets. That systematic offset is why the withdrawal symptom compares each venue's depth with
its own baseline, never prices across venues.

Market kind (:func:`market_kind`): whether a configured symbol is a spot pair, a perpetual or a
dated future, decided in this one place from the venue and the symbol (the hedge view,
:mod:`mmradar.signals.hedge`, pairs spot with perpetual legs of one instrument).

Spelling rules are generic (separators, then known quote suffixes); a venue whose symbols do
not follow them overrides :meth:`mmradar.venues.base.Venue.instrument`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["MARKET_KINDS", "QUOTE_FAMILIES", "Instrument", "market_kind", "parse_instrument"]

#: quote currency → family.
QUOTE_FAMILIES: Final[dict[str, str]] = {
    "USD": "USD",
    "USDT": "USD",
    "USDC": "USD",
    "FDUSD": "USD",
    "TUSD": "USD",
    "BUSD": "USD",
    "USDE": "USD",
    "DAI": "USD",
    "PYUSD": "USD",
    "ZUSD": "USD",
    "EUR": "EUR",
    "ZEUR": "EUR",
    "EURC": "EUR",
    "GBP": "GBP",
    "JPY": "JPY",
    "BTC": "BTC",
    "XBT": "BTC",
    "ETH": "ETH",
}
_ALIASES: Final[dict[str, str]] = {"XBT": "BTC", "XXBT": "BTC", "XDG": "DOGE", "XETH": "ETH"}
# Longest first, so BTCFDUSD is BTC + FDUSD and not BTCFD + USD.
_SUFFIXES: Final = tuple(sorted(QUOTE_FAMILIES, key=len, reverse=True))
_SEPARATORS: Final = re.compile(r"[-/_:]")
#: contract kinds that follow the pair (OKX ``BTC-USDT-SWAP``, ``BTC-USD-240628``).
_PERPETUAL: Final = frozenset({"SWAP", "PERP", "PERPETUAL"})


@dataclass(frozen=True, slots=True)
class Instrument:
    """A venue symbol read as an asset pair.

    Attributes:
        base: base asset, aliases folded (``BTC``).
        quote: quote currency as the venue spells it (``USDT``).
        family: the quote's currency family (``USD``).
        contract: ``spot``, ``perpetual`` or ``future`` (dated), where the spelling says so;
            venues whose symbols do not (Binance USD-M) report ``spot`` from this parser.
    """

    base: str
    quote: str
    family: str
    contract: str = "spot"

    @property
    def id(self) -> str:
        """The canonical id, ``BASE-FAMILY`` (``BTC-USD``)."""
        return f"{self.base}-{self.family}"


def parse_instrument(symbol: str) -> Instrument | None:
    """Read a venue symbol as an asset pair; ``None`` when its spelling is not recognized."""
    text = symbol.strip().upper()
    parts = [p for p in _SEPARATORS.split(text) if p]
    contract = "spot"
    if len(parts) >= 2:
        base, quote = parts[0], parts[1]
        if len(parts) > 2:
            contract = "perpetual" if parts[2] in _PERPETUAL else "future"
    elif len(parts) == 1:
        word = parts[0]
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) > len(suffix):
                base, quote = word[: -len(suffix)], suffix
                break
        else:
            return None
    else:
        return None
    base = _ALIASES.get(base, base)
    family = QUOTE_FAMILIES.get(quote, quote)
    return Instrument(base=base, quote=quote, family=family, contract=contract)


#: :func:`market_kind` values.
MARKET_KINDS: Final = ("spot", "perp", "future")
#: config ``exchange`` values whose every symbol is a perpetual: Binance USD-M futures
#: (``BTCUSDT`` there is the perpetual) and Bybit, whose feed follows the linear category.
_PERP_EXCHANGES: Final = frozenset({"binance-usdm", "bybit"})
#: config ``exchange`` values whose every symbol is a spot pair.
_SPOT_EXCHANGES: Final = frozenset({"binance", "coinbase", "kraken"})


def market_kind(exchange: str, symbol: str) -> str:
    """``"spot"``, ``"perp"`` (perpetual) or ``"future"`` (dated) for a configured symbol.

    The venue decides where its symbols do not say it (``binance-usdm`` and ``bybit`` follow
    perpetuals only; ``binance``, ``coinbase``, ``kraken`` spot only); elsewhere (OKX) the
    spelling does: ``BTC-USDT-SWAP`` is a perpetual, ``BTC-USD-260626`` a future,
    ``BTC-USDT`` spot.
    """
    if exchange in _PERP_EXCHANGES:
        return "perp"
    if exchange in _SPOT_EXCHANGES:
        return "spot"
    parsed = parse_instrument(symbol)
    if parsed is None or parsed.contract == "spot":
        return "spot"
    return "perp" if parsed.contract == "perpetual" else "future"
