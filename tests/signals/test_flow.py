"""Order-flow imbalance, trade-flow imbalance and the decayed inventory proxy (unit level)."""

from __future__ import annotations

import math

import msgspec
import pytest

from mmradar.signals.flow import FlowState, ofi_event
from mmradar.signals.params import SignalSettings

S = 1_000_000_000


@pytest.mark.parametrize(
    ("prev", "now", "expected"),
    [
        # (bid price, bid qty, ask price, ask qty)
        ((100, 2, 101, 3), (100, 2, 101, 3), 0.0),  # nothing changed
        ((100, 2, 101, 3), (100, 5, 101, 3), 3.0),  # bid size added at the same price
        ((100, 2, 101, 3), (100, 2, 101, 1), 2.0),  # ask size removed (e.g. lifted)
        ((100, 2, 101, 3), (100.5, 4, 101, 3), 4.0),  # bid improves: the new queue counts
        ((100, 2, 101, 3), (99.5, 7, 101, 3), -2.0),  # bid retreats: the old queue is lost
        ((100, 2, 101, 3), (100, 2, 100.5, 6), -6.0),  # ask improves: selling pressure
        ((100, 2, 101, 3), (100, 2, 101.5, 9), 3.0),  # ask retreats: the old queue is gone
    ],
)
def test_ofi_event_follows_cks(
    prev: tuple[float, float, float, float], now: tuple[float, float, float, float], expected: float
) -> None:
    assert ofi_event(*prev, *now) == expected


def flow(**overrides: object) -> FlowState:
    return FlowState(msgspec.structs.replace(SignalSettings(), **overrides))  # type: ignore[arg-type]


def test_decayed_signed_volume_halves_every_half_life_and_buys_are_positive() -> None:
    f = flow(inventory_half_lives_seconds=(10, 600), inventory_half_life_seconds=60)
    assert f.half_lives_s == (10.0, 60.0, 600.0)
    f.on_trade(2.0, True, 100 * S, binned=False)
    f.on_trade(0.5, False, 100 * S, binned=False)
    assert f.decayed(100 * S) == [1.5, 1.5, 1.5]
    x10, x60, x600 = f.decayed(160 * S)
    assert x10 == pytest.approx(1.5 * 2**-6)
    assert x60 == pytest.approx(0.75)
    assert x600 == pytest.approx(1.5 * 2**-0.1)
    f.on_trade(1.0, False, 160 * S, binned=False)
    assert f.decayed(160 * S)[1] == pytest.approx(-0.25)  # selling: dealers long


def test_proxy_z_is_nan_while_cold_then_signed() -> None:
    f = flow(flow_warmup_seconds=5, flow_baseline_half_life_seconds=60)
    t = 0
    for k in range(1, 6):
        f.on_trade(1.0, k % 2 == 0, t, binned=True)
        t = k * S
        f.tick(k, t)
        if k < 5:
            assert math.isnan(f.proxy_z(t))
    assert f.warm
    for k in range(6, 12):
        f.on_trade(5.0, True, t, binned=True)
        t = k * S
        f.tick(k, t)
    assert f.proxy_z(t) > 0 and f.proxy_z_at_tick > 0
    for k in range(12, 30):
        f.on_trade(5.0, False, t, binned=True)
        t = k * S
        f.tick(k, t)
    assert f.proxy_z(t) < 0


def test_trade_flow_imbalance_windows_bin_trades_by_their_own_second() -> None:
    f = flow(trade_flow_windows_seconds=(2, 4))
    # second 0: buy 3; second 1: sell 1; second 2: nothing; second 3: buy 1 (arrives early)
    f.on_trade(3.0, True, 200_000_000, binned=True)
    f.on_trade(1.0, False, S + 1, binned=True)
    f.on_trade(1.0, True, 3 * S + 5, binned=True)  # ahead of the stat clock
    f.tick(1, S)
    assert math.isnan(f.tfi(0))  # the 2-s window is not full yet
    f.tick(2, 2 * S)
    assert f.tfi(0) == pytest.approx((3 - 1) / 4)
    f.tick(3, 3 * S)
    assert f.tfi(0) == -1.0  # seconds 1 and 2: one sell
    f.tick(4, 4 * S)
    assert f.tfi(0) == 1.0  # seconds 2 and 3: the early buy landed in its own second
    assert f.tfi(1) == pytest.approx((3 - 1 + 1) / 5)
    f.reset_windows()
    assert math.isnan(f.tfi(0)) and math.isnan(f.ofi_sum(0))


def test_ofi_windows_and_z() -> None:
    f = flow(ofi_windows_seconds=(1, 3), flow_warmup_seconds=3)
    values = [2.0, -1.0, 4.0, 0.5, 1.0]
    for k, v in enumerate(values, start=1):
        f.ofi_acc += v
        f.tick(k, k * S)
    assert f.ofi_sum(0) == 1.0
    assert f.ofi_sum(1) == pytest.approx(5.5)
    assert f.ofi_acc == 0.0
    assert f.ofi_z(1) > 0
    f.reset_windows()
    assert math.isnan(f.ofi_z(1))


def test_trades_unbinned_while_the_book_is_invalid_still_move_the_proxy() -> None:
    f = flow()
    f.on_trade(1.0, True, S, binned=False)
    f.tick(2, 2 * S)
    assert f.buy.sums == [0.0, 0.0]
    assert f.decayed(2 * S)[0] > 0
