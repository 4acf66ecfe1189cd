"""The built wheel: one top-level package ``mmradar``, nothing test-only, each capture once.

The wheel is built the way ``pip install .`` builds it (setuptools through pip, pure-Python mode so
the test does not spend a minute in mypyc; the compiled build packages the same files plus the
extension modules), from a copy of exactly what the Docker build context holds. It is then
installed with ``--no-deps`` into an empty directory and imported from there, in a fresh
interpreter whose working directory is not the checkout, so nothing of the source tree leaks in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[2]
#: What the wheel is built from: the files the Docker build context also holds.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "service")
#: The fake venues that only the tests use (tests/fakes/); the demo's Binance venue is packaged.
TEST_ONLY_VENUES = ("coinbase", "kraken", "okx", "bybit")
CAPTURES = (
    "hftbacktest_binance_spot_btcusdt_20240808.gz",
    "hftbacktest_binance_usdm_btcusdt_20240808.gz",
)


def _ignore(_: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith((".so", ".egg-info"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the wheel, a directory the wheel was installed into with ``--no-deps``)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=_ignore)
        else:
            shutil.copy2(path, src / name)
    env = {**os.environ, "MMRADAR_PURE_PYTHON": "1", "PIP_NO_INPUT": "1"}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    dist = root / "dist"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
        check=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    (wheel,) = dist.glob("mmradar-*.whl")
    site = root / "site"
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)],
        check=True,
        env=env,
        cwd=root,
        timeout=120,
    )
    yield wheel, site


def _names(wheel: Path) -> list[PurePosixPath]:
    with zipfile.ZipFile(wheel) as zf:
        return [PurePosixPath(n) for n in zf.namelist()]


def test_the_one_top_level_package_is_mmradar(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    tops = {p.parts[0] for p in _names(wheel)}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert tops - dist_info == {"mmradar"}, tops
    assert len(dist_info) == 1
    with zipfile.ZipFile(wheel) as zf:
        (info,) = dist_info
        top_level = [n for n in zf.namelist() if n.startswith(info) and "LICENSE" in n]
        entry_points = zf.read(f"{info}/entry_points.txt").decode()
    assert top_level, "the MIT licence text travels in the wheel"
    assert "mmradar = mmradar.cli:main" in entry_points


def test_nothing_test_only_in_the_wheel(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    names = {str(p) for p in _names(wheel)}
    for venue in TEST_ONLY_VENUES:
        assert f"mmradar/embedded/{venue}.py" not in names
        assert not any(f"/{venue}" in n and "embedded" in n for n in names), venue
    assert not any(n.startswith(("tests/", "fakes/")) or "/fakes/" in n for n in names)
    # What `mmradar demo` and `mmradar score` need is packaged.
    for needed in (
        "mmradar/embedded/binance.py",
        "mmradar/embedded/capture.py",
        "mmradar/embedded/loopback.py",
        "mmradar/sim/market.py",
        "mmradar/score/command.py",
        "mmradar/defaults/default.toml",
        "mmradar/py.typed",
        "mmradar/data/README.md",
    ):
        assert needed in names, needed


def test_each_capture_is_packaged_once_and_not_kept_in_tests(built: tuple[Path, Path]) -> None:
    wheel, _ = built
    names = _names(wheel)
    for capture in CAPTURES:
        hits = [p for p in names if p.name == capture]
        assert [str(p) for p in hits] == [f"mmradar/data/{capture}"]
        # One copy in the repository as well: the tests read the packaged one.
        copies = [p for d in ("service", "tests", "benchmarks") for p in (REPO / d).rglob(capture)]
        assert copies == [REPO / "service" / "mmradar" / "data" / capture], copies


def test_installed_wheel_imports_as_mmradar_and_not_as_service(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    _, site = built
    code = (
        "import importlib.util, sys, mmradar, mmradar.cli, mmradar.embedded\n"
        "from mmradar.embedded.capture import capture_path\n"
        f"assert mmradar.__file__.startswith({str(site)!r}), mmradar.__file__\n"
        "assert importlib.util.find_spec('service') is None, 'a top-level service package'\n"
        "assert capture_path('spot').is_file()\n"
        "print(mmradar.__version__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,  # not the checkout: its service/ folder must not be what is imported
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    from importlib.metadata import version

    assert out.stdout.strip() == version("mmradar")
    cli = subprocess.run(
        [sys.executable, "-m", "mmradar", "--version"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == f"mmradar {version('mmradar')}"
