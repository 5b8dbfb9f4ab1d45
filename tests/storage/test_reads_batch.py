"""Conformance of reads added for the API's edges: an idempotency key's request digest is
stored with its scenario and read back (also when the key finds an existing scenario),
and `get_tasks` reads a batch of tasks in one call, leaving out the ones that are absent."""

from __future__ import annotations

from scenarist.service.records import build_records, new_scenario_id, request_digest
from scenarist.storage.base import Store
from tests.storage.plans import T0, diamond, submit


async def test_the_request_digest_round_trips_with_the_key(store: Store) -> None:
    the_plan = diamond()
    scenario, _ = await submit(store, the_plan, idempotency_key="k-7", callback_url=None)
    expected = request_digest(the_plan.template, the_plan.params, None)
    assert scenario.request_digest == expected
    assert (await store.get_scenario(scenario.id)).request_digest == expected
    other, tasks = build_records(
        the_plan, scenario_id=new_scenario_id(), now=T0 + 1, idempotency_key="k-7"
    )
    existing, created = await store.create_scenario(other, tasks)
    assert not created
    assert existing.id == scenario.id
    assert existing.request_digest == expected


async def test_without_a_key_no_digest_is_kept(store: Store) -> None:
    scenario, _ = await submit(store, diamond())
    assert scenario.request_digest is None
    assert (await store.get_scenario(scenario.id)).request_digest is None


async def test_get_tasks_reads_many_tasks_at_once(store: Store) -> None:
    first, _ = await submit(store, diamond())
    second, _ = await submit(store, diamond(service="other"))
    wanted = [
        f"{second.id}:d",
        f"{first.id}:a",
        f"{first.id}:nope",
        "no-colon",
        f"{second.id}:a",
        "01UNKNOWN:a",
        f"{first.id}:a",
    ]
    found = await store.get_tasks(wanted)
    assert sorted(found) == sorted({f"{first.id}:a", f"{second.id}:a", f"{second.id}:d"})
    for task_id, task in found.items():
        assert task == await store.get_task(task_id)
    assert found[f"{second.id}:d"].service == "other"
    assert await store.get_tasks([]) == {}
