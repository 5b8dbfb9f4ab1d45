"""The demo's artefacts preview in the dashboard: its server serves the output folder, so
a slide shows as an image, the narration as audio and the MP4 as video."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from scenarist.demo.runner import DemoProcesses

pytestmark = pytest.mark.slow


def test_the_demo_artefacts_preview_in_the_task_details(tmp_path: Path) -> None:
    out_dir = (tmp_path / "out").resolve()
    out_dir.mkdir()
    with DemoProcesses(out_dir=out_dir) as demo:
        body = {"scenario": "CreateVideo", "description": "Cats", "slides_count": 1}
        with httpx.Client(base_url=demo.url, timeout=10) as client:
            sid = client.post("/generate", json=body).json()["scenario_id"]
            deadline = time.monotonic() + 60
            while client.get(f"/scenarios/{sid}").json()["status"] != "success":
                assert time.monotonic() < deadline, "the demo scenario did not succeed"
                time.sleep(0.2)
            for name, element, mime in (
                ("slide_image_1", "img", "image/png"),
                ("voice", "audio", "audio/"),
                ("video", "video", "video/mp4"),
            ):
                panel = client.get(f"/ui/scenarios/{sid}/tasks/{name}").text
                start = panel.index(f"<{element} ")
                src = panel[start:].split('src="', 1)[1].split('"', 1)[0]
                assert src.startswith("/ui/artefacts/"), panel
                served = client.get(src)
                assert served.status_code == 200, src
                assert served.headers["content-type"].startswith(mime)
                assert len(served.content) > 0
