"""The workers registry through the orchestrator: leases and heartbeats record their
worker, labels are checked, repeated sightings are throttled, staleness and forgetting
follow the clock."""

from __future__ import annotations

import pytest

from scenarist.core.errors import ParamError
from scenarist.core.workers import MAX_LABELS, MIN_POLL_SECONDS, STALE_POLLS
from scenarist.service.orchestrator import Orchestrator
from tests.service.conftest import FakeClock


async def listed(orchestrator: Orchestrator) -> dict[str, tuple[float, bool, int]]:
    views = await orchestrator.workers.list()
    return {v.record.worker_id: (v.record.last_seen, v.stale, v.record.in_flight) for v in views}


async def test_a_lease_records_its_worker_and_a_heartbeat_keeps_it_live(
    orchestrator: Orchestrator, clock: FakeClock
) -> None:
    await orchestrator.submit("Diamond", {})
    [task] = await orchestrator.lease(
        "svc", worker_id="gpu-1", labels={"gpu": "a100"}, sdk_version="9.9", wait_seconds=4.0
    )
    t0 = clock.now
    assert await listed(orchestrator) == {"gpu-1": (t0, False, 1)}
    [view] = await orchestrator.workers.list()
    assert (view.record.services, dict(view.record.labels)) == (("svc",), {"gpu": "a100"})
    assert view.record.sdk_version == "9.9"
    # The server caps the wait at 5 s; the worker polls at least MIN_POLL_SECONDS a poll.
    stale_after = STALE_POLLS * MIN_POLL_SECONDS
    clock.now = t0 + stale_after - 1
    assert task.lease_token is not None
    await orchestrator.heartbeat(task.id, task.lease_token)
    clock.now = t0 + stale_after + 1
    assert await listed(orchestrator) == {"gpu-1": (t0 + stale_after - 1, False, 1)}
    clock.now = t0 + 2 * stale_after
    assert await listed(orchestrator) == {"gpu-1": (t0 + stale_after - 1, True, 1)}
    assert await orchestrator.workers.live_per_service() == {}


async def test_an_anonymous_lease_is_not_recorded(orchestrator: Orchestrator) -> None:
    await orchestrator.lease("svc")
    assert await listed(orchestrator) == {}


async def test_a_repeated_sighting_is_written_once_a_second_and_a_change_at_once(
    orchestrator: Orchestrator, clock: FakeClock
) -> None:
    t0 = clock.now
    await orchestrator.lease("svc", worker_id="w", labels={"model": "sdxl"})
    clock.now = t0 + 0.5
    await orchestrator.lease("svc", worker_id="w", labels={"model": "sdxl"})
    assert (await listed(orchestrator))["w"][0] == t0  # throttled
    clock.now = t0 + 0.7
    await orchestrator.lease("svc", worker_id="w", labels={"model": "flux"})
    [view] = await orchestrator.workers.list()
    assert (view.record.last_seen, dict(view.record.labels)) == (t0 + 0.7, {"model": "flux"})
    clock.now = t0 + 2.0
    await orchestrator.lease("svc", worker_id="w", labels={"model": "flux"})
    assert (await listed(orchestrator))["w"][0] == t0 + 2.0
    assert await orchestrator.workers.live_per_service() == {"svc": 1}


async def test_a_worker_is_forgotten_a_day_after_its_last_call(
    orchestrator: Orchestrator, clock: FakeClock
) -> None:
    await orchestrator.lease("svc", worker_id="w")
    clock.now += orchestrator.workers.policy.forget_after_seconds + 1
    assert await listed(orchestrator) == {}


@pytest.mark.parametrize(
    ("labels", "field"),
    [
        ({f"k{i}": "v" for i in range(MAX_LABELS + 1)}, "labels"),
        ({"bad key": "v"}, "labels"),
        ({"": "v"}, "labels"),
        ({"gpu": "x" * 129}, "labels.gpu"),
    ],
)
async def test_labels_out_of_bounds_are_refused_naming_the_field(
    orchestrator: Orchestrator, labels: dict[str, str], field: str
) -> None:
    with pytest.raises(ParamError) as refused:
        await orchestrator.lease("svc", worker_id="w", labels=labels)
    assert refused.value.field == field
    assert await listed(orchestrator) == {}
