"""Progress counting and the scenario status derived from it."""

from __future__ import annotations

from scenarist.core.lifecycle import count_progress, derive_scenario_status
from scenarist.core.model import ScenarioStatus, TaskStatus


def test_progress_counts_every_status_per_service_zero_filled() -> None:
    progress = count_progress(
        [
            ("text", TaskStatus.QUEUED),
            ("image", TaskStatus.PENDING),
            ("image", TaskStatus.PENDING),
            ("text", TaskStatus.SUCCESS),
        ]
    )
    assert progress.total == 4
    assert set(progress.by_status) == set(TaskStatus)
    assert progress.by_status[TaskStatus.PENDING] == 2
    assert progress.by_status[TaskStatus.FAILED] == 0
    zeros: dict[str, int] = dict.fromkeys(TaskStatus, 0)
    assert progress.by_service["image"] == {**zeros, "pending": 2}
    assert progress.by_service["text"] == {**zeros, "queued": 1, "success": 1}


def test_progress_counters_are_never_shared() -> None:
    first = count_progress([("a", TaskStatus.QUEUED), ("b", TaskStatus.QUEUED)])
    second = count_progress([])
    assert first.by_service["a"] is not first.by_service["b"]
    assert first.by_status is not second.by_status
    assert second.by_status == dict.fromkeys(TaskStatus, 0)
    assert count_progress([("a", TaskStatus.FAILED)]).by_service["a"][TaskStatus.QUEUED] == 0


def test_status_follows_progress() -> None:
    running = count_progress([("a", TaskStatus.SUCCESS), ("a", TaskStatus.QUEUED)])
    done = count_progress([("a", TaskStatus.SUCCESS), ("a", TaskStatus.FAILED)])
    assert derive_scenario_status(running, started=True, cancelled=False) is ScenarioStatus.RUNNING
    assert derive_scenario_status(running, started=False, cancelled=False) is (
        ScenarioStatus.PENDING
    )
    assert derive_scenario_status(done, started=True, cancelled=False) is ScenarioStatus.FAILED
    assert derive_scenario_status(done, started=True, cancelled=True) is ScenarioStatus.CANCELLED
