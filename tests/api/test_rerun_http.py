"""`POST /scenarios/{id}/rerun` and `GET /tasks/{id}/history` through the app, on every
store: the seed's video with one slide redrawn, and the request's bad inputs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.api.callback_receivers import Receiver
from tests.api.conftest import drive_to_end, make_settings, serve, submit

SERVICES = ("text-service", "audio-service", "image-service", "video-service")


async def lease_all(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    leased = []
    for service in SERVICES:
        r = await client.post(f"/queues/{service}/lease", json={"max_tasks": 10})
        assert r.status_code == 200, r.text
        leased.extend(r.json()["tasks"])
    return leased


async def test_rerun_one_slide_with_a_new_style(any_client: httpx.AsyncClient) -> None:
    sid = (await submit(any_client))["scenario_id"]
    await drive_to_end(any_client, sid)

    r = await any_client.post(
        f"/scenarios/{sid}/rerun",
        json={"tasks": ["slide_prompt_2"], "payload": {"slide_prompt_2": {"style": "noir"}}},
    )

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rerun"] == ["slide_prompt_2", "slide_image_2", "video"]
    assert (body["status"], body["finished_at"]) == ("running", None)
    task = (await any_client.get(f"/tasks/{sid}:slide_prompt_2")).json()
    assert (task["run"], task["runs"], task["status"]) == (2, 2, "queued")
    assert task["payload"]["style"] == "noir"
    summary = (await any_client.get(f"/scenarios/{sid}")).json()
    runs = {t["name"]: t["run"] for t in summary["tasks"]}
    assert (runs["slide_prompt_2"], runs["slide_prompt_1"]) == (2, 1)

    [prompt] = await lease_all(any_client)
    assert prompt["name"] == "slide_prompt_2"
    await any_client.post(
        f"/tasks/{prompt['id']}/complete",
        json={"lease_token": prompt["lease_token"], "result_ref": "out/noir", "result": {"n": 2}},
    )
    [image] = await lease_all(any_client)
    assert image["name"] == "slide_image_2"
    assert image["inputs"][0]["result_ref"] == "out/noir"
    await any_client.post(
        f"/tasks/{image['id']}/complete", json={"lease_token": image["lease_token"]}
    )
    await drive_to_end(any_client, sid)
    assert (await any_client.get(f"/scenarios/{sid}")).json()["status"] == "success"

    history = (await any_client.get(f"/tasks/{sid}:slide_prompt_2/history")).json()
    assert (history["run"], history["runs"]) == (2, 2)
    assert [(i["run"], i["result_ref"]) for i in history["items"]] == [
        (2, "out/noir"),
        (1, "out/slide_prompt_2"),
    ]
    assert "style" not in history["items"][1]["payload"]
    assert history["items"][0]["payload"]["style"] == "noir"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tasks": []}, "tasks"),
        ({"tasks": ["nope"]}, "tasks"),
        ({"tasks": ["script"], "payload": {"voice": {"a": 1}}}, "payload.voice"),
        ({"tasks": ["script"], "payload": {"script": "noir"}}, "payload.script"),
        ({"tasks": ["script"], "payload": {"script": {"x": "y" * 70_000}}}, "payload.script"),
        ({"tasks": ["script"], "cancel_running": "yes"}, "cancel_running"),
        ({"tasks": ["script"], "no_cahce": True}, "no_cahce"),
    ],
)
async def test_bad_rerun_requests_name_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    sid = (await submit(client))["scenario_id"]
    r = await client.post(f"/scenarios/{sid}/rerun", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert (await client.get(f"/tasks/{sid}:script")).json()["run"] == 1


async def test_a_rerun_during_processing_is_a_conflict_naming_the_task(
    client: httpx.AsyncClient,
) -> None:
    sid = (await submit(client))["scenario_id"]
    [script] = await lease_all(client)
    r = await client.post(f"/scenarios/{sid}/rerun", json={"tasks": ["script"]})
    assert r.status_code == 409, r.text
    assert "script" in r.json()["detail"]
    r = await client.post(
        f"/scenarios/{sid}/rerun", json={"tasks": ["script"], "cancel_running": True}
    )
    assert r.status_code == 200, r.text
    late = await client.post(
        f"/tasks/{script['id']}/complete", json={"lease_token": script["lease_token"]}
    )
    assert late.status_code == 409
    assert (await client.post("/scenarios/nope/rerun", json={"tasks": ["a"]})).status_code == 404
    assert (await client.get(f"/tasks/{sid}:nope/history")).status_code == 404


async def test_a_rerun_scenario_reports_its_new_end_by_callback_and_events(
    sqlite_url: str,
) -> None:
    receiver = Receiver().start()
    try:
        settings = make_settings(sqlite_url, callback_allow=("127.0.0.1",))
        async with serve(settings) as client:
            body = {"scenario": "CreateVoice", "description": "hi", "callback_url": receiver.url}
            sid = (await submit(client, body))["scenario_id"]
            await drive_to_end(client, sid)
            assert await delivered(receiver, 1)
            r = await client.post(f"/scenarios/{sid}/rerun", json={"tasks": ["voice_1"]})
            assert r.status_code == 200, r.text
            await drive_to_end(client, sid)
            assert await delivered(receiver, 2)
            events = await client.get(f"/scenarios/{sid}/events")
    finally:
        receiver.stop()
    statuses = [json.loads(p)["status"] for _, p, _ in receiver.received]
    assert statuses == ["success", "success"]
    # The stream replays both ends: success, running again after the rerun, success.
    text = events.text
    assert text.index('"running"') < text.rindex('"success"')
    assert text.count("event: end") == 1


async def delivered(receiver: Receiver, count: int) -> bool:
    for _ in range(400):
        if len(receiver.received) >= count:
            return True
        await asyncio.sleep(0.05)
    return False


async def make_video(client: httpx.AsyncClient, sid: str, sections: list[str]) -> list[str]:
    """Complete the script with `sections`, then everything else; the names of the
    video's inputs when it is leased."""
    [script] = await lease_all(client)
    assert script["name"] == "script"
    done = await client.post(
        f"/tasks/{script['id']}/complete",
        json={"lease_token": script["lease_token"], "result": {"sections": sections}},
    )
    assert done.status_code == 200, done.text
    inputs: list[str] = []
    for _ in range(10):
        for task in await lease_all(client):
            if task["name"] == "video":
                inputs = [i["task"] for i in task["inputs"]]
            r = await client.post(
                f"/tasks/{task['id']}/complete", json={"lease_token": task["lease_token"]}
            )
            assert r.status_code == 200, r.text
    assert (await client.get(f"/scenarios/{sid}")).json()["status"] == "success"
    return inputs


