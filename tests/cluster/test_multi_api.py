"""Three API processes share one store; workers and clients hit whichever they like.

All scenarios succeed, every task is handed out once and succeeds once (one success event
in the store's event log), and an SSE stream opened on one process sees the changes that
the other processes made.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from scenarist.storage import open_store
from tests.cluster.fleet import (
    Tally,
    api_processes,
    read_sse,
    start_workers,
    submit_all,
    wait_all_final,
)
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]

SCENARIOS = 200  # Diamond: root -> left, right -> join; 4 tasks each
TASKS = ("root", "left", "right", "join")
WATCHED = 6


@pytest.fixture(params=["redis", pytest.param("redis-cluster", marks=pytest.mark.redis_cluster)])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis-cluster":
        cluster: RedisCluster = request.getfixturevalue("cluster")
        return cluster.url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


async def test_three_api_processes_share_one_store(store_url: str, tmp_path: Path) -> None:
    tally = Tally()
    with api_processes(tmp_path, store_url, 3) as servers:
        urls = [s.url for s in servers]
        async with httpx.AsyncClient(timeout=30.0) as client:
            ids = await submit_all(client, urls, "Diamond", SCENARIOS)
            # Scenario i was sent to process i % 3; its stream is read on the next one.
            watchers = [
                asyncio.create_task(read_sse(client, urls[(i + 1) % 3], sid))
                for i, sid in enumerate(ids[:WATCHED])
            ]
            stop, workers = start_workers(client, urls, per_service=3, tally=tally)
            statuses = await wait_all_final(client, urls[2], ids, timeout=90.0)
            stop.set()
            await asyncio.gather(*workers)
            streams = await asyncio.wait_for(asyncio.gather(*watchers), timeout=10.0)

    assert Counter(statuses.values()) == {"success": SCENARIOS}
    assert len(tally.leased) == len(TASKS) * SCENARIOS
    assert set(tally.leased.values()) == {1}, "a task was handed out twice"
    assert set(tally.completed.values()) == {1}
    assert tally.rejected == []
    await _assert_one_success_event_per_task(store_url, ids)
    for sid, events in zip(ids[:WATCHED], streams, strict=True):
        _assert_stream_shows_the_whole_run(sid, events)


async def _assert_one_success_event_per_task(store_url: str, ids: list[str]) -> None:
    store = await open_store(store_url)
    try:
        for sid in ids:
            events = await store.read_events(sid, after=None, limit=1000)
            successes = Counter(e.task for e in events if e.task and e.status == "success")
            assert successes == dict.fromkeys(TASKS, 1), (sid, events)
    finally:
        await store.close()


def _assert_stream_shows_the_whole_run(scenario_id: str, events: list[dict[str, Any]]) -> None:
    assert events[-1]["event"] == "end", events
    assert events[-1]["status"] == "success"
    assert events[-1]["progress"]["finished"] == events[-1]["progress"]["total"] == len(TASKS)
    seen = [(e["task"], e["status"]) for e in events if e["event"] == "status" and e["task"]]
    assert Counter(s for s in seen if s[1] == "success") == {(t, "success"): 1 for t in TASKS}
    # Order as processed: the join succeeds after both its parents.
    order = [task for task, status in seen if status == "success"]
    assert order.index("join") > max(order.index("left"), order.index("right")), scenario_id
    assert order.index("root") < min(order.index("left"), order.index("right"))
