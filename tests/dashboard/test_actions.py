"""Cancel goes through a confirmation page; a cancelled scenario offers "Resume", a failed
one "Retry" (pages through the real app, in-process; no scripts needed)."""

from __future__ import annotations

import re

import httpx

from tests.dashboard.conftest import submit

VOICE = {"scenario": "CreateVoice", "description": "Hello", "count": 2}


async def status_of(client: httpx.AsyncClient, scenario_id: str) -> str:
    return str((await client.get(f"/scenarios/{scenario_id}")).json()["status"])


async def test_the_cancel_button_opens_a_confirmation_page(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, VOICE)
    leased = await client.post("/queues/audio-service/lease", json={"max_tasks": 1})
    assert len(leased.json()["tasks"]) == 1
    page = (await client.get(f"/ui/scenarios/{scenario_id}")).text
    button = re.search(r'<a class="button danger" id="cancel-button" href="([^"]+)"', page)
    assert button is not None
    assert f'action="/ui/scenarios/{scenario_id}/cancel"' not in page  # no one-click form
    confirm = await client.get(button.group(1))
    assert confirm.status_code == 200
    assert "Cancel this scenario?" in confirm.text
    assert f'action="/ui/scenarios/{scenario_id}/cancel?confirmed=true"' in confirm.text
    assert 'id="keep-running"' in confirm.text
    assert "2 unfinished tasks will not run" in confirm.text
    assert "the results of the 1 being processed now will be refused" in confirm.text
    assert "<script>" not in confirm.text
    assert "script-src 'self'" in confirm.headers["content-security-policy"]
    assert await status_of(client, scenario_id) == "running"  # looking changed nothing


async def test_a_post_without_confirmation_only_leads_to_the_page(
    client: httpx.AsyncClient,
) -> None:
    scenario_id = await submit(client, VOICE)
    unconfirmed = await client.post(f"/ui/scenarios/{scenario_id}/cancel")
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["location"] == f"/ui/scenarios/{scenario_id}/cancel"
    assert await status_of(client, scenario_id) == "pending"
    confirmed = await client.post(f"/ui/scenarios/{scenario_id}/cancel?confirmed=true")
    assert confirmed.headers["location"].endswith("notice=cancelled")
    assert await status_of(client, scenario_id) == "cancelled"


async def test_no_confirmation_page_for_an_ended_scenario(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, VOICE)
    await client.post(f"/ui/scenarios/{scenario_id}/cancel?confirmed=true")
    page = await client.get(f"/ui/scenarios/{scenario_id}/cancel")
    assert page.status_code == 303
    assert page.headers["location"].endswith("notice=not-cancellable")


async def test_a_cancelled_scenario_offers_resume_not_retry(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, VOICE)
    await client.post(f"/ui/scenarios/{scenario_id}/cancel?confirmed=true")
    page = (await client.get(f"/ui/scenarios/{scenario_id}")).text
    assert "Resume cancelled tasks" in page
    assert "Retry failed tasks" not in page
    resumed = await client.post(f"/ui/scenarios/{scenario_id}/retry")
    assert resumed.headers["location"].endswith("notice=resumed")
    notice = (await client.get(resumed.headers["location"])).text
    assert "Scenario resumed: its cancelled tasks are queued again." in notice


async def test_a_failed_scenario_offers_retry(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, VOICE)
    for name in ("voice_1", "voice_2"):
        failed = await client.patch(
            f"/tasks/{scenario_id}:{name}/status",
            json={"status": "failed", "error": "no voice", "retryable": False},
        )
        assert failed.status_code == 200, failed.text
    assert await status_of(client, scenario_id) == "failed"
    page = (await client.get(f"/ui/scenarios/{scenario_id}")).text
    assert 'id="retry-button">Retry failed tasks' in page
    assert "Resume cancelled tasks" not in page
    retried = await client.post(f"/ui/scenarios/{scenario_id}/retry")
    assert retried.headers["location"].endswith("notice=retried")
