"""Dashboard pages through the real app (temp SQLite store), in-process over httpx."""

from __future__ import annotations

import re

import httpx

from tests.dashboard.conftest import (
    ADMIN_TOKEN,
    CLIENT_TOKEN,
    SERVICES,
    VIDEO,
    WORKER_TOKEN,
    submit,
    work_once,
)

VOICE = {"scenario": "CreateVoice", "description": "Hello", "count": 2}


def node_statuses(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-task="([^"]+)"\s+data-service="[^"]+" data-status="(\w+)"', html))


async def finish(client: httpx.AsyncClient, **headers: str) -> None:
    for _ in range(6):
        for service in SERVICES:
            await work_once(client, service, **headers)


async def test_list_shows_status_as_text_and_icon_with_progress(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client)
    await work_once(client, "text-service")
    page = await client.get("/ui")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    row = page.text[page.text.index(f"/ui/scenarios/{scenario_id}") :]
    assert 'class="badge status-running"' in row
    assert '<span class="icon" aria-hidden="true">▶</span> running' in row
    assert "CreateVideo" in row
    assert '<progress class="bar-running" max="100" value="11.11"' in row
    assert "1/9" in row
    assert 'data-refresh="/ui/fragments/scenarios"' in page.text


async def test_filters_by_status_and_template_through_the_query(client: httpx.AsyncClient) -> None:
    video = await submit(client)
    voice = await submit(client, VOICE)
    assert (await client.post(f"/scenarios/{voice}/cancel")).status_code == 200
    cancelled = (await client.get("/ui?status=cancelled")).text
    assert voice in cancelled
    assert video not in cancelled
    assert '<option value="cancelled" selected>' in cancelled
    by_template = (await client.get("/ui?template=CreateVideo")).text
    assert video in by_template
    assert voice not in by_template
    fragment = (await client.get("/ui/fragments/scenarios?status=pending")).text
    assert video in fragment
    assert voice not in fragment
    assert (
        "No scenarios match these filters."
        in (await client.get("/ui?status=success&template=CreateVideo")).text
    )


async def test_cursor_pagination_walks_every_scenario_once(client: httpx.AsyncClient) -> None:
    submitted = {await submit(client, VOICE) for _ in range(3)}
    seen: list[str] = []
    url = "/ui?limit=2"
    for _ in range(3):
        page = (await client.get(url)).text
        seen += re.findall(r'href="/ui/scenarios/(\w+)"', page)
        older = re.search(r'rel="next" href="([^"]+)"', page)
        if older is None:
            break
        url = older.group(1).replace("&amp;", "&")
    assert sorted(seen) == sorted(submitted)
    assert "« Newest" in (await client.get(url)).text


async def test_bad_filter_is_a_readable_400_page(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui?status=<script>")
    assert page.status_code == 400
    assert "unknown status" in page.text
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text


async def test_scenario_page_draws_every_task_with_its_status(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client)
    await work_once(client, "text-service")
    page = await client.get(f"/ui/scenarios/{scenario_id}")
    assert page.status_code == 200
    statuses = node_statuses(page.text)
    assert len(statuses) == 9
    assert statuses["script"] == "success"
    assert statuses["voice"] == "queued"
    assert statuses["slide_prompt_2"] == "queued"
    assert statuses["video"] == "pending"
    assert 'tabindex="0" role="button"' in page.text
    assert 'aria-label="script, text-service, success"' in page.text
    assert page.text.count('class="edge"') == 1 + 3 + 3 + 4
    assert '<th scope="row">text-service</th>' in page.text
    assert 'id="cancel-button"' in page.text  # no tokens configured: everyone may act
    assert '<dt>Priority</dt><dd id="lane">normal</dd>' in page.text


async def test_scenario_page_says_the_scenarios_lane(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, {**VIDEO, "priority": "interactive"})
    page = await client.get(f"/ui/scenarios/{scenario_id}")
    assert '<dt>Priority</dt><dd id="lane">interactive</dd>' in page.text


async def test_task_details_escape_payloads_and_show_inputs(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client)
    await work_once(client, "text-service")
    panel = await client.get(f"/ui/scenarios/{scenario_id}/tasks/script")
    assert panel.status_code == 200
    assert "&lt;b&gt;cats&lt;/b&gt;" in panel.text
    assert "<b>cats" not in panel.text
    assert "<code>out/script.bin</code>" in panel.text
    assert "1 of 3" in panel.text
    voice = (await client.get(f"/ui/scenarios/{scenario_id}?task=voice")).text
    assert 'class="task-details" data-task="voice"' in voice
    assert "&#34;result_ref&#34;: &#34;out/script.bin&#34;" in voice  # inputs from the parent
    missing = await client.get(f"/ui/scenarios/{scenario_id}/tasks/nope")
    assert missing.status_code == 404
    assert (await client.get("/ui/scenarios/unknown-id")).status_code == 404


async def test_task_details_say_a_cached_task_came_from_the_cache(
    client: httpx.AsyncClient,
) -> None:
    """The packaged CreateVideo caches its script: an identical submission copies it."""
    first = await submit(client)
    assert "script" in await work_once(client, "text-service")
    second = await submit(client)
    panel = (await client.get(f"/ui/scenarios/{second}/tasks/script")).text
    assert f"copied from <code>{first}:script</code>" in panel
    ran = (await client.get(f"/ui/scenarios/{first}/tasks/script")).text
    assert "From the cache" not in ran


async def test_live_feed_streams_task_changes_then_ends(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, VOICE)
    await finish(client)
    feed = await client.get(f"/ui/scenarios/{scenario_id}/events")
    assert feed.headers["content-type"].startswith("text/event-stream")
    body = feed.text
    assert '"task":"voice_1","status":"success"' in body
    assert "event: progress" in body
    assert body.rstrip().splitlines()[-2] == "event: end"
    assert '"status":"success","finished":2,"total":2' in body
    first_id = re.search(r"^id: (\S+)$", body, re.MULTILINE)
    assert first_id is not None
    resumed = await client.get(
        f"/ui/scenarios/{scenario_id}/events", headers={"Last-Event-ID": first_id.group(1)}
    )
    assert f"id: {first_id.group(1)}\n" not in resumed.text
    assert "event: end" in resumed.text


async def test_cancel_and_resume_buttons_redirect_back(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, VOICE)
    cancelled = await client.post(f"/ui/scenarios/{scenario_id}/cancel?confirmed=true")
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == f"/ui/scenarios/{scenario_id}?notice=cancelled"
    page = (await client.get(cancelled.headers["location"])).text
    assert "Scenario cancelled" in page
    assert 'id="resume-button"' in page
    assert 'id="cancel-button"' not in page
    again = await client.post(f"/ui/scenarios/{scenario_id}/cancel?confirmed=true")
    assert again.headers["location"].endswith("notice=not-cancellable")
    resumed = await client.post(f"/ui/scenarios/{scenario_id}/retry")
    assert resumed.headers["location"].endswith("notice=resumed")
    assert (await client.get(f"/scenarios/{scenario_id}")).json()["status"] == "pending"


async def test_cross_site_form_posts_are_refused(client: httpx.AsyncClient) -> None:
    scenario_id = await submit(client, VOICE)
    forged = await client.post(
        f"/ui/scenarios/{scenario_id}/cancel", headers={"Origin": "http://evil.example"}
    )
    assert forged.status_code == 403
    cross = await client.post(
        f"/ui/scenarios/{scenario_id}/cancel", headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    assert (await client.get(f"/scenarios/{scenario_id}")).json()["status"] == "pending"
    same = await client.post(
        f"/ui/scenarios/{scenario_id}/cancel?confirmed=true", headers={"Origin": "http://dash.test"}
    )
    assert same.status_code == 303
    assert same.headers["location"].endswith("notice=cancelled")


async def test_queues_page_counts_ready_and_in_flight(client: httpx.AsyncClient) -> None:
    await submit(client)
    leased = await client.post("/queues/text-service/lease", json={"max_tasks": 1})
    assert len(leased.json()["tasks"]) == 1
    page = (await client.get("/ui/queues")).text
    assert 'data-refresh="/ui/fragments/queues"' in page
    rows = (await client.get("/ui/fragments/queues")).text
    text_row = rows[rows.index('data-service="text-service"') :]
    assert '<td class="in-flight">1</td>' in text_row.split("</tr>")[0]


async def test_static_assets_are_served_from_the_package(client: httpx.AsyncClient) -> None:
    page = (await client.get("/ui")).text
    script = re.search(r'src="(/ui/static/dashboard\.js\?v=\w+)"', page)
    assert script is not None
    served = await client.get(script.group(1))
    assert served.status_code == 200
    assert served.headers["content-type"].startswith("text/javascript")
    assert "EventSource" in served.text
    assert (await client.get("/ui/static/../rendering.py")).status_code == 404
    assert (await client.get("/ui/static/missing.css")).status_code == 404


async def sign_in(client: httpx.AsyncClient, token: str, next_page: str) -> httpx.Response:
    """What the sign-in form sends: a urlencoded POST with the token in the body."""
    return await client.post("/ui/login", data={"token": token, "next": next_page})


async def test_tokens_gate_the_dashboard(secured: httpx.AsyncClient) -> None:
    login = await secured.get("/ui/queues")
    assert login.status_code == 401
    assert '<form method="post" action="/ui/login"' in login.text
    assert 'name="next" value="/ui/queues"' in login.text  # a deep link comes back here
    accepted = await sign_in(secured, CLIENT_TOKEN, "/ui/queues")
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/ui/queues"
    assert CLIENT_TOKEN not in str(accepted.request.url)
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/ui" in cookie
    assert (await secured.get("/ui/queues")).status_code == 200  # the cookie now
    secured.cookies.clear()
    assert (await sign_in(secured, "wrong-token-0123456789", "/ui")).status_code == 401
    worker = await secured.get("/ui", headers={"Authorization": f"Bearer {WORKER_TOKEN}"})
    assert worker.status_code == 403
    assert (await secured.get("/ui/fragments/queues")).status_code == 401


async def test_a_token_in_the_address_is_not_a_sign_in(secured: httpx.AsyncClient) -> None:
    """Addresses end up in access logs: `?token=` is refused, never turned into a session."""
    refused = await secured.get(f"/ui/queues?token={CLIENT_TOKEN}")
    assert refused.status_code == 422
    assert "set-cookie" not in refused.headers
    assert (await secured.get(f"/ui/login?token={CLIENT_TOKEN}")).status_code == 422
    assert (await secured.get("/ui/queues")).status_code == 401


async def test_client_reads_only_and_admin_acts(secured: httpx.AsyncClient) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    client = {"Authorization": f"Bearer {CLIENT_TOKEN}"}
    scenario_id = await submit(secured, VOICE, **admin)
    as_client = await secured.get(f"/ui/scenarios/{scenario_id}", headers=client)
    assert as_client.status_code == 200
    assert 'id="cancel-button"' not in as_client.text
    refused = await secured.post(f"/ui/scenarios/{scenario_id}/cancel", headers=client)
    assert refused.status_code == 403
    no_page = await secured.get(f"/ui/scenarios/{scenario_id}/cancel", headers=client)
    assert no_page.status_code == 403
    as_admin = await secured.get(f"/ui/scenarios/{scenario_id}", headers=admin)
    assert 'id="cancel-button"' in as_admin.text
    done = await secured.post(f"/ui/scenarios/{scenario_id}/cancel?confirmed=true", headers=admin)
    assert done.status_code == 303
    assert done.headers["location"].endswith("notice=cancelled")


async def test_sign_in_form_sets_the_cookie(secured: httpx.AsyncClient) -> None:
    form = await secured.get("/ui/login?next=/ui/queues")
    assert 'name="next" value="/ui/queues"' in form.text
    bad = await sign_in(secured, "nope", "/ui/queues")
    assert bad.status_code == 401
    assert "not valid" in bad.text
    assert 'name="next" value="/ui/queues"' in bad.text
    empty = await sign_in(secured, "", "/ui/queues")
    assert empty.status_code == 401
    assert "enter a token" in empty.text
    good = await sign_in(secured, ADMIN_TOKEN, "https://evil.example/")
    assert good.status_code == 303
    assert good.headers["location"] == "/ui"
    page = await secured.get("/ui")
    assert page.status_code == 200
    assert "(admin)" in page.text
    out = await secured.post("/ui/logout")
    assert out.status_code == 303
    assert (await secured.get("/ui")).status_code == 401


async def test_sign_in_form_body_is_small_urlencoded_and_same_origin(
    secured: httpx.AsyncClient,
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    huge = await secured.post("/ui/login", content=b"token=" + b"x" * 5000, headers=form)
    assert huge.status_code == 413
    binary = await secured.post("/ui/login", content=b"token=\xff\xfe", headers=form)
    assert binary.status_code == 400
    cross_site = await secured.post(
        "/ui/login",
        data={"token": ADMIN_TOKEN, "next": "/ui"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    assert "set-cookie" not in cross_site.headers
    # The exception is for that one path: a form body anywhere else is still 415.
    elsewhere = await secured.post("/ui/logout", data={"token": ADMIN_TOKEN})
    assert elsewhere.status_code == 415
