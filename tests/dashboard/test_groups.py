"""Big groups on the scenario page: one node with per-status counts, opened into its
instances a page at a time (in-process app, temp SQLite store; the browser test drives
the same through the page's script)."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx

from scenarist.core.model import Task, TaskStatus
from scenarist.dashboard.groups import COLLAPSE_ABOVE, GROUP_PAGE_SIZE, group_panel, summarise
from scenarist.dashboard.views import dag_view
from tests.dashboard.conftest import CLIENT_TOKEN, submit, work_once

SLIDES = 60  # CreateVideo: script, voice, 60 prompts, 60 images, video = 123 tasks
BIG_VIDEO = {"scenario": "CreateVideo", "description": "cats", "slides_count": SLIDES}


def task(name: str, level: int, depends_on: tuple[str, ...] = (), **changes: object) -> Task:
    made = Task(
        id=f"s:{name}",
        scenario_id="s",
        name=name,
        service="image-service",
        payload={},
        depends_on=depends_on,
        dependents=(),
        level=level,
        status=TaskStatus.PENDING,
        attempt=0,
        max_attempts=3,
        timeout_seconds=60.0,
        created_at=0.0,
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def fan(n: int) -> list[Task]:
    """root -> shot_1..n -> cut, the shape of a count or for_each group."""
    shots = [task(f"shot_{i}", 1, ("root",)) for i in range(1, n + 1)]
    return [task("root", 0), *shots, task("cut", 2, tuple(s.name for s in shots))]


def test_a_big_group_is_one_node_with_one_edge_each_way() -> None:
    view = dag_view(fan(COLLAPSE_ABOVE + 1))
    assert [(n.box.name, n.group is not None) for n in view.nodes] == [
        ("root", False),
        ("shot", True),
        ("cut", False),
    ]
    assert [(e.source, e.target) for e in view.layout.edges] == [("root", "shot"), ("shot", "cut")]
    assert view.tasks == COLLAPSE_ABOVE + 3


def test_a_small_group_keeps_its_instances() -> None:
    view = dag_view(fan(COLLAPSE_ABOVE))
    assert len(view.nodes) == COLLAPSE_ABOVE + 2
    assert all(n.group is None for n in view.nodes)


def test_zipped_groups_become_a_chain_of_two_nodes() -> None:
    n = COLLAPSE_ABOVE + 5
    prompts = [task(f"prompt_{i}", 1, ("root",)) for i in range(1, n + 1)]
    images = [task(f"image_{i}", 2, (f"prompt_{i}",)) for i in range(1, n + 1)]
    view = dag_view([task("root", 0), *prompts, *images])
    assert [n.box.name for n in view.nodes] == ["root", "prompt", "image"]
    assert [(e.source, e.target) for e in view.layout.edges] == [
        ("root", "prompt"),
        ("prompt", "image"),
    ]


def test_group_counts_and_colour_show_the_most_pressing_status() -> None:
    members = [
        task("shot_1", 1, status=TaskStatus.SUCCESS),
        task("shot_2", 1, status=TaskStatus.SUCCESS),
        task("shot_3", 1, status=TaskStatus.FAILED),
        task("shot_4", 1, status=TaskStatus.PROCESSING),
    ]
    summary = summarise("shot", members)
    assert summary.status is TaskStatus.FAILED
    assert summary.description == "1 processing, 2 success, 1 failed"
    shares = [(s.status, s.x, s.width) for s in summary.shares]
    assert shares == [
        (TaskStatus.PROCESSING, 0.0, 0.25),
        (TaskStatus.SUCCESS, 0.25, 0.5),
        (TaskStatus.FAILED, 0.75, 0.25),
    ]
    assert summarise("shot", members[:2]).status is TaskStatus.SUCCESS


def test_a_group_panel_pages_its_instances() -> None:
    tasks = fan(GROUP_PAGE_SIZE + 3)
    first = group_panel(tasks, "s", "shot", None)
    assert first is not None
    assert [t.name for t in first.page.tasks] == [f"shot_{i}" for i in range(1, 51)]
    second = group_panel(tasks, "s", "shot", first.page.next_cursor)
    assert second is not None
    assert [t.name for t in second.page.tasks] == ["shot_51", "shot_52", "shot_53"]
    assert second.page.next_cursor is None
    assert group_panel(tasks, "s", "root", None) is None


async def test_the_page_draws_big_groups_as_single_nodes(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, BIG_VIDEO)
    assert await work_once(client, "text-service") == ["script"]
    page = await client.get(f"/ui/scenarios/{scenario_id}")
    assert page.status_code == 200
    html = page.text
    assert len(re.findall(r'<g class="node[ "]', html)) == 5
    assert 'data-group="slide_prompt"' in html
    assert 'data-group="slide_image"' in html
    assert f"slide_prompt, group of {SLIDES} on text-service: {SLIDES} queued" in html
    assert 'class="share share-queued"' in html
    assert "slide_image_7" not in html  # no instance is drawn


async def test_a_group_opens_paged_without_a_script(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, BIG_VIDEO)
    page = (await client.get(f"/ui/scenarios/{scenario_id}?group=slide_image")).text
    names = re.findall(r'<li><a href="[^"]+" data-task="([^"]+)"', page)
    assert names == [f"slide_image_{i}" for i in range(1, GROUP_PAGE_SIZE + 1)]
    (cursor,) = re.findall(r'data-group-page="([^"]+)"', page)
    second = await client.get(f"/ui/scenarios/{scenario_id}/groups/slide_image?cursor={cursor}")
    assert second.status_code == 200
    rest = re.findall(r'data-task="([^"]+)"', second.text)
    assert rest == [f"slide_image_{i}" for i in range(GROUP_PAGE_SIZE + 1, SLIDES + 1)]
    assert "« First" in second.text
    assert "Next" not in second.text


async def test_group_counts_follow_the_run(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, BIG_VIDEO)
    await work_once(client, "text-service")  # script
    await work_once(client, "text-service")  # 20 of the 60 prompts
    counts = (await client.get(f"/ui/scenarios/{scenario_id}/groups")).json()["groups"]
    assert set(counts) == {"slide_prompt", "slide_image"}
    prompts = counts["slide_prompt"]
    assert prompts["size"] == SLIDES
    assert prompts["counts"]["success"] == 20
    assert prompts["counts"]["queued"] == SLIDES - 20
    assert prompts["status"] == "queued"
    assert counts["slide_image"]["counts"]["queued"] == 20


async def test_unknown_group_and_bad_cursor_are_readable_pages(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, BIG_VIDEO)
    missing = await client.get(f"/ui/scenarios/{scenario_id}/groups/nope")
    assert missing.status_code == 404
    assert "no group named" in missing.text
    bad = await client.get(f"/ui/scenarios/{scenario_id}?group=slide_image&cursor=%25%25")
    assert bad.status_code == 400
    assert "cursor" in bad.text


async def test_group_reads_need_a_signed_in_viewer(secured: httpx.AsyncClient) -> None:
    scenario_id = await submit(secured, BIG_VIDEO, Authorization=f"Bearer {CLIENT_TOKEN}")
    for path in (f"/ui/scenarios/{scenario_id}/groups", f"/ui/scenarios/{scenario_id}/groups/x"):
        response = await secured.get(path)
        assert response.status_code == 401
        assert "slide" not in response.text
    api = await secured.get(f"/scenarios/{scenario_id}/tasks")
    assert api.status_code == 401
    allowed = await secured.get(
        f"/scenarios/{scenario_id}/tasks", headers={"Authorization": f"Bearer {CLIENT_TOKEN}"}
    )
    assert allowed.status_code == 200
