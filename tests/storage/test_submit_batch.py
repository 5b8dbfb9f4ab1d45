"""Conformance: create_scenarios, a batch of scenarios in one store call."""

from __future__ import annotations

from scenarist.core.model import Scenario, ScenarioPlan, ScenarioStatus, Task, TaskStatus
from scenarist.service.records import build_records, new_scenario_id
from scenarist.storage.base import Store
from tests.storage.plans import T0, diamond, lease, plan, submit


def records(
    key: str | None = None, the_plan: ScenarioPlan | None = None
) -> tuple[Scenario, list[Task]]:
    return build_records(
        the_plan or diamond(), scenario_id=new_scenario_id(), now=T0, idempotency_key=key
    )


async def test_a_batch_creates_every_scenario_in_order(store: Store) -> None:
    batch = [records(), records(the_plan=plan()), records()]
    outcomes = await store.create_scenarios(batch)
    assert [(s.id, created) for s, created in outcomes] == [(s.id, True) for s, _ in batch]
    for (scenario, tasks), (stored, _) in zip(batch, outcomes, strict=True):
        assert await store.list_tasks(scenario.id) == tasks
        assert (await store.get_scenario(scenario.id)).status == stored.status
    assert (await store.get_scenario(batch[1][0].id)).status is ScenarioStatus.SUCCESS
    assert outcomes[0][0].progress.by_status[TaskStatus.QUEUED] == 1
    page, _ = await store.list_scenarios(status=None, template=None, cursor=None, limit=10)
    assert {s.id for s in page} == {s.id for s, _ in batch}
    # Every root of the batch is leasable at once.
    leased = await lease(store, now=T0 + 1)
    assert sorted(t.scenario_id for t in leased) == sorted([batch[0][0].id, batch[2][0].id])


async def test_a_key_repeated_inside_a_batch_answers_the_first_item(store: Store) -> None:
    batch = [records("k1"), records("k2"), records("k1"), records()]
    outcomes = await store.create_scenarios(batch)
    assert [created for _, created in outcomes] == [True, True, False, True]
    assert outcomes[2][0].id == batch[0][0].id
    page, _ = await store.list_scenarios(status=None, template=None, cursor=None, limit=10)
    assert len(page) == 3


async def test_a_key_of_an_earlier_submission_answers_that_scenario(store: Store) -> None:
    earlier, _ = await submit(store, diamond(), idempotency_key="old")
    batch = [records(), records("old"), records("new")]
    outcomes = await store.create_scenarios(batch)
    assert [created for _, created in outcomes] == [True, False, True]
    assert outcomes[1][0].id == earlier.id
    assert outcomes[1][0].created_at == T0
    again = await store.create_scenarios([records("new"), records("old")])
    assert [(s.id, c) for s, c in again] == [(batch[2][0].id, False), (earlier.id, False)]


async def test_an_empty_batch_stores_nothing(store: Store) -> None:
    assert await store.create_scenarios([]) == []
    page, _ = await store.list_scenarios(status=None, template=None, cursor=None, limit=10)
    assert page == []
