"""Tenants over HTTP (decision 79), on SQLite and Redis: `tenant` on POST /generate and
/generate/batch (default: the bearer token's name when the catalog names such a tenant,
else `default`), a plain httpx worker leasing one task at a time gets the tenants' tasks
in proportion to their weights, a tenant's `max_in_flight` holds its tasks back, and an
unknown tenant is a 422 naming `tenant`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_bad_input import assert_problem
from tests.api.test_generate_batch import post_batch
from tests.support.app import make_settings, serve

CATALOG = """\
tenants:
  studio: {weight: 3}
  small: {max_in_flight: 1}
One:
  tasks:
    - {id: a, service: text-service}
"""
CLIENT, STUDIO = "c" * 32, "s" * 32
TOKENS = [
    {"token": CLIENT, "role": "client", "name": "ops"},
    {"token": STUDIO, "role": "client", "name": "studio"},
    {"token": "w" * 32, "role": "worker"},
]


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def tenanted(store_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    catalog = tmp_path / "scenarios.yml"
    catalog.write_text(CATALOG)
    async with serve(make_settings(store_url, scenarios=catalog, tokens=TOKENS)) as client:
        client.headers.update(headers(CLIENT))
        yield client


async def submit(client: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    r = await client.post("/generate", json={"scenario": "One", **extra})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def lease_one(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await client.post(
        "/queues/text-service/lease", json={"max_tasks": 1}, headers=headers("w" * 32)
    )
    assert r.status_code == 200, r.text
    tasks: list[dict[str, Any]] = r.json()["tasks"]
    return tasks


async def tenant_of(client: httpx.AsyncClient, scenario_id: str) -> str:
    body = (await client.get(f"/scenarios/{scenario_id}?tasks=none")).json()
    tenant: str = body["tenant"]
    return tenant


async def test_a_plain_worker_gets_the_tenants_tasks_by_weight(
    tenanted: httpx.AsyncClient,
) -> None:
    flood = [(await submit(tenanted))["scenario_id"] for _ in range(6)]
    later = [(await submit(tenanted, tenant="studio"))["scenario_id"] for _ in range(3)]
    taken = [(await lease_one(tenanted))[0]["scenario_id"] for _ in range(5)]
    # The default tenant (weight 1) was first; studio (weight 3) then takes three turns.
    assert taken == [flood[0], *later, flood[1]]
    assert [await tenant_of(tenanted, s) for s in (flood[0], later[0])] == ["default", "studio"]


async def test_the_token_names_the_tenant_when_the_catalog_has_it(
    tenanted: httpx.AsyncClient,
) -> None:
    mine = (await submit(tenanted))["scenario_id"]  # token "ops": not a tenant
    studio = await tenanted.post("/generate", json={"scenario": "One"}, headers=headers(STUDIO))
    named = (await submit(tenanted, tenant="small"))["scenario_id"]
    assert await tenant_of(tenanted, mine) == "default"
    assert await tenant_of(tenanted, studio.json()["scenario_id"]) == "studio"
    assert await tenant_of(tenanted, named) == "small"


async def test_a_tenant_cap_holds_its_tasks_back(tenanted: httpx.AsyncClient) -> None:
    for _ in range(3):
        await submit(tenanted, tenant="small")
    r = await tenanted.post(
        "/queues/text-service/lease", json={"max_tasks": 10}, headers=headers("w" * 32)
    )
    assert len(r.json()["tasks"]) == 1


async def test_an_unknown_tenant_is_a_422_naming_it(tenanted: httpx.AsyncClient) -> None:
    for value in ("nobody", "Studio"):
        response = await tenanted.post("/generate", json={"scenario": "One", "tenant": value})
        assert assert_problem(response, 422, "invalid-param")["field"] == "tenant"
    for value in ("", 5, "x" * 201):
        response = await tenanted.post("/generate", json={"scenario": "One", "tenant": value})
        assert assert_problem(response, 422, "validation-failed")["field"] == "tenant"
    answer = await post_batch(
        tenanted, [{"scenario": "One", "tenant": "nobody"}, {"scenario": "One", "tenant": "small"}]
    )
    refused, created = answer["items"]
    assert (refused["status"], refused["problem"]["field"]) == (422, "tenant")
    assert created["status"] == 201
    assert await tenant_of(tenanted, created["scenario_id"]) == "small"


async def test_a_replay_for_another_tenant_is_a_different_request(
    tenanted: httpx.AsyncClient,
) -> None:
    key = {"Idempotency-Key": "one-7"}
    first = await tenanted.post("/generate", json={"scenario": "One"}, headers=key)
    assert first.status_code == 201
    again = await tenanted.post(
        "/generate", json={"scenario": "One", "tenant": "studio"}, headers=key
    )
    assert assert_problem(again, 422, "idempotency-key-reused")


async def test_queues_metrics_and_the_dashboard_show_each_tenant(
    tenanted: httpx.AsyncClient,
) -> None:
    await submit(tenanted, tenant="small")
    await submit(tenanted, tenant="small")
    await submit(tenanted)
    await lease_one(tenanted)  # the small tenant's first (an equal turn, the older)
    worker = headers("w" * 32)
    body = (await tenanted.get("/queues", headers=worker)).json()
    by_name = {t["tenant"]: t for t in body["tenants"]}
    assert by_name["studio"] == {
        "tenant": "studio", "ready": 0, "in_flight": 0, "weight": 3.0, "max_in_flight": None,
    }  # fmt: skip
    small, default = by_name["small"], by_name["default"]
    assert (small["ready"], small["in_flight"], small["max_in_flight"]) == (1, 1, 1)
    assert (default["ready"], default["in_flight"], default["weight"]) == (1, 0, 1.0)
    metrics = (await tenanted.get("/metrics", headers=worker)).text
    assert f'scenarist_tenant_ready{{tenant="small"}} {float(small["ready"])}' in metrics
    assert 'scenarist_tenant_in_flight{tenant="studio"} 0.0' in metrics
    page = (await tenanted.get("/ui/queues")).text
    row = page[page.index('data-tenant="small"') :].split("</tr>")[0]
    assert f'<td class="in-flight">{small["in_flight"]} / 1</td>' in row
