"""Small plans built directly from TaskSpec, and thin helpers over the Store protocol."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from scenarist.core.model import Lane, Scenario, ScenarioPlan, Task, TaskSpec
from scenarist.core.tenants import DEFAULT_TENANT, NO_TENANTS, Tenants
from scenarist.service.records import build_records, new_scenario_id
from scenarist.storage.base import Store

T0 = 1_700_000_000.0  # a realistic epoch, so backends that score by time see real values


def spec(
    name: str,
    *deps: str,
    service: str = "svc",
    level: int | None = None,
    max_attempts: int = 3,
    timeout: float = 30.0,
    payload: Mapping[str, Any] | None = None,
    need: int | None = None,
    optional: bool = False,
    cache_ttl: int | None = None,
) -> TaskSpec:
    """`level` None: filled in by `plan` as the longest path from a root."""
    return TaskSpec(
        name=name,
        template_id=name.rstrip("0123456789_") or name,
        index=None,
        service=service,
        payload=dict(payload or {"name": name}),
        depends_on=tuple(deps),
        level=-1 if level is None else level,
        max_attempts=max_attempts,
        timeout_seconds=timeout,
        need=need,
        optional=optional,
        cache_ttl=cache_ttl,
    )


def plan(
    *specs: TaskSpec, template: str = "Demo", params: Mapping[str, Any] | None = None
) -> ScenarioPlan:
    levels: dict[str, int] = {}
    tasks = []
    for s in specs:
        level = s.level if s.level >= 0 else 1 + max((levels[d] for d in s.depends_on), default=-1)
        levels[s.name] = level
        tasks.append(dataclasses.replace(s, level=level))
    return ScenarioPlan(template=template, params=dict(params or {}), tasks=tuple(tasks))


def diamond(service: str = "svc") -> ScenarioPlan:
    """a -> (b, c) -> d"""
    return plan(
        spec("a", service=service),
        spec("b", "a", service=service),
        spec("c", "a", service=service),
        spec("d", "b", "c", service=service),
    )


async def submit(
    store: Store,
    the_plan: ScenarioPlan,
    *,
    now: float = T0,
    scenario_id: str | None = None,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    lane: Lane = Lane.NORMAL,
    tenant: str = DEFAULT_TENANT,
) -> tuple[Scenario, list[Task]]:
    scenario, tasks = build_records(
        the_plan,
        scenario_id=scenario_id or new_scenario_id(),
        now=now,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
        lane=lane,
        tenant=tenant,
    )
    stored, created = await store.create_scenario(scenario, tasks)
    assert created
    return stored, tasks


async def lease(
    store: Store,
    service: str = "svc",
    *,
    now: float,
    max_tasks: int = 100,
    lease_seconds: float | None = None,
    worker_id: str | None = "worker-1",
    nonce: str | None = None,
    tenants: Tenants = NO_TENANTS,
) -> list[Task]:
    return await store.lease(
        service,
        max_tasks=max_tasks,
        lease_seconds=lease_seconds,
        worker_id=worker_id,
        now=now,
        nonce=nonce or secrets.token_hex(6),
        tenants=tenants,
    )


async def lease_one(
    store: Store, service: str = "svc", *, now: float, lease_seconds: float | None = None
) -> Task:
    """Lease exactly one task (there must be one ready)."""
    [task] = await lease(store, service, now=now, max_tasks=1, lease_seconds=lease_seconds)
    return task


async def lease_named(store: Store, scenario_id: str, name: str, *, now: float) -> Task:
    """Lease exactly the named task: claim is `lease` of one task (protocol)."""
    return await store.claim(
        f"{scenario_id}:{name}",
        lease_seconds=None,
        worker_id="worker-1",
        now=now,
        nonce=secrets.token_hex(6),
    )


async def run_to_success(
    store: Store, scenario_id: str, names: Sequence[str], *, now: float
) -> None:
    """Claim and complete the named tasks in order (each must be queued by then)."""
    for name in names:
        task = await lease_named(store, scenario_id, name, now=now)
        await store.complete(
            task.id, task.lease_token, result_ref=f"ref:{name}", result=None, now=now
        )


async def statuses(store: Store, scenario_id: str) -> dict[str, str]:
    return {t.name: t.status.value for t in await store.list_tasks(scenario_id)}


async def task_events(store: Store, scenario_id: str) -> list[tuple[str, str, int]]:
    events = await store.read_events(scenario_id, after=None, limit=10_000)
    return [(e.task, e.status, e.attempt) for e in events if e.task is not None]
