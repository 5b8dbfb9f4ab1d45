"""Conformance: create_scenario and the read side (get/list, events, queue stats)."""

from __future__ import annotations

import pytest

from scenarist.core.errors import ParamError, ScenarioNotFoundError, TaskNotFoundError
from scenarist.core.model import ScenarioStatus, TaskStatus
from scenarist.service.records import build_records
from scenarist.storage.base import Store
from tests.storage.plans import T0, diamond, lease, plan, run_to_success, spec, submit


async def test_create_queues_roots_and_leaves_others_pending(store: Store) -> None:
    scenario, _ = await submit(store, diamond(), callback_url="http://127.0.0.1:9/cb")
    assert scenario.status is ScenarioStatus.PENDING
    assert scenario.callback_url == "http://127.0.0.1:9/cb"
    assert scenario.progress.total == 4
    assert set(scenario.progress.by_status) == set(TaskStatus)
    assert scenario.progress.by_status[TaskStatus.QUEUED] == 1
    assert scenario.progress.by_status[TaskStatus.PENDING] == 3
    assert scenario.progress.by_service["svc"][TaskStatus.FAILED] == 0
    tasks = await store.list_tasks(scenario.id)
    assert [t.name for t in tasks] == ["a", "b", "c", "d"]
    assert [t.status for t in tasks] == [TaskStatus.QUEUED] + [TaskStatus.PENDING] * 3
    assert tasks[0].queued_at == T0
    assert all(t.inputs == () and t.attempt == 0 for t in tasks)


async def test_create_round_trips_every_field(store: Store) -> None:
    the_plan = plan(
        spec("a", service="img", payload={"prompt": "x", "n": [1, 2]}, max_attempts=5),
        spec("b", "a", service="tts", timeout=12.5),
        template="Video",
        params={"topic": "owls", "slides": 2},
    )
    scenario, built = await submit(store, the_plan, idempotency_key="k-1")
    assert scenario.template == "Video"
    assert scenario.params == {"topic": "owls", "slides": 2}
    assert scenario.idempotency_key == "k-1"
    assert scenario.created_at == T0
    assert scenario.started_at is None
    assert scenario.finished_at is None
    assert not scenario.cancelled
    assert await store.list_tasks(scenario.id) == built
    for task in built:
        assert await store.get_task(task.id) == task
    b = await store.get_task(built[1].id)
    assert (b.depends_on, b.level, b.timeout_seconds) == (("a",), 1, 12.5)
    assert built[0].dependents == ("b",)


async def test_idempotency_key_returns_the_existing_scenario(store: Store) -> None:
    first, _ = await submit(store, diamond(), idempotency_key="same")
    again, tasks = build_records(
        diamond(), scenario_id="01OTHER", now=T0 + 5, idempotency_key="same"
    )
    existing, created = await store.create_scenario(again, tasks)
    assert not created
    assert existing.id == first.id
    assert existing.created_at == T0
    with pytest.raises(ScenarioNotFoundError):
        await store.get_scenario("01OTHER")
    page, _ = await store.list_scenarios(status=None, template=None, cursor=None, limit=10)
    assert [s.id for s in page] == [first.id]
    assert len(await store.list_tasks(first.id)) == 4


async def test_zero_task_scenario_is_success_at_once(store: Store) -> None:
    scenario, _ = await submit(store, plan())
    stored = await store.get_scenario(scenario.id)
    assert stored.status is ScenarioStatus.SUCCESS
    assert stored.finished_at is not None
    assert stored.progress.total == 0
    assert stored.progress.percent == 100.0
    assert await store.list_tasks(scenario.id) == []


async def test_absent_records_raise_not_found(store: Store) -> None:
    with pytest.raises(ScenarioNotFoundError):
        await store.get_scenario("01NOPE")
    with pytest.raises(ScenarioNotFoundError):
        await store.list_tasks("01NOPE")
    with pytest.raises(ScenarioNotFoundError):
        await store.read_events("01NOPE", after=None, limit=10)
    for task_id in ("01NOPE:a", "not-a-task-id", ""):
        with pytest.raises(TaskNotFoundError):
            await store.get_task(task_id)


async def test_list_scenarios_pages_newest_first(store: Store) -> None:
    ids = []
    for i in range(7):
        scenario, _ = await submit(store, plan(spec("a")), now=T0 + i)
        ids.append(scenario.id)
    # Two created in the same instant: still a total order, none lost or repeated.
    for _ in range(2):
        scenario, _ = await submit(store, plan(spec("a")), now=T0 + 3)
        ids.append(scenario.id)
    created = {i: (await store.get_scenario(i)).created_at for i in ids}
    expected_ids = sorted(ids, key=lambda i: (created[i], i), reverse=True)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page, cursor = await store.list_scenarios(
            status=None, template=None, cursor=cursor, limit=4
        )
        pages += 1
        assert len(page) <= 4
        seen += [s.id for s in page]
        if cursor is None:
            break
    assert pages == 3
    assert seen == expected_ids
    first_page, _ = await store.list_scenarios(status=None, template=None, cursor=None, limit=9)
    assert [s.id for s in first_page] == expected_ids
    assert first_page[0].progress.total == 1


