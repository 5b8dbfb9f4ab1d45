"""The original service's API behaviour (its test_api, test_task_status, test_integration
and scenario-generation tests), through HTTP, on every store backend."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import SEED_VIDEO, drive_to_end, submit


async def test_root_lists_the_seed_endpoints(any_client: httpx.AsyncClient) -> None:
    response = await any_client.get("/")
    assert response.status_code == 200
    info = response.json()
    assert info["service"] == "scenarist"
    listed = {(e["method"], e["path"]) for e in info["endpoints"]}
    for endpoint in [
        ("GET", "/"),
        ("GET", "/health"),
        ("POST", "/generate"),
        ("GET", "/scenarios/{scenario_id}"),
        ("GET", "/tasks/{task_id}"),
        ("PATCH", "/tasks/{task_id}/status"),
    ]:
        assert endpoint in listed


async def test_health_is_healthy(any_client: httpx.AsyncClient) -> None:
    response = await any_client.get("/health")
    assert response.status_code == 200
    assert response.json()["store"] == "ok"


@pytest.mark.parametrize(
    ("body", "expected_tasks"),
    [
        (SEED_VIDEO, 9),
        ({"scenario": "CreateVoice", "description": "Hello", "count": 2}, 2),
        ({"scenario": "CreateSlides", "description": "Cats", "slides_count": 4}, 8),
        ({"scenario": "CreateVoice", "params": {"description": "Hello", "count": 2}}, 2),
    ],
)
async def test_generate_task_counts(
    any_client: httpx.AsyncClient, body: dict[str, object], expected_tasks: int
) -> None:
    created = await submit(any_client, body)
    assert created["task_count"] == expected_tasks
    assert len(created["tasks"]) == expected_tasks
    assert created["created"] is True


async def test_generate_video_graph_shape(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client)
    tasks = {t["name"]: t for t in created["tasks"]}
    assert set(tasks) == {
        "script",
        "voice",
        "slide_prompt_1",
        "slide_prompt_2",
        "slide_prompt_3",
        "slide_image_1",
        "slide_image_2",
        "slide_image_3",
        "video",
    }
    assert tasks["script"]["status"] == "queued"
    assert tasks["slide_image_2"]["depends_on"] == ["slide_prompt_2"]
    assert tasks["video"]["level"] == 3
    assert all(t["id"] == f"{created['scenario_id']}:{t['name']}" for t in tasks.values())


async def test_scenario_status_and_progress(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client)
    response = await any_client.get(f"/scenarios/{created['scenario_id']}")
    assert response.status_code == 200
    scenario = response.json()
    assert scenario["status"] == "pending"
    assert scenario["progress"]["total"] == 9
    assert scenario["progress"]["finished"] == 0
    assert scenario["progress"]["percent"] == 0.0
    assert scenario["progress"]["by_status"]["queued"] == 1
    assert scenario["progress"]["by_service"]["image-service"]["pending"] == 3
    assert len(scenario["tasks"]) == 9


async def test_get_task_by_id_with_colon(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client)
    task_id = f"{created['scenario_id']}:script"
    response = await any_client.get(f"/tasks/{task_id}")
    assert response.status_code == 200
    task = response.json()
    assert task["id"] == task_id
    assert task["service"] == "text-service"
    assert task["payload"]["topic"] == "A video about cats"


async def test_patch_status_processing_then_success(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client)
    task_id = f"{created['scenario_id']}:script"
    claimed = await any_client.patch(f"/tasks/{task_id}/status", json={"status": "processing"})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "processing"
    done = await any_client.patch(
        f"/tasks/{task_id}/status", json={"status": "success", "result_ref": "output/script.txt"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "success"
    assert done.json()["result_ref"] == "output/script.txt"
    scenario = (await any_client.get(f"/scenarios/{created['scenario_id']}")).json()
    assert scenario["status"] == "running"
    assert scenario["progress"]["finished"] == 1
    # the script's dependents were released
    assert scenario["progress"]["by_status"]["queued"] == 4


async def test_patch_failed_records_the_error(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client)
    task_id = f"{created['scenario_id']}:script"
    failed = await any_client.patch(
        f"/tasks/{task_id}/status", json={"status": "failed", "error": "model crashed"}
    )
    assert failed.status_code == 200, failed.text
    assert failed.json()["status"] == "failed"
    assert failed.json()["error"] == "model crashed"
    scenario = (await any_client.get(f"/scenarios/{created['scenario_id']}")).json()
    assert scenario["status"] == "failed"
    assert scenario["progress"]["by_status"]["skipped"] == 8


async def test_illegal_transition_is_409_with_current_status(
    any_client: httpx.AsyncClient,
) -> None:
    created = await submit(any_client)
    pending = f"{created['scenario_id']}:video"
    response = await any_client.patch(f"/tasks/{pending}/status", json={"status": "success"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "https://scenarist.dev/problems/illegal-transition"
    assert problem["current_status"] == "pending"

    script = f"{created['scenario_id']}:script"
    await any_client.patch(f"/tasks/{script}/status", json={"status": "success"})
    again = await any_client.patch(f"/tasks/{script}/status", json={"status": "processing"})
    assert again.status_code == 409
    assert again.json()["current_status"] == "success"


async def test_full_video_scenario_over_http(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client)
    await drive_to_end(any_client, created["scenario_id"])
    scenario = (await any_client.get(f"/scenarios/{created['scenario_id']}")).json()
    assert scenario["status"] == "success"
    assert scenario["progress"]["percent"] == 100.0
    video = (await any_client.get(f"/tasks/{created['scenario_id']}:video")).json()
    assert video["result_ref"] == "out/video"


async def test_video_inputs_are_upstream_results_in_order(any_client: httpx.AsyncClient) -> None:
    created = await submit(any_client, {**SEED_VIDEO, "slides_count": 2})
    sid = created["scenario_id"]
    for name in ("script", "voice", "slide_prompt_1", "slide_prompt_2"):
        await any_client.patch(
            f"/tasks/{sid}:{name}/status", json={"status": "success", "result_ref": name}
        )
    for n in (2, 1):  # finish out of order; inputs still come in dependency order
        await any_client.patch(
            f"/tasks/{sid}:slide_image_{n}/status",
            json={"status": "success", "result_ref": f"img{n}.png", "result": {"n": n}},
        )
    leased = await any_client.post("/queues/video-service/lease", json={"max_tasks": 1})
    (video,) = leased.json()["tasks"]
    assert [i["result_ref"] for i in video["inputs"]] == ["voice", "img1.png", "img2.png"]
    assert video["inputs"][2]["result"] == {"n": 2}


async def test_templates_and_openapi_document_the_api(client: httpx.AsyncClient) -> None:
    templates = (await client.get("/templates")).json()["templates"]
    assert {t["name"] for t in templates} >= {"CreateVideo", "CreateVoice", "CreateSlides"}
    assert (await client.get("/templates/CreateVoice")).json()["name"] == "CreateVoice"
    assert (await client.get("/templates/Nope")).status_code == 404
    spec = (await client.get("/openapi.json")).json()
    assert "Problem" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    generate = spec["paths"]["/generate"]["post"]
    assert {"200", "201", "404", "413", "415", "422", "503"} <= set(generate["responses"])
    assert "application/problem+json" in generate["responses"]["422"]["content"]
    examples = generate["requestBody"]["content"]["application/json"]["examples"]
    assert examples["seed"]["value"] == SEED_VIDEO
    assert "securitySchemes" not in spec["components"]  # open server: no auth claimed
