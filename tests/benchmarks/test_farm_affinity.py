"""The farm's affinity section: its catalog, the round-robin models, the warm/cold counts
and the table on hand-made lines, and one tiny run end to end (completion only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks.farm.affinity import (
    RUNS,
    affinity_table,
    count_loads,
    model_of,
    read_loads,
    run_order,
    write_catalog,
)
from benchmarks.farm_bench import main

from scenarist.core.affinity import Affinity
from scenarist.core.catalog import load_catalog


def test_models_go_round_robin_and_the_run_order_alternates() -> None:
    assert [model_of(i, 3) for i in range(5)] == ["m1", "m2", "m3", "m1", "m2"]
    assert run_order(1) == RUNS
    assert run_order(2) == tuple(reversed(RUNS))


@pytest.mark.parametrize("prefers", [True, False])
def test_only_the_image_task_prefers_its_model(tmp_path: Path, prefers: bool) -> None:
    catalog = load_catalog(write_catalog(tmp_path / "catalog.yml", prefers=prefers))
    params = {"description": "s1", "slides_count": 2, "model": "m2"}
    tasks = {t.name: t for t in catalog.plan("CreateVideo", params).tasks}
    assert set(tasks) == {"script", "voice", "slide_prompt_1", "slide_prompt_2",
                          "slide_image_1", "slide_image_2", "video"}  # fmt: skip
    wanted = Affinity(requires={}, prefers={"model": "m2"}) if prefers else None
    assert tasks["slide_image_1"].affinity == tasks["slide_image_2"].affinity == wanted
    assert tasks["slide_image_1"].payload["model"] == "m2"
    assert all(tasks[n].affinity is None for n in ("script", "voice", "video"))


def test_warm_and_cold_leases_are_counted_from_the_workers_lines(tmp_path: Path) -> None:
    lines = [
        {"worker": "w1", "model": "m1", "before": "m1", "warm": True},
        {"worker": "w1", "model": "m2", "before": "m1", "warm": False},
        {"worker": "w2", "model": "m2", "before": "m2", "warm": True},
        {"worker": "w2", "model": "m2", "before": "m2", "warm": True},
    ]
    path = tmp_path / "loads.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    counted = count_loads(read_loads(path))
    assert counted == {"image_leases": 4, "warm": 3, "cold": 1, "warm_share": 0.75,
                       "by_worker": {"w1": 2, "w2": 2}}  # fmt: skip
    assert read_loads(tmp_path / "missing.jsonl") == []


def test_the_table_shows_medians_and_cold_loads_avoided_per_repetition() -> None:
    def run(warm: int, cold: int, makespan: float) -> dict[str, float]:
        return {"warm_share": warm / (warm + cold), "cold": cold, "makespan_s": makespan,
                "ttv_mean_s": makespan / 2}  # fmt: skip

    rows = [
        {"affinity": run(9, 1, 1.0), "no affinity": run(2, 8, 3.0)},
        {"affinity": run(10, 0, 1.2), "no affinity": run(1, 9, 3.2)},
    ]
    table = affinity_table(rows)
    assert "| affinity | 95% (90-100) | 0 (0-1) | 8 (7-9) | 1.10 s (1.00-1.20) |" in table
    assert "| no affinity | 15% (10-20) | 8 (8-9) | - | 3.10 s (3.00-3.20) |" in table


@pytest.mark.redis
def test_a_tiny_affinity_run_counts_every_image_lease(tmp_path: Path) -> None:
    argv = ["--systems", "scenarist", "--sections", "affinity", "--affinity-scenarios", "3"]
    argv += ["--slides", "1", "--scale", "0.05", "--repeat", "1", "--timeout", "60"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    [report_file] = tmp_path.glob("farm-*.json")
    [row] = json.loads(report_file.read_text())["affinity"]
    assert set(row) == set(RUNS)  # verified runs, none failed
    for counted in row.values():
        assert counted["image_leases"] == 3  # one image per scenario, each leased once
        assert counted["warm"] + counted["cold"] == 3
        assert counted["makespan_s"] > 0
