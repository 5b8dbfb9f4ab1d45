"""The dashboard in a real browser: Debian's chromium driven by Playwright, against a real
server (uvicorn, temp SQLite store) on a free loopback port, with a plain HTTP test worker.

Screenshots go to test-output/dashboard/. Never a downloaded browser: the system
`chromium` (scripts/ensure-system-deps.sh installs it) or the tests fail saying so.
"""

from __future__ import annotations

import itertools
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from scenarist.api.app import create_app
from tests.dashboard.conftest import SERVICES, VIDEO, make_settings

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"
# Generous: CI shares two cores between the server, the browser and the test worker, and a
# loaded machine must slow the test down, not fail it.
WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("browser"))
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "chromium is not installed: run scripts/ensure-system-deps.sh"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page that fails the test on any console error (a CSP violation, a script
    exception, a failed fetch)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    errors: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    opened.on("console", record)
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert errors == []


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


_submissions = itertools.count()


def submit(api: httpx.Client, body: dict[str, object]) -> str:
    # The tests share one server and the packaged CreateVideo caches its pure steps: each
    # submission gets its own description so that none is served from another's run.
    unique = {**body, "description": f"{body['description']} ({next(_submissions)})"}
    response = api.post("/generate", json=unique)
    assert response.status_code == 201, response.text
    scenario_id: str = response.json()["scenario_id"]
    return scenario_id


def work(api: httpx.Client, service: str) -> list[str]:
    """The test worker: lease whatever `service` has ready and complete it."""
    leased = api.post(f"/queues/{service}/lease", json={"max_tasks": 20})
    assert leased.status_code == 200, leased.text
    for task in leased.json()["tasks"]:
        done = api.post(
            f"/tasks/{task['id']}/complete",
            json={"lease_token": task["lease_token"], "result_ref": f"out/{task['name']}"},
        )
        assert done.status_code == 200, done.text
    return [task["name"] for task in leased.json()["tasks"]]


def node(page: Page, name: str, status: str) -> str:
    return f'g.node[data-task="{name}"][data-status="{status}"]'


def test_nodes_turn_green_as_the_worker_completes_tasks(
    page: Page, api: httpx.Client, base_url: str
) -> None:
    scenario_id = submit(api, VIDEO)
    page.goto(f"{base_url}/ui/scenarios/{scenario_id}")
    expect(page.locator("g.node")).to_have_count(9)
    expect(page.locator("#live-state")).to_contain_text("Live", timeout=WAIT_MS)
    assert work(api, "text-service") == ["script"]
    page.wait_for_selector(node(page, "script", "success"), timeout=WAIT_MS)
    script = page.locator('g.node[data-task="script"]')
    expect(script.locator(".node-label")).to_have_text("success")
    expect(script).to_have_attribute("aria-label", "script, text-service, success")
    page.screenshot(path=str(SCREENSHOTS / "scenario-running.png"), full_page=True)
    for _ in range(4):  # the chain is four levels deep
        for service in SERVICES:
            work(api, service)
    # A locator wait, not wait_for_function: the page's CSP forbids eval, which
    # Playwright needs to poll a string predicate that is not true at once.
    expect(page.locator('g.node[data-status="success"]')).to_have_count(9)
    expect(page.locator("#scenario-status .badge")).to_have_text(re.compile("success"))
    expect(page.locator(".summary .progress-text")).to_have_text("9/9", timeout=WAIT_MS)
    expect(page.locator("#live-state")).to_contain_text("Scenario ended: success")
    page.screenshot(path=str(SCREENSHOTS / "scenario-success.png"), full_page=True)


def test_keyboard_opens_task_details_and_back_closes_them(
    page: Page, api: httpx.Client, base_url: str
) -> None:
    scenario_id = submit(api, VIDEO)
    work(api, "text-service")
    page.goto(f"{base_url}/ui/scenarios/{scenario_id}")
    page.locator(".graph h2").click()  # start sequential focus just before the graph
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.task") == "script"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.task") == "voice"
    page.keyboard.press("Enter")
    panel = page.locator("#task-panel .task-details")
    expect(panel).to_have_attribute("data-task", "voice")
    expect(panel).to_contain_text("audio-service")
    expect(panel.locator("pre").last).to_contain_text("out/script")  # inputs from script
    assert page.url.endswith("?task=voice")
    page.keyboard.press("ArrowDown")
    page.keyboard.press(" ")
    expect(panel).to_have_attribute("data-task", "slide_prompt_1")
    page.screenshot(path=str(SCREENSHOTS / "task-details.png"), full_page=True)
    page.go_back()
    expect(panel).to_have_attribute("data-task", "voice")
    page.keyboard.press("Escape")
    expect(page.locator("#task-panel")).to_contain_text("No task selected.")


