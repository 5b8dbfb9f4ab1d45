"""The farm benchmark: its bounds and metrics on hand-made records, and one tiny run of
scenarist on the farm end to end (structure and completion only, no timing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.farm.caps import max_overlap, steady_rate
from benchmarks.farm.lanes import LanePlan, lanes_table, late_time_to_video, run_plans
from benchmarks.farm.metrics import measure, summarise
from benchmarks.farm.spec import (
    SERVICES,
    critical_path_seconds,
    flow_bound_seconds,
    kind,
    makespan_lower_bound,
    service_of,
)
from benchmarks.farm_bench import main
from benchmarks.harness.records import ExecutionRecord
from benchmarks.harness.workload import Workload

MS = 1_000_000


def test_tasks_map_to_their_pools_and_durations() -> None:
    assert kind("slide_image_12") == "slide_image"
    assert kind("video") == "video"
    assert [service_of(n) for n in ("script", "slide_prompt_1", "voice", "slide_image_2")] == [
        "text-service", "text-service", "audio-service", "image-service",
    ]  # fmt: skip


def test_the_lower_bound_is_the_busiest_pool_and_the_critical_path() -> None:
    parents = Workload(scenarios=1, slides=3).parents_of()
    # script 30, then the slower of voice (60) and prompt + image (15 + 80), then video 120
    assert critical_path_seconds(parents, 1.0) == pytest.approx(0.245)
    # Ten scenarios: image 10 x 3 x 80 ms on 2 slots = 1.2 s; video 10 x 120 ms on 1 = 1.2 s
    pool, critical = makespan_lower_bound(parents, 10, 1.0)
    assert (pool, critical) == (pytest.approx(1.2), pytest.approx(0.245))
    assert makespan_lower_bound(parents, 10, 0.5)[0] == pytest.approx(0.6)


def test_the_flow_bound_adds_each_pools_head_and_tail() -> None:
    parents = Workload(scenarios=1, slides=3).parents_of()
    # Image: no image starts before script + prompt (45 ms), 1.2 s of work on 2 slots,
    # and the last image is followed by a video (120 ms): 1.365 s. Video: its first input
    # is ready after script + prompt + image (125 ms), then 1.2 s on 1 slot: 1.325 s.
    assert flow_bound_seconds(parents, 10, 1.0) == pytest.approx(1.365)
    # One scenario: its three images on two slots already outlast the critical path
    # (245 ms): 45 ms + 120 ms + 120 ms.
    assert flow_bound_seconds(parents, 1, 1.0) == pytest.approx(0.285)


def test_measure_reads_time_to_video_and_utilisation_from_the_records() -> None:
    workload = Workload(scenarios=2, slides=1)
    submitted = {"s1": 0, "s2": 0}
    records = []
    for offset, sid in ((0, "s1"), (200, "s2")):  # s2 runs 200 ms after s1, serially
        at = offset
        for name, ms in (("script", 30), ("voice", 60), ("slide_prompt_1", 15),
                         ("slide_image_1", 80), ("video", 100)):  # fmt: skip
            records.append(ExecutionRecord(name, sid, at * MS, (at + ms) * MS))
            at += ms if name != "voice" else 0  # voice beside the prompt
    run = measure("x", 1, workload=workload, scale=1.0, submitted=submitted, records=records)
    assert run.makespan_s == pytest.approx(0.425)
    assert (run.first_video_s, run.ttv_mean_s) == (pytest.approx(0.225), pytest.approx(0.325))
    assert run.utilisation["video-service"] == pytest.approx(0.2 / 0.425)
    assert run.utilisation["text-service"] == pytest.approx(0.09 / (2 * 0.425))
    summary = summarise("x", [run, run])
    assert (summary.runs, summary.ttv_mean.median) == (2, pytest.approx(0.325))
    assert set(summary.utilisation) == set(SERVICES)


@pytest.mark.redis
def test_a_tiny_farm_run_of_scenarist_finishes_every_scenario(tmp_path: Path) -> None:
    argv = ["--systems", "scenarist", "--sections", "farm", "--scenarios", "2", "--slides", "1"]
    argv += ["--scale", "0.05"]
    argv += ["--repeat", "1", "--timeout", "60", "--results-dir", str(tmp_path)]
    assert main(argv) == 0
    [report_file] = tmp_path.glob("farm-*.json")
    report = json.loads(report_file.read_text())
    assert report["options"]["workload"] == {"scenarios": 2, "slides": 1}
    [run] = report["farm"]
    assert run["system"] == "scenarist"
    assert "error" not in run  # verified: every task of every scenario ran once, in order
    assert run["first_video_s"] <= run["ttv_mean_s"] <= run["ttv_p95_s"] <= run["makespan_s"]
    assert run["bound_s"] == max(run["pool_bound_s"], run["critical_path_s"]) > 0
    assert set(run["utilisation"]) == set(SERVICES)
    assert all(0 < used <= 1 for used in run["utilisation"].values())


def test_max_overlap_counts_intervals_open_at_once_and_touching_ones_apart() -> None:
    assert max_overlap([]) == 0
    assert max_overlap([(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]) == 1  # end and start in one step
    assert max_overlap(iter([(0.0, 3.0), (1.0, 2.0), (1.5, 4.0), (3.5, 5.0)])) == 3


def test_steady_rate_leaves_out_the_burst_and_gaps_without_a_waiting_task() -> None:
    # Ten ready at 0: two leases spend the full bucket at 0, then one every 0.1 s.
    leases = [0.0, 0.0, *(0.1 * k for k in range(1, 9))]
    assert steady_rate(leases, [0.0] * 10, burst=2) == pytest.approx(10.0)
    # The last task became ready late: the idle gap before its lease is not the limiter's.
    late = [0.0] * 9 + [5.0]
    assert steady_rate([*leases[:9], 5.0], late, burst=2) == pytest.approx(10.0)
    assert steady_rate([0.0, 0.5], [0.0, 0.0], burst=2) is None


@pytest.mark.redis
def test_a_tiny_caps_run_never_leases_past_the_cap(tmp_path: Path) -> None:
    argv = ["--systems", "scenarist", "--sections", "caps", "--caps-scenarios", "6"]
    argv += ["--slides", "2", "--scale", "0.05", "--repeat", "1", "--timeout", "60"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    [report_file] = tmp_path.glob("farm-*.json")
    report = json.loads(report_file.read_text())
    assert "farm" not in report
    [run] = report["caps"]
    assert "error" not in run  # verified: every task of every scenario ran once, in order
    assert (run["cap_service"], run["cap"], run["cap_slots"]) == ("image-service", 2, 4)
    assert run["queue_samples"] > 0
    # The invariant the store keeps, whatever the timing: never more processing than the cap.
    for seen in ("in_flight_max_server", "in_flight_max_worker", "in_flight_max_sampled"):
        assert 0 <= run[seen] <= run["cap"], seen
    assert run["in_flight_max_server"] >= 1
    assert run["leases"] == 6  # one voice per scenario, each leased once
    assert run["steady_rate"] is None or run["steady_rate"] > 0


def test_the_late_scenarios_time_to_video_and_the_lanes_table() -> None:
    workload = Workload(scenarios=3, slides=1)
    early, _, late = workload.scenario_ids()
    submitted = {early: 0, late: 100 * MS}
    records = [
        ExecutionRecord("video", early, 50 * MS, 400 * MS),
        ExecutionRecord("video", late, 300 * MS, 350 * MS),
    ]
    assert late_time_to_video(workload, submitted, records) == pytest.approx(0.25)
    table = lanes_table([{"alone": 0.2, "lanes": 0.25, "no lanes": 1.0}])
    assert "| lanes | 0.25 s | 1.25 x |" in table
    assert "| no lanes | 1.00 s | 5.00 x |" in table
    assert LanePlan.from_env() is None
    plans = run_plans(flood=8, scale=1.0)
    assert plans["lanes"] == (LanePlan("batch", "interactive", pytest.approx(0.24)), 9)


@pytest.mark.redis
def test_a_tiny_lanes_run_measures_the_late_scenario_in_every_kind_of_run(
    tmp_path: Path,
) -> None:
    argv = ["--systems", "scenarist", "--sections", "lanes", "--lanes-flood", "3"]
    argv += ["--slides", "1", "--scale", "0.05", "--repeat", "1", "--timeout", "60"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    [report_file] = tmp_path.glob("farm-*.json")
    [row] = json.loads(report_file.read_text())["lanes"]
    assert set(row) == {"alone", "lanes", "no lanes"}  # verified runs, none failed
    assert all(seconds > 0 for seconds in row.values())
