"""Random interleavings of every store operation, with the lifecycle invariants checked
after each step (hypothesis stateful testing)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from scenarist.core.errors import ConflictError, IllegalTransitionError, StaleLeaseError
from scenarist.core.lifecycle import count_progress, derive_scenario_status
from scenarist.core.model import ScenarioPlan, Task, TaskStatus
from scenarist.core.transitions import RULES
from scenarist.storage.base import Store
from tests.storage.plans import T0, plan, spec, submit
from tests.support.redis_server import RedisServer

T = TypeVar("T")
SERVICES = ("img", "tts")
LEASE_SECONDS = 5.0
RETRYABLE = {"failed", "skipped", "cancelled"}
# Every legal task transition, from the lifecycle table; a task's event history must be
# a walk over these edges.
LEGAL_MOVES = {
    status.value: {
        rule.target.value
        for rule in RULES.values()
        if status in rule.sources and rule.target is not None
    }
    for status in TaskStatus
}


@st.composite
def dags(draw: st.DrawFn) -> ScenarioPlan:
    specs = []
    for i in range(draw(st.integers(0, 5))):
        earlier = [f"t{j}" for j in range(i)]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        service = draw(st.sampled_from(SERVICES))
        attempts = draw(st.integers(1, 3))
        specs.append(spec(f"t{i}", *deps, service=service, max_attempts=attempts, timeout=8.0))
    return plan(*specs)


class StoreMachine(RuleBasedStateMachine):
    def __init__(self, open_store: Callable[[], Awaitable[Store]]) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.store = self.run(open_store())
        self.now = T0
        self.scenarios: list[str] = []
        self.tokens: list[tuple[str, str]] = []  # every (task id, token) ever handed out

    def run(self, coro: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coro

        return self.loop.run_until_complete(wrapped())

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()

    def tick(self) -> float:
        self.now += 0.25
        return self.now

    # --- rules --------------------------------------------------------------------------

    @rule(the_plan=dags())
    def submit(self, the_plan: ScenarioPlan) -> None:
        scenario, _ = self.run(submit(self.store, the_plan, now=self.tick()))
        self.scenarios.append(scenario.id)

    @rule(service=st.sampled_from(SERVICES), max_tasks=st.integers(1, 3))
    def lease(self, service: str, max_tasks: int) -> None:
        nonce = secrets.token_hex(4)
        leased = self.run(
            self.store.lease(
                service, max_tasks=max_tasks, lease_seconds=LEASE_SECONDS,
                worker_id="w", now=self.tick(), nonce=nonce,
            )
        )  # fmt: skip
        assert len(leased) <= max_tasks
        for task in leased:
            assert task.status is TaskStatus.PROCESSING
            assert task.service == service
            assert task.lease_token == f"{nonce}.{task.attempt}"
            assert [i["task"] for i in task.inputs] == list(task.depends_on)
            self.tokens.append((task.id, task.lease_token))

    @precondition(lambda self: self.tokens)
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        task_id, token = data.draw(st.sampled_from(self.tokens))
        before = self.run(self.store.get_task(task_id))
        now = self.tick()
        if before.status is TaskStatus.PROCESSING and before.lease_token == token:
            beat = self.run(self.store.heartbeat(task_id, token, lease_seconds=5.0, now=now))
            assert beat.lease_expires_at == now + 5.0
        else:
            with pytest.raises(StaleLeaseError):
                self.run(self.store.heartbeat(task_id, token, lease_seconds=5.0, now=now))

    @precondition(lambda self: self.tokens)
    @rule(data=st.data(), seed=st.booleans())
    def complete(self, data: st.DataObject, seed: bool) -> None:
        task_id, held = data.draw(st.sampled_from(self.tokens))
        token = None if seed else held
        before = self.run(self.store.get_task(task_id))
        call = self.store.complete(task_id, token, result_ref="r", result={"n": 1}, now=self.tick())
        if (
            token is not None
            and before.status is TaskStatus.SUCCESS
            and before.lease_token == token
        ):
            done = self.run(call)
            assert done.duplicate
            assert done.released == ()
            assert done.task == before
        elif before.status is TaskStatus.PROCESSING and token in (None, before.lease_token):
            done = self.run(call)
            assert not done.duplicate
            assert done.task.status is TaskStatus.SUCCESS
            for released in done.released:
                child = self.run(self.store.get_task(released))
                assert child.status is TaskStatus.QUEUED
                assert before.name in child.depends_on
        else:
            with pytest.raises(IllegalTransitionError if token is None else StaleLeaseError):
                self.run(call)

    @precondition(lambda self: self.tokens)
    @rule(data=st.data(), retry=st.booleans(), wrong_attempt=st.booleans())
    def fail(self, data: st.DataObject, retry: bool, wrong_attempt: bool) -> None:
        task_id, token = data.draw(st.sampled_from(self.tokens))
        before = self.run(self.store.get_task(task_id))
        now = self.tick()
        retry_at = now + data.draw(st.sampled_from([0.0, 1.0, 3.0])) if retry else None
        call = self.store.fail(
            task_id, token, attempt=before.attempt + int(wrong_attempt),
            error="boom", retry_at=retry_at, now=now,
        )  # fmt: skip
        if (
            before.status is TaskStatus.PROCESSING
            and before.lease_token == token
            and not wrong_attempt
        ):
            after = self.run(call)
            assert after.status is (TaskStatus.QUEUED if retry else TaskStatus.FAILED)
            assert after.available_at == retry_at
        else:
            with pytest.raises(StaleLeaseError):
                self.run(call)

    @rule(seconds=st.sampled_from([0.5, 2.0, 6.0]))
    def advance_clock_and_reap(self, seconds: float) -> None:
        self.now += seconds
        for task in self.run(self.store.find_expired(now=self.now, limit=100)):
            assert task.lease_expires_at is not None
            assert task.lease_expires_at <= self.now
            assert task.lease_token is not None
            retry_at = self.now + 1.0 if task.attempt < task.max_attempts else None
            changed = self.run(
                self.store.expire_lease(task.id, task.lease_token, retry_at=retry_at, now=self.now)
            )
            assert changed is not None
            assert changed.error == "lease expired"
            assert changed.status is (TaskStatus.FAILED if retry_at is None else TaskStatus.QUEUED)

    @precondition(lambda self: self.scenarios)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        scenario_id = data.draw(st.sampled_from(self.scenarios))
        before = self.run(self.store.get_scenario(scenario_id))
        call = self.store.cancel_scenario(scenario_id, now=self.tick())
        if before.status.is_final and not before.cancelled:
            with pytest.raises(ConflictError):
                self.run(call)
        else:
            after = self.run(call)
            assert after.cancelled
            assert after.status.value == "cancelled"

    @precondition(lambda self: self.scenarios)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        scenario_id = data.draw(st.sampled_from(self.scenarios))
        tasks = self.run(self.store.list_tasks(scenario_id))
        call = self.store.retry_scenario(scenario_id, now=self.tick())
        if any(t.status.value in RETRYABLE for t in tasks):
            after = self.run(call)
            assert not after.cancelled
            assert after.finished_at is None
        else:
            with pytest.raises(ConflictError):
                self.run(call)

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def every_scenario_is_consistent(self) -> None:
        queued = processing = 0
        for scenario_id in self.scenarios:
            tasks = self.run(self.store.list_tasks(scenario_id))
            self.check_scenario(scenario_id, tasks)
            queued += sum(t.status is TaskStatus.QUEUED for t in tasks)
            processing += sum(t.status is TaskStatus.PROCESSING for t in tasks)
        stats = self.run(self.store.queue_stats(now=self.now))
        assert sum(s.ready + s.delayed for s in stats) == queued
        assert sum(s.in_flight for s in stats) == processing

    def check_scenario(self, scenario_id: str, tasks: list[Task]) -> None:
        scenario = self.run(self.store.get_scenario(scenario_id))
        by_name = {t.name: t for t in tasks}
        for task in tasks:
            parents_ok = all(by_name[p].status is TaskStatus.SUCCESS for p in task.depends_on)
            if task.status in (TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.SUCCESS):
                assert parents_ok, f"{task.name} is {task.status} before its parents succeeded"
            if task.status is TaskStatus.PENDING:
                assert task.depends_on, f"root {task.name} is pending"
                assert not parents_ok, f"{task.name} was never released"
                dead = [p for p in task.depends_on if by_name[p].status.value in RETRYABLE]
                assert not dead, f"{task.name} is pending below finished parents {dead}"
            if task.status is TaskStatus.PROCESSING:
                assert task.lease_token is not None
                assert task.lease_expires_at is not None
        progress = count_progress((t.service, t.status) for t in tasks)
        assert scenario.progress.total == progress.total
        assert dict(scenario.progress.by_status) == dict(progress.by_status)
        assert {s: dict(c) for s, c in scenario.progress.by_service.items()} == {
            s: dict(c) for s, c in progress.by_service.items()
        }
        derived = derive_scenario_status(
            progress, started=scenario.started_at is not None, cancelled=scenario.cancelled
        )
        assert scenario.status is derived
        assert (scenario.finished_at is not None) == scenario.status.is_final
        self.check_events(scenario_id, tasks, scenario.status.value)

    def check_events(self, scenario_id: str, tasks: list[Task], status: str) -> None:
        """Replaying each task's events from its initial status must walk legal edges
        only and end at its current status: so no fan-in is released twice per round."""
        events = self.run(self.store.read_events(scenario_id, after=None, limit=100_000))
        history: dict[str, list[str]] = {t.name: [] for t in tasks}
        for event in events:
            if event.task is not None:
                history[event.task].append(event.status)
        for task in tasks:
            current = "pending" if task.depends_on else "queued"
            moves = history[task.name]
            if moves and moves[0] == current:  # a backend may log the initial status
                moves = moves[1:]
            for move in moves:
                assert move in LEGAL_MOVES[current], f"{task.name}: {current} -> {move}"
                current = move
            assert current == task.status.value
        scenario_statuses = [e.status for e in events if e.task is None]
        if status != "pending":
            assert scenario_statuses, "a scenario status change logged no event"
        if scenario_statuses:
            assert scenario_statuses[-1] == status


async def open_sqlite(directory: Path) -> Store:
    from scenarist.storage.sqlite.store import SqliteStore

    return await SqliteStore.open(Path(tempfile.mkdtemp(dir=directory)) / "s.db")


def open_redis(server: RedisServer) -> Callable[[], Coroutine[Any, Any, Store]]:
    import redis

    async def opened() -> Store:
        from scenarist.storage.redis.store import RedisStore

        client = redis.Redis.from_url(server.url)
        client.flushdb()
        client.close()
        store: Store = await RedisStore.open(server.url)
        return store

    return opened


MACHINE_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_state_machine_sqlite(tmp_path: Path) -> None:
    try:
        run_state_machine_as_test(
            lambda: StoreMachine(lambda: open_sqlite(tmp_path)), settings=MACHINE_SETTINGS
        )
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.redis
def test_state_machine_redis(redis_server: RedisServer) -> None:
    run_state_machine_as_test(
        lambda: StoreMachine(open_redis(redis_server)), settings=MACHINE_SETTINGS
    )
