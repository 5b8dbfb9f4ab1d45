"""Redis Cluster mode of the Redis store: the URL, the cluster client, the pub/sub
connection and replicated writes (WAIT).

URL: `redis+cluster://host:port[,host:port...][?shard_count=16&wait_replicas=1
&wait_timeout_ms=1000]` (`rediss+cluster://` for TLS; `user:password@` as usual). The
listed nodes are only the first contacts; the client learns the topology from them and
follows it (MOVED, failover).

What makes the scripts cluster-safe is the key layout (keys.py): every key a script
touches carries its shard's hash tag, so each script runs on the one node that owns that
slot. Wake-ups use plain PUBLISH from the scripts: a cluster broadcasts it to every node,
so one subscription on any node hears every shard, and no channel needs a slot (sharded
SPUBLISH would need per-shard channels and one subscription per master).

Redis replication is asynchronous: a master can acknowledge a script and die before its
replica has it. With `wait_replicas=N` each state-changing script is followed by
`WAIT N timeout` on the same connection, and the call only succeeds once N replicas hold
the change; otherwise it fails with StoreUnavailableError (the change may or may not
survive: the caller retries, and every script tolerates a repeat).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qsl, unquote

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, PipelineCommand
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scenarist.core.errors import ParamError, StoreUnavailableError
from scenarist.storage.redis.keys import KeySpace
from scenarist.storage.redis.notifier import Notifier
from scenarist.storage.redis.pool import GatedCluster, PoolLimits
from scenarist.storage.redis.scripts import Scripts

CLUSTER_SCHEMES = frozenset({"redis+cluster", "rediss+cluster"})
DEFAULT_CLUSTER_SHARDS = 16
DEFAULT_WAIT_TIMEOUT_MS = 1000
READ_ONLY_OPERATIONS = frozenset({"stats", "heads"})
_QUERY_OPTIONS = ("shard_count", "wait_replicas", "wait_timeout_ms")
# MovedError is an AskError.
_TOPOLOGY_ERRORS = (
    AskError,
    ClusterDownError,
    TryAgainError,
    ReadOnlyError,
    RedisConnectionError,
    RedisTimeoutError,
)


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """What a `redis+cluster://` URL says."""

    nodes: tuple[tuple[str, int], ...]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    shard_count: int | None = None
    wait_replicas: int = 0
    wait_timeout_ms: int = DEFAULT_WAIT_TIMEOUT_MS


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterTarget:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in CLUSTER_SCHEMES:
        raise ParamError(f"not a cluster store URL: {url!r}", field="store")
    location, _, query = rest.partition("?")
    credentials, _, hosts = location.rpartition("@")
    username, _, password = credentials.partition(":")
    options = _query_options(url, query)
    return ClusterTarget(
        nodes=tuple(_host_port(url, item) for item in hosts.rstrip("/").split(",")),
        tls=scheme.lower() == "rediss+cluster",
        username=unquote(username) or None,
        password=unquote(password) or None,
        shard_count=options.get("shard_count"),
        wait_replicas=options.get("wait_replicas", 0),
        wait_timeout_ms=options.get("wait_timeout_ms", DEFAULT_WAIT_TIMEOUT_MS),
    )


def _host_port(url: str, item: str) -> tuple[str, int]:
    host, sep, port = item.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ParamError(
            f"bad node {item!r} in store URL {url!r}: expected host:port[,host:port...]",
            field="store",
        )
    return host.strip("[]"), int(port)


def _query_options(url: str, query: str) -> dict[str, int]:
    options: dict[str, int] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in _QUERY_OPTIONS:
            raise ParamError(
                f"unknown option {name!r} in store URL {url!r}; known: {', '.join(_QUERY_OPTIONS)}",
                field="store",
            )
        if not value.isdigit():
            raise ParamError(f"{name} must be a non-negative integer, got {value!r}", field=name)
        options[name] = int(value)
    return options


def connect(target: ClusterTarget, pool: PoolLimits) -> GatedCluster:
    """A cluster client; it connects on first use, so a cluster that is down fails the
    first store call (StoreUnavailableError), not start-up. Calls beyond the pool size
    wait for a turn (pool.py)."""
    return GatedCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        limits=pool,
        username=target.username,
        password=target.password,
        ssl=target.tls,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=5.0,
        # Few, short retries: during a failover the caller gets StoreUnavailableError
        # within a second or so instead of a hang, and simply tries again.
        retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), retries=2),
    )


def as_command_client(cluster: GatedCluster) -> Redis:
    """The store's modules are typed against `Redis`; they use only commands and
    non-transactional pipelines, which `GatedCluster` offers with the same signatures
    (the conformance suite runs against a real cluster to keep this true)."""
    return cast(Redis, cluster)


class NodePubSub:
    """Opens the notifier's pub/sub connection on one cluster node, and on the next node
    after each failure, so a dead node costs one reconnect. Any node will do: PUBLISH
    is broadcast to the whole cluster."""

    def __init__(self, cluster: GatedCluster, target: ClusterTarget) -> None:
        self._cluster = cluster
        self._target = target
        self._turn = itertools.count()
        self._client: Redis | None = None

    async def open(self) -> PubSub:
        await self.close()
        await self._cluster.initialize()
        nodes = self._cluster.get_nodes()
        node = nodes[next(self._turn) % len(nodes)]
        self._client = Redis(
            host=node.host,
            port=int(node.port),
            username=self._target.username,
            password=self._target.password,
            ssl=self._target.tls,
            decode_responses=True,
            socket_connect_timeout=1.0,
        )
        return self._client.pubsub()

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class ClusterScripts(Scripts):
    """Scripts on a cluster: each call goes straight to its slot's master. redis-py's
    cluster pipeline refuses EVALSHA, so concurrent calls are not corked into one
    pipeline; they run side by side on the node's connection pool instead, each after
    taking a turn at the client's gate (replicated calls bypass the client's commands)."""

    def __init__(self, cluster: GatedCluster, common_args: tuple[str, ...]) -> None:
        super().__init__(as_command_client(cluster), common_args)
        self._gate = cluster.gate

    async def run(self, operation: str, keys: list[str], args: list[str | int]) -> Any:
        async with self._gate.turn():
            return await self._call(operation, keys, args)

    async def _call(self, operation: str, keys: list[str], args: list[str | int]) -> Any:
        return await self.by_name[operation](keys=keys, args=[*self.common_args, *args])


class ReplicatedScripts(ClusterScripts):
    """Scripts whose state changes are confirmed by `replicas` replicas (WAIT) before the
    call returns. EVALSHA and WAIT go out together on ONE connection to the slot's
    master, because WAIT covers the writes of its own connection only."""

    def __init__(
        self,
        cluster: GatedCluster,
        common_args: tuple[str, ...],
        *,
        replicas: int,
        timeout_ms: int,
    ) -> None:
        super().__init__(cluster, common_args)
        self._cluster = cluster
        self._replicas = replicas
        self._timeout_ms = timeout_ms
        self._topology_stale = False

    async def _call(self, operation: str, keys: list[str], args: list[str | int]) -> Any:
        if operation in READ_ONLY_OPERATIONS:
            return await super()._call(operation, keys, args)
        script = self.by_name[operation]
        node = await self._master_of(keys[0])
        evalsha = ("EVALSHA", script.sha, len(keys), *keys, *self.common_args, *args)
        outcome, acked = await self._send(node, evalsha)
        if isinstance(outcome, NoScriptError):  # a promoted replica has an empty cache
            await node.execute_command("SCRIPT", "LOAD", script.script)
            outcome, acked = await self._send(node, evalsha)
        if isinstance(outcome, Exception):
            self._check_redirect(outcome)
            raise outcome
        if isinstance(acked, Exception) or int(acked) < self._replicas:
            raise StoreUnavailableError(
                f"redis {operation} was not confirmed by {self._replicas} replica(s) within "
                f"{self._timeout_ms} ms (got {acked!r}); it may or may not persist, retry"
            )
        return outcome

    async def _master_of(self, key: str) -> ClusterNode:
        await self._cluster.initialize()
        if self._topology_stale:
            await self._cluster.nodes_manager.initialize()
            self._topology_stale = False
        node = self._cluster.get_node_from_key(key)
        if node is None:
            raise StoreUnavailableError(f"no redis node serves the slot of {key!r}")
        return node

    async def _send(self, node: ClusterNode, evalsha: Sequence[Any]) -> tuple[Any, Any]:
        commands = [
            PipelineCommand(0, *evalsha),
            PipelineCommand(1, "WAIT", self._replicas, self._timeout_ms),
        ]
        try:
            await node.execute_pipeline(commands)
        except (RedisError, OSError):
            self._topology_stale = True  # the node may be gone: re-read the slots next time
            raise
        return commands[0].result, commands[1].result

    def _check_redirect(self, error: Exception) -> None:
        """MOVED, CLUSTERDOWN, a demoted master...: the cached slot map is out of date."""
        if isinstance(error, _TOPOLOGY_ERRORS):
            self._topology_stale = True


@dataclass(frozen=True, slots=True)
class StoreParts:
    """What `RedisStore` is built from (single node: connect.py; cluster: here)."""

    client: Redis
    space: KeySpace
    scripts: Scripts
    notifier: Notifier


def open_cluster(
    url: str,
    *,
    common_args: tuple[str, str, str],
    key_prefix: str,
    shard_count: int | None,
    wait_replicas: int | None,
    pool: PoolLimits,
) -> StoreParts:
    """Connect to the cluster `url` names. Explicit arguments win over URL options;
    `common_args` are the scripts' ARGV[1..3] (the channel prefix is added here)."""
    target = parse_cluster_url(url)
    shards = shard_count or target.shard_count or DEFAULT_CLUSTER_SHARDS
    replicas = target.wait_replicas if wait_replicas is None else wait_replicas
    if shards < 1 or replicas < 0:
        raise ParamError(
            f"shard_count must be >= 1 and wait_replicas >= 0, got {shards} and {replicas}",
            field="shard_count" if shards < 1 else "wait_replicas",
        )
    cluster = connect(target, pool)
    space = KeySpace(key_prefix=key_prefix, shard_count=shards)
    common = (*common_args, space.channel_prefix)
    scripts = (
        ReplicatedScripts(cluster, common, replicas=replicas, timeout_ms=target.wait_timeout_ms)
        if replicas
        else ClusterScripts(cluster, common)
    )
    client = as_command_client(cluster)
    notifier = Notifier(NodePubSub(cluster, target))
    return StoreParts(client, space, scripts, notifier)
