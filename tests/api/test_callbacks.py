"""Scenario-end callbacks through the whole app: signed, retried, and unable to hold the
loop up or fill the server's memory. The receivers are on loopback, which the address
policy refuses by default, so these apps allow 127.0.0.1 explicitly."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.callback_receivers import (
    WAIT_SECONDS,
    DripReceiver,
    HugeBodyReceiver,
    Receiver,
)
from tests.api.conftest import drive_to_end, make_settings, serve, submit

SECRET = "callback-secret-for-tests"
LOOPBACK_ALLOWED = ("127.0.0.1",)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(failures=1).start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def drip() -> Iterator[DripReceiver]:
    r = DripReceiver().start()
    try:
        yield r
    finally:
        r.stop()


def voice(callback_url: str) -> dict[str, Any]:
    return {"scenario": "CreateVoice", "description": "hi", "callback_url": callback_url}


async def finish_with_callback(client: httpx.AsyncClient, callback_url: str) -> str:
    created = await submit(client, voice(callback_url))
    await drive_to_end(client, created["scenario_id"])
    return str(created["scenario_id"])


async def wait_for(event: Any) -> bool:
    """Wait (off the event loop) for a threading.Event, up to the generous cap."""
    return bool(await asyncio.to_thread(event.wait, WAIT_SECONDS))


async def test_callback_is_signed_and_retried(sqlite_url: str, receiver: Receiver) -> None:
    settings = make_settings(sqlite_url, callback_secret=SECRET, callback_allow=LOOPBACK_ALLOWED)
    async with serve(settings) as client:
        scenario_id = await finish_with_callback(client, receiver.url)
        for _ in range(200):
            if len(receiver.received) >= 2:
                break
            await asyncio.sleep(0.05)
    assert [status for _, _, status in receiver.received] == [500, 204]
    headers, payload, _ = receiver.received[-1]
    expected = hmac.new(SECRET.encode(), payload, hashlib.sha256).hexdigest()
    assert headers["X-Scenarist-Signature"] == f"sha256={expected}"
    summary = json.loads(payload)
    assert summary["scenario_id"] == scenario_id
    assert summary["status"] == "success"
    assert summary["progress"]["finished"] == 1
    assert receiver.received[0][1] == payload  # a retry sends the same bytes


async def test_a_slow_receiver_does_not_delay_another_scenarios_callback(
    sqlite_url: str, drip: DripReceiver, receiver: Receiver
) -> None:
    # A deadline far away: only running deliveries side by side lets the second through.
    settings = make_settings(sqlite_url, callback_allow=LOOPBACK_ALLOWED, callback_timeout=60)
    async with serve(settings) as client:
        await finish_with_callback(client, drip.url)
        assert await wait_for(drip.requested), "the slow receiver was never called"
        await finish_with_callback(client, receiver.url)
        assert await wait_for(receiver.arrived), "the second callback waited for the first"
        assert not drip.client_gone.is_set()  # the slow delivery was still going on
        drip.released.set()


async def test_a_delivery_ends_at_its_deadline_however_the_receiver_drips(
    sqlite_url: str, drip: DripReceiver
) -> None:
    settings = make_settings(sqlite_url, callback_allow=LOOPBACK_ALLOWED, callback_timeout=0.5)
    async with serve(settings) as client:
        await finish_with_callback(client, drip.url)
        assert await wait_for(drip.requested)
        assert await wait_for(drip.client_gone), "the delivery outlived its deadline"


async def test_a_huge_response_body_is_not_read(sqlite_url: str) -> None:
    huge = HugeBodyReceiver().start()
    try:
        settings = make_settings(sqlite_url, callback_allow=LOOPBACK_ALLOWED)
        async with serve(settings) as client:
            await finish_with_callback(client, huge.url)
            assert await wait_for(huge.done)
    finally:
        huge.stop()
    # What the kernel buffers on loopback is a few MiB; reading the body would be 400.
    assert huge.body_bytes_sent < 64 * 1024 * 1024
    assert huge.requests == 1  # a 200 is a delivery, whatever its body


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://127.9.9.9/hook",
        "http://[::1]/hook",
        "http://localhost:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://100.64.0.1/hook",
        "http://[fd12:3456::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[64:ff9b::a00:1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one decimal number
        "http://0x7f.1/hook",
        "https://127.0.0.1/hook",
    ],
)
async def test_internal_callback_addresses_are_refused_at_submit(
    client: httpx.AsyncClient, url: str
) -> None:
    response = await client.post("/generate", json=voice(url))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == "callback_url"
    assert "SCENARIST_CALLBACK_ALLOW" in problem["detail"]


async def test_a_public_address_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/generate", json=voice("http://93.184.215.14/hook"))
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (("127.0.0.0/8",), "http://127.0.0.1:9/hook"),
        (("10.0.0.0/8", "::1"), "http://[::1]:9/hook"),
        (("localhost",), "http://localhost:9/hook"),
    ],
)
async def test_the_allow_list_opens_internal_receivers(
    sqlite_url: str, allow: tuple[str, ...], url: str
) -> None:
    async with serve(make_settings(sqlite_url, callback_allow=allow)) as client:
        response = await client.post("/generate", json=voice(url))
    assert response.status_code == 201, response.text


async def test_callback_url_must_be_http(client: httpx.AsyncClient) -> None:
    body = {"scenario": "CreateVoice", "description": "hi", "callback_url": "file:///etc/passwd"}
    response = await client.post("/generate", json=body)
    assert response.status_code == 422
    assert response.json()["field"] == "callback_url"


async def test_a_dry_run_checks_the_callback_url_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/generate?dry_run=true", json=voice("http://10.0.0.1/"))
    assert response.status_code == 422
    assert response.json()["field"] == "callback_url"
