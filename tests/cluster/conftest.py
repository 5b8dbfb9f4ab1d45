"""Fixtures for the Redis Cluster tests: private clusters of redis-server processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.redis_cluster import RedisCluster

pytestmark = [pytest.mark.redis]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "redis_cluster: needs a local Redis Cluster (redis-server processes)"
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """3 masters, no replicas; shared by a module's tests (each uses its own key prefix)."""
    started = RedisCluster(workdir=tmp_path_factory.mktemp("cluster")).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def durable_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """3 masters + 3 replicas, AOF with appendfsync always; a test may kill nodes."""
    started = RedisCluster(
        workdir=tmp_path / "cluster", replicas_per_master=1, durable=True
    ).start()
    try:
        yield started
    finally:
        started.stop()