async def test_list_scenarios_filters_by_status_and_template(store: Store) -> None:
    done, _ = await submit(store, plan(template="Empty"), now=T0)
    video, _ = await submit(store, plan(spec("a"), template="Video"), now=T0 + 1)
    video2, _ = await submit(store, plan(spec("a"), template="Video"), now=T0 + 2)
    await lease(store, now=T0 + 3, max_tasks=1)  # the oldest video starts running

    async def ids(status: ScenarioStatus | None, template: str | None) -> list[str]:
        page, cursor = await store.list_scenarios(
            status=status, template=template, cursor=None, limit=50
        )
        assert cursor is None
        return [s.id for s in page]

    assert await ids(None, "Video") == [video2.id, video.id]
    assert await ids(ScenarioStatus.SUCCESS, None) == [done.id]
    assert await ids(ScenarioStatus.RUNNING, "Video") == [video.id]
    assert await ids(ScenarioStatus.PENDING, "Video") == [video2.id]
    assert await ids(ScenarioStatus.PENDING, "Empty") == []
    assert await ids(None, "Unknown") == []


@pytest.mark.parametrize("cursor", ["!!!", "bm90LWEtY3Vyc29y", "%%%%", "x"])
async def test_malformed_cursor_is_a_param_error(store: Store, cursor: str) -> None:
    await submit(store, plan(spec("a")))
    with pytest.raises(ParamError) as caught:
        await store.list_scenarios(status=None, template=None, cursor=cursor, limit=5)
    assert caught.value.field == "cursor"


async def test_read_events_oldest_first_and_after(store: Store) -> None:
    scenario, _ = await submit(store, plan(spec("a"), spec("b", "a")))
    await run_to_success(store, scenario.id, ["a", "b"], now=T0 + 1)
    events = await store.read_events(scenario.id, after=None, limit=1000)
    assert all(e.scenario_id == scenario.id for e in events)
    task_events = [(e.task, e.status, e.attempt) for e in events if e.task is not None]
    assert task_events == [
        ("a", "processing", 1),
        ("a", "success", 1),
        ("b", "queued", 0),
        ("b", "processing", 1),
        ("b", "success", 1),
    ]
    scenario_events = [e.status for e in events if e.task is None]
    assert scenario_events[-2:] == ["running", "success"]
    assert events[-1].task is None
    assert events[-1].status == "success"
    assert [e.at for e in events] == sorted(e.at for e in events)
    for k in range(len(events)):
        rest = await store.read_events(scenario.id, after=events[k].id, limit=1000)
        assert rest == events[k + 1 :]
    assert await store.read_events(scenario.id, after=None, limit=2) == events[:2]


async def test_queue_stats_counts_ready_delayed_in_flight(store: Store) -> None:
    the_plan = plan(
        spec("i1", service="img"),
        spec("i2", service="img"),
        spec("i3", service="img"),
        spec("t1", service="tts"),
        spec("z", "t1", service="zzz"),
    )
    scenario, _ = await submit(store, the_plan, now=T0)
    [leased] = await lease(store, "img", now=T0 + 10, max_tasks=1)
    await store.fail(
        leased.id, leased.lease_token, attempt=1, error="boom", retry_at=T0 + 100, now=T0 + 10
    )
    await lease(store, "img", now=T0 + 10, max_tasks=1)
    stats = {s.service: s for s in await store.queue_stats(now=T0 + 20)}
    assert list(stats) == ["img", "tts", "zzz"]
    img = stats["img"]
    assert (img.ready, img.delayed, img.in_flight) == (1, 1, 1)
    assert img.oldest_ready_age == pytest.approx(20.0)
    tts = stats["tts"]
    assert (tts.ready, tts.delayed, tts.in_flight) == (1, 0, 0)
    zzz = stats["zzz"]
    assert (zzz.ready, zzz.delayed, zzz.in_flight, zzz.oldest_ready_age) == (0, 0, 0, None)
    # Once the backoff is over the delayed task counts as ready.
    later = {s.service: s for s in await store.queue_stats(now=T0 + 100)}
    assert (later["img"].ready, later["img"].delayed) == (2, 0)
    await run_to_success(store, scenario.id, ["t1", "z"], now=T0 + 101)
    done = {s.service: s for s in await store.queue_stats(now=T0 + 102)}
    assert (done["zzz"].ready, done["zzz"].in_flight, done["tts"].ready) == (0, 0, 0)
