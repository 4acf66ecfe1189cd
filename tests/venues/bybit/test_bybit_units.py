"""Bybit units: linear and spot sizes are base coin (no conversion); inverse contracts, sized
in USD contracts, are refused when the service is built (docs/venues/bybit.md "Units")."""

from __future__ import annotations

import pytest

from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.errors import ConfigError, ContractError
from mmradar.venues import VENUE_NAMES
from mmradar.venues.bybit import Bybit


@pytest.mark.parametrize("category", ["linear", "spot"])
def test_linear_and_spot_symbols_need_no_contract_metadata(category: str) -> None:
    venue = Bybit(category=category)
    symbols = ["BTCUSDT", "ETHUSDC", "BTCPERP", "BTC-26DEC25", "BTCUSDT-26DEC25", "BTCUSDE"]
    assert venue.contract_requests(symbols) == []
    assert venue.parse_contracts(symbols, []) == {}


@pytest.mark.parametrize("symbol", ["BTCUSD", "ETHUSD", "BTCUSDH26", "btcusdz25"])
def test_inverse_contracts_are_refused(symbol: str) -> None:
    with pytest.raises(ContractError, match="an inverse contract") as caught:
        Bybit().contract_requests(["BTCUSDT", symbol])
    assert isinstance(caught.value, ConfigError)
    assert (caught.value.exchange, caught.value.symbol) == ("bybit", symbol)


def test_service_refuses_an_inverse_symbol_before_any_io() -> None:
    settings = parse_settings(
        {
            "http": {"listen": "127.0.0.1:0"},
            "feeds": [{"exchange": "bybit", "symbols": ["BTCUSDT", "BTCUSD"]}],
        },
        env={},
        supported=VENUE_NAMES,
    )
    with pytest.raises(ContractError, match="bybit BTCUSD: an inverse contract"):
        Service(settings, serve_http=False)
