""" "Rerun from here" on a task's panel, and the panel's runs table (pages through the
real app, in-process; plain forms, no scripts)."""

from __future__ import annotations

import httpx

from tests.dashboard.conftest import ADMIN_TOKEN, CLIENT_TOKEN, submit

VOICE = {"scenario": "CreateVoice", "description": "Hello", "count": 2}
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def finish(client: httpx.AsyncClient, scenario_id: str, *names: str) -> None:
    for name in names:
        done = await client.patch(
            f"/tasks/{scenario_id}:{name}/status",
            json={"status": "success", "result_ref": f"out/{name}"},
        )
        assert done.status_code == 200, done.text


async def test_rerun_from_a_task_with_an_override_then_its_runs_are_listed(
    client: httpx.AsyncClient,
) -> None:
    scenario_id = await submit(client, VOICE)
    await finish(client, scenario_id, "voice_1", "voice_2")
    page = (await client.get(f"/ui/scenarios/{scenario_id}?task=voice_1")).text
    assert f'action="/ui/scenarios/{scenario_id}/tasks/voice_1/rerun"' in page
    assert 'class="runs"' not in page  # one run: nothing to compare yet

    posted = await client.post(
        f"/ui/scenarios/{scenario_id}/tasks/voice_1/rerun",
        content="payload=%7B%22style%22%3A+%22noir%22%7D",
        headers=FORM,
    )

    assert posted.status_code == 303
    assert posted.headers["location"].endswith("notice=rerun&task=voice_1")
    task = (await client.get(f"/tasks/{scenario_id}:voice_1")).json()
    assert (task["run"], task["status"], task["payload"]["style"]) == (2, "queued", "noir")
    assert (await client.get(f"/tasks/{scenario_id}:voice_2")).json()["run"] == 1
    shown = (await client.get(posted.headers["location"])).text
    assert "Rerun requested: the task and every task below it run again." in shown
    assert 'data-run="1"' in shown
    assert "<code>out/voice_1</code>" in shown
    panel = (await client.get(f"/ui/scenarios/{scenario_id}/tasks/voice_1")).text
    assert "Run 1: payload and result" in panel


async def test_a_bad_override_or_a_processing_task_is_refused_with_a_notice(
    client: httpx.AsyncClient,
) -> None:
    scenario_id = await submit(client, VOICE)
    url = f"/ui/scenarios/{scenario_id}/tasks/voice_1/rerun"
    bad = await client.post(url, content="payload=%5B1%5D", headers=FORM)
    assert bad.headers["location"].endswith("notice=rerun-bad-override&task=voice_1")
    unknown = await client.post(url.replace("voice_1", "nope"), headers=FORM)
    assert unknown.headers["location"].endswith("notice=rerun-unknown&task=nope")
    leased = await client.post("/queues/audio-service/lease", json={"max_tasks": 1})
    assert [t["name"] for t in leased.json()["tasks"]] == ["voice_1"]
    busy = await client.post(url, content="payload=", headers=FORM)
    assert busy.headers["location"].endswith("notice=rerun-processing&task=voice_1")
    assert (await client.get(f"/tasks/{scenario_id}:voice_1")).json()["run"] == 1
    cancelled = await client.post(url, content="cancel_running=on", headers=FORM)
    assert cancelled.headers["location"].endswith("notice=rerun&task=voice_1")
    assert (await client.get(f"/tasks/{scenario_id}:voice_1")).json()["run"] == 2


async def test_only_an_admin_sees_and_may_use_the_rerun_form(secured: httpx.AsyncClient) -> None:
    admin = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    client = {"authorization": f"Bearer {CLIENT_TOKEN}"}
    scenario_id = await submit(secured, VOICE, **admin)
    page = await secured.get(f"/ui/scenarios/{scenario_id}?task=voice_1", headers=client)
    assert page.status_code == 200
    assert "Rerun from here" not in page.text
    refused = await secured.post(
        f"/ui/scenarios/{scenario_id}/tasks/voice_1/rerun", headers={**client, **FORM}
    )
    assert refused.status_code == 403
    page = await secured.get(f"/ui/scenarios/{scenario_id}?task=voice_1", headers=admin)
    assert "Rerun from here" in page.text
