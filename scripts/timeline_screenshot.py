#!/usr/bin/env python3
"""Render docs/timeline.png: the dashboard's timeline of a CreateVideo run, in Chromium.

    .venv/bin/python scripts/timeline_screenshot.py [--out docs/timeline.png]

Starts the app (temporary SQLite store) on a free loopback port, serves it with one SDK
worker per service whose handlers sleep a time per task kind (the ETA benchmark's farm,
ten times slower so the bars are wide enough to read), makes the second slide image fail
once so a retry shows, waits for the scenario to end, and screenshots the timeline with
Debian's chromium through Playwright. Nothing is drawn by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from playwright.sync_api import sync_playwright

from scenarist.api.app import create_app
from scenarist.settings import Settings
from scenarist.worker import Worker, WorkerTask

SLEEP_SECONDS = {
    "script": 0.3,
    "voice": 0.6,
    "slide_prompt": 0.15,
    "slide_image": 0.8,
    "video": 1.2,
}
SLOTS = {"text-service": 2, "audio-service": 1, "image-service": 2, "video-service": 1}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "timeline.png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def sleep_for(task: WorkerTask) -> str:
    kind = task.name.rstrip("0123456789").rstrip("_")
    await asyncio.sleep(SLEEP_SECONDS[kind])
    if task.name == "slide_image_2" and task.attempt == 1:
        raise RuntimeError("GPU out of memory (simulated)")  # retryable: a second attempt
    return f"out/{task.name}"


def run_scenario(url: str) -> str:
    workers = []
    for service, slots in SLOTS.items():
        worker = Worker(url, concurrency=slots, wait_seconds=5.0, worker_id=f"demo-{service}")
        worker.add_handler(service, sleep_for)
        threading.Thread(
            target=worker.run, kwargs={"install_signal_handlers": False}, daemon=True
        ).start()
        workers.append(worker)
    try:
        body = {"scenario": "CreateVideo", "description": "A video about cats", "slides_count": 3}
        scenario_id: str = httpx.post(f"{url}/generate", json=body).json()["scenario_id"]
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/scenarios/{scenario_id}").json()["finished_at"] is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the scenario did not finish within 60 s")
            time.sleep(0.1)
        return scenario_id
    finally:
        for worker in workers:
            worker.stop()


def screenshot(url: str, scenario_id: str, out: Path) -> None:
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("chromium is not installed: run scripts/ensure-system-deps.sh")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(f"{url}/ui/scenarios/{scenario_id}?task=slide_image_2")
        page.locator("section.timeline-section").screenshot(path=str(out))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    # The simulated failure is meant: keep its logged traceback out of the output.
    logging.getLogger("scenarist").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="timeline-") as tmp:
        # The retried slide waits out the default backoff (1-2 s): its hatched second wait.
        settings = Settings(store=f"sqlite:///{Path(tmp) / 'timeline.db'}")
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        try:
            screenshot(url, run_scenario(url), args.out)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
