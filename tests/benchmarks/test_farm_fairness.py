"""The farm's fairness section (benchmarks/farm/fairness.py): its plans, the late
scenarios' p95, its table and catalog, and one tiny run of every kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from benchmarks.farm.fairness import (
    LATE,
    TenantPlan,
    fairness_table,
    late_p95,
    run_plans,
    write_catalog,
)
from benchmarks.farm_bench import main
from benchmarks.harness.records import ExecutionRecord
from benchmarks.harness.workload import Workload

from scenarist.core.catalog import load_catalog

MS = 1_000_000


def test_the_late_scenarios_p95_and_the_table() -> None:
    workload = Workload(scenarios=LATE + 2, slides=1)
    ids = workload.scenario_ids()
    late = ids[-LATE:]
    submitted = dict.fromkeys(ids, 0)
    records = [ExecutionRecord("video", i, 0, (k + 1) * 100 * MS) for k, i in enumerate(late)]
    records.append(ExecutionRecord("video", ids[0], 0, 9000 * MS))  # the flood's: not counted
    assert late_p95(workload, submitted, records) == pytest.approx(0.5)  # nearest rank of 5
    with pytest.raises(RuntimeError, match="4 of 5 late videos"):
        late_p95(workload, submitted, records[1:])
    table = fairness_table([{"alone": 0.5, "tenants": 0.8, "no tenants": 2.5}])
    assert "| tenants | 0.80 s | 1.60 x |" in table
    assert "| no tenants | 2.50 s | 5.00 x |" in table


def test_the_plans_and_the_catalogs(tmp_path: Path) -> None:
    plans = run_plans(flood=8, scale=1.0)
    assert plans["alone"] == (TenantPlan("a", "b", LATE, 0.0), LATE, True)
    assert plans["tenants"] == (TenantPlan("a", "b", LATE, pytest.approx(0.24)), 8 + LATE, True)
    assert plans["no tenants"][0].flood is None
    assert TenantPlan.from_env() is None
    with_tenants = load_catalog(write_catalog(tmp_path / "a.yml", tenants=True))
    assert set(with_tenants.tenants) == {"a", "b"}
    without = write_catalog(tmp_path / "b.yml", tenants=False)
    assert "tenants" not in yaml.safe_load(without.read_text())


@pytest.mark.redis
def test_a_tiny_fairness_run_measures_every_kind_of_run(tmp_path: Path) -> None:
    argv = ["--systems", "scenarist", "--sections", "fairness", "--fairness-flood", "3"]
    argv += ["--slides", "1", "--scale", "0.05", "--repeat", "1", "--timeout", "60"]
    assert main([*argv, "--results-dir", str(tmp_path)]) == 0
    [report_file] = tmp_path.glob("farm-*.json")
    [row] = json.loads(report_file.read_text())["fairness"]
    assert set(row) == {"alone", "tenants", "no tenants"}  # verified runs, none failed
    assert all(seconds > 0 for seconds in row.values())
