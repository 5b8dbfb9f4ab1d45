"""Attempts (queue wait, run time) derived from a scenario's events."""

from __future__ import annotations

from scenarist.core.durations import AttemptSpan, task_attempts
from scenarist.core.model import Event, Task, TaskStatus

T0 = 1_000.0


def task(name: str, *parents: str) -> Task:
    return Task(
        id=f"s:{name}",
        scenario_id="s",
        name=name,
        service="svc",
        payload={},
        depends_on=parents,
        dependents=(),
        level=1 if parents else 0,
        status=TaskStatus.PENDING,
        attempt=0,
        max_attempts=3,
        timeout_seconds=30.0,
        created_at=T0,
    )


def events(*moves: tuple[str, str, float, int]) -> list[Event]:
    return [
        Event(id=str(i), scenario_id="s", at=at, task=name, status=status, attempt=attempt)
        for i, (name, status, at, attempt) in enumerate(moves)
    ]


def test_a_root_waits_from_its_creation_and_a_retry_is_a_second_attempt() -> None:
    spans = task_attempts(
        [task("a")],
        events(
            ("a", "processing", T0 + 1, 1),
            ("a", "queued", T0 + 3, 1),  # requeued after a retryable failure
            ("a", "processing", T0 + 7, 2),
            ("a", "success", T0 + 8.5, 2),
        ),
    )["a"]
    assert spans == [
        AttemptSpan(1, T0, T0 + 1, T0 + 3, "queued"),
        AttemptSpan(2, T0 + 3, T0 + 7, T0 + 8.5, "success"),
    ]
    assert [(s.wait_seconds, s.run_seconds) for s in spans] == [(1, 2), (4, 1.5)]


def test_a_child_waits_from_its_release_and_a_running_attempt_is_open() -> None:
    spans = task_attempts(
        [task("a"), task("b", "a")],
        events(("b", "queued", T0 + 5, 0), ("b", "processing", T0 + 6, 1)),
    )
    assert spans["b"] == [AttemptSpan(1, T0 + 5, T0 + 6)]
    assert spans["b"][0].run_seconds is None
    assert spans["a"] == [AttemptSpan(1, T0)]  # a root not leased yet: waiting
    assert spans["a"][0].wait_seconds is None


def test_a_pending_task_has_no_attempts_and_a_skip_ends_a_wait() -> None:
    spans = task_attempts(
        [task("b", "a"), task("c", "a")],
        events(("c", "queued", T0 + 1, 0), ("c", "cancelled", T0 + 2, 0)),
    )
    assert spans["b"] == []
    assert spans["c"] == []  # cancelled while queued: it never ran


def test_a_hand_back_is_as_if_never_leased() -> None:
    spans = task_attempts(
        [task("a")],
        events(
            ("a", "processing", T0 + 1, 1),
            ("a", "queued", T0 + 1.1, 0),  # the long poll's caller had left
            ("a", "processing", T0 + 4, 1),
            ("a", "failed", T0 + 5, 1),
        ),
    )["a"]
    assert spans == [AttemptSpan(1, T0, T0 + 4, T0 + 5, "failed")]


def test_a_scenario_retry_starts_the_attempts_again() -> None:
    spans = task_attempts(
        [task("b", "a")],
        events(
            ("b", "queued", T0 + 1, 0),
            ("b", "processing", T0 + 2, 1),
            ("b", "failed", T0 + 3, 1),
            ("b", "pending", T0 + 10, 0),  # retried while its parent runs again
            ("b", "queued", T0 + 12, 0),
        ),
    )["b"]
    # the attempts count from 1 again (the retry row resets them)
    assert spans == [AttemptSpan(1, T0 + 1, T0 + 2, T0 + 3, "failed"), AttemptSpan(1, T0 + 12)]
