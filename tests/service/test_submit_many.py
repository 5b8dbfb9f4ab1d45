"""Orchestrator.submit_many: one store call per batch, an outcome per request, its bounds."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from scenarist.core.errors import (
    IdempotencyKeyReusedError,
    ParamError,
    UnknownScenarioError,
)
from scenarist.core.model import Scenario, Task
from scenarist.service.orchestrator import Orchestrator
from scenarist.service.submission import Submission, SubmitRequest
from tests.service.conftest import RecordingObserver


async def test_outcomes_follow_the_requests(
    orchestrator: Orchestrator, observer: RecordingObserver
) -> None:
    outcomes = await orchestrator.submit_many(
        [
            SubmitRequest("Diamond", {}),
            SubmitRequest("Missing", {}),
            SubmitRequest("Chain", {}, idempotency_key="k"),
            SubmitRequest("Chain", {}, idempotency_key="k"),
            SubmitRequest("Diamond", {}, idempotency_key="k"),
        ]
    )
    diamond, missing, chain, replay, reused = outcomes
    assert isinstance(diamond, Submission)
    assert diamond.created
    assert isinstance(missing, UnknownScenarioError)
    assert isinstance(chain, Submission)
    assert chain.created
    assert isinstance(replay, Submission)
    assert not replay.created
    assert replay.scenario.id == chain.scenario.id
    assert [t.name for t in replay.tasks] == ["a", "b"]
    assert isinstance(reused, IdempotencyKeyReusedError)
    assert reused.scenario_id == chain.scenario.id
    submitted = [value for name, value in observer.calls if name == "submitted"]
    assert submitted == [diamond.scenario.id, chain.scenario.id]


async def test_the_store_is_called_once_per_batch(
    orchestrator: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    create = orchestrator.store.create_scenarios

    async def counting(
        batch: Sequence[tuple[Scenario, Sequence[Task]]],
    ) -> list[tuple[Scenario, bool]]:
        calls.append(len(batch))
        return await create(batch)

    monkeypatch.setattr(orchestrator.store, "create_scenarios", counting)
    await orchestrator.submit_many([SubmitRequest("Diamond", {})] * 5)
    assert calls == [5]


async def test_a_batch_beyond_its_bounds_is_refused_whole(orchestrator: Orchestrator) -> None:
    orchestrator.limits = dataclasses.replace(
        orchestrator.limits, max_submit_batch=3, max_submit_batch_tasks=10
    )
    with pytest.raises(ParamError) as too_many:
        await orchestrator.submit_many([SubmitRequest("Chain", {})] * 4)
    assert too_many.value.field == "items"
    with pytest.raises(ParamError, match="more than 10 tasks") as too_large:
        await orchestrator.submit_many([SubmitRequest("Diamond", {})] * 3)  # 12 tasks
    assert too_large.value.field == "items"
    page, _ = await orchestrator.store.list_scenarios(
        status=None, template=None, cursor=None, limit=10
    )
    assert page == []
