"""Traces (decision 43), read back from the SDK's in-memory exporter: a CreateVideo run is
one trace, the submit span and one span per task attempt under it; a handler's own span
nests under its task's span; the caller's trace is continued; retries and expiries are
attempts of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from scenarist.api.tracing import OtelTracing
from scenarist.api.tracing_config import exporter_wanted, tracing_from_env
from scenarist.core.trace_ids import parse_traceparent
from scenarist.worker.tracing import continue_trace
from tests.api.conftest import SEED_VIDEO
from tests.support.app import make_settings, serve

SERVICES = ("text-service", "audio-service", "image-service", "video-service")
CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def client(
    store_url: str, exported: InMemorySpanExporter
) -> AsyncIterator[httpx.AsyncClient]:
    tracing = OtelTracing(SimpleSpanProcessor(exported))
    async with serve(make_settings(store_url), tracing=tracing) as c:
        yield c


def handler_tracer(exported: InMemorySpanExporter) -> Any:
    """A worker process's own tracer (the SDK only needs the API; tests use the SDK)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    return provider.get_tracer("a-handler")


async def run_all(
    client: httpx.AsyncClient, exported: InMemorySpanExporter, *, fail_first: str = ""
) -> None:
    """Lease everything ready and complete it; each task runs a handler that opens a
    span of its own inside the task's trace (as the worker SDK runs it)."""
    tracer = handler_tracer(exported)
    failed = False
    for _ in range(20):
        leased = []
        for service in SERVICES:
            answer = await client.post(f"/queues/{service}/lease", json={"max_tasks": 10})
            leased += answer.json()["tasks"]
        if not leased:
            return
        for task in leased:
            assert parse_traceparent(task["traceparent"]) is not None

            def handler(name: str = task["name"]) -> None:
                with tracer.start_as_current_span(f"handler {name}"):
                    pass

            continue_trace(handler, task["traceparent"])()
            if task["name"] == fail_first and not failed:
                failed = True
                body = {"lease_token": task["lease_token"], "error": "flaky", "retryable": True}
                await client.post(f"/tasks/{task['id']}/fail", json=body)
                await client.patch(f"/tasks/{task['id']}/status", json={"status": "success"})
                continue
            done = await client.post(
                f"/tasks/{task['id']}/complete", json={"lease_token": task["lease_token"]}
            )
            assert done.status_code == 200, done.text


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


async def test_a_create_video_run_is_one_trace_with_every_task_under_the_submit(
    client: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    created = await client.post("/generate", json=SEED_VIDEO, headers={"traceparent": CALLER})
    assert created.status_code == 201
    await run_all(client, exported)
    scenario = (await client.get(f"/scenarios/{created.json()['scenario_id']}")).json()
    assert scenario["status"] == "success"

    spans = exported.get_finished_spans()
    assert {span.context.trace_id for span in spans} == {0x0AF7651916CD43DD8448EB211C80319C}
    names = by_name(spans)
    [submit] = names.pop("submit CreateVideo")
    assert submit.parent is not None
    assert submit.parent.span_id == 0xB7AD6B7169203331
    handlers = {n: s for n, s in names.items() if n.startswith("handler ")}
    tasks = {n: s for n, s in names.items() if not n.startswith("handler ")}
    assert sorted(tasks) == sorted(t["name"] for t in scenario["tasks"])
    assert len(tasks) == 9
    for name, [span] in tasks.items():
        assert span.parent is not None
        assert span.parent.span_id == submit.context.span_id
        assert span.status.status_code is StatusCode.OK
        assert span.attributes is not None
        assert span.attributes["scenarist.attempt"] == 1
        assert [e.name for e in span.events] == ["leased"]
        assert span.start_time is not None
        assert span.end_time is not None
        assert submit.start_time is not None
        assert span.start_time >= submit.start_time
        [handler] = handlers[f"handler {name}"]
        assert handler.parent is not None
        assert handler.parent.span_id == span.context.span_id


async def test_a_retry_is_a_second_attempt_span_and_a_new_trace_starts_without_a_caller(
    client: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    created = await client.post("/generate", json=SEED_VIDEO)
    await run_all(client, exported, fail_first="voice")
    spans = by_name(exported.get_finished_spans())
    [submit] = spans["submit CreateVideo"]
    assert submit.parent is None
    first, second = sorted(spans["voice"], key=lambda s: s.attributes["scenarist.attempt"])  # type: ignore[index]
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes is not None
    assert first.attributes["scenarist.outcome"] == "retry"
    assert [e.name for e in first.events] == ["leased", "retry"]
    assert second.status.status_code is StatusCode.OK
    assert first.context.span_id != second.context.span_id
    assert {s.context.trace_id for s in (first, second, submit)} == {submit.context.trace_id}
    assert created.status_code == 201


async def test_each_scenario_of_a_batch_is_a_trace_of_its_own_submit_span(
    client: httpx.AsyncClient, exported: InMemorySpanExporter
) -> None:
    items = [SEED_VIDEO, {"scenario": "NoSuchTemplate"}, SEED_VIDEO]
    answer = await client.post("/generate/batch", json={"items": items})
    assert answer.status_code == 200
    outcomes = answer.json()["items"]
    assert [o["status"] for o in outcomes] == [201, 404, 201]
    await run_all(client, exported)
    spans = exported.get_finished_spans()
    names = by_name(spans)
    submits = names["submit CreateVideo"]
    assert len(submits) == 2
    [refused] = names["submit NoSuchTemplate"]  # its span ends without a scenario
    assert refused.attributes is not None
    assert "scenarist.scenario_id" not in refused.attributes
    by_scenario = {s.attributes["scenarist.scenario_id"]: s for s in submits}  # type: ignore[index]
    assert set(by_scenario) == {outcomes[0]["scenario_id"], outcomes[2]["scenario_id"]}
    for scenario_id, submit in by_scenario.items():
        assert submit.parent is None
        under = [
            s for s in spans if s.parent is not None and s.parent.span_id == submit.context.span_id
        ]
        assert len(under) == 9  # every task of that scenario, in its own trace
        assert {s.context.trace_id for s in under} == {submit.context.trace_id}
        assert all(s.attributes["scenarist.task_id"].startswith(scenario_id) for s in under)  # type: ignore[index,union-attr]


def test_the_otel_variables_choose_the_exporter() -> None:
    assert exporter_wanted({}) is None
    assert exporter_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) == "otlp"
    assert (
        exporter_wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1/traces"}) == "otlp"
    )
    assert exporter_wanted({"OTEL_TRACES_EXPORTER": "console"}) == "console"
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert exporter_wanted({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None
    assert exporter_wanted({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    assert tracing_from_env({}) is None
    exporting = tracing_from_env({**endpoint, "OTEL_SERVICE_NAME": "render-farm"})
    assert isinstance(exporting, OtelTracing)
    exporting.shutdown()
