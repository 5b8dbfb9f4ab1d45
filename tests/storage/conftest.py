"""The store conformance suite runs every test once per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scenarist.storage.base import Store
from tests.support.redis_server import RedisServer

BACKENDS = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]


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

    server = RedisServer(workdir=tmp_path / "redis").start()
    try:
        opened = await RedisStore.open(server.url)
        try:
            yield opened
        finally:
            await opened.close()
    finally:
        server.stop()
