"""Store backends, chosen by URL scheme (like saq's `Queue.from_url`).

- `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (the SQLAlchemy convention)
- `redis://host:port/db`, `rediss://...`, `unix:///path/redis.sock`
- `redis+cluster://host:port[,host:port...][?shard_count=16&wait_replicas=1]`,
  `rediss+cluster://...` (Redis Cluster; see storage/redis/cluster.py)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from scenarist.storage.base import Store

SQLITE_PREFIX = "sqlite:///"
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"})
REDIS_ONLY_OPTIONS = ("publish_lists", "list_prefix", "max_connections", "pool_timeout")


class StoreConfigError(ValueError):
    """The store URL or its options make no sense; the message says what to change."""


def sqlite_path(url: str) -> Path:
    if not url.startswith(SQLITE_PREFIX) or len(url) == len(SQLITE_PREFIX):
        raise StoreConfigError(
            f"bad SQLite store URL {url!r}: use sqlite:///relative.db or sqlite:////abs/path.db"
        )
    return Path(url[len(SQLITE_PREFIX) :])


async def open_store(url: str, **options: Any) -> Store:
    """Open the backend `url` names. `options` go to the backend's `open`; the Redis-only
    `publish_lists` / `list_prefix` are refused for SQLite, which has no lists to fill."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        if options.get("publish_lists"):
            raise StoreConfigError(
                "publish_lists (seed-style Redis list delivery) needs a redis:// store, "
                f"not {url!r}"
            )
        for name in REDIS_ONLY_OPTIONS:
            options.pop(name, None)
        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Imported here: backends import this package, so a top-level import would cycle.
        from scenarist.storage.sqlite.store import SqliteStore  # noqa: PLC0415

        sqlite_store: Store = await SqliteStore.open(path, **options)
        return sqlite_store
    if scheme in REDIS_SCHEMES:
        from scenarist.storage.redis.store import RedisStore  # noqa: PLC0415

        redis_store: Store = await RedisStore.open(url, **options)
        return redis_store
    raise StoreConfigError(
        f"unknown store URL {url!r}: expected sqlite:///path, redis://host:port/db or "
        "redis+cluster://host:port[,host:port...]"
    )