def test_cancel_asks_for_confirmation_then_offers_resume(
    page: Page, api: httpx.Client, base_url: str
) -> None:
    scenario_id = submit(api, {"scenario": "CreateVoice", "description": "Hi", "count": 2})
    page.goto(f"{base_url}/ui/scenarios/{scenario_id}")
    page.locator("#cancel-button").click()
    page.wait_for_url(re.compile(rf"/ui/scenarios/{scenario_id}/cancel$"))
    expect(page.locator("h1")).to_contain_text("Cancel this scenario?")
    page.locator("#keep-running").click()  # changing one's mind changes nothing
    page.wait_for_url(re.compile(rf"/ui/scenarios/{scenario_id}$"))
    assert api.get(f"/scenarios/{scenario_id}").json()["status"] == "pending"
    page.locator("#cancel-button").click()
    page.locator("#confirm-cancel").click()
    page.wait_for_url(re.compile(r"notice=cancelled$"))
    expect(page.locator(".notice")).to_contain_text("Scenario cancelled")
    expect(page.locator("#scenario-status .badge")).to_have_text(re.compile("cancelled"))
    expect(page.locator('g.node[data-status="cancelled"]')).to_have_count(2)
    expect(page.locator("#cancel-button")).to_have_count(0)
    expect(page.locator("#retry-button")).to_have_count(0)
    expect(page.locator("#resume-button")).to_have_text("Resume cancelled tasks")
    assert api.get(f"/scenarios/{scenario_id}").json()["status"] == "cancelled"


def test_list_updates_live_and_filters_survive_back(
    page: Page, api: httpx.Client, base_url: str
) -> None:
    page.goto(f"{base_url}/ui")
    newcomer = submit(api, {"scenario": "CreateVoice", "description": "New", "count": 1})
    expect(page.locator(f'a[href="/ui/scenarios/{newcomer}"]')).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=str(SCREENSHOTS / "scenario-list.png"), full_page=True)
    page.select_option("select[name=status]", "pending")
    page.locator(".filters button[type=submit]").click()
    page.wait_for_url(re.compile(r"status=pending"))
    statuses = page.locator("#scenario-rows tr").evaluate_all(
        "rows => rows.map(r => r.dataset.status)"
    )
    assert statuses
    assert set(statuses) == {"pending"}
    page.go_back()
    assert page.url == f"{base_url}/ui"
    page.goto(f"{base_url}/ui/queues")
    expect(page.locator('#queue-rows tr[data-service="audio-service"] .ready')).to_have_text(
        re.compile(r"[1-9]")
    )
    page.screenshot(path=str(SCREENSHOTS / "queues.png"), full_page=True)


def test_a_big_group_is_one_node_that_opens_into_pages_of_instances(
    page: Page, api: httpx.Client, base_url: str
) -> None:
    slides = 60  # 60 prompts and 60 images: two group nodes, each opening into two pages
    for _ in range(20):  # the server is shared: finish what earlier tests left ready
        if not work(api, "text-service"):
            break
    scenario_id = submit(
        api, {"scenario": "CreateVideo", "description": "Big", "slides_count": slides}
    )
    assert work(api, "text-service") == ["script"]
    page.goto(f"{base_url}/ui/scenarios/{scenario_id}")
    expect(page.locator("g.node")).to_have_count(5)
    expect(page.locator("#live-state")).to_contain_text("Live", timeout=WAIT_MS)
    group = page.locator('g.node[data-group="slide_prompt"]')
    expect(group).to_have_attribute("data-status", "queued")
    expect(group.locator(".group-counts")).to_contain_text(f"◔{slides}")

    group.click()
    panel = page.locator("#task-panel .group-details")
    expect(panel).to_have_attribute("data-group", "slide_prompt")
    expect(panel.locator("ul.instances li")).to_have_count(50)
    expect(panel.locator('td[data-status="queued"]')).to_have_text(str(slides))
    assert page.url.endswith("?group=slide_prompt")
    expect(group).to_have_class(re.compile(r"\bselected\b"))

    # Live: the worker finishes 20 prompts; the node's counts and the panel follow.
    assert len(work(api, "text-service")) == 20
    expect(group.locator(".share-success")).to_have_count(1)
    expect(group.locator(".group-counts")).to_contain_text("✓20")
    expect(panel.locator('td[data-status="success"]')).to_have_text("20")
    page.screenshot(path=str(SCREENSHOTS / "big-group.png"), full_page=True)

    panel.locator("a[data-group-page]").click()  # the next page: instances 51..60
    expect(panel.locator("ul.instances li")).to_have_count(slides - 50)
    expect(panel.locator("ul.instances li").first).to_contain_text("slide_prompt_51")
    assert "cursor=" in page.url
    panel.locator('a[data-task="slide_prompt_51"]').click()
    details = page.locator("#task-panel .task-details")
    expect(details).to_have_attribute("data-task", "slide_prompt_51")
    expect(group).to_have_class(re.compile(r"\bselected\b"))  # the instance's group
    page.go_back()
    expect(page.locator("#task-panel .group-details ul.instances li").first).to_contain_text(
        "slide_prompt_51"
    )
    page.keyboard.press("Escape")
    expect(page.locator("#task-panel")).to_contain_text("No task selected.")


