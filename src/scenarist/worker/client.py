"""A thin typed HTTP client for a scenarist server, in a sync and an asyncio flavour.

Both flavours share request building and response parsing (`protocol.py`); each only
moves bytes. The sync one, which the CLI runs, sends its JSON calls with the standard
library (`blocking_transport.py`: a command starts without importing httpx); the asyncio
one, which workers run, on a lean keep-alive transport (`transport.py`, a fraction of
httpx's CPU per request). Either uses httpx instead when a caller injects an httpx
transport (tests script the server with `httpx.MockTransport`), and both stream
server-sent events with httpx (imported when first needed). A test holds each fast path
to the httpx one. Responses the worker
loop depends on are typed (`LeasedTask`); scenario documents are returned as parsed JSON
because clients mostly render or forward them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlencode

from scenarist.worker.blocking_transport import BlockingTransport
from scenarist.worker.errors import ServerUnreachableError
from scenarist.worker.protocol import (
    DEFAULT_URL,
    REQUEST_TIMEOUT_SECONDS,
    Call,
    Calls,
    CompletionItem,
    LeasedTask,
    Priority,
    SubmitItem,
    as_reply,
    batch_outcomes,
    default_headers,
    encode_body,
    parse_lease_round,
    parse_leased,
    parse_timestamp,
    raise_for_status,
    response_json,
    scenario_path,
    scenario_tasks_path,
    send_kwargs,
    task_path,
)
from scenarist.worker.sse import ServerEvent, SseParser

if TYPE_CHECKING:
    import httpx

    from scenarist.worker.transport import HttpTransport
from scenarist.worker.wire import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESPONSE_BYTES

__all__ = [
    "DEFAULT_URL",
    "AsyncScenaristClient",
    "CompletionItem",
    "LeasedTask",
    "ScenaristClient",
    "parse_timestamp",
    "task_path",
]


def tls_verification(url: str) -> bool:
    """Verify certificates for an https server. A plain-http client never opens TLS (every
    request goes to its http base URL and redirects are not followed), so it skips loading
    the CA bundle, which cost a CLI command ~150 ms of its start-up."""
    return url.lower().startswith("https://")


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
        self._headers = default_headers(token)
        self._transport = transport
        self._http: httpx.Client | None = None
        self._fast: BlockingTransport | None = None
        if transport is None:
            self._fast = BlockingTransport(
                self.url, headers=self._headers, max_response_bytes=DEFAULT_MAX_RESPONSE_BYTES
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _httpx(self) -> httpx.Client:
        """The httpx client, built on first use (event streams, injected transports)."""
        if self._http is None:
            import httpx

            self._http = httpx.Client(
                base_url=self.url,
                headers=self._headers,
                transport=self._transport,
                verify=tls_verification(self.url),
            )
        return self._http

    def _call(self, call: Call) -> Any:
        if self._fast is None:
            return self._call_httpx(call)
        reply = self._fast.request(
            call.method, call.path, encode_body(call), headers=call.headers, timeout=call.timeout
        )
        return response_json(call, reply)

    def _call_httpx(self, call: Call) -> Any:
        import httpx

        try:
            response = self._httpx().request(call.method, call.path, **send_kwargs(call))
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"{call.method} {self.url}{call.path}: {exc}") from exc
        return response_json(call, as_reply(response))

    def health(self) -> Any:
        return self._call(Call("GET", "/health", timeout=5.0))

    def submit(
        self,
        scenario: str,
        params: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        priority: Priority | None = None,
        tenant: str | None = None,
    ) -> Any:
        """POST /generate; `priority` is the scenario's lane (None: the server's normal),
        `tenant` whose fair share it takes (None: the token's, else the default one)."""
        return self._call(Calls.submit(scenario, params, idempotency_key, priority, tenant))

    def submit_many(self, items: Sequence[SubmitItem | Mapping[str, Any]]) -> list[Any]:
        """Submit up to 1000 scenarios in one request (POST /generate/batch): one outcome
        per item, in order, each {"status": 201 | 200 | problem status, "scenario_id"...}
        or with a "problem". An item is refused alone; the request itself fails (ApiError)
        only when the batch is malformed, too large, or the server cannot answer."""
        return list(self._call(Calls.submit_many(items))["items"])

    def get_scenario(self, scenario_id: str, *, with_tasks: bool = True) -> Any:
        """The scenario's body; `with_tasks=False` leaves out its tasks and failures (a
        constant-size answer, for status and progress of a scenario of any size)."""
        query = "" if with_tasks else "?tasks=none"
        return self._call(Call("GET", scenario_path(scenario_id) + query))

    def scenario_tasks(
        self, scenario_id: str, *, group: str | None = None, page_size: int = 100
    ) -> Iterator[Any]:
        """Every task of a scenario (or of one `count`/`for_each` group) in plan order,
        read a page at a time."""
        cursor: str | None = None
        while True:
            path = scenario_tasks_path(scenario_id, group=group, limit=page_size, cursor=cursor)
            page = self._call(Call("GET", path))
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def get_task(self, task_id: str) -> Any:
        return self._call(Call("GET", task_path(task_id)))

    def cancel(self, scenario_id: str) -> Any:
        return self._call(Call("POST", scenario_path(scenario_id, "cancel")))

    def queues(self) -> Any:
        """`GET /queues`: per service, ready / delayed / in flight / oldest ready age."""
        return self._call(Call("GET", "/queues"))

    def workers(self) -> list[Any]:
        """`GET /workers`: workers seen lately, with labels, last seen, tasks in flight."""
        return list(self._call(Call("GET", "/workers"))["workers"])

    def retry(self, scenario_id: str) -> Any:
        return self._call(Call("POST", scenario_path(scenario_id, "retry")))

    def rerun(
        self,
        scenario_id: str,
        tasks: Sequence[str],
        *,
        payload: Mapping[str, Mapping[str, Any]] | None = None,
        cancel_running: bool = False,
        no_cache: bool = False,
    ) -> Any:
        """Run `tasks` and every task below them again; `payload`: per named task, the
        keys to replace in its payload. The answer lists the tasks under `rerun`."""
        body = {
            "tasks": list(tasks),
            "payload": {name: dict(keys) for name, keys in (payload or {}).items()},
            "cancel_running": cancel_running,
            "no_cache": no_cache,
        }
        return self._call(Call("POST", scenario_path(scenario_id, "rerun"), body))

    def history(self, task_id: str) -> Any:
        """A task's runs, newest first (the current one, then those reruns ended)."""
        return self._call(Call("GET", task_path(task_id, "history")))

    def clear_cache(self, service: str | None = None) -> None:
        """`DELETE /cache` (admin): empty the step cache, or one service's entries."""
        query = "" if service is None else "?" + urlencode({"service": service})
        self._call(Call("DELETE", "/cache" + query))

    def lease(
        self,
        service: str,
        *,
        max_tasks: int = 1,
        lease_seconds: float | None = None,
        wait_seconds: float = 0.0,
        worker_id: str | None = None,
    ) -> list[LeasedTask]:
        call = Calls.lease(service, max_tasks, lease_seconds, wait_seconds, worker_id)
        return [parse_leased(raw) for raw in self._call(call)["tasks"]]

    def lease_services(
        self,
        services: Sequence[str],
        *,
        max_tasks: int = 1,
        lease_seconds: float | None = None,
        wait_seconds: float = 0.0,
        worker_id: str | None = None,
        complete: Sequence[CompletionItem] = (),
        labels: Mapping[str, str] | None = None,
    ) -> tuple[list[LeasedTask], list[Any]]:
        """Report `complete` done, then lease across `services`: a worker's round in one
        request. Returns the leased tasks and one outcome per completion item, in order.
        `labels` replace the worker's labels in the workers registry."""
        call = Calls.lease_services(
            services,
            max_tasks=max_tasks,
            lease_seconds=lease_seconds,
            wait=wait_seconds,
            worker_id=worker_id,
            complete=complete,
            labels=labels,
        )
        return parse_lease_round(self._call(call))

    def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: float | None = None
    ) -> float | None:
        answer = self._call(Calls.heartbeat(task_id, lease_token, lease_seconds))
        return parse_timestamp((answer or {}).get("lease_expires_at"))

    def complete(
        self,
        task_id: str,
        lease_token: str,
        result_ref: str | None,
        result: Mapping[str, Any] | None = None,
        *,
        usage: Mapping[str, float] | None = None,
    ) -> Any:
        return self._call(Calls.complete(task_id, lease_token, result_ref, result, usage))

    def fail(
        self,
        task_id: str,
        lease_token: str,
        error: str,
        *,
        retryable: bool = True,
        usage: Mapping[str, float] | None = None,
    ) -> Any:
        return self._call(Calls.fail(task_id, lease_token, error, retryable, usage))

    def complete_many(self, items: Sequence[CompletionItem]) -> list[Any]:
        """Per-item outcomes, in order; one stale item does not fail the batch."""
        return list(batch_outcomes(self._call(Calls.complete_many(items))))

    def events(
        self, scenario_id: str, *, last_event_id: str | None = None
    ) -> Iterator[ServerEvent]:
        """Server-sent events of a scenario until the server closes the stream."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        import httpx

        call = Call("GET", scenario_path(scenario_id, "events"))
        timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, read=None)
        try:
            with self._httpx().stream(
                "GET", call.path, headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for_status(call, as_reply(response))
                parser = SseParser()
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"event stream of {scenario_id}: {exc}") from exc


class AsyncScenaristClient:
    """Asyncio client with the worker-protocol subset of `ScenaristClient` plus reads.

    `max_connections` bounds the keep-alive connections of the JSON calls (a worker's lease
    loop, heartbeats and completions) and `max_response_bytes` the answers they accept;
    `transport` swaps in an httpx transport for them."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        import httpx

        from scenarist.worker.transport import HttpTransport

        self.url = url.rstrip("/")
        headers = default_headers(token)
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, transport=transport)
        self._fast: HttpTransport | None = None
        if transport is None:
            self._fast = HttpTransport(
                self.url,
                headers=headers,
                max_connections=max_connections,
                max_response_bytes=max_response_bytes,
            )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._fast is not None:
            await self._fast.aclose()
        await self._http.aclose()

    async def _call(self, call: Call) -> Any:
        if self._fast is None:
            return await self._call_httpx(call)
        reply = await self._fast.request(
            call.method,
            call.path,
            encode_body(call),
            headers=call.headers,
            timeout=call.timeout,
        )
        return response_json(call, reply)

    async def _call_httpx(self, call: Call) -> Any:
        import httpx

        try:
            response = await self._http.request(call.method, call.path, **send_kwargs(call))
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"{call.method} {self.url}{call.path}: {exc}") from exc
        return response_json(call, as_reply(response))

    async def get(self, path: str) -> Any:
        return await self._call(Call("GET", path))

    async def submit(
        self,
        scenario: str,
        params: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        priority: Priority | None = None,
        tenant: str | None = None,
    ) -> Any:
        """ScenaristClient.submit, awaited."""
        return await self._call(Calls.submit(scenario, params, idempotency_key, priority, tenant))

    async def submit_many(self, items: Sequence[SubmitItem | Mapping[str, Any]]) -> list[Any]:
        """ScenaristClient.submit_many, awaited."""
        return list((await self._call(Calls.submit_many(items)))["items"])

    async def lease(
        self,
        service: str,
        *,
        max_tasks: int = 1,
        lease_seconds: float | None = None,
        wait_seconds: float = 0.0,
        worker_id: str | None = None,
    ) -> list[LeasedTask]:
        call = Calls.lease(service, max_tasks, lease_seconds, wait_seconds, worker_id)
        return [parse_leased(raw) for raw in (await self._call(call))["tasks"]]

    async def lease_services(
        self,
        services: Sequence[str],
        *,
        max_tasks: int = 1,
        lease_seconds: float | None = None,
        wait_seconds: float = 0.0,
        worker_id: str | None = None,
        complete: Sequence[CompletionItem] = (),
        labels: Mapping[str, str] | None = None,
    ) -> tuple[list[LeasedTask], list[Any]]:
        """Report `complete` done, then lease across `services`: a worker's round in one
        request. Returns the leased tasks and one outcome per completion item, in order.
        `labels` replace the worker's labels in the workers registry."""
        call = Calls.lease_services(
            services,
            max_tasks=max_tasks,
            lease_seconds=lease_seconds,
            wait=wait_seconds,
            worker_id=worker_id,
            complete=complete,
            labels=labels,
        )
        return parse_lease_round(await self._call(call))

    async def heartbeat(
        self, task_id: str, lease_token: str, *, lease_seconds: float | None = None
    ) -> float | None:
        answer = await self._call(Calls.heartbeat(task_id, lease_token, lease_seconds))
        return parse_timestamp((answer or {}).get("lease_expires_at"))

    async def complete(
        self,
        task_id: str,
        lease_token: str,
        result_ref: str | None,
        result: Mapping[str, Any] | None = None,
        *,
        usage: Mapping[str, float] | None = None,
    ) -> Any:
        return await self._call(Calls.complete(task_id, lease_token, result_ref, result, usage))

    async def fail(
        self,
        task_id: str,
        lease_token: str,
        error: str,
        *,
        retryable: bool = True,
        usage: Mapping[str, float] | None = None,
    ) -> Any:
        return await self._call(Calls.fail(task_id, lease_token, error, retryable, usage))

    async def complete_many(self, items: Sequence[CompletionItem]) -> list[Any]:
        return list(batch_outcomes(await self._call(Calls.complete_many(items))))

    async def events(self, scenario_id: str) -> AsyncIterator[ServerEvent]:
        import httpx

        call = Call("GET", scenario_path(scenario_id, "events"))
        timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, read=None)
        headers = {"Accept": "text/event-stream"}
        try:
            async with self._http.stream(
                "GET", call.path, headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise_for_status(call, as_reply(response))
                parser = SseParser()
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"event stream of {scenario_id}: {exc}") from exc
