"""mmradar: live order-book signals of market-maker inventory stress."""

from importlib.metadata import PackageNotFoundError, version

try:  # the version is declared once, in pyproject.toml
    __version__ = version("mmradar")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
