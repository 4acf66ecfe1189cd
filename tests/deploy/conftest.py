"""Session fixtures of the Docker tests: one engine, one mmradar image, one set of stand-ins.

Built on first use only, so the tests without a daemon (test_configs.py, ...) never start one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .dockerenv import (
    Built,
    DockerEngine,
    StackImages,
    build_mmradar_image,
    docker_engine,
    stack_images,
)


@pytest.fixture(scope="session")
def engine() -> Iterator[DockerEngine]:
    with docker_engine() as running:
        yield running


@pytest.fixture(scope="session")
def built(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_mmradar_image(engine, tmp_path_factory.mktemp("docker"))


@pytest.fixture(scope="session")
def prom_images(built: Built) -> StackImages:
    return stack_images(built.engine, built.base_image)
