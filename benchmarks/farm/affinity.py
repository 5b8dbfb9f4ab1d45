"""The farm's affinity section: warm-model routing on the image pool (decision 78).

Each scenario names one of MODELS models (round-robin by its index, the `model`
parameter); the image pool is IMAGE_WORKERS SDK workers of one slot each, each keeping a
loaded model (benchmarks/farm/affinity_worker.py). An image task whose model is not the
loaded one costs a simulated load of LOAD_MS (x --scale, like every other duration), after
which the worker sets its label `model` to the new one. Worker k starts with model k
loaded (label set from the first lease), in both runs.

Two runs per repetition, scenarist alone, the same workload:
- `affinity`: the catalog's CreateVideo has `prefers: {model: "{{ model }}"}` on
  slide_image (and the default `prefer_wait_seconds`, 2 s);
- `no affinity`: the same template without `prefers`.

How warm and cold leases are counted: the image worker appends one JSON line per task it
runs (worker, model, loaded before, warm) to a file in the run directory (LOADS_FILE);
the section reads them after the run has been verified.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from benchmarks.farm.spec import IMAGE
from benchmarks.harness.system import BULK_SIZE
from benchmarks.harness.workload import Workload

import scenarist

AFFINITY_ENV = "BENCH_FARM_AFFINITY"  # JSON AffinityPlan: models, image workers, the log
MODELS, IMAGE_WORKERS, LOAD_MS = 3, 3, 500.0
LOADS_FILE = "image-loads.jsonl"
RUNS = ("affinity", "no affinity")
TEMPLATE = "CreateVideo"


@dataclass(frozen=True)
class AffinityPlan:
    models: int
    workers: int
    load_s: float  # already scaled
    log: str  # the JSON-lines file every image worker appends to

    def to_env(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_env(cls) -> AffinityPlan | None:
        raw = os.environ.get(AFFINITY_ENV)
        return None if raw is None else cls(**json.loads(raw))


def model_of(index: int, models: int) -> str:
    """The model of the scenario at 0-based `index`: m1, m2, ..., round-robin."""
    return f"m{index % models + 1}"


def run_order(repetition: int) -> tuple[str, ...]:
    """The two runs, their order swapped every other repetition (decision 52)."""
    return RUNS if repetition % 2 else RUNS[::-1]


def write_catalog(path: Path, *, prefers: bool) -> Path:
    """The packaged CreateVideo with a `model` parameter that the image task's payload
    carries, and with `prefers: {model: ...}` on the image task when `prefers`."""
    packaged = Path(scenarist.__file__).parent / "scenarios.yml"
    template = yaml.safe_load(packaged.read_text())[TEMPLATE]
    template["params"]["model"] = {"type": "string", "required": True, "min_length": 1}
    [image] = [t for t in template["tasks"] if t["service"] == IMAGE]
    image["payload"]["model"] = "{{ model }}"
    if prefers:
        image["prefers"] = {"model": "{{ model }}"}
    catalog = {"services": ["text-service", "audio-service", IMAGE, "video-service"]}
    path.write_text(yaml.safe_dump({**catalog, TEMPLATE: template}, sort_keys=False))
    return path


def run_env(run_dir: Path, *, prefers: bool, scale: float) -> dict[str, str]:
    """The settings of one run, for every process of it (server, workers, submitter)."""
    plan = AffinityPlan(MODELS, IMAGE_WORKERS, LOAD_MS * scale / 1000.0, str(run_dir / LOADS_FILE))
    catalog = write_catalog(run_dir / "catalog.yml", prefers=prefers)
    return {"SCENARIST_SCENARIOS": str(catalog), AFFINITY_ENV: plan.to_env()}


async def submit_with_models(url: str, workload: Workload, models: int) -> dict[str, int]:
    """Every scenario at once (POST /generate/batch), each with its `model`."""
    from benchmarks.systems.scenarist_submitters import batches, params

    from scenarist.worker.client import AsyncScenaristClient, SubmitItem

    ids = workload.scenario_ids()
    model = {sid: model_of(i, models) for i, sid in enumerate(ids)}
    submitted: dict[str, int] = {}
    async with AsyncScenaristClient(url, max_connections=1) as client:
        for batch in batches(ids, BULK_SIZE):
            submitted.update(dict.fromkeys(batch, time.time_ns()))
            items = [SubmitItem(TEMPLATE, {**params(i, workload.slides), "model": model[i]})
                     for i in batch]  # fmt: skip
            refused = [o for o in await client.submit_many(items) if o["status"] != 201]
            if refused:
                raise RuntimeError(f"bulk submission refused: {refused[:3]}")
    return submitted


def read_loads(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def count_loads(loads: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Image leases, warm ones (the model already loaded), cold loads, the warm share."""
    warm = sum(1 for load in loads if load["warm"])
    leases = len(loads)
    return {
        "image_leases": leases,
        "warm": warm,
        "cold": leases - warm,
        "warm_share": warm / leases if leases else 0.0,
        "by_worker": {w: sum(1 for x in loads if x["worker"] == w)
                      for w in sorted({x["worker"] for x in loads})},
    }  # fmt: skip


def shown(values: Sequence[float], unit: str, digits: int = 2) -> str:
    """The median, with (min-max) over the repetitions when there are several."""
    median = statistics.median(values)
    if len(values) == 1 or min(values) == max(values):
        return f"{median:.{digits}f}{unit}"
    return f"{median:.{digits}f}{unit} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def affinity_table(rows: Sequence[Mapping[str, Mapping[str, Any]]]) -> str:
    """Markdown, one line per run kind: medians (min-max) over the repetitions; cold
    loads avoided is, per repetition, the no-affinity run's cold loads minus this run's."""
    lines = [
        "| run | warm share of image leases | cold loads | cold loads avoided "
        "| makespan | mean time to video |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in RUNS:
        runs = [row for row in rows if name in row]
        if not runs:
            continue
        avoided = [row["no affinity"]["cold"] - row[name]["cold"] for row in runs
                   if "no affinity" in row and name != "no affinity"]  # fmt: skip
        lines.append(
            f"| {name} | {shown([100 * r[name]['warm_share'] for r in runs], '%', 0)} "
            f"| {shown([r[name]['cold'] for r in runs], '', 0)} "
            f"| {shown(avoided, '', 0) if avoided else '-'} "
            f"| {shown([r[name]['makespan_s'] for r in runs], ' s')} "
            f"| {shown([r[name]['ttv_mean_s'] for r in runs], ' s')} |"
        )
    return "\n".join(lines)
