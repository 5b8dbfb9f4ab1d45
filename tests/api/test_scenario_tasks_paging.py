"""Big scenarios stay readable: `GET /scenarios/{id}?tasks=none` leaves the tasks out and
`GET /scenarios/{id}/tasks` pages them (optionally one group's copies), on every store."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import submit
from tests.api.test_explanations import fail_slide_prompt_for_good

SLIDES = 30  # CreateVideo: script, voice, 30 prompts, 30 images, video
TOTAL = 2 + 2 * SLIDES + 1


async def big_video(client: httpx.AsyncClient) -> str:
    body = {"scenario": "CreateVideo", "description": "cats", "slides_count": SLIDES}
    return str((await submit(client, body))["scenario_id"])


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"] == field, problem


async def walk(client: httpx.AsyncClient, path: str, **params: Any) -> list[list[str]]:
    """Every page's task names, following next_cursor to the end (bounded)."""
    pages: list[list[str]] = []
    cursor = None
    for _ in range(TOTAL + 1):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([t["name"] for t in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("paging did not end")


async def test_the_default_body_still_lists_every_task(any_client: httpx.AsyncClient) -> None:
    scenario_id = await big_video(any_client)
    body = (await any_client.get(f"/scenarios/{scenario_id}")).json()
    assert len(body["tasks"]) == TOTAL
    assert body["failures"] == []
    explicit = (await any_client.get(f"/scenarios/{scenario_id}?tasks=all")).json()
    assert explicit == body


async def test_tasks_none_leaves_tasks_and_failures_out(any_client: httpx.AsyncClient) -> None:
    scenario_id = await big_video(any_client)
    body = (await any_client.get(f"/scenarios/{scenario_id}", params={"tasks": "none"})).json()
    assert body["tasks"] is None
    assert body["failures"] is None
    assert body["progress"]["total"] == TOTAL
    assert body["status"] == "pending"
    assert body["params"]["slides_count"] == SLIDES


async def test_pages_cover_every_task_once_in_plan_order(any_client: httpx.AsyncClient) -> None:
    scenario_id = await big_video(any_client)
    full = (await any_client.get(f"/scenarios/{scenario_id}")).json()["tasks"]
    pages = await walk(any_client, f"/scenarios/{scenario_id}/tasks", limit=10)
    assert [len(p) for p in pages] == [10] * 6 + [3]
    assert [name for page in pages for name in page] == [t["name"] for t in full]


async def test_a_page_item_is_the_full_bodys_task(any_client: httpx.AsyncClient) -> None:
    scenario_id = await big_video(any_client)
    full = (await any_client.get(f"/scenarios/{scenario_id}")).json()["tasks"]
    page = (await any_client.get(f"/scenarios/{scenario_id}/tasks", params={"limit": 5})).json()
    assert page["items"] == full[:5]


async def test_group_lists_only_its_copies(any_client: httpx.AsyncClient) -> None:
    scenario_id = await big_video(any_client)
    pages = await walk(any_client, f"/scenarios/{scenario_id}/tasks", group="slide_image", limit=12)
    assert [len(p) for p in pages] == [12, 12, 6]
    assert [n for p in pages for n in p] == [f"slide_image_{i}" for i in range(1, SLIDES + 1)]
    empty = await any_client.get(f"/scenarios/{scenario_id}/tasks", params={"group": "nothing"})
    assert empty.json() == {"items": [], "next_cursor": None}


async def test_a_page_explains_skips_caused_outside_it(any_client: httpx.AsyncClient) -> None:
    scenario_id = await fail_slide_prompt_for_good(any_client)
    page = await any_client.get(f"/scenarios/{scenario_id}/tasks", params={"group": "slide_image"})
    (image,) = page.json()["items"]
    assert image["status"] == "skipped"
    assert image["skipped_because"] == ["slide_prompt_1"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tasks": "some"}, "tasks"),
        ({"tasks": ""}, "tasks"),
        ({"page": "1"}, "page"),
    ],
)
async def test_bad_body_parameters_are_named(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    scenario_id = await big_video(client)
    assert_refused(await client.get(f"/scenarios/{scenario_id}", params=params), field)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),  # base64 of text without the prefix
        ({"group": ""}, "group"),
    ],
)
async def test_bad_page_parameters_are_named(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    scenario_id = await big_video(client)
    assert_refused(await client.get(f"/scenarios/{scenario_id}/tasks", params=params), field)


async def test_a_cursor_of_another_group_is_refused(client: httpx.AsyncClient) -> None:
    scenario_id = await big_video(client)
    path = f"/scenarios/{scenario_id}/tasks"
    first = (await client.get(path, params={"group": "slide_image", "limit": 2})).json()
    refused = await client.get(
        path, params={"group": "slide_prompt", "cursor": first["next_cursor"]}
    )
    assert_refused(refused, "cursor")
    assert "slide_prompt" in refused.json()["detail"]


async def test_an_unknown_scenario_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/scenarios/nope/tasks")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
