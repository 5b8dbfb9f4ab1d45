"""The function library: loaded on demand, reloaded after FUNCTION FLUSH, even mid-pipeline."""

from __future__ import annotations

import asyncio
import time

import pytest

from scenarist.storage.redis.scripts import LIBRARY_REGISTRY, library_version
from scenarist.storage.redis.store import RedisStore
from tests.storage.plans import T0, diamond, lease, submit

pytestmark = pytest.mark.redis


async def _library_names(rstore: RedisStore) -> list[str]:
    names = []
    for entry in await rstore.client.function_list():
        fields = (
            entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=True))
        )
        names.append(fields["library_name"])
    return names


async def test_library_is_loaded_once_under_its_version(rstore: RedisStore) -> None:
    await submit(rstore, diamond())
    await submit(rstore, diamond())
    assert await _library_names(rstore) == [f"scenarist_{library_version()}"]


async def test_calls_reload_the_library_after_function_flush(rstore: RedisStore) -> None:
    scenario, _ = await submit(rstore, diamond())
    await rstore.client.function_flush()
    (task,) = await lease(rstore, now=T0 + 1, max_tasks=1)
    await rstore.client.function_flush()
    done = await rstore.complete(task.id, task.lease_token, result_ref="r", result=None, now=T0 + 2)
    assert sorted(done.released) == [f"{scenario.id}:b", f"{scenario.id}:c"]


async def test_corked_pipeline_repeats_each_call_once_after_function_flush(
    rstore: RedisStore,
) -> None:
    scenario, _ = await submit(rstore, diamond())
    (a,) = await lease(rstore, now=T0 + 1, max_tasks=1)
    await rstore.complete(a.id, a.lease_token, result_ref="r", result=None, now=T0 + 2)
    leased = await rstore.lease(
        "svc", max_tasks=2, lease_seconds=None, worker_id=None, now=T0 + 3, nonce="n"
    )
    await rstore.client.function_flush()
    outcomes = await asyncio.gather(
        *(rstore.complete(t.id, t.lease_token, result_ref="r", result=None, now=T0 + 4)
          for t in leased)
    )  # fmt: skip
    assert [o.duplicate for o in outcomes] == [False, False]
    released = [r for o in outcomes for r in o.released]
    assert released == [f"{scenario.id}:d"], "the fan-in is released exactly once"


def _other_library(version: str) -> str:
    return (
        f"#!lua name=scenarist_{version}\n"
        f"redis.register_function('scenarist_{version}_noop', function() return 1 end)"
    )


async def test_loading_deletes_libraries_of_versions_nobody_loaded_for_an_hour(
    rstore: RedisStore,
) -> None:
    """Every change of the Lua source loads a new library; old ones must not pile up, but a
    version loaded recently (another process mid-upgrade) keeps its library."""
    now = time.time()
    await rstore.client.function_load(_other_library("0000000stale"))  # before the registry
    await rstore.client.function_load(_other_library("0000000older"))
    await rstore.client.function_load(_other_library("0000000fresh"))
    await rstore.client.hset(LIBRARY_REGISTRY, "0000000older", repr(now - 2 * 3600))
    await rstore.client.hset(LIBRARY_REGISTRY, "0000000fresh", repr(now - 60))
    await submit(rstore, diamond())  # the first call loads this version's library
    assert sorted(await _library_names(rstore)) == [
        "scenarist_0000000fresh",
        f"scenarist_{library_version()}",
    ]
    registry = await rstore.client.hgetall(LIBRARY_REGISTRY)
    assert set(registry) == {"0000000fresh", library_version()}
