"""End to end: OKX perpetuals, whose sizes are contracts, against the embedded OKX venue.

The service asks the venue's ``GET /api/v5/public/instruments`` once at start-up, before any
connection, and from then on exports every size in base units: a linear BTC-USDT-SWAP contract
is 0.01 BTC, an inverse BTC-USD-SWAP contract is 100 USD (``sz × 100 / price`` BTC, whose
notional is ``sz × 100`` USD). The references are recomputed from the venue's ground truth in
``Decimal``. A derivative whose contract value cannot be known stops the service (exit code 2).
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from e2e.harness import market_reference
from fakes.okx import CONTRACTS, EmbeddedOkx
from mmradar.app import Service
from mmradar.config import parse_settings
from mmradar.errors import ContractError
from mmradar.venues import VENUE_NAMES
from support import wait_until

from .conftest import EXCHANGE, Running, Samples, sample

LINEAR, INVERSE = "BTC-USDT-SWAP", "BTC-USD-SWAP"


def converted(venue: EmbeddedOkx, symbol: str) -> dict[str, float]:
    """Every market value the service must export for ``symbol``, from the venue's truth with
    sizes converted in ``Decimal``: linear ``sz × ctVal``, inverse ``sz × ctVal / px``."""
    ct_type, ct_val, _, _ = CONTRACTS[symbol]
    value = Decimal(ct_val)

    def base(px: str, sz: str) -> Decimal:
        return Decimal(sz) * value / Decimal(px) if ct_type == "inverse" else Decimal(sz) * value

    bids, asks = venue.truth_book(symbol)
    taker = {"buy": Decimal(0), "sell": Decimal(0)}
    for side, px, sz in venue.trades(symbol):
        taker[side] += base(px, sz)
    return market_reference(
        {px: str(base(px, sz)) for px, sz in bids.items()},
        {px: str(base(px, sz)) for px, sz in asks.items()},
        taker,
    )


def matches(running: Running, samples: Samples, symbol: str) -> bool:
    if not running.valid(samples, symbol):
        return False
    ref, got = converted(running.venue, symbol), running.observed(samples, symbol)
    if any(got[k] != ref[k] for k in ("bid", "ask", "levels_bid", "levels_ask")):
        return False
    return all(math.isclose(got[k], ref[k], rel_tol=1e-9, abs_tol=1e-12) for k in ref)


async def test_linear_and_inverse_swaps_are_exported_in_base_units(okx_service) -> None:
    running: Running = await okx_service((LINEAR, INVERSE))
    venue = running.venue
    await running.wait_for(
        lambda s: (
            all(running.valid(s, sym) for sym in (LINEAR, INVERSE))
            and all(venue.taker_volume(sym)["buy"] > 0 for sym in (LINEAR, INVERSE))
        ),
        what="sync and trades",
    )
    venue.pause()
    samples = await running.wait_for(
        lambda s: matches(running, s, LINEAR) and matches(running, s, INVERSE),
        what="books and taker volume in base units",
    )
    # One SWAP listing at start-up, for both symbols; then the two REST snapshots.
    assert venue.stats.instrument_requests == 1
    assert sample(samples, "mmradar_snapshot_requests_total", exchange=EXCHANGE, result="ok") == 2
    for symbol in (LINEAR, INVERSE):
        got = running.observed(samples, symbol)
        raw = running.reference(symbol)  # the same truth read as coins (the old behaviour)
        ref = converted(venue, symbol)
        for band in (10, 200):
            assert got[f"depth_bid_{band}"] == pytest.approx(ref[f"depth_bid_{band}"], rel=1e-9)
            assert got[f"depth_bid_{band}"] != pytest.approx(raw[f"depth_bid_{band}"], rel=1e-3)
        assert got["taker_buy"] == pytest.approx(ref["taker_buy"], rel=1e-9)
        assert got["taker_buy"] != pytest.approx(raw["taker_buy"], rel=1e-3)
    # The inverse swap's depth notional is its contracts' USD value: Σ sz × 100 within the band.
    bids, _ = venue.truth_book(INVERSE)
    mid = running.observed(samples, INVERSE)["mid"]
    usd = sum(Decimal(sz) * 100 for px, sz in bids.items() if float(px) >= mid * (1.0 - 0.02))
    assert running.observed(samples, INVERSE)["depth_bid_200"] == pytest.approx(float(usd))


async def test_instruments_rate_limited_at_start_up_is_retried(okx_service) -> None:
    running: Running = await okx_service(
        (LINEAR,), setup=lambda venue: venue.fail_next_rest(2)
    )  # both 429s land on the instruments request, the first REST call of the service
    await running.wait_for(lambda s: matches(running, s, LINEAR), what="sync after retries")
    stats = running.venue.stats
    assert stats.instrument_requests == 3
    assert stats.rest_rejected == 2


async def run_service(venue: EmbeddedOkx, symbols: list[str]) -> tuple[Service, BaseException]:
    settings = parse_settings(
        {
            "http": {"listen": "127.0.0.1:0"},
            "feeds": [
                {
                    "exchange": EXCHANGE,
                    "symbols": symbols,
                    "ws_url": venue.ws_base,
                    "rest_url": venue.rest_base,
                }
            ],
        },
        env={},
        supported=VENUE_NAMES,
    )
    service = Service(settings, backoff_factory=lambda: iter([0.05] * 100))
    with pytest.raises(ContractError) as caught:
        await asyncio.wait_for(service.run(asyncio.Event()), 10)
    return service, caught.value


@pytest.mark.parametrize(
    ("overrides", "symbols", "why"),
    [
        ({}, [LINEAR, "ETH-USDT-SWAP"], "OKX lists no SWAP instrument 'ETH-USDT-SWAP'"),
        ({LINEAR: {"ctVal": ""}}, [LINEAR], "no usable contract value"),
        ({LINEAR: {"ctValCcy": "USDT"}}, [LINEAR], "valued in 'USDT', not in 'BTC'"),
    ],
)
async def test_unknowable_contract_value_stops_the_service_before_connecting(
    overrides: dict[str, dict[str, Any]], symbols: list[str], why: str
) -> None:
    venue = EmbeddedOkx((LINEAR,), instrument_overrides=overrides)
    await venue.start()
    try:
        _, error = await run_service(venue, symbols)
    finally:
        await venue.stop()
    assert why in str(error)
    assert venue.stats.instrument_requests == 1
    assert venue.stats.connections_accepted == 0  # refused before any connection


def run_cli(config: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRADAR_")}
    done = subprocess.run(
        [sys.executable, "-m", "mmradar", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    return done.returncode, done.stderr


def config_text(symbols: list[str], base: str = "127.0.0.1:9") -> str:
    listed = ", ".join(f'"{s}"' for s in symbols)
    return (
        '[http]\nlisten = "127.0.0.1:0"\n\n[[feeds]]\nexchange = "okx"\n'
        f'symbols = [{listed}]\nws_url = "ws://{base}"\nrest_url = "http://{base}"\n'
    )


async def test_command_line_exits_2_on_an_unlisted_derivative(tmp_path: Path) -> None:
    venue = EmbeddedOkx((LINEAR,))
    await venue.start()
    try:
        config = tmp_path / "okx.toml"
        host = venue.rest_base.removeprefix("http://")
        config.write_text(config_text(["ETH-USDT-SWAP"], host))
        code, stderr = await asyncio.to_thread(run_cli, config)
    finally:
        await venue.stop()
    assert code == 2, stderr
    assert "config error: okx ETH-USDT-SWAP: OKX lists no SWAP instrument" in stderr
    assert venue.stats.instrument_requests == 1
    assert venue.stats.connections_accepted == 0


def test_command_line_exits_2_on_an_option_before_any_io(tmp_path: Path) -> None:
    config = tmp_path / "okx.toml"
    config.write_text(config_text(["BTC-USDT", "BTC-USD-260626-100000-C"]))
    code, stderr = run_cli(config)
    assert code == 2, stderr
    assert "config error: okx BTC-USD-260626-100000-C: options are not supported" in stderr


async def test_a_recording_replays_swaps_in_the_units_live_read(tmp_path: Path) -> None:
    """``mmradar record`` writes the instrument-metadata answers (a ``contracts`` record) before
    the first frame, so that a replay reads the swap's sizes as live did; a recording without
    them is refused rather than replayed with contracts read as coins."""
    from e2e.harness import ServiceStack
    from mmradar import __version__
    from mmradar.model import Side
    from mmradar.record import Recorder, open_recording
    from mmradar.replayer import Replayer, build_pipelines, probe_feeds

    venue = EmbeddedOkx((LINEAR,))
    await venue.start()
    recorder = Recorder(tmp_path, [(EXCHANGE, (LINEAR,), True)], version=__version__)
    stack = ServiceStack()
    try:
        service, _url, _session = await stack.serve(
            venue,
            {"exchange": EXCHANGE, "symbols": [LINEAR], "ws_url": venue.ws_base,
             "rest_url": venue.rest_base},
            recorder=recorder,
        )  # fmt: skip
        live = next(p for p in service.pipelines if p.venue.name == EXCHANGE)
        inst = live.instruments[LINEAR]
        await wait_until(
            lambda: inst.valid and inst.market.taker_buy > 0 and inst.market.taker_sell > 0,
            "a valid book and trades on both sides",
            timeout_s=20,
            interval_s=0.05,
        )
        venue.pause()

        def caught_up() -> bool:
            # Every frame sent before the pause has landed (and is recorded): the live book
            # and taker volume are the venue's truth.
            ref = converted(venue, LINEAR)
            bids, asks = inst.book.items(Side.BID), inst.book.items(Side.ASK)
            return (
                inst.valid
                and (len(bids), len(asks)) == (ref["levels_bid"], ref["levels_ask"])
                and (max(p for p, _ in bids), min(p for p, _ in asks)) == (ref["bid"], ref["ask"])
                and math.isclose(inst.market.taker_buy, ref["taker_buy"], rel_tol=1e-9)
                and math.isclose(inst.market.taker_sell, ref["taker_sell"], rel_tol=1e-9)
            )

        await wait_until(caught_up, "frames in flight to land", timeout_s=20, interval_s=0.05)
        live_book = (list(inst.book.items(Side.BID)), list(inst.book.items(Side.ASK)))
        live_taker = (inst.market.taker_buy, inst.market.taker_sell)
    finally:
        await stack.close()
        recorder.close()  # the stack stopped the venue

    records = [r for path in recorder.paths for r in open_recording(path)]
    kinds = [r.kind for r in records]
    assert kinds.count("contracts") == 1
    assert kinds.index("contracts") < kinds.index("ws")

    pipelines = build_pipelines(probe_feeds(recorder.paths[0]))
    Replayer(pipelines).run(records)
    replayed = pipelines[EXCHANGE].instruments[LINEAR]
    assert replayed.valid
    assert pipelines[EXCHANGE].venue.contract_sizes == live.venue.contract_sizes
    assert (list(replayed.book.items(Side.BID)), list(replayed.book.items(Side.ASK))) == live_book
    assert (replayed.market.taker_buy, replayed.market.taker_sell) == live_taker
    # The quantities are base units: 0.01 BTC a contract (the venue's truth, converted).
    ref = converted(venue, LINEAR)
    bid_qty = sum(q for _, q in live_book[0])
    assert bid_qty == pytest.approx(
        sum(float(Decimal(sz) * Decimal("0.01")) for sz in venue.truth_book(LINEAR)[0].values())
    )
    assert ref["levels_bid"] == len(live_book[0])

    without = build_pipelines(probe_feeds(recorder.paths[0]))
    with pytest.raises(ContractError, match="recording does not carry their size"):
        Replayer(without).run(r for r in records if r.kind != "contracts")
