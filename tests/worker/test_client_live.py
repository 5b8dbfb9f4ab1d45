"""The blocking client speaks the worker protocol with a real server."""

from __future__ import annotations

import pytest

from scenarist.worker import CompletionItem, LeaseLostError, ScenaristClient
from tests.worker.server import LiveServer


def test_lease_heartbeat_batch_complete_and_stale_tokens(live_server: LiveServer) -> None:
    with ScenaristClient(live_server.url) as client:
        scenario_id = client.submit("Jobs", {"n": 3})["scenario_id"]
        leased = client.lease("test-service", max_tasks=3, lease_seconds=30, worker_id="w1")
        assert sorted(t.name for t in leased) == ["job_1", "job_2", "job_3"]
        first, second, third = sorted(leased, key=lambda t: t.name)
        assert first.scenario_id == scenario_id
        assert first.payload == {"label": "job", "index": 1}
        assert first.attempt == 1

        expiry = client.heartbeat(first.id, first.lease_token, lease_seconds=60)
        assert expiry is not None
        assert first.lease_expires_at is not None
        assert expiry > first.lease_expires_at

        outcomes = client.complete_many(
            [
                CompletionItem(first.id, first.lease_token, "out/1", {"n": 1}),
                CompletionItem(second.id, "not-the-token", "out/2"),
            ]
        )
        assert [o["ok"] for o in outcomes] == [True, False]

        client.fail(third.id, third.lease_token, "disk full", retryable=False)
        with pytest.raises(LeaseLostError):
            client.complete(third.id, third.lease_token, "out/3")
        with pytest.raises(LeaseLostError):
            client.heartbeat(third.id, "not-the-token")

        client.complete(second.id, second.lease_token, "out/2")
        assert client.get_scenario(scenario_id)["status"] == "failed"
        final_events = list(client.events(scenario_id))
        assert final_events[-1].event == "end"
        assert final_events[-1].data["status"] == "failed"


def test_a_big_scenario_reads_without_tasks_and_pages_them(live_server: LiveServer) -> None:
    with ScenaristClient(live_server.url) as client:
        scenario_id = client.submit("Jobs", {"n": 7})["scenario_id"]
        bare = client.get_scenario(scenario_id, with_tasks=False)
        assert bare["tasks"] is None
        assert bare["progress"]["total"] == 7
        full = [t["name"] for t in client.get_scenario(scenario_id)["tasks"]]
        assert [t["name"] for t in client.scenario_tasks(scenario_id, page_size=3)] == full
        grouped = client.scenario_tasks(scenario_id, group="job", page_size=2)
        assert [t["name"] for t in grouped] == [f"job_{i}" for i in range(1, 8)]
