"""submit_many in both clients: one POST /generate/batch, one outcome per item, typed
items and raw request bodies alike; a malformed batch is an ApiError."""

from __future__ import annotations

from typing import Any

import pytest

from scenarist.worker import ApiError, AsyncScenaristClient, ScenaristClient, SubmitItem
from tests.worker.server import LiveServer

ITEMS: list[Any] = [
    SubmitItem("Jobs", {"n": 2}, idempotency_key="one"),
    {"scenario": "Jobs", "n": 1, "idempotency_key": "one"},
    SubmitItem("Missing", {}),
    {"scenario": "Jobs", "label": "raw body"},
]


def check(outcomes: list[Any]) -> None:
    assert [o["status"] for o in outcomes] == [201, 422, 404, 201]
    assert outcomes[0]["task_count"] == 2
    assert outcomes[1]["problem"]["type"].endswith("/idempotency-key-reused")
    assert outcomes[2]["problem"]["type"].endswith("/unknown-scenario")


def test_the_blocking_client(live_server: LiveServer) -> None:
    with ScenaristClient(live_server.url) as client:
        check(client.submit_many(ITEMS))
        again = client.submit_many([ITEMS[0]])
        assert again[0]["status"] == 200
        with pytest.raises(ApiError) as refused:
            client.submit_many([])
        assert refused.value.status_code == 422


async def test_the_asyncio_client(live_server: LiveServer) -> None:
    async with AsyncScenaristClient(live_server.url) as client:
        check(await client.submit_many(ITEMS))
        with pytest.raises(ApiError) as refused:
            await client.submit_many([{"scenario": "Jobs"}] * 1001)
        assert refused.value.problem["field"] == "items"
