"""Fixtures for the Redis-specific tests: a private redis-server and stores opened on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from scenarist.storage.redis.store import RedisStore
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.redis

OpenStore = Callable[..., Awaitable[RedisStore]]


@pytest.fixture
async def open_store(redis_server: RedisServer) -> AsyncIterator[OpenStore]:
    """Open RedisStores on the test's server with any options; all closed afterwards."""
    opened: list[RedisStore] = []

    async def factory(**options: Any) -> RedisStore:
        store = await RedisStore.open(redis_server.url, **options)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def rstore(open_store: OpenStore) -> RedisStore:
    return await open_store()
