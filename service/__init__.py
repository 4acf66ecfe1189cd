"""mmradar: live order-book signals of market-maker inventory stress."""

__version__ = "0.1.0"
