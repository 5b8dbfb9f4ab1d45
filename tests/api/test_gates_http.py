"""Lease-time gates over HTTP, on SQLite and Redis: a capped service, a rate-limited one
and a concurrency key hold tasks back at lease time; `/queues`, `/metrics` and the
dashboard's queues page show in flight against the cap, the tokens left and the tasks
each gate holds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import make_settings, serve

# The bucket refills one token in 1000 s: nothing refills while the test runs.
CATALOG = """\
services:
  text-service: {}
  audio-service: {rate_limit: {per_second: 0.001, burst: 2}}
  image-service: {max_in_flight: 2}
Gated:
  params:
    voice: {type: string, default: warm}
  tasks:
    - id: image
      service: image-service
      count: 5
    - id: voice
      service: audio-service
      count: 4
    - id: line
      service: text-service
      count: 3
      concurrency: {key: "voice-{{ voice }}", limit: 1}
"""


@pytest.fixture
async def gated(store_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    catalog = tmp_path / "scenarios.yml"
    catalog.write_text(CATALOG)
    async with serve(make_settings(store_url, scenarios=catalog)) as client:
        yield client


async def lease(client: httpx.AsyncClient, service: str) -> list[dict[str, Any]]:
    r = await client.post(f"/queues/{service}/lease", json={"max_tasks": 10})
    assert r.status_code == 200, r.text
    tasks: list[dict[str, Any]] = r.json()["tasks"]
    return tasks


async def queues(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    body = (await client.get("/queues")).json()
    return {q["service"]: q for q in body["queues"]}


async def test_gates_hold_tasks_back_and_show_on_queues_metrics_and_dashboard(
    gated: httpx.AsyncClient,
) -> None:
    r = await gated.post("/generate", json={"scenario": "Gated", "params": {}})
    assert r.status_code == 201, r.text
    images = await lease(gated, "image-service")
    assert len(images) == 2
    assert len(await lease(gated, "audio-service")) == 2
    lines = await lease(gated, "text-service")
    assert [t["name"] for t in lines] == ["line_1"]  # one per key, the others stay queued

    stats = await queues(gated)
    image, audio, text = stats["image-service"], stats["audio-service"], stats["text-service"]
    assert (image["in_flight"], image["max_in_flight"], image["held_by_cap"]) == (2, 2, 3)
    assert (audio["ready"], audio["held_by_rate"]) == (2, 2)
    assert audio["tokens"] is not None
    assert audio["tokens"] < 1
    assert (text["ready"], text["held_by_key"], text["max_in_flight"]) == (2, 2, None)

    metrics = (await gated.get("/metrics")).text
    assert 'scenarist_queue_held{reason="cap",service="image-service"} 3.0' in metrics
    assert 'scenarist_queue_held{reason="rate",service="audio-service"} 2.0' in metrics
    assert 'scenarist_queue_held{reason="key",service="text-service"} 2.0' in metrics
    assert 'scenarist_service_max_in_flight{service="image-service"} 2.0' in metrics

    rows = (await gated.get("/ui/fragments/queues")).text
    image_row = rows[rows.index('data-service="image-service"') :].split("</tr>")[0]
    assert '<td class="in-flight">2 / 2</td>' in image_row

    # Ending an attempt gives its place back in the same step: the next lease takes one.
    done = await gated.post(
        f"/tasks/{images[0]['id']}/complete",
        json={"lease_token": images[0]["lease_token"], "result_ref": "out"},
    )
    assert done.status_code == 200, done.text
    assert len(await lease(gated, "image-service")) == 1
    failed = await gated.post(
        f"/tasks/{lines[0]['id']}/fail",
        json={"lease_token": lines[0]["lease_token"], "error": "x", "retryable": False},
    )
    assert failed.status_code == 200, failed.text
    assert [t["name"] for t in await lease(gated, "text-service")] == ["line_2"]


PACED = """\
services:
  text-service: {rate_limit: {per_second: 5, burst: 1}}
Paced:
  tasks:
    - {id: line, service: text-service, count: 2}
