"""Connection pools that wait for a free connection instead of failing.

redis-py's default pool raises "Too many connections" as soon as every connection is
busy, so a burst of requests (each read takes a connection for its round trip) turned
into 503s, and the notifier's pub/sub connection and the background loops failed with
them. Every client of a store therefore shares one bounded pool per Redis node, and a
call that finds it full waits its turn for up to `pool_timeout` seconds (then
StoreUnavailableError, a 503 with Retry-After, as when Redis is down).

Single node: redis-py's `BlockingConnectionPool` does exactly that. Cluster: the async
cluster client has no blocking mode (a full node pool raises MaxConnectionsError), so
`GatedCluster` lets at most `max_connections` calls in at once. One call holds at most
one connection per node (a pipeline splits by node, a multi-node command fans out to
distinct nodes), so no node pool can run out; calls made inside a call (a script's
EVALSHA inside the script runner, a pipeline's redirected retries) pass the gate they
already hold instead of waiting on themselves.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_POOL_TIMEOUT_SECONDS = 5.0

_inside_gate: contextvars.ContextVar[bool] = contextvars.ContextVar("inside_gate", default=False)


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """Connections per Redis node, and how long a call waits for a free one."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    pool_timeout: float = DEFAULT_POOL_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {self.max_connections}")
        if self.pool_timeout <= 0:
            raise ValueError(f"pool_timeout must be > 0, got {self.pool_timeout}")


def blocking_pool(url: str, limits: PoolLimits, **connection_kwargs: Any) -> Redis:
    """A single-node client over a pool that waits up to `pool_timeout` for a connection."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=limits.max_connections,
        timeout=limits.pool_timeout,
        **connection_kwargs,
    )
    return Redis.from_pool(pool)


class ConnectionGate:
    """At most `max_connections` calls at once; the next waits up to `pool_timeout` seconds
    for a turn (the wait costs a timeout only when the gate is full)."""

    def __init__(self, limits: PoolLimits) -> None:
        self._turns = asyncio.Semaphore(limits.max_connections)
        self._timeout = limits.pool_timeout

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if _inside_gate.get():
            yield
            return
        if self._turns.locked():
            await self._wait_for_a_turn()
        else:
            await self._turns.acquire()  # free: returns without suspending
        entered = _inside_gate.set(True)
        try:
            yield
        finally:
            _inside_gate.reset(entered)
            self._turns.release()

    async def _wait_for_a_turn(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._turns.acquire()
        except TimeoutError:
            raise RedisConnectionError(
                f"no redis connection free within {self._timeout:g} s"
            ) from None


class GatedCluster(RedisCluster):
    """A cluster client whose commands and pipelines wait at the gate for a turn."""

    def __init__(self, *, limits: PoolLimits, **kwargs: Any) -> None:
        super().__init__(max_connections=limits.max_connections, **kwargs)
        self.gate = ConnectionGate(limits)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.gate.turn():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused by redis-py
        # redis-py builds its own ClusterPipeline the same way; its stubs call the class
        # abstract for an attribute every instance sets.
        return GatedClusterPipeline(self, transaction)  # type: ignore[abstract]


class GatedClusterPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> Any:
        client = self.cluster_client
        assert isinstance(client, GatedCluster)
        async with client.gate.turn():
            return await super().execute(raise_on_error, allow_redirections)
