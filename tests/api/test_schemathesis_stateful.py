"""Stateful property-based conformance: schemathesis follows the OpenAPI links (submit ->
status, events, cancel, retry, lease; status -> task; lease -> heartbeat, complete, fail)
through random sequences of calls against the in-process app, and every response must be
free of 5xx and match its documented status codes, content types and schemas.

The run is bounded (examples and steps: about ten seconds). The test also checks that
schemathesis turned every documented link into a step and that real scenarios were driven,
so a setup that only ever meets 404s fails instead of passing vacuously."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scenarist.api.app import create_app
from tests.api.conftest import make_settings
from tests.api.served_schema import load_served_schema

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
MAX_EXAMPLES = 50
STEPS_PER_EXAMPLE = 6
CALL_TIMEOUT_SECONDS = 2.0
# An event stream of a running scenario never ends by itself: read its first events only
# (a stream opens with the stored status events and the progress, so two come at once).
STREAM_EVENTS = 2
# Operations whose answer does not depend on the store (covered per operation elsewhere):
# left out so the steps go to the stateful ones.
STATELESS_PATHS = ["/", "/health", "/templates", "/templates/{name}", "/metrics"]
DOCUMENTED_LINKS = [
    "GetScenario",
    "ScenarioEvents",
    "CancelScenario",
    "RetryScenario",
    "LeaseFirstTaskService",
    "GetFirstTask",
    "HeartbeatTask",
    "CompleteTask",
    "FailTask",
]
# Answers that prove a scenario id was taken from a response (a made-up id gets 404).
SCENARIO_FOLLOW_UPS = [
    "GET /scenarios/{scenario_id}",
    "GET /scenarios/{scenario_id}/events",
    "POST /scenarios/{scenario_id}/cancel",
    "POST /scenarios/{scenario_id}/retry",
]


def make_app(database: Path) -> FastAPI:
    return create_app(
        make_settings(
            f"sqlite:///{database}",
            lease_wait_max_seconds=0.05,  # generated long-polls must not stall the run
            callback_interval=3600,  # generated callback URLs are never called
            sse_heartbeat_seconds=0.05,
        )
    )


def load_schema(tmp_path: Path) -> Any:
    schema = load_served_schema(make_app(tmp_path / "schema.db"))
    schema.config.max_stream_events = STREAM_EVENTS
    # Schema-valid requests only: invalid input per operation is test_schemathesis.py's job,
    # and a mutated id taken from a link only ever meets a 404.
    schema.config.generation.update(modes=[GenerationMode.POSITIVE])

    @schema.hook("flatmap_body")
    def sometimes_a_known_scenario(context: Any, body: Any) -> st.SearchStrategy[Any]:
        """A random template name is almost never in the catalog: without real submissions
        few links would be followed. Most submissions name a catalog template."""
        if context.operation.label != "POST /generate" or not isinstance(body, dict):
            return st.just(body)
        return st.one_of(st.just(body), catalog_submissions(), catalog_submissions())

    return schema


def catalog_submissions() -> st.SearchStrategy[dict[str, Any]]:
    description = st.text(min_size=1, max_size=40)
    small = st.integers(min_value=1, max_value=3)
    return st.one_of(
        st.fixed_dictionaries(
            {
                "scenario": st.sampled_from(["CreateVideo", "CreateSlides"]),
                "description": description,
            },
            optional={"slides_count": small},
        ),
        st.fixed_dictionaries(
            {"scenario": st.just("CreateVoice"), "description": description},
            optional={"count": small},
        ),
    )


def test_openapi_document_links_responses_to_follow_up_operations(tmp_path: Path) -> None:
    paths = load_schema(tmp_path).raw_schema["paths"]
    operation_ids = {
        (method, path): operation["operationId"]
        for path, operations in paths.items()
        for method, operation in operations.items()
    }
    submitted = paths["/generate"]["post"]["responses"]["201"]["links"]
    for name, target in [
        ("GetScenario", "/scenarios/{scenario_id}"),
        ("ScenarioEvents", "/scenarios/{scenario_id}/events"),
    ]:
        assert submitted[name]["operationId"] == operation_ids[("get", target)]
        assert submitted[name]["parameters"] == {"scenario_id": "$response.body#/scenario_id"}
    for name, target in [
        ("CancelScenario", "/scenarios/{scenario_id}/cancel"),
        ("RetryScenario", "/scenarios/{scenario_id}/retry"),
    ]:
        assert submitted[name]["operationId"] == operation_ids[("post", target)]
        assert submitted[name]["parameters"] == {"scenario_id": "$response.body#/scenario_id"}
    first_task = paths["/scenarios/{scenario_id}"]["get"]["responses"]["200"]["links"]
    assert first_task["GetFirstTask"] == {
        "operationId": operation_ids[("get", "/tasks/{task_id}")],
        "description": "the scenario's first task",
        "parameters": {"task_id": "$response.body#/tasks/0/id"},
    }
    leased = paths["/queues/{service}/lease"]["post"]["responses"]["200"]["links"]
    for name, action in [
        ("HeartbeatTask", "heartbeat"),
        ("CompleteTask", "complete"),
        ("FailTask", "fail"),
    ]:
        assert (
            leased[name]["operationId"] == operation_ids[("post", f"/tasks/{{task_id}}/{action}")]
        )
        assert leased[name]["parameters"] == {"task_id": "$response.body#/tasks/0/id"}
        assert leased[name]["requestBody"] == {"lease_token": "$response.body#/tasks/0/lease_token"}


def test_random_call_sequences_along_links_conform(tmp_path: Path) -> None:
    schema = load_schema(tmp_path).exclude(path=STATELESS_PATHS)
    answered: Counter[tuple[str, int]] = Counter()
    databases = (tmp_path / f"example-{n}.db" for n in itertools.count())

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        """Each example gets a fresh app and store: leases, listings and idempotency keys
        would otherwise see earlier examples' data, and Hypothesis requires an example to
        behave the same when it is replayed."""

        def setup(self) -> None:
            self.app = make_app(next(databases))

        def teardown(self) -> None:
            shutdown_lifespans()  # stops this example's app: its store closes

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"app": self.app, "timeout": CALL_TIMEOUT_SECONDS}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            answered[(case.operation.label, response.status_code)] += 1

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    rules = " ".join(vars(Workflow.__mro__[1]))
    for link in DOCUMENTED_LINKS:  # schemathesis turned every documented link into a step
        assert f"_{link}__" in rules, (link, rules)
    Workflow.run(
        settings=settings(
            max_examples=MAX_EXAMPLES,
            stateful_step_count=STEPS_PER_EXAMPLE,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    followed = sum(
        count
        for (operation, status), count in answered.items()
        if operation in SCENARIO_FOLLOW_UPS and 200 <= status < 300
    )
    # Real scenarios were driven (a made-up id only ever gets 404).
    assert followed >= 1, sorted(answered.items())
