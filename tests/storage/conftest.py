"""The store conformance suite runs every test once per backend.

`redis-cluster` runs it against a real 3-master Redis Cluster (started once per session,
a fresh key prefix per test): a script that touched two slots would fail with CROSSSLOT.
Select or skip it with `-m redis_cluster` / `-m "not redis_cluster"`.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from scenarist.storage.base import Store
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

BACKENDS = [
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=[pytest.mark.redis, pytest.mark.redis_cluster]),
]
_test_numbers = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "redis_cluster: needs a local Redis Cluster (redis-server processes)"
    )


@pytest.fixture(scope="session")
def conformance_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    cluster = RedisCluster(workdir=tmp_path_factory.mktemp("conformance-cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Store
    if request.param == "sqlite":
        from scenarist.storage.sqlite.store import SqliteStore

        opened = await SqliteStore.open(tmp_path / "scenarist.db")
        try:
            yield opened
        finally:
            await opened.close()
        return
    from scenarist.storage.redis.store import RedisStore

    if request.param == "redis-cluster":
        cluster: RedisCluster = request.getfixturevalue("conformance_cluster")
        # A prefix of its own per test: earlier tests' keys cannot leak in.
        prefix = f"conformance{next(_test_numbers)}"
        opened = await RedisStore.open(cluster.url, key_prefix=prefix)
        try:
            yield opened
        finally:
            await opened.close()
            cluster.flush()
        return
    server = RedisServer(workdir=tmp_path / "redis").start()
    try:
        opened = await RedisStore.open(server.url)
        try:
            yield opened
        finally:
            await opened.close()
    finally:
        server.stop()