def fail_once_then_succeed(api: httpx.Client, task_id: str) -> None:
    """Claim the task (the seed's PATCH, so no other scenario's task is taken), fail it
    retryably, then finish it during its backoff: two attempts on its bar."""
    for body in (
        {"status": "processing"},
        {"status": "failed", "error": "busy", "retryable": True},
        {"status": "success", "result_ref": "out/script"},
    ):
        changed = api.patch(f"/tasks/{task_id}/status", json=body)
        assert changed.status_code == 200, changed.text


def work_until_final(api: httpx.Client, scenario_id: str) -> None:
    """Run every service until the scenario ends (other tests' tasks are run too)."""
    for _ in range(20):
        if api.get(f"/scenarios/{scenario_id}").json()["finished_at"] is not None:
            return
        for service in SERVICES:
            work(api, service)
    raise AssertionError(f"scenario {scenario_id} did not end")


def test_timeline_of_a_finished_scenario_marks_retries_and_the_critical_path(
    page: Page, api: httpx.Client, base_url: str
) -> None:
    scenario_id = submit(api, VIDEO)
    fail_once_then_succeed(api, f"{scenario_id}:script")
    work_until_final(api, scenario_id)
    page.goto(f"{base_url}/ui/scenarios/{scenario_id}")
    timeline = page.locator("svg#timeline")
    expect(timeline).to_have_attribute("data-live", "false")
    expect(timeline.locator("g.tl-task")).to_have_count(9)
    expect(timeline.locator("g.tl-group")).to_have_count(4)  # one group per service
    script = timeline.locator('g.tl-task[data-task="script"]')
    expect(script.locator("rect.tl-run")).to_have_count(2)  # the retry is visible
    expect(script.locator("rect.tl-run.outcome-queued")).to_have_count(1)
    expect(script.locator("rect.tl-wait")).to_have_count(2)
    critical = timeline.get_attribute("data-critical")
    assert critical is not None
    path = critical.split()
    assert path[0] == "script"
    assert path[-1] == "video"
    for name in path:
        expect(timeline.locator(f'g.tl-task[data-task="{name}"]')).to_have_class(
            re.compile(r"\bcritical\b")
        )
    expect(timeline.locator("g.tl-task.critical")).to_have_count(len(path))
    expect(script).to_have_attribute("aria-label", re.compile("on the critical path"))
    # keyboard: Tab onto the bars, arrows move, Enter opens the task's details
    script.focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.task") != "script"
    script.focus()
    page.keyboard.press("Enter")
    panel = page.locator("#task-panel .task-details")
    expect(panel).to_have_attribute("data-task", "script")
    expect(panel.locator("table.attempts tbody tr")).to_have_count(2)
    expect(panel.locator("table.attempts")).to_contain_text("retried")
    page.locator("section.timeline-section").screenshot(
        path=str(SCREENSHOTS / "timeline-finished.png")
    )


def test_timeline_of_a_running_scenario_grows_live(
    page: Page, api: httpx.Client, base_url: str
) -> None:
    scenario_id = submit(api, VIDEO)
    claimed = api.patch(f"/tasks/{scenario_id}:script/status", json={"status": "success"})
    assert claimed.status_code == 200, claimed.text
    page.goto(f"{base_url}/ui/scenarios/{scenario_id}")
    timeline = page.locator("svg#timeline")
    expect(timeline).to_have_attribute("data-live", "true")
    expect(page.locator("#eta")).to_be_visible()
    voice = page.locator('svg#timeline g.tl-task[data-task="voice"]')
    expect(voice.locator("rect.tl-wait.outcome-waiting")).to_have_count(1)  # queued now
    expect(voice.locator("rect.tl-run")).to_have_count(0)
    # the critical path starts at the finished script and runs on through forecasts
    expect(page.locator('svg#timeline g.tl-task.critical[data-task="script"]')).to_have_count(1)
    work(api, "audio-service")
    expect(voice.locator("rect.tl-run.outcome-success")).to_have_count(1)  # live, no reload
    page.locator("section.timeline-section").screenshot(
        path=str(SCREENSHOTS / "timeline-running.png")
    )
    work_until_final(api, scenario_id)
    expect(page.locator("svg#timeline")).to_have_attribute("data-live", "false")
