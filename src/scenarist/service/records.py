"""Turn a plan into the records a store persists: the submit-time decisions."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import orjson
from ulid import ULID

from scenarist.core.lifecycle import count_progress
from scenarist.core.model import (
    DEFAULT_TENANT,
    JSON,
    Lane,
    Scenario,
    ScenarioPlan,
    ScenarioStatus,
    Task,
    TaskStatus,
    task_id,
)


def request_digest(
    template: str,
    params: Mapping[str, JSON],
    callback_url: str | None,
    lane: Lane = Lane.NORMAL,
    tenant: str = DEFAULT_TENANT,
) -> str:
    """A digest of a submission as validated (defaults filled in, wherever the client put
    the parameters), so that only a really different request counts as different. The
    normal lane and the default tenant are left out, so digests stored before lanes and
    tenants existed still match."""
    request: dict[str, JSON] = {
        "template": template,
        "params": params,
        "callback_url": callback_url,
    }
    if lane is not Lane.NORMAL:
        request["priority"] = lane.value
    if tenant != DEFAULT_TENANT:
        request["tenant"] = tenant
    canonical = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def new_scenario_id() -> str:
    """ULIDs sort by creation time, which keeps listings and Redis scans in order."""
    return str(ULID())


def build_records(
    plan: ScenarioPlan,
    *,
    scenario_id: str,
    now: float,
    idempotency_key: str | None = None,
    callback_url: str | None = None,
    traceparent: str | None = None,
    lane: Lane = Lane.NORMAL,
    tenant: str = DEFAULT_TENANT,
) -> tuple[Scenario, list[Task]]:
    """Roots start `queued` (leasable at once); every other task waits `pending`."""
    dependents: dict[str, list[str]] = {spec.name: [] for spec in plan.tasks}
    for spec in plan.tasks:
        for parent in spec.depends_on:
            dependents[parent].append(spec.name)
    tasks = [
        Task(
            id=task_id(scenario_id, spec.name),
            scenario_id=scenario_id,
            name=spec.name,
            service=spec.service,
            payload=spec.payload,
            depends_on=spec.depends_on,
            dependents=tuple(dependents[spec.name]),
            level=spec.level,
            status=TaskStatus.QUEUED if not spec.depends_on else TaskStatus.PENDING,
            attempt=0,
            max_attempts=spec.max_attempts,
            timeout_seconds=spec.timeout_seconds,
            created_at=now,
            queued_at=now if not spec.depends_on else None,
            need=spec.need,
            optional=spec.optional,
            group_spec=spec.group_spec,
            join=spec.join,
            max_parallel=spec.max_parallel,
            parallel_group=None if spec.max_parallel is None else spec.template_id,
            cache_ttl=spec.cache_ttl,
            concurrency_key=spec.concurrency_key,
            concurrency_limit=spec.concurrency_limit,
            lane=lane,
            tenant=tenant,
            affinity=spec.affinity,
        )
        for spec in plan.tasks
    ]
    progress = count_progress((t.service, t.status) for t in tasks)
    scenario = Scenario(
        id=scenario_id,
        template=plan.template,
        params=plan.params,
        status=ScenarioStatus.SUCCESS if not tasks else ScenarioStatus.PENDING,
        progress=progress,
        created_at=now,
        finished_at=now if not tasks else None,
        idempotency_key=idempotency_key,
        callback_url=callback_url,
        request_digest=(
            None
            if idempotency_key is None
            else request_digest(plan.template, plan.params, callback_url, lane, tenant)
        ),
        traceparent=traceparent,
        lane=lane,
        tenant=tenant,
    )
    return scenario, tasks
