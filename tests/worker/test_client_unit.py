"""The client and worker loop against a scripted transport: error mapping, SSE parsing,
reconnecting with backoff after connection errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from scenarist.worker import (
    AuthError,
    LeaseLostError,
    NotFoundError,
    ScenaristClient,
    ServerUnreachableError,
    SubmitItem,
    Worker,
    WorkerTask,
)
from scenarist.worker.client import parse_timestamp, task_path
from scenarist.worker.sse import SseParser
from scenarist.worker.support import Backoff
from scenarist.worker.task import TaskResult, as_task_result


def problem(status: int, detail: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": "about:blank", "title": "x", "status": status, "detail": detail},
        headers={"content-type": "application/problem+json"},
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthError), (403, AuthError), (404, NotFoundError), (409, LeaseLostError)],
)
def test_problem_responses_map_to_client_errors(status: int, error: type[Exception]) -> None:
    transport = httpx.MockTransport(lambda request: problem(status, "lease token is stale"))
    client = ScenaristClient("http://test", transport=transport)
    with client, pytest.raises(error, match="lease token is stale") as caught:
        client.heartbeat("sc:job_1", "tok")
    assert caught.value.status_code == status  # type: ignore[attr-defined]


def test_server_errors_and_connection_errors_are_retryable_kind() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for transport in (httpx.MockTransport(refuse), httpx.MockTransport(lambda r: problem(503, ""))):
        client = ScenaristClient("http://test", transport=transport)
        with client, pytest.raises(ServerUnreachableError):
            client.get_scenario("abc")


def test_requests_carry_token_quoted_task_ids_and_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"scenario_id": "s1"})

    with ScenaristClient("http://test/", "secret", transport=httpx.MockTransport(record)) as c:
        c.submit("CreateVideo", {"slides_count": 3}, idempotency_key="k-1")
        c.complete("s1:slide image/2", "tok", "out.png", {"mime": "image/png"})
    submit, complete = seen
    assert submit.headers["authorization"] == "Bearer secret"
    assert submit.headers["idempotency-key"] == "k-1"
    assert json.loads(submit.content) == {"scenario": "CreateVideo", "params": {"slides_count": 3}}
    assert complete.url.raw_path == b"/tasks/s1:slide%20image%2F2/complete"
    assert json.loads(complete.content)["result"] == {"mime": "image/png"}
    assert task_path("a:b") == "/tasks/a:b"


def test_a_priority_is_sent_only_when_given() -> None:
    seen: list[dict[str, Any]] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        items = [{"index": 0, "status": 201, "scenario_id": "s"}]
        return httpx.Response(201, json={"scenario_id": "s1", "items": items})

    with ScenaristClient("http://test/", transport=httpx.MockTransport(record)) as c:
        c.submit("CreateVideo", {}, priority="interactive")
        c.submit("CreateVideo", {})
        c.submit_many([SubmitItem("CreateVideo", {}, priority="batch")])
    assert [body.get("priority") for body in seen[:2]] == ["interactive", None]
    assert seen[2]["items"][0]["priority"] == "batch"


def test_sse_parser_handles_comments_multiline_data_and_ids() -> None:
    parser = SseParser()
    lines = [
        "retry: 2000",
        "",
        ": heartbeat",
        "event: progress",
        "id: 7",
        'data: {"a":',
        "data: 1}",
    ]
    assert [parser.feed(line) for line in lines] == [None] * len(lines)
    event = parser.feed("")
    assert event is not None
    assert (event.event, event.id, event.data) == ("progress", "7", {"a": 1})
    parser.feed("data: plain text")
    plain = parser.feed("")
    assert plain is not None
    assert (plain.event, plain.data) == ("message", "plain text")


def test_timestamps_parse_from_numbers_and_iso_strings() -> None:
    assert parse_timestamp(12.5) == 12.5
    assert parse_timestamp("1970-01-01T00:00:10+00:00") == 10.0
    assert parse_timestamp("soon") is None
    assert parse_timestamp(None) is None


def test_backoff_grows_within_its_cap_and_resets() -> None:
    backoff = Backoff(base=1.0, cap=4.0)
    delays = [backoff.next_delay() for _ in range(6)]
    assert 0.5 <= delays[0] <= 1.0
    assert all(d <= 4.0 for d in delays)
    assert delays[-1] >= 2.0
    backoff.reset()
    assert backoff.next_delay() <= 1.0


def test_handler_return_values_are_normalised() -> None:
    assert as_task_result("a.png", task_id="t") == TaskResult("a.png")
    assert as_task_result(None, task_id="t") == TaskResult(None)
    with pytest.raises(TypeError, match="task 't' returned int"):
        as_task_result(3, task_id="t")


class FlakyServer:
    """Refuses connections twice, then hands out one task, then has nothing left."""

    def __init__(self) -> None:
        self.refusals = 2
        self.leased = False
        self.completed: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self.refusals:
            self.refusals -= 1
            raise httpx.ConnectError("connection refused", request=request)
        if path == "/queues/lease":
            outcomes = self.complete(json.loads(request.content)["complete"])
            tasks = [] if self.leased else [self.leased_task()]
            self.leased = True
            return httpx.Response(200, json={"tasks": tasks, "outcomes": outcomes})
        if path == "/tasks/complete":
            outcomes = self.complete(json.loads(request.content)["items"])
            return httpx.Response(200, json={"outcomes": outcomes})
        if path == "/queues":
            return httpx.Response(200, json={"queues": []})
        return problem(404, f"no route {path}")

    def complete(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.completed.extend(items)
        return [{"id": item["id"], "ok": True} for item in items]

    @staticmethod
    def leased_task() -> dict[str, Any]:
        return {
            "id": "sc:job_1",
            "scenario_id": "sc",
            "name": "job_1",
            "service": "test-service",
            "payload": {"n": 1},
            "inputs": [],
            "attempt": 1,
            "lease_token": "tok.1",
            "lease_expires_at": 2e9,
        }


def test_worker_reconnects_after_connection_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Backoff, "next_delay", lambda self: 0.01)
    server = FlakyServer()
    worker = Worker("http://test", transport=httpx.MockTransport(server), wait_seconds=0)

    @worker.handler("test-service")
    def handle(job: WorkerTask) -> str:
        return f"out/{job.name}"

    stats = worker.run(burst=True, install_signal_handlers=False)
    assert stats.completed == 1
    assert server.completed == [
        {"id": "sc:job_1", "lease_token": "tok.1", "result_ref": "out/job_1"}
    ]


def test_worker_stops_with_the_auth_error_when_the_token_is_refused() -> None:
    transport = httpx.MockTransport(lambda request: problem(401, "bad token"))
    worker = Worker("http://test", "wrong", transport=transport)
    worker.add_handler("test-service", lambda job: None)
    with pytest.raises(AuthError, match="bad token"):
        worker.run(install_signal_handlers=False)
