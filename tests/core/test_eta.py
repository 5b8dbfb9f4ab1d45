"""The ETA forecast: the remaining critical path over worker slots, queueing included."""

from __future__ import annotations

from dataclasses import replace

from scenarist.core.eta import ServiceLoad, critical_path, estimate_eta
from scenarist.core.model import Task, TaskStatus
from tests.core.test_durations import task

NOW = 2_000.0


def queued(name: str, *parents: str, service: str = "svc") -> Task:
    return replace(task(name, *parents), status=TaskStatus.QUEUED, service=service)


def pending(name: str, *parents: str, service: str = "svc") -> Task:
    return replace(task(name, *parents), service=service)


def load(run: float, workers: int = 1, **others: int) -> ServiceLoad:
    return ServiceLoad(run_seconds=run, workers=workers, **others)


def test_a_chain_adds_its_run_times() -> None:
    tasks = [queued("a"), pending("b", "a")]
    assert estimate_eta(tasks, {"svc": load(10)}, now=NOW) == 20


def test_a_fan_out_queues_on_too_few_workers() -> None:
    fan = [queued("a"), pending("x1", "a"), pending("x2", "a"), pending("x3", "a")]
    tasks = [*fan, pending("join", "x1", "x2", "x3")]
    assert estimate_eta(tasks, {"svc": load(10, workers=1)}, now=NOW) == 50
    assert estimate_eta(tasks, {"svc": load(10, workers=3)}, now=NOW) == 30


def test_the_critical_path_across_services_decides() -> None:
    tasks = [
        queued("script", service="text"),
        pending("voice", "script", service="audio"),
        pending("slide", "script", service="image"),
        pending("video", "voice", "slide", service="video"),
    ]
    loads = {"text": load(1), "audio": load(6), "image": load(2), "video": load(3)}
    assert estimate_eta(tasks, loads, now=NOW) == 1 + 6 + 3


def test_work_of_other_scenarios_comes_first() -> None:
    tasks = [queued("a")]
    assert estimate_eta(tasks, {"svc": load(10, workers=2, ready_others=4)}, now=NOW) == 30
    # two others running, half done on average: the first slot frees in 5 s
    assert estimate_eta(tasks, {"svc": load(10, workers=2, running_others=2)}, now=NOW) == 15


def test_a_running_task_has_its_elapsed_time_counted() -> None:
    running = replace(task("a"), status=TaskStatus.PROCESSING, started_at=NOW - 4)
    assert estimate_eta([running, pending("b", "a")], {"svc": load(10)}, now=NOW) == 16
    overdue = replace(running, started_at=NOW - 40)
    assert estimate_eta([overdue], {"svc": load(10)}, now=NOW) == 0


def test_a_retry_backoff_delays_the_task() -> None:
    backing_off = replace(queued("a"), available_at=NOW + 7)
    assert estimate_eta([backing_off], {"svc": load(10)}, now=NOW) == 17


def test_finished_scenarios_and_unknown_run_times() -> None:
    done = replace(task("a"), status=TaskStatus.SUCCESS)
    assert estimate_eta([done], {}, now=NOW) == 0
    assert estimate_eta([queued("a")], {}, now=NOW) is None


def test_the_critical_path_follows_the_parent_that_ended_last() -> None:
    tasks = [queued("a"), pending("b", "a"), pending("c", "a"), pending("d", "b", "c")]
    ends = {"a": 1.0, "b": 5.0, "c": 3.0, "d": 6.0}
    assert critical_path(tasks, ends) == ["a", "b", "d"]
    assert critical_path(tasks, {}) == []
