"""Wire a `RedisStore`'s parts (client, key space, scripts, notifier) from a URL."""

from __future__ import annotations

from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from scenarist.core.errors import ParamError
from scenarist.storage.redis.cluster import StoreParts, is_cluster_url, open_cluster
from scenarist.storage.redis.keys import KeySpace
from scenarist.storage.redis.notifier import ClientPubSub, Notifier
from scenarist.storage.redis.packing import use_hiredis_packing
from scenarist.storage.redis.pool import PoolLimits, blocking_pool
from scenarist.storage.redis.scripts import Scripts

OUTSIDE_TAG = "publish_lists pushes onto keys outside the shard hash tag and "


def connect(
    url: str,
    *,
    common_args: tuple[str, str, str],
    publish_lists: bool,
    key_prefix: str,
    shard_count: int | None,
    wait_replicas: int | None,
    pool: PoolLimits,
) -> StoreParts:
    """`redis+cluster://` URLs open Redis Cluster (cluster.py); anything else one node.
    Connecting is lazy: an unreachable server fails the first call, not this one. Every
    command, script, pipeline and the notifier's pub/sub connection share one pool per
    node, bounded by `pool` (see pool.py)."""
    if is_cluster_url(url):
        if publish_lists:
            raise ParamError(
                OUTSIDE_TAG + "cannot work on Redis Cluster; use the HTTP lease API instead",
                field="publish_lists",
            )
        return open_cluster(
            url,
            common_args=common_args,
            key_prefix=key_prefix,
            shard_count=shard_count,
            wait_replicas=wait_replicas,
            pool=pool,
        )
    if wait_replicas:
        raise ParamError("wait_replicas needs a redis+cluster:// store", field="wait_replicas")
    shard_count = 1 if shard_count is None else shard_count
    if shard_count < 1:
        raise ParamError(f"shard_count must be >= 1, got {shard_count}", field="shard_count")
    if publish_lists and shard_count > 1:
        raise ParamError(
            OUTSIDE_TAG + "works only on single-node Redis with shard_count=1",
            field="publish_lists",
        )
    client = blocking_pool(
        url,
        pool,
        decode_responses=True,
        socket_connect_timeout=2.0,
        socket_timeout=10.0,
        # One quick retry hides a pooled connection broken by a server restart; a
        # script repeated after a lost reply is refused by its own preconditions.
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
    )
    use_hiredis_packing(client.connection_pool)
    space = KeySpace(key_prefix=key_prefix, shard_count=shard_count)
    scripts = Scripts(client, (*common_args, space.channel_prefix))
    return StoreParts(client, space, scripts, Notifier(ClientPubSub(client)))
