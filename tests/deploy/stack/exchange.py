"""The exchange of the two-shard compose test: a fake Coinbase on 127.0.0.1 (test-only).

Run inside a container of the mmradar image that shares the stack's loopback
(tests/deploy/compose.test-shards.yml), with ``tests/`` mounted and on ``PYTHONPATH``::

    python /mmradar-tests/deploy/stack/exchange.py 127.0.0.1:18400

It serves the products of ``shards.toml`` (Coinbase Advanced Trade's exact protocol,
tests/fakes/coinbase.py) until SIGTERM or SIGINT, then exits 0. Three products are three
instruments, so the two shards split them (mmradar.shard): no instrument of the Binance demo
could, because the embedded Binance venue serves one symbol.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from fakes.coinbase import EmbeddedCoinbase

PRODUCTS = ("BTC-USD", "ETH-USD", "SOL-USD")
#: Generator steps per second: enough to keep the books moving, light on a 2-core runner.
RATE_HZ = 50.0


async def serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with EmbeddedCoinbase(PRODUCTS, rate_hz=RATE_HZ, host=host, port=port):
        await stop.wait()


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    host, _, port = argv[0].rpartition(":")
    asyncio.run(serve(host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
