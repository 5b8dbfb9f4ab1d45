"""The worker protocol on the wire: request builders and response parsing shared by the
sync and the asyncio client, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlencode

import orjson

from scenarist import __version__
from scenarist.worker.errors import (
    ApiError,
    AuthError,
    LeaseLostError,
    NotFoundError,
    ServerUnreachableError,
)
from scenarist.worker.wire import Reply

if TYPE_CHECKING:
    import httpx

DEFAULT_URL = "http://127.0.0.1:8001"
REQUEST_TIMEOUT_SECONDS = 30.0
LONG_POLL_MARGIN_SECONDS = 10.0  # a long-poll's read timeout is its wait plus this


@dataclass(frozen=True, slots=True)
class LeasedTask:
    """A task as a lease hands it out. `inputs` are upstream results in dependency order."""

    id: str
    scenario_id: str
    name: str
    service: str
    payload: Mapping[str, Any]
    inputs: tuple[Mapping[str, Any], ...]
    attempt: int
    lease_token: str
    lease_expires_at: float | None
    traceparent: str | None = None  # the attempt span's W3C trace context (tracing on)


@dataclass(frozen=True, slots=True)
class CompletionItem:
    """One entry of a batch completion (`POST /tasks/complete`)."""

    task_id: str
    lease_token: str
    result_ref: str | None
    result: Mapping[str, Any] | None = None
    usage: Mapping[str, float] | None = None


# A scenario's lane (POST /generate's `priority`): a lease takes a higher lane's ready
# tasks first.
Priority = Literal["interactive", "normal", "batch"]


@dataclass(frozen=True, slots=True)
class SubmitItem:
    """One scenario of a `submit_many` batch: what `submit` takes."""

    scenario: str
    params: Mapping[str, Any]
    idempotency_key: str | None = None
    callback_url: str | None = None
    priority: Priority | None = None  # None: the server's default lane (normal)
    tenant: str | None = None  # None: the token's tenant, else the default one

    def body(self) -> dict[str, Any]:
        """The item as POST /generate/batch takes it."""
        body: dict[str, Any] = {"scenario": self.scenario, "params": dict(self.params)}
        if self.idempotency_key is not None:
            body["idempotency_key"] = self.idempotency_key
        if self.callback_url is not None:
            body["callback_url"] = self.callback_url
        if self.priority is not None:
            body["priority"] = self.priority
        if self.tenant is not None:
            body["tenant"] = self.tenant
        return body


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    timeout: float = REQUEST_TIMEOUT_SECONDS


def task_path(task_id: str, action: str = "") -> str:
    """Task ids contain ':' (`<scenario>:<name>`); everything else is quoted."""
    return f"/tasks/{quote(task_id, safe=':')}" + (f"/{action}" if action else "")


def scenario_path(scenario_id: str, action: str = "") -> str:
    return f"/scenarios/{quote(scenario_id, safe='')}" + (f"/{action}" if action else "")


def scenario_tasks_path(
    scenario_id: str, *, group: str | None, limit: int, cursor: str | None
) -> str:
    """`GET /scenarios/{id}/tasks`: one page of a scenario's tasks (or of one group)."""
    query = {"limit": str(limit), "group": group, "cursor": cursor}
    return (
        scenario_path(scenario_id, "tasks")
        + "?"
        + urlencode({k: v for k, v in query.items() if v is not None})
    )


