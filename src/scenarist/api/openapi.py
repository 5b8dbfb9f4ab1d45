"""The OpenAPI document, post-processed so that every error response is documented as
what it really is: an RFC 9457 problem (FastAPI would describe 422 as its own shape), and
with OpenAPI links saying which response field feeds which next request (a submitted
scenario's id into its status, events, cancel and retry; a leased task's id and lease
token into heartbeat, complete and fail). Clients can follow them; stateful testers do."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from scenarist.api.problems import PROBLEM_MEDIA_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Any operation may meet these: the store can be down, and the validation of path, query
# and header parameters happens before the operation runs.
ALWAYS_POSSIBLE = (422, 503)
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def problem_content() -> dict[str, Any]:
    return {
        PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF},
        "application/json": {"schema": PROBLEM_REF},
    }


def document_problems(spec: dict[str, Any], *, auth_enabled: bool) -> dict[str, Any]:
    """Problem content on every error response; bearer security only when tokens are
    configured (an open server's document must not claim it checks credentials)."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            if not auth_enabled:
                operation.pop("security", None)
                operation.get("responses", {}).pop("401", None)
                operation.get("responses", {}).pop("403", None)
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for code in ALWAYS_POSSIBLE:
                responses.setdefault(str(code), {"description": HTTPStatus(code).phrase})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = problem_content()
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    if not auth_enabled:
        spec["components"].pop("securitySchemes", None)
    return spec


@dataclass(frozen=True, slots=True)
class OperationLink:
    """An OpenAPI link: a `status` response of `source` (method, path) provides the
    `parameters` (and body fields) of a request to `target`."""

    name: str
    source: tuple[str, str]
    status: str
    target: tuple[str, str]
    description: str
    parameters: dict[str, str]
    request_body: dict[str, str] = field(default_factory=dict)


SUBMITTED_ID = {"scenario_id": "$response.body#/scenario_id"}
FIRST_LEASED = {"task_id": "$response.body#/tasks/0/id"}
FIRST_LEASE_TOKEN = {"lease_token": "$response.body#/tasks/0/lease_token"}
SCENARIO_FOLLOW_UPS = (
    ("GetScenario", ("get", "/scenarios/{scenario_id}"), "its status, progress and tasks"),
    ("ScenarioEvents", ("get", "/scenarios/{scenario_id}/events"), "its live event stream"),
    ("CancelScenario", ("post", "/scenarios/{scenario_id}/cancel"), "cancel it"),
    ("RetryScenario", ("post", "/scenarios/{scenario_id}/retry"), "retry it once it failed"),
)
LEASE_FOLLOW_UPS = (
    ("HeartbeatTask", ("post", "/tasks/{task_id}/heartbeat"), "extend the first task's lease"),
    ("CompleteTask", ("post", "/tasks/{task_id}/complete"), "complete the first task"),
    ("FailTask", ("post", "/tasks/{task_id}/fail"), "fail the first task"),
)
LEASE_RESPONSE = "#/components/schemas/LeasePublic"

LINKS: tuple[OperationLink, ...] = (
    *(
        OperationLink(name, ("post", "/generate"), "201", target, text, SUBMITTED_ID)
        for name, target, text in SCENARIO_FOLLOW_UPS
    ),
    OperationLink(
        "LeaseFirstTaskService",
        ("post", "/generate"),
        "201",
        ("post", "/queues/{service}/lease"),
        "lease from the queue of the scenario's first task",
        {"service": "$response.body#/tasks/0/service"},
    ),
    OperationLink(
        "GetFirstTask",
        ("get", "/scenarios/{scenario_id}"),
        "200",
        ("get", "/tasks/{task_id}"),
        "the scenario's first task",
        {"task_id": "$response.body#/tasks/0/id"},
    ),
)


def lease_links(paths: dict[str, Any]) -> list[OperationLink]:
    """From every operation that answers a lease (one service or several) to the calls a
    worker makes with the first leased task."""
    return [
        OperationLink(name, (method, path), "200", target, text, FIRST_LEASED, FIRST_LEASE_TOKEN)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if response_ref(operation, "200") == LEASE_RESPONSE
        for name, target, text in LEASE_FOLLOW_UPS
    ]


def response_ref(operation: dict[str, Any], status: str) -> str | None:
    content = operation.get("responses", {}).get(status, {}).get("content", {})
    ref: str | None = content.get("application/json", {}).get("schema", {}).get("$ref")
    return ref


def add_links(spec: dict[str, Any]) -> dict[str, Any]:
    """Attach each link to its source response, naming the target by operationId (FastAPI
    derives those from function names, so they are looked up, never written down). A link
    whose source or target is not in the document is an error in this table."""
    paths: dict[str, Any] = spec.get("paths", {})
    for link in (*LINKS, *lease_links(paths)):
        source = operation_at(paths, link.source)
        target_id = operation_at(paths, link.target)["operationId"]
        definition: dict[str, Any] = {
            "operationId": target_id,
            "description": link.description,
            "parameters": dict(link.parameters),
        }
        if link.request_body:
            definition["requestBody"] = dict(link.request_body)
        response = source["responses"][link.status]
        response.setdefault("links", {})[link.name] = definition
    return spec


def operation_at(paths: dict[str, Any], method_and_path: tuple[str, str]) -> dict[str, Any]:
    method, path = method_and_path
    try:
        operation: dict[str, Any] = paths[path][method]
    except KeyError:
        message = f"OpenAPI link names {method.upper()} {path}, which is not an operation"
        raise KeyError(message) from None
    return operation


def readable_operation_id(route: APIRoute) -> str:
    """The operationId of a route that names none: its HTTP method, then its function's
    name in lowerCamelCase (`GET metrics` -> `getMetrics`). Routers name theirs explicitly
    (verb + noun: `getScenario`, `leaseTasks`); FastAPI's default would be the function,
    path and method run together (`get_scenario_scenarios__scenario_id__get`)."""
    method = min(route.methods or {"get"}).lower()
    return method + "".join(word.capitalize() for word in route.name.split("_"))


def install_openapi(app: FastAPI, *, auth_enabled: bool) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = add_links(document_problems(spec, auth_enabled=auth_enabled))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
