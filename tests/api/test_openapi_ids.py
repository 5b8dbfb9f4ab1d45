"""The OpenAPI document for client generators: every operation has a readable, unique
lowerCamelCase operationId (not FastAPI's `get_scenario_scenarios__scenario_id__get`),
the event stream is text (`text/event-stream`), and a 422 problem lists every field."""

from __future__ import annotations

import re
from typing import Any

import httpx

LOWER_CAMEL = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*)*")
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


async def operations(client: httpx.AsyncClient) -> dict[tuple[str, str], dict[str, Any]]:
    spec = (await client.get("/openapi.json")).json()
    return {
        (method, path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


async def test_every_operation_id_is_unique_readable_camel_case(
    client: httpx.AsyncClient,
) -> None:
    ops = await operations(client)
    ids = [op["operationId"] for op in ops.values()]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert LOWER_CAMEL.fullmatch(operation_id), operation_id
        assert not re.search(r"_(get|post|put|patch|delete)$", operation_id), operation_id
    assert ops[("get", "/scenarios/{scenario_id}")]["operationId"] == "getScenario"
    assert ops[("post", "/queues/{service}/lease")]["operationId"] == "leaseTasks"
    assert ops[("post", "/tasks/{task_id}/complete")]["operationId"] == "completeTask"
    assert ops[("post", "/generate")]["operationId"] == "generateScenario"


async def test_the_event_stream_is_documented_as_text(client: httpx.AsyncClient) -> None:
    events = (await operations(client))[("get", "/scenarios/{scenario_id}/events")]
    content = events["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    assert content["text/event-stream"]["schema"]["type"] == "string"
    each_event = content["text/event-stream"]["x-event-schema"]  # what the suites check
    assert each_event["required"] == ["event", "data"]


async def test_a_problem_documents_every_bad_field(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    fields = spec["components"]["schemas"]["Problem"]["properties"]["fields"]
    assert "every offending field" in fields["description"]