def parse_timestamp(value: Any) -> float | None:
    """Lease expiry as POSIX seconds, from a number or an ISO 8601 string."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def parse_leased(raw: Mapping[str, Any]) -> LeasedTask:
    return LeasedTask(
        id=str(raw["id"]),
        scenario_id=str(raw["scenario_id"]),
        name=str(raw["name"]),
        service=str(raw["service"]),
        payload=dict(raw.get("payload") or {}),
        inputs=tuple(dict(item) for item in raw.get("inputs") or ()),
        attempt=int(raw.get("attempt", 1)),
        lease_token=str(raw["lease_token"]),
        lease_expires_at=parse_timestamp(raw.get("lease_expires_at")),
        traceparent=raw.get("traceparent") or None,
    )


def raise_for_status(call: Call, reply: Reply) -> None:
    if reply.status < 400:
        return
    if reply.status >= 500:
        raise ServerUnreachableError(
            f"{call.method} {call.path} -> {reply.status}: {reply.text[:500]}"
        )
    try:
        problem = orjson.loads(reply.body)
    except ValueError:
        problem = {"detail": reply.text[:500]}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)}
    error_class: type[ApiError] = ApiError
    if reply.status in (401, 403):
        error_class = AuthError
    elif reply.status == 404:
        error_class = NotFoundError
    elif reply.status == 409 and call.path.startswith("/tasks/"):
        error_class = LeaseLostError
    raise error_class(reply.status, problem, method=call.method, path=call.path)


def response_json(call: Call, reply: Reply) -> Any:
    raise_for_status(call, reply)
    return orjson.loads(reply.body) if reply.body else None


def as_reply(response: httpx.Response) -> Reply:
    """An httpx response as the shared parsing functions take it (body read already)."""
    return Reply(response.status_code, response.headers, response.content)


def parse_lease_round(answer: Any) -> tuple[list[LeasedTask], list[Any]]:
    """A `POST /queues/lease` answer: the leased tasks and one outcome per completion."""
    tasks = [parse_leased(raw) for raw in answer["tasks"]]
    return tasks, list(batch_outcomes(answer))


def batch_outcomes(answer: Any) -> Sequence[Any]:
    if isinstance(answer, dict):
        for key in ("items", "results", "outcomes"):
            if isinstance(answer.get(key), list):
                return list(answer[key])
    return list(answer) if isinstance(answer, list) else []


def default_headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "scenarist-worker"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class Calls:
    """Request builders shared by both client flavours."""

    @staticmethod
    def lease(
        service: str,
        max_tasks: int,
        lease_seconds: float | None,
        wait: float,
        worker_id: str | None,
    ) -> Call:
        body: dict[str, Any] = {"max_tasks": max_tasks, "wait_seconds": wait}
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        if worker_id:
            body["worker_id"] = worker_id
        path = f"/queues/{quote(service, safe='')}/lease"
        return Call("POST", path, body, timeout=wait + LONG_POLL_MARGIN_SECONDS)

    @staticmethod
    def lease_services(
        services: Sequence[str],
        *,
        max_tasks: int,
        lease_seconds: float | None,
        wait: float,
        worker_id: str | None,
        complete: Sequence[CompletionItem],
        labels: Mapping[str, str] | None = None,
    ) -> Call:
        """One worker round: report `complete` done, then lease across `services`. A
        named worker also tells the workers registry its `labels` and SDK version."""
        body: dict[str, Any] = {"services": list(services), "max_tasks": max_tasks}
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        body["wait_seconds"] = wait
        if worker_id:
            body["worker_id"] = worker_id
            body["sdk_version"] = __version__
        if labels is not None:
            body["labels"] = dict(labels)
        body["complete"] = completion_bodies(complete)
        return Call("POST", "/queues/lease", body, timeout=wait + LONG_POLL_MARGIN_SECONDS)

    @staticmethod
    def heartbeat(task_id: str, lease_token: str, lease_seconds: float | None) -> Call:
        body: dict[str, Any] = {"lease_token": lease_token}
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        return Call("POST", task_path(task_id, "heartbeat"), body)

    @staticmethod
    def complete(
        task_id: str,
        lease_token: str,
        result_ref: str | None,
        result: Mapping[str, Any] | None,
        usage: Mapping[str, float] | None = None,
    ) -> Call:
        body: dict[str, Any] = {"lease_token": lease_token, "result_ref": result_ref}
        if result is not None:
            body["result"] = dict(result)
        if usage:
            body["usage"] = dict(usage)
        return Call("POST", task_path(task_id, "complete"), body)

    @staticmethod
    def fail(
        task_id: str,
        lease_token: str,
        error: str,
        retryable: bool,
        usage: Mapping[str, float] | None = None,
    ) -> Call:
        body: dict[str, Any] = {"lease_token": lease_token, "error": error, "retryable": retryable}
        if usage:
            body["usage"] = dict(usage)
        return Call("POST", task_path(task_id, "fail"), body)

    @staticmethod
    def submit(
        scenario: str,
        params: Mapping[str, Any],
        idempotency_key: str | None,
        priority: Priority | None = None,
        tenant: str | None = None,
    ) -> Call:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body: dict[str, Any] = {"scenario": scenario, "params": dict(params)}
        if priority is not None:
            body["priority"] = priority
        if tenant is not None:
            body["tenant"] = tenant
        return Call("POST", "/generate", body, headers)

    @staticmethod
    def submit_many(items: Sequence[SubmitItem | Mapping[str, Any]]) -> Call:
        """A mapping is sent as it is (a POST /generate body, `idempotency_key` included),
        so a file of request bodies needs no parsing on the client."""
        bodies = [i.body() if isinstance(i, SubmitItem) else dict(i) for i in items]
        return Call("POST", "/generate/batch", {"items": bodies})

    @staticmethod
    def complete_many(items: Sequence[CompletionItem]) -> Call:
        return Call("POST", "/tasks/complete", {"items": completion_bodies(items)})


def completion_bodies(items: Sequence[CompletionItem]) -> list[dict[str, Any]]:
    """Batch items as `POST /tasks/complete` and the lease's `complete` field take them."""
    return [
        {"id": i.task_id, "lease_token": i.lease_token, "result_ref": i.result_ref}
        | ({"result": dict(i.result)} if i.result is not None else {})
        | ({"usage": dict(i.usage)} if i.usage else {})
        for i in items
    ]


def encode_body(call: Call) -> bytes | None:
    return None if call.body is None else orjson.dumps(call.body, option=orjson.OPT_NON_STR_KEYS)


def send_kwargs(call: Call) -> dict[str, Any]:
    return {"json": call.body, "headers": dict(call.headers or {}), "timeout": call.timeout}