async def test_rerun_the_script_of_an_auto_video_makes_it_again_with_the_new_slides(
    any_client: httpx.AsyncClient,
) -> None:
    """CreateVideoAuto: the script decides the slide count. Rerunning it with a new
    payload brings the slide groups back; its new result expands them to two slides and
    the video is made again from those (decision 63)."""
    sid = (await submit(any_client, {"scenario": "CreateVideoAuto", "description": "cats"}))[
        "scenario_id"
    ]
    first = await make_video(any_client, sid, ["intro", "middle", "end"])
    assert first == ["voice", "slide_image_1", "slide_image_2", "slide_image_3"]

    r = await any_client.post(
        f"/scenarios/{sid}/rerun",
        json={"tasks": ["script"], "payload": {"script": {"parts": 2}}},
    )

    assert r.status_code == 200, r.text
    assert r.json()["rerun"] == ["script", "voice", "slide_prompt", "slide_image", "video"]
    summary = (await any_client.get(f"/scenarios/{sid}")).json()
    assert [t["name"] for t in summary["tasks"]] == [
        "script", "voice", "slide_prompt", "slide_image", "video",
    ]  # fmt: skip
    assert summary["progress"]["growing"] is True
    video = (await any_client.get(f"/tasks/{sid}:video")).json()
    assert video["depends_on"] == ["voice", "slide_image"]
    script = (await any_client.get(f"/tasks/{sid}:script")).json()
    assert script["payload"]["parts"] == 2

    second = await make_video(any_client, sid, ["short", "end"])
    assert second == ["voice", "slide_image_1", "slide_image_2"]
    names = [t["name"] for t in (await any_client.get(f"/scenarios/{sid}")).json()["tasks"]]
    assert "slide_image_3" not in names
    history = (await any_client.get(f"/tasks/{sid}:video/history")).json()
    assert (history["run"], len(history["items"])) == (2, 2)
