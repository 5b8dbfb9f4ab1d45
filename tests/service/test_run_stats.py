"""The ETA's inputs: a weighted mean run time per service, the most tasks seen running at
once over a window (the worker slots), and the scenario's own run times as a fallback."""

from __future__ import annotations

from dataclasses import replace

from scenarist.core.eta import ServiceLoad
from scenarist.core.model import QueueStats, TaskStatus
from scenarist.service.run_stats import RunStats
from tests.core.test_durations import task


def test_the_run_time_is_a_weighted_mean_that_follows_a_change() -> None:
    stats = RunStats(weight=0.5)
    assert stats.run_seconds("svc") is None
    stats.observe_run("svc", 10.0)
    stats.observe_run("svc", 20.0)
    assert stats.run_seconds("svc") == 15.0


def test_workers_are_the_most_seen_running_within_the_window() -> None:
    stats = RunStats(window=60.0)
    assert stats.workers("svc", now=0.0) == 1  # nothing seen: one slot, never zero
    stats.observe_in_flight("svc", 4, now=0.0)
    stats.observe_in_flight("svc", 2, now=30.0)
    assert stats.workers("svc", now=50.0) == 4
    assert stats.workers("svc", now=70.0) == 2  # the peak left the window
    assert stats.workers("svc", now=100.0) == 1


def test_loads_count_other_scenarios_and_fall_back_to_own_run_times() -> None:
    stats = RunStats()
    done = replace(task("a"), status=TaskStatus.SUCCESS, started_at=1000.0, finished_at=1003.0)
    mine = [done, replace(task("b", "a"), status=TaskStatus.QUEUED)]
    queues = [QueueStats("svc", ready=5, delayed=1, in_flight=3, oldest_ready_age=1.0)]
    loads = stats.loads(mine, queues, now=2000.0)
    assert loads == {
        "svc": ServiceLoad(run_seconds=3.0, workers=3, ready_others=5, running_others=3)
    }
    stats.observe_run("svc", 7.0)
    assert stats.loads(mine, queues, now=2000.0)["svc"].run_seconds == 7.0
    assert stats.loads([replace(task("x"), service="new")], [], now=2000.0) == {}
