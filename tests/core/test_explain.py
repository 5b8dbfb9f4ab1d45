"""Read-time explanations: skipped_because, failure reasons, progress lines."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from scenarist.core.explain import (
    FailureReason,
    failure_reason,
    failures,
    progress_summary,
    skipped_because,
)
from scenarist.core.lifecycle import count_progress
from scenarist.core.model import Task, TaskStatus

BLOCKING = {TaskStatus.FAILED, TaskStatus.CANCELLED}


def make_task(
    name: str,
    depends_on: Sequence[str] = (),
    status: TaskStatus = TaskStatus.SUCCESS,
    *,
    attempt: int = 1,
    max_attempts: int = 3,
    error: str | None = None,
) -> Task:
    return Task(
        id=f"s:{name}",
        scenario_id="s",
        name=name,
        service="test-service",
        payload={},
        depends_on=tuple(depends_on),
        dependents=(),
        level=0,
        status=status,
        attempt=attempt,
        max_attempts=max_attempts,
        timeout_seconds=60.0,
        created_at=0.0,
        error=error,
    )


def create_video(statuses: dict[str, TaskStatus]) -> list[Task]:
    graph = {
        "script": [],
        "voice": ["script"],
        "slide_prompt_1": ["script"],
        "slide_prompt_2": ["script"],
        "slide_image_1": ["slide_prompt_1"],
        "slide_image_2": ["slide_prompt_2"],
        "video": ["voice", "slide_image_1", "slide_image_2"],
    }
    return [make_task(n, deps, statuses.get(n, TaskStatus.SUCCESS)) for n, deps in graph.items()]


def test_a_failed_slide_image_explains_the_skipped_video() -> None:
    tasks = create_video(
        {"slide_image_2": TaskStatus.FAILED, "video": TaskStatus.SKIPPED},
    )
    assert skipped_because(tasks) == {"video": ("slide_image_2",)}


def test_causes_are_found_through_skipped_tasks_and_listed_in_plan_order() -> None:
    tasks = create_video(
        {
            "voice": TaskStatus.CANCELLED,
            "slide_prompt_2": TaskStatus.FAILED,
            "slide_image_2": TaskStatus.SKIPPED,
            "video": TaskStatus.SKIPPED,
        }
    )
    assert skipped_because(tasks) == {
        "slide_image_2": ("slide_prompt_2",),
        "video": ("voice", "slide_prompt_2"),
    }


def test_failures_list_their_error_reason_and_the_skips_they_caused() -> None:
    tasks = [
        make_task("a", status=TaskStatus.FAILED, attempt=1, error="no cats today"),
        make_task("b", ["a"], TaskStatus.SKIPPED),
        make_task("c", ["b"], TaskStatus.SKIPPED),
        make_task("d", status=TaskStatus.FAILED, attempt=3, error="timeout"),
        make_task("e"),
    ]
    found = failures(tasks)
    assert [(f.task, f.error, f.reason, f.skipped) for f in found] == [
        ("a", "no cats today", FailureReason.NOT_RETRYABLE, ("b", "c")),
        ("d", "timeout", FailureReason.ATTEMPTS_EXHAUSTED, ()),
    ]
    assert found[0].description == "failed for good after attempt 1 of 3 (not retryable)"
    assert found[1].description == "failed after attempt 3 of 3 (attempts exhausted)"


def test_only_failed_tasks_have_a_failure_reason() -> None:
    assert failure_reason(make_task("a", status=TaskStatus.SKIPPED, attempt=0)) is None
    assert failure_reason(make_task("a", status=TaskStatus.CANCELLED)) is None
    failed = make_task("a", status=TaskStatus.FAILED, attempt=2, max_attempts=2)
    assert failure_reason(failed) is FailureReason.ATTEMPTS_EXHAUSTED


def test_progress_of_a_failed_scenario_names_each_outcome() -> None:
    statuses = [TaskStatus.SUCCESS] * 6 + [TaskStatus.FAILED] + [TaskStatus.SKIPPED] * 2
    progress = count_progress(("svc", s) for s in statuses)
    assert progress_summary(progress) == "9/9 finished: 6 succeeded, 1 failed, 2 skipped"


def test_progress_of_an_unstarted_scenario_has_no_outcomes() -> None:
    progress = count_progress(("svc", TaskStatus.QUEUED) for _ in range(3))
    assert progress_summary(progress) == "0/3 finished"


# --- random DAGs ---------------------------------------------------------------------


@st.composite
def failed_dags(draw: st.DrawFn) -> list[Task]:
    """A random DAG run as the lifecycle would: some tasks fail or are cancelled, every
    descendant of one is skipped, the rest succeed or are still open. Listed shuffled,
    since a store need not return tasks in plan order."""
    size = draw(st.integers(min_value=1, max_value=14))
    parents: list[list[str]] = []
    for index in range(size):
        earlier = [f"t{i}" for i in range(index)]
        chosen = (
            draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3)) if earlier else []
        )
        parents.append(chosen)
    statuses: dict[str, TaskStatus] = {}
    for index in range(size):
        name = f"t{index}"
        upstream = [statuses[p] for p in parents[index]]
        if any(s in BLOCKING or s is TaskStatus.SKIPPED for s in upstream):
            statuses[name] = TaskStatus.SKIPPED
        elif all(s is TaskStatus.SUCCESS for s in upstream):
            statuses[name] = draw(
                st.sampled_from(
                    [TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.QUEUED]
                )
            )
        else:
            statuses[name] = TaskStatus.PENDING
    tasks = [make_task(f"t{i}", parents[i], statuses[f"t{i}"]) for i in range(size)]
    random.Random(draw(st.integers())).shuffle(tasks)
    return tasks


def reachable_through_skipped(tasks: Sequence[Task], cause: str) -> set[str]:
    """The oracle, walking the other way: from a blocking task down through skipped
    tasks only; every skipped task reached names `cause` among its causes."""
    children: dict[str, list[Task]] = {}
    for task in tasks:
        for parent in task.depends_on:
            children.setdefault(parent, []).append(task)
    reached: set[str] = set()
    frontier = [cause]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child.status is TaskStatus.SKIPPED and child.name not in reached:
                reached.add(child.name)
                frontier.append(child.name)
    return reached


@settings(max_examples=300, deadline=None)
@given(failed_dags())
def test_skipped_because_matches_a_downward_walk_from_each_cause(tasks: list[Task]) -> None:
    expected: dict[str, set[str]] = {t.name: set() for t in tasks if t.status is TaskStatus.SKIPPED}
    for task in tasks:
        if task.status in BLOCKING:
            for skipped in reachable_through_skipped(tasks, task.name):
                expected[skipped].add(task.name)
    found = skipped_because(tasks)
    assert {name: set(causes) for name, causes in found.items()} == expected
    order = [t.name for t in tasks]
    for causes in found.values():
        assert list(causes) == sorted(causes, key=order.index)
        assert causes, "every skip in a lifecycle-shaped DAG has a cause"


@settings(max_examples=200, deadline=None)
@given(failed_dags())
def test_failures_and_skips_are_two_views_of_one_relation(tasks: list[Task]) -> None:
    causes = skipped_because(tasks)
    pairs_from_skips = {(c, s) for s, cs in causes.items() for c in cs}
    found = failures(tasks)
    pairs_from_failures = {(f.task, s) for f in found for s in f.skipped}
    failed = {t.name for t in tasks if t.status is TaskStatus.FAILED}
    assert {f.task for f in found} == failed
    assert pairs_from_failures == {(c, s) for c, s in pairs_from_skips if c in failed}
