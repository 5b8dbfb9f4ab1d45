"""A task's worker affinity in the catalog (decision 78): `requires`, `prefers` (values
may be templates over the parameters) and `prefer_wait_seconds`, checked at load with
file and line, rendered at plan time, shown by describe; and the rule itself."""

from __future__ import annotations

import pytest

from scenarist.core.affinity import Affinity
from scenarist.core.catalog import parse_catalog
from scenarist.core.errors import CatalogError, RenderError

CATALOG = """\
services: [text-service, image-service]
Draw:
  params:
    model: {type: string, default: sdxl}
    count: {type: integer, default: 2}
  tasks:
    - id: prompt
      service: text-service
    - id: image
      service: image-service
      depends_on: [prompt]
      count: "{{ count }}"
      requires: {gpu: a100, vram: 80}
      prefers: {model: "{{ model }}"}
      prefer_wait_seconds: 0.5
    - id: upscale
      service: image-service
      depends_on: [image]
      prefers: {model: esrgan}
"""


def test_affinity_loads_renders_per_scenario_and_is_described() -> None:
    catalog = parse_catalog(CATALOG, "ok.yml")
    tasks = {t.name: t for t in catalog.plan("Draw", {"model": "flux"}).tasks}
    wanted = Affinity(
        requires={"gpu": "a100", "vram": "80"}, prefers={"model": "flux"}, prefer_wait=0.5
    )
    assert tasks["image_1"].affinity == tasks["image_2"].affinity == wanted
    assert tasks["upscale"].affinity == Affinity(requires={}, prefers={"model": "esrgan"})
    assert tasks["prompt"].affinity is None
    described = {t["id"]: t for t in catalog.get("Draw").describe()["tasks"]}
    assert described["image"]["prefers"] == {"model": "{{ model }}"}
    assert described["image"]["prefer_wait_seconds"] == 0.5
    assert catalog.prefer_waits == {"image-service": 0.5}


def test_a_label_rendering_to_a_mapping_is_refused_at_plan_time() -> None:
    catalog = parse_catalog(CATALOG.replace('"{{ model }}"', '"{{ {} }}"'), "ok.yml")
    with pytest.raises(RenderError, match=r"prefers\.model"):
        catalog.plan("Draw", {})


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("      requires: a100\n", "'requires' must be a non-empty mapping"),
        ("      requires: {}\n", "'requires' must be a non-empty mapping"),
        ("      requires: {'bad name': x}\n", "label name 'bad name'"),
        ("      prefers: {model: [a]}\n", "prefers.model: must be text or a template"),
        ("      prefers: {model: '{{ m'}\n", "prefers.model: template syntax"),
        ("      prefer_wait_seconds: 1\n", "'prefer_wait_seconds' needs 'prefers'"),
        (
            "      prefers: {m: x}\n      prefer_wait_seconds: -1\n",
            "must be a number of seconds >= 0",
        ),
        (
            "      prefers: {m: x}\n      prefer_wait_seconds: soon\n",
            "must be a number of seconds >= 0",
        ),
    ],
)
def test_bad_affinity_names_the_task_and_line(extra: str, message: str) -> None:
    text = "Jobs:\n  tasks:\n    - id: job\n      service: svc\n" + extra
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "bad.yml")
    [error] = [str(e) for e in caught.value.errors]
    assert message in error, error
    assert "bad.yml:" in error, error
    assert "job" in error, error


def test_the_rule_requires_every_label_and_prefers_until_the_wait_ran_out() -> None:
    both = Affinity(requires={"gpu": "a100"}, prefers={"model": "sdxl"}, prefer_wait=2.0)
    assert not both.admits({}, ready_at=0.0, now=100.0)
    assert not both.admits({"gpu": "t4", "model": "sdxl"}, ready_at=0.0, now=0.0)
    assert both.admits({"gpu": "a100", "model": "sdxl"}, ready_at=0.0, now=0.0)
    assert not both.admits({"gpu": "a100"}, ready_at=10.0, now=11.99)
    assert both.admits({"gpu": "a100"}, ready_at=10.0, now=12.0)
    assert Affinity.from_json(both.to_json()) == both
