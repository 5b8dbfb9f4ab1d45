"""Submitting scenarios: one at a time (Orchestrator.submit) or a batch in one store call
(submit_batch), each item with its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scenarist.core.errors import IdempotencyKeyReusedError, ParamError, ScenaristError
from scenarist.core.model import DEFAULT_TENANT, Lane, Scenario, Task
from scenarist.core.step_cache import served_at_submit
from scenarist.service.records import build_records

if TYPE_CHECKING:
    from scenarist.service.orchestrator import Orchestrator


@dataclass(frozen=True, slots=True)
class Submission:
    scenario: Scenario
    tasks: list[Task]
    created: bool  # False when an Idempotency-Key matched an earlier submission


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One scenario to submit: what POST /generate takes, the key included."""

    template: str
    params: Mapping[str, Any]
    idempotency_key: str | None = None
    callback_url: str | None = None
    traceparent: str | None = None  # its submit span's, when tracing is on
    lane: Lane = Lane.NORMAL
    tenant: str = DEFAULT_TENANT


# One item's answer: its submission, or the error that refused it (nothing stored).
Outcome = Submission | ScenaristError


def replay_of(
    stored: Scenario, sent: Scenario, idempotency_key: str | None
) -> IdempotencyKeyReusedError | None:
    """The error for a key that came back with a different request, else None. A
    scenario stored before digests were kept has none: it cannot be compared."""
    reused = stored.request_digest not in (None, sent.request_digest)
    if idempotency_key is not None and reused:
        return IdempotencyKeyReusedError(idempotency_key, stored.id)
    return None


async def submit_batch(
    orchestrator: Orchestrator,
    requests: Sequence[SubmitRequest],
) -> list[Outcome]:
    """Plan every request, then create all the valid ones in ONE store call
    (Store.create_scenarios); an item that fails its plan, the batch's task bound or its
    key's comparison gets its error and stores nothing, the others are unaffected. Items
    share one creation time. A key repeated inside the batch answers as a replay of its
    first item (or as a reused key, when the two requests differ)."""
    limits = orchestrator.limits
    if len(requests) > limits.max_submit_batch:
        raise ParamError(
            f"a batch holds at most {limits.max_submit_batch} scenarios, got {len(requests)}",
            field="items",
        )
    now = orchestrator.clock()
    outcomes: list[Outcome | None] = [None] * len(requests)
    built: list[tuple[int, Scenario, list[Task]]] = []
    task_total = 0
    for i, request in enumerate(requests):
        try:
            plan = orchestrator.catalog.plan(request.template, request.params)
            tenant = orchestrator.known_tenant(request.tenant, field="tenant")
        except ScenaristError as error:
            outcomes[i] = error
            continue
        task_total += len(plan.tasks)
        if task_total > limits.max_submit_batch_tasks:
            raise ParamError(
                f"the batch expands to more than {limits.max_submit_batch_tasks} tasks "
                f"(at item {i}); send fewer scenarios per batch",
                field="items",
            )
        scenario, tasks = build_records(
            plan,
            scenario_id=orchestrator.new_id(),
            now=now,
            idempotency_key=request.idempotency_key,
            callback_url=request.callback_url,
            traceparent=request.traceparent,
            lane=request.lane,
            tenant=tenant,
        )
        built.append((i, scenario, tasks))
    stored = await orchestrator.store.create_scenarios([(s, t) for _, s, t in built])
    replays: list[tuple[int, Scenario]] = []
    served: list[int] = []
    for (i, scenario, tasks), (kept, created) in zip(built, stored, strict=True):
        if created:
            orchestrator.observer.scenario_submitted(kept)
            orchestrator.finished.report(kept, orchestrator.observer)
            outcomes[i] = Submission(kept, tasks, created=True)
            if served_at_submit(tasks):
                served.append(i)
        elif (reused := replay_of(kept, scenario, requests[i].idempotency_key)) is not None:
            outcomes[i] = reused
        else:
            replays.append((i, kept))
    # Replays answer with the stored tasks, as a single replayed submit does; so do new
    # scenarios whose roots the step cache may have served.
    listed = await asyncio.gather(*(orchestrator.store.list_tasks(s.id) for _, s in replays))
    for (i, kept), tasks in zip(replays, listed, strict=True):
        outcomes[i] = Submission(kept, tasks, created=False)
    for i in served:
        done = outcomes[i]
        assert isinstance(done, Submission)
        tasks = await orchestrator.store.list_tasks(done.scenario.id)
        outcomes[i] = Submission(done.scenario, tasks, created=True)
    return [outcome for outcome in outcomes if outcome is not None]
