"""Scenario-end callbacks to a loopback receiver, and the Prometheus exposition."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.api.conftest import drive_to_end, make_settings, serve, submit

SECRET = "callback-secret-for-tests"


@dataclass
class Receiver:
    """A loopback HTTP server that fails its first `failures` deliveries."""

    failures: int
    received: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 500 if len(receiver.received) < receiver.failures else 204
                receiver.received.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=1)
    r.server = ThreadingHTTPServer(("127.0.0.1", 0), r.handler())
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


async def test_callback_is_signed_and_retried(sqlite_url: str, receiver: Receiver) -> None:
    settings = make_settings(sqlite_url, callback_secret=SECRET)
    async with serve(settings) as client:
        body = {"scenario": "CreateVoice", "description": "hi", "callback_url": receiver.url}
        created = await submit(client, body)
        await drive_to_end(client, created["scenario_id"])
        for _ in range(100):
            if len(receiver.received) >= 2:
                break
            await asyncio.sleep(0.05)
    assert [status for _, _, status in receiver.received] == [500, 204]
    headers, payload, _ = receiver.received[-1]
    expected = hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    assert headers["X-Scenarist-Signature"] == f"sha256={expected}"
    summary = json.loads(payload)
    assert summary["scenario_id"] == created["scenario_id"]
    assert summary["status"] == "success"
    assert summary["progress"]["finished"] == 1
    assert receiver.received[0][1] == payload  # a retry sends the same bytes


async def test_callback_url_must_be_http(client: httpx.AsyncClient) -> None:
    body = {"scenario": "CreateVoice", "description": "hi", "callback_url": "file:///etc/passwd"}
    response = await client.post("/generate", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == "callback_url"


async def test_metrics_exposition(client: httpx.AsyncClient) -> None:
    created = await submit(client)
    await client.post("/queues/text-service/lease", json={"max_tasks": 1})
    await client.patch(
        f"/tasks/{created['scenario_id']}:script/status",
        json={"status": "failed", "error": "x", "retryable": True},
    )
    # the script now waits out its backoff; the seed's PATCH may claim and finish it early
    await client.patch(f"/tasks/{created['scenario_id']}:script/status", json={"status": "success"})
    await drive_to_end(client, created["scenario_id"])
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'scenarist_scenarios_submitted_total{template="CreateVideo"} 1.0' in text
    assert 'scenarist_tasks_completed_total{service="image-service"} 3.0' in text
    assert 'scenarist_tasks_leased_total{service="image-service"} 3.0' in text
    assert 'scenarist_tasks_failed_total{final="false",service="text-service"} 1.0' in text
    assert 'scenarist_dispatch_latency_seconds_count{service="video-service"} 1.0' in text
    assert 'scenarist_queue_ready{service="text-service"} 0.0' in text
    assert "scenarist_queue_in_flight" in text


async def test_metrics_registries_are_per_app(sqlite_url: str, tmp_path: object) -> None:
    async with serve(make_settings(sqlite_url)) as first:
        await submit(first)
    async with serve(make_settings(sqlite_url)) as second:
        text = (await second.get("/metrics")).text
    assert 'scenarist_scenarios_submitted_total{template="CreateVideo"}' not in text
