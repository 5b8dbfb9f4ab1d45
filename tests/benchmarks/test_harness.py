"""Fast unit tests of the benchmark harness; no peer system needs to be installed."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from benchmarks.harness.metrics import percentile, timing_metrics
from benchmarks.harness.records import (
    ExecutionRecord,
    RecordCounter,
    count_ready_workers,
    count_records,
    mark_worker_ready,
    read_records,
    run_noop_task,
)
from benchmarks.harness.redis_proc import RedisProcess, parse_info
from benchmarks.harness.rss import tree_cpu_seconds, tree_rss_bytes
from benchmarks.harness.schema import RunResult, summarise
from benchmarks.harness.system import RunContext, System
from benchmarks.harness.table import failure_notes, markdown_table
from benchmarks.harness.verify import verify_run
from benchmarks.harness.workload import Workload
from benchmarks.run_all import Options, run_once

MS = 1_000_000
SUBMIT_NS = 1_000 * MS
TASK_NS = 2 * MS


def _depth(name: str, parents_of: dict[str, tuple[str, ...]]) -> int:
    return 0 if not parents_of[name] else 1 + max(_depth(p, parents_of) for p in parents_of[name])


def valid_run(workload: Workload) -> tuple[dict[str, int], list[ExecutionRecord]]:
    """Each task starts 1 ms after its deepest parent ended and runs 2 ms."""
    parents_of = workload.parents_of()
    submitted = dict.fromkeys(workload.scenario_ids(), SUBMIT_NS)
    records = []
    for sid in workload.scenario_ids():
        for name in parents_of:
            start = SUBMIT_NS + MS + _depth(name, parents_of) * (TASK_NS + MS)
            records.append(ExecutionRecord(name, sid, start, start + TASK_NS))
    return submitted, records


def test_workload_has_createvideo_shape() -> None:
    workload = Workload(scenarios=3, slides=2)
    parents = workload.parents_of()

    assert workload.total_tasks == 3 * 7 == len(parents) * 3
    assert parents["slide_image_2"] == ("slide_prompt_2",)
    assert parents["video"] == ("voice", "slide_image_1", "slide_image_2")
    assert workload.scenario_ids() == ["s1", "s2", "s3"]


def test_verification_accepts_a_complete_ordered_run() -> None:
    workload = Workload(scenarios=4, slides=3)
    submitted, records = valid_run(workload)

    assert verify_run(workload, submitted, records).ok


def test_verification_catches_a_missing_task() -> None:
    workload = Workload(scenarios=2, slides=3)
    submitted, records = valid_run(workload)
    records = [r for r in records if not (r.scenario_id == "s2" and r.name == "slide_image_3")]

    verification = verify_run(workload, submitted, records)

    assert not verification.ok
    assert "s2/slide_image_3: ran 0 times, expected once" in verification.problems


def test_verification_catches_a_child_started_before_its_parent_ended() -> None:
    workload = Workload(scenarios=2, slides=3)
    submitted, records = valid_run(workload)
    prompt_end = next(
        r.end_ns for r in records if (r.scenario_id, r.name) == ("s1", "slide_prompt_2")
    )
    records = [
        replace(r, start_ns=prompt_end - MS)
        if (r.scenario_id, r.name) == ("s1", "slide_image_2")
        else r
        for r in records
    ]

    verification = verify_run(workload, submitted, records)

    assert not verification.ok
    assert verification.problems == (
        "s1/slide_image_2: started before its parent slide_prompt_2 ended",
    )


def test_verification_catches_a_duplicate_and_an_unsubmitted_scenario() -> None:
    workload = Workload(scenarios=2, slides=1)
    submitted, records = valid_run(workload)
    del submitted["s2"]
    records.append(records[0])

    problems = verify_run(workload, submitted, records).problems

    assert "s2: never submitted" in problems
    assert f"s1/{records[0].name}: ran 2 times, expected once" in problems


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_timing_metrics_measure_dispatch_from_the_last_parent() -> None:
    workload = Workload(scenarios=2, slides=2)
    submitted, records = valid_run(workload)

    timing = timing_metrics(workload, submitted, records)

    # Depth 3 (video) ends at submit + 1 + 3 * 3 + 2 ms.
    assert timing.makespan_p50_ms == timing.makespan_p99_ms == 12.0
    assert timing.dispatch_p50_ms == timing.dispatch_p99_ms == 1.0
    assert timing.tasks == workload.total_tasks
    assert timing.tasks_per_s == pytest.approx(workload.total_tasks / 0.012)


def test_records_round_trip_through_per_process_files(tmp_path: Path) -> None:
    run_noop_task("script", "s1", tmp_path)
    run_noop_task("voice", "s1", tmp_path)
    mark_worker_ready(tmp_path)

    records = read_records(tmp_path)

    assert [(r.name, r.scenario_id) for r in records] == [("script", "s1"), ("voice", "s1")]
    assert all(r.start_ns <= r.end_ns for r in records)
    assert count_records(tmp_path) == 2
    assert count_ready_workers(tmp_path) == 1


def test_record_counter_reads_only_what_was_added(tmp_path: Path) -> None:
    counter = RecordCounter(tmp_path)
    assert counter.count() == 0
    run_noop_task("script", "s1", tmp_path)
    assert counter.count() == 1
    (tmp_path / "exec-1.log").write_bytes(b"voice\ts1\t1\t2\nvideo\ts1")  # a line half written
    assert counter.count() == 2
    with (tmp_path / "exec-1.log").open("ab") as file:
        file.write(b"\t3\t4\n")
    assert counter.count() == 3
    assert counter.count() == count_records(tmp_path) == 3


def _run(system: str, repetition: int, tasks_per_s: float | None) -> RunResult:
    workload = Workload(scenarios=1, slides=1)
    submitted, records = valid_run(workload)
    timing = timing_metrics(workload, submitted, records)
    if tasks_per_s is None:
        return RunResult(system, repetition, False, None, None, None, ("s1/video: x",), 1)
    timing = replace(timing, tasks_per_s=tasks_per_s)
    return RunResult(system, repetition, True, timing, 50, 2, cpu_ms_per_scenario=tasks_per_s / 100)


def test_table_shows_medians_for_verified_systems_and_no_numbers_for_failed_ones() -> None:
    good = summarise("celery", [_run("celery", 1, 900.0), _run("celery", 2, 1100.0)])
    broken = summarise("rq", [_run("rq", 1, 500.0), _run("rq", 2, None)])

    table = markdown_table([good, broken]).splitlines()

    assert table[0].startswith("| system | tasks/s | makespan p50 ms")
    assert table[2].startswith("| celery | 1,000 | ")
    assert table[2].endswith("| 50.0 | 2.0 | 10.00 | yes (2/2) |")
    assert table[3] == "| rq | — | — | — | — | — | — | — | — | FAILED (1/2 ok) |"
    assert failure_notes([good, broken]) == "- rq: run 2: s1/video: x"


def test_table_adds_a_ratio_column_against_the_baseline() -> None:
    fast = summarise("fast", [_run("fast", 1, 3000.0)])
    slow = summarise("slow", [_run("slow", 1, 1000.0)])

    table = markdown_table([fast, slow], baseline="fast").splitlines()

    assert table[0].endswith("| fast/system tasks/s |")
    assert table[2].endswith("| 1.00x |")
    assert table[3].endswith("| 3.00x |")


def test_parse_info_reads_a_bulk_reply() -> None:
    body = b"# Memory\r\nused_memory:1024\r\nused_memory_human:1.00K\r\n"
    reply = b"$" + str(len(body)).encode() + b"\r\n" + body + b"\r\n"

    assert parse_info(reply)["used_memory"] == "1024"


@pytest.mark.redis
def test_redis_process_reports_memory_and_stops(tmp_path: Path) -> None:
    redis = RedisProcess(tmp_path / "redis").start()
    try:
        assert redis.used_memory_bytes() > 0
        assert tree_rss_bytes([redis.pid]) > 0
    finally:
        redis.stop()
    assert redis.managed is not None
    assert not redis.managed.is_running()


def test_tree_rss_counts_this_process() -> None:
    assert tree_rss_bytes([os.getpid()]) > 1024 * 1024


def test_tree_cpu_grows_with_work_done_in_the_tree() -> None:
    before = tree_cpu_seconds([os.getpid()])
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert tree_cpu_seconds([os.getpid()]) - before >= 0.03
    assert tree_cpu_seconds([2**22 + 12345]) == 0.0  # no such process: counts nothing


class InProcessSystem(System):
    """Runs the workload synchronously inside submit_all, optionally in a wrong order."""

    name = "in-process"

    def __init__(self, reverse_order: bool = False) -> None:
        self.reverse_order = reverse_order

    def setup(self) -> None:
        return None

    def start_workers(self, ctx: RunContext) -> None:
        mark_worker_ready(ctx.records_dir)

    def submit_all(self, ctx: RunContext) -> dict[str, int]:
        submitted = {}
        order = list(ctx.workload.parents_of())  # already topological
        if self.reverse_order:
            order.reverse()
        for sid in ctx.workload.scenario_ids():
            submitted[sid] = time.time_ns()
            for name in order:
                run_noop_task(name, sid, ctx.records_dir)
        return submitted

    def monitored_pids(self) -> list[int]:
        return [os.getpid()]

    def stop(self) -> None:
        return None


def _options() -> Options:
    return Options(
        systems=("in-process",),
        workload=Workload(scenarios=5, slides=2),
        workers=1,
        concurrency=1,
        repeat=1,
        timeout_s=10.0,
        baseline=None,
        submitter="sdk",
        peer_submitter="one",
    )


@pytest.mark.redis
def test_run_once_measures_a_correct_system(tmp_path: Path) -> None:
    result = run_once(InProcessSystem(), _options(), 1, tmp_path)

    assert result.verified, result.problems or result.error
    assert result.timing is not None
    assert result.timing.tasks == 35
    assert result.peak_rss_mb is not None
    assert result.peak_rss_mb > 1
    assert result.redis_mb is not None
    assert result.redis_mb > 0
    assert result.cpu_ms_per_scenario is not None
    assert result.cpu_ms_per_scenario >= 0


@pytest.mark.redis
def test_run_once_reports_a_wrongly_ordered_system_without_numbers(tmp_path: Path) -> None:
    result = run_once(InProcessSystem(reverse_order=True), _options(), 1, tmp_path)

    assert not result.verified
    assert result.timing is None
    assert "s1/voice: started before its parent script ended" in result.problems
