"""A thin typed HTTP client for a scenarist server, in a sync and an asyncio flavour.

Both flavours share request building and response parsing (`_Call`, `_parse_*`), so they
cannot drift apart; each only moves bytes with its own httpx client. Responses the worker
loop depends on are typed (`LeasedTask`); scenario documents are returned as parsed JSON
because clients mostly render or forward them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from scenarist.worker.errors import (
    ApiError,
    AuthError,
    LeaseLostError,
    NotFoundError,
    ServerUnreachableError,
)
from scenarist.worker.sse import ServerEvent, SseParser

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


@dataclass(frozen=True, slots=True)
class CompletionItem:
    """One entry of a batch completion (`POST /tasks/complete`)."""

    task_id: str
    lease_token: str
    result_ref: str | None
    result: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Call:
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


def _parse_leased(raw: Mapping[str, Any]) -> LeasedTask:
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
    )


def _raise_for_status(call: _Call, response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    if response.status_code >= 500:
        raise ServerUnreachableError(
            f"{call.method} {call.path} -> {response.status_code}: {response.text[:500]}"
        )
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text[:500]}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)}
    error_class: type[ApiError] = ApiError
    if response.status_code in (401, 403):
        error_class = AuthError
    elif response.status_code == 404:
        error_class = NotFoundError
    elif response.status_code == 409 and call.path.startswith("/tasks/"):
        error_class = LeaseLostError
    raise error_class(response.status_code, problem, method=call.method, path=call.path)


def _json(call: _Call, response: httpx.Response) -> Any:
    _raise_for_status(call, response)
    return response.json() if response.content else None


def _batch_outcomes(answer: Any) -> Sequence[Any]:
    if isinstance(answer, dict):
        for key in ("items", "results", "outcomes"):
            if isinstance(answer.get(key), list):
                return list(answer[key])
    return list(answer) if isinstance(answer, list) else []


def _headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "scenarist-worker"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class _Calls:
    """Request builders shared by both client flavours."""

    @staticmethod
    def lease(
        service: str,
        max_tasks: int,
        lease_seconds: float | None,
        wait: float,
        worker_id: str | None,
    ) -> _Call:
        body: dict[str, Any] = {"max_tasks": max_tasks, "wait_seconds": wait}
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        if worker_id:
            body["worker_id"] = worker_id
        path = f"/queues/{quote(service, safe='')}/lease"
        return _Call("POST", path, body, timeout=wait + LONG_POLL_MARGIN_SECONDS)

    @staticmethod
    def heartbeat(task_id: str, lease_token: str, lease_seconds: float | None) -> _Call:
        body: dict[str, Any] = {"lease_token": lease_token}
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        return _Call("POST", task_path(task_id, "heartbeat"), body)

    @staticmethod
    def complete(
        task_id: str, lease_token: str, result_ref: str | None, result: Mapping[str, Any] | None
    ) -> _Call:
        body: dict[str, Any] = {"lease_token": lease_token, "result_ref": result_ref}
        if result is not None:
            body["result"] = dict(result)
        return _Call("POST", task_path(task_id, "complete"), body)

    @staticmethod
    def fail(task_id: str, lease_token: str, error: str, retryable: bool) -> _Call:
        body = {"lease_token": lease_token, "error": error, "retryable": retryable}
        return _Call("POST", task_path(task_id, "fail"), body)

    @staticmethod
    def submit(scenario: str, params: Mapping[str, Any], idempotency_key: str | None) -> _Call:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return _Call("POST", "/generate", {"scenario": scenario, "params": dict(params)}, headers)

    @staticmethod
    def complete_many(items: Sequence[CompletionItem]) -> _Call:
        body = [
            {"id": i.task_id, "lease_token": i.lease_token, "result_ref": i.result_ref}
            | ({"result": dict(i.result)} if i.result is not None else {})
            for i in items
        ]
        return _Call("POST", "/tasks/complete", {"items": body})


def _send_kwargs(call: _Call) -> dict[str, Any]:
    return {"json": call.body, "headers": dict(call.headers or {}), "timeout": call.timeout}


class ScenaristClient:
    """Blocking client. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=_headers(token), transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, call: _Call) -> Any:
        try:
            response = self._http.request(call.method, call.path, **_send_kwargs(call))
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"{call.method} {self.url}{call.path}: {exc}") from exc
        return _json(call, response)

    def health(self) -> Any:
        return self._call(_Call("GET", "/health", timeout=5.0))

    def submit(
        self, scenario: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Any:
        return self._call(_Calls.submit(scenario, params, idempotency_key))

    def get_scenario(self, scenario_id: str) -> Any:
        return self._call(_Call("GET", scenario_path(scenario_id)))

    def get_task(self, task_id: str) -> Any:
        return self._call(_Call("GET", task_path(task_id)))

    def cancel(self, scenario_id: str) -> Any:
        return self._call(_Call("POST", scenario_path(scenario_id, "cancel")))

    def retry(self, scenario_id: str) -> Any:
        return self._call(_Call("POST", scenario_path(scenario_id, "retry")))

    def lease(
        self,
        service: str,
        *,
        max_tasks: int = 1,
        lease_seconds: float | None = None,
        wait_seconds: float = 0.0,
        worker_id: str | None = None,
    ) -> list[LeasedTask]:
        call = _Calls.lease(service, max_tasks, lease_seconds, wait_seconds, worker_id)
        return [_parse_leased(raw) for raw in self._call(call)["tasks"]]

    def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: float | None = None
    ) -> float | None:
        answer = self._call(_Calls.heartbeat(task_id, lease_token, lease_seconds))
        return parse_timestamp((answer or {}).get("lease_expires_at"))

    def complete(
        self,
        task_id: str,
        lease_token: str,
        result_ref: str | None,
        result: Mapping[str, Any] | None = None,
    ) -> Any:
        return self._call(_Calls.complete(task_id, lease_token, result_ref, result))

    def fail(self, task_id: str, lease_token: str, error: str, *, retryable: bool = True) -> Any:
        return self._call(_Calls.fail(task_id, lease_token, error, retryable))

    def complete_many(self, items: Sequence[CompletionItem]) -> list[Any]:
        """Per-item outcomes, in order; one stale item does not fail the batch."""
        return list(_batch_outcomes(self._call(_Calls.complete_many(items))))

    def events(
        self, scenario_id: str, *, last_event_id: str | None = None
    ) -> Iterator[ServerEvent]:
        """Server-sent events of a scenario until the server closes the stream."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        call = _Call("GET", scenario_path(scenario_id, "events"))
        timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, read=None)
        try:
            with self._http.stream("GET", call.path, headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_status(call, response)
                parser = SseParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"event stream of {scenario_id}: {exc}") from exc


class AsyncScenaristClient:
    """Asyncio client with the worker-protocol subset of `ScenaristClient` plus reads."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=_headers(token), transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, call: _Call) -> Any:
        try:
            response = await self._http.request(call.method, call.path, **_send_kwargs(call))
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"{call.method} {self.url}{call.path}: {exc}") from exc
        return _json(call, response)

    async def get(self, path: str) -> Any:
        return await self._call(_Call("GET", path))

    async def lease(
        self,
        service: str,
        *,
        max_tasks: int = 1,
        lease_seconds: float | None = None,
        wait_seconds: float = 0.0,
        worker_id: str | None = None,
    ) -> list[LeasedTask]:
        call = _Calls.lease(service, max_tasks, lease_seconds, wait_seconds, worker_id)
        return [_parse_leased(raw) for raw in (await self._call(call))["tasks"]]

    async def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: float | None = None
    ) -> float | None:
        answer = await self._call(_Calls.heartbeat(task_id, lease_token, lease_seconds))
        return parse_timestamp((answer or {}).get("lease_expires_at"))

    async def complete(
        self,
        task_id: str,
        lease_token: str,
        result_ref: str | None,
        result: Mapping[str, Any] | None = None,
    ) -> Any:
        return await self._call(_Calls.complete(task_id, lease_token, result_ref, result))

    async def fail(
        self, task_id: str, lease_token: str, error: str, *, retryable: bool = True
    ) -> Any:
        return await self._call(_Calls.fail(task_id, lease_token, error, retryable))

    async def complete_many(self, items: Sequence[CompletionItem]) -> list[Any]:
        return list(_batch_outcomes(await self._call(_Calls.complete_many(items))))

    async def events(self, scenario_id: str) -> AsyncIterator[ServerEvent]:
        call = _Call("GET", scenario_path(scenario_id, "events"))
        timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, read=None)
        headers = {"Accept": "text/event-stream"}
        try:
            async with self._http.stream(
                "GET", call.path, headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _raise_for_status(call, response)
                parser = SseParser()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"event stream of {scenario_id}: {exc}") from exc
