"""A worker's round (complete_then_lease) costs one round trip on a single node."""

from __future__ import annotations

from typing import Any

import pytest

from scenarist.core.model import Completion
from scenarist.storage.base import CompletionItem
from scenarist.storage.redis.store import RedisStore
from tests.storage.plans import T0, diamond, lease_named, submit
from tests.storage.redis.conftest import OpenStore

pytestmark = pytest.mark.redis


def count_pipelines(rstore: RedisStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every pipeline the store's client opens from now on appends to the returned list."""
    opened: list[int] = []
    pipeline = rstore.client.pipeline

    def counting(*args: Any, **kwargs: Any) -> Any:
        opened.append(1)
        return pipeline(*args, **kwargs)

    monkeypatch.setattr(rstore.client, "pipeline", counting)
    return opened


async def test_completions_and_lease_share_one_pipeline(
    rstore: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario, _ = await submit(rstore, diamond())
    a = await lease_named(rstore, scenario.id, "a", now=T0 + 1)
    opened = count_pipelines(rstore, monkeypatch)
    [outcome], leased = await rstore.complete_then_lease(
        [CompletionItem(a.id, a.lease_token, "r:a")],
        ["svc"],
        max_tasks=10,
        lease_seconds=None,
        worker_id=None,
        now=T0 + 2,
        nonce="n",
    )
    assert len(opened) == 1
    assert isinstance(outcome, Completion)
    assert sorted(t.id for t in leased) == sorted(outcome.released)


async def test_several_shards_lease_after_every_shard_completed(
    open_store: OpenStore,
) -> None:
    rstore = await open_store(shard_count=4)
    scenarios = [(await submit(rstore, diamond()))[0] for _ in range(8)]
    assert len({rstore.key_space.shard_of(s.id) for s in scenarios}) > 1
    roots = [await lease_named(rstore, s.id, "a", now=T0 + 1) for s in scenarios]
    outcomes, leased = await rstore.complete_then_lease(
        [CompletionItem(a.id, a.lease_token, "r:a") for a in roots],
        ["svc"],
        max_tasks=100,
        lease_seconds=None,
        worker_id=None,
        now=T0 + 2,
        nonce="n",
    )
    released = [r for o in outcomes if isinstance(o, Completion) for r in o.released]
    assert len(released) == 16
    assert sorted(t.id for t in leased) == sorted(released)