"""


async def test_a_long_poll_held_by_the_bucket_gets_the_next_token(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Tokens come back without a ready event: the long poll looks again at the next
    token (0.2 s here), not after the one-second re-check of an ungated wait."""
    catalog = tmp_path / "paced.yml"
    catalog.write_text(PACED)
    async with serve(make_settings(sqlite_url, scenarios=catalog)) as client:
        assert (await client.post("/generate", json={"scenario": "Paced"})).status_code == 201
        assert len(await lease(client, "text-service")) == 1
        started = time.monotonic()
        r = await client.post(
            "/queues/text-service/lease", json={"max_tasks": 1, "wait_seconds": 5}
        )
        waited = time.monotonic() - started
    assert len(r.json()["tasks"]) == 1
    assert waited < 0.9, waited


GROUPED = """\
Keyed:
  params:
    model: {type: string, default: sdxl}
  tasks:
    - id: outline
      service: text-service
    - id: shot
      service: image-service
      depends_on: [outline]
      for_each: "{{ results.outline.shots }}"
      concurrency: {key: "gpu-{{ model }}", limit: 2}
      payload: {prompt: "{{ item }}"}
"""


async def test_a_groups_instances_share_its_rendered_key(sqlite_url: str, tmp_path: Path) -> None:
    """The key renders at plan time with the request's parameters; the instances a
    completion creates carry the group's key, so the limit holds across them."""
    catalog = tmp_path / "grouped.yml"
    catalog.write_text(GROUPED)
    async with serve(make_settings(sqlite_url, scenarios=catalog)) as client:
        assert (await client.post("/generate", json={"scenario": "Keyed"})).status_code == 201
        (outline,) = await lease(client, "text-service")
        done = await client.post(
            f"/tasks/{outline['id']}/complete",
            json={
                "lease_token": outline["lease_token"],
                "result_ref": "out",
                "result": {"shots": ["a", "b", "c", "d"]},
            },
        )
        assert done.status_code == 200, done.text
        shots = await lease(client, "image-service")
        stats = await queues(client)
    assert [t["name"] for t in shots] == ["shot_1", "shot_2"]
    assert (stats["image-service"]["ready"], stats["image-service"]["held_by_key"]) == (2, 2)


AFFINE_CATALOG = """\
services: [image-service, text-service]
Draw:
  params:
    model: {type: string, default: sdxl}
  tasks:
    - id: image
      service: image-service
      requires: {gpu: a100}
    - id: caption
      service: text-service
      prefers: {model: "{{ model }}"}
      prefer_wait_seconds: 0.3
"""


@pytest.fixture
async def affine(store_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    catalog = tmp_path / "scenarios.yml"
    catalog.write_text(AFFINE_CATALOG)
    async with serve(make_settings(store_url, scenarios=catalog)) as client:
        yield client


async def lease_with(
    client: httpx.AsyncClient, service: str, labels: dict[str, str], wait: float = 0.0
) -> list[dict[str, Any]]:
    body = {"max_tasks": 5, "worker_id": f"w-{service}-{len(labels)}", "labels": labels}
    r = await client.post(f"/queues/{service}/lease", json={**body, "wait_seconds": wait})
    assert r.status_code == 200, r.text
    tasks: list[dict[str, Any]] = r.json()["tasks"]
    return tasks


async def test_a_worker_gets_only_the_tasks_its_labels_allow(
    affine: httpx.AsyncClient,
) -> None:
    r = await affine.post("/generate", json={"scenario": "Draw"})
    assert r.status_code == 201, r.text
    assert await lease_with(affine, "image-service", {"gpu": "t4"}) == []
    warned = (await queues(affine))["image-service"]
    assert warned["warnings"] == [
        "tasks of Draw.image require {gpu: a100}: no live worker of image-service has those labels"
    ]
    page = (await affine.get("/ui/fragments/queues")).text
    assert "⚠ tasks of Draw.image require {gpu: a100}" in page
    [image] = await lease_with(affine, "image-service", {"gpu": "a100"})
    assert image["name"] == "image"
    assert (await queues(affine))["image-service"]["warnings"] == []

    # A cold worker's long poll gets the preferred caption once its 0.3 s wait ran out
    # (no ready event marks that moment: the poll looks again on its own).
    started = time.monotonic()
    [caption] = await lease_with(affine, "text-service", {"model": "flux"}, wait=5.0)
    assert caption["name"] == "caption"
    assert time.monotonic() - started < 4.0


async def test_a_warm_worker_gets_a_preferred_task_at_once(affine: httpx.AsyncClient) -> None:
    r = await affine.post("/generate", json={"scenario": "Draw", "model": "flux"})
    assert r.status_code == 201, r.text
    [caption] = await lease_with(affine, "text-service", {"model": "flux"})
    assert caption["name"] == "caption"
