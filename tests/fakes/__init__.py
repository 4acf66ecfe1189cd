"""Fake venues for the tests: Coinbase, Kraken, OKX and Bybit, each speaking its exact protocol
on 127.0.0.1.

The embedded Binance venue that `mmradar demo` uses lives in the package (`mmradar.embedded`); these
four are test-only and are not installed.
"""
