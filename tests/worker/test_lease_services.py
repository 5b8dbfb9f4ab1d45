"""`lease_services`: one worker round (complete the previous batch, lease the next) in
one request, on both client flavours, against a real server."""

from __future__ import annotations

import asyncio

from scenarist.worker import AsyncScenaristClient, CompletionItem, ScenaristClient
from tests.worker.server import LiveServer

SERVICES = ("first-service", "second-service")


def test_lease_services_completes_the_previous_batch_then_leases_across_services(
    live_server: LiveServer,
) -> None:
    async def scenario() -> None:
        async with AsyncScenaristClient(live_server.url) as client:
            scenario_id = (await client.submit("Chain", {"label": "c"}))["scenario_id"]
            tasks, outcomes = await client.lease_services(
                SERVICES, max_tasks=4, lease_seconds=30, worker_id="w1"
            )
            assert [t.name for t in tasks] == ["first"]
            assert outcomes == []
            first = tasks[0]
            done = [
                CompletionItem(first.id, first.lease_token, "out/first", {"n": 1}),
                CompletionItem(first.id, "not-the-token", None),
            ]
            tasks, outcomes = await client.lease_services(
                SERVICES, max_tasks=4, wait_seconds=2.0, complete=done
            )
            assert [o["ok"] for o in outcomes] == [True, False]
            assert [t.name for t in tasks] == ["second"]
            assert tasks[0].scenario_id == scenario_id
            assert tasks[0].inputs[0]["result_ref"] == "out/first"

    asyncio.run(scenario())


def test_sync_lease_services_reports_completions_in_order(live_server: LiveServer) -> None:
    with ScenaristClient(live_server.url) as client:
        client.submit("Jobs", {"n": 2})
        tasks, outcomes = client.lease_services(["test-service"], max_tasks=2)
        assert len(tasks) == 2
        assert outcomes == []
        done = [CompletionItem(t.id, t.lease_token, None) for t in tasks]
        tasks, outcomes = client.lease_services(["test-service"], complete=done)
        assert tasks == []
        assert [o["ok"] for o in outcomes] == [True, True]
