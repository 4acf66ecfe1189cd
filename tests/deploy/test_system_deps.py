""".ci/install-system-deps, the first step of ``make test``: what it does when tools are missing.

Run with a PATH that holds only the shell basics (so every tool reads as missing) and a stand-in
``apt-get``/``sudo`` that record their calls instead of installing anything.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .dockerenv import REPO

SCRIPT = REPO / ".ci" / "install-system-deps"
TOOLS = ("prometheus", "promtool", "prometheus-alertmanager", "amtool", "dockerd", "debootstrap")
PACKAGES = ("prometheus", "prometheus-alertmanager", "docker.io", "debootstrap")


def _bin_dir(tmp_path: Path, *, sudo: str | None, apt: bool = True) -> Path:
    """A PATH directory: bash, id, dirname, env, plus stand-ins that log their arguments."""
    path = tmp_path / "bin"
    path.mkdir(mode=0o755)
    for name in ("bash", "id", "dirname", "env", "true"):
        found = shutil.which(name)
        assert found is not None, name
        (path / name).symlink_to(found)
    log = tmp_path / "calls.log"

    def stand_in(name: str, body: str) -> None:
        script = path / name
        script.write_text(f'#!{shutil.which("bash")}\necho "{name} $*" >> {log}\n{body}\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    if apt:
        stand_in("apt-get", "exit 0")
    if sudo is not None:
        stand_in("sudo", sudo)
    return path


@pytest.fixture
def tmp_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch directory the unprivileged user can use (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="mmradar-sysdeps-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _unprivileged(bin_dir: Path) -> list[str]:
    """As root, the command prefix that drops to ``nobody`` (the script must not see root)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv (util-linux) drops to an unprivileged user"
    (bin_dir / "setpriv").symlink_to(setpriv)
    return [str(bin_dir / "setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_without_root_or_sudo_it_stops_with_one_line_naming_what_is_missing(
    tmp_path: Path,
) -> None:
    bin_dir = _bin_dir(tmp_path, sudo="exit 1")  # sudo -n refuses: a password would be needed
    out = subprocess.run(
        [*_unprivileged(bin_dir), str(bin_dir / "bash"), str(SCRIPT)],
        env={"PATH": str(bin_dir), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    (line,) = lines
    for tool in TOOLS:
        assert tool in line
    assert "install them with: sudo bash .ci/install-system-deps" in line
    assert "sudo apt-get install " + " ".join(PACKAGES) in line
    calls = (tmp_path / "calls.log").read_text() if (tmp_path / "calls.log").exists() else ""
    assert "apt-get" not in calls  # nothing was attempted


def test_with_passwordless_sudo_it_installs_the_missing_packages(tmp_path: Path) -> None:
    bin_dir = _bin_dir(tmp_path, sudo='[ "$1" = -n ] && shift; exec "$@"')
    out = subprocess.run(
        [*_unprivileged(bin_dir), str(bin_dir / "bash"), str(SCRIPT)],
        env={"PATH": str(bin_dir), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls[0] == "sudo -n true"
    assert "apt-get update -qq" in calls
    install = [c for c in calls if c.startswith("apt-get install")]
    assert install == ["apt-get install -y -qq --no-install-recommends " + " ".join(PACKAGES)], (
        calls
    )
    # The stand-in apt-get installs nothing, so the script must say so and fail.
    assert out.returncode == 1
    assert "still missing after install" in out.stderr


def test_with_everything_installed_it_does_nothing(tmp_path: Path) -> None:
    bin_dir = _bin_dir(tmp_path, sudo="exit 1")
    for tool in (*TOOLS, "containerd", "runc", "docker"):
        (bin_dir / tool).symlink_to(bin_dir / "id")
    out = subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT)],
        env={"PATH": str(bin_dir), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert not (tmp_path / "calls.log").exists()
