"""Coinbase products in the configuration: ``-USDC`` products served as ``-USD`` are refused.

Coinbase's websocket-channels page: "-USDC" products are only on the user channel; "Other
channels will return the same data as the corresponding -USD based products. USDT-USDC and
EURC-USDC are available on all channels" (docs/venues/coinbase.md "Market").
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from mmradar.config import parse_settings
from mmradar.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def feeds(*symbols: str) -> dict[str, object]:
    return {"feeds": [{"exchange": "coinbase", "symbols": list(symbols)}]}


def test_usdc_product_is_refused_with_its_key_path_and_the_product_to_use() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings(feeds("BTC-USD", "ETH-USDC"))
    assert refused.value.path == "feeds[0].symbols[1]"
    assert "'ETH-USDC'" in str(refused.value) and "configure 'ETH-USD'" in str(refused.value)


def test_usdc_products_served_on_their_own_and_other_venues_are_accepted() -> None:
    settings = parse_settings(
        {
            "feeds": [
                {"exchange": "coinbase", "symbols": ["BTC-USD", "USDT-USDC", "EURC-USDC"]},
                {"exchange": "binance", "symbols": ["BTCUSDC"]},
            ]
        }
    )
    assert [f.symbols for f in settings.feeds] == [
        ("BTC-USD", "USDT-USDC", "EURC-USDC"),
        ("BTCUSDC",),
    ]


async def test_check_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "usdc.toml"
    path.write_text('[[feeds]]\nexchange = "coinbase"\nsymbols = ["BTC-USDC"]\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmradar", "check-config", str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ), cwd=ROOT,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2, err
    assert b"feeds[0].symbols[0]: 'BTC-USDC' has no market data of its own" in err
    assert b"Traceback" not in err
