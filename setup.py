"""Build script: compiles the hot-path modules with mypyc (part of mypy) when possible.

The compiled modules are the same typed Python source, turned into C extensions; they run the
per-frame path about 1.6x faster (``make bench``). Compilation is optional: without a C
compiler, or with ``MMRADAR_PURE_PYTHON=1``, the package installs as plain Python and behaves
identically, only slower.
"""

import os

from setuptools import setup

# The per-frame path: parser → synchroniser → book → signals. Everything else stays Python.
COMPILED = [
    "service/mmradar/book/l2book.py",
    "service/mmradar/book/sync.py",
    "service/mmradar/pipeline.py",
    "service/mmradar/histograms.py",
    "service/mmradar/venues/binance.py",
    "service/mmradar/signals/alerts.py",
    "service/mmradar/signals/baselines.py",
    "service/mmradar/signals/detectors.py",
    "service/mmradar/signals/engine.py",
    "service/mmradar/signals/flow.py",
    "service/mmradar/signals/market.py",
    "service/mmradar/signals/reading.py",
    "service/mmradar/signals/removal.py",
    "service/mmradar/signals/sequential.py",
]


def _extensions() -> list:
    if os.environ.get("MMRADAR_PURE_PYTHON") == "1":
        return []
    try:
        from mypyc.build import mypycify

        extensions = mypycify(COMPILED, opt_level="3", separate=True)
    except BaseException as exc:  # noqa: BLE001 - mypyc exits on errors; stay pure Python then
        print(f"mmradar: not compiling the hot path ({exc!r}); installing pure Python")
        return []
    for ext in extensions:
        ext.optional = True  # a failed compile falls back to the pure-Python module
    return extensions


setup(ext_modules=_extensions())
