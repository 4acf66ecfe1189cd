"""Suite-wide guard: never test a stale compiled module.

The hot-path modules are compiled with mypyc when the package is installed (``setup.py``); a
compiled module shadows its ``.py`` source. If a source changed after the last build, the
tests would silently exercise the old code, so the session stops and says how to rebuild.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    stale = []
    for so in (ROOT / "service").rglob("*.so"):
        if so.stem.split(".")[0].endswith("__mypyc"):
            continue
        source = so.with_name(so.name.split(".")[0] + ".py")
        if source.exists() and source.stat().st_mtime > so.stat().st_mtime:
            stale.append(str(source.relative_to(ROOT)))
    if stale:
        pytest.exit(
            "compiled modules are older than their source: "
            + ", ".join(sorted(stale))
            + " — rebuild with `make venv` (or MMRADAR_PURE_PYTHON=1 `make clean venv`)",
            returncode=2,
        )
