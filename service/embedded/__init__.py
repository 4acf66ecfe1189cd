"""An embedded Binance venue on loopback, replaying a real capture (see :mod:`.binance`)."""
