"""The asyncio client's keep-alive transport against a real server: connection reuse,
chunked and oversized responses, connections the server closed or cancelled calls left
unusable, a server killed mid-request, and problem+json mapped to the client's errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenarist.worker import (
    ApiError,
    AsyncScenaristClient,
    AuthError,
    CompletionItem,
    LeaseLostError,
    NotFoundError,
    ServerUnreachableError,
)
from scenarist.worker.errors import ResponseTooLargeError
from scenarist.worker.protocol import scenario_path, task_path
from scenarist.worker.transport import HttpTransport
from tests.support.live_server import ServerProcess
from tests.worker.server import LiveServer

TOKEN = "worker-token-0123456789"


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    workdir = tmp_path / "process"
    server = ServerProcess(workdir, store_url=f"sqlite:///{workdir / 'db.sqlite'}")
    try:
        yield server.start()
    finally:
        server.kill()


async def test_many_calls_share_one_keep_alive_connection(live_server: LiveServer) -> None:
    transport = HttpTransport(live_server.url)
    try:
        for _ in range(20):
            reply = await transport.request("GET", "/health", timeout=5)
            assert reply.status == 200
        assert transport.connections_opened == 1
    finally:
        await transport.aclose()


async def test_concurrent_calls_stay_within_the_connection_limit(live_server: LiveServer) -> None:
    transport = HttpTransport(live_server.url, max_connections=2)
    try:
        replies = await asyncio.gather(
            *(transport.request("GET", "/health", timeout=5) for _ in range(8))
        )
        assert [r.status for r in replies] == [200] * 8
        assert transport.connections_opened <= 2
    finally:
        await transport.aclose()


async def test_a_chunked_response_is_read_whole_and_the_connection_reused(
    live_server: LiveServer,
) -> None:
    async with AsyncScenaristClient(live_server.url) as client:
        scenario_id = (await client.submit("Jobs", {"n": 1}))["scenario_id"]
        (task,) = await client.lease("test-service")
        await client.complete(task.id, task.lease_token, "out/1")
    transport = HttpTransport(live_server.url)
    try:
        stream = await transport.request(
            "GET",
            scenario_path(scenario_id, "events"),
            headers={"Accept": "text/event-stream"},
            timeout=10,
        )
        assert stream.headers["transfer-encoding"] == "chunked"
        assert "event: end" in stream.text
        assert (await transport.request("GET", "/health", timeout=5)).status == 200
        assert transport.connections_opened == 1
    finally:
        await transport.aclose()


async def test_connection_close_is_honoured(live_server: LiveServer) -> None:
    transport = HttpTransport(live_server.url)
    try:
        closing = await transport.request(
            "GET", "/health", headers={"Connection": "close"}, timeout=5
        )
        assert closing.headers["connection"] == "close"
        assert (await transport.request("GET", "/health", timeout=5)).status == 200
        assert transport.connections_opened == 2
    finally:
        await transport.aclose()


async def test_an_oversized_response_is_refused_and_its_connection_dropped(
    live_server: LiveServer,
) -> None:
    transport = HttpTransport(live_server.url, max_response_bytes=4096)
    try:
        with pytest.raises(ResponseTooLargeError, match="larger than 4096 bytes"):
            await transport.request("GET", "/openapi.json", timeout=5)
        assert (await transport.request("GET", "/health", timeout=5)).status == 200
        assert transport.connections_opened == 2
    finally:
        await transport.aclose()
    async with AsyncScenaristClient(live_server.url, max_response_bytes=4096) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.get("/openapi.json")
        assert (await client.get("/health"))["status"] == "healthy"


async def test_a_cancelled_call_does_not_leave_its_answer_for_the_next(
    live_server: LiveServer,
) -> None:
    async with AsyncScenaristClient(live_server.url) as client:
        long_poll = asyncio.create_task(client.lease("test-service", wait_seconds=5))
        await asyncio.sleep(0.3)
        long_poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long_poll
        assert (await client.get("/health"))["status"] == "healthy"


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    server_process: ServerProcess,
) -> None:
    transport = HttpTransport(server_process.url)
    try:
        assert (await transport.request("GET", "/health", timeout=5)).status == 200
        server_process.kill()
        await asyncio.sleep(0.2)  # the event loop sees the close
        server_process.start()
        assert (await transport.request("GET", "/health", timeout=5)).status == 200
        server_process.kill()
        server_process.start()  # blocks the loop: the close waits unread on the socket
        assert (await transport.request("GET", "/health", timeout=5)).status == 200
        assert transport.connections_opened == 3
    finally:
        await transport.aclose()


async def test_a_server_killed_mid_request_fails_the_call_at_once(
    server_process: ServerProcess,
) -> None:
    async with AsyncScenaristClient(server_process.url) as client:
        long_poll = asyncio.create_task(client.lease("test-service", wait_seconds=20))
        await asyncio.sleep(0.5)
        server_process.kill()
        with pytest.raises(ServerUnreachableError, match="connection closed"):
            await asyncio.wait_for(long_poll, timeout=5)
        with pytest.raises(ServerUnreachableError, match="cannot connect"):
            await client.get("/health")


async def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        transport = HttpTransport(f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(ServerUnreachableError, match=r"no response within 0.3s"):
                await asyncio.wait_for(transport.request("GET", "/health", timeout=0.3), 5)
        finally:
            await transport.aclose()


async def test_problem_answers_raise_the_same_errors_as_before(live_server: LiveServer) -> None:
    async with AsyncScenaristClient(live_server.url) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.get(scenario_path("no-such-scenario"))
        assert missing.value.problem["status"] == 404
        await client.submit("Jobs", {"n": 1})
        (task,) = await client.lease("test-service")
        with pytest.raises(LeaseLostError):
            await client.heartbeat(task.id, "not-the-token")
        with pytest.raises(ApiError) as invalid:
            await client.lease("test-service", max_tasks=0)
        assert invalid.value.status_code == 422
        tasks, outcomes = await client.lease_services(
            ["test-service"], complete=[CompletionItem(task.id, task.lease_token, "out/1")]
        )
        assert tasks == []
        assert [o["ok"] for o in outcomes] == [True]
        assert (await client.get(task_path(task.id)))["status"] == "success"


async def test_a_refused_token_raises_auth_error(tmp_path: Path) -> None:
    tokens = [{"token": TOKEN, "role": "worker"}]
    server = LiveServer(workdir=tmp_path / "auth", extra={"tokens": tokens}).start()
    try:
        async with AsyncScenaristClient(server.url, "wrong-token-0123456789") as client:
            with pytest.raises(AuthError):
                await client.lease("test-service")
        async with AsyncScenaristClient(server.url, TOKEN) as client:
            assert await client.lease("test-service") == []
    finally:
        server.stop()


async def test_reuse_check_works_for_descriptors_above_select_limit(
    live_server: LiveServer,
) -> None:
    # Fill the low descriptor numbers so the transport's socket lands above 1024, where
    # select() refuses to look; the pre-reuse check must still work there.
    fillers = [open("/dev/null", "rb") for _ in range(1100)]  # noqa: SIM115
    transport = HttpTransport(live_server.url)
    try:
        for _ in range(3):
            assert (await transport.request("GET", "/health", timeout=5)).status == 200
        assert transport.connections_opened == 1
    finally:
        await transport.aclose()
        for filler in fillers:
            filler.close()
