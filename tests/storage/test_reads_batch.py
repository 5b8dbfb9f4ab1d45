"""Conformance: an idempotency key's request digest is stored with its scenario and read
back (also when the key finds an existing scenario)."""

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
